"""moto in server mode, for the local stack: the AWS a second process (``rollout-monitor``)
reaches over HTTP while the stack's functions run in this one."""

from __future__ import annotations

import logging
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port; boto3 is pointed at it meanwhile.

    It serves one request at a time: moto's backends are not thread-safe, and a command in
    another process (``rollout-monitor status``) reads while the stack's functions write.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    class SerialMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            lock = threading.Lock()

            def serial(environ: Any, start_response: Any) -> Any:
                with lock:
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, serial, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)  # "no CloudFormation support for alarms"
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    port = _free_port()
    server = SerialMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    import httpx  # noqa: PLC0415

    httpx.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()  # backends are per process
    try:
        yield url
    finally:
        server.stop()
