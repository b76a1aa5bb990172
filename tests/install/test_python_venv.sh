#!/usr/bin/env bash
# test_python_venv.sh PYTHON BUILD_DIR: `pip install ./python` into a fresh
# virtual environment (offline: the package's own build backend needs nothing
# from PyPI; numpy comes from the system site packages), then a script
# outside the source tree writes a kernel as text and runs it on numpy arrays
# on every available backend, and checks that a broken kernel raises with its
# line and column. No TESSERA_LIBRARY: the package finds the library itself.
set -euo pipefail
py=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tessera-venv.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset TESSERA_LIBRARY PYTHONPATH
"$py" -m venv --system-site-packages "$tmp/venv"
# a private copy of the package source, so the build's by-products stay out of the checkout
cp -r "$src/python" "$tmp/pkg"
rm -rf "$tmp/pkg/build" "$tmp/pkg"/*.egg-info
"$tmp/venv/bin/python" -m pip install -q --no-deps "$tmp/pkg"
cd "$tmp"
"$tmp/venv/bin/python" - "$tmp/venv" <<'PYEOF'
import sys
import numpy as np
import tessera

assert tessera.__file__.startswith(sys.argv[1]), tessera.__file__  # the installed copy, not the checkout
print("tessera from", tessera.__file__, "library", tessera.library_path)
k = tessera.kernel("""
kernel scaled_add(x: f32[M, N], b: f32[N], y: f32[M, N], s: f32) {
  tunable BM = 4 in 1..64
  grid tm in tile(M, BM), tn in tile(N)
  store(y[tm, tn], s * load(x[tm, tn]) + load(b[tn]))
}
""")
rng = np.random.default_rng(0)
x = rng.standard_normal((37, 19)).astype(np.float32)
b = rng.standard_normal(19).astype(np.float32)
want = 2.5 * x + b
for be in tessera.backends():
    y = np.zeros_like(x)
    k(x, b, y, 2.5, backend=be, config={"BM": 8})
    err = float(np.abs(y - want).max())
    print("%-8s max |y - numpy| = %.3g" % (be, err))
    assert err <= 1e-5, (be, err)
assert {"ref", "opencl", "vulkan"} <= set(tessera.backends()) or print("note: not every CI backend is available here")
try:
    tessera.kernel("kernel bad(x: f32[N]) {\n  grid t in tile(N)\n  store(x[t], 2 * nope)\n}\n")
    raise SystemExit("a broken kernel did not raise")
except tessera.ParseError as e:
    print("broken kernel:", e.status, "line", e.line, "column", e.column)
    assert (e.line, e.column) == (3, 19), (e.line, e.column)
print("venv install test: ok")
PYEOF
