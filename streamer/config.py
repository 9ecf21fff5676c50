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

__all__ = ["DEMO_INPUT", "RunConfig", "SourceSettings", "build", "load_config", "read_yaml"]

DEMO_INPUT = str(Path(__file__).parent / "demo" / "hazy_rocket.mp4")


@dataclass(frozen=True)
class SourceSettings:
    """Args:
    stream_id: name of the stream (ZeroMQ topic).
    options: FFmpeg demuxer/protocol options, e.g. ``{rtsp_transport: tcp}``.
    reconnect: recovery of live sources.
    max_frames: stop after this many frames (a preview); None: all.
    live: treat the input as live (drop, reconnect) or not; None: by its kind.
    tone_map: an HDR input (PQ/HLG) becomes SDR BT.709 as decoded (else it stays HDR, at 10
        bits or more; see streamer/media/hdr.py).
    deinterlace: an interlaced input is made progressive (bwdif, frame for frame) before the
        model (else enhanced as woven frames and written interlaced).
    """

    stream_id: str = "stream0"
    options: dict[str, str] = field(default_factory=dict)
    reconnect: ReconnectPolicy = ReconnectPolicy()
    max_frames: int | None = None
    live: bool | None = None
    tone_map: bool = False
    deinterlace: bool = False

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {self.max_frames}")
        if not self.stream_id:
            raise ConfigError("stream_id cannot be empty")


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

    def __post_init__(self) -> None:
        if self.output is not None and "://" not in self.output:
            check_output_path(self.output, self.encode.format)

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
    values = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else name
        values[name] = _convert(hints[name], value, path)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def _convert(hint: Any, value: Any, path: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value if value is not None else {}, path)
    if typing.get_origin(hint) is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"config key {path!r} must be a list")
        return tuple(_convert(item_type, item, f"{path}[{i}]") for i, item in enumerate(value))
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
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
