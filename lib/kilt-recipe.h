/* SPDX-License-Identifier: Apache-2.0 */
/* Recipes: parsed once into a model, evaluated per target container into a plan.
 * Included by kilt.h. (Filled in by the recipe module.) */
#ifndef KILT_RECIPE_H
#define KILT_RECIPE_H

#endif
