#!/usr/bin/python3
"""PyTorch's side of `make bench-peers`: the workloads of tools/bench_workloads.md
(B1 training, B2 inference, the recipe network) in PyTorch on the CPU, the
same network, data, optimizer and batch as tools/bench.c --peers runs them.

    tools/bench_torch.py WORKLOAD THREADS [--epochs N]

WORKLOAD is b1, b2 or recipe. THREADS is PyTorch's intra-op thread count
(torch.set_num_threads); OpenBLAS's own threads are set by the caller through
OPENBLAS_NUM_THREADS before this process starts, as OpenBLAS reads it once.
Prints one line, `torch WORKLOAD THREADS FIGURE UNIT [test acc A]`, which
tools/bench_peers.sh reads; exit status 3 when torch cannot be imported.
MNIST is read from $MLP_MNIST_DIR (default data/mnist), pixels scaled to [0,1].
"""
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:  # the caller says what to install
    print("bench_torch.py: %s" % e, file=sys.stderr)
    sys.exit(3)


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_mnist():
    d = os.environ.get("MLP_MNIST_DIR", "data/mnist")
    def images(name):
        x = read_idx(os.path.join(d, name)).reshape(-1, 784).astype(np.float32) / 255.0
        return torch.from_numpy(x)
    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(d, name)).astype(np.int64))
    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


def b1_net():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))


def recipe_net():
    """784-800-800-10, batchnorm after each hidden product (as mlp_add_batchnorm)"""
    return nn.Sequential(nn.Linear(784, 800), nn.BatchNorm1d(800), nn.ReLU(),
                         nn.Linear(800, 800), nn.BatchNorm1d(800), nn.ReLU(), nn.Linear(800, 10))


def accuracy(net, x, y):
    net.eval()
    with torch.inference_mode():
        correct = sum(int((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(x), 1000))
    net.train()
    return correct / len(x)


def train(net, lr, epochs, data):
    """SGD with momentum 0.9, batch 64, reshuffled each epoch; median s/epoch"""
    x, y, tx, ty = data
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], accuracy(net, tx, ty)


def infer(net, tx):
    """B2: images/s at batch 256 and microseconds per image at batch 1, medians of 5"""
    net.eval()
    t256, t1 = [], []
    with torch.inference_mode():
        for _ in range(5):
            t0 = time.perf_counter()
            for i in range(0, len(tx), 256):
                net(tx[i:i + 256])
            t256.append(len(tx) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for i in range(2000):
                net(tx[i:i + 1])
            t1.append((time.perf_counter() - t0) / 2000 * 1e6)
    return sorted(t256)[2], sorted(t1)[2]


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("b1", "b2", "recipe"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    workload, threads = args[0], int(args[1])
    epochs = int(args[args.index("--epochs") + 1]) if "--epochs" in args else 5
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    data = load_mnist()
    if workload == "b1":
        sec, acc = train(b1_net(), 0.05, epochs, data)
        print("torch b1 %d %.4f s/epoch test acc %.4f" % (threads, sec, acc))
    elif workload == "recipe":
        sec, acc = train(recipe_net(), 0.1, epochs, data)
        print("torch recipe %d %.4f s/epoch test acc %.4f" % (threads, sec, acc))
    else:
        per_s, us = infer(b1_net(), data[2])
        print("torch b2 %d %.0f images/s" % (threads, per_s))
        print("torch b2-1 %d %.2f us/image" % (threads, us))


if __name__ == "__main__":
    main()
