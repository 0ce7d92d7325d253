#!/usr/bin/env bash
# Installs the Debian 12 packages msglab needs: only what is missing, with one
# 'apt-get update' first when something is. As root directly, else with sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libbotan-2-dev libpcap-dev
  libboost-dev libboost-program-options-dev
  nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev zlib1g-dev
  catch2
  clang-14 libclang-rt-14-dev
  python3 python3-cryptography python3-websockets python3-pycryptodome
  python3-socketio python3-engineio python3-requests python3-websocket python3-aiohttp
  tshark wireshark-dev chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
