#!/usr/bin/env bash
# run-fuzz.sh BUILD_DIR SECONDS: runs every fuzz_* target in BUILD_DIR for
# SECONDS each, starting from its seed corpus in tests/fuzz/corpus_NAME.
# Fails if any target finds a crash, leak or undefined behaviour.
set -euo pipefail
build=$(cd "$1" && pwd); secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=("$build"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then echo "fuzz: no fuzz targets built"; exit 0; fi
for t in "${targets[@]}"; do
  [ -x "$t" ] || continue
  name=$(basename "$t"); short=${name#fuzz_}
  seeds="$root/tests/fuzz/corpus_$short"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${secs}s"
  set +e
  (cd "$work" && "$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 "$work" >"$work.log" 2>&1)
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then tail -n 60 "$work.log"; else tail -n 2 "$work.log"; fi
  rm -rf "$work" "$work.log"
  if [ "$rc" -ne 0 ]; then echo "fuzz: $name found a problem (exit $rc)"; exit 1; fi
done
echo "fuzz: ${#targets[@]} targets ran with no finding"
