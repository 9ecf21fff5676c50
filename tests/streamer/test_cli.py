"""The command line: real runs on made clips, one-line errors with exit code 2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from streamer.cli import main
from tests.streamer.clips import audio_packets, decoded_pts, write_clip
from tests.streamer.signalled import signalled_run

ROOT = Path(__file__).resolve().parents[2]


def test_run_enhances_a_file_and_writes_the_summary(tmp_path: Path) -> None:
    src, dst, summary = tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "s.json"
    written = write_clip(src, frames=10)
    code = main(["run", str(src), "-o", str(dst), "--model", "dcp", "--quiet",
                 "--summary-json", str(summary), "--crf", "30", "--preset", "ultrafast"])
    assert code == 0
    assert decoded_pts(dst) == written and audio_packets(dst) == audio_packets(src)
    text = summary.read_text()
    assert '"frames_out": 10' in text and '"p99"' in text and '"flicker"' in text


def test_run_stream_script_reads_a_lavfi_source(tmp_path: Path) -> None:
    dst = tmp_path / "bars.mkv"
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_stream.py"), "lavfi:testsrc2=size=96x64:rate=10:d=1",
         "-o", str(dst), "--task", "lowlight", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "frames: 10 in, 10 out" in result.stderr
    assert "latency (decoded to written): p50" in result.stderr
    with av.open(str(dst)) as container:
        assert len(list(container.decode(video=0))) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.mp4", "-o", "x.mp4"], "input file not found: missing.mp4"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--codec", "nocodec"], "not an encoder"),
        (["run", "lavfi:testsrc2=d=1", "--publish", "tcp://256.1.1.1:9"], "cannot bind"),
        (["run", "lavfi:testsrc2=d=1"], "give an output file"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--model", "hdm"], "are for 'hdm-s'"),
        (["run", "lavfi:nosuchfilter", "-o", "x.mp4"], "cannot open"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--device", "cuda"], "no CUDA GPU"),
        (["run", "lavfi:testsrc2=d=1", "-o", "/no/such/dir/x.mp4"], "output folder does not"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--batch", "0"], "size must be >= 1"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--max-frames", "0"], "max_frames must be"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--codec", "aac"], "encodes audio"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.unknownext"], "no muxer for the extension"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--weights", __file__], "cannot be read as"),
        (["run", "lavfi:testsrc2=d=1", "-o", "x.mp4", "--strength", "2"], "strength must be"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and message in err[0]
    assert "Traceback" not in capsys.readouterr().err


def test_bad_config_key_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("encode: {crff: 20}\n")
    assert main(["run", "--config", str(config)]) == 2
    assert "unknown config key 'encode.crff'" in capsys.readouterr().err


def test_subscribe_gives_up_after_its_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "tcp://127.0.0.1:1", "--timeout", "0.2"]) == 1
    assert "no message" in capsys.readouterr().err


def interrupt_once_frames_flow(args: list[str], signum: int, after_s: float = 2.0
                              ) -> tuple[int, str]:
    """Start ``run_stream.py ARGS``, send ``signum`` ``after_s`` after frames flow; (exit code,
    stderr)."""
    code, err, _ = signalled_run(args, [(after_s, signum)])
    return code, err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_finish_a_playable_file(tmp_path: Path, signum: int) -> None:
    dst = tmp_path / "interrupted.mp4"
    code, err = interrupt_once_frames_flow(
        ["lavfi:testsrc2=size=160x120:rate=25,realtime", "-o", str(dst), "--model", "dcp"],
        signum)
    assert code == 128 + signum, err
    out_line = next(line for line in err.splitlines() if line.startswith("frames:"))
    frames_out = int(out_line.split(" in, ")[1].split(" out")[0])
    assert "[interrupted]" in out_line and frames_out > 10
    with av.open(str(dst)) as container:
        assert len(list(container.decode(video=0))) == frames_out


@pytest.mark.slow
def test_one_ctrl_c_ends_a_push_run_whose_consumer_is_gone(tmp_path: Path) -> None:
    """Lossless push mode blocks for its consumer; when none comes, one Ctrl-C still ends the
    run (after the drain grace) with its summary, counting the frames nobody took."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    code, err = interrupt_once_frames_flow(
        ["lavfi:testsrc2=size=160x120:rate=25,realtime", "--publish", f"tcp://127.0.0.1:{port}",
         "--publish-mode", "push", "--model", "dcp"], signal.SIGINT)
    assert code == 130, err
    assert "not published:" in err and "frames:" in err
    assert time.monotonic() - started < 45


@pytest.mark.slow
def test_an_mp4_killed_mid_run_plays_up_to_where_it_stopped(tmp_path: Path) -> None:
    """SIGKILL leaves no chance to write an index: the fragmented MP4 needs none."""
    dst = tmp_path / "killed.mp4"
    code, err = interrupt_once_frames_flow(
        ["lavfi:testsrc2=size=160x120:rate=25,realtime", "-o", str(dst), "--model", "dcp"],
        signal.SIGKILL, after_s=4.0)
    assert code == -signal.SIGKILL, err
    with av.open(str(dst)) as container:
        # 4 s at 25 fps, a fragment at each keyframe (2 s), less what the encoder still held
        assert len(list(container.decode(video=0))) >= 25


def test_frames_too_large_for_the_engine_are_refused_up_front(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "small.yaml"
    config.write_text("model: {max_megapixels: 0.01}\n")  # 0.01 MP: 160x120 is 0.0192
    code = main(["run", "lavfi:testsrc2=size=160x120:rate=25:d=1", "-o",
                 str(tmp_path / "o.mp4"), "--model", "dcp", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "160x120 (0.0192 MP) are larger than this engine takes" in err, err


def test_an_existing_output_is_kept_unless_overwrite_is_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "kept.mkv"
    output.write_bytes(b"precious")
    args = ["run", "lavfi:testsrc2=size=64x48:rate=10:d=0.3", "-o", str(output), "--model",
            "dcp", "--quiet"]
    assert main(args) == 2
    assert "exists; pass -y" in capsys.readouterr().err and output.read_bytes() == b"precious"
    assert main([*args, "-y"]) == 0
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


def test_version_names_the_libraries(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("hdm-stream ") and "PyAV" in out and "torch" in out
