#!/usr/bin/env python3
"""tools/idx_head.py N IN OUT: the first N items of an IDX file (MNIST's
format: magic, big-endian dimensions, data) as a new IDX file, e.g. a
training subset small enough for the web page to fetch."""
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: idx_head.py N IN OUT")
    n, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    data = open(src, "rb").read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        sys.exit("idx_head.py: %s is not an IDX file" % src)
    size = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(data[2])
    ndims = data[3]
    if size is None or ndims < 1 or len(data) < 4 + 4 * ndims:
        sys.exit("idx_head.py: %s has an unknown type or a short header" % src)
    dims = list(struct.unpack(">%dI" % ndims, data[4:4 + 4 * ndims]))
    per_item = size
    for d in dims[1:]:
        per_item *= d
    keep = min(n, dims[0])
    body = data[4 + 4 * ndims:4 + 4 * ndims + keep * per_item]
    if len(body) != keep * per_item:
        sys.exit("idx_head.py: %s is shorter than its header says" % src)
    dims[0] = keep
    with open(dst, "wb") as f:
        f.write(data[:4] + struct.pack(">%dI" % ndims, *dims) + body)


if __name__ == "__main__":
    main()
