"""`rollout-monitor` against a running stack (issue 15): every subcommand as a subprocess, the
stack found by name from its outputs, the local stack's moto server as its AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from rollout_monitor_local.control.shapes import HistoryReport, StatusReport
from rollout_monitor_local.devstack import DevStack

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
VERSIONS = "orgs/my-org/models/llama-3.3-70b/versions"
ENDPOINT = "my-org-llama-3.3-70b"
WAIT = "120"  # real seconds: an upper bound only; the stack finishes in a few


@dataclass
class Running:
    stack: DevStack

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "rollout_monitor_local.cli", *args]
        if "--aws-endpoint-url" not in args and env is None:
            command += ["--aws-endpoint-url", self.stack.moto_url]
        return subprocess.run(  # noqa: S603 (this interpreter, the test's own arguments)
            command,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return keep | {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@pytest.fixture
def running() -> Iterator[Running]:
    """A local stack stepping on its virtual clock in the background, as `local --keep-running`."""
    with DevStack(stall_after=3600) as stack:
        stop = threading.Event()

        def steps() -> None:
            while not stop.wait(0.05):
                stack.step()

        thread = threading.Thread(target=steps, daemon=True)
        thread.start()
        try:
            yield Running(stack)
        finally:
            stop.set()
            thread.join()


def test_deploy_wait_exit_codes_history_and_undo(running: Running) -> None:
    done = running.run(
        "deploy", "--endpoint", ENDPOINT, "--model", f"{VERSIONS}/succeeds", "--wait",
        "--timeout", WAIT, "--poll-seconds", "0.2", "--request-id", "cli-good",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Deployment Submitted" in done.stdout
    assert "rollout done" in done.stdout

    failed = running.run(
        "deploy", "--endpoint", ENDPOINT, "--model", f"{VERSIONS}/errors", "--wait",
        "--timeout", WAIT, "--poll-seconds", "0.2", "--reason", "try the new one",
    )  # fmt: skip
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "rollout error" in failed.stdout

    history = running.run("history", "--endpoint", ENDPOINT, "--json")
    assert history.returncode == 0, history.stderr
    jsonschema.validate(json.loads(history.stdout), json.loads(_documented("history")))
    report = HistoryReport.model_validate_json(history.stdout)
    newest, older = report.deployments[:2]
    assert (newest.rollout.status, older.rollout.status) == ("error", "done")
    assert newest.rollout.reason == "try the new one"
    assert [t.status for t in older.transitions] == [
        "not_started", "in_progress", "done",
    ]  # fmt: skip
    assert [t.sequence for t in older.transitions] == sorted(t.sequence for t in older.transitions)
    text = running.run("history", "--deployment", older.rollout.deployment_id)
    assert "not_started -> in_progress" in text.stdout

    undo = running.run(
        "undo", "--endpoint", ENDPOINT, "--wait", "--timeout", WAIT, "--poll-seconds", "0.2"
    )
    assert undo.returncode == 0, undo.stdout + undo.stderr
    good = f"{VERSIONS}/{older.rollout.version_id}"  # the version itself, not its alias
    assert good in undo.stdout
    latest = HistoryReport.model_validate_json(
        running.run("history", "--endpoint", ENDPOINT, "--json", "--limit", "1").stdout
    ).deployments[0]
    assert latest.rollout.model == good
    assert latest.rollout.status == "done"
    assert (latest.rollout.reason or "").startswith("undo: back to")


def test_deploy_rejected_and_timeout_exit_codes(running: Running) -> None:
    stalls = running.run(
        "deploy", "--endpoint", ENDPOINT, "--model", f"{VERSIONS}/stalls", "--wait",
        "--timeout", "3", "--poll-seconds", "0.2",
    )  # fmt: skip
    assert stalls.returncode == 3, stalls.stdout + stalls.stderr  # it never ends: no race
    assert "timed out" in stalls.stdout
    busy = running.run(
        "deploy", "--endpoint", ENDPOINT, "--model", f"{VERSIONS}/succeeds",
        "--timeout", WAIT, "--poll-seconds", "0.2",
    )  # fmt: skip
    assert busy.returncode == 2, busy.stdout + busy.stderr
    assert "Deployment Rejected (endpoint_busy)" in busy.stdout
    invalid = running.run("deploy", "--endpoint", "../etc", "--model", "latest")
    assert invalid.returncode == 2
    assert "not sent" in invalid.stdout

    status = running.run("status", "--json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    jsonschema.validate(document, json.loads(_documented("status")))
    report = StatusReport.model_validate(document)
    assert [r.model for r in report.in_flight] == [f"{VERSIONS}/stalls"]
    table = running.run("status", "--endpoint", ENDPOINT)
    assert "stalls" in table.stdout


def test_a_wrong_stack_region_or_credentials_is_one_line_and_exit_4(running: Running) -> None:
    no_stack = running.run("status", "--stack", "not-this-one")
    wrong_region = running.run("status", "--region", "eu-west-3")
    env = {k: v for k, v in running.env().items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    no_credentials = running.run(
        "status", "--aws-endpoint-url", running.stack.moto_url, "--region", "us-east-1", env=env
    )
    for result, says in (
        (no_stack, "no stack 'not-this-one'"),
        (wrong_region, "in eu-west-3"),
        (no_credentials, "no AWS credentials"),
    ):
        assert result.returncode == 4, result.stderr
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert says in result.stderr


def _documented(name: str) -> str:
    doc = (ROOT / "docs" / "cli.md").read_text()
    start = doc.index(f"```json {name}-schema\n") + len(f"```json {name}-schema\n")
    return doc[start : doc.index("```", start)]


def test_release_wait_uploads_once_waits_for_the_sync_and_deploys(running: Running) -> None:
    simulator = running.stack.simulator
    assert simulator is not None
    released = running.run(
        "release", "--org", "my-org", "--arch", "llama-3.3-70b",
        "--weights", "s3://weights-bucket/ft-cli", "--alias", "ft-cli", "--endpoint", ENDPOINT,
        "--wait", "--timeout", WAIT, "--poll-seconds", "0.2", "--request-id", "cli-release",
    )  # fmt: skip
    assert released.returncode == 0, released.stdout + released.stderr
    assert "waiting for the model version's sync" in released.stdout
    assert "Deployment Submitted" in released.stdout
    assert "rollout done" in released.stdout
    assert simulator.count("POST", "models:upload") == 1

    failed = running.run(
        "release", "--org", "my-org", "--arch", "llama-3.3-70b",
        "--weights", "s3://weights-bucket/sync-fails/ft", "--endpoint", ENDPOINT,
        "--wait", "--timeout", WAIT, "--poll-seconds", "0.2",
    )  # fmt: skip
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "Deployment Rejected (version_not_ready)" in failed.stdout
    assert simulator.count("POST", ":deployModel") == 1  # the first release's

    invalid = running.run(
        "release", "--org", "my-org", "--arch", "llama-3.3-70b", "--weights", "http://nope",
        "--endpoint", ENDPOINT,
    )  # fmt: skip
    assert invalid.returncode == 2, invalid.stdout + invalid.stderr
    assert "weight_uri" in invalid.stdout
