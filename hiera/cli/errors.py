"""The one line an expected failure of a `hiera-study` command prints (`hiera-study: error: ...`, exit status 2)."""

from __future__ import annotations

import errno
import subprocess

import torch

# Failures a user can fix (a bad value, a missing or unreadable path, a full disk, a busy lock, a hung queue command,
# too big a batch): one line naming the fix and exit 2. Anything else is a bug and keeps its traceback.
EXPECTED = (ValueError, OSError, RuntimeError, subprocess.TimeoutExpired, OverflowError)
# What to lower after an out-of-memory, per command.
OOM_FIX = {
    "bench": "lower --batch-size (or --max-batch with --sweep)",
    "train": "lower batch_size=N or use a device with more memory",
    "demo": "lower --width or run with --device cpu",
}


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return lines[0] + (" [more with --debug]" if len(lines) > 1 else "")


def _os_error(e: OSError) -> str:
    """An OSError as `<what is wrong with which path>; <how to fix it>`."""
    path = e.filename
    if path is None:
        return _one_line(str(e))  # raised by our code with its own message
    where = f"{path}" + (f" -> {e.filename2}" if e.filename2 is not None else "")
    if isinstance(e, PermissionError):
        return f"permission denied: {where}; check its owner and mode (ls -ld {path}) or choose another path"
    if isinstance(e, IsADirectoryError):
        return f"{where} is a directory where a file is expected; give a file, or move the directory away"
    if isinstance(e, NotADirectoryError):
        return (
            f"{where}: part of this path is a file where a directory is expected; move that file or choose another path"
        )
    if isinstance(e, FileExistsError):
        return f"{where} already exists (a file where a directory is expected?); move it away or choose another path"
    if isinstance(e, FileNotFoundError):
        return f"no such file or directory: {where}; check the path"
    if e.errno == errno.ENOSPC:
        return (
            f"no space left on the device writing {where}; free space or choose another output directory, then "
            "run again (files written atomically kept their previous version)"
        )
    if e.errno == errno.EROFS:
        return f"{where} is on a read-only file system; choose a writable output directory"
    return f"{e.strerror or _one_line(str(e))}: {where}"


def error_line(e: BaseException, command: str | None = None) -> str:
    """The one line `hiera-study: error: ...` says for an expected failure `e` of `hiera-study <command>`."""
    if isinstance(e, torch.OutOfMemoryError):
        stage = getattr(e, "bench_stage", None)
        step = f"`hiera-study {command}`" + (f" ({stage})" if stage else "")
        return f"out of memory during {step}: {_one_line(str(e))}; {OOM_FIX.get(command or '', 'lower the batch size')}"
    if isinstance(e, subprocess.TimeoutExpired):
        cmd = " ".join(map(str, e.cmd)) if isinstance(e.cmd, (list, tuple)) else str(e.cmd)
        return f"`{cmd}` did not answer within {e.timeout:g} s; check that it works (run it by hand) and try again"
    if isinstance(e, OverflowError):
        return f"a number is out of range ({_one_line(str(e))}); check the key=value overrides and flags"
    if isinstance(e, OSError):
        return _os_error(e)
    return _one_line(str(e))
