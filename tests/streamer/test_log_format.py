"""``--log-format json``: every line on stderr a JSON object, the final error too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_final_error_is_a_json_line_too(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "--log-format", "json", "run",
         str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "out.mp4"), "--model", "dcp"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    last = lines[-1]
    assert last["level"] == "error" and last["kind"] == "SourceError"
    assert "missing.mp4" in last["message"] and not last["message"].startswith("error")
