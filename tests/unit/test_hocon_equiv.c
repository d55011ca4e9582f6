/* SPDX-License-Identifier: Apache-2.0 */
/* kilt's own HOCON equivalence suites, kept in the repository so that a fresh clone tests them:
 * in each folder tests/golden/hocon-equiv/<suite>/, every .conf and .json file spells the same
 * document as original.json in another way (comments, separators, path keys, substitutions,
 * includes, triple quotes, concatenation) and must resolve to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hocon-test-util.h"

static void test_hocon_equiv__kilt_suites(void **state)
{
	(void)state;
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/tests/golden/hocon-equiv", KILT_SOURCE_DIR);
	int folders = 0, files = 0;
	int failures = hocon_equiv_walk(root, &folders, &files);
	if (failures < 0)
		fail_msg("%s: %s", root, strerror(errno));
	print_message("kilt equivalence suites: %d folders, %d files, %d failures\n", folders,
		      files, failures);
	assert_true(folders >= 5);
	assert_true(files >= 20);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hocon_equiv__kilt_suites),
	};
	return cmocka_run_group_tests_name("hocon-equiv", tests, NULL, NULL);
}
