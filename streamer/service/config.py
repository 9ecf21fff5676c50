"""The ``hdm-stream serve`` configuration: an HTTP address, shared settings and a list of
streams, each in the sections of ``run``'s settings (``input``, ``source``, ``model``,
``encode``) with its outputs a tagged union (``type: publish|url|hls|file``). Loaded and checked
as a whole at start (and each stream added over the HTTP API is checked the same way), every
error naming its key path; the old spelling still loads (legacy.py), with one warning."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from streamer.config import ReadSettings, build, merge, read_yaml
from streamer.engine import EngineSettings, SmoothingParams, StabiliserParams
from streamer.errors import ConfigError
from streamer.publish.publisher import Payload, PublishSettings
from streamer.runtime.batcher import BatchSettings
from streamer.service.legacy import migrate_serve, migrate_stream
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.network import default_format

__all__ = ["MAX_WORKERS", "STREAM_MODEL_KEYS", "Auth", "EngineKey", "FileOutput", "HlsOutput",
           "HttpSettings", "OutputSpec", "PublishOutput", "ServeConfig", "StreamSpec", "UrlOutput",
           "Workers", "is_loopback", "load_serve_config", "parse_workers", "serve_config",
           "stream_spec"]

log = logging.getLogger(__name__)
_ENGINE_KEYS = {f.name for f in dataclasses.fields(EngineSettings)}

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
class PublishOutput(PublishSettings):
    """``{type: publish, endpoint: tcp://...}``: the run's ``publish:`` section as an output
    (``mode``, ``payload``, ``jpeg_quality``, ``hwm``, CURVE: ``curve_secret``,
    ``curve_clients``); JPEG by default, for viewers on the network."""

    TYPE: ClassVar[str] = "publish"
    payload: Payload = "jpeg"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.endpoint:
            raise ConfigError("endpoint is required: where to bind, e.g. tcp://127.0.0.1:5555")

    @property
    def label(self) -> str:
        return str(self.endpoint)


@dataclass(frozen=True)
class UrlOutput:
    """``{type: url, url: srt://..., format: mpegts}``: a network stream; ``format``: the
    muxer (default: by the scheme). ``protocols``: FFmpeg's ``protocol_whitelist`` (set for
    every output added over HTTP)."""

    TYPE: ClassVar[str] = "url"
    url: str
    format: str | None = None
    protocols: str | None = None

    def __post_init__(self) -> None:
        if self.format is None:
            default_format(self.url)  # refuses a scheme with no default, naming the choices

    @property
    def label(self) -> str:
        return self.url


@dataclass(frozen=True)
class HlsOutput:
    """``{type: hls, path: /var/www/cam/}``: a folder or a .m3u8 playlist. ``overwrite``: an
    output added over HTTP may replace an existing playlist (the YAML's outputs are the
    operator's and replace what they name); ``protocols`` as a url output's."""

    TYPE: ClassVar[str] = "hls"
    path: str
    overwrite: bool = False
    protocols: str | None = None

    @property
    def label(self) -> str:
        return self.path


@dataclass(frozen=True)
class FileOutput:
    """``{type: file, path: cam1.mkv}``: a recording; ``overwrite`` as an hls output's."""

    TYPE: ClassVar[str] = "file"
    path: str
    overwrite: bool = False

    @property
    def label(self) -> str:
        return self.path


OutputSpec = PublishOutput | UrlOutput | HlsOutput | FileOutput
"""One output of a stream: a tagged union, ``type`` picking the dataclass (config.build)."""

STREAM_MODEL_KEYS = ("task", "model", "weights")
"""What a stream's ``model:`` section may set: the engine it runs (streams that agree share
one). The rest (device, backend, precision, ...) is the top-level ``model:``'s, for all."""

EngineKey = tuple[str, str, str]  # (model, task, weights): the streams that share an engine


@dataclass(frozen=True)
class StreamSpec:
    """One stream, in run's sections: ``id`` (letters, digits, ``_.-``; its ZeroMQ topic),
    ``input`` (anything ``run`` reads), ``source`` (how it is read: options, live, reconnect,
    tone_map, deinterlace), ``model`` (task, model, weights), ``encode`` (its video outputs'
    encoder) and its ``outputs`` (the web preview is always there). Loaded through
    :func:`serve_config` / :func:`stream_spec`, which lay each section over the config's
    shared one field by field."""

    id: str
    input: str
    source: ReadSettings = ReadSettings()
    model: EngineSettings = EngineSettings()
    encode: EncodeSettings = EncodeSettings()
    outputs: tuple[OutputSpec, ...] = ()

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ConfigError(f"id must be 1-64 letters, digits, '_', '.' or '-', got {self.id!r}")
        if not self.input:
            raise ConfigError("input cannot be empty")

    @property
    def engine_key(self) -> EngineKey:
        return (self.model.model, self.model.task, self.model.weights)

    @property
    def endpoints(self) -> list[str]:
        """The ZeroMQ endpoints its publish outputs bind."""
        return [str(o.endpoint) for o in self.outputs if isinstance(o, PublishOutput)]


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``serve`` runs: the streams and the settings they share. ``model``,
    ``source`` and ``encode`` are every stream's defaults, each stream's own section laid over
    them field by field (``model`` also gives the device, backend and precision of every
    engine; each stream's task, model and weights pick its engine: streams that agree share
    one). ``workers``: the processes the streams are sharded over (``auto``: decided from the
    cores and the streams, see placement.py; 1: all in this process, as before)."""

    http: HttpSettings = HttpSettings()
    model: EngineSettings = EngineSettings()
    batch: BatchSettings = BatchSettings(size=4, max_delay_ms=20.0, latency_ms=300.0)
    smoothing: SmoothingParams = SmoothingParams()
    stabiliser: StabiliserParams = StabiliserParams()
    encode: EncodeSettings = EncodeSettings()
    source: ReadSettings = ReadSettings()
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
    return serve_config(read_yaml(path, "serve"), str(path))


def serve_config(data: Any, where: str = "the config") -> ServeConfig:
    """A serve config from parsed YAML: old keys read as the new (one warning naming them),
    the shared sections checked, then each stream laid over them."""
    data, renames = migrate_serve(data)
    _warn(where, renames)
    if isinstance(data, dict) and "streams" in data:
        data = dict(data)
        streams = data.pop("streams")
        if not isinstance(streams, list):
            raise ConfigError("config key 'streams' must be a list")
    else:
        streams = []
    shared = build(ServeConfig, data)
    return dataclasses.replace(shared, streams=tuple(
        _stream(s, shared, f"streams[{i}]") for i, s in enumerate(streams)))


def stream_spec(data: Any, shared: ServeConfig) -> StreamSpec:
    """A stream added over the HTTP API, checked as the config's are (``stream.`` key paths)
    and laid over ``shared``'s sections."""
    data, renames = migrate_stream(data, "stream")
    _warn("a stream added over HTTP", renames)
    return _stream(data, shared, "stream")


def _stream(data: Any, shared: ServeConfig, prefix: str) -> StreamSpec:
    """One stream entry (new spelling) laid over ``shared``'s source, model and encode, so
    the spec holds what the stream runs whatever added it (the YAML, the API, a worker)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix} must be a mapping of keys to values")
    model = data.get("model")
    for key in model if isinstance(model, dict) else ():
        if key not in STREAM_MODEL_KEYS and key in _ENGINE_KEYS:
            raise ConfigError(f"{prefix}.model.{key} is shared by every engine: set it in the "
                              f"top-level model section (a stream sets {list(STREAM_MODEL_KEYS)})")
    laid = {**data, **{section: merge(dataclasses.asdict(getattr(shared, section)),
                                      {} if data.get(section) is None else data[section])
                       for section in ("source", "model", "encode")}}
    return build(StreamSpec, laid, prefix)


def _warn(where: str, renames: list[str]) -> None:
    if renames:
        log.warning("%s uses old config keys, read as the new ones (rename them): %s", where,
                    "; ".join(renames))
