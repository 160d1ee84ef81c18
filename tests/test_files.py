"""hiera/files.py: atomic writes, append-only JSONL that survives a torn line, temp clean-up and locks.

The kill -9 loops of the writers that use these (collect, checkpoints, bench appends) are in
test_launch_safety.py, test_run_safety.py and test_errors.py; here each primitive's contract, checked with real
processes where it is about processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hiera.files import Lock, LockHeld, append_jsonl, atomic_write, atomic_write_text, clean_temps, read_jsonl

REPO = Path(__file__).resolve().parents[1]


def test_atomic_write_follows_the_umask_and_leaves_no_temp(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.json", "{}\n")
        atomic_write(tmp_path / "b.bin", lambda f: f.write(b"\x00\x01"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640  # open() would give this; mkstemp gives 0600
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old")

    def half(f):
        f.write(b"new, half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_clean_temps_removes_only_leftovers_of_atomic_writes(tmp_path):
    keep = [".hidden", "a.tmp", ".a.tmp", "notes.txt", ".last.pth.abcdefg.tmp"]  # last: 7 chars, not mkstemp's 8
    ours = [".last.pth.k2_9xq1z.tmp", ".metrics.jsonl.abcdefgh.tmp"]
    for name in keep + ours:
        (tmp_path / name).write_text("x")
    assert sorted(p.name for p in clean_temps(tmp_path)) == sorted(ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_a_torn_last_line_is_skipped_by_readers_and_cut_by_the_next_append(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, [{"step": 1}, {"step": 2}])
    with path.open("ab") as f:
        f.write(b'{"step": 3, "lo')  # a crash mid-write
    torn = path.read_bytes()
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
    assert path.read_bytes() == torn  # readers never modify (a read-only results folder stays readable)
    assert "torn last line" in capsys.readouterr().err
    append_jsonl(path, [{"step": 3}])
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n{"step": 3}\n'
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cut the torn last line" in err
    assert "15 bytes" in err


def test_a_whole_record_without_its_newline_is_kept(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}')  # e.g. edited by hand
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]
    append_jsonl(path, [{"c": 3}])
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_a_bad_line_before_the_last_is_an_error_naming_it(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"b": \n{"c": 3}\n')
    with pytest.raises(ValueError, match=r"m.jsonl line 2 is not a JSON record"):
        read_jsonl(path)


@pytest.mark.slow
def test_concurrent_appenders_write_whole_lines(tmp_path):
    path = tmp_path / "bench.jsonl"
    code = (
        "import sys; from hiera.files import append_jsonl\n"
        "for i in range(150): append_jsonl(sys.argv[1], [{'w': sys.argv[2], 'i': i, 'pad': 'x' * 5000}])"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), w], cwd=REPO) for w in "ab"]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for w in "ab":
        assert [r["i"] for r in rows if r["w"] == w] == list(range(150))


HOLD = (
    "import sys, time; from hiera.files import Lock; held = Lock(sys.argv[1], 'run directory X').acquire(); "
    "print('held', flush=True); time.sleep(60)"
)


def _holder(lock: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_live_holder_is_named_and_a_killed_one_is_taken_over(tmp_path):
    lock = tmp_path / ".lock"
    p = _holder(lock)
    try:
        with pytest.raises(LockHeld, match=rf"run directory X is in use by pid {p.pid} on .* \(since "):
            Lock(lock, "run directory X").acquire()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    with Lock(lock, "run directory X"):  # the kernel dropped the dead holder's lock: no clean-up needed
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_the_same_process_cannot_take_a_lock_twice_and_waiting_works(tmp_path):
    lock = tmp_path / ".lock"
    with Lock(lock, "grid smoke"), pytest.raises(LockHeld, match="already in use by this process"):
        Lock(lock, "grid smoke").acquire()
    p = _holder(lock)
    t0 = time.monotonic()
    subprocess.Popen(["sh", "-c", f"sleep 1; kill {p.pid}"])
    with Lock(lock, "grid smoke", wait_s=30):
        assert 0.8 < time.monotonic() - t0 < 25
    p.wait()
