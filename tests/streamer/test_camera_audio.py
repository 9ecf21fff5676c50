"""Audio as cameras send it (issue 20, item 3), in files made by FFmpeg's command line and run
through ``hdm-stream run``: copied where the container holds it (ADTS AAC of an MPEG-TS camera
into MP4 too), G.711 and ADPCM decoded to PCM of the same samples where it does not, refused
in one line naming the containers that can, or transcoded with ``--audio-codec``; several
tracks keep their titles, languages and dispositions."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from streamer.config import RunConfig, build
from streamer.errors import ConfigError
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.tracks import CopiedTrack, holds
from tests.streamer.camera_clips import VIDEO, ffmpeg, needs_ffmpeg, video_packets
from tests.streamer.commands import run

pytestmark = needs_ffmpeg


def _tone(rate: int, seconds: float = 1) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]


def _clip(path: Path, codec: str, rate: int = 48_000, *more: str) -> Path:
    """H.264 and one audio track of ``codec``."""
    ffmpeg(*VIDEO, *_tone(rate), "-c:v", "libx264", "-c:a", codec, *more, path)
    return path


def _ts_camera(path: Path) -> Path:
    """An IP camera's MPEG-TS: H.264 and AAC in ADTS form (no codec config in the header)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-f", "lavfi",
           "-i", "sine=duration=2", "-c:v", "libx264", "-c:a", "aac", path)
    return path


def _audio(path: Path, index: int = 0) -> tuple[str, np.ndarray]:
    """The codec and every decoded sample (interleaved) of audio track ``index``."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        name = stream.codec_context.codec.canonical_name
    planar = [f.T.reshape(-1) for f in frames]
    return name, np.concatenate(planar)


def _lines(err: str, word: str) -> list[str]:
    return [line for line in err.splitlines() if word in line]


@pytest.mark.parametrize(("into", "more"), [
    ("mp4", ["--muxer-opt", "movflags=+frag_keyframe+empty_moov"]),  # the bug as reported
    ("mp4", []), ("mov", []), ("mkv", [])])
def test_adts_aac_from_mpegts_is_copied_into_mp4_mov_and_matroska(
        tmp_path: Path, into: str, more: list[str]) -> None:
    """Today's main: "cannot write out.mp4: Operation not permitted" (FFmpeg's MP4 muxer
    refuses ADTS packets); the same AAC frames now, in MP4's form with their config."""
    src = _ts_camera(tmp_path / "camera.ts")
    dst = tmp_path / f"out.{into}"
    assert run(src, "-o", dst, *more) == 0
    assert video_packets(dst) == 50
    name, samples = _audio(dst)
    assert name == "aac"
    assert np.array_equal(samples, _audio(src)[1])  # the same frames, decoded alike
    with av.open(str(dst)) as out:
        assert out.streams.audio[0].codec_context.extradata  # the config a player needs


@pytest.mark.slow
def test_adts_aac_survives_segments_and_their_join(tmp_path: Path) -> None:
    src = _ts_camera(tmp_path / "camera.ts")
    dst = tmp_path / "out.mp4"
    assert run(src, "-o", dst, "--segment-seconds", "1", "--preroll", "4") == 0
    assert np.array_equal(_audio(dst)[1], _audio(src)[1])


@pytest.mark.parametrize(("codec", "rate"), [("pcm_alaw", 8000), ("pcm_mulaw", 8000),
                                         ("adpcm_ms", 16_000), ("adpcm_g722", 16_000)])
def test_g711_and_adpcm_into_matroska_are_the_same_samples_in_pcm(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, rate: int) -> None:
    """A security camera's G.711 in Matroska, as the ffmpeg tool writes it (A_MS/ACM): it was
    refused ("a matroska file cannot hold the input's audio pcm_alaw"). PyAV's muxer takes no
    ACM track, Matroska's own PCM is what every player reads: the decoded samples, exactly."""
    src = _clip(tmp_path / "camera.mkv", codec, rate)
    dst = tmp_path / "out.mkv"
    assert run(src, "-o", dst) == 0
    name, samples = _audio(dst)
    assert name == "pcm_s16le"
    assert np.array_equal(samples, _audio(src)[1])
    said = _lines(capsys.readouterr().err, "same samples")
    assert len(said) == 1 and codec in said[0] and "stream #1" in said[0]


@pytest.mark.parametrize("into", ["mov", "avi"])
def test_g711_is_copied_where_the_container_holds_it(tmp_path: Path, into: str) -> None:
    from tests.streamer.clips import audio_packets

    src = _clip(tmp_path / "camera.mkv", "pcm_alaw", 8000)
    dst = tmp_path / f"out.{into}"
    assert run(src, "-o", dst) == 0
    assert _audio(dst)[0] == "pcm_alaw"
    assert audio_packets(dst) == audio_packets(src)


def test_block_adpcm_into_avi_is_pcm_not_a_mistimed_copy(tmp_path: Path) -> None:
    """A dashcam's AVI with IMA ADPCM: FFmpeg's AVI muxer times a copy by bytes at the nominal
    bit rate, and the run failed ("non monotonically increasing dts"); the ffmpeg tool's copy
    reads back half as long again. PCM of the same samples keeps the time."""
    src = tmp_path / "dashcam.avi"
    ffmpeg(*VIDEO, *_tone(48_000), "-c:v", "mjpeg", "-c:a", "adpcm_ima_wav", src)
    dst = tmp_path / "out.avi"
    assert run(src, "-o", dst) == 0
    name, samples = _audio(dst)
    assert name == "pcm_s16le"
    assert np.array_equal(samples, _audio(src)[1])


@pytest.mark.parametrize(("codec", "into"), [("pcm_s16le", "ts"), ("pcm_alaw", "ts"),
                                         ("flac", "ts"), ("aac", "webm")])
def test_audio_a_container_cannot_hold_is_one_line_naming_those_that_can(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, into: str) -> None:
    """PCM, G.711 and FLAC into MPEG-TS had been written as private data (exit 0: a file that
    reads back with no sound); now refused like AAC into WebM."""
    src = _clip(tmp_path / "camera.mkv", codec, 8000 if codec == "pcm_alaw" else 48_000)
    dst = tmp_path / f"out.{into}"
    assert run(src, "-o", dst) == 2
    assert not dst.exists()
    err = capsys.readouterr().err
    (line,) = _lines(err, "cannot hold")
    assert codec in line and "stream #1" in line and ".mkv" in line
    assert "--audio-codec aac" in line and "Traceback" not in err


def test_holds_reads_audio_back_as_sound(tmp_path: Path) -> None:
    """MPEG-TS takes a PCM header but gives the track back as data: not held; AAC is."""
    pcm = _clip(tmp_path / "pcm.mkv", "pcm_s16le")
    aac = _clip(tmp_path / "aac.mkv", "aac")
    with av.open(str(pcm)) as a, av.open(str(aac)) as b:
        assert not holds("mpegts", lambda c: CopiedTrack.add(c, a.streams.audio[0]))
        assert holds("mpegts", lambda c: CopiedTrack.add(c, b.streams.audio[0]))
        assert holds("matroska", lambda c: CopiedTrack.add(c, a.streams.audio[0]))


@pytest.mark.slow
def test_audio_codec_aac_transcodes_every_track(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """G.711 into MPEG-TS with ``--audio-codec aac``: AAC of the same length and start (one
    AAC frame of priming); into WebM, which holds no AAC, one line."""
    src = _clip(tmp_path / "camera.mkv", "pcm_alaw", 8000)
    dst = tmp_path / "out.ts"
    assert run(src, "-o", dst, "--audio-codec", "aac") == 0
    with av.open(str(dst)) as out:
        audio = out.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.sample_rate == 8000
        samples = sum(f.samples for f in out.decode(audio))
    assert 8000 <= samples <= 8000 + 2 * 1024
    assert run(src, "-o", tmp_path / "out.webm", "--audio-codec", "aac") == 2
    (line,) = _lines(capsys.readouterr().err, "cannot hold")
    assert "webm" in line and "aac" in line


def test_audio_codec_is_checked_when_settings_load() -> None:
    with pytest.raises(ConfigError, match="audio_codec 'libx264' encodes video"):
        EncodeSettings(audio_codec="libx264")
    with pytest.raises(ConfigError, match="audio_codec 'nope' is not an encoder"):
        build(RunConfig, {"encode": {"audio_codec": "nope"}})
    assert build(RunConfig, {"encode": {"audio_codec": "aac"}}).encode.audio_codec == "aac"


def _two_tracks(path: Path) -> Path:
    """A screen recording's two tracks: the mix (English, default) and a commentary."""
    ffmpeg(*VIDEO, *_tone(48_000), "-f", "lavfi", "-i", "sine=frequency=220:duration=1",
           "-map", "0", "-map", "1", "-map", "2", "-c:v", "libx264", "-c:a:0", "aac",
           "-c:a:1", "ac3", "-metadata:s:a:0", "title=Game", "-metadata:s:a:0",
           "language=eng", "-metadata:s:a:1", "title=Commentary", "-metadata:s:a:1",
           "language=fra", "-disposition:a:0", "default", "-disposition:a:1", "comment", path)
    return path


def _labels(path: Path) -> list[tuple[str, str, str, bool, bool]]:
    with av.open(str(path)) as container:
        return [(s.codec_context.name, s.metadata.get("title", s.metadata.get("name", "")),
                 s.metadata.get("language", ""), bool(s.disposition & s.disposition.default),
                 bool(s.disposition & s.disposition.comment))
                for s in container.streams.audio]


@pytest.mark.slow
def test_several_tracks_keep_titles_languages_and_dispositions(tmp_path: Path) -> None:
    """Matroska had lost every disposition (no default track, no commentary), MP4 its
    commentary; a title from MP4 (read back as ``name``) had not become Matroska's title."""
    src = _two_tracks(tmp_path / "screen.mkv")
    expected = [("aac", "Game", "eng", True, False), ("ac3", "Commentary", "fra", False, True)]
    assert _labels(src) == expected
    for into in ("mkv", "mp4"):
        assert run(src, "-o", tmp_path / f"out.{into}") == 0
        assert _labels(tmp_path / f"out.{into}") == expected
    assert run(tmp_path / "out.mp4", "-o", tmp_path / "back.mkv") == 0
    with av.open(str(tmp_path / "back.mkv")) as back:
        assert [s.metadata.get("title") for s in back.streams.audio] == ["Game", "Commentary"]
    assert run(src, "-o", tmp_path / "aac.mkv", "--audio-codec", "aac") == 0
    assert [label[1:] for label in _labels(tmp_path / "aac.mkv")] == [e[1:] for e in expected]

