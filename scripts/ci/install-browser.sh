#!/bin/sh
# Install what the browser tests (tests/browser/) need, only when it is missing:
# Debian's Chromium at /usr/bin/chromium and the `playwright` Python package.
# Playwright's own browser download (`playwright install`) is never used.
set -eu

cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-.venv/bin/python}"

if [ ! -x /usr/bin/chromium ]; then
    echo "install-browser: installing Debian's chromium"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi

if ! "$PYTHON" -c "import playwright" 2>/dev/null; then
    echo "install-browser: installing the playwright Python package"
    "$PYTHON" -m pip install --quiet playwright
fi

/usr/bin/chromium --version 2>/dev/null
"$PYTHON" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
