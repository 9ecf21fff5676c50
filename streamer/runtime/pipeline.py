"""``hdm-stream run``: one source to a video output (a file, a network stream, an HLS
playlist) and/or a ZeroMQ endpoint, as a server with one session (see server.py for how it runs
and stops; :meth:`Pipeline.run` for Ctrl-C, once and twice)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from streamer.engine import Engine
from streamer.errors import ConfigError, OutputIncompleteError, RunErrors, StoppedAtOnce
from streamer.publish.publisher import PublishSettings
from streamer.queues import Closed, Stopping
from streamer.runtime.batcher import BatchSettings
from streamer.runtime.server import Server
from streamer.runtime.session import StreamSession
from streamer.sinks.build import (
    OutputTarget,
    VideoTarget,
    build_sinks,
    video_outputs,
    video_target,
)
from streamer.sinks.encoder import EncodeSettings
from streamer.sinks.file import FileTarget
from streamer.sinks.pictures import PicturesTarget
from streamer.sinks.progress import ProgressTarget
from streamer.sources import Source
from streamer.sources.video import SourceKind, VideoSource
from streamer.stats import RunStats

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)


class Pipeline:
    """One source through one engine to a video output and/or a ZeroMQ endpoint."""

    def __init__(
        self,
        source: Source,
        engine: Engine,
        *,
        output: tuple[str | Path, EncodeSettings] | None = None,
        publish: PublishSettings | None = None,
        batching: BatchSettings = BatchSettings(),
        progress: bool = True,
        progress_every_s: float = 10.0,
        progress_to: str | None = None,
    ) -> None:
        """``progress_to``: a file or ``pipe:N`` for ffmpeg's ``-progress`` lines (a block
        every half second)."""
        stopping = Stopping()
        targets: list[OutputTarget] = []
        encode = EncodeSettings()
        if output is not None:
            path, encode = output
            video = _with_input_metadata(video_target(str(path)), source)
            written = video.path if isinstance(video, FileTarget) else (
                Path(video.pattern) if isinstance(video, PicturesTarget) else None)
            if written is not None and _reads(source, written):
                raise ConfigError(f"output {path} would overwrite the input")
            targets.append(video)
        if publish is not None and publish.endpoint is not None:
            targets.append(publish)
        if not targets:
            raise ConfigError("nothing to do: give an output file or a publish endpoint")
        if progress_to is not None:
            targets.append(ProgressTarget(progress_to))
        sinks = build_sinks(targets, encode, live=source.live, stopping=stopping)
        self.session = StreamSession(source, sinks, batching=batching, progress=progress,
                                     progress_every_s=progress_every_s, stopping=stopping)
        self.server = Server(engine, batching)

    @property
    def stats(self) -> RunStats:
        return self.session.stats

    def start(self) -> None:
        """Open the source and the outputs, warm the engine up, and start the threads; a
        failure on the way closes what was opened."""
        self.server.add(self.session)
        self.server.start()

    def stop(self) -> None:
        """Drain: stop reading; what was read is still processed and written (a push consumer
        that has gone away is given up on after streamer.publish.publisher.DRAIN_GRACE_S)."""
        self.server.drain()

    def join(self) -> RunStats:
        """Wait for the run to end; raises every stage error (see Server.join). A file output
        found incomplete once closed is in the statistics too, and its error carries them
        (the summary says what was missing)."""
        try:
            self.server.join()
        except (OutputIncompleteError, RunErrors) as error:
            found = [e for e in getattr(error, "errors", [error])
                     if isinstance(e, OutputIncompleteError)]
            if found:
                self.session.stats.output_incomplete = "; ".join(map(str, found))
                for incomplete in found:
                    incomplete.stats = self.session.stats
            raise
        return self.session.stats

    def run(self) -> RunStats:
        """start() and join(). Ctrl-C (SIGTERM too, as the CLI maps it) drains: reading stops
        and what was read is finished. Another one while that drains stops at once: what is
        still queued is given up, every output is closed with what it has (a file with its
        trailer) and :class:`~streamer.errors.StoppedAtOnce` says what each holds. An
        interrupt landing anywhere in this loop counts, so none escapes mid-close (that had
        left a file cut off as a SIGKILL leaves it)."""
        self.start()
        interrupts = 0
        while True:
            try:
                if interrupts == 1:
                    log.warning("interrupted: finishing the frames already read (interrupt "
                                "again to stop at once)")
                    self.stop()
                elif interrupts > 1:
                    self.session.abort(Closed("stopped at once"))
                stats = self.join()
                break
            except KeyboardInterrupt:
                interrupts += 1
        if interrupts > 1:
            raise StoppedAtOnce(self._stopped_state())
        return stats

    def _stopped_state(self) -> str:
        """What a run stopped at once leaves: each video output's state, and the frames read
        that never reached it."""
        outputs = video_outputs(self.session.sinks)
        held = "; ".join(output.closed_state() for output in outputs) or "nothing was written"
        read = self.session.stats.frames_in
        unwritten = read - min((output.frames_written for output in outputs), default=read)
        lost = f"; {unwritten} of the {read} frames read were not written" if unwritten else ""
        return f"stopped at once (a second interrupt): {held}{lost}"


def _with_input_metadata(video: VideoTarget, source: Source) -> VideoTarget:
    """Pictures out of an image sequence take its pictures' metadata (their EXIF: the
    camera's tags and orientation), as a photo into a photo does."""
    if isinstance(video, PicturesTarget) and isinstance(source, VideoSource) \
            and source.kind is SourceKind.SEQUENCE:
        return dataclasses.replace(video, metadata_from=source.url)
    return video


def _reads(source: Source, path: Path) -> bool:
    """The output is the input file, by inode: symbolic and hard links included (resolved
    paths miss the latter, and writing the output would destroy the input); or the input's
    image sequence, by its pattern."""
    if not isinstance(source, VideoSource):
        return False
    if source.kind is SourceKind.SEQUENCE:
        return Path(source.url).resolve() == path.resolve()
    if source.kind is not SourceKind.FILE:
        return False
    try:
        return os.path.samefile(source.url, path)
    except OSError:  # the output does not exist yet
        return False
