/* cmd_compile.c: `tessera compile FILE.tile|NAME --target T`: prints the
 * source the shared code generator emits for a target dialect, under a
 * config and concrete sizes (block sizes and masks depend on both). A target
 * whose generator does not exist yet fails with its reason. */
#include "cli.h"
#include "cli_lang.h"
#include "codegen.h"
#include "tuner.h"
#ifdef TS_HAVE_VULKAN
#include "backends/vulkan/vk_spirv.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: tessera compile FILE.tile|NAME --target cuda|hip|opencl|glsl|spirv\n"
               "                      [--config KEY=V,...] [--shape M=1000,N=513] [--dtype f16]\n"
               "Prints the generated source of the kernel (a tile-language file, or an example kernel\n"
               "by name) for the target, for the config (default: what a device of the target launches untuned) and the sizes\n"
               "(default: the example's first size set, else 100). Exit status 1 when the target has no\n"
               "code generator yet or generation fails, 2 on bad arguments.\n");
}

int ts_cli_compile(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *target = ts_cli_positional(argc, argv), *tname = ts_cli_option(argc, argv, "--target");
    if (!target || !tname) {
        usage(stderr);
        return 2;
    }
    ts_dialect dialect = TS_DIALECT_NONE;
    int spirv = strcmp(tname, "spirv") == 0;
    if (strcmp(tname, "opencl") == 0) dialect = TS_DIALECT_OPENCL;
    else if (strcmp(tname, "cuda") == 0) dialect = TS_DIALECT_CUDA;
    else if (strcmp(tname, "hip") == 0) dialect = TS_DIALECT_HIP;
    else if (strcmp(tname, "glsl") == 0 || spirv) dialect = TS_DIALECT_GLSL;
    else {
        fprintf(stderr, "tessera compile: unknown target '%s' (cuda, hip, opencl, glsl, spirv)\n", tname);
        return 2;
    }
    const char *cfg_text = ts_cli_option(argc, argv, "--config");
    ts_cli_kernel ck;
    int rc = ts_cli_load_kernel(target, ts_cli_option(argc, argv, "--dtype"), &ck);
    if (rc) return rc;
    ts_cli_sizes sz;
    ts_config *cfg = NULL;
    ts__plan plan;
    memset(&plan, 0, sizeof plan);
    char *src = NULL;
    int64_t shapes[64][TS_MAX_RANK];
    const int64_t *shape_ptrs[64];
    int np = ts_kernel_param_count(ck.k);
    rc = ts_cli_sizes_for(&ck, ts_cli_option(argc, argv, "--shape"), &sz);
    if (rc) goto done;
    if (np > 64) {
        fprintf(stderr, "tessera compile: too many parameters\n");
        rc = 2;
        goto done;
    }
    /* no --config: what a device of the target launches without a tuning
     * entry (a GPU-shaped device default; OpenCL's CPU row form applies on
     * CPU devices only, so not here) */
    const char *dev_knobs = ts__tune_device_knobs(dialect, 0, &ck.k->ir);
    if (!cfg_text && dev_knobs) cfg_text = dev_knobs;
    ts_status s = cfg_text ? ts_config_parse(cfg_text, &cfg) : ts_config_create(&cfg);
    if (!s) s = ts_config_check(cfg, ck.k);
    if (s) {
        fprintf(stderr, "tessera compile: bad config: %s\n", ts_last_error());
        rc = 2;
        goto done;
    }
    for (int p = 0; p < np; p++) {
        ts_param_info pi;
        ts_kernel_param(ck.k, p, &pi);
        for (int d = 0; d < pi.rank; d++) shapes[p][d] = pi.size_names[d] ? ts_cli_size(&sz, pi.size_names[d]) : pi.fixed_sizes[d];
        shape_ptrs[p] = shapes[p];
    }
    s = ts__plan_make(&ck.k->ir, cfg, shape_ptrs, &plan);
    if (!s) {
        char entry[96];
        snprintf(entry, sizeof entry, "ts_%s", ts_kernel_name(ck.k));
        s = ts__codegen_emit(ck.k, &plan, dialect, NULL, entry, &src);
    }
    if (!s && spirv) {
#ifdef TS_HAVE_VULKAN
        /* the module the Vulkan backend runs: shaderc, spvValidate, then the disassembly */
        uint32_t *words = NULL;
        size_t nwords = 0;
        char *dis = NULL;
        s = ts__vk_glsl_to_spirv(src, ts_kernel_name(ck.k), &words, &nwords);
        if (!s) s = ts__vk_spirv_disassemble(words, nwords, &dis);
        free(words);
        free(src);
        src = dis;
#else
        free(src);
        src = NULL;
        s = TS_ERR_UNSUPPORTED;
        fprintf(stderr, "tessera compile: spirv: built without the Vulkan backend (shaderc and SPIRV-Tools not found; try --target glsl)\n");
#endif
    }
    if (s) {
        fprintf(stderr, "tessera compile: %s for target %s: %s (%s)\n", ts_kernel_name(ck.k), tname, ts_last_error(), ts_status_name(s));
        rc = 1;
        goto done;
    }
    fputs(src, stdout);
    if (!*src || src[strlen(src) - 1] != '\n') fputc('\n', stdout);
    rc = 0;
done:
    free(src);
    ts__plan_free(&plan);
    ts_config_destroy(cfg);
    ts_kernel_destroy(ck.k);
    return rc;
}
