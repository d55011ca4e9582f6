/* SPDX-License-Identifier: Apache-2.0 */
/* The recipes compiled into the binary (builtin_recipe.h), so neither `kilt inject` nor a Lambda
 * needs a recipe file or download to start: "falco" is deploy/recipes/falco.kilt.conf, embedded
 * with the assembler's .incbin (src/CMakeLists.txt lists the file as a dependency of this
 * object). */
#include <string.h>

#include "builtin_recipe.h"

/* Global but hidden symbols: relocations then name them, not ".rodata + offset" (aarch64's
 * linker folds GOT entries of one section symbol with different addends into one). */
__asm__(".section .rodata\n"
	".balign 16\n"
	".globl builtin_recipe_falco_start\n"
	".hidden builtin_recipe_falco_start\n"
	"builtin_recipe_falco_start:\n"
	".incbin \"" KILT_SOURCE_DIR "/deploy/recipes/falco.kilt.conf\"\n"
	".globl builtin_recipe_falco_end\n"
	".hidden builtin_recipe_falco_end\n"
	"builtin_recipe_falco_end:\n"
	".byte 0\n"
	".previous\n");
extern const char builtin_recipe_falco_start[] __attribute__((visibility("hidden")));
extern const char builtin_recipe_falco_end[] __attribute__((visibility("hidden")));

const char *builtin_recipe(const char *name, size_t *ret_len)
{
	if (strcmp(name, "falco") != 0)
		return NULL;
	/* both labels mark the one .incbin blob above (the assembler puts them around it) */
	/* cppcheck-suppress comparePointers */
	*ret_len = (size_t)(builtin_recipe_falco_end - builtin_recipe_falco_start);
	return builtin_recipe_falco_start;
}
