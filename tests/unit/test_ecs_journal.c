/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of how the ECS engine undoes its own changes: a run that fails after patching
 * earlier tasks (and undoing an earlier injection) leaves the template byte for byte as it was,
 * a container that fails under fail-open is put back exactly, and values the engine shares
 * between containers (or with a planner) are never modified. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

/* The plan every planner below starts from; planners hand out references to it (shared), so a
 * test can check that nothing modified it. */
static json_t *shared_plan(void)
{
	static json_t *plan;
	if (!plan)
		plan = json_pack("{s[ss]s[]s[{ssss}{ssso}]s[{sssss[s]}]s[s]ss}", "entrypoint",
				 "/kilt/launch", "--", "command", "environment", "name", "K",
				 "value", "1", "name", "EMPTY", "value", json_null(), "mounts",
				 "name", "kilt", "image", "kilt/runtime:1", "entrypoint", "/wait",
				 "capabilities", "SYS_PTRACE", "pid_mode", "task");
	return plan;
}

/* Shares the plan, and fails for a container named "bad". */
static int sharing_plan(void *userdata, const struct kilt_target *t, const json_t *config,
			json_t **ret_plan, struct kilt_error *err)
{
	(void)userdata, (void)config;
	if (t->name && strcmp(t->name, "bad") == 0)
		return kilt_error_setf(err, -EINVAL, "refused for the test");
	*ret_plan = json_incref(shared_plan());
	return 0;
}

/* Edits the container (image, entrypoint, environment, capabilities) before failing on a
 * mount without an image. */
static int late_failure(void *userdata, const struct kilt_target *t, const json_t *config,
			json_t **ret_plan, struct kilt_error *err)
{
	(void)userdata, (void)config, (void)err;
	if (t->name && strcmp(t->name, "bad") != 0)
		return sharing_plan(userdata, t, config, ret_plan, err);
	*ret_plan = json_pack("{ss s[s] s[{ssss}] s[s] s[{ss}]}", "image", "other:2", "entrypoint",
			      "/x", "environment", "name", "A", "value", "2", "capabilities",
			      "NET_ADMIN", "mounts", "name", "noimage");
	return 0;
}

static const struct kilt_planner SHARING = { "sharing", "h1", sharing_plan, NULL, NULL };
static const struct kilt_planner SHARING2 = { "sharing2", "h2", sharing_plan, NULL, NULL };
static const struct kilt_planner LATE = { "late", "h3", late_failure, NULL, NULL };

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!j)
		fail_msg("fixture: %s at %d:%d", jerr.text, jerr.line, jerr.column);
	return j;
}

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

#define CONTAINER(name)                                                                            \
	"{\"Name\":\"" name "\",\"Image\":\"nginx\",\"EntryPoint\":[\"/e\"],\"Command\":[\"c\"],"  \
	"\"Environment\":[{\"Name\":\"A\",\"Value\":\"1\"},{\"Name\":\"K\",\"Value\":\"0\"}],"     \
	"\"LinuxParameters\":{\"InitProcessEnabled\":true},\"DockerLabels\":{\"team\":\"a\"},"     \
	"\"LogConfiguration\":{\"LogDriver\":\"awslogs\",\"Options\":{\"awslogs-group\":\"g\"}}}"
#define TASK(id, containers)                                                                       \
	"\"" id "\":{\"Type\":\"AWS::ECS::TaskDefinition\",\"Properties\":{"                       \
	"\"RequiresCompatibilities\":[\"FARGATE\"],\"ContainerDefinitions\":[" containers "]}}"

static const char *TEMPLATE =
	"{\"Resources\":{" TASK("A", CONTAINER("a1") "," CONTAINER("a2")) "," TASK(
		"B", CONTAINER("b1") "," CONTAINER("bad") "," CONTAINER("b3")) "}}";

static int run(const struct kilt_planner *p, json_t *doc, const struct kilt_ecs_options *o,
	       struct kilt_error *err)
{
	*err = (struct kilt_error){ 0 };
	return kilt_ecs_inject_planner(p, doc, o, NULL, err);
}

static void test_ecs_journal__failure_restores_everything(void **state)
{
	(void)state;
	_cleanup_free_ char *plan_before = dump(shared_plan());
	json_auto_t *doc = load(TEMPLATE);
	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	o.fail_open = true;
	struct kilt_error err;
	/* an earlier injection (b3 and the rest patched, "bad" skipped) */
	assert_int_equal(run(&SHARING, doc, &o, &err), 0);
	_cleanup_free_ char *injected = dump(doc);
	assert_non_null(strstr(injected, "\"kilt.role\":\"sidecar\""));

	/* another recipe undoes it task by task (sidecars removed, fields restored, PidMode
	 * back), patches A, and fails on B: everything comes back, key order included */
	assert_true(run(&SHARING2, doc, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "refused for the test"));
	_cleanup_free_ char *after = dump(doc);
	assert_string_equal(injected, after);

	/* the same from the plain template */
	json_auto_t *plain = load(TEMPLATE);
	_cleanup_free_ char *orig = dump(plain);
	assert_true(run(&SHARING, plain, NULL, &err) < 0);
	_cleanup_free_ char *back = dump(plain);
	assert_string_equal(orig, back);

	/* remove, then inject again: the same bytes as the first time */
	assert_int_equal(kilt_ecs_remove(doc, NULL, NULL, &err), 0);
	_cleanup_free_ char *removed = dump(doc);
	assert_string_equal(orig, removed);
	assert_int_equal(run(&SHARING, doc, &o, &err), 0);
	_cleanup_free_ char *again = dump(doc);
	assert_string_equal(injected, again);

	_cleanup_free_ char *plan_after = dump(shared_plan());
	assert_string_equal(plan_before, plan_after);

	/* a caller that drops the document on failure gets no way back: A stays patched (and B
	 * is left partly patched) */
	json_auto_t *dropped = load(TEMPLATE);
	struct kilt_ecs_options d;
	kilt_ecs_options_default(&d);
	d.discard_on_failure = true;
	assert_true(run(&SHARING, dropped, &d, &err) < 0);
	_cleanup_free_ char *partly = dump(dropped);
	assert_string_not_equal(orig, partly);
	json_t *res = json_object_get(dropped, "Resources");
	assert_int_equal(json_array_size(json_object_get(
				 json_object_get(json_object_get(res, "A"), "Properties"),
				 "ContainerDefinitions")),
			 3);
}

static void test_ecs_journal__fail_open_restores_the_container(void **state)
{
	(void)state;
	json_auto_t *doc = load(TEMPLATE);
	json_t *b = json_object_get(json_object_get(json_object_get(doc, "Resources"), "B"),
				    "Properties");
	json_t *list = json_object_get(b, "ContainerDefinitions");
	_cleanup_free_ char *bad_before = dump(json_array_get(list, 1));
	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	o.fail_open = true;
	struct kilt_error err;
	struct kilt_report rep;
	kilt_report_init(&rep);
	assert_int_equal(kilt_ecs_inject_planner(&LATE, doc, &o, &rep, &err), 0);
	assert_int_equal(rep.n_patched, 4);
	assert_int_equal(rep.n_skipped, 1);
	kilt_report_done(&rep);
	/* b1 and b3 are patched around it; "bad" is exactly as it was */
	_cleanup_free_ char *bad_after = dump(json_array_get(list, 1));
	assert_string_equal(bad_before, bad_after);
	assert_int_equal(json_array_size(list), 4); /* one sidecar */
	assert_string_equal(json_string_value(json_object_get(b, "PidMode")), "task");

	/* the same when the caller would drop the document on failure */
	json_auto_t *doc2 = load(TEMPLATE);
	o.discard_on_failure = true;
	assert_int_equal(kilt_ecs_inject_planner(&LATE, doc2, &o, NULL, &err), 0);
	_cleanup_free_ char *one = dump(doc), *two = dump(doc2);
	assert_string_equal(one, two);

	/* without fail-open the whole template comes back */
	json_auto_t *plain = load(TEMPLATE);
	_cleanup_free_ char *orig = dump(plain);
	assert_true(run(&LATE, plain, NULL, &err) < 0);
	assert_non_null(strstr(err.msg, "no image"));
	_cleanup_free_ char *back = dump(plain);
	assert_string_equal(orig, back);
}

/* Values written once and shared (VolumesFrom, DependsOn, the plan's arrays) stay correct when
 * one container is changed again, and a Terraform list (pruned in place) leaves the planner's
 * plan alone. */
static void test_ecs_journal__shared_values_stay_apart(void **state)
{
	(void)state;
	_cleanup_free_ char *plan_before = dump(shared_plan());
	json_auto_t *doc = load(TEMPLATE);
	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	o.fail_open = true;
	struct kilt_error err;
	assert_int_equal(run(&SHARING, doc, &o, &err), 0);
	json_t *a = json_object_get(
		json_object_get(json_object_get(json_object_get(doc, "Resources"), "A"),
				"Properties"),
		"ContainerDefinitions");
	json_t *a1 = json_array_get(a, 0), *a2 = json_array_get(a, 1);
	_cleanup_free_ char *a1_before = dump(a1);
	/* drop a2's earlier injection (what an operator does with kilt-ignore-containers) and
	 * inject again: a1, which shares values with a2, keeps its bytes */
	json_object_set_new(json_object_get(json_object_get(json_object_get(doc, "Resources"), "A"),
					    "Properties"),
			    "Tags",
			    json_pack("[{ssss}]", "Key", "kilt-ignore-containers", "Value", "a2"));
	assert_int_equal(run(&SHARING, doc, &o, &err), 0);
	assert_null(json_object_get(json_object_get(a2, "DockerLabels"), "kilt.recipe"));
	assert_null(json_object_get(a2, "VolumesFrom"));
	_cleanup_free_ char *a1_after = dump(a1);
	assert_string_equal(a1_before, a1_after);

	json_auto_t *tf = load("[{\"name\":\"app\",\"image\":\"nginx\",\"entryPoint\":[\"/e\"]},"
			       "{\"name\":\"two\",\"image\":\"nginx\",\"entryPoint\":[\"/e\"]}]");
	assert_int_equal(run(&SHARING, tf, NULL, &err), 0);
	json_t *env = json_object_get(json_array_get(tf, 0), "environment");
	assert_int_equal(json_array_size(env), 2);
	assert_null(json_object_get(json_array_get(env, 1), "value")); /* null pruned */
	_cleanup_free_ char *plan_after = dump(shared_plan());
	assert_string_equal(plan_before, plan_after);
}

static int teardown(void **state)
{
	(void)state;
	json_decref(shared_plan());
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecs_journal__failure_restores_everything),
		cmocka_unit_test(test_ecs_journal__fail_open_restores_the_container),
		cmocka_unit_test(test_ecs_journal__shared_values_stay_apart),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
