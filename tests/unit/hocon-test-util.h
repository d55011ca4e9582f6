/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the HOCON tests: a JSON comparer that ignores key order and compares numbers
 * by value (json_equal treats 1 and 1.0 as different), and a diff-style description of the first
 * difference for failure messages. */
#ifndef KILT_HOCON_TEST_UTIL_H
#define KILT_HOCON_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* Returns true when equal; otherwise writes where they differ into `why`. */
static inline bool hocon_json_same(const json_t *a, const json_t *b, const char *path, char *why,
				   size_t size)
{
	if (json_is_number(a) && json_is_number(b)) {
		if (json_number_value(a) == json_number_value(b))
			return true;
		snprintf(why, size, "%s: %g != %g", path, json_number_value(a),
			 json_number_value(b));
		return false;
	}
	if (json_typeof(a) != json_typeof(b)) {
		snprintf(why, size, "%s: type %d != type %d", path, (int)json_typeof(a),
			 (int)json_typeof(b));
		return false;
	}
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b)) {
			snprintf(why, size, "%s: %zu keys != %zu keys", path, json_object_size(a),
				 json_object_size(b));
			return false;
		}
		const char *k;
		const json_t *v;
		json_object_foreach ((json_t *)(uintptr_t)a, k, v) {
			char sub[512];
			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			const json_t *w = json_object_get(b, k);
			if (!w) {
				snprintf(why, size, "%s: missing on the right", sub);
				return false;
			}
			if (!hocon_json_same(v, w, sub, why, size))
				return false;
		}
		return true;
	}
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b)) {
			snprintf(why, size, "%s: %zu elements != %zu elements", path,
				 json_array_size(a), json_array_size(b));
			return false;
		}
		for (size_t i = 0; i < json_array_size(a); i++) {
			char sub[512];
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (!hocon_json_same(json_array_get(a, i), json_array_get(b, i), sub, why,
					     size))
				return false;
		}
		return true;
	}
	if (json_is_string(a)) {
		if (json_string_length(a) == json_string_length(b) &&
		    memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0)
			return true;
		snprintf(why, size, "%s: \"%s\" != \"%s\"", path, json_string_value(a),
			 json_string_value(b));
		return false;
	}
	return true; /* true, false, null: same type is enough */
}

#endif
