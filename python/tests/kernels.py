"""Small kernels in the tile language, shared by the tests (small so PoCL and lavapipe compile fast)."""
AXPY = """
kernel axpy(x: f32[N], y: f32[N], a: f32) {
  tunable B = 64 in 16..1024
  grid t in tile(N, B)
  store(y[t], a * load(x[t]) + load(y[t]))
}
"""
ADD2D = """
kernel scaled_add(x: f32[M, N], b: f32[N], y: f32[M, N], s: f32) {
  tunable BM = 4 in 1..64
  grid tm in tile(M, BM), tn in tile(N)
  store(y[tm, tn], s * load(x[tm, tn]) + load(b[tn]))
}
"""
SOFTMAX = """
kernel softmax(x: f32[M, N], y: f32[M, N]) {
  tunable BLOCK_M = 2 in 1..64
  grid tm in tile(M, BLOCK_M), tn in tile(N)
  xv = load(x[tm, tn], fill=-inf)
  e = exp(xv - max(xv, axis=1, keepdim=true))
  store(y[tm, tn], e / sum(e, axis=1, keepdim=true))
}
"""
MATMUL = """
kernel matmul(A: f32[M, K], B: f32[K, N], C: f32[M, N]) {
  tunable BLOCK_M = 16 in 16..64
  tunable BLOCK_N = 16 in 16..64
  tunable BLOCK_K = 8 in 8..32
  grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)
  c = for tk in tile(K, BLOCK_K) carry (acc = zeros(f32, [tm, tn])) {
    yield dot(load(A[tm, tk]), load(B[tk, tn]), acc)
  }
  store(C[tm, tn], c)
}
"""
ISCALE = """
kernel iscale(x: i32[N], y: i32[N], k: i32) {
  tunable B = 64 in 16..256
  grid t in tile(N, B)
  store(y[t], load(x[t]) * k)
}
"""
