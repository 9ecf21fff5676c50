"""Standard input and output as ffmpeg's users pipe them: ``ffmpeg ... -f matroska - |
hdm-stream run - -o - -f matroska | ffplay -``, with real processes and pipes (nothing seeks);
stdout carries the stream alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import pytest

from streamer.service.config import HttpSettings, StreamSpec
from streamer.service.guard import Refused, confine
from streamer.sources.video import SourceKind, classify
from tests.streamer.camera_clips import FFMPEG, TONE, needs_ffmpeg
from tests.streamer.commands import run
from tests.streamer.signalled import ROOT

pytestmark = needs_ffmpeg


def piped(feed: list[str], args: list[str]) -> tuple[int, bytes, str]:
    """``ffmpeg FEED - | run_stream.py - ARGS``: (exit code, its stdout, its stderr)."""
    assert FFMPEG is not None
    source = subprocess.Popen([FFMPEG, "-v", "error", *feed, "-"], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL)
    try:
        done = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), "-", *args,
                               "--model", "dcp", "--quiet"], stdin=source.stdout,
                              capture_output=True, timeout=60, check=False)
    finally:
        assert source.stdout is not None
        source.stdout.close()
        source.wait(timeout=10)
    return done.returncode, done.stdout, done.stderr.decode()


@pytest.mark.slow
def test_matroska_through_stdin_and_stdout_keeps_every_frame_and_the_sound(
        tmp_path: Path) -> None:
    video = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2"]
    code, out, err = piped([*video, *TONE, "-c:v", "libx264", "-c:a", "aac", "-f", "matroska"],
                           ["-o", "-", "-f", "matroska"])
    assert code == 0, err
    assert "wrote stdout" in err
    received = tmp_path / "received.mkv"
    received.write_bytes(out)  # what ffplay would have read: the stream alone
    with av.open(str(received)) as container:
        assert container.format.name.startswith("matroska")
        assert len(list(container.decode(video=0))) == 50
        assert container.streams.audio[0].codec_context.name == "aac"
    # MPEG-TS in, an MP4 out to a pipe: fragmented, so nothing seeks back
    code, out, err = piped([*video, "-c:v", "libx264", "-f", "mpegts"], ["-o", "-", "-f", "mp4"])
    assert code == 0, err
    received.with_suffix(".mp4").write_bytes(out)
    with av.open(str(received.with_suffix(".mp4"))) as container:
        assert len(list(container.decode(video=0))) == 50


def test_a_pipe_needs_its_format_and_stdin_is_a_local_source(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("lavfi:testsrc2=d=1", "-o", "-") == 2
    assert "is a pipe, with no extension to choose its container: give one with -f" in \
        capsys.readouterr().err
    assert run("lavfi:testsrc2=d=1", "-o", "-", "-f", "nosuchmuxer") == 2
    assert "format 'nosuchmuxer' is not a muxer" in capsys.readouterr().err
    # serve's HTTP API takes no local source: standard input and sequences are local
    assert classify("-") is SourceKind.PIPE and classify("pipe:0") is SourceKind.PIPE
    assert classify(str(tmp_path / "%05d.png")) is SourceKind.SEQUENCE
    for source in ("-", str(tmp_path / "%05d.png")):
        with pytest.raises(Refused, match="local files are not accepted"):
            confine(StreamSpec(id="x", input=source), HttpSettings())
