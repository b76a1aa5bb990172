/* vk_spirv.c: GLSL -> SPIR-V (shaderc), validation and disassembly
 * (SPIRV-Tools). Every module the Vulkan backend creates went through
 * ts__vk_spirv_validate first. */
#include "vk_spirv.h"

#include <pthread.h>
#include <shaderc/shaderc.h>
#include <spirv-tools/libspirv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ts_status ts__vk_spirv_validate(const uint32_t *words, size_t nwords) {
    spv_context c = spvContextCreate(SPV_ENV_VULKAN_1_2);
    if (!c) return ts__error(TS_ERR_OUT_OF_MEMORY, "spirv-tools: cannot create a context");
    spv_const_binary_t bin = {words, nwords};
    spv_diagnostic diag = NULL;
    spv_result_t r = spvValidate(c, &bin, &diag);
    ts_status s = TS_OK;
    if (r != SPV_SUCCESS)
        s = ts__error(TS_ERR_COMPILE, "spirv-val: module is invalid (%d): %s", (int)r, diag && diag->error ? diag->error : "(no message)");
    spvDiagnosticDestroy(diag);
    spvContextDestroy(c);
    return s;
}

ts_status ts__vk_spirv_disassemble(const uint32_t *words, size_t nwords, char **text) {
    *text = NULL;
    spv_context c = spvContextCreate(SPV_ENV_VULKAN_1_2);
    if (!c) return ts__error(TS_ERR_OUT_OF_MEMORY, "spirv-tools: cannot create a context");
    spv_text t = NULL;
    spv_diagnostic diag = NULL;
    spv_result_t r = spvBinaryToText(c, words, nwords, SPV_BINARY_TO_TEXT_OPTION_FRIENDLY_NAMES | SPV_BINARY_TO_TEXT_OPTION_INDENT, &t, &diag);
    ts_status s = TS_OK;
    if (r != SPV_SUCCESS) s = ts__error(TS_ERR_COMPILE, "spirv-dis: %s", diag && diag->error ? diag->error : "failed");
    else {
        *text = malloc(t->length + 1);
        if (!*text) s = TS_ERR_OUT_OF_MEMORY;
        else {
            memcpy(*text, t->str, t->length);
            (*text)[t->length] = 0;
        }
    }
    spvTextDestroy(t);
    spvDiagnosticDestroy(diag);
    spvContextDestroy(c);
    return s;
}

/* One compiler for the process: shaderc compilers may be used from several
 * threads at once, and setting one up (glslang's process state) is part of
 * the cost of the first compile. Never released (lives as long as the
 * process, like the backend tables). */
static shaderc_compiler_t the_compiler;
static pthread_once_t compiler_once = PTHREAD_ONCE_INIT;
static void make_compiler(void) { the_compiler = shaderc_compiler_initialize(); }

ts_status ts__vk_glsl_to_spirv(const char *glsl, const char *name, uint32_t **words, size_t *nwords) {
    *words = NULL;
    *nwords = 0;
    pthread_once(&compiler_once, make_compiler);
    shaderc_compiler_t comp = the_compiler;
    shaderc_compile_options_t opt = shaderc_compile_options_initialize();
    if (!comp || !opt) {
        shaderc_compile_options_release(opt);
        return ts__error(TS_ERR_OUT_OF_MEMORY, "shaderc: cannot initialize");
    }
    shaderc_compile_options_set_target_env(opt, shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_2);
    shaderc_compile_options_set_optimization_level(opt, shaderc_optimization_level_performance);
    shaderc_compilation_result_t res =
        shaderc_compile_into_spv(comp, glsl, strlen(glsl), shaderc_compute_shader, name ? name : "tessera.comp", "main", opt);
    ts_status s = TS_OK;
    if (!res || shaderc_result_get_compilation_status(res) != shaderc_compilation_status_success) {
        s = ts__error(TS_ERR_COMPILE, "shaderc: '%s' failed to compile (status %d)\n--- log ---\n%s\n--- source ---\n%.40000s", name ? name : "shader",
                      res ? (int)shaderc_result_get_compilation_status(res) : -1, res ? shaderc_result_get_error_message(res) : "(no result)", glsl);
    } else {
        size_t n = shaderc_result_get_length(res);
        uint32_t *w = malloc(n ? n : 4);
        if (!w) s = TS_ERR_OUT_OF_MEMORY;
        else {
            memcpy(w, shaderc_result_get_bytes(res), n);
            s = ts__vk_spirv_validate(w, n / 4);
            if (s) {
                char msg[2048];
                snprintf(msg, sizeof msg, "%s", ts_last_error());
                s = ts__error(TS_ERR_COMPILE, "%s\n--- source of '%s' ---\n%.40000s", msg, name ? name : "shader", glsl);
                free(w);
            } else {
                *words = w;
                *nwords = n / 4;
            }
        }
    }
    shaderc_result_release(res);
    shaderc_compile_options_release(opt);
    return s;
}
