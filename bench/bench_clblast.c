/* bench_clblast.c: CLBlast's CLBlastSgemm as the peer of our f32 matmul on
 * the same OpenCL device, measured in the same run (its own context on the
 * device whose name matches ours; median of event times after warm-up). */
#ifdef TS_HAVE_CLBLAST
#include "bench.h"
#include "tessera.h"

#include <CL/cl.h>
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static cl_device_id find_device(const char *name, cl_platform_id *plat) {
    cl_platform_id plats[8];
    cl_uint np = 0;
    if (clGetPlatformIDs(8, plats, &np) != CL_SUCCESS) return NULL;
    for (cl_uint p = 0; p < np && p < 8; p++) {
        cl_device_id devs[16];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 16, devs, &nd) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < nd && d < 16; d++) {
            char n[256] = {0};
            clGetDeviceInfo(devs[d], CL_DEVICE_NAME, sizeof n - 1, n, NULL);
            if (strcmp(n, name) == 0) {
                *plat = plats[p];
                return devs[d];
            }
        }
    }
    return NULL;
}

void ts_bench_clblast(ts_bench_report *r, const ts_bench_options *o, ts_context *ctx, const ts_bench_entry *ours) {
    if (strcmp(ts_context_backend(ctx), "opencl") != 0) return;
    int M, N, K;
    if (sscanf(ours->shape, "%dx%dx%d", &M, &N, &K) != 3) return;
    cl_platform_id plat;
    cl_device_id dev = find_device(ts_context_device_name(ctx), &plat);
    if (!dev) return;
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
    cl_context c = clCreateContext(props, 1, &dev, NULL, NULL, &err);
    if (!c) return;
    cl_command_queue q = clCreateCommandQueue(c, dev, CL_QUEUE_PROFILING_ENABLE, &err);
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *h = malloc(sizeof(float) * (na > nb ? na : nb));
    for (size_t i = 0; i < (na > nb ? na : nb); i++) h[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 0.999f;
    cl_mem a = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, na * 4, h, &err);
    cl_mem b = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, nb * 4, h, &err);
    cl_mem cc = clCreateBuffer(c, CL_MEM_READ_WRITE, nc * 4, NULL, &err);
    double t[64];
    int n = 0, runs = o->repeats + o->warmup;
    ts_bench_entry e = *ours;
    /* Wall time around the call and clFinish: CLBlast may run several kernels
     * (padding, transposes) and its event covers only the last one. */
    for (int i = 0; i < runs && i < 64; i++) {
        double w0 = wall_ms();
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)M, (size_t)N, (size_t)K, 1.0f, a, 0,
                                           (size_t)K, b, 0, (size_t)N, 0.0f, cc, 0, (size_t)N, &q, NULL);
        if (s != CLBlastSuccess) {
            snprintf(e.note, sizeof e.note, "CLBlastSgemm failed (%d)", (int)s);
            n = 0;
            break;
        }
        clFinish(q);
        if (i >= o->warmup) t[n++] = wall_ms() - w0;
    }
    if (n) {
        snprintf(e.peer, sizeof e.peer, "clblast");
        e.peer_ms = ts_bench_median(t, n);
        e.ratio = 0;
        ts_bench_add(r, &e);
    }
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clReleaseMemObject(cc);
    clReleaseCommandQueue(q);
    clReleaseContext(c);
    free(h);
}
#endif
