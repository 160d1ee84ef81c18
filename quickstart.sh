#!/usr/bin/env bash
# The README's two Quickstart commands:
#   bash quickstart.sh demo   set up .venv (first run only) and run the main job
#   bash quickstart.sh test   set up .venv (first run only), start the local SLURM where root can (its tests skip
#                             otherwise), then ruff, mypy and the whole test suite
# Needs only Python >= 3.10 (3.11 recommended). Re-running reuses .venv; a changed pyproject.toml reinstalls.
set -euo pipefail
cd "$(dirname "$0")"

job=${1:-}
if [[ "$job" != demo && "$job" != test ]]; then
  echo "usage: bash quickstart.sh demo|test" >&2
  exit 2
fi

python=${PYTHON:-}
if [[ -z "$python" ]]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
if [[ -z "$python" ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "quickstart: need Python >= 3.10 (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

venv=.venv
if [[ ! -x "$venv/bin/python" ]]; then
  echo "quickstart: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.installed-$(cat pyproject.toml | "$venv/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
if [[ ! -f "$stamp" ]]; then
  echo "quickstart: installing hiera-study and its dependencies into $venv (torch is a large download)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

# Embedded data: Debian's Fashion-MNIST, the image (and moving-clip) proxy. Best effort: where apt-get or root
# is missing, the loader's error says how to get it.
data=/usr/share/datasets/fashion-mnist
if [[ ! -d "$data" ]] && command -v apt-get >/dev/null 2>&1; then
  as_root=()
  if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(false); fi
  fi
  echo "quickstart: installing Debian's dataset-fashion-mnist into $data"
  { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 \
    || echo "quickstart: could not install dataset-fashion-mnist (needs apt-get and root); see README" >&2
fi

if [[ "$job" == demo ]]; then
  exec "$venv/bin/hiera-study" demo
fi
# The launcher's integration tests need a real SLURM. Where none answers and root is at hand (as in CI), start the
# local single-node one (slurm/local-cluster.sh: Debian's slurm-wlm + MariaDB, 127.0.0.1 only); otherwise those
# tests skip and pytest's last line says how to enable them. HIERA_NO_SLURM=1: never start it.
if [[ -z "${HIERA_NO_SLURM:-}" ]] && ! { command -v sinfo >/dev/null 2>&1 && sinfo -h >/dev/null 2>&1; }; then
  as_root=()
  if [[ $(id -u) != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n); fi
  if { [[ $(id -u) == 0 ]] || [[ ${#as_root[@]} -gt 0 ]]; } && command -v apt-get >/dev/null 2>&1; then
    echo "quickstart: starting the local SLURM for the launcher's integration tests (HIERA_NO_SLURM=1 skips this)"
    "${as_root[@]}" bash slurm/local-cluster.sh start 2>"$venv/local-cluster.log" \
      || echo "quickstart: the local SLURM did not start (see $venv/local-cluster.log); its tests will skip" >&2
  fi
fi
"$venv/bin/ruff" check hiera tests ablations analysis
"$venv/bin/ruff" format --check hiera tests ablations analysis
"$venv/bin/mypy"
exec "$venv/bin/python" -m pytest -q
