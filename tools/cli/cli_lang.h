/* cli_lang.h: the tile-language commands of the `tessera` tool and the
 * helpers they share (cmd_run.c, cmd_compile.c). */
#ifndef TS_CLI_LANG_H
#define TS_CLI_LANG_H

#include "kernels.h"
#include "tessera.h"

/* tessera run FILE.tile|NAME [--backend B] [--shape M=1000,N=513] [--dtype f16]
 *            [--config KEY=V,...] [--scalar NAME=V,...] [--repeat N] */
int ts_cli_run(int argc, char **argv);
/* tessera compile FILE.tile|NAME --target cuda|hip|opencl|glsl|spirv
 *                [--config KEY=V,...] [--shape M=...] [--dtype f16] */
int ts_cli_compile(int argc, char **argv);

#define TS_CLI_MAX_SIZES 16

/* Size bindings with their own storage (ts_ex_parse_sizes keeps one static copy). */
typedef struct ts_cli_sizes {
    int n;
    char names[TS_CLI_MAX_SIZES][64];
    int64_t values[TS_CLI_MAX_SIZES];
} ts_cli_sizes;

/* A kernel named on the command line: FILE.tile (parsed) or an example NAME
 * (built with the C API). `ex` is set for examples, and for a .tile file
 * whose IR equals an example's (then `dt` is that example's dtype). */
typedef struct ts_cli_kernel {
    ts_kernel *k;
    const ts_example *ex;
    ts_dtype dt;
    int from_file;
} ts_cli_kernel;

/* The first argument that is not an option or an option's value. */
const char *ts_cli_positional(int argc, char **argv);
/* Loads the kernel; prints the reason and returns non-zero on failure. */
int ts_cli_load_kernel(const char *target, const char *dtype_opt, ts_cli_kernel *out);
/* Sizes: the example's first size set (if any), then --shape on top, then
 * 100 for any size symbol of k still missing. Returns non-zero on bad input. */
int ts_cli_sizes_for(const ts_cli_kernel *ck, const char *shape_opt, ts_cli_sizes *out);
/* "M=127,N=1000" */
void ts_cli_sizes_format(const ts_cli_sizes *s, char *buf, size_t n);
int64_t ts_cli_size(const ts_cli_sizes *s, const char *name);

#endif
