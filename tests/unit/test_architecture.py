"""The house rules a reader relies on: small modules, a domain that touches no adapter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "rollout_monitor"
DOMAIN = ("deploy", "poller", "alerts", "rules", "messages", "records", "events", "ports")
ADAPTERS = (
    "boto3",
    "botocore",
    "httpx",
    "rollout_monitor.store",
    "rollout_monitor.bus",
    "rollout_monitor.notifier",
    "rollout_monitor.cerebras.client",
    "rollout_monitor.cerebras.credentials",
    "rollout_monitor.wiring",
)


def test_no_module_is_over_400_lines_and_no_class_over_250() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                assert node.end_lineno - node.lineno + 1 <= 250, (path, node.name)


def test_the_domain_loads_no_boto3_no_httpx_and_no_concrete_adapter() -> None:
    """Imported alone, in a fresh interpreter, the domain pulls in none of them."""
    modules = ", ".join(f"rollout_monitor.{name}" for name in DOMAIN)
    script = f"import sys, json; import {modules}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run(  # noqa: S603  (our own interpreter and script)
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    leaked = [m for m in loaded if any(m == a or m.startswith(a + ".") for a in ADAPTERS)]
    assert leaked == []


def test_the_check_would_see_an_adapter_import() -> None:
    script = (
        "import sys, json; import rollout_monitor.wiring; print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(  # noqa: S603  (our own interpreter and script)
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    assert "boto3" in loaded
    assert "httpx" in loaded
