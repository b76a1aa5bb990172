/* vk_spirv.h: GLSL -> SPIR-V with shaderc, validation and disassembly with
 * SPIRV-Tools. Usable without a Vulkan device (tests, `tessera compile
 * --target spirv`). Internal, built only with TS_HAVE_VULKAN. */
#ifndef TS_VK_SPIRV_H
#define TS_VK_SPIRV_H

#include "ts_internal.h"

#include <stddef.h>
#include <stdint.h>

/* Compiles a GLSL 4.50 compute shader for Vulkan 1.2 and validates the
 * module (spvValidate). TS_ERR_COMPILE with the compiler's or validator's
 * message and the source in ts_last_error() on failure. Caller frees *words. */
ts_status ts__vk_glsl_to_spirv(const char *glsl, const char *name, uint32_t **words, size_t *nwords);
/* spvValidate for Vulkan 1.2; TS_ERR_COMPILE with the message on failure. */
ts_status ts__vk_spirv_validate(const uint32_t *words, size_t nwords);
/* Disassembly (spvBinaryToText). Caller frees *text. */
ts_status ts__vk_spirv_disassemble(const uint32_t *words, size_t nwords, char **text);

#endif
