#!/usr/bin/env bash
# Fill .gpu-carry/ (git-ignored) with what the device check needs and the GPU machine lacks:
# its python (3.12, torch, pandas, seaborn, click, ...) has no ray and no CIFAR-10, and it
# cannot download. Run here, in the repository root, before the `run` call (README.md):
#   benchmarks/gpu/prepare.sh [path/to/shared/data]
# - ray (the version installed here) for cp312, without its Java jars (32 MB) and the
#   dashboard's web client: the wheel is 79 MB, over the 64 MiB a call carries; what Tune
#   uses is untouched, and the wheel is repacked with the `wheel` tool (RECORD rewritten);
# - ray's requirement that the device's python lacks (jsonschema and its own) and
#   tensorboardX (ray[tune]);
# - the CIFAR-10 JPEG archive and its builder (the device rebuilds the python batches).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${1:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
CARRY=.gpu-carry
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64)

version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }

rm -rf "$CARRY" && mkdir -p "$CARRY/wheels" "$CARRY/data" "$CARRY/tmp"
"$PY" -m pip install -q wheel
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$CARRY/tmp" "ray==$(version ray)"
"$PY" -m wheel unpack -d "$CARRY/tmp" "$CARRY"/tmp/ray-*.whl
RAY_DIR=$(ls -d "$CARRY"/tmp/ray-*/)
rm -rf "$RAY_DIR/ray/jars" "$RAY_DIR/ray/dashboard/client/build"
"$PY" -m wheel pack -d "$CARRY/wheels" "$RAY_DIR"
for dep in jsonschema jsonschema-specifications referencing rpds-py tensorboardX; do
  "$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$CARRY/wheels" "$dep==$(version $dep)"
done
rm -rf "$CARRY/tmp"
cp "$DATA/cifar10-jpeg.tar.gz" "$DATA/build_cifar10.py" "$CARRY/data/"
du -sh "$CARRY"/wheels/* "$CARRY"/data/*
total=$(du -sb "$CARRY" | cut -f1)
echo "carried: $((total / 1024 / 1024)) MiB of the 64 MiB a call takes (the tree adds ~1 MiB)"
[ "$total" -lt $((62 * 1024 * 1024)) ] || { echo "too large to carry" >&2; exit 1; }
