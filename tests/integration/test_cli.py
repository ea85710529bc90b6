"""`rollout-monitor local` plays its story and says whether it went as scripted."""

from __future__ import annotations

import pytest

from rollout_monitor_local.cli import main


def test_local_story_plays_as_scripted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "placeholder")  # restored after the test
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    assert main(["local"]) == 0
    out = capsys.readouterr().out
    assert "2 deployModel call(s), 4 event(s), 0 failure(s)" in out
    assert "the story played as scripted" in out
    assert out.count("<< Deployment Rejected") == 2
