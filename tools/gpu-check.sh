#!/usr/bin/env bash
# gpu-check.sh: the prepared check for a machine with one NVIDIA GPU (H100
# class), in under 8 minutes: builds, runs the CUDA codegen tests and every
# example kernel on the cuda backend (checked against independent
# references), then benchmarks side by side on the GPU:
#   f16 and bf16 matmul 4096^3   vs cuBLAS (torch.matmul, else a small C program on cuBLAS)
#   softmax, layer_norm, rms_norm vs PyTorch (when torch is importable)
#   add                           vs device-to-device copy bandwidth
# Usage: tools/gpu-check.sh [OUTDIR]   (default: $OUT, else ./gpu-check-out)
# Environment: TS_GPU_BUILD (build dir, default build-gpu), TS_GPU_SKIP_BUILD=1
# (reuse it), CUDA_HOME (default /usr/local/cuda).
# Writes OUTDIR/report.md (summary), OUTDIR/log.txt (everything) and one
# file per step. Every step is bounded by a timeout and tolerant of failure;
# the report says which failed.
set -u

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUTDIR="${1:-${OUT:-$PWD/gpu-check-out}}"
mkdir -p "$OUTDIR" || exit 1
OUTDIR="$(cd "$OUTDIR" && pwd)"
BUILD="${TS_GPU_BUILD:-$ROOT/build-gpu}"
LOG="$OUTDIR/log.txt"
REPORT="$OUTDIR/report.md"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export CUDA_HOME
export TESSERA_CACHE_DIR="$OUTDIR/cache"
JOBS="$(nproc 2>/dev/null || echo 4)"
: > "$LOG"
: > "$REPORT"

say() { echo "$*" | tee -a "$LOG"; }
report() { echo "$*" >> "$REPORT"; }

# step NAME TIMEOUT_S CMD...: runs CMD with a timeout, output to OUTDIR/NAME.txt and the log.
step() {
  local name="$1" t="$2"
  shift 2
  say "=== $name: $* (timeout ${t}s)"
  local t0 rc
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$t" "$@" > "$OUTDIR/$name.txt" 2>&1
  rc=$?
  cat "$OUTDIR/$name.txt" >> "$LOG"
  say "=== $name: exit $rc after $(( $(date +%s) - t0 ))s"
  if [ "$rc" -eq 0 ]; then report "- $name: ok"; else report "- $name: FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ', timed out'); see $name.txt)"; fi
  return "$rc"
}

report "# Tessera GPU check"
report ""
report "date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)')"
report ""
report '```'
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG" >> "$REPORT" || true
report '```'
report ""
report "## Steps"

# ---- build
if [ "${TS_GPU_SKIP_BUILD:-0}" = 1 ]; then # a rerun on an existing build
  report "- build: skipped (TS_GPU_SKIP_BUILD=1, using $BUILD)"
else
  TESTS=ON
  pkg-config --exists criterion 2>/dev/null || { TESTS=OFF; report "- note: no Criterion here: tests not built"; }
  step cmake 120 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTS_WERROR=OFF -DTS_TESTS="$TESTS"
  step build 240 cmake --build "$BUILD" -j "$JOBS"
fi
TS="$BUILD/tessera"

# ---- device and correctness
step devices 60 "$TS" devices
if grep -q "^cuda .*not available" "$OUTDIR/devices.txt" 2>/dev/null; then
  report "- **cuda backend not available**: $(grep '^cuda ' "$OUTDIR/devices.txt" | head -1)"
fi
step codegen_tests 120 "$BUILD/test_cuda_hip_codegen" --filter 'cuda_codegen/*' --jobs "$JOBS"
step examples_cuda 240 "$TS" examples --backend cuda

# ---- our kernels, timed without the reference check (gpu_bench.c)
BENCH="$BUILD/gpu_bench"
step build_gpu_bench 60 cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$ROOT/api" -I"$ROOT/examples/kernels" "$ROOT/tools/gpu_bench.c" \
  "$BUILD/libtessera_examples.a" -L"$BUILD" -ltessera -Wl,-rpath,"$BUILD" -lm -o "$BENCH"

OURS="$OUTDIR/ours.txt"
: > "$OURS"
ours() { # name dtype sizes [config]; skipped past 7 minutes so the whole check ends within 8
  local line
  if [ "$SECONDS" -gt 420 ]; then say "ours: $1 $2 $3 skipped (time budget)"; echo "$1 $2 $3 skipped (time budget)" >> "$OURS"; return; fi
  line=$(timeout 45 "$BENCH" cuda "$1" "$2" "$3" "${4:-}" 20 2>>"$LOG") || line="$1 $2 $3 FAILED (see log.txt)"
  say "ours: $line ${4:+[$4]}"
  echo "$line ${4:+[$4]}" >> "$OURS"
}
MM=M=4096,N=4096,K=4096
GPUCFG="stage=1,micro_m=8,micro_n=8,BLOCK_M=128,BLOCK_N=128,BLOCK_K=16"
if [ -x "$BENCH" ]; then
  for dt in f16 bf16; do
    ours matmul "$dt" "$MM"
    ours matmul "$dt" "$MM" "$GPUCFG"
  done
  ours softmax f32 M=4096,N=4096
  ours softmax f16 M=4096,N=4096
  ours layer_norm f32 M=4096,N=4096
  ours rms_norm f32 M=4096,N=4096
  ours add f32 M=4096,N=4096
fi

# ---- peers: PyTorch when importable, else cuBLAS through a small C program
PEERS="$OUTDIR/peers.txt"
: > "$PEERS"
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >> "$LOG" 2>&1; then
  cat > "$OUTDIR/peers.py" <<'EOF'
import torch
def t(fn, reps=20):
    for _ in range(3): fn()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for _ in range(reps):
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ms.append(s.elapsed_time(e))
    ms.sort(); return ms[len(ms) // 2]
n = 4096
for dt, name in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
    a = torch.randn(n, n, device="cuda", dtype=dt); b = torch.randn(n, n, device="cuda", dtype=dt)
    ms = t(lambda: torch.matmul(a, b))
    print(f"torch.matmul {name} M=N=K={n} ms={ms:.4f} GFLOP/s={2*n**3/ms/1e6:.1f}")
x = torch.randn(n, n, device="cuda"); w = torch.randn(n, device="cuda"); bias = torch.randn(n, device="cuda")
for name, fn in (("softmax f32", lambda: torch.softmax(x, -1)),
                 ("softmax f16", lambda: torch.softmax(x.half(), -1)),
                 ("layer_norm f32", lambda: torch.nn.functional.layer_norm(x, (n,), w, bias, 1e-5)),
                 ("rms_norm f32", lambda: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w),
                 ("add f32", lambda: x + bias)):
    ms = t(fn); print(f"torch {name} M={n},N={n} ms={ms:.4f} GB/s={2*x.numel()*4/ms/1e6:.1f}")
y = torch.empty_like(x)
ms = t(lambda: y.copy_(x)); print(f"torch copy f32 {n}x{n} (device to device) ms={ms:.4f} GB/s={2*x.numel()*4/ms/1e6:.1f}")
EOF
  step peers_torch 180 python3 "$OUTDIR/peers.py" && cat "$OUTDIR/peers_torch.txt" >> "$PEERS"
  report "- note: torch softmax f16 includes the f32->f16 conversion of its input (an upper bound)"
else
  say "torch with CUDA not importable: cuBLAS through a C program"
  cat > "$OUTDIR/cublas_peer.c" <<'EOF'
/* f16/bf16 GEMM 4096^3 with cuBLAS (f32 accumulation) and device-to-device copy bandwidth. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#define CK(x) do { if ((x) != 0) { printf("FAILED: %s\n", #x); return 1; } } while (0)
static float timed(cublasHandle_t h, cudaDataType t, void *a, void *b, void *c, int n) {
    float one = 1, zero = 0, best[20], ms;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0); cudaEventCreate(&e1);
    for (int i = 0; i < 23; i++) {
        cudaEventRecord(e0, 0);
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, t, n, b, t, n, &zero, c, t, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e1, 0); cudaEventSynchronize(e1); cudaEventElapsedTime(&ms, e0, e1);
        if (i >= 3) best[i - 3] = ms;
    }
    for (int i = 0; i < 20; i++) for (int j = i + 1; j < 20; j++) if (best[j] < best[i]) { float x = best[i]; best[i] = best[j]; best[j] = x; }
    return best[10];
}
int main(void) {
    int n = 4096;
    void *a, *b, *c;
    CK(cudaMalloc(&a, (size_t)n * n * 4)); CK(cudaMalloc(&b, (size_t)n * n * 4)); CK(cudaMalloc(&c, (size_t)n * n * 4));
    cudaMemset(a, 0x3c, (size_t)n * n * 2); cudaMemset(b, 0x3c, (size_t)n * n * 2);
    cublasHandle_t h;
    CK(cublasCreate(&h));
    float ms = timed(h, CUDA_R_16F, a, b, c, n);
    printf("cublasGemmEx f16 M=N=K=%d ms=%.4f GFLOP/s=%.1f\n", n, ms, 2.0 * n * n * (double)n / ms / 1e6);
    ms = timed(h, CUDA_R_16BF, a, b, c, n);
    printf("cublasGemmEx bf16 M=N=K=%d ms=%.4f GFLOP/s=%.1f\n", n, ms, 2.0 * n * n * (double)n / ms / 1e6);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0); cudaEventCreate(&e1);
    size_t bytes = (size_t)n * n * 4;
    for (int i = 0; i < 3; i++) cudaMemcpy(c, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e0, 0);
    for (int i = 0; i < 20; i++) cudaMemcpy(c, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1, 0); cudaEventSynchronize(e1); cudaEventElapsedTime(&ms, e0, e1);
    ms /= 20;
    printf("cudaMemcpy f32 %dx%d (device to device) ms=%.4f GB/s=%.1f\n", n, n, ms, 2.0 * bytes / ms / 1e6);
    return 0;
}
EOF
  step build_cublas_peer 60 cc -O2 -I"$CUDA_HOME/include" "$OUTDIR/cublas_peer.c" -L"$CUDA_HOME/lib64" -lcublas -lcudart \
    -Wl,-rpath,"$CUDA_HOME/lib64" -o "$OUTDIR/cublas_peer" \
    && step peers_cublas 120 "$OUTDIR/cublas_peer" && cat "$OUTDIR/peers_cublas.txt" >> "$PEERS"
  report "- note: no PyTorch: softmax/layer_norm/rms_norm have no peer in this run"
fi

# ---- report
report ""
report "## Ours (cuda backend; median of 20 launches, device events)"
report '```'
cat "$OURS" >> "$REPORT"
report '```'
report ""
report "## Peers"
report '```'
cat "$PEERS" >> "$REPORT"
report '```'
report ""
report "## Examples on cuda (tail)"
report '```'
tail -n 25 "$OUTDIR/examples_cuda.txt" >> "$REPORT" 2>/dev/null || true
report '```'
say "report: $REPORT"
cat "$REPORT"
exit 0
