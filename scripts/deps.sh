#!/bin/bash
# Install the Debian 12 packages telecared builds, runs and tests with.
# Usage: scripts/deps.sh [build|test]   (default: build)
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      libmosquitto-dev libsqlite3-dev libsystemd-dev libjansson-dev
      libcurl4-openssl-dev libssl-dev libmicrohttpd-dev libcrypt-dev
      mosquitto mosquitto-clients sqlite3)
if [ "${1:-build}" = test ]; then
	pkgs+=(libcmocka-dev python3-pytest python3-paho-mqtt clang libclang-rt-14-dev
	       systemd openssl strace man-db
	       chromium chromium-driver python3-selenium)   # the console's browser tests
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
