#!/usr/bin/env bash
# Installs, from Debian's packages, exactly the build/test dependencies that are missing.
# Idempotent: when everything is present it touches nothing (no apt-get update either).
# Usage: deploy/install-deps.sh
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libuv1-dev libsrtp2-dev libssl-dev libnice-dev libusrsctp-dev
  libprotobuf-c-dev protobuf-c-compiler libnng-dev libraft-dev
  libjansson-dev libcmocka-dev
  clang libclang-rt-14-dev
  # make coverage (HTML report, line/branch thresholds)
  gcovr
  # real WebRTC peers for interop tests (GStreamer webrtcbin)
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-nice libgstreamer-plugins-bad1.0-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # demo page build (npm: mediasoup-client + esbuild) and the browser test (playwright-core)
  nodejs chromium
  # mafalda-bench --sfu janus|both (bench_janus_smoke): the C SFU measured side by side
  janus
  # mafalda-bench fanout --search --plot out.png: loss and CPU/Mpkt against N (gnuplot)
  gnuplot-nox
)
# Debian's npm conflicts with a nodejs that already bundles npm (e.g. NodeSource's):
# ask for it only when the command is missing.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  # dpkg-query reports "install ok installed" only for fully installed packages.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
