#!/usr/bin/env bash
# Test-only dependencies, installed into .cache/test-deps (never into .venv). Idempotent.
#
# torch-fidelity is the reference implementation the Inception tests compare gan_lab's network with.
# It must not be importable from the project's environment: without torchvision its package __init__
# (a CLIP feature extractor) raises, and torchmetrics imports it when it is installed. The tests load
# only its feature_extractor_inceptionv3 module from this folder (tests/inception_fixture.py).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=.cache/test-deps
VERSION=0.4.0
if [ -f "$TARGET/torch_fidelity/version.py" ] && grep -q "'$VERSION'\|\"$VERSION\"" "$TARGET/torch_fidelity/version.py"; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --no-deps --target "$TARGET" "torch-fidelity==$VERSION"
