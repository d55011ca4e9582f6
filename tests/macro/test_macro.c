/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the macro's pure logic (lib/macro.c): event decoding, settings precedence and
 * validation, inline recipe decoding, and the reply with CloudFormation's size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s: %s", text, e.text);
	return j;
}

static void test_macro__event_parse(void **state)
{
	(void)state;
	const char *text = "{\"requestId\":\"r1\",\"region\":\"eu-west-1\",\"accountId\":\"1\","
			   "\"transformId\":\"1::Kilt\",\"fragment\":{\"Resources\":{}},"
			   "\"params\":null}";
	struct kilt_macro_event ev = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_event_parse(text, strlen(text), &ev, &err), 0);
	assert_string_equal(ev.request_id, "r1");
	assert_string_equal(ev.region, "eu-west-1");
	assert_true(json_is_object(ev.params));
	assert_true(json_is_object(ev.parameter_values));
	assert_int_equal(kilt_macro_event_check(&ev, &err), 0);
	kilt_macro_event_done(&ev);
	kilt_macro_event_done(&ev); /* twice is fine */
}

static void test_macro__event_resource_map(void **state)
{
	(void)state;
	/* Fn::Transform inside Resources: the fragment is the map of sibling resources. */
	const char *text = "{\"requestId\":\"r\",\"fragment\":{\"Web\":{\"Type\":"
			   "\"AWS::ECS::TaskDefinition\"},\"Q\":{\"Type\":\"AWS::SQS::Queue\"}},"
			   "\"params\":{\"Mode\":\"opt-in\"}}";
	struct kilt_macro_event ev = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_event_parse(text, strlen(text), &ev, &err), 0);
	assert_int_equal(kilt_macro_event_check(&ev, &err), 0);
	assert_true(ev.resources_only);
	assert_ptr_equal(json_object_get(ev.template, "Resources"), ev.fragment);
	assert_ptr_equal(kilt_macro_event_result(&ev), ev.fragment);
	kilt_macro_event_done(&ev);

	/* A template is patched as it is. */
	const char *tpl = "{\"requestId\":\"r\",\"fragment\":{\"Resources\":{}}}";
	assert_int_equal(kilt_macro_event_parse(tpl, strlen(tpl), &ev, &err), 0);
	assert_false(ev.resources_only);
	assert_ptr_equal(ev.template, ev.fragment);
	assert_ptr_equal(kilt_macro_event_result(&ev), ev.fragment);
	kilt_macro_event_done(&ev);
}

static void test_macro__event_unanswerable(void **state)
{
	(void)state;
	static const char *const bad[] = { "",
					   "nope",
					   "[1]",
					   "{\"requestId\":5}",
					   "{\"fragment\":{}}",
					   "{\"a\":1,\"a\":2,\"requestId\":\"x\"}" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct kilt_macro_event ev = { .request_id = "untouched" };
		struct kilt_error err = { 0 };
		assert_true(kilt_macro_event_parse(bad[i], strlen(bad[i]), &ev, &err) < 0);
		assert_string_equal(ev.request_id, "untouched");
		assert_true(err.msg[0]);
	}
}

static void test_macro__event_check(void **state)
{
	(void)state;
	static const struct {
		const char *event, *want;
	} cases[] = {
		{ "{\"requestId\":\"r\"}", "no \"fragment\"" },
		{ "{\"requestId\":\"r\",\"fragment\":[]}", "expected a template object" },
		{ "{\"requestId\":\"r\",\"fragment\":{}}", "the template has no Resources" },
		{ "{\"requestId\":\"r\",\"fragment\":{\"A\":{\"Type\":\"T\"},\"B\":1}}",
		  "the template has no Resources" },
		{ "{\"requestId\":\"r\",\"fragment\":{\"Resources\":[]}}",
		  "Resources is not an object" },
		{ "{\"requestId\":\"r\",\"fragment\":{\"Resources\":{}},\"params\":[]}",
		  "Transform parameters" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kilt_macro_event ev = { 0 };
		struct kilt_error err = { 0 };
		assert_int_equal(
			kilt_macro_event_parse(cases[i].event, strlen(cases[i].event), &ev, &err),
			0);
		assert_true(kilt_macro_event_check(&ev, &err) < 0);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].event, err.msg,
				 cases[i].want);
		kilt_macro_event_done(&ev);
	}
}

static void test_macro__settings_defaults(void **state)
{
	(void)state;
	struct kilt_macro_settings s = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_settings_resolve(NULL, NULL, NULL, &s, &err), 0);
	assert_int_equal(s.mode, KILT_MACRO_OPT_OUT);
	assert_string_equal(s.recipe_builtin, "falco");
	assert_null(s.recipe_url);
	assert_null(s.recipe_text);
	assert_int_equal(json_object_size(s.config), 0);
	assert_int_equal(s.mode_from, KILT_MACRO_LAYER_DEFAULT);
	_cleanup_free_ char *key = kilt_macro_settings_recipe_key(&s);
	assert_string_equal(key, "builtin:falco#");
	kilt_macro_settings_done(&s);
}

static void test_macro__settings_precedence(void **state)
{
	(void)state;
	json_auto_t *params = J("{\"Mode\":\"opt-in\",\"Config.a\":\"params\"}");
	json_auto_t *frag =
		J("{\"Mappings\":{\"KiltSettings\":{\"Settings\":{\"Mode\":\"opt-out\","
		  "\"LogGroup\":\"from-mapping\",\"Config\":\"{\\\"d_1\\\":\\\"json\\\"}\"},"
		  "\"Config\":{\"a\":\"mapping\","
		  "\"b\":\"mapping\"}}},\"Resources\":{}}");
	json_auto_t *env =
		J("{\"Mode\":\"opt-out\",\"LogGroup\":\"from-env\",\"ImageAuthSecret\":"
		  "\"arn:secret\",\"Config\":\"{\\\"a\\\":\\\"env\\\",\\\"b\\\":\\\"env\\\","
		  "\\\"c\\\":\\\"env\\\"}\"}");
	struct kilt_macro_settings s = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_settings_resolve(params, frag, env, &s, &err), 0);
	assert_int_equal(s.mode, KILT_MACRO_OPT_IN);
	assert_int_equal(s.mode_from, KILT_MACRO_LAYER_PARAMS);
	assert_string_equal(s.log_group, "from-mapping");
	assert_int_equal(s.log_group_from, KILT_MACRO_LAYER_MAPPING);
	assert_string_equal(s.image_auth_secret, "arn:secret");
	assert_int_equal(s.image_auth_secret_from, KILT_MACRO_LAYER_ENV);
	assert_string_equal(json_string_value(json_object_get(s.config, "a")), "params");
	assert_string_equal(json_string_value(json_object_get(s.config, "b")), "mapping");
	assert_string_equal(json_string_value(json_object_get(s.config, "c")), "env");
	assert_string_equal(json_string_value(json_object_get(s.config, "d_1")), "json");
	kilt_macro_settings_done(&s);
}

static void test_macro__settings_recipe_location(void **state)
{
	(void)state;
	const char *sha = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
	_cleanup_free_ char *env_text = xasprintf(
		"{\"RecipeUrl\":\"https://example.invalid/r.conf\",\"RecipeSha256\":\"%s\"}", sha);
	json_auto_t *env = J(env_text);
	/* A higher layer choosing an inline recipe drops the lower layer's URL and hash. */
	json_auto_t *params = J("{\"Recipe\":\"deploy { }\"}");
	struct kilt_macro_settings s = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_settings_resolve(params, NULL, env, &s, &err), 0);
	assert_string_equal(s.recipe_text, "deploy { }");
	assert_null(s.recipe_url);
	assert_null(s.recipe_sha256);
	assert_int_equal(s.recipe_from, KILT_MACRO_LAYER_PARAMS);
	_cleanup_free_ char *key = kilt_macro_settings_recipe_key(&s);
	assert_true(strncmp(key, "inline:", 7) == 0);
	kilt_macro_settings_done(&s);

	assert_int_equal(kilt_macro_settings_resolve(NULL, NULL, env, &s, &err), 0);
	assert_string_equal(s.recipe_url, "https://example.invalid/r.conf");
	assert_string_equal(s.recipe_sha256,
			    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	kilt_macro_settings_done(&s);

	/* base64, explicit and detected */
	json_auto_t *b1 = J("{\"Recipe\":\"base64:ZGVwbG95IHsgfQ==\"}");
	assert_int_equal(kilt_macro_settings_resolve(b1, NULL, NULL, &s, &err), 0);
	assert_string_equal(s.recipe_text, "deploy { }");
	kilt_macro_settings_done(&s);
	json_auto_t *b2 = J("{\"Recipe\":\"ZGVwbG95IHsgfQ==\"}");
	assert_int_equal(kilt_macro_settings_resolve(b2, NULL, NULL, &s, &err), 0);
	assert_string_equal(s.recipe_text, "deploy { }");
	kilt_macro_settings_done(&s);
	json_auto_t *b3 = J("{\"RecipeUrl\":\"builtin:other\"}");
	assert_int_equal(kilt_macro_settings_resolve(b3, NULL, NULL, &s, &err), 0);
	assert_string_equal(s.recipe_builtin, "other");
	kilt_macro_settings_done(&s);
}

static void test_macro__settings_errors(void **state)
{
	(void)state;
	static const struct {
		const char *params, *fragment, *want;
	} cases[] = {
		{ "{\"Mode\":\"sometimes\"}", NULL, "Transform parameters: Mode \"sometimes\"" },
		{ "{\"Bogus\":\"x\"}", NULL, "unknown setting \"Bogus\"" },
		{ "{\"Mode\":{\"Ref\":\"M\"}}", NULL, "intrinsic function" },
		{ "{\"Recipe\":\"a\",\"RecipeUrl\":\"https://x/y\"}", NULL,
		  "both Recipe and RecipeUrl" },
		{ "{\"RecipeUrl\":\"https://x/y\"}", NULL, "has no RecipeSha256" },
		{ "{\"RecipeUrl\":\"ftp://x/y\"}", NULL, "expected https://" },
		{ "{\"RecipeUrl\":\"s3://bucket\"}", NULL, "s3://<bucket>/<key>" },
		{ "{\"RecipeUrl\":\"s3://b/k\",\"RecipeSha256\":\"12\"}", NULL, "64 hex digits" },
		{ "{\"RecipeSha256\":\"12\"}", NULL, "without Recipe or RecipeUrl" },
		{ "{\"Recipe\":\"base64:!!!\"}", NULL, "does not decode" },
		{ "{\"Recipe\":\"\"}", NULL, "Recipe is empty" },
		{ "{\"Config\":\"{not json\"}", NULL, "Config: expected a JSON object" },
		{ "{\"Config\":{\"a\":[1]}}", NULL,
		  "Config.a: expected a string, number or boolean" },
		{ "{}", "{\"Mappings\":{\"KiltSettings\":{\"Other\":{}}}}",
		  "unknown key \"Other\"" },
		{ "{}", "{\"Mappings\":{\"KiltSettings\":{\"Settings\":{\"Mode\":\"x\"}}}}",
		  "Mappings.KiltSettings: Mode \"x\"" },
		{ "{}", "{\"Mappings\":{\"KiltSettings\":{\"Settings\":{\"Config\":\"[]\"}}}}",
		  "Config: expected an object" },
		{ "{}", "{\"Mappings\":{\"KiltSettings\":{\"Settings\":{\"Mode\":[\"a\"]}}}}",
		  "expected a string" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_auto_t *p = J(cases[i].params);
		json_auto_t *f = cases[i].fragment ? J(cases[i].fragment) : NULL;
		struct kilt_macro_settings s = { .mode = 42 };
		struct kilt_error err = { 0 };
		assert_true(kilt_macro_settings_resolve(p, f, NULL, &s, &err) < 0);
		assert_int_equal(s.mode, 42); /* untouched on failure */
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, cases[i].want);
	}
}

static void test_macro__reply(void **state)
{
	(void)state;
	json_auto_t *frag = J("{\"Resources\":{\"A\":{\"Type\":\"T\"}}}");
	char *reply = NULL;
	size_t len = 0;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_reply("r1", frag, NULL, &reply, &len, &err), 0);
	json_auto_t *j = J(reply);
	assert_string_equal(json_string_value(json_object_get(j, "status")), "success");
	assert_string_equal(json_string_value(json_object_get(j, "requestId")), "r1");
	assert_true(json_equal(json_object_get(j, "fragment"), frag));
	assert_int_equal(len, strlen(reply));
	free(reply);

	/* A failure carries no fragment and a bounded message. */
	char big[KILT_MACRO_MAX_MESSAGE * 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(kilt_macro_reply("r1", NULL, big, &reply, &len, &err), 0);
	json_auto_t *f = J(reply);
	assert_string_equal(json_string_value(json_object_get(f, "status")), "failure");
	assert_null(json_object_get(f, "fragment"));
	assert_int_equal(strlen(json_string_value(json_object_get(f, "errorMessage"))),
			 KILT_MACRO_MAX_MESSAGE);
	free(reply);

	/* Error texts are cut at fixed sizes (struct kilt_error, "%.200s"), which can split a
	 * UTF-8 sequence: only the broken bytes are lost, never the message. */
	assert_int_equal(kilt_macro_reply("r1", NULL,
					  "kilt: a\xc3 cut, a lone \x80, caf\xc3\xa9 ok", &reply,
					  &len, &err),
			 0);
	json_auto_t *u = J(reply);
	assert_string_equal(json_string_value(json_object_get(u, "errorMessage")),
			    "kilt: a? cut, a lone ?, caf\xc3\xa9 ok");
	free(reply);
}

static void test_macro__reply_too_large(void **state)
{
	(void)state;
	char *pad = xmalloc(KILT_MACRO_MAX_TEMPLATE + 1);
	memset(pad, 'p', KILT_MACRO_MAX_TEMPLATE);
	pad[KILT_MACRO_MAX_TEMPLATE] = '\0';
	json_auto_t *frag = json_pack("{s:{s:{s:s}}}", "Resources", "A", "Blob", pad);
	free(pad);
	static char untouched[] = "untouched";
	char *reply = untouched;
	size_t len = 0;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_macro_reply("r1", frag, NULL, &reply, &len, &err), -E2BIG);
	assert_string_equal(reply, "untouched");
	assert_non_null(strstr(err.msg, "1048576-byte limit"));
}

static void test_macro__sha256(void **state)
{
	(void)state;
	char hex[65];
	kilt_macro_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_macro__event_parse),
		cmocka_unit_test(test_macro__event_resource_map),
		cmocka_unit_test(test_macro__event_unanswerable),
		cmocka_unit_test(test_macro__event_check),
		cmocka_unit_test(test_macro__settings_defaults),
		cmocka_unit_test(test_macro__settings_precedence),
		cmocka_unit_test(test_macro__settings_recipe_location),
		cmocka_unit_test(test_macro__settings_errors),
		cmocka_unit_test(test_macro__reply),
		cmocka_unit_test(test_macro__reply_too_large),
		cmocka_unit_test(test_macro__sha256),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
