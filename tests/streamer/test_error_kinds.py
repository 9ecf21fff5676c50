"""Each error a user can cause is the specific class, never the root StreamerError (issue 22,
4), and the command line prints what was a raw OSError or ZMQError as one line, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamer.cli import main
from streamer.cli.main import build_parser
from streamer.cli.run import config_from_args
from streamer.cli.train import evaluate
from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import ConfigError, JobError, SinkError, StreamerError
from streamer.jobs.job import JobSettings, run_job
from streamer.jobs.lock import JobLock, JobLockedError
from streamer.jobs.manifest import Manifest, check_folder
from streamer.jobs.ray_workers import _check_reachable
from streamer.runtime.pipeline import Pipeline
from streamer.sinks.encoder import EncodeSettings
from streamer.sources.video import VideoSource
from tests.streamer.clips import write_clip


def _run_flags(*argv: str) -> Callable[[Path, Engine], object]:
    return lambda tmp, engine: config_from_args(build_parser().parse_args(["run", *argv]))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A clip, an output that exists, a link, and a plain file, in the current folder."""
    write_clip(tmp_path / "in.mp4", frames=2, audio=False)
    (tmp_path / "taken.mp4").write_bytes(b"precious")
    (tmp_path / "x.hdm-job").symlink_to(tmp_path)
    (tmp_path / "a_file").write_bytes(b"")
    return tmp_path


CASES: list[tuple[str, Callable[[Path, Engine], object], type[StreamerError]]] = [
    ("output over the input", lambda tmp, engine: Pipeline(
        VideoSource(str(tmp / "in.mp4")), engine, output=(tmp / "in.mp4", EncodeSettings())),
     ConfigError),
    ("nothing to do", lambda tmp, engine: Pipeline(VideoSource(str(tmp / "in.mp4")), engine),
     ConfigError),
    ("no output", _run_flags("lavfi:testsrc2=d=1"), ConfigError),
    ("output exists", _run_flags("lavfi:testsrc2=d=1", "-o", "taken.mp4"), ConfigError),
    ("no eval data", lambda tmp, engine: evaluate(build_parser().parse_args(
        ["eval", "--task", "dehaze", "--data", "none"])), ConfigError),
    ("segments of a stream", lambda tmp, engine: run_job(
        RunConfig(), "udp://127.0.0.1:9", tmp / "o.mp4", JobSettings(), lambda: engine),
     ConfigError),
    ("a job folder in the way", lambda tmp, engine: check_folder(tmp / "x.hdm-job"),
     ConfigError),
    ("Ray out of reach", lambda tmp, engine: _check_reachable("127.0.0.1:1"), JobError),
    ("job folder cannot be made",
     lambda tmp, engine: JobLock(tmp / "a_file" / "x.hdm-job").acquire(), SinkError),
    ("manifest cannot be written", lambda tmp, engine: Manifest(tmp / "no-folder", {}, "").save(),
     SinkError),
]


@pytest.mark.parametrize(("action", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_user_mistake_raises_its_specific_class(
    files: Path, classical_engine: Engine, monkeypatch: pytest.MonkeyPatch,
    action: Callable[[Path, Engine], object], expected: type[StreamerError],
) -> None:
    monkeypatch.chdir(files)
    with pytest.raises(StreamerError) as caught:
        action(files, classical_engine)
    assert type(caught.value) is expected, caught.value


def test_a_locked_job_is_a_job_error() -> None:
    assert issubclass(JobLockedError, JobError)


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "lavfi:testsrc2=d=0.2", "-o", "o.mp4", "--model", "dcp", "--quiet",
      "--summary-json", "missing/s.json"], "cannot write missing/s.json"),
    (["subscribe", "tcp://127.0.0.1:9", "--save", "a_file/frames", "--timeout", "0.1"],
     "cannot make the folder a_file/frames"),
    (["subscribe", "no-such-endpoint", "--timeout", "0.1"], "cannot subscribe to"),
    (["subscribe", "tcp://127.0.0.1:9", "--curve-server-key", "missing.key"],
     "cannot subscribe to"),
    (["eval", "--task", "dehaze", "--data", ".", "--out", "a_file/eval"],
     "cannot make the folder a_file/eval"),
    (["train", "--task", "dehaze", "--paired", ".", "--out", "missing/w.safetensors"],
     "the folder of missing/w.safetensors does not exist"),
    (["eval", "--task", "derain", "--data", ".", "--out", "e", "--fit-window", "1/32"],
     "--fit-window is for dehazing, not derain"),
    (["eval", "--task", "dehaze", "--data", ".", "--out", "e", "--fit-window", "wide"],
     "--fit-window must be auto or a fraction"),
])
def test_files_a_flag_names_that_cannot_be_written_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    argv: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
