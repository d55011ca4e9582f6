/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the HOCON module: every construct of the language, substitutions with context,
 * includes (with real files in a temporary folder), origins, limits, each error with its
 * line:column. The equivalence suites are in test_hocon_equiv.c and test_hocon_conformance.c. */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "hocon-test-util.h"
#include "internal.h"
#include "kilt.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *resolve_ctx(const char *text, const json_t *ctx, struct kilt_error *err)
{
	struct kilt_hocon *doc = NULL;
	if (kilt_hocon_parse_string(text, strlen(text), "t.conf", NULL, &doc, err) < 0)
		return NULL;
	json_t *out = NULL;
	int r = kilt_hocon_resolve(doc, ctx, NULL, &out, err);
	kilt_hocon_free(doc);
	return r < 0 ? NULL : out;
}

#define assert_hocon(text, want) assert_hocon_ctx(text, NULL, want, __LINE__)

static void assert_hocon_ctx(const char *text, const char *ctx_json, const char *want, int line)
{
	struct kilt_error err = { 0 };
	json_t *ctx = ctx_json ? json_loads(ctx_json, 0, NULL) : NULL;
	json_t *got = resolve_ctx(text, ctx, &err);
	json_decref(ctx);
	if (!got) {
		char buf[1024];
		fail_msg("line %d: unexpected error: %s", line,
			 kilt_error_format(&err, buf, sizeof(buf)));
	}
	json_error_t jerr;
	json_t *exp = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!exp)
		fail_msg("line %d: bad expectation %s: %s", line, want, jerr.text);
	char why[1024] = "";
	if (!hocon_json_same(exp, got, "$", why, sizeof(why))) {
		char *g = json_dumps(got, JSON_COMPACT);
		print_error("got %s\n", g);
		free(g);
		fail_msg("line %d: %s", line, why);
	}
	json_decref(exp);
	json_decref(got);
}

/* Asserts that `text` fails with "t.conf:LINE:COL: <msg containing want>". */
#define assert_hocon_error(text, l, c, want) assert_error_ctx(text, NULL, l, c, want, __LINE__)

static void assert_error_ctx(const char *text, const json_t *ctx, unsigned l, unsigned c,
			     const char *want, int line)
{
	struct kilt_error err = { 0 };
	json_t *got = resolve_ctx(text, ctx, &err);
	if (got) {
		char *g = json_dumps(got, JSON_COMPACT);
		print_error("got %s\n", g);
		free(g);
		json_decref(got);
		fail_msg("line %d: expected an error containing '%s'", line, want);
	}
	char buf[1024];
	kilt_error_format(&err, buf, sizeof(buf));
	if (err.code >= 0 || err.line != l || err.column != c || !strstr(err.msg, want))
		fail_msg("line %d: expected %u:%u '%s', got '%s' (code %d)", line, l, c, want, buf,
			 err.code);
}

static char tmpdir[PATH_MAX];

static void write_file(const char *rel, const char *text)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	char cmd[PATH_MAX * 2 + 32];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	assert_int_equal(system(cmd), 0);
	*slash = '/';
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static json_t *load_tmp(const char *rel, struct kilt_error *err)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	json_t *out = NULL;
	return kilt_hocon_load_file(path, NULL, &out, err) < 0 ? NULL : out;
}

static int setup_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kilt-test-hocon-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- syntax ---------------------------------------------------------------------------------- */

static void test_hocon__comments(void **state)
{
	(void)state;
	assert_hocon("# hash\n// slashes\na = 1 # trailing\nb = 2 // trailing\n"
		     "c = \"# not a comment\"\nd = x//y\n",
		     "{\"a\":1,\"b\":2,\"c\":\"# not a comment\",\"d\":\"x\"}");
}

static void test_hocon__quoted_strings(void **state)
{
	(void)state;
	assert_hocon(
		"a = \"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\"\nb = \"\\u00e9\\u20ac\\ud83d\\ude00\"\n"
		"c = \"\"\n",
		"{\"a\":\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\",\"b\":\"\\u00e9\\u20ac\\ud83d\\ude00\","
		"\"c\":\"\"}");
	assert_hocon("a = \"x\\u0000y\"", "{\"a\":\"x\\u0000y\"}");
}

static void test_hocon__unquoted_strings(void **state)
{
	(void)state;
	assert_hocon("a = foo\nb = /usr/bin/x\nc = a.b-c_d\nd = truefoo\ne = footrue\nf = bar10.0\n"
		     "g = include\n",
		     "{\"a\":\"foo\",\"b\":\"/usr/bin/x\",\"c\":\"a.b-c_d\",\"d\":\"truefoo\","
		     "\"e\":\"footrue\",\"f\":\"bar10.0\",\"g\":\"include\"}");
}

static void test_hocon__triple_quotes(void **state)
{
	(void)state;
	assert_hocon("a = \"\"\"multi\nline \\n \"quoted\" \"\"\"\nb = \"\"\"x\"\"\"\"\n",
		     "{\"a\":\"multi\\nline \\\\n \\\"quoted\\\" \",\"b\":\"x\\\"\"}");
	assert_hocon_error("a = \"\"\"never closed\n", 1, 5, "unterminated triple-quoted string");
}

static void test_hocon__numbers(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	json_t *j =
		resolve_ctx("i = 42\nn = -7\nr = 1.5\ne = 1e3\nz = 0\nbig = 99999999999999999999\n"
			    "s = 10.0bar\np = 1.2.3\n",
			    NULL, &err);
	assert_non_null(j);
	assert_true(json_is_integer(json_object_get(j, "i")));
	assert_int_equal(json_integer_value(json_object_get(j, "i")), 42);
	assert_int_equal(json_integer_value(json_object_get(j, "n")), -7);
	assert_true(json_is_real(json_object_get(j, "r")));
	assert_true(json_is_real(json_object_get(j, "e")));
	assert_true(json_real_value(json_object_get(j, "e")) == 1000.0);
	assert_true(json_is_integer(json_object_get(j, "z")));
	assert_true(json_is_real(json_object_get(j, "big")));
	assert_string_equal(json_string_value(json_object_get(j, "s")), "10.0bar");
	assert_string_equal(json_string_value(json_object_get(j, "p")), "1.2.3");
	json_decref(j);
	/* numbers concatenate as written */
	assert_hocon("a = 1e5 x\nb = 1.50 ${c}\nc = 2.50\n",
		     "{\"a\":\"1e5 x\",\"b\":\"1.50 2.5\",\"c\":2.5}");
}

static void test_hocon__booleans_null(void **state)
{
	(void)state;
	assert_hocon("t = true\nf = false\nn = null\ns = true false null\n",
		     "{\"t\":true,\"f\":false,\"n\":null,\"s\":\"true false null\"}");
}

static void test_hocon__separators(void **state)
{
	(void)state;
	assert_hocon("a = 1\nb : 2\nc { d = 3 }\ne = { f : 4 }, g = [1,2,]\nh = [\n1\n2\n]\n"
		     "i {}\n",
		     "{\"a\":1,\"b\":2,\"c\":{\"d\":3},\"e\":{\"f\":4},\"g\":[1,2],\"h\":[1,2],"
		     "\"i\":{}}");
}

static void test_hocon__root_braces(void **state)
{
	(void)state;
	assert_hocon("{ a = 1 }", "{\"a\":1}");
	assert_hocon("a = 1", "{\"a\":1}");
	assert_hocon("", "{}");
	assert_hocon("  \n# only a comment\n", "{}");
	assert_hocon("[1, 2]", "[1,2]");
	assert_hocon("\xEF\xBB\xBF{ \"bom\" : 1 }", "{\"bom\":1}");
}

static void test_hocon__unicode_whitespace(void **state)
{
	(void)state;
	/* NBSP and U+2003 separate like spaces; U+2028 is whitespace too */
	assert_hocon("a\xC2\xA0=\xE2\x80\x83 1\nb = x\xC2\xA0y\n",
		     "{\"a\":1,\"b\":\"x\xC2\xA0y\"}");
}

static void test_hocon__duplicate_keys_merge(void **state)
{
	(void)state;
	assert_hocon("foo { a = 42 }\nfoo { b = 43 }\n", "{\"foo\":{\"a\":42,\"b\":43}}");
	assert_hocon("foo { a = 42 }\nfoo = null\nfoo { b = 43 }\n", "{\"foo\":{\"b\":43}}");
	assert_hocon("a = 1\na = 2\n", "{\"a\":2}");
	assert_hocon("a = {x = 1}\na = 5\n", "{\"a\":5}");
	assert_hocon("a { x { p = 1 } }\na { x { q = 2 }, y = 3 }\n",
		     "{\"a\":{\"x\":{\"p\":1,\"q\":2},\"y\":3}}");
}

static void test_hocon__path_keys(void **state)
{
	(void)state;
	assert_hocon("a.b.c = 1\na.b.d = 2\na.e = 3\n",
		     "{\"a\":{\"b\":{\"c\":1,\"d\":2},\"e\":3}}");
	assert_hocon("\"a.b\" = 1\na.\"b.c\".d = 2\na.\"\".b = 3\n",
		     "{\"a.b\":1,\"a\":{\"b.c\":{\"d\":2},\"\":{\"b\":3}}}");
	assert_hocon("true : 1\n3 : 2\n3.14 : 3\na b c : 4\nfoo include : 5\n\"include\" : 6\n",
		     "{\"true\":1,\"3\":{\"14\":3},\"a b c\":4,\"foo include\":5,\"include\":6}");
	assert_hocon_error("a..b = 1", 1, 3, "empty element");
	assert_hocon_error("a. = 1", 1, 2, "ends with '.'");
	assert_hocon_error(".a = 1", 1, 1, "empty element");
}

static void test_hocon__plus_equals(void **state)
{
	(void)state;
	assert_hocon("a += 1\na += 2\n", "{\"a\":[1,2]}");
	assert_hocon("a = [0]\na += 1\n", "{\"a\":[0,1]}");
	assert_hocon("x { y += a }\nx { y += b }\n", "{\"x\":{\"y\":[\"a\",\"b\"]}}");
	assert_hocon("a += [1]\n", "{\"a\":[[1]]}");
	assert_hocon_error("a = 1\na += 2\n", 2, 6, "cannot concatenate a number with an array");
}

static void test_hocon__concatenation(void **state)
{
	(void)state;
	assert_hocon("a = foo bar   baz  \nb = \"x\" y \"z\"\nc = [ 1 2 3 ]\n",
		     "{\"a\":\"foo bar   baz\",\"b\":\"x y z\",\"c\":[\"1 2 3\"]}");
	assert_hocon("a = [1, 2] [3]\nb = {x = 1} {y = 2}\nc = [ [1] [2] ]\nd = [ [1]\n [2] ]\n",
		     "{\"a\":[1,2,3],\"b\":{\"x\":1,\"y\":2},\"c\":[[1,2]],\"d\":[[1],[2]]}");
	assert_hocon_error("a = [1] x", 1, 9, "cannot concatenate an array with a string");
	assert_hocon_error("a = {} [1]", 1, 8, "cannot concatenate an object with an array");
	assert_hocon_error("a = [1] \" \" [2]", 1, 9, "cannot concatenate an array with a string");
}

/* ---- substitutions --------------------------------------------------------------------------- */

static void test_hocon__substitutions(void **state)
{
	(void)state;
	assert_hocon("a = 1\nb = ${a}\nc = ${d.e}\nd.e = [x]\n",
		     "{\"a\":1,\"b\":1,\"c\":[\"x\"],\"d\":{\"e\":[\"x\"]}}");
	/* forward references see the final value */
	assert_hocon("b = ${a}\na = 1\na = 2\n", "{\"a\":2,\"b\":2}");
	/* objects referring into themselves */
	assert_hocon("bar { foo = 42, baz = ${bar.foo} }\nbar { foo = 43 }\n",
		     "{\"bar\":{\"foo\":43,\"baz\":43}}");
	assert_hocon("bar : { a : ${foo.d}, b : 1 }\nbar.b = 3\nfoo : { c : ${bar.b}, d : 2 }\n"
		     "foo.d = 4\n",
		     "{\"bar\":{\"a\":4,\"b\":3},\"foo\":{\"c\":3,\"d\":4}}");
	/* quoted path segments */
	assert_hocon("\"a.b\" = 1\nc = ${\"a.b\"}\n", "{\"a.b\":1,\"c\":1}");
	/* a hidden substitution is never evaluated */
	assert_hocon("foo = ${does-not-exist}\nfoo = 42\n", "{\"foo\":42}");
	/* substitution of an object then merge: inheritance */
	assert_hocon("g { size = 6 }\neast = ${g} { name = east }\n",
		     "{\"g\":{\"size\":6},\"east\":{\"size\":6,\"name\":\"east\"}}");
}

static void test_hocon__substitution_in_concatenation(void **state)
{
	(void)state;
	assert_hocon("name = world\na = hello ${name}.\nb = ${name}\" x \"${name}\n"
		     "n = 5\nc = port ${n}\nt = true\nd = ${t} ${n}\n",
		     "{\"name\":\"world\",\"a\":\"hello world.\",\"b\":\"world x world\",\"n\":5,"
		     "\"c\":\"port 5\",\"t\":true,\"d\":\"true 5\"}");
	assert_hocon("l = [1]\na = ${l} [2] ${l}\n", "{\"l\":[1],\"a\":[1,2,1]}");
	assert_hocon("o = {x = 1}\na = ${o} {y = 2}\n",
		     "{\"o\":{\"x\":1},\"a\":{\"x\":1,\"y\":2}}");
	assert_hocon_error("o = {x = 1}\na = ${o} y\n", 2, 10,
			   "cannot concatenate an object with a string");
}

static void test_hocon__self_reference(void **state)
{
	(void)state;
	assert_hocon("path = \"/bin\"\npath = ${path}\":/usr/bin\"\n",
		     "{\"path\":\"/bin:/usr/bin\"}");
	assert_hocon("a = [x]\na = ${a} [y]\n", "{\"a\":[\"x\",\"y\"]}");
	assert_hocon("a = ${?a}foo\n", "{\"a\":\"foo\"}");
	assert_hocon("foo : { a : { c : 1 } }\nfoo : ${foo.a}\nfoo : { a : 2 }\n",
		     "{\"foo\":{\"a\":2,\"c\":1}}");
	assert_hocon("foo { a = 1 }\nfoo = ${foo}\n", "{\"foo\":{\"a\":1}}");
	assert_hocon("foo = ${?foo}\n", "{}");
	assert_hocon("a = 1\nb = ${a}\na = ${b}\n", "{\"a\":1,\"b\":1}");
	assert_hocon_error("foo = ${foo}\n", 1, 7, "unresolved substitution ${foo}");
	assert_hocon_error("foo = ${foo}\nfoo = {a = 1}\nfoo = ${bar}\n", 3, 7,
			   "unresolved substitution ${bar}");
}

static void test_hocon__cycles(void **state)
{
	(void)state;
	assert_hocon_error("bar = ${foo}\nfoo = ${bar}\n", 2, 7, "substitution cycle: ${bar}");
	assert_hocon_error("a = ${b}\nb = ${c}\nc = ${a}\n", 3, 5, "substitution cycle: ${a}");
	assert_hocon_error("a { b = ${a} }\n", 1, 9, "substitution cycle: ${a}");
	assert_hocon_error("a = [${a}]\n", 1, 6, "substitution cycle: ${a}");
	/* an optional reference through a cycle is simply absent */
	assert_hocon("a { b = ${?a} }\n", "{\"a\":{}}");
}

static void test_hocon__optional_substitutions(void **state)
{
	(void)state;
	assert_hocon("a = ${?nope}\nb = ${?x.y.z}\nc = ${?a}\n", "{}");
	assert_hocon("a = 1\na = ${?nope}\n", "{\"a\":1}");
	assert_hocon("a = [ ${?nope}, 1, ${?nope} ${?nope2}, 2 ]\n", "{\"a\":[1,2]}");
	assert_hocon("a = ${?nope} [1]\nb = x ${?nope}\nc = ${?n}${?m}\n",
		     "{\"a\":[1],\"b\":\"x\"}");
	assert_hocon("a = { x = ${?nope} }\n", "{\"a\":{}}");
}

static void test_hocon__no_environment_fallback(void **state)
{
	(void)state;
	setenv("KILT_TEST_SECRET", "leaked", 1);
	assert_hocon_error("a = ${KILT_TEST_SECRET}\n", 1, 5,
			   "unresolved substitution ${KILT_TEST_SECRET}");
	assert_hocon("a = ${?KILT_TEST_SECRET}\n", "{}");
	assert_hocon_error("a = ${HOME}\n", 1, 5, "${HOME}");
	unsetenv("KILT_TEST_SECRET");
}

static void test_hocon__context(void **state)
{
	(void)state;
	const char *ctx = "{\"original\":{\"image\":\"nginx\",\"entrypoint\":[\"/e\",\"x\"],"
			  "\"n\":3,\"o\":{\"k\":\"v\"}},\"config\":{\"mode\":\"fast\"}}";
	assert_hocon_ctx(
		"ep = [ /pdig ] ${original.entrypoint}\nimg = \"image=\"${original.image}\n"
		"n = ${original.n}\no = ${original.o}\nm = ${?config.mode}\n"
		"x = ${?config.missing}\n",
		ctx,
		"{\"ep\":[\"/pdig\",\"/e\",\"x\"],\"img\":\"image=nginx\",\"n\":3,"
		"\"o\":{\"k\":\"v\"},\"m\":\"fast\"}",
		__LINE__);
	/* the document wins over the context; context never shows up by itself */
	assert_hocon_ctx("original.image = mine\na = ${original.image}\n", ctx,
			 "{\"original\":{\"image\":\"mine\"},\"a\":\"mine\"}", __LINE__);
	assert_hocon_ctx("a = 1\n", ctx, "{\"a\":1}", __LINE__);
	json_t *c = json_loads(ctx, 0, NULL);
	assert_error_ctx("a = ${original.name}\n", c, 1, 5,
			 "original.name is not set in the document or the context", __LINE__);
	json_decref(c);
}

static void test_hocon__resolve_many_times(void **state)
{
	(void)state;
	const char *text = "a = [ /pdig ] ${original.entrypoint}\nb = ${original.name}-x\n"
			   "c { d = ${b} }\n";
	struct kilt_error err = { 0 };
	struct kilt_hocon *doc = NULL;
	assert_int_equal(kilt_hocon_parse_string(text, strlen(text), "t.conf", NULL, &doc, &err),
			 0);
	for (int i = 0; i < 50; i++) {
		json_t *ctx = json_pack("{s:{s:[si],s:s+}}", "original", "entrypoint", "/e", i,
					"name", "n", i % 2 ? "1" : "2");
		json_t *out = NULL;
		assert_int_equal(kilt_hocon_resolve(doc, ctx, NULL, &out, &err), 0);
		assert_int_equal(json_integer_value(json_array_get(json_object_get(out, "a"), 2)),
				 i);
		assert_string_equal(json_string_value(json_object_get(out, "b")),
				    i % 2 ? "n1-x" : "n2-x");
		/* the result is a plain tree the caller may change */
		json_object_set_new(json_object_get(out, "c"), "new", json_true());
		json_decref(out);
		json_decref(ctx);
	}
	kilt_hocon_free(doc);
}

static void test_hocon__result_not_shared(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	json_t *j = resolve_ctx("a { x = 1 }\nb = ${a}\nc = [${a}, ${a}]\n", NULL, &err);
	assert_non_null(j);
	json_t *a = json_object_get(j, "a"), *b = json_object_get(j, "b");
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(json_array_get(json_object_get(j, "c"), 0),
			     json_array_get(json_object_get(j, "c"), 1));
	json_object_set_new(b, "y", json_true());
	assert_null(json_object_get(a, "y"));
	json_decref(j);
}

struct thread_arg {
	const struct kilt_hocon *doc;
	int ok;
};

static void *resolve_thread(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 200; i++) {
		json_t *ctx = json_pack("{s:{s:i}}", "original", "n", i);
		json_t *out = NULL;
		struct kilt_error err = { 0 };
		if (kilt_hocon_resolve(a->doc, ctx, NULL, &out, &err) == 0 &&
		    json_integer_value(json_object_get(out, "n")) == i)
			a->ok++;
		json_decref(out);
		json_decref(ctx);
	}
	return NULL;
}

static void test_hocon__concurrent_resolve(void **state)
{
	(void)state;
	const char *text = "n = ${original.n}\nl = [ ${n} ] [ 2 ]\no { p = ${n} }\n";
	struct kilt_error err = { 0 };
	struct kilt_hocon *doc = NULL;
	assert_int_equal(kilt_hocon_parse_string(text, strlen(text), "t.conf", NULL, &doc, &err),
			 0);
	pthread_t t[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ doc, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, resolve_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].ok, 200);
	}
	kilt_hocon_free(doc);
}

/* ---- includes -------------------------------------------------------------------------------- */

static void test_hocon__includes(void **state)
{
	(void)state;
	write_file("inc/main.conf", "a = 1\ninclude \"sub/part.conf\"\n"
				    "nested { include file(\"sub/part.conf\") }\n"
				    "merged { include \"multi\" }\n"
				    "req { include required(\"sub/part.conf\") }\n"
				    "include \"missing.conf\"\nb = ${a}\n");
	write_file("inc/sub/part.conf", "p = 2\nq = ${?p}\ninclude \"deeper/d.json\"\n");
	write_file("inc/sub/deeper/d.json", "{ \"d\" : true }");
	write_file("inc/multi.conf", "x = conf\nc = from-conf\n");
	write_file("inc/multi.json", "{ \"x\" : \"json\", \"j\" : 1 }");
	write_file("inc/multi.properties", "x = props\np.q = v\n");
	struct kilt_error err = { 0 };
	json_t *j = load_tmp("inc/main.conf", &err);
	if (!j)
		fail_msg("%s:%u:%u: %s", err.file, err.line, err.column, err.msg);
	json_t *want = json_loads("{\"a\":1,\"p\":2,\"q\":2,\"d\":true,"
				  "\"nested\":{\"p\":2,\"q\":2,\"d\":true},"
				  "\"merged\":{\"x\":\"conf\",\"c\":\"from-conf\",\"j\":1,"
				  "\"p\":{\"q\":\"v\"}},"
				  "\"req\":{\"p\":2,\"q\":2,\"d\":true},\"b\":1}",
				  0, NULL);
	char why[512] = "";
	if (!hocon_json_same(want, j, "$", why, sizeof(why)))
		fail_msg("%s", why);
	json_decref(want);
	json_decref(j);
}

static void test_hocon__include_fixup(void **state)
{
	(void)state;
	/* ${x} in an included file looks at the include site first, then the root */
	write_file("fix/main.conf", "a { include \"foo.conf\" }\na { x = 42 }\ntop = 7\n");
	write_file("fix/foo.conf", "x = 10\ny = ${x}\nz = ${top}\n");
	struct kilt_error err = { 0 };
	json_t *j = load_tmp("fix/main.conf", &err);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "a"), "y")), 42);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "a"), "z")), 7);
	json_decref(j);
}

static void test_hocon__include_errors(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	write_file("err/req.conf", "a = 1\n  include required(\"nope.conf\")\n");
	assert_null(load_tmp("err/req.conf", &err));
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 3);
	assert_non_null(strstr(err.msg, "cannot include \"nope.conf\""));
	assert_non_null(strstr(err.msg, "No such file or directory"));

	write_file("err/reqnoext.conf", "include required(\"nope\")\n");
	assert_null(load_tmp("err/reqnoext.conf", &err));
	assert_non_null(strstr(err.msg, "none of"));

	write_file("err/url.conf", "include url(\"http://example.com/x.conf\")\n");
	assert_null(load_tmp("err/url.conf", &err));
	assert_int_equal(err.code, -EOPNOTSUPP);
	assert_non_null(strstr(err.msg, "not supported"));

	write_file("err/cp.conf", "include classpath(\"x.conf\")\n");
	assert_null(load_tmp("err/cp.conf", &err));
	assert_non_null(strstr(err.msg, "not supported"));

	write_file("err/heur.conf", "include \"https://example.com/x.conf\"\n");
	assert_null(load_tmp("err/heur.conf", &err));
	assert_non_null(strstr(err.msg, "not supported"));

	write_file("err/cycle.conf", "a = 1\ninclude \"cycle2.conf\"\n");
	write_file("err/cycle2.conf", "include \"cycle.conf\"\n");
	assert_null(load_tmp("err/cycle.conf", &err));
	assert_int_equal(err.code, -ELOOP);
	assert_non_null(strstr(err.msg, "include cycle"));
	assert_non_null(strstr(err.file, "cycle2.conf"));

	write_file("err/arr.conf", "include \"arr.json\"\n");
	write_file("err/arr.json", "[1]");
	assert_null(load_tmp("err/arr.conf", &err));
	assert_non_null(strstr(err.msg, "must contain an object"));

	write_file("err/bad.conf", "include \"badinner.conf\"\n");
	write_file("err/badinner.conf", "x = 1\ny = }\n");
	assert_null(load_tmp("err/bad.conf", &err));
	assert_non_null(strstr(err.file, "badinner.conf"));
	assert_int_equal(err.line, 2);
	assert_int_equal(err.column, 5);

	char dirinc[PATH_MAX];
	snprintf(dirinc, sizeof(dirinc), "include \"sub.conf\"\n");
	write_file("err/dir.conf", dirinc);
	write_file("err/sub.conf/x", "");
	assert_null(load_tmp("err/dir.conf", &err));
	assert_non_null(strstr(err.msg, "Is a directory"));

	assert_hocon_error("include foo\n", 1, 9, "expected a quoted file name");
	assert_hocon_error("include required(\"x.conf\"\n", 2, 1, "expected ')'");
}

static void test_hocon__properties(void **state)
{
	(void)state;
	write_file("props/main.conf", "include \"p.properties\"\n");
	write_file("props/p.properties", "# comment\n! also a comment\n"
					 "a.b = 1\na.c : two\nd e\nlong = first \\\n    second\n"
					 "esc = tab\\tnew\\nu\\u00e9\nempty =\n"
					 "s = str\ns.t = obj\n"
					 "  spaced   =   v  \n");
	struct kilt_error err = { 0 };
	json_t *j = load_tmp("props/main.conf", &err);
	if (!j)
		fail_msg("%s", err.msg);
	json_t *want = json_loads("{\"a\":{\"b\":\"1\",\"c\":\"two\"},\"d\":\"e\","
				  "\"long\":\"first second\",\"esc\":\"tab\\tnew\\nu\\u00e9\","
				  "\"empty\":\"\",\"s\":{\"t\":\"obj\"},\"spaced\":\"v  \"}",
				  0, NULL);
	char why[512] = "";
	if (!hocon_json_same(want, j, "$", why, sizeof(why)))
		fail_msg("%s", why);
	json_decref(want);
	json_decref(j);
}

/* ---- origins --------------------------------------------------------------------------------- */

static void test_hocon__origins(void **state)
{
	(void)state;
	const char *text = "deploy {\n  image = x\n  mount = [\n    { image = y }\n    z\n  ]\n}\n"
			   "deploy.image = w\n\"a.b\" { c = ${deploy.image} }\n"
			   "e = ${original.e}\n";
	struct kilt_error err = { 0 };
	struct kilt_hocon *doc = NULL;
	assert_int_equal(kilt_hocon_parse_string(text, strlen(text), "r.conf", NULL, &doc, &err),
			 0);
	json_t *ctx = json_pack("{s:{s:{s:i}}}", "original", "e", "k", 1);
	struct kilt_hocon_origins *o = NULL;
	json_t *out = NULL;
	assert_int_equal(kilt_hocon_resolve(doc, ctx, &o, &out, &err), 0);
	const char *file;
	unsigned line, col;
	assert_true(kilt_hocon_origins_get(o, "deploy.image", &file, &line, &col));
	assert_string_equal(file, "r.conf");
	assert_int_equal(line, 8);
	assert_int_equal(col, 16);
	assert_true(kilt_hocon_origins_get(o, "deploy.mount", &file, &line, &col));
	assert_int_equal(line, 3);
	assert_int_equal(col, 11);
	assert_true(kilt_hocon_origins_get(o, "deploy.mount[0].image", &file, &line, &col));
	assert_int_equal(line, 4);
	assert_int_equal(col, 15);
	assert_true(kilt_hocon_origins_get(o, "deploy.mount[1]", &file, &line, &col));
	assert_int_equal(line, 5);
	assert_int_equal(col, 5);
	assert_true(kilt_hocon_origins_get(o, "\"a.b\".c", &file, &line, &col));
	assert_int_equal(line, 9);
	assert_int_equal(col, 13);
	assert_true(kilt_hocon_origins_get(o, "e.k", &file, &line, &col));
	assert_int_equal(line, 10);
	assert_int_equal(col, 5);
	assert_false(kilt_hocon_origins_get(o, "deploy.nope", &file, &line, &col));
	assert_false(kilt_hocon_origins_get(NULL, "deploy", &file, &line, &col));
	kilt_hocon_origins_free(o);
	kilt_hocon_origins_free(NULL);
	json_decref(out);
	json_decref(ctx);
	kilt_hocon_free(doc);
}

/* ---- limits ---------------------------------------------------------------------------------- */

/* Substitutions may not build a result nested deeper than max_depth: the nesting of the text is
 * limited, but a value placed inside another (directly or from the memo) used to add up, so a
 * small document made a result deep enough for recursive walks to overflow the stack. */
static void test_hocon__resolved_depth_limit(void **state)
{
	(void)state;
	struct kilt_hocon_limits lim;
	kilt_hocon_limits_default(&lim);
	lim.max_depth = 3;
	static const char *const bad[] = {
		"a { b = ${c} }\nc { d { e = 1 } }\n", /* resolved in place */
		"x = 1\nc { d { e = ${x} } }\na { b = ${c} }\n", /* c comes from the memo */
		"x = 1\nc { d { e = ${x} } }\na { b = [ ${c.d} ] }\n", /* a member of c */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct kilt_hocon *doc = NULL;
		struct kilt_error err = { 0 };
		assert_int_equal(
			kilt_hocon_parse_string(bad[i], strlen(bad[i]), "r.conf", &lim, &doc, &err),
			0);
		json_t *out = NULL;
		assert_int_equal(kilt_hocon_resolve(doc, NULL, NULL, &out, &err), -E2BIG);
		assert_null(out);
		if (!strstr(err.msg, "nested deeper than the limit of 3"))
			fail_msg("case %zu: %s", i, err.msg);
		assert_true(err.line > 0);
		kilt_hocon_free(doc);
	}
	/* Looking up members of a large value from the memo does not walk all of it each time:
	 * N lookups into an N-key value stay far below the budget. */
	struct kbuf big;
	kbuf_init(&big, SIZE_MAX);
	const unsigned n = 4000;
	kbuf_adds(&big, "t {\n");
	for (unsigned i = 0; i < n; i++)
		kbuf_printf(&big, "k%u { x = ${v} }\n", i);
	kbuf_adds(&big, "}\nv = 1\nbase = ${t}\nuse {\n");
	for (unsigned i = 0; i < n; i++)
		kbuf_printf(&big, "u%u = ${base.k%u}\n", i, i);
	kbuf_adds(&big, "}\n");
	{
		struct kilt_hocon *bdoc = NULL;
		struct kilt_error berr = { 0 };
		assert_int_equal(
			kilt_hocon_parse_string(big.data, big.len, "big.conf", NULL, &bdoc, &berr),
			0);
		json_t *bout = NULL;
		if (kilt_hocon_resolve(bdoc, NULL, NULL, &bout, &berr) < 0)
			fail_msg("%s", berr.msg);
		assert_int_equal(json_object_size(json_object_get(bout, "use")), n);
		json_decref(bout);
		kilt_hocon_free(bdoc);
	}
	kbuf_done(&big);

	/* Exactly at the limit is fine. */
	const char *ok = "x = 1\nc { d = ${x} }\na { b = ${c} }\n";
	struct kilt_hocon *doc = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_hocon_parse_string(ok, strlen(ok), "r.conf", &lim, &doc, &err), 0);
	json_t *out = NULL;
	assert_int_equal(kilt_hocon_resolve(doc, NULL, NULL, &out, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_object_get(out, "a"), "b"), "d")),
			 1);
	json_decref(out);
	kilt_hocon_free(doc);
}

static void test_hocon__limits(void **state)
{
	(void)state;
	struct kilt_hocon_limits lim;
	kilt_hocon_limits_default(&lim);
	assert_int_equal(lim.max_input_bytes, 8u << 20);
	assert_int_equal(lim.max_depth, 128);
	assert_int_equal(lim.max_include_depth, 16);
	assert_int_equal(lim.max_subst_depth, 64);

	struct kilt_error err = { 0 };
	struct kilt_hocon *doc = NULL;
	lim.max_input_bytes = 10;
	assert_int_equal(
		kilt_hocon_parse_string("a = 12345678901", 15, "big.conf", &lim, &doc, &err),
		-EFBIG);
	assert_non_null(strstr(err.msg, "more than the limit of 10 bytes"));

	kilt_hocon_limits_default(&lim);
	lim.max_depth = 3;
	assert_int_equal(
		kilt_hocon_parse_string("a { b { c = 1 } }", 17, "d.conf", &lim, &doc, &err), 0);
	kilt_hocon_free(doc);
	assert_true(kilt_hocon_parse_string("a { b { c { d = 1 } } }", 23, "d.conf", &lim, &doc,
					    &err) < 0);
	assert_int_equal(err.code, -E2BIG);
	assert_int_equal(err.column, 11);
	assert_non_null(strstr(err.msg, "nested deeper than the limit of 3"));
	assert_true(kilt_hocon_parse_string("a.b.c.d = 1", 11, "d.conf", &lim, &doc, &err) < 0);
	assert_non_null(strstr(err.msg, "nested deeper than the limit of 3"));
	assert_true(kilt_hocon_parse_string("a = [[[[1]]]]", 13, "d.conf", &lim, &doc, &err) < 0);
	assert_non_null(strstr(err.msg, "nested deeper"));

	kilt_hocon_limits_default(&lim);
	lim.max_subst_depth = 3;
	const char *chain = "a = ${b}\nb = ${c}\nc = ${d}\nd = 1\n";
	assert_int_equal(kilt_hocon_parse_string(chain, strlen(chain), "s.conf", &lim, &doc, &err),
			 0);
	json_t *out = NULL;
	assert_int_equal(kilt_hocon_resolve(doc, NULL, NULL, &out, &err), 0);
	json_decref(out);
	kilt_hocon_free(doc);
	const char *chain2 = "a = ${b}\nb = ${c}\nc = ${d}\nd = ${e}\ne = 1\n";
	assert_int_equal(
		kilt_hocon_parse_string(chain2, strlen(chain2), "s.conf", &lim, &doc, &err), 0);
	assert_int_equal(kilt_hocon_resolve(doc, NULL, NULL, &out, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "substitutions nested deeper than the limit of 3"));
	kilt_hocon_free(doc);

	kilt_hocon_limits_default(&lim);
	lim.max_include_depth = 2;
	write_file("lim/l0.conf", "include \"l1.conf\"\n");
	write_file("lim/l1.conf", "include \"l2.conf\"\n");
	write_file("lim/l2.conf", "include \"l3.conf\"\n");
	write_file("lim/l3.conf", "x = 1\n");
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/lim/l0.conf", tmpdir);
	assert_true(kilt_hocon_parse_file(path, &lim, &doc, &err) < 0);
	assert_non_null(strstr(err.msg, "includes nested deeper than the limit of 2"));
	assert_non_null(strstr(err.file, "l2.conf"));
	lim.max_include_depth = 3;
	assert_int_equal(kilt_hocon_parse_file(path, &lim, &doc, &err), 0);
	kilt_hocon_free(doc);
	doc = NULL;
	/* A limit above what the parser can hold names the limit that applied, not the one asked. */
	lim.max_include_depth = 100;
	for (int i = 0; i < 80; i++) {
		char rel[64], text[64];
		snprintf(rel, sizeof(rel), "deep/d%d.conf", i);
		snprintf(text, sizeof(text), "include \"d%d.conf\"\n", i + 1);
		write_file(rel, text);
	}
	write_file("deep/d80.conf", "x = 1\n");
	snprintf(path, sizeof(path), "%s/deep/d0.conf", tmpdir);
	assert_true(kilt_hocon_parse_file(path, &lim, &doc, &err) < 0);
	if (!strstr(err.msg, "includes nested deeper than the limit of 63"))
		fail_msg("%s", err.msg);
	lim.max_include_depth = 3;
	snprintf(path, sizeof(path), "%s/lim/l0.conf", tmpdir);
	assert_int_equal(kilt_hocon_parse_file(path, &lim, &doc, &err), 0);
	kilt_hocon_free(doc);

	/* an included file is held to the input limit too */
	kilt_hocon_limits_default(&lim);
	lim.max_input_bytes = 20;
	write_file("lim/big.conf", "include \"bigger.conf\"\n");
	write_file("lim/bigger.conf", "a = 123456789012345678901234567890\n");
	snprintf(path, sizeof(path), "%s/lim/big.conf", tmpdir);
	assert_true(kilt_hocon_parse_file(path, &lim, &doc, &err) < 0);
	assert_non_null(strstr(err.msg, "larger than the limit of 20 bytes"));

	/* including the same file again and again is bounded by 16 x the input limit */
	lim.max_input_bytes = 64;
	write_file("lim/x.conf", "a += 12345678901234567890123456789012345678901234567890\n");
	write_file("lim/many.conf",
		   "include \"m1.conf\"\ninclude \"m1.conf\"\ninclude \"m1.conf\"\n");
	write_file("lim/m1.conf",
		   "include \"m2.conf\"\ninclude \"m2.conf\"\ninclude \"m2.conf\"\n");
	write_file("lim/m2.conf", "include \"x.conf\"\ninclude \"x.conf\"\ninclude \"x.conf\"\n");
	snprintf(path, sizeof(path), "%s/lim/many.conf", tmpdir);
	assert_true(kilt_hocon_parse_file(path, &lim, &doc, &err) < 0);
	assert_int_equal(err.code, -E2BIG);
	assert_non_null(strstr(err.msg, "would exceed 4096 files or 1024 bytes"));
	lim.max_input_bytes = 256;
	assert_int_equal(kilt_hocon_parse_file(path, &lim, &doc, &err), 0);
	kilt_hocon_free(doc);
}

static void test_hocon__expansion_budget(void **state)
{
	(void)state;
	/* each line doubles the previous one: must stop with an error, not eat the machine */
	struct kbuf b;
	kbuf_init(&b, 1 << 20);
	kbuf_adds(&b, "a0 = [1,2,3,4,5,6,7,8]\n");
	for (int i = 1; i < 60; i++)
		kbuf_printf(&b, "a%d = [${a%d}, ${a%d}]\n", i, i - 1, i - 1);
	struct kilt_error err = { 0 };
	json_t *j = resolve_ctx(b.data, NULL, &err);
	assert_null(j);
	assert_int_equal(err.code, -E2BIG);
	assert_non_null(strstr(err.msg, "grows beyond"));
	kbuf_done(&b);

	kbuf_init(&b, 1 << 20);
	kbuf_adds(&b, "s0 = xxxxxxxxxxxxxxxx\n");
	for (int i = 1; i < 60; i++)
		kbuf_printf(&b, "s%d = ${s%d}${s%d}\n", i, i - 1, i - 1);
	j = resolve_ctx(b.data, NULL, &err);
	assert_null(j);
	assert_non_null(strstr(err.msg, "grows beyond"));
	kbuf_done(&b);
}

/* ---- syntax errors --------------------------------------------------------------------------- */

static void test_hocon__syntax_errors(void **state)
{
	(void)state;
	assert_hocon_error("a = 1\nb = }\n", 2, 5, "expected a value, found '}'");
	assert_hocon_error("a = 1\n}\n", 2, 1, "found '}' without a matching '{'");
	assert_hocon_error("a { b = 1\n", 2, 1, "expected '}' to close the object opened at 1:3");
	assert_hocon_error("a = [1, 2\n", 2, 1, "expected ']' to close the array opened at 1:5");
	assert_hocon_error("a = [1,,2]", 1, 8, "expected an array element or ']' after ','");
	assert_hocon_error("a = [,1]", 1, 6, "expected an array element or ']', found ','");
	assert_hocon_error("a = 1,,b = 2", 1, 7, "expected a key after ','");
	assert_hocon_error("{ , a = 1 }", 1, 3, "expected a key or '}', found ','");
	assert_hocon_error("a [1]", 1, 3, "expected ':', '=', '+=' or '{' after a key, found '['");
	assert_hocon_error("a =", 1, 4, "expected a value, found end of input");
	assert_hocon_error("a = \"open\n", 1, 10, "newline inside a quoted string");
	assert_hocon_error("a = \"open", 1, 5, "unterminated quoted string");
	assert_hocon_error("a = \"\\x\"", 1, 6, "invalid escape in quoted string");
	assert_hocon_error("a = \"\\u12\"", 1, 8, "expected 4 hex digits");
	assert_hocon_error("a = \"\\ud800\"", 1, 6, "high surrogate");
	assert_hocon_error("a = \"tab\there\"", 1, 9, "control character 0x09");
	assert_hocon_error("a = 1 b = 2", 1, 9,
			   "expected ',' or a newline after a field, found '='");
	assert_hocon_error("a = ${}", 1, 7, "expected a path after '${', found '}'");
	assert_hocon_error("a = ${b", 1, 8, "expected '}' to close the substitution");
	assert_hocon_error("a = $b", 1, 5, "found '$'");
	assert_hocon_error("a = x ? y", 1, 7, "expected ',' or a newline after a field, found '?'");
	assert_hocon_error("{ a = 1 } b", 1, 11, "expected end of input after the root object");
	assert_hocon_error("[1] 2", 1, 5, "expected end of input after the root array");
	assert_hocon_error("a = 1e999", 1, 5, "out of range");
	assert_hocon_error("a = \xff", 1, 5, "invalid UTF-8");
	assert_hocon_error("a = ${x.}", 1, 8, "ends with '.'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hocon__comments),
		cmocka_unit_test(test_hocon__quoted_strings),
		cmocka_unit_test(test_hocon__unquoted_strings),
		cmocka_unit_test(test_hocon__triple_quotes),
		cmocka_unit_test(test_hocon__numbers),
		cmocka_unit_test(test_hocon__booleans_null),
		cmocka_unit_test(test_hocon__separators),
		cmocka_unit_test(test_hocon__root_braces),
		cmocka_unit_test(test_hocon__unicode_whitespace),
		cmocka_unit_test(test_hocon__duplicate_keys_merge),
		cmocka_unit_test(test_hocon__path_keys),
		cmocka_unit_test(test_hocon__plus_equals),
		cmocka_unit_test(test_hocon__concatenation),
		cmocka_unit_test(test_hocon__substitutions),
		cmocka_unit_test(test_hocon__substitution_in_concatenation),
		cmocka_unit_test(test_hocon__self_reference),
		cmocka_unit_test(test_hocon__cycles),
		cmocka_unit_test(test_hocon__optional_substitutions),
		cmocka_unit_test(test_hocon__no_environment_fallback),
		cmocka_unit_test(test_hocon__context),
		cmocka_unit_test(test_hocon__resolve_many_times),
		cmocka_unit_test(test_hocon__result_not_shared),
		cmocka_unit_test(test_hocon__concurrent_resolve),
		cmocka_unit_test(test_hocon__includes),
		cmocka_unit_test(test_hocon__include_fixup),
		cmocka_unit_test(test_hocon__include_errors),
		cmocka_unit_test(test_hocon__properties),
		cmocka_unit_test(test_hocon__origins),
		cmocka_unit_test(test_hocon__limits),
		cmocka_unit_test(test_hocon__resolved_depth_limit),
		cmocka_unit_test(test_hocon__expansion_budget),
		cmocka_unit_test(test_hocon__syntax_errors),
	};
	return cmocka_run_group_tests_name("hocon", tests, setup_tmp, teardown_tmp);
}
