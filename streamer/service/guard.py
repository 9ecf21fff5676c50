"""What a stream added over HTTP may do, and what is checked before it is accepted.

The YAML the operator writes keeps its full power; a stream POSTed to the API is held to
``http``'s settings (:func:`confine`):

- sources: network URLs (rtsp, rtmp, udp, tcp, srt, rtp, http(s)) and V4L2 cameras
  (``/dev/videoN``) only, read with FFmpeg's ``protocol_whitelist`` for their scheme; local
  files only with ``http.allow_local_sources``, ``lavfi:`` graphs (which can read and write
  files) only with ``http.allow_lavfi``; the source's FFmpeg ``options`` cannot change the
  whitelist;
- outputs: ``url`` takes network protocols only, in a network muxer, with FFmpeg's
  ``protocol_whitelist``; ``file`` and ``hls`` resolve inside ``http.output_roots`` (none by
  default), with no ``..`` and no link out of them, and never replace an existing file without
  ``overwrite: true``; ``publish`` binds TCP only (an ``ipc://`` endpoint is a file), and CURVE
  key files are the YAML's.

:func:`judge` checks what can be checked before a stream starts: every option's type, the
output folder exists and is writable, the ZeroMQ endpoint is free, the weights load. Each
refusal is a :class:`Refused` naming its key, with the HTTP status it answers.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hdm import load_checkpoint
from streamer.errors import ConfigError
from streamer.service.config import (
    FileOutput,
    HlsOutput,
    HttpSettings,
    OutputSpec,
    PublishOutput,
    StreamSpec,
    UrlOutput,
)
from streamer.sources.video import SourceKind, classify

__all__ = ["Refused", "check_types", "confine", "endpoint_free", "judge"]

# FFmpeg protocols a network URL of each scheme may use (what its protocol opens in turn)
_SOURCE_PROTOCOLS = {
    "rtsp": "rtsp,rtp,srtp,udp,tcp,tls,http,https,httpproxy",
    "rtsps": "rtsps,rtsp,rtp,srtp,udp,tcp,tls",
    "rtmp": "rtmp,tcp", "rtmps": "rtmps,rtmp,tcp,tls",
    "udp": "udp", "tcp": "tcp", "srt": "srt", "rtp": "rtp,udp",
    "http": "http,https,tcp,tls,crypto,httpproxy",
    "https": "https,http,tcp,tls,crypto,httpproxy",
}
_OUTPUT_PROTOCOLS = {
    "udp": "udp", "tcp": "tcp", "srt": "srt", "rtp": "rtp,udp",
    "rtmp": "rtmp,tcp", "rtmps": "rtmps,rtmp,tcp,tls",
    "rtsp": "rtsp,rtp,udp,tcp", "http": "http,tcp", "https": "https,http,tcp,tls",
}
_NETWORK_MUXERS = ("mpegts", "flv", "rtsp", "rtp", "rtp_mpegts")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://")
_CAMERA = re.compile(r"^/dev/video[0-9]{1,3}$")


class Refused(ConfigError):
    """A request refused, naming its key; ``status``: 400 (bad), 403 (not allowed over HTTP)
    or 409 (in conflict with what runs or exists)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_types(data: Any) -> None:
    """What the config loader converts leniently, checked strictly for a request: the
    source's FFmpeg options must be strings (an int where a string belongs is refused), where
    they are now (``source.options``) or in the old spelling (``options``)."""
    if not isinstance(data, dict):
        return
    source = data.get("source")
    for key, options in (("stream.source.options", source.get("options")
                          if isinstance(source, dict) else None),
                         ("stream.options", data.get("options"))):
        for name, value in options.items() if isinstance(options, dict) else ():
            if not isinstance(value, str):
                raise Refused(f"config key '{key}.{name}' must be str, got {value!r}")


def _scheme(url: str) -> str | None:
    match = _SCHEME.match(url)
    return match.group(1) if match else None


def confine(spec: StreamSpec, http: HttpSettings) -> StreamSpec:
    """``spec`` as a stream added over HTTP may run (protocol whitelists added), or Refused."""
    options = dict(spec.source.options)
    for key in options:
        if key.lower() in ("protocol_whitelist", "protocol_blacklist"):
            raise Refused(f"stream.source.options.{key}: not settable over HTTP", 403)
    kind = classify(spec.input)
    if kind is SourceKind.LAVFI and not http.allow_lavfi:
        raise Refused("stream.input: lavfi graphs are not accepted over HTTP (the "
                      "operator's http.allow_lavfi allows them)", 403)
    if kind is SourceKind.CAMERA and not _CAMERA.match(spec.input):
        raise Refused(f"stream.input: {spec.input!r} is not a camera (/dev/videoN)", 403)
    if kind is SourceKind.NETWORK:
        scheme = _scheme(spec.input)
        if scheme not in _SOURCE_PROTOCOLS:
            raise Refused(f"stream.input: {spec.input!r}: network sources over HTTP take "
                          f"{sorted(_SOURCE_PROTOCOLS)}", 403)
        options["protocol_whitelist"] = _SOURCE_PROTOCOLS[scheme]
    if kind.local and not http.allow_local_sources:
        raise Refused("stream.input: local files are not accepted over HTTP, only network "
                      "URLs and cameras (the operator's http.allow_local_sources allows "
                      "them)", 403)
    outputs = tuple(_confine_output(o, f"stream.outputs[{i}]", http)
                    for i, o in enumerate(spec.outputs))
    return dataclasses.replace(spec, source=dataclasses.replace(spec.source, options=options),
                               outputs=outputs)


def _confine_output(spec: OutputSpec, key: str, http: HttpSettings) -> OutputSpec:
    if isinstance(spec, PublishOutput):
        if _scheme(str(spec.endpoint)) != "tcp":
            raise Refused(f"{key}.endpoint: only tcp:// endpoints over HTTP, got "
                          f"{spec.endpoint!r}", 403)
        if spec.curve_secret or spec.curve_clients:
            raise Refused(f"{key}: CURVE key files are set in the operator's YAML, not over "
                          "HTTP", 403)
        return spec
    if isinstance(spec, UrlOutput):
        scheme = _scheme(spec.url)
        if scheme not in _OUTPUT_PROTOCOLS:
            raise Refused(f"{key}.url: only network protocols over HTTP "
                          f"({sorted(_OUTPUT_PROTOCOLS)}), got {spec.url!r}", 403)
        if spec.format is not None and spec.format not in _NETWORK_MUXERS:
            raise Refused(f"{key}.format: a network muxer over HTTP ({list(_NETWORK_MUXERS)}), "
                          f"got {spec.format!r}", 403)
        return dataclasses.replace(spec, protocols=_OUTPUT_PROTOCOLS[scheme])
    path = _inside_roots(spec.path, f"{key}.path", http.output_roots)
    if isinstance(spec, HlsOutput):
        playlist = path if path.suffix == ".m3u8" else path / "index.m3u8"
        folder = playlist.parent
        if not (folder.is_dir() or folder.parent.is_dir()):
            raise Refused(f"{key}.path: the folder {folder.parent} does not exist")
        if folder.is_symlink():
            raise Refused(f"{key}.path: {folder} is a link", 403)
        _no_overwrite(playlist, f"{key}.path", spec.overwrite)
        return dataclasses.replace(spec, path=str(path), protocols="file")
    _no_overwrite(path, f"{key}.path", spec.overwrite)
    return dataclasses.replace(spec, path=str(path))


def _inside_roots(given: str, key: str, roots: Iterable[str]) -> Path:
    """``given`` (absolute, or relative to the first root) as a path inside one of ``roots``:
    no ``..``, and its folder, links resolved, inside the root, links resolved."""
    roots = list(roots)
    if not roots:
        raise Refused(f"{key}: files are not written over HTTP (the operator's "
                      "http.output_roots names the folders they may go to)", 403)
    path = Path(given)
    if ".." in path.parts:
        raise Refused(f"{key}: '..' is not allowed in {given!r}", 403)
    if not path.is_absolute():
        path = Path(roots[0]) / path
    for root in roots:
        real_root = os.path.realpath(root)
        # the folder resolved (links and all), the last component as named
        where = os.path.join(os.path.realpath(path.parent), path.name)
        if os.path.commonpath([real_root, where]) == real_root and where != real_root:
            if path.is_symlink():
                raise Refused(f"{key}: {given!r} is a link", 403)
            return Path(where)
    raise Refused(f"{key}: {given!r} is outside the output roots {roots}", 403)


def _no_overwrite(path: Path, key: str, overwrite: bool) -> None:
    if path.is_symlink():
        raise Refused(f"{key}: {path} is a link", 403)
    if path.exists() and not overwrite:
        raise Refused(f"{key}: {path} exists (overwrite: true replaces it)", 409)
    if path.exists() and not path.is_file():
        raise Refused(f"{key}: {path} is not a file", 409)


def endpoint_free(endpoint: str) -> bool:
    """Whether a ``tcp://HOST:PORT`` endpoint can be bound now (other endpoints: True)."""
    parts = urlsplit(endpoint)
    if parts.scheme != "tcp" or parts.port is None:
        return True
    host = parts.hostname or "0.0.0.0"
    if host == "*":
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ binds
        try:
            probe.bind((host, parts.port))
        except OSError:
            return False
    return True


def judge(spec: StreamSpec, bound: dict[str, str]) -> None:
    """What can be checked before ``spec`` starts, or Refused naming the key. ``bound``: the
    ZeroMQ endpoints the running streams hold, to the stream that holds each."""
    for i, output in enumerate(spec.outputs):
        key = f"stream.outputs[{i}]"
        if isinstance(output, PublishOutput):
            endpoint = str(output.endpoint)
            holder = bound.get(endpoint)
            if holder is not None:
                raise Refused(f"{key}.endpoint: {endpoint} is bound by stream {holder!r}", 409)
            if not endpoint_free(endpoint):
                raise Refused(f"{key}.endpoint: {endpoint} is in use", 409)
        folder = None
        if isinstance(output, FileOutput):
            folder = Path(output.path).parent
        elif isinstance(output, HlsOutput):
            path = Path(output.path)
            folder = path.parent if path.suffix == ".m3u8" else path
            if not folder.exists():
                folder = folder.parent  # the HLS folder is made, in a folder that exists
        if folder is not None:
            if not folder.is_dir():
                raise Refused(f"{key}.path: the folder {folder} does not exist")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise Refused(f"{key}.path: the folder {folder} is not writable")
    weights = spec.model.weights
    if weights not in ("default", "random"):
        if not Path(weights).is_file():
            raise Refused(f"stream.model.weights: no such file: {weights}")
        try:
            load_checkpoint(weights)
        except Exception as error:  # any failure to load is the answer
            raise Refused(f"stream.model.weights: {weights} does not load as a checkpoint: "
                          f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
                          ) from error
