"""The resume manifest of a segmented job: which segments are finished, for which input and
settings. It lives in the job's folder beside the output (``OUT.hdm-job/manifest.json``) and is
rewritten atomically after each segment, so a crash or SIGKILL loses at most the segments in
progress. ``--resume`` continues a job only if the input and the settings are the ones it was
started with; otherwise it starts over and says why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.errors import ConfigError, SinkError
from streamer.jobs.lock import LOCK_NAME
from streamer.jobs.segments import Segment, SegmentResult, file_sha256

__all__ = ["Manifest", "check_folder", "input_fingerprint", "settings_fingerprint"]

log = logging.getLogger(__name__)
VERSION = 2  # 2: each finished segment with its SHA-256
_SAMPLE = 8 << 20  # bytes hashed at each end of the input


def input_fingerprint(path: Path, video_index: str) -> dict[str, Any]:
    """Size, the first and last 8 MiB and the video's packet index (every pts, keyframe and
    packet size: see segments.plan_segments): reading the whole of a long file to resume it
    would take as long as a segment, and any edit of the video changes the index."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as file:
        digest.update(file.read(_SAMPLE))
        if size > _SAMPLE:
            file.seek(max(_SAMPLE, size - _SAMPLE))
            digest.update(file.read(_SAMPLE))
    return {"size": size, "ends_sha256": digest.hexdigest(),
            "video_index_sha256": video_index}


def settings_fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Manifest:
    folder: Path
    input: dict[str, Any]
    settings: str
    finished: dict[int, SegmentResult] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / "manifest.json"

    @classmethod
    def start(cls, folder: Path, input: dict[str, Any], settings: str, *, resume: bool
              ) -> Manifest:
        """The job's manifest: the one on disk if ``resume`` and it matches this input and
        these settings, else a new one in an emptied folder (saying why)."""
        fresh = cls(folder, input, settings)
        check_folder(folder)
        previous = cls._read(folder)
        if previous is None:
            if resume:
                log.warning("no earlier job to resume in %s: starting", folder)
        elif not resume:
            log.warning("an earlier unfinished job is in %s: starting over (--resume "
                        "continues it)", folder)
        elif previous.input != input:
            log.warning("starting over: the input is not the one the job was started on "
                        "(%s)", _difference(previous.input, input))
        elif previous.settings != settings:
            log.warning("starting over: the settings differ from the ones the job was "
                        "started with")
        else:
            intact = {i: r for i, r in previous.finished.items() if _intact(folder, r)}
            for part in folder.glob("*.part.*"):  # a segment cut short by the crash
                part.unlink()
            if len(intact) != len(previous.finished):
                previous.finished = intact
                previous.save()
            log.info("resuming: %d segments already done", len(previous.finished))
            return previous
        _empty(folder)
        fresh.save()
        return fresh

    @classmethod
    def _read(cls, folder: Path) -> Manifest | None:
        try:
            data = json.loads((folder / "manifest.json").read_text())
            if data.get("version") != VERSION:
                return None
            finished = {int(k): SegmentResult(**v) for k, v in data["finished"].items()}
            return cls(folder, data["input"], data["settings"], finished)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def done(self, segment: Segment) -> bool:
        return segment.index in self.finished

    def record(self, result: SegmentResult) -> None:
        self.finished[result.index] = result
        self.save()

    def save(self) -> None:
        """Write to a temporary file, flush it to disk, then rename over the old one: the
        manifest on disk is always a whole one."""
        data = {"version": VERSION, "input": self.input, "settings": self.settings,
                "finished": {str(i): dataclasses.asdict(r)
                             for i, r in sorted(self.finished.items())}}
        temporary = self.path.with_suffix(".tmp")
        try:
            with temporary.open("w") as file:
                json.dump(data, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
        except OSError as error:  # a full disk, say: one line, the old manifest still whole
            raise SinkError(f"cannot write the job's manifest {self.path}: "
                            f"{error.strerror or error}") from error


def _ours(folder: Path) -> bool:
    """Whether ``folder`` holds a manifest of ours (of any version): a JSON object with our
    keys. Only such a folder is ever emptied."""
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"version", "input", "settings", "finished"} <= data.keys()


def check_folder(folder: Path) -> None:
    """A job folder that exists must be a real folder (no link) that is empty (but for our
    lock) or holds our manifest: one of the same name that someone else made is never
    emptied, nor locked."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(f"{folder} is in the way of the job's folder and is not one "
                          "(a link or a file): move it or choose another output")
    if folder.is_dir() and any(p.name != LOCK_NAME for p in folder.iterdir()) and not _ours(
            folder):
        raise ConfigError(f"{folder} exists and is not a job folder (no manifest of ours "
                          "in it): it is left as it is; move it or choose another output")


def _empty(folder: Path) -> None:
    """``folder`` made (or emptied) for a new job; the lock (held by this run) stays."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _intact(folder: Path, result: SegmentResult) -> bool:
    """The finished segment's file is the one that was written: its size, then its SHA-256
    (a file damaged in place at the same size is caught); one that is not is redone, and
    the log says so."""
    path = folder / result.file
    if not path.is_file():
        why = "is missing"
    elif path.stat().st_size != result.bytes:
        why = "has another size than was written"
    elif file_sha256(path) != result.sha256:
        why = "is damaged (its SHA-256 is not the one recorded)"
    else:
        return True
    log.warning("segment %d (%s) %s: redoing it", result.index, result.file, why)
    return False


def _difference(before: dict[str, Any], now: dict[str, Any]) -> str:
    changed = [key for key in now if before.get(key) != now[key]]
    return "its " + ", ".join(k.replace("_sha256", "").replace("_", " ") for k in changed)
