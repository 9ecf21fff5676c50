"""``hdm-stream run``: its flags, the run's settings from the config file under them, the
segment flags, and one file, a photo, a folder of files or a segmented job run to its end
report."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from hdm.upsample import FITS
from streamer.cli.common import interrupted_code, sigterm_as_interrupt, write_json
from streamer.config import DEMO_INPUT, RunConfig, load_config
from streamer.engine import BACKENDS, COLOUR, COMPILE_MODES, MODELS, PRECISIONS, Engine
from streamer.engine.settings import TASK_CHOICES
from streamer.errors import ConfigError, OutputIncompleteError, SinkError, StoppedAtOnce
from streamer.jobs.batch import is_folder_target, plan, run_all, table
from streamer.jobs.files import build_engine, enhance
from streamer.jobs.job import JobSettings, job_folder, run_job
from streamer.jobs.photos import enhance_photo, photo_to_photo
from streamer.jobs.segments import PREROLL_FRAMES
from streamer.media.photo import is_photo
from streamer.media.sequence import is_pattern
from streamer.publish.publisher import MODES, PAYLOADS
from streamer.sinks.build import existing_output
from streamer.sinks.pipe import pipe_descriptor
from streamer.sources.video import SourceKind, classify
from streamer.stats import RunStats

__all__ = ["DEMO_OUTPUT", "add_parser", "config_from_args", "run"]

log = logging.getLogger("hdm-stream")
DEMO_OUTPUT = "hdm-demo-enhanced.mp4"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="enhance a file, stream or camera")
    p.add_argument("input", nargs="*", help="file, photo, image sequence (frames/%%05d.png), "
                   "- (stdin), URL, /dev/videoN or lavfi:EXPR (default: the bundled demo); "
                   "several files or folders with -o DIR/")
    p.add_argument("-o", "--output", help="output: a video file, a photo (.jpg, .png, .tif, "
                   ".webp, .bmp), an image sequence (out/%%05d.png), - (stdout, with -f), a "
                   "URL (udp://, srt://, rtmp://, rtsp://), an HLS playlist (.m3u8), or a "
                   "folder (DIR/) for several inputs")
    p.add_argument("-f", "--format", metavar="MUXER", help="the output's container, as "
                   "ffmpeg's -f: matroska, mpegts, nut, mp4, ... (default: by the output's "
                   "extension; needed for -o -)")
    p.add_argument("--framerate", metavar="RATE", help="frames per second of an image "
                   "sequence input, as ffmpeg's -framerate (default 25), e.g. 30000/1001")
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace an existing output file (refused otherwise)")
    p.add_argument("--publish", metavar="ENDPOINT", help="ZeroMQ endpoint to bind, "
                   "e.g. tcp://127.0.0.1:5555")
    p.add_argument("--publish-mode", choices=MODES, help="pub drops for slow "
                   "subscribers; push is lossless")
    p.add_argument("--payload", choices=PAYLOADS, help="ZeroMQ payload format")
    p.add_argument("--curve-secret", metavar="FILE", help="CURVE: encrypt publishing with "
                   "this key pair (zmq.auth.create_certificates makes one)")
    p.add_argument("--curve-clients", metavar="DIR", help="CURVE: accept only the clients "
                   "whose public key files are in DIR")
    p.add_argument("--config", help="a YAML file, or a preset by name: file-dehaze, "
                   "camera-lowlight, publish")
    p.add_argument("--task", choices=TASK_CHOICES,
                   help="what to enhance; auto: chosen per scene, or none "
                        "where the picture needs nothing (hdm/scene.py)")
    p.add_argument("--model", choices=MODELS, help="auto: the shipped HDM-S weights for the "
                   "task; dcp: the classical enhancer (10-20x faster on a CPU)")
    p.add_argument("--weights", help="checkpoint path, 'default' or 'random'")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: auto); a list "
                   "(cuda:0,cuda:1) deals segment workers over GPUs")
    p.add_argument("--backend", choices=BACKENDS, help="how the network runs (auto: OpenVINO "
                   "on a CPU for HDM, torch.compile on a GPU)")
    p.add_argument("--compile-mode", choices=COMPILE_MODES,
                   help="torch.compile mode (reduce-overhead: CUDA graphs)")
    p.add_argument("--precision", choices=tuple(PRECISIONS),
                   help="the network's arithmetic (auto: bf16 on a GPU, the backend's on a CPU)")
    p.add_argument("--inference-size", metavar="full|auto|N|TASK=SIZE,...",
                   help="what the network sees: the full frame, the frame scaled to a "
                        "shorter side of N pixels (its effect fitted back to full "
                        "resolution), or auto: the largest that keeps up with the stream on "
                        "this device (the choice is logged; a file's derain not below 3/4 of "
                        "the frame, where it would keep the streaks); or one per task, e.g. "
                        "derain=360 (the others auto)")
    p.add_argument("--fit", choices=("auto", *FITS),
                   help="how a reduced-size result reaches the full frame (auto: the task's)")
    p.add_argument("--fit-window", metavar="auto|F",
                   help="dehazing's output fitted to its input in windows of this radius (a "
                        "fraction of the frame's longer side, or 1/N), which drops blotches "
                        "the input cannot explain (auto: 1/32; 0: off)")
    p.add_argument("--colour", choices=COLOUR, help="where YUV<->RGB runs (auto: on a GPU "
                   "when there is one)")
    p.add_argument("--batch", type=int, help="frames per inference batch")
    p.add_argument("--no-smoothing", action="store_true", help="per-frame DCP masks")
    p.add_argument("--no-stabiliser", action="store_true",
                   help="every output frame as the model gives it (no temporal stabiliser)")
    p.add_argument("--strength", type=float,
                   help="blend of enhanced frame and input, 0..1 (default 1: fully enhanced)")
    p.add_argument("--side-by-side", action="store_true", help="write input | enhanced")
    p.add_argument("--codec", help="video encoder, e.g. libx264, libx265 (default auto: "
                   "H.264, HEVC for HDR, VP9 into .webm)")
    p.add_argument("--pix-fmt", help="output pixel format, e.g. yuv420p, yuv444p, "
                   "yuv420p10le (default auto: the input's chroma and bit depth)")
    p.add_argument("--audio-codec", metavar="copy|aac|...",
                   help="copy (default: each audio track as it is, or G.711/ADPCM the "
                        "container refuses as PCM of the same samples) or an audio encoder "
                        "for every track, e.g. aac")
    p.add_argument("--encoder-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="an FFmpeg encoder option, e.g. g=48 or x264-params=keyint=60 "
                        "(repeatable; checked by FFmpeg)")
    p.add_argument("--muxer-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="an FFmpeg muxer option, e.g. movflags=+faststart (repeatable)")
    p.add_argument("--tone-map", action="store_true",
                   help="turn an HDR input (PQ/HLG) into SDR BT.709 (default: keep it HDR, "
                        "written at 10 bits with its metadata)")
    p.add_argument("--deinterlace", action="store_true",
                   help="make an interlaced input progressive (bwdif) before enhancing it "
                        "(default: enhanced as woven frames and written interlaced)")
    p.add_argument("--crf", type=int, help="constant quality for x264/x265/VP9/AV1 (lower: "
                   "better and larger; none: the encoder's own)")
    p.add_argument("--preset", help="encoder preset, e.g. veryfast")
    p.add_argument("--bitrate", help="e.g. 8M (overrides --crf)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames (a preview)")
    p.add_argument("--live", action="store_true", default=None,
                   help="treat the input as live (drop late frames, reconnect), e.g. a "
                        "real-time lavfi graph")
    p.add_argument("--segment-seconds", type=float, metavar="S",
                   help="enhance a file in segments of about S seconds (cut at keyframes, "
                        "joined by stream copy): resumable, and spread over --workers")
    p.add_argument("--preroll", type=int, metavar="FRAMES",
                   help="frames enhanced before each segment for the temporal filters, not "
                        f"written (default {PREROLL_FRAMES})")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted segmented job from its finished segments")
    p.add_argument("--workers", type=int, metavar="N",
                   help="segments on N local processes (with --device cuda:0,cuda:1,... "
                        "spread over GPUs; default 1, or one per device)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="segments as Ray tasks: a cluster address, 'auto', or 'local' "
                        "(needs hdm-stream[ray])")
    p.add_argument("--summary-json", type=Path, help="write the end summary as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--progress-every", type=float, default=10.0, metavar="SECONDS",
                   help="when stderr is not a terminal, a progress line this often (default 10)")
    p.add_argument("--progress", metavar="FILE|pipe:N", help="machine-readable progress as "
                   "ffmpeg's -progress: key=value blocks every 0.5 s, ending progress=end")
    _show_defaults(p)


SETTING_FLAGS: dict[str, tuple[str, str]] = {
    "task": ("model", "task"), "model": ("model", "model"), "weights": ("model", "weights"),
    "backend": ("model", "backend"), "precision": ("model", "precision"),
    "compile_mode": ("model", "compile_mode"), "colour": ("model", "colour"),
    "strength": ("model", "strength"), "inference_size": ("model", "inference_size"),
    "fit": ("model", "fit"), "fit_window": ("model", "fit_window"), "batch": ("batch", "size"),
    "codec": ("encode", "codec"), "crf": ("encode", "crf"), "preset": ("encode", "preset"),
    "pix_fmt": ("encode", "pix_fmt"), "audio_codec": ("encode", "audio_codec"),
    "bitrate": ("encode", "bitrate"), "format": ("encode", "format"),
    "publish": ("publish", "endpoint"), "publish_mode": ("publish", "mode"),
    "payload": ("publish", "payload"), "curve_secret": ("publish", "curve_secret"),
    "curve_clients": ("publish", "curve_clients"), "max_frames": ("source", "max_frames"),
    "live": ("source", "live"),
}
"""The flags that set one setting each, by their dest: where it lives in the config (YAML
``section: {field: ...}``). A flag left out stands aside for the config file's value; ``--help``
shows each one's default from the settings themselves."""


def _setting_flags(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The values of the flags of :data:`SETTING_FLAGS`, as config sections."""
    sections: dict[str, dict[str, Any]] = {}
    for dest, (section, field) in SETTING_FLAGS.items():
        sections.setdefault(section, {})[field] = getattr(args, dest)
    return sections


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Each setting flag's help ends with its default as the settings define it."""
    defaults = RunConfig()
    for action in parser._actions:
        if action.dest in SETTING_FLAGS and action.help is not None:
            section, field = SETTING_FLAGS[action.dest]
            value = getattr(getattr(defaults, section), field)
            shown = "none" if value is None else value
            action.help = f"{action.help} (default: {shown})".lstrip()


def _key_values(flag: str, items: list[str]) -> dict[str, str] | None:
    """``["g=48", "bf=0"]`` -> ``{"g": "48", "bf": "0"}``; None when none given (the config's
    stand)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes KEY=VALUE, got {item!r}")
        options[key] = value
    return options or None


def config_from_args(args: argparse.Namespace, *, batch: bool = False) -> RunConfig:
    """The run's settings: the config file (or preset) under the flags. ``batch``: several
    inputs into a folder (whose outputs batch.plan checks)."""
    if args.progress_every <= 0:
        raise ConfigError(f"--progress-every must be > 0 seconds, got {args.progress_every:g}")
    config = load_config(args.config)
    options = _input_options(args, config.source.options)
    flags = _setting_flags(args)
    config = config.with_overrides(
        input=args.input[0] if args.input and not batch else None,
        output=None if batch else args.output,
        batch=flags["batch"], publish=flags["publish"],
        model={**flags["model"],
               "device": None if _device_list(args) else args.device},
        smoothing={"enabled": False if args.no_smoothing else None},
        stabiliser={"enabled": False if args.no_stabiliser else None},
        encode={**flags["encode"],
                "encoder_options": _key_values("--encoder-opt", args.encoder_opt),
                "muxer_options": _key_values("--muxer-opt", args.muxer_opt),
                "side_by_side": True if args.side_by_side else None},
        source={**flags["source"], "options": options,
                "tone_map": True if args.tone_map else None,
                "deinterlace": True if args.deinterlace else None},
        segments={"seconds": args.segment_seconds, "preroll": args.preroll,
                  "workers": args.workers, "devices": _device_list(args) or None,
                  "ray": args.ray, "resume": True if args.resume else None},
    )
    if batch:
        return config
    if not config.input:
        output = config.output or (None if config.publish.endpoint else DEMO_OUTPUT)
        config = config.with_overrides(input=DEMO_INPUT, output=output)
    if config.output is None and config.publish.endpoint is None:
        raise ConfigError("give an output file (-o FILE) or an endpoint (--publish ENDPOINT)")
    demo = config.input == DEMO_INPUT and config.output == DEMO_OUTPUT  # ours to replace
    existing = existing_output(config.output) if config.output else None
    if existing is not None and not args.overwrite and not demo:
        raise ConfigError(f"{existing} exists; pass -y (--overwrite) to replace it")
    one_picture = config.output and is_photo(config.output) and not is_pattern(config.output)
    if one_picture and not photo_to_photo(config.input, config.output) \
            and config.source.max_frames != 1:
        raise ConfigError(f"{config.output} holds one picture: name an image sequence "
                          "(out_%05d.png) for every frame, or give --max-frames 1")
    shared = pipe_descriptor(args.progress) if args.progress else None
    if shared is not None and shared == pipe_descriptor(config.output or ""):
        raise ConfigError(f"--progress {args.progress} is the output's own pipe; give "
                          "pipe:2 or a file")
    return config


def _empty_progress(path: str | None) -> None:
    """``--progress FILE`` starts empty; each file of a batch then adds its blocks."""
    if path is None or pipe_descriptor(path) is not None:
        return
    try:
        Path(path).write_text("")
    except OSError as error:
        raise SinkError(f"cannot write progress to {path}: {error.strerror or error}") from None


def _input_options(args: argparse.Namespace, options: dict[str, str]
                   ) -> dict[str, str] | None:
    """The demuxer options with ``--framerate`` (image2's, a camera's) among them."""
    if args.framerate is None:
        return None
    try:
        rate = Fraction(args.framerate)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(0)
    if rate <= 0:
        raise ConfigError(f"--framerate takes a rate such as 25 or 30000/1001, got "
                          f"{args.framerate!r}")
    kinds = {classify(given) for given in args.input} or {SourceKind.FILE}
    if not kinds <= {SourceKind.SEQUENCE, SourceKind.CAMERA, SourceKind.PIPE}:
        raise ConfigError("--framerate sets the rate of an image sequence (frames/%05d.png) "
                          "or a camera; a video file keeps its own timestamps")
    return {**options, "framerate": str(rate)}


def _batch(args: argparse.Namespace) -> bool:
    """Several inputs, a folder, or a file into -o DIR/: one output per file, in DIR."""
    return len(args.input) > 1 or (len(args.input) == 1 and (
        Path(args.input[0]).is_dir() or is_folder_target(args.output)))


def _device_list(args: argparse.Namespace) -> tuple[str, ...]:
    """``--device cuda:0,cuda:1``: the devices to deal to segment workers."""
    if not args.device or "," not in args.device:
        return ()
    return tuple(d.strip() for d in args.device.split(",") if d.strip())


def _job_settings(args: argparse.Namespace, config: RunConfig) -> JobSettings | None:
    """The job's settings when the config (``segments:``) or a flag asks for segments, else
    None (a plain run). What cannot go with segments is the settings' to refuse
    (config.check_segments), but ``--progress``, a flag only."""
    segments = config.segments
    if segments.asked_by is None:
        return None
    if args.progress:
        raise ConfigError("--progress cannot be used with segments")
    return JobSettings(
        segment_s=JobSettings.segment_s if segments.seconds is None else segments.seconds,
        preroll=PREROLL_FRAMES if segments.preroll is None else segments.preroll,
        workers=segments.worker_count, devices=segments.devices, ray=segments.ray,
        resume=segments.resume)


_VIDEO_FLAGS = ("publish", "codec", "pix_fmt", "crf", "preset", "bitrate", "audio_codec",
                "encoder_opt", "muxer_opt", "format", "segment_seconds", "ray", "resume",
                "progress", "workers")


def _refuse_video_flags(args: argparse.Namespace) -> None:
    """A photo into a photo has no encoder, stream or segments: their flags are refused
    rather than ignored."""
    given = [name for name in _VIDEO_FLAGS if getattr(args, name) not in (None, False, [])]
    if given:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        raise ConfigError(f"{flags}: for video; a photo is written as its extension says "
                          f"({args.output})")


def _engine_once(config: RunConfig) -> Callable[[], Engine]:
    """The engine of this process, built when first asked for (segment workers build their
    own; a batch shares one)."""
    return functools.cache(lambda: build_engine(config))


def _one_file(args: argparse.Namespace, config: RunConfig, engine: Callable[[], Engine],
              job: JobSettings | None, input: str, output: Path | str | None) -> RunStats:
    if output is not None and photo_to_photo(input, str(output)):
        return enhance_photo(config, engine(), Path(input), Path(output))
    if job is not None:
        assert output is not None
        try:
            return run_job(config, input, Path(output), job, engine)
        except KeyboardInterrupt:
            print(f"hdm-stream: interrupted; finished segments are kept in "
                  f"{job_folder(Path(output))}: the same command with --resume continues",
                  file=sys.stderr)
            raise
    return enhance(config, engine(), input=input, output=output, progress=not args.quiet,
                   progress_every_s=args.progress_every, progress_to=args.progress)


def run_batch(args: argparse.Namespace) -> int:
    if not is_folder_target(args.output):
        raise ConfigError("several inputs (or a folder) need an output folder: -o DIR/")
    config = config_from_args(args, batch=True)
    job = _job_settings(args, config)
    jobs = plan(args.input, Path(args.output), overwrite=args.overwrite)
    _empty_progress(args.progress)
    engine = _engine_once(config)
    log.info("enhancing %d files", len(jobs))
    terminated: list[int] = []
    with sigterm_as_interrupt(terminated):
        results = run_all(jobs, lambda file: _one_file(args, config, engine, job,
                                                       str(file.input), file.output))
    print(table(results, len(jobs)), file=sys.stderr)
    if args.summary_json:
        write_json(args.summary_json, [
            {"input": str(r.job.input), "output": str(r.job.output), "error": r.error,
             "seconds": round(r.seconds, 3), **(r.stats.as_dict() if r.stats else {})}
            for r in results])
    if any(r.interrupted for r in results):
        return interrupted_code(terminated)
    return 0 if all(r.ok for r in results) and len(results) == len(jobs) else 2


def run(args: argparse.Namespace) -> int:
    if _batch(args):
        return run_batch(args)
    config = config_from_args(args)
    photo = photo_to_photo(config.input, config.output)
    if photo:
        _refuse_video_flags(args)
    job = _job_settings(args, config)
    _empty_progress(args.progress)
    engine = _engine_once(config)
    if job is None or (job.workers == 1 and job.ray is None):
        log.info("enhancing %s with %s", config.input, engine().description)
    terminated: list[int] = []
    with sigterm_as_interrupt(terminated):
        try:
            stats = _one_file(args, config, engine, job, config.input, config.output)
        except StoppedAtOnce as stopped:  # one line: what the outputs hold
            print(f"hdm-stream: {stopped}", file=sys.stderr)
            return interrupted_code(terminated)
        except KeyboardInterrupt:
            if job is None:
                raise
            return interrupted_code(terminated)  # a segmented job stopped: --resume
        except OutputIncompleteError as error:  # the summary, then the error's one line
            if isinstance(error.stats, RunStats):
                print(error.stats.summary(), file=sys.stderr)
                if args.summary_json:
                    write_json(args.summary_json, error.stats.as_dict())
            raise
    if not photo:  # a photo's line was logged (jobs/photos.py)
        print(stats.summary() if job is None else stats.job_summary(), file=sys.stderr)
    if config.output:
        print(f"wrote {'stdout' if pipe_descriptor(config.output) == 1 else config.output}",
              file=sys.stderr)
    if args.summary_json:
        write_json(args.summary_json, stats.as_dict())
    return interrupted_code(terminated) if stats.interrupted else 0
