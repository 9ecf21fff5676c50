"""A corpus of camera-shaped files (issue 20, 5), one small maker per kind of device, and what
one of them becomes when enhanced into a container: frames and their times, the streams kept
and those left out (with the warning that says so), the timecode and the tags a player or an
editor shows. Made with Debian's ffmpeg (PyAV where its CLI cannot: a display rotation, a
GoPro-style telemetry track); about 1 s each, tiny sizes. Shared by tests/streamer/
test_corpus.py and benchmarks/camera_corpus.py (the README's table).

An IP camera's RTSP stream is in it too: :func:`ip_camera_stream` is the clip, which
tests/streamer/rtsp_server.py serves from 127.0.0.1 as a camera does (the ffmpeg tool sends
it as RTP, a small RTSP server relays it over TCP), and tests/streamer/test_rtsp_camera.py
runs it (no ``ffmpeg -rtsp_flags listen``: that only receives a stream)."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.errors import StreamerError
from streamer.jobs.files import enhance
from tests.streamer.camera_clips import FFPROBE, ffmpeg

__all__ = ["CLIPS", "KNOWN_GAPS", "Clip", "Outcome", "ip_camera_stream", "make", "outcome"]

_SIZE = "size=160x120:rate=30:duration=1"
_VIDEO = ["-f", "lavfi", "-i", f"testsrc2={_SIZE}"]


def _tone(rate: int = 48_000, frequency: int = 440, seconds: float = 1) -> list[str]:
    return ["-f", "lavfi", "-i",
            f"sine=frequency={frequency}:sample_rate={rate}:duration={seconds}"]


def _pyav_video(path: Path, codec: str, pix_fmt: str, *, rotation: int = 0,
                hlg: bool = False, telemetry: bool = False) -> None:
    """What Debian's ffmpeg 5.1 cannot write: a display rotation (its ``rotate`` tag is gone,
    ``-display_rotation`` came in 6.0) and a binary telemetry track (GoPro's gpmd)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=30, options={"x265-params": "log-level=error"}
                               if codec == "libx265" else {})
        assert isinstance(video, av.VideoStream)
        video.width, video.height, video.pix_fmt = 160, 120, pix_fmt
        if hlg:  # BT.2020 primaries and matrix, the HLG transfer
            context = video.codec_context
            context.color_primaries, context.color_trc, context.colorspace = 9, 18, 9
        if rotation:
            video.set_display_rotation(rotation)
        data = out.add_data_stream("bin_data") if telemetry else None
        if data is not None:
            data.metadata["handler_name"] = "GoPro MET"
        out.start_encoding()
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(
                np.full((120, 160, 3), (i * 8, 90, 200 - i * 4), np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(video.encode(frame.reformat(format=pix_fmt)))
            if data is not None and i % 15 == 0:
                packet = av.Packet(b"DEVC" + bytes(60))
                packet.stream, packet.time_base = data, Fraction(1, 1000)
                packet.pts = packet.dts = i * 1000 // 30
                packet.duration = 500
                out.mux(packet)
        out.mux(video.encode())


def action_camera(path: Path) -> None:
    """H.264, AAC, a start timecode (tmcd) and GoPro-style telemetry (gpmd) in MP4."""
    _pyav_video(path.with_suffix(".video.mp4"), "libx264", "yuv420p", telemetry=True)
    ffmpeg("-i", path.with_suffix(".video.mp4"), *_tone(), "-map", "0", "-map", "1",
           "-c:v", "copy", "-c:d", "copy", "-c:a", "aac", "-metadata:s:d:0",
           "handler_name=GoPro MET", "-timecode", "01:00:00:00", path)


def phone(path: Path) -> None:
    """HEVC 10-bit HLG turned 90 degrees, AAC, make/model/location and a timecode in MOV."""
    _pyav_video(path.with_suffix(".video.mov"), "libx265", "yuv420p10le", rotation=90,
                hlg=True)
    ffmpeg("-i", path.with_suffix(".video.mov"), *_tone(), "-map", "0", "-map", "1",
           "-c:v", "copy", "-tag:v", "hvc1", "-c:a", "aac", "-metadata", "make=Apple",
           "-metadata", "model=iPhone 15 Pro", "-metadata", "location=+48.8584+002.2945/",
           "-metadata", "creation_time=2026-05-01T12:00:00Z", "-timecode", "12:34:56:00",
           path)


def drone(path: Path) -> None:
    """H.264 and its telemetry as a subtitle cue per frame (as DJI writes it) in MP4."""
    cues = path.with_suffix(".srt")

    def at(frame: int) -> str:
        return f"00:00:0{frame // 30},{frame % 30 * 1000 // 30:03d}"

    cues.write_text("".join(f"{i + 1}\n{at(i)} --> {at(i + 1)}\nF/2.8 SS 1/500 ISO 100 "
                            f"GPS (8.54{i:02d}, 47.3754, 412) H 35.2m\n\n" for i in range(30)))
    ffmpeg(*_VIDEO, "-i", cues, "-map", "0", "-map", "1", "-c:v", "libx264", "-c:s", "mov_text",
           "-metadata:s:s:0", "language=eng", path)


def screen_recording(path: Path) -> None:
    """Variable frame rate (frames dropped as a game or screen recorder does) and two AAC
    tracks with titles in Matroska, as OBS writes it."""
    ffmpeg(*_VIDEO, *_tone(), *_tone(frequency=220), "-map", "0", "-map", "1", "-map", "2",
           "-vf", r"select=lt(n\,10)+not(mod(n\,3))", "-fps_mode", "vfr", "-c:v", "libx264",
           "-c:a", "aac", "-metadata:s:a:0", "title=Game", "-metadata:s:a:1",
           "title=Microphone", path)


def ip_camera_mkv(path: Path) -> None:
    """HEVC and G.711 A-law at 8 kHz in Matroska, as a security camera records it."""
    ffmpeg(*_VIDEO, *_tone(8000), "-c:v", "libx265", "-x265-params", "log-level=error",
           "-c:a", "pcm_alaw", path)


def ip_camera_ts(path: Path) -> None:
    """H.264 and AAC (ADTS) at 25 fps in MPEG-TS, as a camera's stream is recorded."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", *_tone(),
           "-c:v", "libx264", "-c:a", "aac", path)


def ip_camera_stream(path: Path) -> None:
    """What an IP camera streams: H.264 without B-frames, a keyframe every second, and G.711
    A-law at 8 kHz, 2 s (in Matroska, for rtsp_server.py to send as RTP)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2", *_tone(8000, seconds=2),
           "-c:v", "libx264", "-bf", "0", "-g", "30", "-c:a", "pcm_alaw", path)


def webcam_mjpeg(path: Path) -> None:
    """MJPEG and 16 kHz PCM in AVI."""
    ffmpeg(*_VIDEO, *_tone(16_000), "-c:v", "mjpeg", "-c:a", "pcm_s16le", path)


def webcam_yuyv(path: Path) -> None:
    """Uncompressed YUYV 4:2:2 (what a webcam gives over V4L2) in AVI."""
    ffmpeg(*_VIDEO, "-c:v", "rawvideo", "-pix_fmt", "yuyv422", path)


def broadcast_mxf(path: Path) -> None:
    """Interlaced (top field first) anamorphic 16:9 MPEG-2 and PCM in MXF OP1a with a
    timecode."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=352x288:rate=25:duration=1", *_tone(),
           "-c:v", "mpeg2video", "-flags", "+ildct+ilme", "-top", "1", "-aspect", "16:9",
           "-c:a", "pcm_s16le", "-timecode", "10:00:00:00", path)


def broadcast_dv(path: Path) -> None:
    """PAL DV 16:9 (720x576, fixed by DV) with stereo PCM and a timecode in a raw DV stream;
    0.4 s."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:duration=0.4",
           *_tone(seconds=0.4), "-c:v", "dvvideo", "-pix_fmt", "yuv420p", "-aspect", "16:9",
           "-ac", "2", "-c:a", "pcm_s16le", "-timecode", "10:00:00:00", path)


def _intermediate(path: Path, size: str, *codec: str) -> None:
    """An editor's export: 4:2:2 10-bit, four mono 24-bit PCM tracks, a timecode, in MOV."""
    tones = [arg for f in (440, 550, 660, 880) for arg in _tone(frequency=f)]
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration=1", *tones,
           *[arg for i in range(5) for arg in ("-map", str(i))], *codec,
           "-pix_fmt", "yuv422p10le", "-c:a", "pcm_s24le", "-timecode", "01:00:00:00", path)


def prores(path: Path) -> None:
    _intermediate(path, "160x120", "-c:v", "prores_ks", "-profile:v", "2")


def dnxhr(path: Path) -> None:
    _intermediate(path, "256x144", "-c:v", "dnxhd", "-profile:v", "dnxhr_hqx")


@dataclass(frozen=True)
class Clip:
    kind: str
    name: str  # its file name: the container it comes in
    make: Callable[[Path], None]

    @property
    def into(self) -> tuple[str, ...]:
        """Its own container, then MP4 and Matroska."""
        return tuple(dict.fromkeys((Path(self.name).suffix[1:], "mp4", "mkv")))


CLIPS = (
    Clip("action camera", "action.mp4", action_camera),
    Clip("phone", "phone.mov", phone),
    Clip("drone", "drone.mp4", drone),
    Clip("screen/game recording", "screen.mkv", screen_recording),
    Clip("IP camera", "ipcam.mkv", ip_camera_mkv),
    Clip("IP camera", "ipcam.ts", ip_camera_ts),
    Clip("webcam", "webcam.avi", webcam_mjpeg),
    Clip("webcam", "yuyv.avi", webcam_yuyv),
    Clip("broadcast", "broadcast.mxf", broadcast_mxf),
    Clip("broadcast", "broadcast.dv", broadcast_dv),
    Clip("editing", "prores.mov", prores),
    Clip("editing", "dnxhr.mov", dnxhr),
)

_PRIMING = ("the first AAC frame's priming, 1024 samples before 0 (the edit list's), cannot "
            "start a Matroska track: FFmpeg's muxer shifts every stream by it, as the ffmpeg "
            "tool does (its fix, a CodecDelay, needs the codec parameters' initial_padding, "
            "which PyAV does not set); --muxer-opt avoid_negative_ts=disabled keeps the "
            "picture at 0, the priming before it")
# (file, into) -> (what Outcome.problems says, why): the corpus's known gaps, checked as they
# are, so that a gap closed (or another opened) fails the test until this table is updated.
KNOWN_GAPS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("action.mp4", "mkv"): (("pts: 30 frames moved, the first by +0.021 s",), _PRIMING),
    ("phone.mov", "mkv"): (("pts: 30 frames moved, the first by +0.021 s",), _PRIMING),
    ("phone.mov", "mp4"): (("tag lost: file make 'Apple' -> None",
                            "tag lost: file model 'iPhone 15 Pro' -> None"),
                           "MP4's iTunes-style tags have no make or model, as the ffmpeg "
                           "tool writes them (QuickTime's do: .mov keeps them; --muxer-opt "
                           "movflags=+use_metadata_tags writes every tag as a QuickTime key, "
                           "in a classic MP4: those movflags replace the fragmented one's)"),
    ("screen.mkv", "mp4"): (("tag lost: audio 1 title 'Game' -> None",
                             "tag lost: audio 2 title 'Microphone' -> None"),
                            "written as MP4's track name, as the ffmpeg tool writes it, which "
                            "FFmpeg 8.1 reads (as 'name') but Debian's ffprobe 5.1 does not "
                            "show"),
    ("broadcast.mxf", "mxf"): (("tag lost: video field_order 'tt' -> None",),
                               "MPEG-2 (auto into .mxf) codes fields only with each frame's "
                               "top-field-first flag, which PyAV cannot set: written "
                               "progressive; .mp4 and .mkv (H.264) keep the fields"),
}

# A container's own tags, not the camera's (ffprobe shows them, a muxer writes its own).
_OWN_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration",
             "handler_name", "vendor_id", "file_package_umid", "operational_pattern_ul",
             "uid", "generation_uid", "company_name", "product_name", "product_version_num",
             "product_version", "application_platform", "product_uid", "toolkit_version_num",
             "material_package_umid", "timecode", "software"}
_SHOWN = ("rotation", "color_transfer", "field_order", "sample_aspect_ratio")


Probed = dict[str, Any]


def _probe(path: Path) -> Probed:
    assert FFPROBE is not None
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries",
                          "format_tags:stream=index,codec_type,codec_name,codec_tag_string,"
                          + ",".join(_SHOWN[1:]) + ":stream_tags:stream_side_data=rotation",
                          "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    probed: Probed = json.loads(out)
    return probed


def _streams(probed: Probed, skip: Collection[int] = ()) -> list[Probed]:
    """The streams but a timecode track (the timecode is checked as such) and ``skip``."""
    return [s for s in probed["streams"]
            if s.get("codec_tag_string") != "tmcd" and s["index"] not in skip]


def timecode(probed: Probed) -> str | None:
    """The start timecode a player shows: the file's, or the first a stream has."""
    for place in (probed.get("format", {}), *probed["streams"]):
        found = next((v for k, v in place.get("tags", {}).items() if k.lower() == "timecode"),
                     None)
        if found:
            return str(found)
    return None


def shown(probed: Probed, skip: Collection[int] = ()) -> dict[str, str]:
    """The tags and properties a player or an editor shows, as ``where key``: value: the
    file's own tags, each track's title and language, and the video's rotation, transfer,
    field order and aspect ratio (keys in lower case: Matroska writes its tags in capitals).
    ``skip``: streams left out, whose tags went with them."""
    found = {f"file {k.lower()}": str(v) for k, v in probed.get("format", {}).get(
        "tags", {}).items() if k.lower() not in _OWN_TAGS}
    count: dict[str, int] = {}
    for stream in _streams(probed, skip):
        kind = stream["codec_type"]
        count[kind] = count.get(kind, 0) + 1
        where = kind if kind == "video" else f"{kind} {count[kind]}"
        for key, value in stream.get("tags", {}).items():
            if key.lower() in ("title", "language") and value != "und":
                found[f"{where} {key.lower()}"] = str(value)
        if kind == "video":
            for key in _SHOWN[1:]:
                if stream.get(key) not in (None, "unknown", "progressive", "1:1", "0:1"):
                    found[f"video {key}"] = str(stream[key])
            for side in stream.get("side_data_list", []):
                if "rotation" in side:
                    found["video rotation"] = str(side["rotation"])
    return found


def _codecs(path: Path) -> dict[int, str]:
    """Each stream's codec as FFmpeg 8.1 reads it (Debian's ffprobe 5.1 reads MP4's 24-bit
    PCM, ``ipcm``, as 16-bit)."""
    with av.open(str(path)) as container:
        return {s.index: s.codec_context.codec.canonical_name if s.codec_context is not None
                else str(getattr(s, "name", None) or "data") for s in container.streams}


def pts_seconds(path: Path) -> list[float]:
    """Every decoded frame's presentation time in seconds (PyAV)."""
    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)
                if f.pts is not None and f.time_base is not None]


@dataclass
class Outcome:
    """What became of one clip enhanced into one container."""

    into: str
    refused: str | None = None  # the one line of a run that refused
    frames: tuple[int, int] = (0, 0)  # read, written
    moved: list[tuple[float, float]] = field(default_factory=list)  # pts (in, out), seconds
    kept: list[str] = field(default_factory=list)  # "audio pcm_alaw -> pcm_s16le"
    left_out: list[str] = field(default_factory=list)  # the warning that names each
    unnamed: list[str] = field(default_factory=list)  # streams gone without a warning
    timecode: tuple[str | None, str | None] = (None, None)  # in, out
    timecode_warning: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # those kept
    lost_tags: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """What is not as the input had it: empty when every frame is at its time, every
        stream kept or named in a warning, and the timecode and the tags kept."""
        if self.refused is not None:
            return [f"refused: {self.refused}"]
        found = []
        if self.frames[0] != self.frames[1]:
            found.append(f"frames: {self.frames[0]} read, {self.frames[1]} written")
        if self.moved:
            a, b = self.moved[0]
            found.append(f"pts: {len(self.moved)} frames moved, the first by {b - a:+.3f} s")
        found += [f"gone without a warning: {what}" for what in self.unnamed]
        if self.timecode[0] != self.timecode[1] and not self.timecode_warning:
            found.append(f"timecode: {self.timecode[0]} -> {self.timecode[1]}")
        found += [f"tag lost: {key} {was!r} -> {now!r}"
                  for key, (was, now) in self.lost_tags.items()]
        return found


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("streamer"):
            self.lines.append(record.getMessage())


@contextmanager
def _warnings() -> Iterator[list[str]]:
    handler = _Warnings()
    logging.getLogger().addHandler(handler)
    try:
        yield handler.lines
    finally:
        logging.getLogger().removeHandler(handler)


def outcome(src: Path, into: str, engine: Engine, folder: Path) -> Outcome:
    """Enhance ``src`` into ``folder/NAME-out.INTO`` as ``run`` does (in this process) and
    read both back: PyAV for the frames, ffprobe for the streams, tags and timecode."""
    dst = folder / f"{src.name}-out.{into}"
    result = Outcome(into)
    with _warnings() as lines:
        try:
            enhance(RunConfig(input=str(src)), engine, input=str(src), output=dst,
                    progress=False)
        except StreamerError as error:
            result.refused = str(error)
    if result.refused is not None:
        return result
    before, after = pts_seconds(src), pts_seconds(dst)
    result.frames = (len(before), len(after))
    result.moved = [(a, b) for a, b in zip(before, after, strict=False) if abs(a - b) > 0.001]
    probed_in, probed_out = _probe(src), _probe(dst)
    codecs_in, codecs_out = _codecs(src), _codecs(dst)
    written = [s for s in _streams(probed_out) if s["codec_type"] != "video"]
    skip = set()
    for stream in _streams(probed_in):
        kind, index = stream["codec_type"], stream["index"]
        if kind == "video":
            continue
        codec = codecs_in[index]
        warned = next((w for w in lines if f"(stream #{index})" in w and "left out" in w), None)
        same = next((s for s in written if s["codec_type"] == kind), None)
        if warned is not None:
            result.left_out.append(warned.split(": ", 1)[1])  # without the output's path
            skip.add(index)
        elif same is not None:
            written.remove(same)
            now = codecs_out[same["index"]]
            result.kept.append(f"{kind} {codec}" + (f" -> {now}" if now != codec else ""))
        else:
            result.unnamed.append(f"{kind} {codec} (stream #{index})")
    result.timecode = (timecode(probed_in), timecode(probed_out))
    result.timecode_warning = next((w for w in lines if "timecode" in w), None)
    tags_in, tags_out = shown(probed_in, skip), shown(probed_out)
    result.tags = {k: v for k, v in tags_in.items() if tags_out.get(k, "").lower() == v.lower()}
    result.lost_tags = {k: (v, tags_out.get(k)) for k, v in tags_in.items() if k not in result.tags}
    return result


def make(clip: Clip, folder: Path) -> Path:
    path = folder / clip.name
    clip.make(path)
    return path
