"""The camera corpus as a table (the README's): each clip of tests/streamer/corpus.py enhanced
by the classical engine into its own container, MP4 and Matroska, and read back (PyAV for the
frames and their times, ffprobe for the streams, the timecode and the tags). The known gaps
follow the table, with their reasons. Needs Debian's ffmpeg and ffprobe.

    python -m benchmarks.camera_corpus [--folder DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from streamer.engine import Engine, EngineSettings
from tests.streamer.corpus import CLIPS, KNOWN_GAPS, Outcome, make, outcome


def _streams(result: Outcome) -> str:
    kept = ", ".join(result.kept) or "none"
    left = "; ".join(f"**left out**, warned: {line}" for line in result.left_out)
    return f"{kept}{'; ' + left if left else ''}"


def _timecode(result: Outcome) -> str:
    was, now = result.timecode
    if was is None:
        return "-"
    return f"{was} kept" if was == now else f"{was} -> {now or 'none'}"


def _tags(result: Outcome) -> str:
    kept = ", ".join(f"{k.split(' ', 1)[1] if k.startswith('file ') else k}"
                     for k in result.tags) or "-"
    lost = ", ".join(result.lost_tags)
    return f"{kept}{'; **lost**: ' + lost if lost else ''}"


def row(kind: str, name: str, result: Outcome, gap: int | None) -> str:
    problems = result.problems()
    verdict = "ok" if not problems else f"gap {gap}: " + "; ".join(problems)
    frames = f"{result.frames[1]}/{result.frames[0]}" if result.refused is None else "-"
    return (f"| {kind} | {name} | .{result.into} | {verdict} | {frames} | {_streams(result)} | "
            f"{_timecode(result)} | {_tags(result)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="where the clips are made (default: a "
                        "temporary folder)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="camera-corpus-"))
    folder.mkdir(parents=True, exist_ok=True)
    engine = Engine.build(EngineSettings(model="dcp", task="dehaze", device="cpu"))
    print("| kind | file | into | result | frames written/read | streams kept; left out "
          "(why) | timecode | tags kept; lost |")
    print("|---|---|---|---|---|---|---|---|")
    reasons: list[str] = []
    started = time.perf_counter()
    for clip in CLIPS:
        src = make(clip, folder)
        for into in clip.into:
            result = outcome(src, into, engine, folder)
            gap = KNOWN_GAPS.get((clip.name, into))
            number = None
            if gap is not None:
                if gap[1] not in reasons:
                    reasons.append(gap[1])
                number = reasons.index(gap[1]) + 1
            print(row(clip.kind, clip.name, result, number), flush=True)
    print()
    for n, reason in enumerate(reasons, 1):
        print(f"{n}. {reason}")
    print(f"\n({time.perf_counter() - started:.0f} s, clips in {folder})")


if __name__ == "__main__":
    main()
