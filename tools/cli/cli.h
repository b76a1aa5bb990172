/* cli.h: shared helpers and command entry points of the `tessera` tool. */
#ifndef TS_CLI_H
#define TS_CLI_H

#include "tessera.h"

int ts_cli_devices(int argc, char **argv);
int ts_cli_examples(int argc, char **argv);
int ts_cli_bench(int argc, char **argv);
int ts_cli_inspect(int argc, char **argv);
int ts_cli_tune(int argc, char **argv);
int ts_cli_conformance(int argc, char **argv);
int ts_cli_demo(int argc, char **argv);

int ts_cli_wants_help(int argc, char **argv);
/* Value of "--name VALUE" or "--name=VALUE", else NULL. */
const char *ts_cli_option(int argc, char **argv, const char *name);
int ts_cli_flag(int argc, char **argv, const char *name);
/* --backend, else $TESSERA_BACKEND; NULL means every backend. */
const char *ts_cli_backend(int argc, char **argv);
/* Registered backend names matching `only` (NULL: all). */
int ts_cli_selected_backends(const char *only, const char **names, int max);

#endif
