#!/usr/bin/env bash
# make test-web (after make test-wasm, the kernels under Node): the page in
# headless Chromium (tests/web/test_web.js)
# served by python3's http.server on 127.0.0.1. puppeteer-core comes from the
# npm registry into BUILD_DIR/web-test/node once.
# usage: tests/test_web.sh BUILD_DIR [DIGITS]
set -euo pipefail
B=${1:-build}
digits=${2:-200}
PUPPETEER_VERSION=25.16.0
fail() { echo "test_web: $*" >&2; exit 1; }

mod="$B/web-test/node"
if [ ! -e "$mod/node_modules/puppeteer-core/package.json" ] ||
   [ "$(node -p "require('./$mod/node_modules/puppeteer-core/package.json').version")" != "$PUPPETEER_VERSION" ]; then
    echo "test_web: installing puppeteer-core@$PUPPETEER_VERSION into $mod (npm registry, once)"
    mkdir -p "$mod"
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$mod" --no-audit --no-fund --loglevel=error \
        "puppeteer-core@$PUPPETEER_VERSION" > "$B/web-test/npm-install.log" 2>&1 ||
        { cat "$B/web-test/npm-install.log" >&2; fail "npm install puppeteer-core@$PUPPETEER_VERSION failed"; }
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$B/web" "$port" > "$B/web-test/server.log" 2>&1 &
server=$!
trap 'kill $server 2> /dev/null || true' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/index.html')" 2> /dev/null && break
    sleep 0.1
done
NODE_PATH="$mod/node_modules" node tests/web/test_web.js "http://127.0.0.1:$port/" "$B" "$digits"
