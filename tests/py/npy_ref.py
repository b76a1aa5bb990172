"""npy_ref.py: numpy's side of tests/test_npy.c (numpy is the reference).

  npy_ref.py write DIR    writes one .npy per case with np.save (and versions
                          2.0 and 3.0 with np.lib.format.write_array), and
                          DIR/cases.txt: "FILE DESCR RANK DIM..." per line
  npy_ref.py check DIR    reads DIR/cases.txt (written by the C test) and
                          checks every file with np.load: dtype, shape, C
                          order and the values of the formula below
  npy_ref.py kernel K IN OUT  checks OUT/*.npy against numpy's own
                          computation of kernel K ("add", "softmax") on IN

Element i of a case is value(descr, i); tests/test_npy.c computes the same.
"""
import os
import sys

import numpy as np

DESCRS = ["<f4", "<f2", "<f8", "<i4", "<i8", "<i2", "|i1", "|u1", "|b1"]
SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 4), (3, 0, 2), (2, 1, 3, 2)]


def values(descr, n):
    i = np.arange(n, dtype=np.int64)
    if descr == "|b1":
        return i % 3 == 0
    if descr == "|u1":
        return ((i * 37) % 251).astype(np.uint8)
    v = (i * 37) % 101 - 50
    if descr[1] == "f":
        return (v * 0.5).astype(np.dtype(descr))
    if descr == "<i8":
        v = v * 1000000007
    return v.astype(np.dtype(descr))


def array(descr, shape):
    n = int(np.prod(shape, dtype=np.int64))
    return values(descr, n).reshape(shape)


def write(d):
    lines = []
    for k, descr in enumerate(DESCRS):
        for j, shape in enumerate(SHAPES):
            name = "np_%d_%d.npy" % (k, j)
            np.save(os.path.join(d, name), array(descr, shape))
            lines.append("%s %s %d %s" % (name, descr, len(shape), " ".join(map(str, shape))))
        for version in ((2, 0), (3, 0)):
            name = "np_%d_v%d.npy" % (k, version[0])
            with open(os.path.join(d, name), "wb") as f:
                np.lib.format.write_array(f, array(descr, (3, 4)), version=version)
            lines.append("%s %s 2 3 4" % (name, descr))
    with open(os.path.join(d, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def check(d):
    bad = 0
    with open(os.path.join(d, "cases.txt")) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            name, descr, rank = w[0], w[1], int(w[2])
            shape = tuple(int(x) for x in w[3:3 + rank])
            a = np.load(os.path.join(d, name), allow_pickle=False)
            want = array(descr, shape)
            if a.dtype != np.dtype(descr) or a.shape != shape or not a.flags.c_contiguous or not np.array_equal(a, want):
                print("%s: numpy read dtype %s shape %s, expected %s %s" % (name, a.dtype.str, a.shape, descr, shape))
                bad += 1
    return 1 if bad else 0


def kernel(k, din, dout):
    x = np.load(os.path.join(din, "x.npy"))
    y = np.load(os.path.join(dout, "y.npy"))
    x_out = np.load(os.path.join(dout, "x.npy"))
    if not np.array_equal(x_out, x):
        print("x changed by the run")
        return 1
    x64 = x.astype(np.float64)
    if k == "add":
        b = np.load(os.path.join(din, "bias.npy"))
        want = x64 + b.astype(np.float64)
    else:
        e = np.exp(x64 - x64.max(axis=1, keepdims=True))
        want = e / e.sum(axis=1, keepdims=True)
    if y.dtype != np.float32 or y.shape != x.shape:
        print("y: dtype %s shape %s, expected float32 %s" % (y.dtype, y.shape, x.shape))
        return 1
    err = np.abs(y.astype(np.float64) - want).max()
    if err > 1e-5:
        print("y differs from numpy's %s by %g" % (k, err))
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
        sys.exit(0)
    if sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    sys.exit(kernel(sys.argv[2], sys.argv[3], sys.argv[4]))
