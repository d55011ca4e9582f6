/* SPDX-License-Identifier: Apache-2.0 */
/* The recipes compiled into the kilt binary (deploy/recipes/), for every front end: `kilt inject`
 * without -r, the macro's default `builtin:falco`. */
#ifndef KILT_BUILTIN_RECIPE_H
#define KILT_BUILTIN_RECIPE_H

#include <stddef.h>

/* The text of the built-in recipe `name` ("falco"), static, with its length in *ret_len; NULL
 * when there is no such recipe. */
const char *builtin_recipe(const char *name, size_t *ret_len);

#endif
