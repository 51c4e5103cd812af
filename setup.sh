#!/usr/bin/env bash
# Install mixpath into the current Python environment.
#   bash setup.sh         the package and its command `mixpath`
#   bash setup.sh --dev   also the test and lint tools
# PyTorch: an already installed torch is kept (e.g. a CUDA build); otherwise the CPU wheel torch==2.13.0 is
# installed first, because an open `torch` requirement would pull a multi-GB CUDA build.
# Fashion-MNIST (the default data) comes from the Debian package dataset-fashion-mnist, and the faster allocator
# the `mixpath` command loads when present from libtcmalloc-minimal4, when apt-get can install them.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install -q torch==2.13.0
fi
"$PYTHON" -m pip install -q -e ".${extras}"

missing=""
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="dataset-fashion-mnist"
ls /usr/lib/*/libtcmalloc_minimal.so.4 >/dev/null 2>&1 || missing="$missing libtcmalloc-minimal4"
if [ -n "$missing" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC2086
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >/dev/null 2>&1 \
    || echo "setup: could not install: $missing; without Fashion-MNIST pass --data-dir DIR or use --data digits" >&2
fi
echo "setup: mixpath installed ($("$PYTHON" -c 'import torch; print("torch", torch.__version__)'))"
