#!/usr/bin/env bash
# Wheels that a lent GPU machine (the `device` tool's nvidia-h200: Python 3.12, torch 2.11,
# transformers 5.17, no datasets, nothing fetchable) lacks for bench/gpu_throughput.py, into .whl/
# (kept out of git by .git/info/exclude; name it in `carry`). The versions are the main venv's,
# the ones the tests ran on; this project's own wheel is built here. There, one command:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#     --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; \
#   export PYTHONUNBUFFERED=1; python3 bench/gpu_throughput.py --budget 400 --json $OUT/gpu.json; \
#   python3 bench/preprocess_throughput.py --repeats 2 --json $OUT/preprocess.json
# (about 8 min in all: one call). bench/gpu_throughput.py prints the versions it runs on.
# PYTHON_VERSION=3.11 fetches wheels for a local stand-in of that machine.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
rm -rf .whl && mkdir .whl
# What the machine's image lacks or holds too old (its package list: the device tool's KINDS.md)
names="transformers datasets dill multiprocess rapidfuzz jsonschema jsonschema-specifications
       referencing rpds-py pycocotools shapely simplejpeg google-api-core google-auth
       googleapis-common-protos"
pins=$("$VENV/bin/python" - $names <<'PY'
import importlib.metadata as md, sys
print(" ".join(f"{name}=={md.version(name)}" for name in sys.argv[1:]))
PY
)
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl $pins
"$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w .whl .
du -sh .whl
