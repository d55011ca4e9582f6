/* SPDX-License-Identifier: Apache-2.0 */
/* The recipes compiled into the macro's binary, so a Lambda needs no recipe download to start:
 * "falco" is deploy/recipes/falco.kilt.conf, embedded with the assembler's .incbin (src/CMakeLists.txt
 * lists the file as a dependency of this object). */
#include <stddef.h>
#include <string.h>

const char *lambda_builtin_recipe(const char *name, size_t *ret_len);

__asm__(".section .rodata\n"
	".balign 16\n"
	"lambda_builtin_falco_start:\n"
	".incbin \"" KILT_SOURCE_DIR "/deploy/recipes/falco.kilt.conf\"\n"
	"lambda_builtin_falco_end:\n"
	".byte 0\n"
	".previous\n");
extern const char lambda_builtin_falco_start[] __asm__("lambda_builtin_falco_start");
extern const char lambda_builtin_falco_end[] __asm__("lambda_builtin_falco_end");

const char *lambda_builtin_recipe(const char *name, size_t *ret_len)
{
	if (strcmp(name, "falco") != 0)
		return NULL;
	*ret_len = (size_t)(lambda_builtin_falco_end - lambda_builtin_falco_start);
	return lambda_builtin_falco_start;
}
