"""Files that survive a crash and locks that keep one writer: the only place this project writes files from.

Guarantees (README "What is guaranteed"):
- `atomic_write_text` / `atomic_write`: a temporary file in the same directory, fsynced, renamed over the target,
  then the directory fsynced. A reader (or the next command after a kill -9 or a power cut) sees the old file or
  the new one, never a partial one. The file's mode follows the umask (0644 under the usual 022), as
  `open()` would give, not `mkstemp`'s 0600.
- `append_jsonl`: append-only records (metrics, bench and breakdown records). Each call writes whole lines in
  one `write` and fsyncs them. A torn last line (a crash or a full disk mid-append) is cut off before the next
  append, with one warning; `read_jsonl` skips it (warning too) without modifying the file, so readers of a
  read-only results folder work. A malformed line that is *not* the last one was not torn by a crash: it is an
  error naming the file and line. Appends read only the file's end, so they cost the same at any length.
- `clean_temps`: removes the leftovers of killed atomic writes (`.NAME.xxxxxxxx.tmp`, our names only); callers
  hold the directory's lock, so no live writer owns them.
- `Lock`: one live holder per lock file, across processes and hosts. It is a POSIX record lock
  (`fcntl.lockf`), which NFS (v3 through lockd, v4 natively) and Lustre/GPFS propagate between nodes, unlike
  `flock` on some of them. The kernel (or the NFS server's lease) drops it when the holder dies, even by
  kill -9, so a stale lock from a dead process is taken over without any clean-up; the pid/host/date written
  into the file only name the live holder in the error. POSIX locks belong to a process, not a file handle,
  so the same process is kept out by a registry of the locks it holds.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # mkstemp(prefix=".NAME.", suffix=".tmp")


class LockHeld(RuntimeError):
    """Another live process holds the lock (the message names it and says what to do)."""


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask(x) is process-wide and racy with threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new file in `path` durable (some filesystems cannot fsync a directory: ignored)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS):
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call `write(f)` on a binary temporary file, then put it at `path` atomically and durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` so readers see the old file or the new one, never a partial one."""
    atomic_write(path, lambda f: f.write(text.encode()))


def clean_temps(directory: str | Path) -> list[Path]:
    """Remove leftover temporary files of killed atomic writes in `directory` (not recursive); returns them."""
    removed = []
    directory = Path(directory)
    if directory.is_dir():
        for p in directory.iterdir():
            if TEMP.match(p.name) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


# ---- append-only JSONL ------------------------------------------------------------------------------------------


def _warn(message: str) -> None:
    print(f"hiera-study: warning: {message}", file=sys.stderr, flush=True)


def _split(data: bytes, path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a JSONL file's bytes and the length of its intact part.

    Every write ends with a newline, so only the bytes after the last newline can be torn: they are dropped unless
    they hold a whole JSON object (a complete record whose newline alone is missing, e.g. a hand-edited file).
    """
    head, sep, tail = data.rpartition(b"\n")
    records = []
    for i, line in enumerate(head.split(b"\n") if sep else []):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise ValueError(
                f"{path} line {i + 1} is not a JSON record (only a last line can be torn by a crash: "
                "this file was edited or corrupted); fix or remove that line"
            ) from None
    if not tail.strip():
        return records, len(data)
    try:
        last = json.loads(tail)
    except ValueError:
        last = None
    if isinstance(last, dict):
        return records + [last], len(data)
    return records, len(head) + len(sep)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSONL file; a torn last line is skipped with a warning (the file is not modified)."""
    path = Path(path)
    data = path.read_bytes()
    records, good = _split(data, path)
    if good < len(data):
        _warn(f"skipped the torn last line of {path} ({len(data) - good} bytes; a write was cut off)")
    return records


def _torn_tail(f: IO[bytes]) -> tuple[int, bool]:
    """(bytes to cut, newline needed) for an open JSONL file: reads only its end, whatever the file's length."""
    size = f.seek(0, os.SEEK_END)
    chunk = 1 << 16
    while True:
        start = max(0, size - chunk)
        f.seek(start)
        data = f.read(size - start)
        cut = data.rfind(b"\n")
        if cut >= 0 or start == 0:
            break
        chunk *= 4
    tail = data[cut + 1 :]
    if not tail.strip():
        return 0, False
    try:
        whole = isinstance(json.loads(tail), dict)
    except ValueError:
        whole = False
    return (0, True) if whole else (len(tail), False)


def _cut(f: IO[bytes], path: Path) -> bytes:
    """Cut a torn last line off an open, locked JSONL file (one warning); returns the separator to write first."""
    torn, newline = _torn_tail(f)
    if torn:
        f.truncate(f.seek(0, os.SEEK_END) - torn)
        _warn(f"cut the torn last line off {path} ({torn} bytes; a write was cut off, its record is lost)")
    return b"\n" if newline else b""  # a whole last record without its newline stays, on its own line


def append_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Append whole lines (one `write`, fsynced) after repairing a torn last line; concurrent appenders queue."""
    path = Path(path)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    if not text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)  # the repair and the append are one step for concurrent writers
        f.write(_cut(f, path) + text)  # O_APPEND: lands at the end whatever the offset
        f.flush()
        os.fsync(f.fileno())
    if new:
        fsync_dir(path.parent)


# ---- locks ------------------------------------------------------------------------------------------------------

_HELD: set[str] = set()
_HELD_GUARD = threading.Lock()


class Lock:
    """An exclusive lock on `path` (created if needed), held by this process until `release()` / the `with` ends.

    `what` names the guarded thing in the error (e.g. "run directory results/runs/x"); `wait_s` > 0 waits that
    long for a live holder before giving up (0: refuse at once).
    """

    def __init__(self, path: str | Path, what: str, wait_s: float = 0.0):
        self.path, self.what, self.wait_s = Path(path), what, wait_s
        self._file: IO[str] | None = None

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if not info:
            return "another process"
        return f"pid {info.get('pid')} on {info.get('host')} (since {info.get('since')})"

    def acquire(self) -> Lock:
        key = str(self.path.resolve())
        with _HELD_GUARD:
            if key in _HELD:
                raise LockHeld(f"{self.what} is already in use by this process ({self.path})")
            _HELD.add(key)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = self.path.open("a+")
            deadline = time.monotonic() + self.wait_s
            while True:
                try:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EACCES, errno.EAGAIN):
                        f.close()
                        raise
                    if time.monotonic() >= deadline:
                        f.close()
                        raise LockHeld(
                            f"{self.what} is in use by {self._holder()} (lock {self.path}); wait for it "
                            "to finish or stop it, then run again"
                        ) from None
                    time.sleep(0.1)
            f.seek(0)
            f.truncate()
            f.write(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    }
                )
            )
            f.flush()
            self._file = f
        except BaseException:
            with _HELD_GUARD:
                _HELD.discard(key)
            raise
        return self

    def release(self) -> None:
        if self._file is None:
            return
        with _HELD_GUARD:
            _HELD.discard(str(self.path.resolve()))
        self._file.close()  # closing drops the POSIX lock; the file stays (deleting it would race a waiter)
        self._file = None

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
