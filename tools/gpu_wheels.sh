#!/usr/bin/env bash
# Wheels the lent GPU machine lacks (it has torch, numpy, scipy, tifffile, typer, safetensors, ... but not pydantic),
# for Python 3.12 / x86-64, into .whl/ (ignored by git; name it in the device call's carry). Run once per checkout:
#   bash tools/gpu_wheels.sh && echo /.whl/ >> .git/info/exclude
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
  platformdirs==4.14.9
ls .whl
