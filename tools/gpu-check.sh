#!/usr/bin/env bash
# gpu-check.sh: the prepared check for a machine with one NVIDIA GPU (H100 or
# H200 class), in one run of under 8 minutes (16 cores):
#   1. build (Release; tests too when Criterion is there)
#   2. `tessera devices` (when cuda has no device, 3, 4 and 6 are skipped)
#   3. tune: `tessera tune matmul --effort quick` for f16 and bf16 at 2048^3
#      (bounded; the reference executor's f64 run at 4096^3 alone would take
#      minutes), which the 4096^3 launches then take from the tuning database
#      (nearest shape bucket)
#   4. ours on the cuda backend (tools/gpu_bench.c; median of 20 launches,
#      device events): matmul f16/bf16 4096^3 (tuned, defaults, one fixed GPU
#      config), attention, softmax, layer_norm, rms_norm, add
#   5. peers: PyTorch when importable (torch.matmul = cuBLAS, F.scaled_dot_
#      product_attention, softmax, layer_norm, rms_norm, add, copy_); always
#      cuBLAS from C (tools/cublas_peer.c, libcublas/libcudart by dlopen)
#   6. `tessera examples --backend cuda`: every example kernel against its
#      independent reference (--quick when little time is left)
#   then the CUDA codegen tests (when built, with the time left), and
#   7. a summary: TFLOP/s or GB/s per side and ratios (ours vs peer; add vs
#      device-to-device copy)
# Every step has a timeout, also cut to what is left of the whole run's
# budget (TS_GPU_BUDGET seconds, default 450), and a failed step does not
# stop the others; the report says which failed or were skipped.
#
# Usage: tools/gpu-check.sh [OUTDIR]   (default: $OUT, else ./gpu-check-out)
# OUTDIR gets few files (a device machine returns at most 8): report.md (the
# summary, printed last), log.txt (every step's output), results.txt (the
# raw measurement lines) and tuning.json (the tuning database). Scratch
# (per-step files, the binary and tuning caches) goes to TS_GPU_WORK (default
# /tmp/tessera-gpu-check).
# Environment: TS_GPU_BUILD (build dir, default $ROOT/build-gpu),
# TS_GPU_SKIP_BUILD=1 (reuse it), CUDA_HOME (default /usr/local/cuda),
# TS_GPU_DEBS (default $ROOT/.gpu-deps): .deb files unpacked into the scratch
# dir when the machine lacks them, for a machine without libjansson-dev or
# pkg-config, e.g. prepared on Debian 12 with
#   mkdir .gpu-deps && cd .gpu-deps && apt-get download libjansson4 libjansson-dev pkgconf pkgconf-bin libpkgconf3
# (carry the folder to the device machine).
set -u

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUTDIR="${1:-${OUT:-$PWD/gpu-check-out}}"
mkdir -p "$OUTDIR" || exit 1
OUTDIR="$(cd "$OUTDIR" && pwd)"
WORK="${TS_GPU_WORK:-/tmp/tessera-gpu-check}"
mkdir -p "$WORK/steps" || exit 1
BUILD="${TS_GPU_BUILD:-$ROOT/build-gpu}"
BUDGET="${TS_GPU_BUDGET:-450}"
LOG="$OUTDIR/log.txt"
REPORT="$OUTDIR/report.md"
RESULTS="$OUTDIR/results.txt"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export CUDA_HOME
export TESSERA_CACHE_DIR="$WORK/cache"
export PYTHONUNBUFFERED=1
JOBS="$(nproc 2>/dev/null || echo 4)"
SECONDS=0
: > "$LOG"
: > "$REPORT"
: > "$RESULTS"

say() { echo "$*" | tee -a "$LOG"; }
report() { echo "$*" >> "$REPORT"; }

# step NAME TIMEOUT_S CMD...: runs CMD with a timeout (cut to the budget
# left), output to $WORK/steps/NAME.txt and the log; returns CMD's status
# (124 timed out, 125 skipped for lack of time).
step() {
  local name="$1" t="$2" left rc t0
  shift 2
  left=$((BUDGET - SECONDS))
  if [ "$left" -lt 10 ]; then
    say "=== $name: skipped (time budget spent)"
    report "- $name: skipped (time budget spent)"
    : > "$WORK/steps/$name.txt"
    return 125
  fi
  [ "$t" -gt "$left" ] && t=$left
  say "=== $name: $* (timeout ${t}s)"
  t0=$SECONDS
  timeout --signal=TERM --kill-after=10 "$t" "$@" > "$WORK/steps/$name.txt" 2>&1
  rc=$?
  cat "$WORK/steps/$name.txt" >> "$LOG"
  say "=== $name: exit $rc after $((SECONDS - t0))s"
  if [ "$rc" -eq 0 ]; then report "- $name: ok ($((SECONDS - t0)) s)"
  else report "- $name: FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out') after $((SECONDS - t0)) s; see log.txt): $(tail -n 1 "$WORK/steps/$name.txt" | cut -c1-240)"; fi
  return "$rc"
}

report "# Tessera GPU check"
report ""
report "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)')"
report ""
report '```'
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG" >> "$REPORT" || report "nvidia-smi failed or is missing"
report "cores: $JOBS, CUDA_HOME: $CUDA_HOME ($(ls "$CUDA_HOME"/lib64/libnvrtc.so* 2>/dev/null | head -1 || echo 'no libnvrtc'))"
report '```'
report ""
report "## Steps"

# ---- build dependencies the machine may lack (jansson, pkg-config): carried .debs
DEBS="${TS_GPU_DEBS:-$ROOT/.gpu-deps}"
if { ! command -v pkg-config > /dev/null 2>&1 || ! pkg-config --exists jansson 2>/dev/null; } && ls "$DEBS"/*.deb > /dev/null 2>&1; then
  DEPS="$WORK/deps"
  mkdir -p "$DEPS"
  for f in "$DEBS"/*.deb; do dpkg-deb -x "$f" "$DEPS" >> "$LOG" 2>&1 || say "cannot unpack $f"; done
  for pc in "$DEPS"/usr/lib/*/pkgconfig/*.pc "$DEPS"/usr/lib/pkgconfig/*.pc "$DEPS"/usr/share/pkgconfig/*.pc; do
    [ -f "$pc" ] && sed -i "s|^prefix=.*|prefix=$DEPS/usr|" "$pc"
  done
  export PATH="$DEPS/usr/bin:$PATH"
  PKG_CONFIG_PATH="$(ls -d "$DEPS"/usr/lib/*/pkgconfig "$DEPS"/usr/share/pkgconfig 2>/dev/null | tr '\n' ':')${PKG_CONFIG_PATH:-}"
  LD_LIBRARY_PATH="$(ls -d "$DEPS"/usr/lib/*-linux-gnu 2>/dev/null | tr '\n' ':')${LD_LIBRARY_PATH:-}"
  export PKG_CONFIG_PATH LD_LIBRARY_PATH
  report "- note: build dependencies unpacked from $DEBS ($(ls "$DEBS"/*.deb | wc -l) .debs)"
fi

# ---- 1. build
if [ "${TS_GPU_SKIP_BUILD:-0}" = 1 ]; then # a rerun on an existing build
  report "- build: skipped (TS_GPU_SKIP_BUILD=1, using $BUILD)"
else
  TESTS=ON
  pkg-config --exists criterion 2>/dev/null || { TESTS=OFF; report "- note: no Criterion here: tests not built"; }
  step cmake 90 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTS_WERROR=OFF -DTS_TESTS="$TESTS"
  step build 200 cmake --build "$BUILD" -j "$JOBS"
fi
TS="$BUILD/tessera"
BENCH="$BUILD/gpu_bench"
step build_gpu_bench 60 cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$ROOT/api" -I"$ROOT/examples/kernels" "$ROOT/tools/gpu_bench.c" \
  "$BUILD/libtessera_examples.a" -L"$BUILD" -ltessera -Wl,-rpath,"$BUILD" -lm -o "$BENCH"
PEER_C="$WORK/cublas_peer"
step build_cublas_peer 60 cc -std=c11 -O2 "$ROOT/tools/cublas_peer.c" -ldl -o "$PEER_C"

# ---- 2. devices, codegen tests
step devices 30 "$TS" devices
CUDA_OK=1
if ! grep -q "^cuda .*device 0" "$WORK/steps/devices.txt" 2>/dev/null; then
  CUDA_OK=0
  report "- **cuda backend not available**: $(grep '^cuda ' "$WORK/steps/devices.txt" | head -1); tune, ours and examples skipped"
fi

# ---- 3. tune the matmuls (before timing them)
MM=M=4096,N=4096,K=4096
for dt in f16 bf16; do
  [ "$CUDA_OK" = 1 ] || break
  step "tune_matmul_$dt" 75 "$TS" tune matmul --backend cuda --dtype "$dt" --shape M=2048,N=2048,K=2048 --effort quick --budget 50
done
timeout 20 "$TS" tune --list --backend cuda >> "$LOG" 2>&1
timeout 20 "$TS" tune --export "$OUTDIR/tuning.json" >> "$LOG" 2>&1 || rm -f "$OUTDIR/tuning.json"

# ---- 4. ours: one line per measurement in results.txt, "ours NAME DTYPE SIZES ms=.. GB/s=.. GFLOP/s=.. [config]"
ours() { # name dtype sizes [config]
  local line left
  left=$((BUDGET - SECONDS))
  if [ "$left" -lt 15 ]; then say "ours: $1 $2 $3 ${4:-} skipped (time budget)"; echo "ours-skipped $1 $2 $3 ${4:-}" >> "$RESULTS"; return; fi
  [ "$left" -gt 60 ] && left=60
  if line=$(timeout --kill-after=5 "$left" "$BENCH" cuda "$1" "$2" "$3" "${4:-}" 20 2>>"$LOG"); then
    say "ours: $line ${4:+[$4]}"
    echo "ours $line ${4:+[$4]}" >> "$RESULTS"
  else
    say "ours: $1 $2 $3 ${4:-} FAILED (see log.txt)"
    echo "ours-failed $1 $2 $3 ${4:-}" >> "$RESULTS"
  fi
}
ATT=H=16,S=2048,T=2048,D=64
RC=M=4096,N=4096
GPUCFG="stage=1,micro_m=8,micro_n=8,BLOCK_M=128,BLOCK_N=128,BLOCK_K=16"
if [ "$CUDA_OK" != 1 ]; then
  :
elif [ -x "$BENCH" ]; then
  for dt in f16 bf16; do
    ours matmul "$dt" "$MM" tuned
    ours matmul "$dt" "$MM"
    ours matmul "$dt" "$MM" "$GPUCFG"
  done
  ours attention f32 "$ATT" tuned
  ours softmax f32 "$RC" tuned
  ours softmax f16 "$RC" tuned
  ours layer_norm f32 "$RC" tuned
  ours rms_norm f32 "$RC" tuned
  ours add f32 "$RC" tuned
  report "- ours: $(grep -c '^ours ' "$RESULTS") measured, $(grep -c '^ours-failed' "$RESULTS") failed, $(grep -c '^ours-skipped' "$RESULTS") skipped"
else
  report "- ours: no gpu_bench (build failed)"
fi

# ---- 5. peers, in the same line format: "peer WHO NAME DTYPE SIZES ms=.."
cat > "$WORK/peers.py" <<'EOF'
import math, sys
import torch
import torch.nn.functional as F
torch.backends.cuda.matmul.allow_tf32 = False
def t(fn, reps=20):
    for _ in range(3): fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for _ in range(reps):
        s.record(); fn(); e.record(); e.synchronize(); ms.append(s.elapsed_time(e))
    ms.sort(); return ms[len(ms) // 2]
def out(who, key, ms):
    print(f"peer {who} {key} ms={ms:.4f}", flush=True)
dev = "cuda"
print("torch", torch.__version__, torch.cuda.get_device_name(0), file=sys.stderr)
n = 4096
for dt, name in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
    a = torch.randn(n, n, device=dev, dtype=dt); b = torch.randn(n, n, device=dev, dtype=dt)
    out("torch.matmul", f"matmul {name} M={n},N={n},K={n}", t(lambda: torch.matmul(a, b)))
    del a, b
H, S, D = 16, 2048, 64
q, k, v = (torch.randn(1, H, S, D, device=dev) for _ in range(3))
try:
    out("torch.sdpa", f"attention f32 H={H},S={S},T={S},D={D}",
        t(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(D))))
except Exception as ex:
    print("sdpa failed:", ex, file=sys.stderr)
x = torch.randn(n, n, device=dev); x16 = x.half(); w = torch.randn(n, device=dev); bias = torch.randn(n, device=dev)
rms = (lambda: F.rms_norm(x, (n,), w, 1e-5)) if hasattr(F, "rms_norm") else (lambda: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w)
for key, who, fn in ((f"softmax f32 M={n},N={n}", "torch.softmax", lambda: torch.softmax(x, -1)),
                     (f"softmax f16 M={n},N={n}", "torch.softmax", lambda: torch.softmax(x16, -1)),
                     (f"layer_norm f32 M={n},N={n}", "F.layer_norm", lambda: F.layer_norm(x, (n,), w, bias, 1e-5)),
                     (f"rms_norm f32 M={n},N={n}", "F.rms_norm", rms),
                     (f"add f32 M={n},N={n}", "torch.add", lambda: x + bias)):
    out(who, key, t(fn))
y = torch.empty_like(x)
out("torch.copy_", f"copy f32 M={n},N={n}", t(lambda: y.copy_(x)))
EOF
if timeout 90 python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >> "$LOG" 2>&1; then
  step peers_torch 150 python3 "$WORK/peers.py"
  grep '^peer ' "$WORK/steps/peers_torch.txt" >> "$RESULTS"
else
  report "- note: PyTorch with CUDA not importable: no peer for attention, softmax, layer_norm, rms_norm (cuBLAS and the copy from C below)"
fi
if [ -x "$PEER_C" ]; then
  step peers_cublas 60 "$PEER_C" 4096
  # "cublasGemmEx f16 M=N=K=4096 ms=.." -> "peer cublasGemmEx matmul f16 M=4096,N=4096,K=4096 ms=.."
  sed -n 's/^cublasGemmEx \([a-z0-9]*\) M=N=K=\([0-9]*\) \(ms=[0-9.]*\).*/peer cublasGemmEx matmul \1 M=\2,N=\2,K=\2 \3/p;
          s/^cudaMemcpy copy f32 \(M=[0-9]*,N=[0-9]*\) (device to device) \(ms=[0-9.]*\).*/peer cudaMemcpy copy f32 \1 \2/p' \
    "$WORK/steps/peers_cublas.txt" >> "$RESULTS"
fi

# ---- 6. correctness of every example kernel on cuda (what time is left; --quick when short)
LEFT=$((BUDGET - SECONDS))
if [ "$CUDA_OK" != 1 ]; then :
elif [ "$LEFT" -ge 150 ]; then step examples_cuda 240 "$TS" examples --backend cuda
else step examples_cuda_quick 240 "$TS" examples --backend cuda --quick; fi

# ---- the CUDA codegen tests (NVRTC + ptxas of this toolkit), with what time is left
if [ -x "$BUILD/test_cuda_hip_codegen" ]; then
  step codegen_tests 90 "$BUILD/test_cuda_hip_codegen" --filter 'cuda_codegen/*' --jobs "$JOBS"
else
  report "- codegen_tests: not built (no Criterion)"
fi

# ---- 7. summary
SUMMARY="$WORK/summary.txt"
awk '
function field(line, key,   i, n, a) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (index(a[i], key "=") == 1) return substr(a[i], length(key) + 2) + 0; return -1 }
$1 == "ours" { k = $2 " " $3 " " $4; cfg = ($8 != "" ? $8 : "[defaults]"); no++; ok[no] = k; oc[no] = cfg; oms[no] = field($0, "ms"); ogb[no] = field($0, "GB/s"); ofl[no] = field($0, "GFLOP/s") }
$1 == "peer" { k = $3 " " $4 " " $5; np++; pk[np] = k; pw[np] = $2; pms[np] = field($0, "ms") }
$1 == "ours-failed" || $1 == "ours-skipped" { nf++; bad[nf] = $0 }
END {
  printf "%-44s %-22s %10s %12s   %-18s %10s %12s %8s\n", "kernel (ours, cuda)", "config", "ms", "rate", "peer", "ms", "rate", "ours/peer"
  for (i = 1; i <= no; i++) {
    flop = ofl[i] > 0; unit = flop ? "TFLOP/s" : "GB/s"; rate = flop ? ofl[i] / 1000 : ogb[i]
    line = sprintf("%-44s %-22s %10.4f %8.2f %-7s", ok[i], substr(oc[i], 1, 22), oms[i], rate, unit)
    split(ok[i], kk, " "); peers = 0
    for (j = 1; j <= np; j++) {
      want = ok[i]; if (kk[1] == "add" && index(pk[j], "copy ") == 1) want = "copy " kk[2] " " kk[3]
      if (pk[j] != want || pms[j] <= 0 || oms[i] <= 0) continue
      prate = rate * oms[i] / pms[j]   # the same work (flops, or our byte count) over the peer time
      printf "%s %-18s %10.4f %8.2f %-7s %6.2fx\n", line, pw[j], pms[j], prate, unit, pms[j] / oms[i]; peers++
    }
    if (!peers) printf "%s %-18s\n", line, "(no peer measured)"
  }
  for (i = 1; i <= nf; i++) print bad[i]
  print ""
  print "rate: TFLOP/s for matmul (2MNK) and attention (2HSTD: causal); else GB/s with every tensor counted once (add: x, bias, y)."
  print "ours/peer: peer time over our time (>1: ours faster); for add the copy row compares with a device-to-device copy of x."
}' "$RESULTS" > "$SUMMARY" 2>> "$LOG"

report ""
report "## Summary (median of 20 launches, device events)"
report '```'
cat "$SUMMARY" >> "$REPORT"
report '```'
report ""
report "## Examples on cuda (tail)"
report '```'
tail -n 25 "$WORK/steps/examples_cuda.txt" "$WORK/steps/examples_cuda_quick.txt" 2>/dev/null | grep -v '^==>' >> "$REPORT"
report '```'
report ""
report "total: ${SECONDS}s (budget ${BUDGET}s)"
say "report: $REPORT"
cat "$REPORT"
exit 0
