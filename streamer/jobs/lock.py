"""One run per job: an advisory lock (``flock``) on ``OUT.hdm-job/job.lock``, held for the
whole run. The kernel drops it when the process dies, however it dies (SIGKILL included), so
a job whose run has died is taken over by the next, and never a job another run is writing.

The lock file lives in the job's folder and goes with it when the job is done: a run that
locked a file which was removed meanwhile (the folder cleaned up by the run before it) sees
that it holds a lock on nothing and locks the new file instead.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from streamer.errors import JobError, SinkError

__all__ = ["LOCK_NAME", "JobLock", "JobLockedError"]

LOCK_NAME = "job.lock"


class JobLockedError(JobError):
    """Another live process runs this job."""


class JobLock:
    """``with JobLock(folder):`` creates ``folder`` if need be and holds its lock, or raises
    :class:`JobLockedError` at once (no waiting) while another process holds it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(10):  # another run cleaning the folder up as this one starts
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as error:  # a missing or read-only folder of the output
                raise SinkError(f"cannot make the job folder {self.folder}: "
                                f"{error.strerror or error}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise JobLockedError(
                    f"another run of this job{holder} is writing {self.folder}: wait for it "
                    "to end (a run that has died leaves no lock; then --resume "
                    "continues)") from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)  # locked a file that was removed meanwhile: try the new one
        raise JobLockedError(f"cannot lock {self.path}: it keeps being removed")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the lock

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {text})" if text.isdigit() else ""
