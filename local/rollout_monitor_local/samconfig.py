"""What ``samconfig.toml`` says about the deployed stack: its name, and where `make deploy` sent it.

Only the ``default`` environment is read, as ``sam deploy`` without ``--config-env`` does:
``deploy`` parameters over ``global`` ones.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"
DEFAULT_STACK_NAME = "rollout-monitor"


def deploy_parameters(path: Path | None = None) -> dict[str, Any]:
    """``[default.global.parameters]`` overlaid with ``[default.deploy.parameters]``."""
    path = path or SAMCONFIG
    if not path.is_file():
        return {}
    default = tomllib.loads(path.read_text()).get("default", {})
    parameters: dict[str, Any] = {}
    for command in ("global", "deploy"):
        parameters |= default.get(command, {}).get("parameters", {})
    return parameters


def stack_name(path: Path | None = None) -> str:
    return str(deploy_parameters(path).get("stack_name", DEFAULT_STACK_NAME))


def setting(key: str, path: Path | None = None) -> str | None:
    """``region`` or ``profile`` as a guided deploy saved it, if it did."""
    value = deploy_parameters(path).get(key)
    return str(value) if value else None
