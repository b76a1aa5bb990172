#!/usr/bin/env bash
# test_install.sh BUILD_DIR: installs the build into a temporary prefix, then
# builds and runs a small C program against it with find_package(tessera)
# (shared and static targets) and with pkg-config, so the installed CMake
# package and tessera.pc are checked where they really land (not /usr/local).
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
ldd "$tmp/consumer/consumer_shared" | grep -q "$prefix" || { echo "consumer_shared does not use the installed libtessera"; ldd "$tmp/consumer/consumer_shared"; exit 1; }

echo "== pkg-config from $libdir"
export PKG_CONFIG_PATH="$libdir"
inc=$(pkg-config --variable=includedir tessera)
[ -f "$inc/tessera.h" ] || { echo "pkg-config includedir $inc has no tessera.h"; exit 1; }
case "$(cd "$inc" && pwd -P)" in "$(cd "$prefix" && pwd -P)"/*) ;; *) echo "includedir $inc is outside $prefix"; exit 1 ;; esac
# shellcheck disable=SC2046
cc -o "$tmp/consumer_pc" "$here/consumer.c" $(pkg-config --cflags --libs tessera) -Wl,-rpath,"$(pkg-config --variable=libdir tessera)"
"$tmp/consumer_pc"
echo "install test: ok"
