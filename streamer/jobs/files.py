"""One file (or any input ``run`` reads) through an engine to its outputs, as ``run`` does it:
shared by a plain run, a folder of inputs and each segment of a long file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamer.config import RunConfig
from streamer.engine import Engine, engine_for_settings
from streamer.runtime.pipeline import Pipeline
from streamer.sources.video import VideoSource
from streamer.stats import RunStats

__all__ = ["build_engine", "decoded_as_configured", "enhance"]


def build_engine(config: RunConfig) -> Engine:
    return engine_for_settings(config.model, config.smoothing, stabiliser=config.stabiliser)


def decoded_as_configured(config: RunConfig, input: str, **more: Any) -> VideoSource:
    """``input`` decoded as the config says (demuxer options, tone map, deinterlacing): every
    reader of one job's input must see the same frames and the same StreamInfo (the join and
    the output check choose the codec and pixel format from it, as the segments did)."""
    s = config.source
    return VideoSource(input, options=s.options, tone_map=s.tone_map,
                       deinterlace=s.deinterlace, **more)


def enhance(config: RunConfig, engine: Engine, *, input: str, output: str | Path | None,
            progress: bool = True, progress_every_s: float = 10.0,
            progress_to: str | None = None) -> RunStats:
    """Enhance ``input`` into ``output`` (and/or the config's publish endpoint) with the
    config's source, batching and encode settings; Ctrl-C finishes what was read.
    ``progress_to``: where ffmpeg's ``-progress`` lines go (a file, ``pipe:N``)."""
    s = config.source
    source = decoded_as_configured(config, input, stream_id=s.stream_id, reconnect=s.reconnect,
                                   max_frames=s.max_frames, live=s.live)
    pipeline = Pipeline(source, engine, output=(output, config.encode) if output else None,
                        publish=config.publish, batching=config.batch, progress=progress,
                        progress_every_s=progress_every_s, progress_to=progress_to)
    return pipeline.run()
