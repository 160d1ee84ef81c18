#!/usr/bin/env bash
# The GPU pass on a bare GPU machine (README "GPU pass"): no install, no registry. Run from the repository root
# with the wheels of slurm/fetch-wheels.sh in .whl/ (and data/fashion-mnist/ for the resume check):
#   bash slurm/gpu-pass.sh OUT [--budget-s 420] [--parts numerics,paper_ladder,...]
# Installs the carried wheels into /tmp (the official release into a folder of its own: it also imports as
# `hiera`), then runs `python -m hiera.bench.gpu_pass OUT` from the source tree. Records land in OUT as they are made.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash slurm/gpu-pass.sh OUT [hiera.bench.gpu_pass options]}
shift
python=${PYTHON:-python3}
site=${TMPDIR:-/tmp}/hiera-gpu-pass-site
official=${TMPDIR:-/tmp}/hiera-gpu-pass-official
args=()
if compgen -G ".whl/*.whl" >/dev/null; then
  ours=$(ls .whl/*.whl | grep -v hiera_transformer || true)
  theirs=$(ls .whl/*.whl | grep hiera_transformer || true)
  if [[ -n "$ours" ]]; then
    # shellcheck disable=SC2086
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" $ours
  fi
  if [[ -n "$theirs" ]]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$official" "$theirs"
    printf '#!/bin/sh\nPYTHONPATH=%s exec %s "$@"\n' "$official" "$(command -v "$python")" > "$official/python"
    chmod +x "$official/python"
    args+=(--official-python "$official/python")
  fi
fi
if [[ -d data/fashion-mnist ]]; then export HIERA_DATA_DIR=$PWD/data; fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}:$site PYTHONUNBUFFERED=1
"$python" -c 'import torch; print("gpu-pass:", torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))'
exec "$python" -m hiera.bench.gpu_pass "$out" "${args[@]}" "$@"
