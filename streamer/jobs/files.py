"""One file (or any input ``run`` reads) through an engine to its outputs, as ``run`` does it:
shared by a plain run, a folder of inputs and each segment of a long file."""

from __future__ import annotations

from pathlib import Path

from streamer.config import RunConfig
from streamer.engine import Engine
from streamer.pipeline import Pipeline
from streamer.sources.video import VideoSource
from streamer.stats import RunStats

__all__ = ["enhance"]


def enhance(config: RunConfig, engine: Engine, *, input: str, output: str | Path | None,
            progress: bool = True, progress_every_s: float = 10.0) -> RunStats:
    """Enhance ``input`` into ``output`` (and/or the config's publish endpoint) with the
    config's source, batching and encode settings; Ctrl-C finishes what was read."""
    s = config.source
    source = VideoSource(input, stream_id=s.stream_id, options=s.options,
                         reconnect=s.reconnect, max_frames=s.max_frames, live=s.live,
                         tone_map=s.tone_map, deinterlace=s.deinterlace)
    pipeline = Pipeline(source, engine, output=(output, config.encode) if output else None,
                        publish=config.publish, batching=config.batch, progress=progress,
                        progress_every_s=progress_every_s)
    return pipeline.run()
