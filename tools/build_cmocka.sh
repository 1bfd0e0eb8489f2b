#!/usr/bin/env bash
# Cross-build a static cmocka for another target (Windows with MinGW-w64,
# 32-bit x86 and Arm, s390x) so that the cmocka test programs can be built
# for it and run under Wine, qemu or the 32-bit loader. Debian has no MinGW
# build of cmocka, its multiarch ones are shared only (and qemu-s390x here
# cannot run dynamically linked programs), and this repo keeps no
# third-party code: the source is Debian's own package (apt-get source,
# Debian patches applied), built with its upstream CMake files.
# usage: tools/build_cmocka.sh TRIPLET OUTDIR
#   TRIPLET: x86_64-w64-mingw32, i686-linux-gnu, arm-linux-gnueabihf, s390x-linux-gnu, ...
#   gives OUTDIR/include/cmocka.h (+ cmocka_pbc.h) and OUTDIR/lib/libcmocka.a;
#   does nothing when OUTDIR/lib/libcmocka.a is already there. As root it
#   installs what is missing (dpkg-dev, cmake, make, the cross compiler)
#   and, if no deb-src entry exists, adds one mirroring debian.sources.
set -euo pipefail

triplet=${1:?usage: $0 TRIPLET OUTDIR}
out=${2:?usage: $0 TRIPLET OUTDIR}
case $triplet in
    *-mingw32) system=Windows; package=gcc-mingw-w64-${triplet%%-*}; package=${package//_/-} ;;
    *)         system=Linux;   package=gcc-$triplet ;;
esac
[ -f "$out/lib/libcmocka.a" ] && exit 0

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.build.XXXXXX")
log=$work/log
exec 3>&2 >"$log" 2>&1     # everything goes to the log; fd 3 is the real stderr
trap 'rc=$?; if [ $rc -ne 0 ]; then cat "$log" >&3
    echo "build_cmocka: FAILED (exit $rc); log above, work dir kept: $work" >&3
    else rm -rf "$work"; fi' EXIT

export DEBIAN_FRONTEND=noninteractive
need=()
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v "$triplet-gcc" >/dev/null || need+=("$package")
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! apt-cache showsrc cmocka 2>/dev/null | grep '^Package: cmocka' >/dev/null; then
    if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
            > /etc/apt/sources.list.d/debian-src.sources
    fi
    apt-get update -q
fi

(cd "$work" && apt-get source -q cmocka)    # fetch, unpack, apply Debian patches
src=$(echo "$work"/cmocka-*/)
cmake -S "$src" -B "$work/build" -DCMAKE_SYSTEM_NAME=$system \
    -DCMAKE_C_COMPILER="$triplet-gcc" -DCMAKE_RC_COMPILER="$triplet-windres" \
    -DCMAKE_BUILD_TYPE=Release -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF
cmake --build "$work/build" --target cmocka-static -j"$(nproc)"

# Only the static library is installed: with a libcmocka.dll.a (or .so)
# beside it, -lcmocka would link that instead.
mkdir -p "$out/include" "$out/lib"
cp "$src/include/cmocka.h" "$src/include/cmocka_pbc.h" "$out/include/"
cp "$work/build/src/libcmocka-static.a" "$out/lib/libcmocka.a.tmp"
mv "$out/lib/libcmocka.a.tmp" "$out/lib/libcmocka.a"
echo "build_cmocka: $(basename "$src") for $triplet -> $out/lib/libcmocka.a" >&3
