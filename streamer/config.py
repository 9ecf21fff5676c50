"""One typed configuration for a run: defaults <- YAML preset <- command-line flags.

The YAML file mirrors :class:`RunConfig` section by section (see configs/). Unknown keys and
values of the wrong type are errors that name the full key path, raised once at start.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streamer.engine import EngineSettings
from streamer.engine.temporal import SmoothingParams, StabiliserParams
from streamer.errors import ConfigError
from streamer.publish.publisher import PublishSettings
from streamer.runtime.batcher import BatchSettings
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import check_output_path
from streamer.sources.video import ReconnectPolicy

__all__ = ["DEMO_INPUT", "ReadSettings", "RunConfig", "SegmentSettings", "SourceSettings", "build",
           "check_segments", "load_config", "merge", "read_yaml"]

DEMO_INPUT = str(Path(__file__).parent / "demo" / "hazy_rocket.mp4")


@dataclass(frozen=True)
class ReadSettings:
    """How a source is read: the ``source:`` section of a run and of each serve stream (one
    schema, so ``reconnect`` sits in one place for both commands).

    Args:
    options: FFmpeg demuxer/protocol options, e.g. ``{rtsp_transport: tcp}``.
    reconnect: recovery of live sources.
    live: treat the input as live (drop, reconnect) or not; None: by its kind.
    tone_map: an HDR input (PQ/HLG) becomes SDR BT.709 as decoded (else it stays HDR, at 10
        bits or more; see streamer/media/hdr.py).
    deinterlace: an interlaced input is made progressive (bwdif, frame for frame) before the
        model (else enhanced as woven frames and written interlaced).
    """

    options: dict[str, str] = field(default_factory=dict)
    reconnect: ReconnectPolicy = ReconnectPolicy()
    live: bool | None = None
    tone_map: bool = False
    deinterlace: bool = False


@dataclass(frozen=True)
class SourceSettings(ReadSettings):
    """A run's ``source:`` section: how it is read (:class:`ReadSettings`), and

    Args:
    stream_id: name of the stream (ZeroMQ topic; a serve stream's is its ``id``).
    max_frames: stop after this many frames (a preview); None: all.
    """

    stream_id: str = "stream0"
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {self.max_frames}")
        if not self.stream_id:
            raise ConfigError("stream_id cannot be empty")


@dataclass(frozen=True)
class SegmentSettings:
    """The ``segments:`` section: a file enhanced in segments cut at keyframes and joined by
    stream copy (streamer/jobs/). Any of ``seconds``, ``workers`` other than 1, ``devices``,
    ``ray`` or ``resume`` asks for segments (the others then take their defaults).

    Args:
    seconds: segment length (None: 30 s when segments are asked for otherwise).
    preroll: frames enhanced before each segment for the temporal filters, not written
        (None: the job's default).
    workers: local processes (with ``devices``, 1 means one per device).
    devices: dealt to the workers (``--device cuda:0,cuda:1``).
    ray: a Ray address, ``auto`` or ``local`` instead of local processes.
    resume: continue an interrupted job from its finished segments.
    """

    seconds: float | None = None
    preroll: int | None = None
    workers: int = 1
    devices: tuple[str, ...] = ()
    ray: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"seconds: --segment-seconds must be > 0, got {self.seconds:g}")
        if self.preroll is not None and self.preroll < 0:
            raise ConfigError(f"preroll: --preroll must be >= 0 frames, got {self.preroll}")
        if self.workers < 1:
            raise ConfigError(f"workers: --workers must be >= 1, got {self.workers}")

    @property
    def worker_count(self) -> int:
        """The local processes: ``workers``, or one per device where it is left at 1."""
        return len(self.devices) if self.workers == 1 and self.devices else self.workers

    @property
    def asked_by(self) -> str | None:
        """The first key that asks for segments (``segments.workers``), None: a plain run."""
        asking = {"seconds": self.seconds is not None, "workers": self.workers != 1,
                  "devices": bool(self.devices), "ray": bool(self.ray), "resume": self.resume}
        return next((f"segments.{key}" for key, asked in asking.items() if asked), None)


_NOT_WITH_SEGMENTS = (("source.max_frames", "--max-frames"), ("source.live", "--live"))
"""Settings a segmented job cannot honour (a preview, a live input), with their flags."""


def check_segments(config: RunConfig) -> None:
    """The rules of segments, the same for a YAML file and for the flags: a segmented job
    writes one file, all of it, read as a file. ConfigError naming the keys (and flags)."""
    asked = config.segments.asked_by
    if asked is None:
        return
    output = config.output or ""
    if config.publish.endpoint or "://" in output or output.endswith(".m3u8"):
        raise ConfigError(f"{asked}: segments (--segment-seconds, --workers, --ray, --resume) "
                          "write a file; give output: FILE (-o FILE), not a stream, a playlist "
                          "or publish.endpoint (--publish)")
    for key, flag in _NOT_WITH_SEGMENTS:
        section, name = key.split(".")
        if getattr(getattr(config, section), name):
            raise ConfigError(f"{key} ({flag}) cannot be used with segments ({asked})")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. ``input`` empty: the bundled demo clip."""

    input: str = ""
    output: str | None = None
    model: EngineSettings = EngineSettings()
    batch: BatchSettings = BatchSettings()
    smoothing: SmoothingParams = SmoothingParams()
    stabiliser: StabiliserParams = StabiliserParams()
    encode: EncodeSettings = EncodeSettings()
    publish: PublishSettings = PublishSettings()
    source: SourceSettings = SourceSettings()
    segments: SegmentSettings = SegmentSettings()

    def __post_init__(self) -> None:
        if self.output is not None and "://" not in self.output:
            check_output_path(self.output, self.encode.format)
        check_segments(self)

    def with_overrides(self, **sections: Any) -> RunConfig:
        """A copy with top-level values or section fields replaced (None values ignored)."""
        data = dataclasses.asdict(self)
        for key, value in sections.items():
            if isinstance(value, dict):
                data[key].update({k: v for k, v in value.items() if v is not None})
            elif value is not None:
                data[key] = value
        return _build(RunConfig, data, "")


def load_config(path: str | Path | None) -> RunConfig:
    """Defaults, or a YAML preset over them."""
    if path is None:
        return RunConfig()
    return build(RunConfig, read_yaml(path))


PRESETS = Path(__file__).parent / "presets"  # installed with the package (configs/ links here)


def read_yaml(path: str | Path, command: str = "run") -> Any:
    """A YAML file, or a preset by name (``file-dehaze``: streamer/presets/file-dehaze.yaml);
    ``command``'s presets only (``serve``'s are named ``serve*``)."""
    path = Path(path)
    names = sorted(p.stem for p in PRESETS.glob("*.yaml")
                   if p.stem.startswith("serve") == (command == "serve"))
    if not path.is_file() and not path.suffix and (PRESETS / f"{path}.yaml").is_file():
        if path.name not in names:
            other = "serve" if command != "serve" else "run"
            raise ConfigError(f"{path.name} is a preset for hdm-stream {other}, not {command} "
                              f"(presets for {command}: {names})")
        path = PRESETS / f"{path}.yaml"
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (presets by name: {names})")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error


T = typing.TypeVar("T")


def build(cls: type[T], data: Any, prefix: str = "") -> T:
    """An instance of the settings dataclass ``cls`` from parsed YAML/JSON, every value checked
    against its type (dataclasses, tuples of them, Literals, unions), each error naming its key
    path (``streams[1].outputs[0].url``)."""
    built: T = _build(cls, data, prefix)
    return built


def _build(cls: type[Any], data: Any, prefix: str) -> Any:
    where = prefix or "the config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown config key {key!r}; known keys here: {sorted(names)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        key = f"{prefix}.{missing[0]}" if prefix else missing[0]
        raise ConfigError(f"config key {key!r} is required")
    values = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else name
        values[name] = _convert(hints[name], value, path)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(_at(prefix, names, str(error))) from error


def _at(prefix: str, names: set[str], message: str) -> str:
    """A section's own error under its key path: ``max_frames must be >= 1`` in ``streams[1]
    .source`` reads ``streams[1].source.max_frames must be >= 1`` (a message that starts with
    no key of the section: ``streams[1].source: ...``)."""
    section = prefix.rsplit(".", 1)[-1]
    message = message.removeprefix(f"{section}.") if section else message  # publish.mode ...
    first = message.split(" ", 1)[0].split(".", 1)[0].rstrip(":")
    if first in names:
        return f"{prefix}.{message}" if prefix else message
    return f"{prefix or 'the config'}: {message}"


def merge(under: Any, over: Any) -> Any:
    """``over`` on ``under``, mappings merged key by key at every depth (a serve stream's
    ``source:`` over the shared one: its own ``reconnect.watchdog_s``, the shared rest)."""
    if not isinstance(under, dict) or not isinstance(over, dict):
        return over
    return {**under, **{key: merge(under.get(key), value) for key, value in over.items()}}


def _convert(hint: Any, value: Any, path: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, path)
    if typing.get_origin(hint) is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):  # a tuple: a section copied (with_overrides)
            raise ConfigError(f"config key {path!r} must be a list")
        return tuple(_convert(item_type, item, f"{path}[{i}]") for i, item in enumerate(value))
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if all(dataclasses.is_dataclass(option) for option in options):
        return _tagged(options, value, path)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"config key {path!r} cannot be empty")
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is typing.Literal:
            choices = typing.get_args(option)
            if value in choices:
                return value
            raise ConfigError(f"config key {path!r} must be one of {list(choices)}, got {value!r}")
        if origin is dict and isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool) and isinstance(value, origin):
            return value
    expected = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"config key {path!r} must be {expected}, got {value!r}")


def _tagged(options: tuple[Any, ...], value: Any, path: str) -> Any:
    """A tagged union of dataclasses (a serve stream's outputs): the mapping's ``type`` picks
    the one whose ``TYPE`` it is; a key of another type is named as such."""
    types_ = {option.TYPE: option for option in options}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {path!r} must be a mapping with a type: one of "
                          f"{list(types_)}")
    if "type" not in value:
        raise ConfigError(f"config key {path!r} needs a type: one of {list(types_)}")
    kind = value["type"]
    if kind not in types_:
        raise ConfigError(f"config key '{path}.type' must be one of {list(types_)}, "
                          f"got {kind!r}")
    cls = types_[kind]
    own = {f.name for f in dataclasses.fields(cls)}
    for key in value:
        owner = next((t for t, o in types_.items()
                      if key in {f.name for f in dataclasses.fields(o)}), None)
        if key != "type" and key not in own and owner is not None:
            raise ConfigError(f"config key '{path}.{key}' belongs to type {owner}, not {kind}")
    return _build(cls, {k: v for k, v in value.items() if k != "type"}, path)
