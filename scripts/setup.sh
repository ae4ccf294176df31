#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for streamseg: the apt packages (the runtime: ffmpeg and
# redis-server; and what the tests use: Debian's torch/onnx/numpy for the model-package tests,
# OpenBLAS, chromium for the web page test, GStreamer's RTSP server for the RTSP client test),
# then the npm dependencies. Works as root (containers, which often have no sudo) and as a user
# with sudo; needs Node 20 or later with npm on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  ffmpeg redis-server chromium python3 python3-torch python3-torchvision python3-onnx python3-numpy libopenblas0-pthread
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
)

fail() {
  echo "setup.sh: $*" >&2
  exit 1
}

# Root runs apt-get itself; anyone else through sudo, when there is one.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    fail "installing packages needs root: run this script as root, or install sudo"
  fi
}

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  || fail "Node.js 20 or later with npm is needed first (https://nodejs.org, or NodeSource's Debian packages)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "Node.js $(node -v) is too old: streamseg needs Node 20 or later"

# env: sudo resets the environment, so the setting goes on the command line.
as_root env DEBIAN_FRONTEND=noninteractive apt-get update
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"

# onnxruntime-node's postinstall would download CUDA binaries; the CPU build ships in the package.
# Installs the versions package-lock.json names.
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund
