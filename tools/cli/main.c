/* main.c: the `tessera` command-line tool.
 *
 * Commands: devices, examples, bench, inspect (formats/), run and compile
 * (tile language), tune (tuner/), conformance, demo. Each has --help.
 * --backend defaults to $TESSERA_BACKEND. */
#include "cli.h"
#include "cli_lang.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"devices", ts_cli_devices, "list every backend and device, with its fingerprint"},
    {"examples", ts_cli_examples, "run the example kernel set, check every result"},
    {"bench", ts_cli_bench, "run the benchmarks, ours against peers side by side"},
    {"run", ts_cli_run, "run a kernel (FILE.tile or example) and check it against the reference"},
    {"compile", ts_cli_compile, "print the generated source of a kernel for a target"},
    {"inspect", ts_cli_inspect, "list the tensors and metadata of a .safetensors file"},
    {"tune", ts_cli_tune, "tune a kernel on a device; list/export/import the tuning database"},
    {"conformance", ts_cli_conformance, "run the conformance suite on a backend (pass/fail per case, JSON and JUnit reports)"},
    {"demo", ts_cli_demo, "run all-MiniLM-L6-v2 on every backend, check it, time it (tunes on first use)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: tessera COMMAND [options]   (tessera COMMAND --help for each)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nenvironment: TESSERA_BACKEND (default backend), TESSERA_CACHE_DIR, TESSERA_BACKEND_PATH (plugins)\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tessera %s\n", TS_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tessera: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

int ts_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

const char *ts_cli_option(int argc, char **argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0 && i + 1 < argc) return argv[i + 1];
        if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    }
    return NULL;
}

int ts_cli_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

const char *ts_cli_backend(int argc, char **argv) {
    const char *b = ts_cli_option(argc, argv, "--backend");
    if (!b) b = getenv("TESSERA_BACKEND");
    if (b && (!*b || strcmp(b, "all") == 0 || strcmp(b, "auto") == 0)) b = NULL;
    return b;
}

int ts_cli_selected_backends(const char *only, const char **names, int max) {
    int n = 0;
    for (int i = 0; i < ts_backend_count() && n < max; i++) {
        const char *name = ts_backend_name(i);
        if (only && strcmp(only, name) != 0) continue;
        names[n++] = name;
    }
    return n;
}
