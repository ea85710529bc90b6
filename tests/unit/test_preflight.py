"""`make deploy` stops before its first AWS call, with one line, when AWS is not configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout_monitor_local import preflight, samconfig


@pytest.fixture
def samconfig_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text('version = 0.1\n[default.deploy.parameters]\nstack_name = "rollout-monitor"\n')
    monkeypatch.setattr(samconfig, "SAMCONFIG", path)
    return path


def test_no_credentials_stops_with_one_line(
    no_aws_credentials: None, samconfig_toml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert preflight.main() == 1
    assert capsys.readouterr() == (
        "",
        "no AWS credentials found: configure them with `aws configure` or "
        "AWS_PROFILE/AWS_ACCESS_KEY_ID, then rerun make deploy\n",
    )


def test_credentials_without_a_region_stop_with_one_line(
    no_aws_credentials: None,
    samconfig_toml: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    assert preflight.main() == 1
    assert capsys.readouterr().err == (
        "no AWS region set: run `aws configure set region <region>` or set AWS_DEFAULT_REGION, "
        "then rerun make deploy\n"
    )


def test_a_region_saved_by_the_guided_deploy_is_enough(
    no_aws_credentials: None,
    samconfig_toml: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    samconfig_toml.write_text(samconfig_toml.read_text() + 'region = "eu-west-1"\n')
    assert preflight.main() == 0
    assert capsys.readouterr() == ("", "")


def test_an_unknown_profile_stops_with_one_line(
    no_aws_credentials: None,
    samconfig_toml: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    assert preflight.main() == 1
    assert capsys.readouterr().err == (
        "AWS configuration unusable (The config profile (nobody) could not be found): "
        "fix it, then rerun make deploy\n"
    )
