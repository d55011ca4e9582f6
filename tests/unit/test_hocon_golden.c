/* SPDX-License-Identifier: Apache-2.0 */
/* Golden cases of the HOCON module: every folder tests/golden/hocon/<case>/ has an input.conf
 * (and any files it includes) and either want.json (the resolved document, compared by value) or
 * want-error.txt (the exact "file:line:column: message", the file relative to the case folder).
 * KILT_UPDATE_GOLDEN=1 rewrites the expectations (review the diff). Each case is also resolved
 * twice to check the output is deterministic. */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "hocon-test-util.h"
#include "internal.h"
#include "kilt.h"

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Runs one case in the current directory; returns true when it matches. */
static bool run_case(const char *name, bool update)
{
	json_t *got = NULL;
	struct kilt_error err = { 0 };
	char errbuf[1200] = "";
	int r = kilt_hocon_load_file("input.conf", NULL, &got, &err);
	if (r < 0) {
		kilt_error_format(&err, errbuf, sizeof(errbuf));
		size_t n = strlen(errbuf);
		snprintf(errbuf + n, sizeof(errbuf) - n, "\n");
	}
	if (update) {
		if (r < 0) {
			write_text("want-error.txt", errbuf);
			unlink("want.json");
		} else {
			assert_int_equal(json_dump_file(got, "want.json", JSON_INDENT(2)), 0);
			FILE *f = fopen("want.json", "a");
			fputc('\n', f);
			fclose(f);
			unlink("want-error.txt");
		}
		json_decref(got);
		print_message("updated %s\n", name);
		return true;
	}
	bool ok = true;
	if (exists("want-error.txt")) {
		char *want = NULL;
		size_t len = 0;
		assert_int_equal(kilt_read_file("want-error.txt", 1 << 20, &want, &len), 0);
		if (r == 0) {
			char *g = json_dumps(got, JSON_COMPACT);
			print_error("FAIL %s: expected error %s     got %s\n", name, want, g);
			free(g);
			ok = false;
		} else if (strcmp(want, errbuf) != 0) {
			print_error("FAIL %s:\n  want %s  got  %s", name, want, errbuf);
			ok = false;
		}
		free(want);
	} else {
		json_error_t jerr;
		json_t *want = json_load_file("want.json", JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
		if (!want) {
			print_error("FAIL %s: want.json: %s\n", name, jerr.text);
			ok = false;
		} else if (r < 0) {
			print_error("FAIL %s: unexpected error %s", name, errbuf);
			ok = false;
		} else {
			char why[1024] = "";
			if (!hocon_json_same(want, got, "$", why, sizeof(why))) {
				print_error("FAIL %s: %s\n", name, why);
				ok = false;
			}
		}
		json_decref(want);
	}
	if (ok && r == 0) {
		/* deterministic: the same bytes every time */
		json_t *again = NULL;
		assert_int_equal(kilt_hocon_load_file("input.conf", NULL, &again, &err), 0);
		char *a = json_dumps(got, JSON_COMPACT), *b = json_dumps(again, JSON_COMPACT);
		if (strcmp(a, b) != 0) {
			print_error("FAIL %s: not deterministic\n", name);
			ok = false;
		}
		free(a);
		free(b);
		json_decref(again);
	}
	json_decref(got);
	if (ok)
		print_message("ok   %s\n", name);
	return ok;
}

static void test_hocon_golden__cases(void **state)
{
	(void)state;
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/tests/golden/hocon", KILT_SOURCE_DIR);
	const char *upd = getenv("KILT_UPDATE_GOLDEN");
	bool update = upd && strcmp(upd, "1") == 0;
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	struct dirent **ents = NULL;
	int n = scandir(root, &ents, NULL, name_cmp);
	if (n < 0)
		fail_msg("%s: %s", root, strerror(errno));
	int cases = 0, failures = 0;
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX * 2];
		snprintf(dir, sizeof(dir), "%s/%s", root, ents[i]->d_name);
		char input[PATH_MAX * 3];
		snprintf(input, sizeof(input), "%s/input.conf", dir);
		if (ents[i]->d_name[0] != '.' && exists(input)) {
			assert_int_equal(chdir(dir), 0);
			cases++;
			if (!run_case(ents[i]->d_name, update))
				failures++;
			assert_int_equal(chdir(cwd), 0);
		}
		free(ents[i]);
	}
	free(ents);
	print_message("golden hocon: %d cases, %d failures\n", cases, failures);
	assert_true(cases >= 40);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hocon_golden__cases),
	};
	return cmocka_run_group_tests_name("hocon-golden", tests, NULL, NULL);
}
