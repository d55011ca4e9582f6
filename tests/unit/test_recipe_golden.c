/* SPDX-License-Identifier: Apache-2.0 */
/* Golden cases of the recipe module: each folder tests/golden/recipe/<case>/ holds recipe.conf (or
 * recipe.path naming a recipe in the tree) and target.json (the container's facts plus "config"),
 * and expects want.json (the plan) or want-error.txt (every error, one per line). Also checks that
 * evaluating twice gives the same plan and that the cached-template way equals a full resolution.
 * KILT_UPDATE_GOLDEN=1 rewrites the expectations (review the diff). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"
#include "recipe-private.h"

#define GOLDEN_DIR KILT_SOURCE_DIR "/tests/golden/recipe"

static bool update_mode(void)
{
	const char *u = getenv("KILT_UPDATE_GOLDEN");
	return u && strcmp(u, "1") == 0;
}

static char *read_opt(const char *dir, const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	char *text = NULL;
	if (kilt_read_file(p, 1u << 24, &text, NULL) < 0)
		return NULL;
	return text;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void collect(const struct kilt_error *err, void *userdata)
{
	char buf[1024];
	kbuf_printf(userdata, "%s\n", kilt_error_format(err, buf, sizeof(buf)));
}

static const char *str_field(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *dump_plan(const json_t *plan)
{
	char *s = json_dumps(plan, JSON_INDENT(2));
	assert_non_null(s);
	char *r = xasprintf("%s\n", s);
	free(s);
	return r;
}

/* Evaluates the case; returns the text to compare with the expectation. */
static char *run_case(const char *dir, bool *ret_error)
{
	_cleanup_free_ char *target_text = read_opt(dir, "target.json");
	json_error_t jerr;
	_cleanup_json_ json_t *tj = target_text ? json_loads(target_text, 0, &jerr) : json_object();
	if (!tj)
		fail_msg("%s/target.json: %s", dir, jerr.text);

	/* Recipes are named relative to their folder (or to the source tree for recipe.path), so
	 * messages do not depend on where the tree is checked out. */
	_cleanup_free_ char *ref = read_opt(dir, "recipe.path");
	const char *base = dir;
	_cleanup_free_ char *rel = NULL;
	if (ref) {
		rel = xstrndup(ref, strcspn(ref, "\n"));
		base = KILT_SOURCE_DIR;
	} else {
		rel = xstrdup("recipe.conf");
	}
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(base), 0);

	struct kbuf out;
	kbuf_init(&out, 1u << 24);
	*ret_error = false;
	if (kilt_recipe_check_file(rel, collect, &out) < 0) {
		*ret_error = true;
		assert_int_equal(chdir(cwd), 0);
		return kbuf_steal(&out);
	}
	struct kilt_recipe *recipe = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_file(rel, &recipe, &err), 0);
	assert_int_equal(chdir(cwd), 0);

	struct kilt_target t = {
		.image = str_field(tj, "image"),
		.name = str_field(tj, "name"),
		.group = str_field(tj, "group"),
		.entrypoint = json_object_get(tj, "entrypoint"),
		.command = json_object_get(tj, "command"),
		.environment = json_object_get(tj, "environment"),
		.metadata = json_object_get(tj, "metadata"),
		.platform = str_field(tj, "platform"),
	};
	const json_t *config = json_object_get(tj, "config");
	json_t *plan = NULL;
	char *result;
	if (kilt_recipe_evaluate(recipe, &t, config, &plan, &err) < 0) {
		char buf[1024];
		kbuf_printf(&out, "%s\n", kilt_error_format(&err, buf, sizeof(buf)));
		*ret_error = true;
		/* The full way fails the same way. */
		struct kilt_error err2 = { 0 };
		json_t *p2 = NULL;
		assert_true(kilt_recipe_evaluate_full(recipe, &t, config, &p2, &err2) < 0);
		assert_int_equal(err.code, err2.code);
		result = kbuf_steal(&out);
	} else {
		result = dump_plan(plan);
		/* Evaluating again gives the same plan. */
		json_t *again = NULL;
		assert_int_equal(kilt_recipe_evaluate(recipe, &t, config, &again, &err), 0);
		_cleanup_free_ char *s2 = dump_plan(again);
		assert_string_equal(result, s2);
		json_decref(again);
		/* A full resolution gives the same plan as the template. */
		json_t *full = NULL;
		assert_int_equal(kilt_recipe_evaluate_full(recipe, &t, config, &full, &err), 0);
		_cleanup_free_ char *s3 = dump_plan(full);
		assert_string_equal(result, s3);
		json_decref(full);
		json_decref(plan);
	}
	kbuf_done(&out);
	kilt_recipe_free(recipe);
	return result;
}

static void test_golden_case(void **state)
{
	const char *dir = *state;
	bool is_error = false;
	_cleanup_free_ char *got = run_case(dir, &is_error);
	const char *want_name = is_error ? "want-error.txt" : "want.json";
	const char *other_name = is_error ? "want.json" : "want-error.txt";
	if (update_mode()) {
		write_file(dir, want_name, got);
		_cleanup_free_ char *other = xasprintf("%s/%s", dir, other_name);
		unlink(other);
		return;
	}
	_cleanup_free_ char *want = read_opt(dir, want_name);
	if (!want) {
		_cleanup_free_ char *other = read_opt(dir, other_name);
		fail_msg("%s: got %s but the case expects %s:\n%s", dir,
			 is_error ? "an error" : "a plan", other ? other_name : "nothing", got);
	}
	if (strcmp(want, got) != 0) {
		print_error("%s/%s differs.\n--- want\n%s--- got\n%s", dir, want_name, want, got);
		fail();
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	DIR *d = opendir(GOLDEN_DIR);
	if (!d) {
		fprintf(stderr, "no golden cases in %s\n", GOLDEN_DIR);
		return 1;
	}
	char **dirs = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", GOLDEN_DIR, e->d_name);
		struct stat st;
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		dirs = xrealloc(dirs, (n + 1) * sizeof(*dirs));
		dirs[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	qsort(dirs, n, sizeof(*dirs), cmp_names);
	if (n < 30) {
		fprintf(stderr, "expected at least 30 golden cases, found %zu\n", n);
		return 1;
	}
	struct CMUnitTest *tests = xcalloc(n, sizeof(*tests));
	char **names = xcalloc(n, sizeof(*names));
	char **paths = xcalloc(n, sizeof(*paths));
	for (size_t i = 0; i < n; i++) {
		names[i] = xasprintf("test_recipe_golden__%s", dirs[i]);
		paths[i] = xasprintf("%s/%s", GOLDEN_DIR, dirs[i]);
		tests[i] = (struct CMUnitTest){
			.name = names[i],
			.test_func = test_golden_case,
			.initial_state = paths[i],
		};
	}
	int rc = _cmocka_run_group_tests("recipe_golden", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		free(paths[i]);
		free(dirs[i]);
	}
	free(names);
	free(paths);
	free(dirs);
	free(tests);
	return rc;
}
