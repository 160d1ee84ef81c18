#!/usr/bin/env bash
# Fetch the wheels the GPU pass carries to a GPU machine that reaches no package registry (README "GPU pass").
#   bash slurm/fetch-wheels.sh            -> .whl/*.whl (exactly slurm/gpu-pass-wheels.txt) and data/fashion-mnist/
# Every package on the list is pure Python, so one py3-none-any wheel serves the machine's CPython 3.12; two of
# them (fvcore, iopath) exist on PyPI only as source archives, so `pip wheel` builds their wheels here.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mapfile -t wanted < <(grep -v -e '^#' -e '^[[:space:]]*$' slurm/gpu-pass-wheels.txt)
rm -rf .whl.tmp && mkdir -p .whl.tmp
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir .whl.tmp "${wanted[@]}"
for w in .whl.tmp/*.whl; do
  case "$w" in
    *-py3-none-any.whl|*-py2.py3-none-any.whl) ;;
    *) echo "fetch-wheels: $w is not a pure-Python wheel; the GPU machine cannot use it" >&2; exit 2 ;;
  esac
done
count=$(ls .whl.tmp/*.whl | wc -l)
if [[ $count -ne ${#wanted[@]} ]]; then
  echo "fetch-wheels: expected ${#wanted[@]} wheels, got $count" >&2; exit 2
fi
rm -rf .whl && mv .whl.tmp .whl
# The pass's resume check trains on Fashion-MNIST (about 30 MB): carry the four files if they are here.
src=${HIERA_DATA_DIR:-/usr/share/datasets}/fashion-mnist
if [[ -d "$src" ]]; then
  mkdir -p data/fashion-mnist && cp -u "$src"/*-ubyte.gz data/fashion-mnist/
fi
du -sh .whl data 2>/dev/null || true
echo "fetch-wheels: ${count} wheels in .whl/; carry .whl and data (device tool: carry=[\".whl\", \"data\"])"
