"""`rollout-monitor deploy` and `undo` against what the deploy function really wrote (issue 15):
a reused request id, and a version asked for by an alias that has moved since."""

from __future__ import annotations

import pytest

from rollout_monitor_local.cli import main
from tests.integration.conftest import World

ENDPOINT = "my-org-llama-3.3-70b"
VERSIONS = "orgs/my-org/models/llama-3.3-70b/versions"


def _until_it_ends(world: World) -> None:
    for _ in range(30):
        world.clock.advance(10)
        world.poll()


def test_a_request_id_reused_for_other_content_is_a_conflict_not_the_first_deployment(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    first = world.deploy("succeeds", request_id="ci-run-1")
    _until_it_ends(world)
    capsys.readouterr()

    code = main(
        ["deploy", "--endpoint", ENDPOINT, "--model", f"{VERSIONS}/errors",
         "--request-id", "ci-run-1", "--wait", "--timeout", "0"]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 2, out
    assert "request_id_conflict" in out
    assert f"Deployment Submitted: {first}" not in out


def test_undo_redeploys_the_version_that_ended_done_even_if_its_alias_moved(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    versions = world.simulator.versions[("my-org", "llama-3.3-70b")]
    good = next(v for v in versions.values() if "succeeds" in v.aliases)
    bad = next(v for v in versions.values() if "errors" in v.aliases)
    good.aliases.append("stable")
    world.deploy("stable")
    _until_it_ends(world)
    good.aliases.remove("stable")
    bad.aliases.append("stable")  # promoted: `stable` now names the version that fails
    world.deploy("stable")
    _until_it_ends(world)
    capsys.readouterr()

    code = main(["undo", "--endpoint", ENDPOINT, "--timeout", "0"])

    out = capsys.readouterr().out
    assert code in {0, 3}, out  # requested (the local bus delivers nothing here)
    assert f"Deploy Requested: {VERSIONS}/{good.version_id} to {ENDPOINT}" in out


def test_undo_does_not_redeploy_the_latest_version_under_another_name(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    versions = world.simulator.versions[("my-org", "llama-3.3-70b")]
    succeeds = next(v for v in versions.values() if "succeeds" in v.aliases)
    world.deploy(str(succeeds.version_id))
    _until_it_ends(world)
    world.deploy("succeeds")  # the same version, by its alias
    _until_it_ends(world)
    capsys.readouterr()

    code = main(["undo", "--endpoint", ENDPOINT, "--timeout", "0"])

    out = capsys.readouterr().out
    assert code == 2, out
    assert "nothing to undo" in out
