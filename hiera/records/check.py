"""Field checks and JSON(L) reading shared by every record type (`hiera.records`).

A malformed record raises a one-line `ValueError` that names the file, the line (JSONL) and the field, so a bad
line in a thousand-run grid is found without a debugger. The one thing tolerated is a torn last line of a JSONL
file (a writer killed mid-append): skipped with a warning, as `hiera.files.read_jsonl` does, since the next append
cuts it off anyway.
"""

from __future__ import annotations

import fnmatch
import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hiera.env import find_root
from hiera.files import read_jsonl

MISSING = object()  # a key that is not there (as opposed to one that is null)


class Bad(Exception):
    """A field failed its check (internal: turned into the one-line ValueError by `field`)."""


def short(value: Any) -> str:
    """A value as an error message quotes it, at most 40 characters."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def get(obj: dict, name: str) -> Any:
    """`obj[name]` for dotted names (`metrics.top1`); a missing key is `MISSING`."""
    for part in name.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return MISSING
        obj = obj[part]
    return obj


KINDS = {
    "str": lambda v: isinstance(v, str) and v != "",
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "scalar": lambda v: isinstance(v, (str, int, float, bool)),
}


def field(
    obj: dict,
    name: str,
    where: str,
    kind: str,
    *,
    optional: bool = False,
    choices: Sequence | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """One field of a record, checked: `kind` is one of `KINDS`; `optional` allows absent or null (None)."""
    value = get(obj, name)
    try:
        if value is MISSING or value is None:
            if optional:
                return None
            raise Bad("is missing" if value is MISSING else "must not be null")
        if not KINDS[kind](value):
            raise Bad(f"must be {'a non-empty string' if kind == 'str' else 'a ' + kind}, got {short(value)}")
        if choices is not None and value not in choices:
            raise Bad(f"must be one of {', '.join(map(str, choices))}; got {short(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise Bad(f"must be in [{low}, {high}], got {short(value)}")
    except Bad as e:
        raise ValueError(f"{where}: field '{name}' {e}") from None
    return value


def present(obj: dict, name: str, where: str, why: str) -> None:
    """`name` must be a key of `obj` (null allowed): absent is an error, so a typo in a key cannot hide a value."""
    if get(obj, name) is MISSING:
        raise ValueError(f"{where}: field '{name}' is missing ({why})")


def sizes(obj: dict, name: str, where: str, optional: bool = False) -> tuple[int, ...] | None:
    """A non-empty list of positive ints (an input size), as a tuple."""
    value = field(obj, name, where, "list", optional=optional)
    if value is None:
        return None
    if not value or not all(KINDS["int"](s) and s > 0 for s in value):
        raise ValueError(f"{where}: field '{name}' must be a list of positive ints, got {short(value)}")
    return tuple(value)


def text_or_none(obj: dict, name: str) -> str | None:
    """A field kept as text whatever JSON type it has (versions: `"12.4"`, `90100`), or None."""
    value = obj.get(name)
    return None if value is None else str(value)


def schema(obj: dict, where: str, accepted: Sequence[str]) -> str:
    """The record's `schema`, which must be one of `accepted` (this version's and the ones it still reads)."""
    value = field(obj, "schema", where, "str")
    if value not in accepted:
        raise ValueError(f"{where}: field 'schema' must be one of {', '.join(map(repr, accepted))}, got {short(value)}")
    return value


def display_path(path: Path) -> str:
    """A path as messages and tables show it: relative to the project root when inside it."""
    root = find_root()
    try:
        return str(path.resolve().relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


def warn(message: str) -> None:
    """One warning line on stderr, in the format of `hiera.files` (a gap the tables can live with)."""
    print(f"hiera-study: warning: {message}", file=sys.stderr, flush=True)


def json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path` (a one-line error naming the file if it is not one)."""
    where = display_path(path)
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: a record must be a JSON object, got {type(obj).__name__}")
    return obj


def json_lines(path: Path) -> Iterable[tuple[str, dict]]:
    """(`<file>:<line>`, object) for every non-blank line of a JSONL file.

    Records are read with `hiera.files.read_jsonl`: a torn last line (a writer killed mid-append, a full disk) is
    skipped with a warning instead of refusing the whole file, and the file is not modified (results may be
    read-only); the next append cuts it off. A malformed line anywhere else was not torn by a crash: an error naming
    the file and the line.
    """
    try:
        records = read_jsonl(path)
    except ValueError:
        records = None  # a malformed line before the end: found and located below
    lines = [(i, line) for i, line in enumerate(path.read_bytes().split(b"\n"), 1) if line.strip()]
    if records is None:
        for i, line in lines:
            try:
                json.loads(line)
            except ValueError as e:
                msg = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)
                raise ValueError(f"{display_path(path)}:{i}: not valid JSON ({msg})") from None
        records = read_jsonl(path)  # every line parses now (the file changed under us): its own message, if any
    # read_jsonl keeps the non-blank lines in order and drops at most the last one (torn): zip pairs them up
    for (i, _), obj in zip(lines, records):
        where = f"{display_path(path)}:{i}"
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: a record must be a JSON object, got {type(obj).__name__}")
        yield where, obj


def jsonl_files(directory: Path, stem: str = "*") -> list[Path]:
    """The `*.jsonl` files of a directory whose stem matches the glob `stem`, sorted.

    Listed with `iterdir`, which raises on an unreadable directory (PermissionError), where `Path.glob` would
    silently find nothing and the tables would be rewritten empty over the previous ones.
    """
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.endswith(".jsonl") and fnmatch.fnmatchcase(p.stem, stem) and not p.is_dir()
    )
