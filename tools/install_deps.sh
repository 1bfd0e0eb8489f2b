#!/usr/bin/env bash
# Install the Debian packages mlp.h's examples, tests and tools need, if they
# are missing. As root it runs apt-get; otherwise it prints the command.
# usage: tools/install_deps.sh [--arm] [--cross] [--windows] [extra-package ...]
#   --arm      also the AArch64 cross compiler, qemu-user and cmocka for arm64
#   --cross    also the i686, armhf and s390x (big-endian) cross compilers,
#              qemu-user and tcc (make test-cross; its static cmocka is built
#              from Debian's source by tools/build_cmocka.sh)
#   --windows  also MinGW-w64 and Wine (make test-windows; cmocka likewise)
set -euo pipefail

want=(build-essential libcmocka-dev libstb-dev npm gnuplot-nox pkg-config)
arches=()
sources=0   # tools/build_cmocka.sh needs Debian's source packages (deb-src)
while [ $# -gt 0 ]; do
    case "$1" in
        --arm)   want+=(gcc-aarch64-linux-gnu qemu-user libcmocka-dev:arm64)
                 arches+=(arm64) ;;
        --cross) want+=(gcc-i686-linux-gnu gcc-arm-linux-gnueabihf gcc-s390x-linux-gnu qemu-user tcc dpkg-dev cmake)
                 sources=1 ;;
        --windows) want+=(gcc-mingw-w64-x86-64 wine64 dpkg-dev cmake)
                 sources=1 ;;
        *) break ;;
    esac
    shift
done
# cmocka for another architecture comes from Debian's multiarch packages.
new_arches=()
for a in "${arches[@]+"${arches[@]}"}"; do
    dpkg --print-foreign-architectures | grep -qx "$a" || new_arches+=("$a")
done
if [ ${#new_arches[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        add=""; for a in "${new_arches[@]}"; do add+="sudo dpkg --add-architecture $a && "; done
        echo "install_deps: run: ${add}sudo apt-get update" >&2
        exit 1
    fi
    for a in "${new_arches[@]}"; do dpkg --add-architecture "$a"; done
fi
want+=("$@")
# Enabled here, once, so that the cmocka builds (which may run in parallel)
# never have to run apt-get themselves.
list=/etc/apt/sources.list.d/debian.sources
if [ "$sources" = 1 ] && [ -f "$list" ] && ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install_deps: run: sed 's/^Types: deb\$/Types: deb-src/' $list | sudo tee ${list%.sources}-src.sources && sudo apt-get update" >&2
        exit 1
    fi
    sed 's/^Types: deb$/Types: deb-src/' "$list" > "${list%.sources}-src.sources"
    apt-get update -qq
fi
missing=()
for p in "${want[@]}"; do
    case " ${missing[*]-} " in *" $p "*) continue ;; esac   # qemu-user: --arm and --cross
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
