/* SPDX-License-Identifier: Apache-2.0 */
/* The recipes compiled into the macro's binary, so a Lambda needs no recipe download to start:
 * "falco" is deploy/recipes/falco.kilt.conf, embedded with the assembler's .incbin (src/CMakeLists.txt
 * lists the file as a dependency of this object). */
#include <stddef.h>
#include <string.h>

const char *lambda_builtin_recipe(const char *name, size_t *ret_len);

/* Global but hidden symbols: relocations then name them, not ".rodata + offset" (aarch64's
 * linker folds GOT entries of one section symbol with different addends into one). */
__asm__(".section .rodata\n"
	".balign 16\n"
	".globl lambda_builtin_falco_start\n"
	".hidden lambda_builtin_falco_start\n"
	"lambda_builtin_falco_start:\n"
	".incbin \"" KILT_SOURCE_DIR "/deploy/recipes/falco.kilt.conf\"\n"
	".globl lambda_builtin_falco_end\n"
	".hidden lambda_builtin_falco_end\n"
	"lambda_builtin_falco_end:\n"
	".byte 0\n"
	".previous\n");
extern const char lambda_builtin_falco_start[] __attribute__((visibility("hidden")));
extern const char lambda_builtin_falco_end[] __attribute__((visibility("hidden")));

const char *lambda_builtin_recipe(const char *name, size_t *ret_len)
{
	if (strcmp(name, "falco") != 0)
		return NULL;
	*ret_len = (size_t)(lambda_builtin_falco_end - lambda_builtin_falco_start);
	return lambda_builtin_falco_start;
}
