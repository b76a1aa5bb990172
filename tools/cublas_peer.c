/* cublas_peer.c: the cuBLAS peer for tools/gpu-check.sh when PyTorch is not
 * importable: f16 and bf16 GEMM 4096^3 (f32 accumulation, cublasGemmEx) and
 * device-to-device copy bandwidth, timed with CUDA events (median of 20
 * after 3 warm-ups), on random (never zero) inputs.
 *
 * libcudart and libcublas are loaded with dlopen (from $CUDA_HOME/lib64,
 * then the loader path), so this builds with a plain C compiler and no CUDA
 * header; the few prototypes and enum values are declared below. Built with
 * -DTS_CHECK_CUDA_HEADERS -I$CUDA_HOME/include it also checks those values
 * against the toolkit's headers at compile time.
 *
 *   cublas_peer [N]      prints one line per measurement; exit 1 on failure */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    PEER_CUBLAS_OP_N = 0,
    PEER_CUDA_R_32F = 0,
    PEER_CUDA_R_16F = 2,
    PEER_CUDA_R_16BF = 14,
    PEER_CUBLAS_COMPUTE_32F = 68,
    PEER_CUBLAS_GEMM_DEFAULT = -1,
    PEER_MEMCPY_D2D = 3,
};

#ifdef TS_CHECK_CUDA_HEADERS
#include <cublas_v2.h>
#include <cuda_runtime.h>
_Static_assert((int)PEER_CUBLAS_OP_N == (int)CUBLAS_OP_N, "CUBLAS_OP_N");
_Static_assert((int)PEER_CUDA_R_32F == (int)CUDA_R_32F, "CUDA_R_32F");
_Static_assert((int)PEER_CUDA_R_16F == (int)CUDA_R_16F, "CUDA_R_16F");
_Static_assert((int)PEER_CUDA_R_16BF == (int)CUDA_R_16BF, "CUDA_R_16BF");
_Static_assert((int)PEER_CUBLAS_COMPUTE_32F == (int)CUBLAS_COMPUTE_32F, "CUBLAS_COMPUTE_32F");
_Static_assert((int)PEER_CUBLAS_GEMM_DEFAULT == (int)CUBLAS_GEMM_DEFAULT, "CUBLAS_GEMM_DEFAULT");
_Static_assert((int)PEER_MEMCPY_D2D == (int)cudaMemcpyDeviceToDevice, "cudaMemcpyDeviceToDevice");
#endif

typedef void *peer_event;
static struct {
    int (*Malloc)(void **, size_t);
    int (*Free)(void *);
    int (*Memcpy)(void *, const void *, size_t, int);
    int (*DeviceSynchronize)(void);
    int (*EventCreate)(peer_event *);
    int (*EventRecord)(peer_event, void *);
    int (*EventSynchronize)(peer_event);
    int (*EventElapsedTime)(float *, peer_event, peer_event);
    int (*GetLastError)(void);
    const char *(*GetErrorString)(int);
    int (*Create)(void **);
    int (*Destroy)(void *);
    int (*GemmEx)(void *, int, int, int, int, int, const void *, const void *, int, int, const void *, int, int, const void *, void *, int, int, int,
                  int);
} rt;

static void *open_lib(const char *base, const char *const *sonames) {
    char path[4200];
    const char *home = getenv("CUDA_HOME");
    for (int i = 0; sonames[i]; i++) {
        snprintf(path, sizeof path, "%s/lib64/%s", home && *home ? home : "/usr/local/cuda", sonames[i]);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if ((h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL))) return h;
    }
    fprintf(stderr, "cublas_peer: cannot load %s (%s)\n", base, dlerror());
    return NULL;
}

#define SYM(lib, field, name)                                                                                                                     \
    do {                                                                                                                                          \
        *(void **)&rt.field = dlsym((lib), (name));                                                                                              \
        if (!rt.field) {                                                                                                                          \
            fprintf(stderr, "cublas_peer: no %s\n", (name));                                                                                     \
            return 1;                                                                                                                             \
        }                                                                                                                                         \
    } while (0)

#define CK(x)                                                                                                                                     \
    do {                                                                                                                                          \
        int r_ = (x);                                                                                                                             \
        if (r_ != 0) {                                                                                                                            \
            printf("FAILED: %s: %d (%s)\n", #x, r_, rt.GetErrorString ? rt.GetErrorString(r_) : "?");                                                                                                  \
            return 1;                                                                                                                             \
        }                                                                                                                                         \
    } while (0)

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Random 16-bit floats in +-[0.5, 1): f16 exponent 14, bf16 exponent 126. */
static void fill16(uint16_t *h, size_t n, int bf16, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint16_t r = (uint16_t)(seed >> 48);
        h[i] = bf16 ? (uint16_t)((r & 0x8000) | 0x3f00 | (r & 0x7f)) : (uint16_t)((r & 0x8000) | 0x3800 | (r & 0x3ff));
    }
}

/* The operation timed: a GEMM of the given type, or a device-to-device copy. */
typedef struct op {
    void *h, *a, *b, *c;
    int type, n;
    size_t bytes; /* copy: bytes > 0 */
} op;

static int run_op(const op *o) {
    float one = 1, zero = 0;
    if (o->bytes) return rt.Memcpy(o->c, o->a, o->bytes, PEER_MEMCPY_D2D);
    return rt.GemmEx(o->h, PEER_CUBLAS_OP_N, PEER_CUBLAS_OP_N, o->n, o->n, o->n, &one, o->a, o->type, o->n, o->b, o->type, o->n, &zero, o->c, o->type,
                     o->n, PEER_CUBLAS_COMPUTE_32F, PEER_CUBLAS_GEMM_DEFAULT);
}

/* Median device time of 20 runs after 3 warm-ups, each between two events. */
static int timed(const op *o, float *median) {
    float ms[20];
    peer_event e0, e1;
    CK(rt.EventCreate(&e0));
    CK(rt.EventCreate(&e1));
    for (int i = 0; i < 23; i++) {
        CK(rt.EventRecord(e0, NULL));
        CK(run_op(o));
        CK(rt.EventRecord(e1, NULL));
        CK(rt.EventSynchronize(e1));
        float t = 0;
        CK(rt.EventElapsedTime(&t, e0, e1));
        if (i >= 3) ms[i - 3] = t;
    }
    qsort(ms, 20, sizeof ms[0], cmpf);
    *median = ms[10];
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4096;
    if (n < 16 || n > 32768) n = 4096;
    static const char *const cudart_names[] = {"libcudart.so", "libcudart.so.13", "libcudart.so.12", NULL};
    static const char *const cublas_names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12", NULL};
    void *lrt = open_lib("libcudart", cudart_names), *lbl = lrt ? open_lib("libcublas", cublas_names) : NULL;
    if (!lrt || !lbl) return 1;
    SYM(lrt, Malloc, "cudaMalloc");
    SYM(lrt, Free, "cudaFree");
    SYM(lrt, Memcpy, "cudaMemcpy");
    SYM(lrt, DeviceSynchronize, "cudaDeviceSynchronize");
    SYM(lrt, EventCreate, "cudaEventCreate");
    SYM(lrt, EventRecord, "cudaEventRecord");
    SYM(lrt, EventSynchronize, "cudaEventSynchronize");
    SYM(lrt, EventElapsedTime, "cudaEventElapsedTime");
    SYM(lrt, GetLastError, "cudaGetLastError");
    SYM(lrt, GetErrorString, "cudaGetErrorString");
    SYM(lbl, Create, "cublasCreate_v2");
    SYM(lbl, Destroy, "cublasDestroy_v2");
    SYM(lbl, GemmEx, "cublasGemmEx");

    size_t elems = (size_t)n * n, bytes16 = elems * 2;
    uint16_t *host = malloc(bytes16);
    if (!host) return 1;
    void *a, *b, *c, *h;
    CK(rt.Malloc(&a, elems * 4));
    CK(rt.Malloc(&b, elems * 4));
    CK(rt.Malloc(&c, elems * 4));
    CK(rt.Create(&h));
    static const struct { const char *name; int type, bf16; } types[] = {{"f16", PEER_CUDA_R_16F, 0}, {"bf16", PEER_CUDA_R_16BF, 1}};
    for (int t = 0; t < 2; t++) {
        fill16(host, elems, types[t].bf16, 1 + (uint64_t)t);
        CK(rt.Memcpy(a, host, bytes16, 1));
        fill16(host, elems, types[t].bf16, 7 + (uint64_t)t);
        CK(rt.Memcpy(b, host, bytes16, 1));
        float ms = 0;
        op o = {.h = h, .a = a, .b = b, .c = c, .type = types[t].type, .n = n};
        if (timed(&o, &ms)) return 1;
        printf("cublasGemmEx %s M=N=K=%d ms=%.4f TFLOP/s=%.1f\n", types[t].name, n, ms, 2.0 * n * n * (double)n / ms / 1e9);
    }
    /* device-to-device copy of an f32 n x n tensor (bytes read + written) */
    size_t bytes = elems * 4;
    float cms = 0;
    op copy = {.a = a, .c = c, .bytes = bytes};
    if (timed(&copy, &cms)) return 1;
    printf("cudaMemcpy copy f32 M=%d,N=%d (device to device) ms=%.4f GB/s=%.1f\n", n, n, cms, 2.0 * (double)bytes / cms / 1e6);
    int last = rt.GetLastError();
    if (last) printf("FAILED: cudaGetLastError: %s\n", rt.GetErrorString(last));
    rt.Destroy(h);
    rt.Free(a);
    rt.Free(b);
    rt.Free(c);
    free(host);
    return last ? 1 : 0;
}
