#!/usr/bin/env bash
# Debian packages the tests need beyond Python: a virtual X server and tools to drive it
# (agent capture, input and consent dialog), Chromium for the browser tests, a tray host
# (trayer) for the tray icon test, xdg-utils for the guruconnect:// handler, and the reverse
# proxies the deployment tests put in front of the server (nginx, Caddy).
# Installs only what is missing; needs root (or sudo) the first time.
set -euo pipefail

PACKAGES=(xvfb xdotool x11-xkb-utils x11-utils x11-xserver-utils xauth chromium fonts-dejavu-core openssl
    trayer xdg-utils nginx-light caddy)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null; then
    SUDO=(sudo)
else
    echo "setup: these Debian packages are missing and I am not root: ${missing[*]}" >&2
    exit 1
fi
echo "setup: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
