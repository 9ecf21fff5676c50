"""What the HTTP API drives: a :class:`Backend` holding the streams, either the service in this
process (:class:`LocalBackend`, ``workers: 1``) or a supervisor of worker processes
(:class:`~streamer.service.supervisor.Supervisor`). The routes, the token, the Host/Origin
checks and the pages stay in http.py, the same for both, so clients see one API.

Queries are coroutines (the supervisor's cross a pipe and must not hold the event loop);
start, drain and summary are the command's, called from its own thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from prometheus_client import generate_latest

from streamer.service.config import ServeConfig, StreamSpec
from streamer.service.guard import judge
from streamer.service.metrics import registry_for
from streamer.service.service import ServedStream, Service
from streamer.sinks.preview import Snapshot

__all__ = ["Backend", "LocalBackend", "NoStream"]


class NoStream(LookupError):
    """No stream of that id (HTTP 404)."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"no stream {stream_id!r}")


class Backend(Protocol):
    @property
    def config(self) -> ServeConfig: ...

    def start(self) -> None:
        """Start every configured stream (ConfigError when an engine cannot be built)."""

    def drain(self) -> None:
        """Every stream drains, then the engines stop; safe to call more than once."""

    def summary(self) -> list[dict[str, Any]]:
        """Each stream as described at the end (after drain)."""

    async def streams(self) -> list[dict[str, Any]]: ...

    async def stream(self, stream_id: str) -> dict[str, Any]:
        """The stream's description (NoStream when there is none)."""

    async def preview(self, stream_id: str) -> Snapshot | None:
        """Its latest picture, None before the first (NoStream when there is no stream)."""

    async def add(self, spec: StreamSpec) -> dict[str, Any]:
        """Check what can be checked (guard.judge), start it, describe it (Refused,
        StreamExists or ConfigError otherwise)."""

    async def remove(self, stream_id: str) -> None:
        """Drain and drop it (NoStream when there is none)."""

    async def problems(self) -> list[str]:
        """Why the service is not healthy (an engine stopped, a worker down); empty: healthy."""

    async def waiting(self) -> dict[str, str] | None:
        """The streams not up (connecting, down, failed) with their state; None while the
        configured streams are still being started."""

    async def metrics(self) -> bytes:
        """Prometheus text of every stream, engine and process."""


class LocalBackend:
    """The :class:`Service` in this process: reads are direct (a snapshot under its lock);
    what blocks (an engine build, a drain) runs in the event loop's worker threads."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.registry = registry_for(service)

    @property
    def config(self) -> ServeConfig:
        return self.service.config

    def start(self) -> None:
        self.service.start()

    def drain(self) -> None:
        self.service.drain()

    def summary(self) -> list[dict[str, Any]]:
        return [stream.describe() for stream in self.service.all_streams()]

    async def streams(self) -> list[dict[str, Any]]:
        return [stream.describe() for stream in self.service.all_streams()]

    async def stream(self, stream_id: str) -> dict[str, Any]:
        return self._find(stream_id).describe()

    async def preview(self, stream_id: str) -> Snapshot | None:
        return self._find(stream_id).preview.latest

    async def add(self, spec: StreamSpec) -> dict[str, Any]:
        judge(spec, self.service.bound_endpoints())
        stream = await asyncio.get_running_loop().run_in_executor(None, self.service.add, spec)
        return stream.describe()

    async def remove(self, stream_id: str) -> None:
        removed = await asyncio.get_running_loop().run_in_executor(
            None, self.service.remove, stream_id)
        if not removed:
            raise NoStream(stream_id)

    async def problems(self) -> list[str]:
        stopped = [f"{task}/{model} ({weights})" for (model, task, weights), server
                   in self.service.engines() if not server.running]
        return [f"engines stopped: {stopped}"] if stopped else []

    async def waiting(self) -> dict[str, str] | None:
        return self.service.not_ready() if self.service.ready.is_set() else None

    async def metrics(self) -> bytes:
        return generate_latest(self.registry)

    def _find(self, stream_id: str) -> ServedStream:
        stream = self.service.streams.get(stream_id)
        if stream is None:
            raise NoStream(stream_id)
        return stream
