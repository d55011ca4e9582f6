/* SPDX-License-Identifier: Apache-2.0 */
/* The planning step every target shares (lib/plan.c): Docker's ENTRYPOINT/CMD rule, the plan's
 * shape check, the idempotency marker, selection by mode and include/ignore lists (including
 * where kilt differs from the original kilt on purpose), and the table of image facts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static json_t *j(const char *text)
{
	return json_loads(text, JSON_DECODE_ANY, NULL);
}

static void assert_argv(const json_t *have, const char *want)
{
	if (!want) {
		assert_null(have);
		return;
	}
	_cleanup_json_ json_t *w = j(want);
	if (!json_equal(have, w)) {
		_cleanup_free_ char *h = have ? json_dumps(have, JSON_ENCODE_ANY) : NULL;
		fail_msg("got %s, want %s", h ? h : "NULL", want);
	}
}

/* Docker's rule, case by case: what the workload sets, what the image says, what runs. */
static void test_plan__docker_rule(void **state)
{
	(void)state;
	static const struct {
		const char *ep, *cmd, *image; /* NULL: not set / not looked up */
		bool needs_image;
		const char *want_ep, *want_cmd; /* NULL: not known */
	} cases[] = {
		/* an entrypoint drops the image's CMD */
		{ "[\"/app\"]", NULL, "{\"entrypoint\": [\"/e\"], \"command\": [\"c\"]}", false,
		  "[\"/app\"]", "[]" },
		{ "[\"/app\"]", "[\"x\"]", NULL, false, "[\"/app\"]", "[\"x\"]" },
		/* neither: both from the image */
		{ NULL, NULL, "{\"entrypoint\": [\"/e\"], \"command\": [\"c\"]}", true, "[\"/e\"]",
		  "[\"c\"]" },
		/* a command only: the image's ENTRYPOINT, the workload's command */
		{ NULL, "[\"x\"]", "{\"entrypoint\": [\"/e\"], \"command\": [\"c\"]}", true,
		  "[\"/e\"]", "[\"x\"]" },
		/* empty lists and null count as not set */
		{ "[]", "null", "{\"command\": [\"c\"]}", true, "[]", "[\"c\"]" },
		/* the image not looked up: what cannot be known stays unknown */
		{ NULL, NULL, NULL, true, NULL, NULL },
		{ NULL, "[\"x\"]", NULL, true, NULL, "[\"x\"]" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_json_ json_t *ep = cases[i].ep ? j(cases[i].ep) : NULL;
		_cleanup_json_ json_t *cmd = cases[i].cmd ? j(cases[i].cmd) : NULL;
		_cleanup_json_ json_t *image = cases[i].image ? j(cases[i].image) : NULL;
		_cleanup_json_ json_t *rep = NULL, *rcmd = NULL;
		bool needs = kilt_docker_argv(ep, cmd, image, &rep, &rcmd);
		if (needs != cases[i].needs_image)
			fail_msg("case %zu: needs_image %d", i, needs);
		assert_argv(rep, cases[i].want_ep);
		assert_argv(rcmd, cases[i].want_cmd);
		assert_int_equal(kilt_docker_argv(ep, cmd, image, NULL, NULL), needs);
		/* the shared spelling: the same arrays, the caller's own where one is taken whole,
		 * copies otherwise */
		_cleanup_json_ json_t *sep = NULL, *scmd = NULL;
		assert_int_equal(kilt_docker_argv_shared(ep, cmd, image, &sep, &scmd), needs);
		assert_argv(sep, cases[i].want_ep);
		assert_argv(scmd, cases[i].want_cmd);
		/* kilt_docker_argv's are copies */
		assert_true(!rep || rep != ep);
		assert_true(!rcmd || rcmd != cmd);
		if (!needs)
			assert_ptr_equal(sep, ep);
		if (scmd && json_array_size(scmd) && json_is_array(cmd) && json_array_size(cmd))
			assert_ptr_equal(scmd, cmd);
	}
}

static void test_plan__check(void **state)
{
	(void)state;
	static const struct {
		const char *plan, *want; /* want NULL: valid */
	} cases[] = {
		{ "{\"entrypoint\": [], \"command\": [], \"mounts\": [], \"pid_mode\": \"task\"}",
		  NULL },
		{ "{\"command\": []}", "no entrypoint list" },
		{ "[]", "no entrypoint list" },
		{ "{\"entrypoint\": [], \"environment\": {}}", "environment is not a list" },
		{ "{\"entrypoint\": [], \"pid_mode\": 1}", "pid_mode is not a string" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_json_ json_t *plan = j(cases[i].plan);
		struct kilt_error err = { 0 };
		int r = kilt_plan_check(plan, &err);
		if (!cases[i].want) {
			assert_int_equal(r, 0);
			continue;
		}
		assert_int_equal(r, -EINVAL);
		assert_non_null(strstr(err.msg, cases[i].want));
	}
}

static int fixed_plan(void *userdata, const struct kilt_target *t, const json_t *config,
		      json_t **ret_plan, struct kilt_error *err)
{
	(void)t, (void)config;
	if (!userdata)
		return kilt_error_setf(err, -ENODATA, "original.name is not known");
	*ret_plan = j(userdata);
	return 0;
}

static void test_plan__container_and_marker(void **state)
{
	(void)state;
	struct kilt_planner p = { .name = "r", .hash = "h", .evaluate = fixed_plan };
	struct kilt_target t = { .name = "web" };
	json_t *plan = NULL;
	struct kilt_error err = { 0 };
	p.userdata = (void *)(uintptr_t) "{\"entrypoint\": [\"/x\"]}";
	assert_int_equal(kilt_plan_container(&p, &t, NULL, &plan, &err), 0);
	json_decref(plan);
	plan = NULL;
	p.userdata = (void *)(uintptr_t) "{\"entrypoint\": 1}";
	assert_int_equal(kilt_plan_container(&p, &t, NULL, &plan, &err), -EINVAL);
	assert_null(plan);
	p.userdata = NULL;
	assert_int_equal(kilt_plan_container(&p, &t, NULL, &plan, &err), -ENODATA);
	assert_string_equal(err.msg, "recipe r: original.name is not known");
	assert_true(kilt_planner_supports(&p, "linux/arm64")); /* no platform hook: all */

	struct kilt_marker m, m2, m3;
	kilt_marker_init(&m, &p, NULL);
	assert_null(m.settings);
	assert_true(kilt_marker_is(&m, "r", "h", NULL));
	assert_false(kilt_marker_is(&m, "r", "h", "sha256:0"));
	assert_false(kilt_marker_is(&m, "r", "other", NULL));
	assert_false(kilt_marker_is(&m, NULL, "h", NULL));
	_cleanup_json_ json_t *s1 = j("{\"a\": 1, \"b\": 2}");
	_cleanup_json_ json_t *s2 = j("{\"b\": 2, \"a\": 1}");
	_cleanup_json_ json_t *s3 = j("{\"a\": 2}");
	kilt_marker_init(&m2, &p, s1);
	kilt_marker_init(&m3, &p, s2);
	assert_int_equal(strlen(m2.settings), strlen("sha256:") + 16);
	assert_string_equal(m2.settings, m3.settings); /* key order does not matter */
	kilt_marker_done(&m3);
	kilt_marker_init(&m3, &p, s3);
	assert_string_not_equal(m2.settings, m3.settings);
	assert_true(kilt_marker_is(&m2, "r", "h", m2.settings));
	assert_false(kilt_marker_is(&m2, "r", "h", m3.settings));
	kilt_marker_done(&m);
	kilt_marker_done(&m2);
	kilt_marker_done(&m3);
	kilt_marker_done(NULL);
}

struct sel_case {
	enum kilt_select_mode mode;
	bool include, ignore;
	const char *include_list, *ignore_list; /* colon-separated, or NULL */
	bool workload; /* patched at all */
	const char *patched; /* the containers of "app:worker:envoy" patched, colon-separated */
};

static void check_selection(const struct sel_case *c, size_t i)
{
	struct kilt_selection s;
	kilt_selection_init(&s, c->mode);
	s.include = c->include;
	s.ignore = c->ignore;
	if (c->include_list)
		kilt_selection_set_list(&s, true, c->include_list);
	if (c->ignore_list)
		kilt_selection_set_list(&s, false, c->ignore_list);
	char why[256] = "";
	bool w = kilt_selection_workload(&s, why, sizeof(why));
	if (w != c->workload)
		fail_msg("case %zu: workload %d (%s)", i, w, why);
	if (!w) {
		assert_true(why[0] != '\0');
		kilt_selection_done(&s);
		return;
	}
	char got[64] = "";
	const char *names[] = { "app", "worker", "envoy" };
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		bool warn = true, listed = true;
		if (kilt_selection_container(&s, names[k], NULL, why, sizeof(why), &warn,
					     &listed)) {
			size_t len = strlen(got);
			snprintf(got + len, sizeof(got) - len, "%s%s", len ? ":" : "", names[k]);
			assert_int_equal(listed, s.include_containers != NULL);
		} else {
			assert_true(why[0] != '\0');
		}
		assert_false(warn);
	}
	if (strcmp(got, c->patched) != 0)
		fail_msg("case %zu: patched %s, want %s", i, got, c->patched);
	kilt_selection_done(&s);
}

/* Every mode against every tag. The lists apply in both modes; the original kilt (cfnpatcher
 * shouldSkip) ignored kilt-include-containers in opt-out mode, ignored kilt-ignore-containers in
 * opt-in mode and let kilt-include win over kilt-include-containers: the rows marked DIFFERS are
 * where kilt decides otherwise on purpose (docs/ecs.md, "Which tasks and containers are
 * patched"). */
static void test_plan__selection_modes_and_lists(void **state)
{
	(void)state;
	static const struct sel_case cases[] = {
		{ KILT_SELECT_OPT_OUT, false, false, NULL, NULL, true, "app:worker:envoy" },
		{ KILT_SELECT_OPT_OUT, false, true, NULL, NULL, false, "" },
		{ KILT_SELECT_OPT_OUT, false, false, NULL, "envoy", true, "app:worker" },
		/* DIFFERS: the original patched all three */
		{ KILT_SELECT_OPT_OUT, false, false, "app", NULL, true, "app" },
		{ KILT_SELECT_OPT_OUT, false, false, " app : worker ", "worker", true, "app" },
		{ KILT_SELECT_OPT_IN, false, false, NULL, NULL, false, "" },
		{ KILT_SELECT_OPT_IN, true, false, NULL, NULL, true, "app:worker:envoy" },
		{ KILT_SELECT_OPT_IN, false, false, "app:worker", NULL, true, "app:worker" },
		/* DIFFERS: the original let kilt-include win and patched all three */
		{ KILT_SELECT_OPT_IN, true, false, "app", NULL, true, "app" },
		/* DIFFERS: the original ignored kilt-ignore-containers in opt-in mode */
		{ KILT_SELECT_OPT_IN, true, false, NULL, "envoy", true, "app:worker" },
		{ KILT_SELECT_OPT_IN, true, true, NULL, NULL, false, "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		check_selection(&cases[i], i);
}

/* A container whose name is not known: patched unless a list might name it. */
static void test_plan__selection_unknown_name(void **state)
{
	(void)state;
	struct kilt_selection s;
	kilt_selection_init(&s, KILT_SELECT_OPT_OUT);
	s.noun = "annotation";
	char why[256] = "";
	bool warn = true;
	assert_true(kilt_selection_container(&s, NULL, NULL, why, sizeof(why), &warn, NULL));
	assert_false(warn);
	kilt_selection_set_list(&s, false, "envoy");
	assert_false(
		kilt_selection_container(&s, NULL, "Name is Ref N", why, sizeof(why), &warn, NULL));
	assert_true(warn);
	assert_string_equal(why, "Name is Ref N, so kilt cannot tell whether the "
				 "kilt-ignore-containers annotation names it");
	assert_false(kilt_selection_container(&s, "envoy", NULL, why, sizeof(why), &warn, NULL));
	assert_string_equal(why, "listed in the kilt-ignore-containers annotation");
	kilt_selection_done(&s);
}

static void test_plan__image_needs(void **state)
{
	(void)state;
	struct kilt_image_needs n;
	kilt_image_needs_init(&n);
	struct kilt_image_need *a = kilt_image_needs_add(&n, "nginx:1", "linux/amd64");
	assert_non_null(a);
	kilt_image_needs_add(&n, "nginx:1", "linux/arm64");
	kilt_image_needs_add(&n, "nginx:1", NULL);
	kilt_image_needs_add(&n, "nginx:1", "linux/amd64"); /* listed once */
	assert_int_equal(n.n, 3);
	json_t *facts = NULL;
	struct kilt_error err = { 0 };
	/* listed, not resolved yet; and not listed at all */
	assert_int_equal(kilt_image_needs_facts(&n, "nginx:1", "linux/amd64", &facts, &err),
			 -ENOENT);
	assert_int_equal(kilt_image_needs_facts(&n, "other", NULL, &facts, &err), -ENOENT);
	struct kilt_image_need *amd = kilt_image_needs_find(&n, "nginx:1", "linux/amd64");
	amd->resolved = true;
	amd->facts = j("{\"entrypoint\": [\"/e\"]}");
	struct kilt_image_need *none = kilt_image_needs_find(&n, "nginx:1", NULL);
	none->resolved = true;
	none->rc = kilt_error_setf(&none->err, -EACCES, "denied by the registry");
	assert_int_equal(kilt_image_needs_facts(&n, "nginx:1", "linux/amd64", &facts, &err), 0);
	assert_true(json_equal(facts, amd->facts));
	json_decref(facts);
	assert_int_equal(kilt_image_needs_facts(&n, "nginx:1", NULL, &facts, &err), -EACCES);
	assert_string_equal(err.msg, "denied by the registry");
	kilt_image_needs_done(&n);
	kilt_image_needs_done(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan__docker_rule),
		cmocka_unit_test(test_plan__check),
		cmocka_unit_test(test_plan__container_and_marker),
		cmocka_unit_test(test_plan__selection_modes_and_lists),
		cmocka_unit_test(test_plan__selection_unknown_name),
		cmocka_unit_test(test_plan__image_needs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
