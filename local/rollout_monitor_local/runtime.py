"""Run a template's function in-process, loaded the way Lambda loads it.

The handler module is loaded from the function's ``CodeUri`` folder by its ``Handler`` string,
with the environment moto resolved from the template; nothing is added to ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rollout_monitor_local.stack import FunctionSpec

_loaded = itertools.count()


@dataclass
class FakeContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    remaining_millis: int = 60_000

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


class FunctionRuntime:
    """One warm container of a function: loaded once, invoked many times."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.environment = spec.environment | (environment or {})
        os.environ.update(self.environment)
        module_path, _, function_name = spec.handler.rpartition(".")
        file = spec.code_dir / (module_path.replace(".", "/") + ".py")
        name = f"_lambda_{spec.logical_id}_{next(_loaded)}"
        module_spec = importlib.util.spec_from_file_location(name, file)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {file}")
        self.module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(self.module)
        self.handler: Callable[[dict[str, Any], Any], Any] = getattr(self.module, function_name)

    def invoke(self, event: dict[str, Any], *, remaining_millis: int = 60_000) -> Any:
        os.environ.update(self.environment)
        context = FakeContext(self.spec.name, remaining_millis=remaining_millis)
        try:
            return self.handler(event, context)
        finally:
            if self.environment.get("POWERTOOLS_METRICS_DISABLED") == "true":
                _drop_metrics()


def _drop_metrics() -> None:
    """What Lambda would have flushed: Powertools keeps disabled metrics, and prints them all
    once a metric reaches 100 values, disabled or not."""
    from rollout_monitor.observability import metrics  # noqa: PLC0415 (the layer's, loaded)

    metrics.clear_metrics()
