#!/usr/bin/env python3
"""python_overhead.py: per-call overhead of a tiny kernel from Python against the same launch from C, in one run.

    python3 bench/python_overhead.py [--build build] [--backend B,...] [--calls N] [--rounds R] [--json FILE] [--check]

The kernel is axpy on 16 floats, so a call is almost all overhead. The C side
is build/tessera_launch_overhead (bench/overhead/launch_overhead.c, linked to
the same libtessera.so); rounds alternate C and Python so both see the same
machine load, and each side reports its median round. Two pairs:
  device: ts_launch on device tensors  vs  k(tx, ty, 2.0) on tessera.Tensors
  host:   create + write x, y + launch + read y  vs  k(x, y, 2.0) on numpy arrays
--check exits 1 when the device ratio (Python / C) is above 2 (issue #19).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

KERNEL = """kernel axpy(x: f32[N], y: f32[N], a: f32) {
  tunable B = 64 in 16..1024
  grid t in tile(N, B)
  store(y[t], a * load(x[t]) + load(y[t]))
}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--backend", default=None, help="comma-separated (default: every available backend)")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--check", action="store_true", help="exit 1 when Python/C > 2 on device tensors")
    a = ap.parse_args()
    os.environ.setdefault("TESSERA_LIBRARY", os.path.join(a.build, "libtessera.so"))
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import numpy as np
    import tessera

    exe = os.path.join(a.build, "tessera_launch_overhead")
    k = tessera.kernel(KERNEL)
    backends = a.backend.split(",") if a.backend else tessera.backends()
    rows, worst = [], 0.0
    print("%-8s %-34s %12s %12s %7s   %12s %12s %7s" % ("backend", "device", "C dev us", "Py dev us", "ratio",
                                                       "C host us", "Py host us", "ratio"))
    for be in backends:
        x = np.arange(16, dtype=np.float32)
        y = np.ones(16, np.float32)
        tx, ty = tessera.tensor(x, backend=be), tessera.tensor(y, backend=be)
        for _ in range(20):  # compile and warm up
            k(tx, ty, 2.0)
            k(x, y, 2.0, backend=be)
        c_dev, c_host, py_dev, py_host = [], [], [], []
        dev_name = ""
        for _ in range(a.rounds):
            out = subprocess.run([exe, be, str(a.calls)], capture_output=True, text=True, check=True).stdout
            r = json.loads(out)
            c_dev.append(r["device_us"])
            c_host.append(r["host_us"])
            dev_name = r["device"]
            t0 = time.perf_counter()
            for _ in range(a.calls):
                k(tx, ty, 2.0)
            py_dev.append((time.perf_counter() - t0) / a.calls * 1e6)
            t0 = time.perf_counter()
            for _ in range(a.calls):
                k(x, y, 2.0, backend=be)
            py_host.append((time.perf_counter() - t0) / a.calls * 1e6)
        row = {"backend": be, "device": dev_name, "calls": a.calls, "rounds": a.rounds,
               "c_device_us": statistics.median(c_dev), "py_device_us": statistics.median(py_dev),
               "c_host_us": statistics.median(c_host), "py_host_us": statistics.median(py_host)}
        row["device_ratio"] = row["py_device_us"] / row["c_device_us"]
        row["host_ratio"] = row["py_host_us"] / row["c_host_us"]
        worst = max(worst, row["device_ratio"])
        rows.append(row)
        print("%-8s %-34.34s %12.2f %12.2f %6.2fx   %12.2f %12.2f %6.2fx" % (
            be, dev_name, row["c_device_us"], row["py_device_us"], row["device_ratio"], row["c_host_us"],
            row["py_host_us"], row["host_ratio"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if a.check and worst > 2.0:
        print("python_overhead: Python per-call overhead is %.2fx the C launch (limit 2x)" % worst)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
