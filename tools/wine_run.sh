#!/usr/bin/env bash
# Run a Windows program (e.g. a MinGW-w64 build of a test) under 64-bit Wine,
# non-interactively: its own prefix build/wine (made on first use, about 5 s
# and 0.7 GB), no Wine debug chatter, no display needed, no crash dialog or
# debugger, the program's exit status passed through. Wine's msvcrt writes
# text-mode CRLF: the CRs are taken out of stdout and stderr, so the output
# reads as on Linux (WINE_RUN_RAW=1 keeps it byte for byte).
# usage: tools/wine_run.sh PROGRAM.exe [args...]
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 PROGRAM.exe [args...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
export WINEPREFIX=${WINEPREFIX:-$root/build/wine}
# Wine quiet but for a missing DLL (else a bare exit status 53); no Mono/Gecko.
export WINEDEBUG=${WINEDEBUG:--all,err+module} WINEDLLOVERRIDES='mscoree,mshtml='
unset DISPLAY WAYLAND_DISPLAY        # never open a window
wine=/usr/lib/wine/wine64 wineserver=/usr/lib/wine/wineserver64   # Debian's wine64
[ -x "$wine" ] || { wine=$(command -v wine64 || command -v wine); wineserver=wineserver; }

ready=$WINEPREFIX/.wine_run_ready
if [ ! -f "$ready" ]; then
    mkdir -p "$(dirname "$WINEPREFIX")"
    exec 9>"$WINEPREFIX.lock"; flock 9         # one creation at a time (make -j)
    if [ ! -f "$ready" ]; then
        log=$WINEPREFIX.log
        # AeDebug: a crash must not start winedbg, with which the exit status
        # is sometimes 0; with no debugger to start it is 5 (0xC0000005 & 255).
        { "$wine" wineboot -i &&
          "$wine" reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' \
                  /v Debugger /d no-debugger /f
        } >"$log" 2>&1 9>&- || { cat "$log" >&2; echo "wine_run: cannot make $WINEPREFIX" >&2; exit 1; }
        touch "$ready"
    fi
    exec 9>&-
fi

# Start Wine's background processes (wineserver, services.exe, ...) away from
# our stdout/stderr: started by the program itself they inherit them and keep
# a pipe open until they quit. The server stays 30 s after its last program
# (Wine's default is 3 s), so programs run one after another (make
# test-windows) all use one server instead of starting the next while the
# last one shuts down: on a loaded machine that race once failed a test with
# exit status 1 and no output.
if ! "$wineserver" -k0 2>/dev/null; then
    "$wineserver" -p30 </dev/null >/dev/null 2>&1 || true
    "$wine" hostname </dev/null >/dev/null 2>&1 || true
fi

if [ -n "${WINE_RUN_RAW:-}" ]; then
    exec "$wine" "$@"
fi
# The status is the program's (tr exits 0), by pipefail. Stdout and stderr
# going to one place (2>&1) share one pipe, or their lines would be reordered.
if [ /proc/$$/fd/1 -ef /proc/$$/fd/2 ]; then
    "$wine" "$@" 2>&1 | tr -d '\r'
else
    { "$wine" "$@" 2>&1 >&3 3>&- | tr -d '\r' >&2; } 3>&1 | tr -d '\r'
fi
