"""Where a grid runs: a cluster profile (partition, account, results root, data paths) and the grid context.

Cluster specifics come from a profile (`slurm/clusters/<name>.json`) or flags, never from grid files; submit,
status and collect (`hiera.launch.submit`, `hiera.launch.states`, `hiera.launch.collect`) build the grid with
the same context (seeds, the profile's data paths), so they see the same specs.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiera.env import at_root, project_root
from hiera.launch.grid import GridContext
from hiera.model.config import check_keys, coerce


@dataclass(frozen=True)
class ClusterProfile:
    """Site settings of a SLURM cluster (a JSON file in `slurm/clusters/`; flags override fields)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    mem_gb: int | None = None  # per node; None = the cluster's default
    cpus_per_gpu: int = 10
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: enough to requeue
    array_parallelism: int = 256
    root: str = "results/runs"  # shared filesystem folder of the run directories
    imagenet: str | None = None
    kinetics: str | None = None
    setup: tuple[str, ...] = ()  # shell lines before the task (module load ..., source venv)

    @classmethod
    def load(cls, name_or_path: str | None, **overrides: Any) -> ClusterProfile:
        data: dict[str, Any] = {}
        if name_or_path:
            path = Path(name_or_path)
            if not path.is_file():
                path = at_root("slurm", "clusters", f"{name_or_path}.json")
            if not path.is_file():
                known = sorted(p.stem for p in at_root("slurm", "clusters").glob("*.json"))
                raise FileNotFoundError(
                    f"cluster profile {name_or_path!r} not found; use a JSON file or one of {', '.join(known)}"
                )
            data = json.loads(path.read_text())
            check_keys(data, cls)
        data.update({k: v for k, v in overrides.items() if v is not None})
        for key in PATH_FIELDS:  # "/checkpoint/$USER/..." and "~/..." as a shell would read them
            if isinstance(data.get(key), str):
                data[key] = expand_path(data[key], key)
        hints = typing.get_type_hints(cls)
        return cls(**{k: coerce(k, v, hints[k]) for k, v in data.items()})


PATH_FIELDS = ("root", "imagenet", "kinetics")


def expand_path(value: str, key: str) -> str:
    """`~` and `$VAR` / `${VAR}` expanded; a variable that is not set is a one-line error, not a folder named `$X`."""
    expanded = os.path.expandvars(os.path.expanduser(value))
    if "$" in expanded:
        raise ValueError(
            f"cluster profile field {key}={value!r}: an environment variable in it is not set; set it "
            f"or write the path out"
        )
    return expanded


def resolve_root(root: str | Path | None, profile: ClusterProfile) -> Path:
    root = Path(root or profile.root)
    return root if root.is_absolute() else project_root() / root


def grid_context(seeds: int, profile: ClusterProfile) -> GridContext:
    """The context every command builds the grid with (so submit, status and collect see the same specs)."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    return GridContext(
        seeds=seeds, **{k: v for k, v in (("imagenet", profile.imagenet), ("kinetics", profile.kinetics)) if v}
    )
