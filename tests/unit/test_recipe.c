/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the recipe module: the shell-word splitter, platforms, names and hashes, the
 * shipped recipes (Falco's launcher argv, the two spellings giving one plan), fact handling,
 * error collection, the template cache against full resolution, and evaluation from threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "internal.h"
#include "kilt.h"
#include "recipe-private.h"

#define RECIPES KILT_SOURCE_DIR "/deploy/recipes"

/* ---- helpers -------------------------------------------------------------------------------- */

static json_t *split_ok(const char *s)
{
	json_t *argv = NULL;
	struct kilt_error err = { 0 };
	int r = kilt_shellwords_split(s, strlen(s), &argv, &err);
	if (r < 0)
		fail_msg("split of <%s> failed: %s", s, err.msg);
	return argv;
}

static void assert_split(const char *s, const char *want_json)
{
	json_t *got = split_ok(s);
	json_error_t jerr;
	json_t *want = json_loads(want_json, 0, &jerr);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_COMPACT);
		fail_msg("split of <%s>: got %s, want %s", s, g, want_json);
	}
	json_decref(got);
	json_decref(want);
}

static void assert_split_fails(const char *s, const char *msg_part)
{
	json_t *argv = NULL;
	struct kilt_error err = { 0 };
	assert_true(kilt_shellwords_split(s, strlen(s), &argv, &err) < 0);
	assert_null(argv);
	if (!strstr(err.msg, msg_part))
		fail_msg("split of <%s>: message <%s> lacks <%s>", s, err.msg, msg_part);
}

static struct kilt_recipe *load_ok(const char *path)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_load_file(path, &r, &err) < 0) {
		char buf[1024];
		fail_msg("%s", kilt_error_format(&err, buf, sizeof(buf)));
	}
	return r;
}

static struct kilt_recipe *load_text(const char *text)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_load_string(text, strlen(text), "test.conf", &r, &err) < 0) {
		char buf[1024];
		fail_msg("%s", kilt_error_format(&err, buf, sizeof(buf)));
	}
	return r;
}

struct facts {
	json_t *entrypoint, *command, *environment, *metadata;
	struct kilt_target t;
};

static void nginx(struct facts *f)
{
	f->entrypoint = json_pack("[s]", "/docker-entrypoint.sh");
	f->command = json_pack("[sss]", "nginx", "-g", "daemon off;");
	f->environment = json_pack("{ss}", "NGINX_VERSION", "1.27.0");
	f->metadata = json_pack("{ss}", "team", "web");
	f->t = (struct kilt_target){
		.image = "docker.io/library/nginx:1.27",
		.name = "web",
		.group = "shop",
		.entrypoint = f->entrypoint,
		.command = f->command,
		.environment = f->environment,
		.metadata = f->metadata,
		.platform = "linux/amd64",
	};
}

static void facts_done(struct facts *f)
{
	json_decref(f->entrypoint);
	json_decref(f->command);
	json_decref(f->environment);
	json_decref(f->metadata);
}

static json_t *eval_ok(const struct kilt_recipe *r, const struct kilt_target *t,
		       const json_t *config)
{
	json_t *plan = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_evaluate(r, t, config, &plan, &err) < 0) {
		char buf[1024];
		fail_msg("%s", kilt_error_format(&err, buf, sizeof(buf)));
	}
	return plan;
}

static void assert_json_equal(const json_t *a, const json_t *b)
{
	if (!json_equal(a, b)) {
		char *sa = json_dumps(a, JSON_INDENT(1));
		char *sb = json_dumps(b, JSON_INDENT(1));
		fail_msg("plans differ:\n%s\n----\n%s", sa, sb);
	}
}

/* ---- shell words ---------------------------------------------------------------------------- */

static void test_recipe__shellwords_plain(void **state)
{
	(void)state;
	assert_split("", "[]");
	assert_split("   \t\n ", "[]");
	assert_split("/falco/pdig -p 1", "[\"/falco/pdig\", \"-p\", \"1\"]");
	assert_split("  a   b\tc\nd  ", "[\"a\", \"b\", \"c\", \"d\"]");
}

static void test_recipe__shellwords_quotes(void **state)
{
	(void)state;
	assert_split("'a b' \"c d\"", "[\"a b\", \"c d\"]");
	assert_split("a'b'\"c\"d", "[\"abcd\"]");
	assert_split("'' \"\"", "[\"\", \"\"]");
	/* Single quotes keep backslashes and double quotes literally. */
	assert_split("'a\\b\"c'", "[\"a\\\\b\\\"c\"]");
	/* Inside double quotes only \\ \" \$ \` escape. */
	assert_split("\"a\\\"b\\\\c\\$d\\`e\\nf\"", "[\"a\\\"b\\\\c$d`e\\\\nf\"]");
	/* Quoted operators and # are plain text. */
	assert_split("'|' \"a > b\" 'x;y' '#'", "[\"|\", \"a > b\", \"x;y\", \"#\"]");
}

static void test_recipe__shellwords_backslash(void **state)
{
	(void)state;
	assert_split("a\\ b c", "[\"a b\", \"c\"]");
	assert_split("\\'x\\\"", "[\"'x\\\"\"]");
	assert_split("a\\\nb", "[\"ab\"]");
	assert_split("a \\| b", "[\"a\", \"|\", \"b\"]");
}

static void test_recipe__shellwords_no_expansion(void **state)
{
	(void)state;
	assert_split("echo $HOME ~ * `x` ${y}",
		     "[\"echo\", \"$HOME\", \"~\", \"*\", \"`x`\", \"${y}\"]");
}

static void test_recipe__shellwords_comments(void **state)
{
	(void)state;
	assert_split("a # b c\nd", "[\"a\", \"d\"]");
	assert_split("a#b", "[\"a#b\"]");
	assert_split("# all comment", "[]");
}

static void test_recipe__shellwords_errors(void **state)
{
	(void)state;
	assert_split_fails("a 'b", "single quote is never closed");
	assert_split_fails("a \"b", "double quote is never closed");
	assert_split_fails("a\\", "ends with a backslash");
	assert_split_fails("a | b", "unquoted '|'");
	assert_split_fails("a;b", "unquoted ';'");
	assert_split_fails("a > log", "unquoted '>'");
	assert_split_fails("(a)", "unquoted '('");
	assert_split_fails("a &", "unquoted '&'");
	/* The column of the problem is named. */
	assert_split_fails("abc 'x", "column 5");
	/* A NUL byte is refused wherever it is: exec would cut the word there. */
	static const struct {
		const char *s;
		size_t len;
		const char *col;
	} nul[] = {
		{ "a\0b", 3, "column 2" },
		{ "a \"\0\"", 5, "column 4" },
		{ "a '\0'", 5, "column 4" },
		{ "a \\\0b", 5, "column 4" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(nul); i++) {
		json_t *argv = NULL;
		struct kilt_error err = { 0 };
		assert_true(kilt_shellwords_split(nul[i].s, nul[i].len, &argv, &err) < 0);
		assert_null(argv);
		assert_non_null(strstr(err.msg, "NUL byte"));
		assert_non_null(strstr(err.msg, nul[i].col));
	}
}

/* ---- platforms, names, hashes --------------------------------------------------------------- */

static void test_recipe__platform_normalize(void **state)
{
	(void)state;
	char b[64];
	assert_true(kilt_recipe_platform_normalize("linux/amd64", b, sizeof(b)));
	assert_string_equal(b, "linux/amd64");
	assert_true(kilt_recipe_platform_normalize("x86_64", b, sizeof(b)));
	assert_string_equal(b, "linux/amd64");
	assert_true(kilt_recipe_platform_normalize("Linux/AArch64", b, sizeof(b)));
	assert_string_equal(b, "linux/arm64");
	assert_true(kilt_recipe_platform_normalize("linux/arm64/v8", b, sizeof(b)));
	assert_string_equal(b, "linux/arm64");
	assert_true(kilt_recipe_platform_normalize("linux/arm/v7", b, sizeof(b)));
	assert_string_equal(b, "linux/arm/v7");
	assert_false(kilt_recipe_platform_normalize("linux/sparc", b, sizeof(b)));
	assert_false(kilt_recipe_platform_normalize("plan9/amd64", b, sizeof(b)));
	assert_false(kilt_recipe_platform_normalize("linux/amd64/", b, sizeof(b)));
	assert_false(kilt_recipe_platform_normalize("a/b/c/d", b, sizeof(b)));
	assert_false(kilt_recipe_platform_normalize("", b, sizeof(b)));
}

static void test_recipe__supports_platform(void **state)
{
	(void)state;
	struct kilt_recipe *falco = load_ok(RECIPES "/falco.kilt.conf");
	assert_true(kilt_recipe_supports_platform(falco, NULL));
	assert_true(kilt_recipe_supports_platform(falco, "linux/amd64"));
	assert_true(kilt_recipe_supports_platform(falco, "amd64"));
	assert_true(kilt_recipe_supports_platform(falco, "linux/amd64/v3"));
	assert_false(kilt_recipe_supports_platform(falco, "linux/arm64"));
	assert_false(kilt_recipe_supports_platform(falco, "linux/arm64/v8"));
	assert_false(kilt_recipe_supports_platform(falco, "windows/amd64"));
	assert_false(kilt_recipe_supports_platform(falco, "nonsense"));
	kilt_recipe_free(falco);

	struct kilt_recipe *any = load_text("deploy { command: [] }");
	assert_true(kilt_recipe_supports_platform(any, "linux/arm64"));
	assert_true(kilt_recipe_supports_platform(any, "linux/s390x"));
	kilt_recipe_free(any);

	struct kilt_recipe *armv7 =
		load_text("platforms: [ linux/arm/v7 ]\ndeploy { command: [] }");
	assert_true(kilt_recipe_supports_platform(armv7, "linux/arm/v7"));
	assert_false(kilt_recipe_supports_platform(armv7, "linux/arm/v6"));
	assert_false(kilt_recipe_supports_platform(armv7, "linux/arm"));
	kilt_recipe_free(armv7);
}

static void test_recipe__name_and_hash(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_ok(RECIPES "/falco.kilt.conf");
	assert_string_equal(kilt_recipe_name(r), "falco");
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(kilt_read_file(RECIPES "/falco.kilt.conf", 1u << 20, &text, &len), 0);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	assert_true(EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL));
	char hex[65];
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(kilt_recipe_hash(r), hex);
	free(text);
	kilt_recipe_free(r);

	struct kilt_recipe *inl = NULL;
	struct kilt_error err = { 0 };
	const char *src = "deploy { command: [] }";
	assert_int_equal(kilt_recipe_load_string(src, strlen(src), NULL, &inl, &err), 0);
	assert_string_equal(kilt_recipe_name(inl), "inline");
	/* sha256("deploy { command: [] }") differs from the empty string's. */
	assert_int_equal(strlen(kilt_recipe_hash(inl)), 64);
	assert_string_not_equal(kilt_recipe_hash(inl),
				"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	kilt_recipe_free(inl);
	kilt_recipe_free(NULL);
}

/* ---- the shipped recipes -------------------------------------------------------------------- */

static size_t index_of(const json_t *arr, const char *s, size_t from)
{
	for (size_t i = from; i < json_array_size(arr); i++)
		if (strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
			return i;
	return (size_t)-1;
}

/* kilt writes kilt-launch's argv from the recipe's lists: the counts match the groups. */
static void test_recipe__falco_launcher_argv(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_ok(RECIPES "/falco.kilt.conf");
	struct facts f;
	nginx(&f);
	json_t *config = json_pack("{ss}", "agent_image", "reg.example/kilt/falco:0.32.2");
	json_t *plan = eval_ok(r, &f.t, config);
	const json_t *ep = json_object_get(plan, "entrypoint");
	assert_string_equal(json_string_value(json_array_get(ep, 0)), "/kilt/bin/kilt-launch");
	size_t a = index_of(ep, "-a", 1), t = index_of(ep, "-t", 1), dd = index_of(ep, "--", 1);
	assert_int_equal(a, 1);
	long na = strtol(json_string_value(json_array_get(ep, a + 1)), NULL, 10);
	long nt = strtol(json_string_value(json_array_get(ep, t + 1)), NULL, 10);
	assert_int_equal((size_t)na, t - (a + 2));
	assert_int_equal(nt, 1);
	assert_string_equal(json_string_value(json_array_get(ep, t + 2 + 1)), "--wait-for");
	assert_string_equal(json_string_value(json_array_get(ep, a + 2)),
			    "/vendor/falco/bin/falco");
	assert_string_equal(json_string_value(json_array_get(ep, t + 2)), "/vendor/falco/bin/pdig");
	/* Falco 0.32 rejects these; they must never be passed. */
	for (size_t i = 0; i < json_array_size(ep); i++) {
		const char *w = json_string_value(json_array_get(ep, i));
		assert_null(strstr(w, "alternate-lua-dir"));
		assert_null(strstr(w, "k8s_audit_rules"));
	}
	assert_int_equal(index_of(ep, "-u", 0) != (size_t)-1, 1);
	/* The program: the original entrypoint after kilt-launch's --, then the command. */
	assert_int_equal(dd, json_array_size(ep) - 2);
	assert_string_equal(json_string_value(json_array_get(ep, dd + 1)), "/docker-entrypoint.sh");
	json_t *want_cmd = json_pack("[sss]", "nginx", "-g", "daemon off;");
	assert_json_equal(json_object_get(plan, "command"), want_cmd);
	json_decref(want_cmd);
	json_t *want_caps = json_pack("[s]", "SYS_PTRACE");
	assert_json_equal(json_object_get(plan, "capabilities"), want_caps);
	json_decref(want_caps);
	json_t *want_plat = json_pack("[s]", "linux/amd64");
	assert_json_equal(json_object_get(plan, "platforms"), want_plat);
	json_decref(want_plat);
	const json_t *m = json_array_get(json_object_get(plan, "mounts"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "image")),
			    "reg.example/kilt/falco:0.32.2");
	json_decref(plan);
	json_decref(config);

	/* No made-up default image: without it, the error says how to make one. */
	struct kilt_error err = { 0 };
	plan = NULL;
	assert_int_equal(kilt_recipe_evaluate(r, &f.t, NULL, &plan, &err), -EINVAL);
	assert_null(plan);
	assert_non_null(strstr(err.msg, "recipe falco needs config.agent_image"));
	assert_non_null(strstr(err.msg, "build-agent-image.sh --falco"));
	/* A misspelled key is an error, not the default silently. */
	config = json_pack("{ss}", "agent_imag", "reg.example/kilt/falco:0.32.2");
	memset(&err, 0, sizeof(err));
	assert_int_equal(kilt_recipe_evaluate(r, &f.t, config, &plan, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "did you mean 'agent_image'?"));
	json_decref(config);
	facts_done(&f);
	kilt_recipe_free(r);
}

static void test_recipe__spellings_give_one_plan(void **state)
{
	(void)state;
	struct kilt_recipe *canon = load_ok(RECIPES "/falco.kilt.conf");
	struct kilt_recipe *orig = load_ok(RECIPES "/falco.original-syntax.conf");
	struct facts f;
	nginx(&f);
	json_t *configs[] = {
		json_pack("{ss}", "agent_image", "reg/x:1"),
		json_pack("{ssssss}", "agent_image", "reg/x:1", "wait_timeout", "60", "on_timeout",
			  "exit"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(configs); i++) {
		json_t *a = eval_ok(canon, &f.t, configs[i]);
		json_t *b = eval_ok(orig, &f.t, configs[i]);
		/* Only the hash of the source text differs. */
		assert_string_not_equal(
			json_string_value(json_object_get(json_object_get(a, "recipe"), "hash")),
			json_string_value(json_object_get(json_object_get(b, "recipe"), "hash")));
		json_object_del(a, "recipe");
		json_object_del(b, "recipe");
		assert_json_equal(a, b);
		json_decref(a);
		json_decref(b);
		json_decref(configs[i]);
	}
	facts_done(&f);
	kilt_recipe_free(canon);
	kilt_recipe_free(orig);
}

/* ---- facts ---------------------------------------------------------------------------------- */

static void test_recipe__unknown_fact_is_an_error(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_ok(RECIPES "/falco.kilt.conf");
	struct facts f;
	nginx(&f);
	f.t.entrypoint = NULL;
	f.t.command = NULL;
	json_t *plan = NULL;
	struct kilt_error err = { 0 };
	json_t *config = json_pack("{ss}", "agent_image", "reg/x:1");
	assert_int_equal(kilt_recipe_evaluate(r, &f.t, config, &plan, &err), -ENODATA);
	assert_null(plan);
	assert_non_null(strstr(err.msg, "original.entrypoint is not known for container web"));
	assert_non_null(strstr(err.msg, "set the container's entrypoint"));

	/* Only the command unknown. */
	f.t.entrypoint = f.entrypoint;
	memset(&err, 0, sizeof(err));
	assert_int_equal(kilt_recipe_evaluate(r, &f.t, config, &plan, &err), -ENODATA);
	assert_non_null(strstr(err.msg, "original.command is not known"));
	json_decref(config);
	facts_done(&f);
	kilt_recipe_free(r);
}

static void test_recipe__optional_fact(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_text("deploy {\n"
					  "  entrypoint: [ /w ] ${?original.entrypoint}\n"
					  "  command: ${?original.command}\n"
					  "  environment { N: \"none\", N: ${?original.name} }\n"
					  "}\n");
	struct facts f;
	nginx(&f);
	json_t *plan = eval_ok(r, &f.t, NULL);
	json_t *want = json_pack("[ss]", "/w", "/docker-entrypoint.sh");
	assert_json_equal(json_object_get(plan, "entrypoint"), want);
	json_decref(want);
	json_decref(plan);

	/* Every fact unknown: optional substitutions vanish. The recipe sets an entrypoint, but
	 * the command substitution vanished, so the command is the target's, which is unknown. */
	struct kilt_target none = { 0 };
	struct kilt_error err = { 0 };
	plan = NULL;
	assert_int_equal(kilt_recipe_evaluate(r, &none, NULL, &plan, &err), -ENODATA);
	assert_non_null(strstr(err.msg, "original.command is not known"));
	facts_done(&f);
	kilt_recipe_free(r);
}

/* Required config substitutions get load-time placeholders however long or deep their path: a
 * key longer than the scanner's old 127-byte segment was cut (mid-character for non-ASCII keys,
 * which freed the object being built and then used it) and a path of more than 8 segments got
 * no placeholder, so valid recipes failed to load. */
static void test_recipe__config_placeholder_long_paths(void **state)
{
	(void)state;
	char longkey[201], uni[129];
	memset(longkey, 'k', 200);
	longkey[200] = '\0';
	for (size_t i = 0; i < 64; i++)
		memcpy(uni + 2 * i, "\xc3\xa9", 2);
	uni[128] = '\0';
	_cleanup_free_ char *text = xasprintf("deploy.environment {\n"
					      "  A: ${config.\"%s\".y}\n"
					      "  B: ${config.\"%s\".y}\n"
					      "  C: ${config.a.b.c.d.e.f.g.h.i}\n"
					      "}\n",
					      longkey, uni);
	struct kilt_recipe *r = load_text(text);
	assert_non_null(r);
	json_t *config =
		json_pack("{s{s{ss}s{ss}s{s{s{s{s{s{s{s{ss}}}}}}}}}}", "config", longkey, "y", "1",
			  uni, "y", "2", "a", "b", "c", "d", "e", "f", "g", "h", "i", "3");
	assert_non_null(config);
	struct facts f;
	nginx(&f);
	json_t *plan = eval_ok(r, &f.t, json_object_get(config, "config"));
	_cleanup_free_ char *dump = json_dumps(json_object_get(plan, "environment"), JSON_COMPACT);
	assert_non_null(strstr(dump, "\"A\",\"value\":\"1\""));
	assert_non_null(strstr(dump, "\"B\",\"value\":\"2\""));
	assert_non_null(strstr(dump, "\"C\",\"value\":\"3\""));
	json_decref(plan);
	json_decref(config);
	facts_done(&f);
	kilt_recipe_free(r);
}

static void test_recipe__env_merge(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_text("deploy { environment { B: recipe, Z: new1, A: new2 } }");
	struct facts f;
	nginx(&f);
	json_decref(f.environment);
	f.environment = json_pack("{ssssss}", "C", "c", "B", "b", "D", "d");
	f.t.environment = f.environment;
	json_t *plan = eval_ok(r, &f.t, NULL);
	json_t *want = json_pack("[{ssss}{ssss}{ssss}{ssss}{ssss}]", "name", "C", "value", "c",
				 "name", "B", "value", "recipe", "name", "D", "value", "d", "name",
				 "Z", "value", "new1", "name", "A", "value", "new2");
	assert_json_equal(json_object_get(plan, "environment"), want);
	json_decref(want);
	json_decref(plan);

	/* An intrinsic in the target's environment is kept as it is. */
	json_object_set_new(f.environment, "REF", json_pack("{ss}", "Ref", "Param"));
	plan = eval_ok(r, &f.t, NULL);
	const json_t *env = json_object_get(plan, "environment");
	json_t *ref = json_pack("{ss}", "Ref", "Param");
	assert_json_equal(json_object_get(json_array_get(env, 3), "value"), ref);
	json_decref(ref);
	json_decref(plan);
	facts_done(&f);
	kilt_recipe_free(r);
}

/* Whether a recipe reads original.environment, and what an engine may then leave out. */
static void test_recipe__reads_environment(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool reads;
	} cases[] = {
		{ "deploy { environment { M: ${original.name} } }", false },
		{ "deploy { environment { M: \"x\"${?original.metadata.team} } }", false },
		{ "deploy { environment { M: ${?original.environment.HOME} } }", true },
		{ "deploy { environment { M: ${?original.environment_variables.HOME} } }", true },
		{ "deploy { environment { M: ${?original.\"environment\".HOME} } }", true },
		/* an escape in a path is not decoded here: taken as a read, to be safe */
		{ "deploy { environment { M: \"x\"${?config.\"m\\u006fde\"} } }", true },
		{ "vars { o = ${original} }\ndeploy { environment { M: ${?vars.o.name} } }", true },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kilt_recipe *r = load_text(cases[i].text);
		if (kilt_recipe_reads_environment(r) != cases[i].reads)
			fail_msg("%s: reads the environment: want %d", cases[i].text,
				 cases[i].reads);
		kilt_recipe_free(r);
	}

	/* A recipe that does not read it gives the same plan without the target's environment,
	 * less the target's variables at the head of the plan's environment. */
	struct kilt_recipe *r = load_text("deploy { entrypoint: [ /l ] ${original.entrypoint}, "
					  "environment { B: recipe, Z: ${original.name} } }");
	assert_false(kilt_recipe_reads_environment(r));
	struct facts f;
	nginx(&f);
	json_decref(f.environment);
	f.environment = json_pack("{ssssss}", "C", "c", "B", "b", "D", "d");
	f.t.environment = f.environment;
	json_t *with = eval_ok(r, &f.t, NULL);
	f.t.environment = NULL;
	json_t *without = eval_ok(r, &f.t, NULL);
	json_t *env = json_pack("[{ssss}{ssss}]", "name", "B", "value", "recipe", "name", "Z",
				"value", f.t.name);
	assert_json_equal(json_object_get(without, "environment"), env);
	json_decref(env);
	env = json_pack("[{ssss}{ssss}{ssss}{ssss}]", "name", "C", "value", "c", "name", "B",
			"value", "recipe", "name", "D", "value", "d", "name", "Z", "value",
			f.t.name);
	assert_json_equal(json_object_get(with, "environment"), env);
	json_decref(env);
	json_object_del(with, "environment");
	json_object_del(without, "environment");
	assert_json_equal(with, without);
	json_decref(with);
	json_decref(without);
	facts_done(&f);
	kilt_recipe_free(r);
}

/* kilt_recipe_reads_metadata: what the Kubernetes engine asks before it gathers a pod's labels and
 * annotations for the recipe. */
static void test_recipe__reads_metadata(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool reads;
	} cases[] = {
		{ "deploy { environment { M: ${original.name} } }", false },
		{ "deploy { environment { M: \"x\"${?original.environment.HOME} } }", false },
		{ "deploy { environment { M: \"x\"${?original.metadata.team} } }", true },
		{ "deploy { environment { M: \"x\"${?original.\"metadata\".team} } }", true },
		/* an escape in a path is not decoded here: taken as a read, to be safe */
		{ "deploy { environment { M: \"x\"${?config.\"m\\u006fde\"} } }", true },
		{ "vars { o = ${original} }\ndeploy { environment { M: ${?vars.o.name} } }", true },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kilt_recipe *r = load_text(cases[i].text);
		if (kilt_recipe_reads_metadata(r) != cases[i].reads)
			fail_msg("%s: reads the metadata: want %d", cases[i].text, cases[i].reads);
		kilt_recipe_free(r);
	}
}

/* ---- errors --------------------------------------------------------------------------------- */

static void count_error(const struct kilt_error *err, void *userdata)
{
	unsigned *n = userdata;
	assert_true(err->code < 0);
	assert_true(err->line > 0);
	(*n)++;
}

static void count_any(const struct kilt_error *err, void *userdata)
{
	unsigned *n = userdata;
	assert_non_null(strstr(err->msg, "cannot read"));
	(*n)++;
}

static void test_recipe__check_reports_every_error(void **state)
{
	(void)state;
	char path[] = "/tmp/kilt-recipe-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "deploy {\n"
			   "  entrypiont: [ /x ]\n"
			   "  mount: [ { volume: /v } ]\n"
			   "}\n"
			   "patch { upload: [ { url: \"https://e.com/f\", as: /f } ] }\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	unsigned n = 0;
	assert_int_equal(kilt_recipe_check_file(path, count_error, &n), -EINVAL);
	assert_int_equal(n, 3);

	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_file(path, &r, &err), -EINVAL);
	assert_null(r);
	assert_string_equal(err.file, path);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "did you mean 'entrypoint'?"));
	unlink(path);

	n = 0;
	assert_int_equal(kilt_recipe_check_file("/nonexistent/recipe.conf", count_any, &n),
			 -ENOENT);
	assert_int_equal(n, 1);
}

/* A NUL byte cannot reach a program: exec would cut the word or variable there. The list form of
 * an argv and environment values used to let it through (the string form already refused it). */
static void test_recipe__nul_in_argv_or_env(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "deploy { command: [ \"a\\u0000b\" ] }\n", "deploy.command[0]: " },
		{ "deploy { environment { A: \"x\\u0000y\" } }\n", "deploy.environment.A: " },
		{ "patch { exec: [ [ p, \"\\u0000\" ] ] }\n", "patch.exec[0][1]: " },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kilt_recipe *r = NULL;
		struct kilt_error err = { 0 };
		assert_true(kilt_recipe_load_string(cases[i].text, strlen(cases[i].text),
						    "nul.conf", &r, &err) < 0);
		assert_null(r);
		if (!strstr(err.msg, cases[i].want) || !strstr(err.msg, "NUL byte"))
			fail_msg("case %zu: %s", i, err.msg);
		assert_true(err.line > 0);
	}
}

/* A mount image is checked for every container a recipe plans; the reference last found valid is
 * remembered (per thread) and never lets another through, a longer or shorter one included. */
static void test_recipe__image_check_remembers_only_valid(void **state)
{
	(void)state;
	static const char *const good = "registry.example.com/kilt/falco-agent:0.32.2";
	static const char *const bad[] = {
		"registry.example.com/kilt/UPPER:1",
		"registry.example.com/kilt/falco-agent:0.32.2:x",
		"registry.example.com/kilt/falco-agent:",
		"",
	};
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			struct kilt_error err = { 0 };
			assert_int_equal(kilt_recipe_image_check(good, &err), 0);
			if (kilt_recipe_image_check(bad[i], &err) >= 0 || !err.msg[0])
				fail_msg("round %d: '%s' passed the check", round, bad[i]);
		}
	}
}

static void test_recipe__load_string_errors_are_located(void **state)
{
	(void)state;
	const char *text =
		"deploy {\n  mount: [\n    { image: \"a\", volume: /v, entrypoint: 3 }\n  ]\n}\n";
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	assert_true(kilt_recipe_load_string(text, strlen(text), "inline.conf", &r, &err) < 0);
	char buf[1024];
	assert_string_equal(kilt_error_format(&err, buf, sizeof(buf)),
			    "inline.conf:3:43: deploy.mount[0].entrypoint: expected a list of "
			    "strings or a command line string, got a number");
}

/* ---- templates and threads ------------------------------------------------------------------ */

/* The cached template and a full resolution agree for every combination of known facts. */
static void test_recipe__template_equals_full(void **state)
{
	(void)state;
	const char *paths[] = { RECIPES "/falco.kilt.conf", RECIPES "/falco.original-syntax.conf" };
	const char *texts[] = {
		"deploy { entrypoint: [ /w ] ${?original.entrypoint} ${?original.command}\n"
		"  command: []\n"
		"  image: ${?original.image}\"-x\"\n"
		"  environment { I: ${?original.image}, N: ${?original.name}, G: "
		"${?original.group},\n"
		"    P: ${?original.platform}, M: \"i=\"${?original.image}\";n=\"${?original.name} "
		"}\n"
		"  mount: [ { image: \"a:\"${?original.name}, volume: /a } ] }\n",
		"build { entry_point: ${?original.entry_point}, environment_variables { N: "
		"${?original.container_name} } }\n",
	};
	struct kilt_recipe *recipes[4];
	recipes[0] = load_ok(paths[0]);
	recipes[1] = load_ok(paths[1]);
	recipes[2] = load_text(texts[0]);
	recipes[3] = load_text(texts[1]);
	struct facts f;
	nginx(&f);
	json_t *config = json_pack("{ssss}", "agent_image", "reg/x:9.9", "on_timeout", "exit");
	for (size_t ri = 0; ri < ARRAY_SIZE(recipes); ri++) {
		for (unsigned mask = 0; mask < 64; mask++) {
			struct kilt_target t = f.t;
			if (!(mask & 1))
				t.image = NULL;
			if (!(mask & 2))
				t.name = NULL;
			if (!(mask & 4))
				t.group = NULL;
			if (!(mask & 8))
				t.entrypoint = NULL;
			if (!(mask & 16))
				t.command = NULL;
			if (!(mask & 32))
				t.platform = NULL;
			for (int c = 0; c < 2; c++) {
				const json_t *cfg = c ? config : NULL;
				json_t *a = NULL, *b = NULL;
				struct kilt_error ea = { 0 }, eb = { 0 };
				int ra = kilt_recipe_evaluate(recipes[ri], &t, cfg, &a, &ea);
				int rb = kilt_recipe_evaluate_full(recipes[ri], &t, cfg, &b, &eb);
				assert_int_equal(ra, rb);
				if (ra == 0)
					assert_json_equal(a, b);
				else
					assert_string_equal(ea.msg, eb.msg);
				json_decref(a);
				json_decref(b);
			}
		}
	}
	json_decref(config);
	facts_done(&f);
	for (size_t ri = 0; ri < ARRAY_SIZE(recipes); ri++)
		kilt_recipe_free(recipes[ri]);
}

/* A container's argv may hold an element that is no string: an intrinsic standing for a word
 * (ECS Command ["-c", {"Ref": "P"}]). Both ways pass it through where the recipe splices the
 * argv, whether or not the recipe reads original.metadata or original.environment (which makes
 * it always take the full way): the plans are identical. */
static void test_recipe__intrinsic_argv_element_parity(void **state)
{
	(void)state;
	const char *texts[] = {
		/* fast way */
		"deploy { entrypoint: [ /w ] ${original.entrypoint} ${original.command}\n"
		"  command: [] }\n",
		/* full way: reads metadata */
		"deploy { entrypoint: [ /w ] ${original.entrypoint} ${original.command}\n"
		"  command: [], environment { T: ${?original.metadata.team} } }\n",
		/* full way: reads the environment, keeps the command */
		"deploy { entrypoint: [ /w ] ${original.entrypoint}\n"
		"  environment { V: ${?original.environment.NGINX_VERSION} } }\n",
		/* the recipe's own command around the original one */
		"build { entry_point: [ /w ], command: [ a ] ${original.command} [ z ],\n"
		"  environment_variables { M: ${?original.metadata.team} } }\n",
	};
	struct facts f;
	nginx(&f);
	json_t *intrinsic = json_pack("{ss}", "Ref", "P");
	json_t *cmd = json_pack("[sO]", "-c", intrinsic);
	json_t *ep = json_pack("[sO]", "/bin/sh", intrinsic);
	struct kilt_target variants[3] = { f.t, f.t, f.t };
	variants[0].command = cmd;
	variants[1].entrypoint = ep;
	variants[2].entrypoint = ep;
	variants[2].command = cmd;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct kilt_recipe *r = load_text(texts[i]);
		for (size_t v = 0; v < ARRAY_SIZE(variants); v++) {
			json_t *a = NULL, *b = NULL;
			struct kilt_error ea = { 0 }, eb = { 0 };
			int ra = kilt_recipe_evaluate(r, &variants[v], NULL, &a, &ea);
			int rb = kilt_recipe_evaluate_full(r, &variants[v], NULL, &b, &eb);
			if (ra != 0 || rb != 0)
				fail_msg("recipe %zu, variant %zu: %s / %s", i, v, ea.msg, eb.msg);
			assert_json_equal(a, b);
			/* the element went through as it was, where the recipe put the argv (recipe
			 * 3 drops the entrypoint of variant 1) */
			bool found = false;
			const char *keys[] = { "entrypoint", "command" };
			for (size_t k = 0; k < 2; k++) {
				const json_t *argv = json_object_get(a, keys[k]);
				for (size_t w = 0; w < json_array_size(argv); w++)
					found = found ||
						json_equal(json_array_get(argv, w), intrinsic);
			}
			if (!found && !(i == 3 && v == 1))
				fail_msg("recipe %zu, variant %zu: the intrinsic element is gone",
					 i, v);
			json_decref(a);
			json_decref(b);
		}
		kilt_recipe_free(r);
	}
	json_decref(cmd);
	json_decref(ep);
	json_decref(intrinsic);
	facts_done(&f);
}

/* Markers must never leak: a fact that itself contains the marker byte is copied as it is. */
/* A marker after more text than the expansion buffer holds: the fast way dropped that text
 * silently (the unchecked append failed, the fact after it fit) instead of falling back. */
static void test_recipe__long_text_before_marker(void **state)
{
	(void)state;
	size_t n = (1u << 20) + 100;
	char *big = xmalloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	_cleanup_free_ char *text =
		xasprintf("deploy.environment { A: \"%s\"${original.name} }\n", big);
	free(big);
	struct kilt_recipe *r = load_text(text);
	struct facts f;
	nginx(&f);
	json_t *plan = eval_ok(r, &f.t, NULL);
	json_t *full = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_evaluate_full(r, &f.t, NULL, &full, &err), 0);
	assert_true(json_equal(plan, full));
	const json_t *env = json_object_get(plan, "environment");
	const json_t *a = NULL;
	for (size_t i = 0; i < json_array_size(env); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(env, i), "name")),
			   "A") == 0)
			a = json_object_get(json_array_get(env, i), "value");
	assert_int_equal(json_string_length(a), n + strlen("web"));
	json_decref(full);
	json_decref(plan);
	facts_done(&f);
	kilt_recipe_free(r);
}

static void test_recipe__marker_bytes_in_facts(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_text(
		"deploy { environment { I: \"<\"${original.image}\">\", X: ${?config.x} } }");
	struct facts f;
	nginx(&f);
	f.t.image = "a\001ib";
	json_t *plan = eval_ok(r, &f.t, NULL);
	const json_t *env = json_object_get(plan, "environment");
	assert_string_equal(json_string_value(json_object_get(json_array_get(env, 1), "value")),
			    "<a\001ib>");
	json_decref(plan);
	json_t *config = json_pack("{ss}", "x", "\001i");
	plan = eval_ok(r, &f.t, config);
	env = json_object_get(plan, "environment");
	assert_string_equal(json_string_value(json_object_get(json_array_get(env, 2), "value")),
			    "\001i");
	json_decref(plan);
	json_decref(config);
	facts_done(&f);
	kilt_recipe_free(r);
}

struct thread_arg {
	const struct kilt_recipe *recipe;
	const struct kilt_target *target;
	const json_t *config;
	const char *want;
	int failures;
};

static void *eval_thread(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 2000; i++) {
		json_t *plan = NULL;
		struct kilt_error err = { 0 };
		if (kilt_recipe_evaluate(a->recipe, a->target, a->config, &plan, &err) < 0) {
			a->failures++;
			continue;
		}
		char *s = json_dumps(plan, JSON_COMPACT);
		if (strcmp(s, a->want) != 0)
			a->failures++;
		free(s);
		json_decref(plan);
	}
	return NULL;
}

static void test_recipe__threads(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_ok(RECIPES "/falco.kilt.conf");
	struct facts f;
	nginx(&f);
	json_t *configs[4];
	char *wants[4];
	for (int i = 0; i < 4; i++) {
		char v[16];
		snprintf(v, sizeof(v), "r/falco:0.3%d.0", i);
		configs[i] = json_pack("{ss}", "agent_image", v);
		json_t *plan = NULL;
		struct kilt_error err = { 0 };
		assert_int_equal(kilt_recipe_evaluate_full(r, &f.t, configs[i], &plan, &err), 0);
		wants[i] = json_dumps(plan, JSON_COMPACT);
		json_decref(plan);
	}
	pthread_t th[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ r, &f.t, configs[i], wants[i], 0 };
		assert_int_equal(pthread_create(&th[i], NULL, eval_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
		free(wants[i]);
		json_decref(configs[i]);
	}
	facts_done(&f);
	kilt_recipe_free(r);
}

/* kilt_target.shared: the recipe keeps the plan of a target and hands it out again for the
 * targets of the same facts; every plan equals the one made for the target alone. */
static json_t *eval_shared_config(const struct kilt_recipe *r, struct kilt_target *t,
				  const json_t *config)
{
	t->shared = false;
	json_t *alone = eval_ok(r, t, config);
	t->shared = true;
	json_t *plan = eval_ok(r, t, config);
	t->shared = false;
	assert_json_equal(plan, alone);
	json_decref(alone);
	return plan;
}

static json_t *eval_shared(const struct kilt_recipe *r, struct kilt_target *t)
{
	return eval_shared_config(r, t, NULL);
}

static void test_recipe__shared_plans(void **state)
{
	(void)state;
	struct kilt_recipe *r =
		load_text("deploy {\n"
			  "  entrypoint: [ /w ] ${original.entrypoint}\n"
			  "  command: ${original.command}\n"
			  "  environment { WHO: ${original.name}\"@\"${original.image} }\n"
			  "}\n");
	struct facts f;
	nginx(&f);
	f.t.environment = NULL; /* a target with its environment gets a plan of its own */
	json_t *a = eval_shared(r, &f.t);
	json_t *b = eval_shared(r, &f.t);
	assert_ptr_equal(a, b); /* kept */
	json_decref(b);

	/* other facts, another plan; more targets than the recipe keeps */
	char names[100][16];
	for (int i = 0; i < 100; i++) {
		snprintf(names[i], sizeof(names[i]), "web-%d", i);
		f.t.name = names[i];
		json_t *p = eval_shared(r, &f.t);
		assert_ptr_not_equal(p, a);
		json_decref(p);
	}
	/* the first plan, long since let go by the recipe, is still the caller's */
	f.t.name = "web";
	json_t *again = eval_shared(r, &f.t);
	assert_json_equal(again, a);
	json_decref(again);
	json_decref(a);

	/* the same argv in other nodes is the same fact; another argv is not */
	json_t *ep = json_pack("[s]", "/docker-entrypoint.sh");
	f.t.entrypoint = ep;
	a = eval_shared(r, &f.t);
	b = eval_shared(r, &f.t);
	assert_ptr_equal(a, b);
	json_decref(b);
	json_array_append_new(ep, json_string("-x"));
	b = eval_shared(r, &f.t);
	assert_ptr_not_equal(a, b);
	json_decref(a);
	json_decref(b);

	/* a target with its environment, or with facts too big to keep, gets a plan of its own */
	f.t.entrypoint = f.entrypoint;
	f.t.environment = f.environment;
	a = eval_shared(r, &f.t);
	b = eval_shared(r, &f.t);
	assert_ptr_not_equal(a, b);
	json_decref(a);
	json_decref(b);
	f.t.environment = NULL;
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_array_append_new(ep, json_string(big));
	f.t.entrypoint = ep;
	a = eval_shared(r, &f.t);
	b = eval_shared(r, &f.t);
	assert_ptr_not_equal(a, b);
	json_decref(a);
	json_decref(b);
	json_decref(ep);
	facts_done(&f);
	kilt_recipe_free(r);
}

struct shared_arg {
	const struct kilt_recipe *recipe;
	const json_t *config;
	char *const *want; /* the plan of name web-i, as text */
	unsigned seed;
	int failures;
};

static void *shared_thread(void *p)
{
	struct shared_arg *a = p;
	struct facts f;
	nginx(&f);
	char name[16];
	f.t.name = name;
	f.t.environment = NULL;
	f.t.shared = true;
	for (int i = 0; i < 3000; i++) {
		/* more names than the recipe keeps: plans are let go while others hold them */
		int k = (int)((a->seed + (unsigned)i * 7919u) % 150u);
		snprintf(name, sizeof(name), "web-%d", k);
		json_t *plan = NULL;
		struct kilt_error err = { 0 };
		if (kilt_recipe_evaluate(a->recipe, &f.t, a->config, &plan, &err) < 0) {
			a->failures++;
			continue;
		}
		char *s = json_dumps(plan, JSON_COMPACT);
		if (strcmp(s, a->want[k]) != 0)
			a->failures++;
		free(s);
		json_decref(plan);
	}
	facts_done(&f);
	return NULL;
}

static void test_recipe__shared_plans_threads(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_ok(RECIPES "/falco.kilt.conf");
	char *want[150];
	struct facts f;
	nginx(&f);
	f.t.environment = NULL;
	json_t *config = json_pack("{ss}", "agent_image", "r/falco:0.37.0");
	for (int k = 0; k < 150; k++) {
		char name[16];
		snprintf(name, sizeof(name), "web-%d", k);
		f.t.name = name;
		json_t *plan = NULL;
		struct kilt_error err = { 0 };
		assert_int_equal(kilt_recipe_evaluate_full(r, &f.t, config, &plan, &err), 0);
		want[k] = json_dumps(plan, JSON_COMPACT);
		json_decref(plan);
	}
	/* the recipe keeps its plans (the threads below take kept ones) */
	f.t.name = "web-0";
	json_t *a = eval_shared_config(r, &f.t, config), *b = eval_shared_config(r, &f.t, config);
	assert_ptr_equal(a, b);
	json_decref(a);
	json_decref(b);
	pthread_t th[4];
	struct shared_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct shared_arg){ r, config, want, (unsigned)i * 37u, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, shared_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	for (int k = 0; k < 150; k++)
		free(want[k]);
	json_decref(config);
	facts_done(&f);
	kilt_recipe_free(r);
}

/* More configs than the cache holds still evaluate correctly (the full way). */
static void test_recipe__many_configs(void **state)
{
	(void)state;
	struct kilt_recipe *r = load_text("vars { v: \"0\", v: ${?config.v} }\n"
					  "deploy { image: \"x:\"${vars.v} }\n");
	struct facts f;
	nginx(&f);
	for (int i = 0; i < 40; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		json_t *config = json_pack("{ss}", "v", v);
		json_t *plan = eval_ok(r, &f.t, config);
		char want[32];
		snprintf(want, sizeof(want), "x:%d", i);
		assert_string_equal(json_string_value(json_object_get(plan, "image")), want);
		json_decref(plan);
		json_decref(config);
	}
	json_t *bad = json_pack("[]");
	json_t *plan = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_evaluate(r, &f.t, bad, &plan, &err), -EINVAL);
	json_decref(bad);
	facts_done(&f);
	kilt_recipe_free(r);
}

/* kilt_target.members: the plan leaves out members the caller does not read unless building
 * them depends on the target (it could fail, and the evaluation must then fail as the whole
 * plan's would), and what it has equals the whole plan's. */
static void check_members(const struct kilt_recipe *r, struct kilt_target *t, bool bg_built)
{
	static const char *const members[] = { "recipe",      "image",	  "entrypoint",	  "command",
					       "environment", "mounts",	  "capabilities", "uploads",
					       "background",  "platforms" };
	t->members = 0;
	json_t *whole = eval_ok(r, t, NULL);
	t->members = KILT_PLAN_ENTRYPOINT | KILT_PLAN_ENVIRONMENT;
	json_t *lean = eval_ok(r, t, NULL);
	const char *k;
	json_t *v;
	json_object_foreach (lean, k, v)
		assert_json_equal(v, json_object_get(whole, k));
	for (size_t i = 0; i < ARRAY_SIZE(members); i++) {
		bool there = json_object_get(lean, members[i]) != NULL;
		/* asked for, or always built (the command may be unknown, the mounts' images
		 * are checked), or depending on the target */
		bool want = strcmp(members[i], "entrypoint") == 0 ||
			    strcmp(members[i], "environment") == 0 ||
			    strcmp(members[i], "command") == 0 ||
			    strcmp(members[i], "mounts") == 0 ||
			    (bg_built && strcmp(members[i], "background") == 0);
		if (there != want)
			fail_msg("member %s: %s", members[i], there ? "present" : "missing");
		assert_non_null(json_object_get(whole, members[i]));
	}
	json_decref(lean);
	json_decref(whole);
	t->members = 0;
}

static void test_recipe__members(void **state)
{
	(void)state;
	struct kilt_recipe *r =
		load_text("platforms: [ linux/amd64 ]\n"
			  "deploy {\n"
			  "  image: \"reg.example.com/app:1\"\n"
			  "  entrypoint: [ /w ] ${original.entrypoint}\n"
			  "  command: ${original.command}\n"
			  "  capabilities: [ SYS_PTRACE ]\n"
			  "  environment { WHO: ${original.name} }\n"
			  "}\n"
			  "patch { exec: [ [ /bin/note, ${?original.group} ] ] }\n");
	struct facts f;
	nginx(&f);
	check_members(r, &f.t, true);
	f.t.group = NULL;
	check_members(r, &f.t, false);
	facts_done(&f);
	kilt_recipe_free(r);
}

static void test_recipe__edit_distance(void **state)
{
	(void)state;
	assert_int_equal(kilt_recipe_edit_distance("", ""), 0);
	assert_int_equal(kilt_recipe_edit_distance("entrypoint", "entrypiont"), 2);
	assert_int_equal(kilt_recipe_edit_distance("mount", "mounts"), 1);
	assert_int_equal(kilt_recipe_edit_distance("abc", ""), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recipe__shellwords_plain),
		cmocka_unit_test(test_recipe__shellwords_quotes),
		cmocka_unit_test(test_recipe__shellwords_backslash),
		cmocka_unit_test(test_recipe__shellwords_no_expansion),
		cmocka_unit_test(test_recipe__shellwords_comments),
		cmocka_unit_test(test_recipe__shellwords_errors),
		cmocka_unit_test(test_recipe__platform_normalize),
		cmocka_unit_test(test_recipe__supports_platform),
		cmocka_unit_test(test_recipe__name_and_hash),
		cmocka_unit_test(test_recipe__falco_launcher_argv),
		cmocka_unit_test(test_recipe__spellings_give_one_plan),
		cmocka_unit_test(test_recipe__unknown_fact_is_an_error),
		cmocka_unit_test(test_recipe__optional_fact),
		cmocka_unit_test(test_recipe__config_placeholder_long_paths),
		cmocka_unit_test(test_recipe__env_merge),
		cmocka_unit_test(test_recipe__reads_environment),
		cmocka_unit_test(test_recipe__reads_metadata),
		cmocka_unit_test(test_recipe__check_reports_every_error),
		cmocka_unit_test(test_recipe__load_string_errors_are_located),
		cmocka_unit_test(test_recipe__nul_in_argv_or_env),
		cmocka_unit_test(test_recipe__image_check_remembers_only_valid),
		cmocka_unit_test(test_recipe__template_equals_full),
		cmocka_unit_test(test_recipe__intrinsic_argv_element_parity),
		cmocka_unit_test(test_recipe__marker_bytes_in_facts),
		cmocka_unit_test(test_recipe__long_text_before_marker),
		cmocka_unit_test(test_recipe__threads),
		cmocka_unit_test(test_recipe__many_configs),
		cmocka_unit_test(test_recipe__shared_plans),
		cmocka_unit_test(test_recipe__shared_plans_threads),
		cmocka_unit_test(test_recipe__members),
		cmocka_unit_test(test_recipe__edit_distance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
