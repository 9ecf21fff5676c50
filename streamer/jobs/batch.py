"""Several inputs, or folders of them, into one output folder: names (and subfolders) kept,
one engine for all, a failed file reported and the rest still done, a table at the end. A
folder's videos and photos are both taken (a photo comes out a photo of its own format,
enhanced on its own: jobs/photos.py).

Every output is planned before any work: a name two inputs would share, or an existing output
without ``--overwrite``, is refused up front rather than found out hours later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hdm.errors import HDMError
from streamer.errors import ConfigError, StoppedAtOnce, StreamerError
from streamer.media.photo import PHOTO_EXTENSIONS
from streamer.stats import RunStats

__all__ = ["FileJob", "FileResult", "is_folder_target", "plan", "run_all", "table"]

log = logging.getLogger(__name__)

# What a folder's videos are named (PyAV opens more, but a folder also holds other files).
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".mxf", ".flv",
    ".wmv", ".mpg", ".mpeg", ".3gp", ".y4m"})
TAKEN = VIDEO_EXTENSIONS | PHOTO_EXTENSIONS


@dataclass(frozen=True)
class FileJob:
    input: Path
    output: Path


@dataclass
class FileResult:
    job: FileJob
    stats: RunStats | None = None
    error: str | None = None
    seconds: float = 0.0
    stopped: bool = False  # a segmented job interrupted (its finished segments are kept)
    stopped_at_once: str | None = None  # interrupted again while it drained: what it holds

    @property
    def interrupted(self) -> bool:
        return (self.stopped or self.stopped_at_once is not None
                or (self.stats is not None and self.stats.interrupted))

    @property
    def ok(self) -> bool:
        return self.error is None and self.stats is not None and not self.interrupted


def is_folder_target(output: str | None) -> bool:
    """``-o DIR/`` (a trailing slash) or an existing folder."""
    return output is not None and (output.endswith(("/", "\\")) or Path(output).is_dir())


def plan(inputs: Sequence[str], output_dir: Path, *, overwrite: bool) -> list[FileJob]:
    """One job per input file, or per video or photo under an input folder (its subfolders
    mirrored under ``output_dir``); outputs keep the input's name and container."""
    jobs: list[FileJob] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in TAKEN
                           and p.is_file() and not _inside(p, output_dir))
            if not found:
                raise ConfigError(f"no videos or photos in {path} "
                                  f"({', '.join(sorted(TAKEN))})")
            jobs += [FileJob(p, output_dir / p.relative_to(path)) for p in found]
        elif path.is_file():
            jobs.append(FileJob(path, output_dir / path.name))
        else:
            raise ConfigError(f"input not found: {given}")
    seen: dict[Path, Path] = {}
    for job in jobs:
        if job.output in seen:
            raise ConfigError(f"{seen[job.output]} and {job.input} would both be written to "
                              f"{job.output}; run them into different folders")
        seen[job.output] = job.input
    existing = [j.output for j in jobs if j.output.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise ConfigError(f"{existing[0]}{more} exist; pass -y (--overwrite) to replace them")
    return jobs


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def run_all(jobs: Sequence[FileJob], enhance: Callable[[FileJob], RunStats]
            ) -> list[FileResult]:
    """Each job in turn; a failed one is logged and the rest go on; Ctrl-C ends the batch
    after the file in progress is finished properly, or its segmented job stopped (its
    result says interrupted); a second Ctrl-C stops that file at once (its result says what
    its output holds)."""
    results = []
    for number, job in enumerate(jobs, 1):
        log.info("[%d/%d] %s -> %s", number, len(jobs), job.input, job.output)
        job.output.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = FileResult(job)
        try:
            result.stats = enhance(job)
        except (StreamerError, HDMError, OSError) as error:
            result.error = str(error)
            log.error("%s: %s", job.input, error)
        except StoppedAtOnce as stopped:
            result.stopped_at_once = str(stopped)
        except KeyboardInterrupt:
            result.stopped = True
        result.seconds = time.monotonic() - started
        results.append(result)
        if result.interrupted:
            break
    return results


def table(results: Sequence[FileResult], total: int) -> str:
    """The end summary: one row per input, then the totals."""
    rows = [("input", "frames", "fps", "time", "result")]
    for r in results:
        stats = r.stats
        frames = str(stats.frames_out) if stats else "-"
        fps = f"{stats.frames_out / r.seconds:.1f}" if stats and r.seconds > 0 else "-"
        if r.error is not None:
            result = f"error: {r.error}"
        elif r.stopped_at_once is not None:
            result = r.stopped_at_once
        elif r.stopped:
            result = "interrupted (--resume continues its segments)"
        elif r.interrupted:
            result = f"interrupted -> {r.job.output}"
        else:
            result = f"ok -> {r.job.output}"
            if stats is not None and stats.ended_early:
                result += " (input ended early)"
        rows.append((str(r.job.input), frames, fps, f"{r.seconds:.1f} s", result))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
             + "  " + row[4] for row in rows]
    done = sum(r.ok for r in results)
    failed = sum(r.error is not None for r in results)
    lines.append(f"{done} of {total} files enhanced, {failed} failed"
                 + (f", {total - len(results)} not started" if len(results) < total else ""))
    return "\n".join(lines)
