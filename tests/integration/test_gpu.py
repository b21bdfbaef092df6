"""GPU auto-detection on this machine (no GPU): decided off, with the reason, at start-up."""

from __future__ import annotations

from tests.harness import Hub


def test_auto_detection_says_off_and_why(hub: Hub) -> None:
    lines = [line for line in hub.log_path.read_text().splitlines() if "GPU support:" in line]
    assert len(lines) == 1, lines
    assert "GPU support: off (auto-detect: the engine has no nvidia runtime and no CDI GPU" in lines[0]
