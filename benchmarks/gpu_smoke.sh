#!/usr/bin/env bash
# Make progan-zoo importable on a bare, offline GPU machine: dependency wheels carried in .whl/,
# and the package assembled the way the wheel lays it out (compiler/ -> progan_zoo/compiler).
# Run python with -P so the checkout's own progan_zoo/ (which lacks compiler/) is not imported.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
rm -rf /tmp/pz && mkdir -p /tmp/pz && cp -r progan_zoo /tmp/pz/ && cp -r compiler /tmp/pz/progan_zoo/compiler
echo "export PYTHONPATH=/tmp/pz:/tmp/site" > /tmp/pz_env.sh
PYTHONPATH=/tmp/pz:/tmp/site python3 -P -c "import torch, progan_zoo.compiler; print(torch.__version__, torch.cuda.get_device_name())"
# Then, for the GPU figures of docs/training.md (issue 11; about 7 minutes):
#   . /tmp/pz_env.sh && python3 -P benchmarks/bench_gpu.py
