#!/usr/bin/env bash
# Installs the Debian packages the build and tests need. Idempotent and quiet when all are present.
set -euo pipefail
packages=(pkg-config libsecp256k1-dev libsqlite3-dev sqlite3 libcoap3-dev libcoap3-bin libmosquitto-dev mosquitto mosquitto-clients rabbitmq-server libssl-dev openssl libsodium-dev libqrencode-dev chromium zbar-tools python3 prometheus systemd man-db)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
