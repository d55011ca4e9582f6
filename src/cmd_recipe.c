/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt recipe check|render` (placeholder until the recipe module lands). */
#include <stdio.h>

#include "cli.h"

int cmd_recipe(int argc, char **argv)
{
	(void)argc, (void)argv;
	fputs("kilt recipe: not available yet\n", stderr);
	return EXIT_ERROR;
}
