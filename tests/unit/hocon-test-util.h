/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the HOCON tests: a JSON comparer that ignores key order and compares numbers
 * by value (json_equal treats 1 and 1.0 as different), a diff-style description of the first
 * difference for failure messages, and the walker of equivalence folders (every .conf/.json in a
 * folder resolves to that folder's original.json). */
#ifndef KILT_HOCON_TEST_UTIL_H
#define KILT_HOCON_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sys/stat.h>

#include <jansson.h>

#include "kilt.h"

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

static inline int hocon_name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Walks root/<folder>/: every *.conf and *.json other than original.json must resolve to a value
 * equal to original.json. Prints one line per file; returns the number of failures (a folder
 * without a readable original.json counts as one) or -1 with errno when root cannot be read. */
static inline int hocon_equiv_walk(const char *root, int *ret_folders, int *ret_files)
{
	struct dirent **dirs = NULL;
	int nd = scandir(root, &dirs, NULL, hocon_name_cmp);
	if (nd < 0)
		return -1;
	int folders = 0, files = 0, failures = 0;
	for (int i = 0; i < nd; i++) {
		char dir[PATH_MAX * 2];
		snprintf(dir, sizeof(dir), "%s/%s", root, dirs[i]->d_name);
		struct stat st;
		if (dirs[i]->d_name[0] == '.' || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			free(dirs[i]);
			continue;
		}
		folders++;
		char orig[PATH_MAX * 3];
		snprintf(orig, sizeof(orig), "%s/original.json", dir);
		json_error_t jerr;
		json_t *want = json_load_file(orig, 0, &jerr);
		struct dirent **ents = NULL;
		int ne = want ? scandir(dir, &ents, NULL, hocon_name_cmp) : -1;
		if (ne < 0) {
			fprintf(stderr, "FAIL %s: %s\n", orig, want ? strerror(errno) : jerr.text);
			failures++;
		}
		for (int k = 0; k < ne; k++) {
			const char *n = ents[k]->d_name;
			size_t len = strlen(n);
			bool conf = len > 5 && strcmp(n + len - 5, ".conf") == 0;
			bool js = len > 5 && strcmp(n + len - 5, ".json") == 0;
			if ((conf || js) && strcmp(n, "original.json") != 0) {
				char path[PATH_MAX * 4];
				snprintf(path, sizeof(path), "%s/%s", dir, n);
				struct kilt_error err = { 0 };
				json_t *got = NULL;
				char why[1024] = "";
				files++;
				if (kilt_hocon_load_file(path, NULL, &got, &err) < 0) {
					char buf[1024];
					fprintf(stderr, "FAIL %s/%s: %s\n", dirs[i]->d_name, n,
						kilt_error_format(&err, buf, sizeof(buf)));
					failures++;
				} else if (!hocon_json_same(want, got, "$", why, sizeof(why))) {
					fprintf(stderr, "FAIL %s/%s: %s\n", dirs[i]->d_name, n,
						why);
					failures++;
				} else {
					printf("ok   %s/%s\n", dirs[i]->d_name, n);
				}
				json_decref(got);
			}
			free(ents[k]);
		}
		free(ents);
		json_decref(want);
		free(dirs[i]);
	}
	free(dirs);
	*ret_folders = folders;
	*ret_files = files;
	return failures;
}

#endif
