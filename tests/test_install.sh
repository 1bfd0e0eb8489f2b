#!/usr/bin/env bash
# make test-install: make install into a scratch PREFIX (and once more with
# DESTDIR staging), a program that says #include <mlp.h> builds with nothing
# but `pkg-config --cflags --libs mlp` and runs, pkg-config reports the
# header's version, and make uninstall leaves nothing behind.
set -euo pipefail
command -v pkg-config >/dev/null || { echo "test_install: pkg-config is missing (apt-get install pkg-config)" >&2; exit 1; }
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
prefix=$scratch/prefix
make -s install PREFIX="$prefix"
export PKG_CONFIG_PATH=$prefix/share/pkgconfig
want=$(sed -n 's/^#define MLP_VERSION_\(MAJOR\|MINOR\|PATCH\) //p' mlp.h | paste -sd.)
got=$(pkg-config --modversion mlp)
[ "$got" = "$want" ] || { echo "test_install: pkg-config says version $got, mlp.h is $want" >&2; exit 1; }
cat > "$scratch/user.c" <<'C'
#include <stdio.h>
#define MLP_IMPLEMENTATION
#include <mlp.h>
int main(void)
{
    float x[2] = {1.0f, -1.0f};
    mlp_net *net = mlp_create_spec("2-3-2", MLP_ACT_RELU, MLP_LOSS_CE, 1);
    const float *p = net ? mlp_predict(net, x, 1) : NULL;
    if (!p) return 1;
    printf("mlp %s: %.3f + %.3f\n", mlp_version(), p[0], p[1]);
    mlp_free(net);
    return 0;
}
C
# shellcheck disable=SC2046 # pkg-config's words are meant to split
cc -std=c99 -Wall -Wextra -Werror -O2 -o "$scratch/user" "$scratch/user.c" $(pkg-config --cflags --libs mlp)
"$scratch/user" | grep -q "^mlp $want: " || { echo "test_install: the program built against the installed header did not run" >&2; exit 1; }
make -s uninstall PREFIX="$prefix"
left=$(find "$prefix" -type f)
[ -z "$left" ] || { echo "test_install: make uninstall left: $left" >&2; exit 1; }
# DESTDIR stages under another root; the .pc still names PREFIX
make -s install PREFIX=/opt/mlp DESTDIR="$scratch/stage"
grep -qx 'prefix=/opt/mlp' "$scratch/stage/opt/mlp/share/pkgconfig/mlp.pc"
[ -f "$scratch/stage/opt/mlp/include/mlp.h" ]
make -s uninstall PREFIX=/opt/mlp DESTDIR="$scratch/stage"
[ -z "$(find "$scratch/stage" -type f)" ]
echo "test_install: make install, pkg-config --cflags --libs mlp (version $want) and make uninstall work"
