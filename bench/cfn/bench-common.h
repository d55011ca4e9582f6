/* SPDX-License-Identifier: Apache-2.0 */
/* What bench_cfn and bench_cfn_yaml share: their arguments, the recipe they inject, and the peak
 * RSS of the process. */
#ifndef KILT_BENCH_COMMON_H
#define KILT_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kilt.h"

/* A positive whole number from the command line, or `dflt` when absent or not one. */
static inline long parse_long(const char *s, long dflt)
{
	if (!s)
		return dflt;
	char *end = NULL;
	long v = strtol(s, &end, 10);
	return (end && !*end && v > 0) ? v : dflt;
}

/* The recipe both benches inject (RECIPE: tests/ecs/recipes/falco.conf); exits on failure,
 * naming `prog`. */
static inline struct kilt_recipe *load_recipe_named(const char *prog)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_load_file(RECIPE, &r, &err) < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, RECIPE, err.msg);
		exit(1);
	}
	return r;
}

/* The process's peak RSS (VmHWM) in KiB, -1 when it cannot be read. */
static inline long vm_hwm(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

#endif
