/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the ECS engine with hand-built plans (the engine takes plans; the recipe module
 * is exercised by the golden tests in tests/ecs/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

/* A Falco-like plan: pdig in front of the original argv, one mount, SYS_PTRACE, metadata. */
static int falco_plan(void *userdata, const struct kilt_target *t, const json_t *config,
		      json_t **ret_plan, struct kilt_error *err)
{
	(void)userdata;
	if (!t->entrypoint)
		return kilt_error_setf(err, -ENODATA, "original.entrypoint is not known");
	json_t *ep = json_pack("[s]", "/falco/pdig");
	json_array_extend(ep, (json_t *)(uintptr_t)t->entrypoint);
	json_t *env = json_array();
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)t->environment, k, v) {
		json_array_append_new(env, json_pack("{sssO}", "name", k, "value", v));
	}
	_cleanup_free_ char *meta = xasprintf("image=%s,name=%s", t->image, t->name);
	json_array_append_new(env, json_pack("{ssss}", "name", "FALCO_METADATA", "value", meta));
	json_t *plan = json_pack("{s{ssss}sosOsos[{sssss[s]s[s]}]s[s]}", "recipe", "name", "falco",
				 "hash", "h1", "entrypoint", ep, "command", t->command,
				 "environment", env, "mounts", "name", "falco", "image",
				 "falcosecurity/falco:0.32.2", "volumes", "/falco", "entrypoint",
				 "/falco/waitforever", "capabilities", "SYS_PTRACE");
	const char *pid = json_string_value(json_object_get(config, "pid_mode"));
	if (pid)
		json_object_set_new(plan, "pid_mode", json_string(pid));
	*ret_plan = plan;
	return 0;
}

/* A second recipe: no mount, different entrypoint. */
static int other_plan(void *userdata, const struct kilt_target *t, const json_t *config,
		      json_t **ret_plan, struct kilt_error *err)
{
	(void)userdata, (void)config, (void)err;
	json_t *ep = json_pack("[ss]", "/kilt/kilt-launch", "--");
	json_array_extend(ep, (json_t *)(uintptr_t)t->entrypoint);
	*ret_plan = json_pack("{sosOs[{ssss}]s[s]}", "entrypoint", ep, "command", t->command,
			      "environment", "name", "OTHER", "value", "1", "capabilities",
			      "SYS_PTRACE");
	return 0;
}

static bool amd64_only(void *userdata, const char *platform)
{
	(void)userdata;
	return strcmp(platform, "linux/amd64") == 0;
}

static const struct kilt_planner FALCO = { "falco", "h1", falco_plan, amd64_only, NULL };
static const struct kilt_planner OTHER = { "other", "h2", other_plan, NULL, NULL };

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

#define TASK(props)                                                                                \
	"{\"Resources\":{\"Task\":{\"Type\":\"AWS::ECS::TaskDefinition\",\"Properties\":" props    \
	"}}}"

static const char *BASIC = TASK(
	"{\"RequiresCompatibilities\":[\"FARGATE\"],\"ContainerDefinitions\":[{\"Name\":\"app\","
	"\"Image\":\"nginx:1.27\",\"EntryPoint\":[\"/"
	"docker-entrypoint.sh\"],\"Command\":[\"nginx\","
	"\"-g\",\"daemon off;\"],\"Environment\":[{\"Name\":\"A\",\"Value\":\"1\"}],"
	"\"LogConfiguration\":{\"LogDriver\":\"awslogs\",\"Options\":{\"awslogs-group\":\"g\"}},"
	"\"X-Unknown\":{\"kept\":true}}]}");

static json_t *container(json_t *doc, size_t i)
{
	return json_array_get(
		json_object_get(
			json_object_get(json_object_get(json_object_get(doc, "Resources"), "Task"),
					"Properties"),
			"ContainerDefinitions"),
		i);
}

static int inject(const struct kilt_planner *p, json_t *doc, const struct kilt_ecs_options *opts,
		  struct kilt_report *rep)
{
	struct kilt_error err = { 0 };
	int r = kilt_ecs_inject_planner(p, doc, opts, rep, &err);
	if (r < 0)
		print_message("inject: %s\n", err.msg);
	return r;
}

static void test_ecs__basic(void **state)
{
	(void)state;
	json_auto_t *doc = load(BASIC);
	struct kilt_report rep;
	kilt_report_init(&rep);
	assert_int_equal(inject(&FALCO, doc, NULL, &rep), 0);
	json_t *app = container(doc, 0);
	json_t *side = container(doc, 1);
	assert_non_null(side);
	_cleanup_free_ char *ep = dump(json_object_get(app, "EntryPoint"));
	assert_string_equal(ep, "[\"/falco/pdig\",\"/docker-entrypoint.sh\"]");
	_cleanup_free_ char *cmd = dump(json_object_get(app, "Command"));
	assert_string_equal(cmd, "[\"nginx\",\"-g\",\"daemon off;\"]");
	_cleanup_free_ char *env = dump(json_object_get(app, "Environment"));
	assert_string_equal(env, "[{\"Name\":\"A\",\"Value\":\"1\"},{\"Name\":\"FALCO_METADATA\","
				 "\"Value\":\"image=nginx:1.27,name=app\"}]");
	_cleanup_free_ char *vf = dump(json_object_get(app, "VolumesFrom"));
	assert_string_equal(vf, "[{\"SourceContainer\":\"kilt-falco\",\"ReadOnly\":true}]");
	_cleanup_free_ char *dep = dump(json_object_get(app, "DependsOn"));
	assert_string_equal(dep, "[{\"ContainerName\":\"kilt-falco\",\"Condition\":\"START\"}]");
	_cleanup_free_ char *lp = dump(json_object_get(app, "LinuxParameters"));
	assert_string_equal(lp, "{\"Capabilities\":{\"Add\":[\"SYS_PTRACE\"]}}");
	assert_true(json_is_true(json_object_get(json_object_get(app, "X-Unknown"), "kept")));
	json_t *labels = json_object_get(app, "DockerLabels");
	assert_string_equal(json_string_value(json_object_get(labels, "kilt.recipe")), "falco");
	assert_string_equal(json_string_value(json_object_get(labels, "kilt.recipe-hash")), "h1");
	assert_non_null(json_object_get(labels, "kilt.undo"));
	/* the sidecar */
	assert_string_equal(json_string_value(json_object_get(side, "Name")), "kilt-falco");
	assert_true(json_is_false(json_object_get(side, "Essential")));
	_cleanup_free_ char *sep = dump(json_object_get(side, "EntryPoint"));
	assert_string_equal(sep, "[\"/falco/waitforever\"]");
	_cleanup_free_ char *slog = dump(json_object_get(side, "LogConfiguration"));
	assert_string_equal(slog,
			    "{\"LogDriver\":\"awslogs\",\"Options\":{\"awslogs-group\":\"g\"}}");
	assert_int_equal(rep.n_patched, 1);
	assert_string_equal(rep.input, "cloudformation");
	kilt_report_done(&rep);
}

static void test_ecs__twice_equals_once(void **state)
{
	(void)state;
	json_auto_t *doc = load(BASIC);
	assert_int_equal(inject(&FALCO, doc, NULL, NULL), 0);
	_cleanup_free_ char *once = dump(doc);
	struct kilt_report rep;
	kilt_report_init(&rep);
	assert_int_equal(inject(&FALCO, doc, NULL, &rep), 0);
	_cleanup_free_ char *twice = dump(doc);
	assert_string_equal(once, twice);
	assert_int_equal(rep.n_unchanged, 1);
	assert_int_equal(rep.n_patched, 0);
	kilt_report_done(&rep);
}

static void test_ecs__other_recipe_replaces(void **state)
{
	(void)state;
	json_auto_t *a = load(BASIC);
	json_auto_t *b = load(BASIC);
	assert_int_equal(inject(&FALCO, a, NULL, NULL), 0);
	assert_int_equal(inject(&OTHER, a, NULL, NULL), 0);
	assert_int_equal(inject(&OTHER, b, NULL, NULL), 0);
	_cleanup_free_ char *sa = dump(a);
	_cleanup_free_ char *sb = dump(b);
	assert_string_equal(sa, sb);
	assert_null(container(a, 1)); /* the falco sidecar is gone */
}

static void test_ecs__remove_restores(void **state)
{
	(void)state;
	json_auto_t *doc = load(BASIC);
	_cleanup_free_ char *orig = dump(doc);
	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	json_auto_t *config = json_pack("{ss}", "pid_mode", "task");
	o.config = config;
	assert_int_equal(inject(&FALCO, doc, &o, NULL), 0);
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(json_object_get(doc, "Resources"), "Task"),
					"Properties"),
			"PidMode")),
		"task");
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_ecs_remove(doc, NULL, NULL, &err), 0);
	_cleanup_free_ char *back = dump(doc);
	assert_string_equal(orig, back);
}

static void test_ecs__unknown_entrypoint(void **state)
{
	(void)state;
	const char *text =
		TASK("{\"RequiresCompatibilities\":[\"FARGATE\"],"
		     "\"ContainerDefinitions\":[{\"Name\":\"web\",\"Image\":\"nginx\"}]}");
	json_auto_t *doc = load(text);
	_cleanup_free_ char *orig = dump(doc);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_ecs_inject_planner(&FALCO, doc, NULL, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "Task"));
	assert_non_null(strstr(err.msg, "web"));
	assert_non_null(strstr(err.msg, "set EntryPoint"));
	_cleanup_free_ char *after = dump(doc);
	assert_string_equal(orig, after); /* untouched on failure */

	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	o.fail_open = true;
	struct kilt_report rep;
	kilt_report_init(&rep);
	assert_int_equal(inject(&FALCO, doc, &o, &rep), 0);
	assert_int_equal(rep.n_skipped, 1);
	assert_true(rep.n_warnings >= 1);
	_cleanup_free_ char *open = dump(doc);
	assert_string_equal(orig, open);
	kilt_report_done(&rep);
}

static int facts(void *userdata, const char *image, const char *platform, json_t **ret,
		 struct kilt_error *err)
{
	(void)err;
	(*(int *)userdata)++;
	assert_string_equal(image, "nginx");
	assert_string_equal(platform, "linux/amd64");
	*ret = json_pack("{s[s]s[sss]}", "entrypoint", "/docker-entrypoint.sh", "command", "nginx",
			 "-g", "daemon off;");
	return 0;
}

static void test_ecs__image_facts_hook(void **state)
{
	(void)state;
	const char *text = TASK("{\"RequiresCompatibilities\":[\"FARGATE\"],"
				"\"ContainerDefinitions\":[{\"Name\":\"web\",\"Image\":\"nginx\","
				"\"Command\":[\"nginx\",\"-T\"]}]}");
	json_auto_t *doc = load(text);
	int calls = 0;
	struct kilt_ecs_options o;
	kilt_ecs_options_default(&o);
	o.image_facts = facts;
	o.image_facts_userdata = &calls;
	assert_int_equal(inject(&FALCO, doc, &o, NULL), 0);
	assert_int_equal(calls, 1);
	_cleanup_free_ char *ep = dump(json_object_get(container(doc, 0), "EntryPoint"));
	assert_string_equal(ep, "[\"/falco/pdig\",\"/docker-entrypoint.sh\"]");
	_cleanup_free_ char *cmd = dump(json_object_get(container(doc, 0), "Command"));
	assert_string_equal(cmd, "[\"nginx\",\"-T\"]"); /* the container's Command wins */
}

static enum kilt_verdict task_verdict(const char *props, const struct kilt_ecs_options *o,
				      struct kilt_report *rep)
{
	_cleanup_free_ char *text =
		xasprintf("{\"Parameters\":{\"Skip\":{\"Type\":\"String\",\"Default\":\"web\"}},"
			  "\"Resources\":{\"Task\":{\"Type\":\"AWS::ECS::TaskDefinition\","
			  "\"Properties\":%s}}}",
			  props);
	json_auto_t *doc = load(text);
	kilt_report_init(rep);
	assert_int_equal(inject(&FALCO, doc, o, rep), 0);
	assert_true(rep->n_decisions >= 1);
	return rep->decisions[0].verdict;
}

#define CONTAINERS                                                                                 \
	"\"ContainerDefinitions\":[{\"Name\":\"web\",\"Image\":\"nginx\",\"EntryPoint\":[\"/"      \
	"e\"]},"                                                                                   \
	"{\"Name\":\"log\",\"Image\":\"fluent\",\"EntryPoint\":[\"/f\"]}]"

static void test_ecs__selection(void **state)
{
	(void)state;
	struct kilt_report rep;
	struct kilt_ecs_options in;
	kilt_ecs_options_default(&in);
	in.mode = KILT_ECS_OPT_IN;

	assert_int_equal(
		task_verdict("{\"RequiresCompatibilities\":[\"EC2\"]," CONTAINERS "}", NULL, &rep),
		KILT_SKIPPED);
	assert_non_null(strstr(rep.decisions[0].reason, "not a Fargate"));
	kilt_report_done(&rep);

	assert_int_equal(task_verdict("{\"NetworkMode\":\"awsvpc\"," CONTAINERS "}", NULL, &rep),
			 KILT_PATCHED);
	assert_true(rep.decisions[0].warning);
	assert_non_null(strstr(rep.decisions[0].reason, "absent"));
	kilt_report_done(&rep);

	/* no RequiresCompatibilities and bridge networking (ECS's default): EC2 only */
	assert_int_equal(task_verdict("{" CONTAINERS "}", NULL, &rep), KILT_SKIPPED);
	assert_non_null(strstr(rep.decisions[0].reason, "cannot run on Fargate"));
	kilt_report_done(&rep);
	assert_int_equal(task_verdict("{\"NetworkMode\":\"host\"," CONTAINERS "}", NULL, &rep),
			 KILT_SKIPPED);
	assert_non_null(strstr(rep.decisions[0].reason, "NetworkMode host"));
	kilt_report_done(&rep);

	assert_int_equal(task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"],"
				      "\"RuntimePlatform\":{\"OperatingSystemFamily\":"
				      "\"WINDOWS_SERVER_2019_CORE\"}," CONTAINERS "}",
				      NULL, &rep),
			 KILT_SKIPPED);
	assert_non_null(strstr(rep.decisions[0].reason, "Windows"));
	kilt_report_done(&rep);

	assert_int_equal(
		task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"],"
			     "\"RuntimePlatform\":{\"CpuArchitecture\":\"ARM64\"}," CONTAINERS "}",
			     NULL, &rep),
		KILT_SKIPPED);
	assert_non_null(strstr(rep.decisions[0].reason, "linux/arm64"));
	kilt_report_done(&rep);

	assert_int_equal(task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"],\"Tags\":[{"
				      "\"Key\":\"kilt-ignore\",\"Value\":\"\"}]," CONTAINERS "}",
				      NULL, &rep),
			 KILT_SKIPPED);
	kilt_report_done(&rep);

	assert_int_equal(task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"]," CONTAINERS "}",
				      &in, &rep),
			 KILT_SKIPPED);
	assert_non_null(strstr(rep.decisions[0].reason, "opt-in"));
	kilt_report_done(&rep);

	assert_int_equal(task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"],\"Tags\":[{"
				      "\"Key\":\"kilt-include\",\"Value\":\"yes\"}]," CONTAINERS
				      "}",
				      &in, &rep),
			 KILT_PATCHED);
	assert_int_equal(rep.n_patched, 2);
	kilt_report_done(&rep);

	/* an intrinsic tag value resolved through the parameter's default */
	assert_int_equal(task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"],\"Tags\":[{"
				      "\"Key\":\"kilt-ignore-containers\",\"Value\":{\"Ref\":"
				      "\"Skip\"}}]," CONTAINERS "}",
				      NULL, &rep),
			 KILT_PATCHED);
	assert_int_equal(rep.n_patched, 1);
	assert_int_equal(rep.n_skipped, 1);
	assert_string_equal(rep.decisions[1].container, "web");
	assert_int_equal(rep.decisions[1].verdict, KILT_SKIPPED);
	kilt_report_done(&rep);

	/* an intrinsic kilt cannot evaluate: the task is skipped with a warning, never a crash */
	assert_int_equal(task_verdict("{\"RequiresCompatibilities\":[\"FARGATE\"],\"Tags\":[{"
				      "\"Key\":\"kilt-include-containers\",\"Value\":{\"Fn::"
				      "ImportValue\":\"x\"}}]," CONTAINERS "}",
				      NULL, &rep),
			 KILT_SKIPPED);
	assert_true(rep.decisions[0].warning);
	kilt_report_done(&rep);
}

static void test_ecs__merge_existing(void **state)
{
	(void)state;
	json_auto_t *doc = load(TASK(
		"{\"RequiresCompatibilities\":[\"FARGATE\"],\"ContainerDefinitions\":[{\"Name\":"
		"\"app\",\"Image\":\"x\",\"EntryPoint\":[\"/a\"],\"LinuxParameters\":{"
		"\"InitProcessEnabled\":true,\"Capabilities\":{\"Add\":[\"NET_ADMIN\"],\"Drop\":["
		"\"ALL\"]}},\"VolumesFrom\":[{\"SourceContainer\":\"data\"}],\"DependsOn\":[{"
		"\"ContainerName\":\"data\",\"Condition\":\"COMPLETE\"}]},{\"Name\":\"data\","
		"\"Image\":\"d\",\"EntryPoint\":[\"/d\"],\"Essential\":false}]}"));
	assert_int_equal(inject(&FALCO, doc, NULL, NULL), 0);
	json_t *app = container(doc, 0);
	_cleanup_free_ char *lp = dump(json_object_get(app, "LinuxParameters"));
	assert_string_equal(lp, "{\"InitProcessEnabled\":true,\"Capabilities\":{\"Add\":["
				"\"NET_ADMIN\",\"SYS_PTRACE\"],\"Drop\":[\"ALL\"]}}");
	_cleanup_free_ char *vf = dump(json_object_get(app, "VolumesFrom"));
	assert_string_equal(vf, "[{\"SourceContainer\":\"data\"},{\"SourceContainer\":"
				"\"kilt-falco\",\"ReadOnly\":true}]");
	/* one sidecar per task, shared by both containers */
	assert_string_equal(json_string_value(json_object_get(container(doc, 2), "Name")),
			    "kilt-falco");
	assert_null(container(doc, 3));
}

static void test_ecs__intrinsics(void **state)
{
	(void)state;
	json_auto_t *doc = load(TASK(
		"{\"RequiresCompatibilities\":[\"FARGATE\"],\"ContainerDefinitions\":[{\"Fn::If\":["
		"\"Prod\",{\"Name\":\"app\",\"Image\":{\"Fn::Sub\":\"${AWS::AccountId}.dkr.ecr.${"
		"AWS::"
		"Region}.amazonaws.com/app:1\"},\"EntryPoint\":[\"/"
		"a\"],\"LinuxParameters\":{\"Fn::If\":"
		"[\"Dbg\",{\"InitProcessEnabled\":true},{\"Ref\":\"AWS::NoValue\"}]}},{\"Ref\":"
		"\"AWS::"
		"NoValue\"}]}]}"));
	assert_int_equal(inject(&FALCO, doc, NULL, NULL), 0);
	json_t *el = container(doc, 0);
	json_t *app = json_array_get(json_object_get(el, "Fn::If"), 1);
	assert_non_null(app);
	_cleanup_free_ char *lp = dump(json_object_get(app, "LinuxParameters"));
	assert_string_equal(lp,
			    "{\"Fn::If\":[\"Dbg\",{\"InitProcessEnabled\":true,\"Capabilities\":"
			    "{\"Add\":[\"SYS_PTRACE\"]}},{\"Capabilities\":{\"Add\":["
			    "\"SYS_PTRACE\"]}}]}");
	json_t *env = json_array_get(json_object_get(app, "Environment"), 0);
	_cleanup_free_ char *v = dump(json_object_get(env, "Value"));
	assert_string_equal(v, "{\"Fn::Sub\":\"image=${AWS::AccountId}.dkr.ecr.${AWS::Region}."
			       "amazonaws.com/app:1,name=app\"}");
	/* twice equals once, also through Fn::If */
	_cleanup_free_ char *once = dump(doc);
	assert_int_equal(inject(&FALCO, doc, NULL, NULL), 0);
	_cleanup_free_ char *twice = dump(doc);
	assert_string_equal(once, twice);
	/* the undo label holds no '$' a linter could take for a substitution */
	app = json_array_get(json_object_get(container(doc, 0), "Fn::If"), 1);
	const char *undo = json_string_value(
		json_object_get(json_object_get(app, "DockerLabels"), "kilt.undo"));
	assert_non_null(undo);
	assert_null(strchr(undo, '$'));
}

static void test_ecs__terraform_and_ecs_json(void **state)
{
	(void)state;
	json_auto_t *tf = load("[{\"name\":\"app\",\"image\":\"nginx\",\"entryPoint\":[\"/e\"],"
			       "\"command\":[],\"portMappings\":[],\"environment\":null}]");
	struct kilt_report rep;
	kilt_report_init(&rep);
	assert_int_equal(inject(&FALCO, tf, NULL, &rep), 0);
	assert_string_equal(rep.input, "container-definitions");
	kilt_report_done(&rep);
	json_t *app = json_array_get(tf, 0);
	assert_null(json_object_get(app, "portMappings"));
	assert_null(json_object_get(app, "command"));
	_cleanup_free_ char *vf = dump(json_object_get(app, "volumesFrom"));
	assert_string_equal(vf, "[{\"sourceContainer\":\"kilt-falco\",\"readOnly\":true}]");
	assert_non_null(json_object_get(
		json_object_get(json_object_get(app, "linuxParameters"), "capabilities"), "add"));
	_cleanup_free_ char *once = dump(tf);
	assert_int_equal(inject(&FALCO, tf, NULL, NULL), 0);
	_cleanup_free_ char *twice = dump(tf);
	assert_string_equal(once, twice);

	json_auto_t *desc = load("{\"taskDefinition\":{\"taskDefinitionArn\":\"arn:x\",\"family\":"
				 "\"f\",\"revision\":3,\"status\":\"ACTIVE\",\"compatibilities\":["
				 "\"EC2\",\"FARGATE\"],\"requiresCompatibilities\":[\"FARGATE\"],"
				 "\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"nginx\","
				 "\"entryPoint\":[\"/e\"]}]},\"tags\":[{\"key\":\"team\",\"value\":"
				 "\"a\"}]}");
	assert_int_equal(inject(&FALCO, desc, NULL, NULL), 0);
	assert_null(json_object_get(desc, "taskDefinition"));
	assert_null(json_object_get(desc, "revision"));
	assert_string_equal(json_string_value(json_object_get(desc, "family")), "f");
	assert_int_equal(json_array_size(json_object_get(desc, "containerDefinitions")), 2);
	assert_non_null(json_object_get(desc, "tags"));
}

static void test_ecs__malformed(void **state)
{
	(void)state;
	const char *bad[] = {
		"{\"Resources\":[]}",
		"{\"Resources\":{\"T\":{\"Type\":\"AWS::ECS::TaskDefinition\",\"Properties\":{"
		"\"ContainerDefinitions\":{\"a\":1}}}}}",
		"{\"nothing\":true}",
		"42",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_auto_t *doc = load(bad[i]);
		struct kilt_error err = { 0 };
		assert_true(kilt_ecs_inject_planner(&FALCO, doc, NULL, NULL, &err) < 0);
		assert_true(err.msg[0] != '\0');
	}
}

/* Mappings that point at each other: resolving an image through them ends quickly (a budget of
 * evaluations) and never recurses without bound (Fn::Select used to start the depth afresh). */
static void test_ecs__intrinsic_limits(void **state)
{
	(void)state;
	alarm(60); /* a hang fails the test instead of stalling the run */
	json_t *loop = load("{\"M\":{\"l0\":{\"x\":{\"Fn::Select\":[\"0\",{\"Fn::Split\":[\",\","
			    "{\"Fn::FindInMap\":[\"M\",\"l0\",\"x\"]}]}]}}}}");
	/* 8 levels of 40 look-ups each, every one empty: 40^7 evaluations without a budget */
	json_t *m = json_object();
	for (int l = 0; l < 8; l++) {
		char name[8], next[8];
		snprintf(name, sizeof(name), "l%d", l);
		snprintf(next, sizeof(next), "l%d", l + 1);
		json_t *x = json_string("");
		if (l < 7) {
			json_t *items = json_array();
			for (int k = 0; k < 40; k++)
				json_array_append_new(items, json_pack("{s[sss]}", "Fn::FindInMap",
								       "M", next, "x"));
			json_decref(x);
			x = json_pack("{s[so]}", "Fn::Join", "", items);
		}
		json_object_set_new(m, name, json_pack("{so}", "x", x));
	}
	json_t *maps[] = { loop, json_pack("{so}", "M", m) };
	for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
		json_auto_t *doc = load(TASK(
			"{\"RequiresCompatibilities\":[\"FARGATE\"],\"ContainerDefinitions\":[{"
			"\"Name\":\"app\",\"Image\":{\"Fn::FindInMap\":[\"M\",\"l0\",\"x\"]},"
			"\"EntryPoint\":[\"/a\"]}]}"));
		json_object_set_new(doc, "Mappings", maps[i]);
		struct kilt_report rep;
		kilt_report_init(&rep);
		assert_int_equal(inject(&FALCO, doc, NULL, &rep), 0);
		assert_int_equal(rep.n_patched, 1);
		kilt_report_done(&rep);
	}
	alarm(0);
}

/* A reason cut to its buffer in the middle of a UTF-8 character still reaches the JSON report. */
static void test_ecs__reason_utf8(void **state)
{
	(void)state;
	char sub[2 + 2 * 300 + 1] = "${";
	for (size_t i = 0; i < 300; i++)
		memcpy(sub + 2 + 2 * i, "\xc3\xa9", 2);
	sub[sizeof(sub) - 1] = '\0';
	json_auto_t *doc = load(TASK("{\"RequiresCompatibilities\":[\"FARGATE\"],"
				     "\"ContainerDefinitions\":[{\"Name\":\"app\","
				     "\"Image\":\"nginx\",\"EntryPoint\":[\"/a\"]}]}"));
	json_t *props = json_object_get(json_object_get(json_object_get(doc, "Resources"), "Task"),
					"Properties");
	json_object_set_new(props, "Tags",
			    json_pack("[{sss{ss}}]", "Key", "kilt-include-containers", "Value",
				      "Fn::Sub", sub));
	struct kilt_report rep;
	kilt_report_init(&rep);
	assert_int_equal(inject(&FALCO, doc, NULL, &rep), 0);
	json_auto_t *j = kilt_report_to_json(&rep);
	json_t *d = json_array_get(json_object_get(j, "decisions"), 0);
	assert_non_null(d);
	const char *reason = json_string_value(json_object_get(d, "reason"));
	assert_non_null(reason);
	/* only the broken character goes, not the advice after it */
	assert_non_null(strstr(reason, "unterminated"));
	assert_non_null(strstr(reason, "write the container names as a literal"));
	kilt_report_done(&rep);
}

/* The sidecars' secret ARN is checked before anything is written: an empty one (the macro's
 * ImageAuthSecret layer, `--sidecar-credentials ""`) or one with blanks is an error. */
static void test_ecs__sidecar_credentials_checked(void **state)
{
	(void)state;
	const char *bad[] = { "", " ", "arn:aws:secretsmanager:us-east-1:1:secret:a b", "arn\n" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_auto_t *doc = load(BASIC);
		_cleanup_free_ char *before = dump(doc);
		struct kilt_ecs_options opts;
		kilt_ecs_options_default(&opts);
		opts.sidecar_repository_credentials = bad[i];
		struct kilt_error err = { 0 };
		assert_int_equal(kilt_ecs_inject_planner(&FALCO, doc, &opts, NULL, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "sidecar repository credentials"));
		_cleanup_free_ char *after = dump(doc);
		assert_string_equal(before, after);
	}
	json_auto_t *doc = load(BASIC);
	struct kilt_ecs_options opts;
	kilt_ecs_options_default(&opts);
	opts.sidecar_repository_credentials = "arn:aws:secretsmanager:us-east-1:1:secret:pull-AbCd";
	assert_int_equal(inject(&FALCO, doc, &opts, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(container(doc, 1), "RepositoryCredentials"),
				    "CredentialsParameter")),
			    opts.sidecar_repository_credentials);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecs__basic),
		cmocka_unit_test(test_ecs__twice_equals_once),
		cmocka_unit_test(test_ecs__other_recipe_replaces),
		cmocka_unit_test(test_ecs__remove_restores),
		cmocka_unit_test(test_ecs__unknown_entrypoint),
		cmocka_unit_test(test_ecs__image_facts_hook),
		cmocka_unit_test(test_ecs__selection),
		cmocka_unit_test(test_ecs__merge_existing),
		cmocka_unit_test(test_ecs__intrinsics),
		cmocka_unit_test(test_ecs__terraform_and_ecs_json),
		cmocka_unit_test(test_ecs__malformed),
		cmocka_unit_test(test_ecs__intrinsic_limits),
		cmocka_unit_test(test_ecs__reason_utf8),
		cmocka_unit_test(test_ecs__sidecar_credentials_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
