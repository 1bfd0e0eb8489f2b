#!/usr/bin/env bash
# Install the Debian packages mlp.h's examples, tests and tools need, if they
# are missing. As root it runs apt-get; otherwise it prints the command.
# usage: tools/install_deps.sh [--arm] [extra-package ...]
#   --arm   also the AArch64 cross compiler, qemu-user and cmocka for arm64
set -euo pipefail

want=(build-essential libcmocka-dev libstb-dev npm gnuplot-nox)
if [ "${1:-}" = "--arm" ]; then
    shift
    want+=(gcc-aarch64-linux-gnu qemu-user libcmocka-dev:arm64)
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "install_deps: run: sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2
            exit 1
        fi
        dpkg --add-architecture arm64
    fi
fi
want+=("$@")
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# npm may come with a Node.js that is not from Debian: accept any npm on PATH.
if command -v npm >/dev/null 2>&1; then
    kept=(); for p in "${missing[@]}"; do [ "$p" = npm ] || kept+=("$p"); done
    missing=("${kept[@]+"${kept[@]}"}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install_deps: missing Debian packages: ${missing[*]}" >&2
    echo "install_deps: run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
