"""The ``hdm-stream serve`` configuration: an HTTP address and a list of streams, each with its
source, task, model and outputs. Loaded and checked as a whole at start (and each stream added
over the HTTP API is checked the same way), every error naming its key path."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from streamer.config import build, read_yaml
from streamer.engine import EngineSettings, SmoothingParams, StabiliserParams
from streamer.engine.settings import ModelName, TaskChoice
from streamer.errors import ConfigError
from streamer.publish.publisher import Mode, Payload
from streamer.runtime.batcher import BatchSettings
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.network import default_format
from streamer.sources.video import ReconnectPolicy

__all__ = ["MAX_WORKERS", "Auth", "HttpSettings", "OutputSpec", "ServeConfig", "StreamSpec",
           "Workers", "is_loopback", "load_serve_config", "parse_workers"]

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_WORKERS = 64  # a typo such as 1000 is refused rather than a thousand processes started
Workers = int | Literal["auto"]


def parse_workers(value: int | str) -> Workers:
    """``auto`` or a number of worker processes (1: every stream in this process); ConfigError
    naming the key otherwise."""
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_WORKERS:
        return value
    raise ConfigError(f"workers must be auto or a number of processes from 1 to {MAX_WORKERS} "
                      f"(1: every stream in this process), got {value!r}")


Auth = Literal["writes", "all", "none"]


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP API, metrics and preview; port 0 takes any free port (tests).

    ``auth``: which requests need the token (``writes``: POST and DELETE, the default;
    ``all``: every request; ``none``: none, allowed only on a loopback ``host``). ``token``:
    the token (else the environment's ``HDM_STREAM_TOKEN``, else one generated at start and
    logged once). ``allowed_hosts``: the names the server may be reached by, besides its
    ``host`` and the loopback names (a reverse proxy's public name); ``allowed_origins``: the
    web origins whose pages may call it, besides its own. What a stream added over HTTP may
    do: write files only under ``output_roots`` (none by default: network outputs only), read
    local files (``allow_local_sources``) and FFmpeg filter graphs (``allow_lavfi``) only when
    told. ``access_log``: one line per request."""

    host: str = "127.0.0.1"
    port: int = 8080
    auth: Auth = "writes"
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    output_roots: tuple[str, ...] = ()
    allow_local_sources: bool = False
    allow_lavfi: bool = False
    access_log: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if self.auth == "none" and not is_loopback(self.host):
            raise ConfigError(f"auth: none is allowed only on a loopback host, not {self.host!r} "
                              "(use writes or all)")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("token must be at least 16 characters")
        for root in self.output_roots:
            if not Path(root).is_absolute():
                raise ConfigError(f"output_roots must be absolute folders, got {root!r}")


@dataclass(frozen=True)
class OutputSpec:
    """One output, exactly one of: ``publish`` (a ZeroMQ endpoint, with ``mode``, ``payload``
    and optionally CURVE: ``curve_secret``, ``curve_clients``), ``url`` (a network stream, with
    an optional ``format``), ``hls`` (a folder or a .m3u8 playlist) or ``file`` (a recording).
    ``overwrite``: an output added over HTTP may replace an existing file or playlist (the
    YAML's outputs are the operator's and replace what they name). ``protocols``: FFmpeg's
    ``protocol_whitelist`` for a url or hls output (set for every output added over HTTP)."""

    publish: str | None = None
    mode: Mode = "pub"
    payload: Payload = "jpeg"
    curve_secret: str | None = None
    curve_clients: str | None = None
    url: str | None = None
    format: str | None = None
    hls: str | None = None
    file: str | None = None
    overwrite: bool = False
    protocols: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("publish", "url", "hls", "file") if getattr(self, k)]
        if len(given) != 1:
            raise ConfigError("an output needs exactly one of publish, url, hls or file, got "
                              f"{given or 'none'}")
        if self.url is not None and self.format is None:
            default_format(self.url)  # refuses a scheme with no default, naming the choices
        if self.format is not None and self.url is None:
            raise ConfigError("format applies to url outputs only")

    @property
    def label(self) -> str:
        return next(str(getattr(self, k)) for k in ("publish", "url", "hls", "file")
                    if getattr(self, k))


@dataclass(frozen=True)
class StreamSpec:
    """One stream: ``id`` (letters, digits, ``_.-``), ``source`` (anything ``run`` reads),
    ``task``, ``model``, ``weights``, FFmpeg ``options`` for the source, ``live`` (override
    what the source's kind implies: drop rather than block, reconnect), ``tone_map`` (HDR to
    SDR as decoded), ``deinterlace``, and its outputs (the web preview is always there)."""

    id: str
    source: str
    task: TaskChoice = "dehaze"
    model: ModelName = "auto"
    weights: str = "default"
    options: dict[str, str] = field(default_factory=dict)
    live: bool | None = None
    tone_map: bool = False
    deinterlace: bool = False
    outputs: tuple[OutputSpec, ...] = ()

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ConfigError(f"id must be 1-64 letters, digits, '_', '.' or '-', got {self.id!r}")
        if not self.source:
            raise ConfigError("source cannot be empty")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``serve`` runs: the streams and the settings they share. ``model`` gives the
    device, backend and precision of every engine (each stream's task, model and weights pick
    its engine: streams that agree share one). ``workers``: the processes the streams are
    sharded over (``auto``: decided from the cores and the streams, see placement.py; 1: all
    in this process, as before)."""

    http: HttpSettings = HttpSettings()
    model: EngineSettings = EngineSettings()
    batch: BatchSettings = BatchSettings(size=4, max_delay_ms=20.0, latency_ms=300.0)
    smoothing: SmoothingParams = SmoothingParams()
    stabiliser: StabiliserParams = StabiliserParams()
    encode: EncodeSettings = EncodeSettings()
    reconnect: ReconnectPolicy = ReconnectPolicy()
    preview_fps: float = 5.0
    workers: int | str = "auto"
    streams: tuple[StreamSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "workers", parse_workers(self.workers))
        ids = [s.id for s in self.streams]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ConfigError(f"stream ids must be unique, {duplicates} repeat")
        if not 0 < self.preview_fps <= 30:
            raise ConfigError(f"preview_fps must be in (0, 30], got {self.preview_fps}")


def load_serve_config(path: str | Path) -> ServeConfig:
    return build(ServeConfig, read_yaml(path, "serve"))


def stream_spec(data: Any) -> StreamSpec:
    """A stream added over the HTTP API, checked as the config's are."""
    return build(StreamSpec, data, "stream")
