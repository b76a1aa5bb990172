#!/usr/bin/env bash
# test_install.sh BUILD_DIR: installs the build into a temporary prefix, then
# builds and runs a small C program against it with find_package(tessera)
# (shared and static targets) and with pkg-config, so the installed CMake
# package and tessera.pc are checked where they really land (not /usr/local);
# then the Python package, installed into a fresh venv, finds that library
# through pkg-config.
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tessera-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -1)
export TESSERA_CACHE_DIR="$tmp/cache"

echo "== find_package(tessera) from $prefix"
cmake -S "$here" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer_shared"
"$tmp/consumer/consumer_static"
# the shared consumer runs against the installed library, not the build tree
ldd "$tmp/consumer/consumer_shared" >"$tmp/ldd.txt"
grep -q "$prefix/" "$tmp/ldd.txt" || { echo "consumer_shared does not use the installed libtessera"; cat "$tmp/ldd.txt"; exit 1; }

echo "== pkg-config from $libdir"
export PKG_CONFIG_PATH="$libdir"
inc=$(pkg-config --variable=includedir tessera)
[ -f "$inc/tessera.h" ] || { echo "pkg-config includedir $inc has no tessera.h"; exit 1; }
case "$(cd "$inc" && pwd -P)" in "$(cd "$prefix" && pwd -P)"/*) ;; *) echo "includedir $inc is outside $prefix"; exit 1 ;; esac
# shellcheck disable=SC2046
cc -o "$tmp/consumer_pc" "$here/consumer.c" $(pkg-config --cflags --libs tessera) -Wl,-rpath,"$(pkg-config --variable=libdir tessera)"
"$tmp/consumer_pc"
echo "== the Python package against the installed library (pkg-config), in a fresh venv"
py=$(command -v python3)
"$py" -m venv --system-site-packages "$tmp/venv"
cp -r "$here/../../python" "$tmp/pkg"
rm -rf "$tmp/pkg/build" "$tmp/pkg"/*.egg-info "$tmp/pkg/tessera/_build_paths.py"  # no build tree to fall back on
"$tmp/venv/bin/python" -m pip install -q --no-deps "$tmp/pkg"
(cd "$tmp" && env -u TESSERA_LIBRARY -u PYTHONPATH "$tmp/venv/bin/python" - "$prefix" <<'PYEOF'
import os, sys
import numpy as np
import tessera
prefix = os.path.realpath(sys.argv[1])
assert os.path.realpath(tessera.library_path).startswith(prefix + os.sep), tessera.library_path
k = tessera.kernel("kernel neg(x: f32[N], y: f32[N]) {\n  grid t in tile(N)\n  store(y[t], -load(x[t]))\n}\n")
x = np.arange(5, dtype=np.float32); y = np.zeros_like(x)
k(x, y, backend="ref")
assert (y == -x).all()
print("python: installed library", tessera.library_path, "ok")
PYEOF
)
echo "install test: ok"
