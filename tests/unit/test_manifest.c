/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of registry response parsing: manifests (OCI and Docker), indexes and platform
 * choice, image configs, digests, registry error bodies and WWW-Authenticate challenges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DD "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static struct kilt_manifest *parse(const char *body, const char *ctype, int want)
{
	struct kilt_manifest *m = NULL;
	struct kilt_error err = { 0 };
	int r = kilt_manifest_parse(body, strlen(body), ctype, &m, &err);
	if (r != want)
		fail_msg("rc %d (%s), want %d", r, err.msg, want);
	return m;
}

static void test_manifest__image(void **state)
{
	(void)state;
	const char *oci = "{\"schemaVersion\":2,\"mediaType\":\"" KILT_MEDIA_OCI_MANIFEST "\","
			  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			  "\"digest\":\"" DA "\",\"size\":123},\"layers\":[]}";
	struct kilt_manifest *m = parse(oci, NULL, 0);
	assert_int_equal(kilt_manifest_kind(m), KILT_MANIFEST_IMAGE);
	assert_string_equal(kilt_manifest_media_type(m), KILT_MEDIA_OCI_MANIFEST);
	assert_string_equal(kilt_manifest_config_digest(m), DA);
	assert_int_equal(kilt_manifest_config_size(m), 123);
	kilt_manifest_free(m);
	/* Docker v2 by Content-Type, no mediaType in the body. */
	const char *docker = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DB "\"}}";
	m = parse(docker, KILT_MEDIA_DOCKER_MANIFEST "; charset=utf-8", 0);
	assert_string_equal(kilt_manifest_media_type(m), KILT_MEDIA_DOCKER_MANIFEST);
	assert_string_equal(kilt_manifest_config_digest(m), DB);
	kilt_manifest_free(m);
}

static const char *index_json =
	"{\"schemaVersion\":2,\"mediaType\":\"" KILT_MEDIA_OCI_INDEX "\",\"manifests\":["
	"{\"digest\":\"" DA "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
	"{\"digest\":\"" DB "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\","
	"\"variant\":\"v7\"}},"
	"{\"digest\":\"" DC "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\","
	"\"variant\":\"v8\"}},"
	"{\"digest\":\"" DD "\",\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}"
	"]}";

static void expect_pick(const struct kilt_manifest *m, const char *plat, const char *digest)
{
	struct kilt_platform p;
	assert_int_equal(kilt_platform_parse(plat, &p, NULL), 0);
	const char *got = NULL;
	struct kilt_error err = { 0 };
	if (kilt_manifest_select(m, &p, &got, &err) < 0)
		fail_msg("%s: %s", plat, err.msg);
	assert_string_equal(got, digest);
}

static void test_manifest__index_select(void **state)
{
	(void)state;
	struct kilt_manifest *m = parse(index_json, NULL, 0);
	assert_int_equal(kilt_manifest_kind(m), KILT_MANIFEST_INDEX);
	assert_int_equal(kilt_manifest_count(m), 4);
	const char *d, *os, *arch, *variant;
	assert_true(kilt_manifest_entry(m, 1, &d, &os, &arch, &variant));
	assert_string_equal(d, DB);
	assert_string_equal(variant, "v7");
	assert_false(kilt_manifest_entry(m, 4, &d, &os, &arch, &variant));
	expect_pick(m, "linux/amd64", DA);
	expect_pick(m, "linux/x86_64", DA);
	expect_pick(m, "linux/arm64", DC);
	expect_pick(m, "linux/arm64/v8", DC);
	expect_pick(m, "linux/arm/v7", DB);
	expect_pick(m, "linux/arm", DB);

	struct kilt_platform p;
	assert_int_equal(kilt_platform_parse("linux/s390x", &p, NULL), 0);
	const char *got = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_manifest_select(m, &p, &got, &err), -ENOENT);
	assert_string_equal(err.msg, "platform linux/s390x missing from the image index (it has: "
				     "linux/amd64, linux/arm/v7, linux/arm64/v8)");
	assert_int_equal(kilt_platform_parse("linux/arm/v6", &p, NULL), 0);
	assert_int_equal(kilt_manifest_select(m, &p, &got, &err), -ENOENT);
	kilt_manifest_free(m);

	/* A Docker manifest list with the exact match after a compatible one: exact wins. */
	const char *list = "{\"schemaVersion\":2,\"mediaType\":\"" KILT_MEDIA_DOCKER_LIST "\","
			   "\"manifests\":["
			   "{\"digest\":\"" DA "\",\"platform\":{\"os\":\"linux\","
			   "\"architecture\":\"arm64\"}},"
			   "{\"digest\":\"" DB "\",\"platform\":{\"os\":\"linux\","
			   "\"architecture\":\"arm64\",\"variant\":\"v8\"}}]}";
	m = parse(list, NULL, 0);
	expect_pick(m, "linux/arm64/v8", DB);
	expect_pick(m, "linux/arm64", DA); /* arm64 without a variant is v8: the first one */
	kilt_manifest_free(m);
}

static void test_manifest__invalid(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	struct kilt_manifest *m = NULL;
	const char *v1 = "{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}";
	assert_int_equal(kilt_manifest_parse(v1, strlen(v1), NULL, &m, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "schema version 1"));
	parse("not json", NULL, -EBADMSG);
	parse("[]", NULL, -EBADMSG);
	parse("{\"mediaType\":\"text/plain\"}", NULL, -ENOTSUP);
	parse("{\"config\":{\"digest\":\"sha256:short\"}}", NULL, -EBADMSG);
	parse("{\"config\":{\"digest\":\"" DA "\",\"size\":-1}}", NULL, -EBADMSG);
	parse("{\"manifests\":{}}", NULL, -EBADMSG);
	parse("{\"manifests\":[{\"digest\":\"x\"}]}", NULL, -EBADMSG);
	parse("{\"manifests\":[{\"digest\":\"" DA "\",\"platform\":3}]}", NULL, -EBADMSG);
	parse("{\"config\":{\"digest\":\"" DA "\"},\"config\":{}}", NULL, -EBADMSG);
	assert_null(m);
}

static void test_manifest__config(void **state)
{
	(void)state;
	const char *cfg = "{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
			  "\"config\":{\"Entrypoint\":[\"/bin/app\",\"--serve\"],\"Cmd\":null,"
			  "\"Env\":[\"PATH=/usr/bin\",\"A=b=c\"],\"User\":\"1000:1000\","
			  "\"WorkingDir\":\"/srv\"},\"rootfs\":{\"type\":\"layers\"}}";
	json_t *f = NULL;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_image_config_parse(cfg, strlen(cfg), &f, &err), 0);
	_cleanup_free_ char *s = json_dumps(f, JSON_SORT_KEYS | JSON_COMPACT);
	assert_string_equal(s, "{\"architecture\":\"arm64\",\"command\":[],\"entrypoint\":[\"/bin/"
			       "app\",\"--serve\"],\"environment\":[\"PATH=/usr/bin\",\"A=b=c\"],"
			       "\"os\":\"linux\",\"user\":\"1000:1000\",\"variant\":\"v8\","
			       "\"working_dir\":\"/srv\"}");
	json_decref(f);
	/* No config section at all: everything empty, nothing invented. */
	const char *bare = "{\"os\":\"linux\",\"architecture\":\"amd64\"}";
	assert_int_equal(kilt_image_config_parse(bare, strlen(bare), &f, &err), 0);
	assert_int_equal(json_array_size(json_object_get(f, "entrypoint")), 0);
	assert_int_equal(json_array_size(json_object_get(f, "command")), 0);
	json_decref(f);
	const char *bad = "{\"config\":{\"Cmd\":[\"a\",1]}}";
	assert_int_equal(kilt_image_config_parse(bad, strlen(bad), &f, &err), -EBADMSG);
	assert_string_equal(err.msg, "image config: config.Cmd[1] must be a string");
	const char *bad2 = "{\"config\":{\"Entrypoint\":\"/bin/sh -c x\"}}";
	assert_int_equal(kilt_image_config_parse(bad2, strlen(bad2), &f, &err), -EBADMSG);
	const char *bad3 = "{\"config\":{\"User\":0}}";
	assert_int_equal(kilt_image_config_parse(bad3, strlen(bad3), &f, &err), -EBADMSG);
}

static void test_manifest__digest(void **state)
{
	(void)state;
	_cleanup_free_ char *d = kilt_digest_sha256("", 0);
	assert_string_equal(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b78"
			       "52b855");
	assert_int_equal(kilt_digest_verify(d, "", 0, NULL), 0);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_digest_verify(d, "x", 1, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "does not match"));
	/* Both digests are named, each written the way a registry writes it. */
	_cleanup_free_ char *x = kilt_digest_sha256("x", 1);
	_cleanup_free_ char *want = xasprintf("expected %s, got %s", d, x);
	assert_string_equal(strstr(err.msg, "expected "), want);
	assert_int_equal(kilt_digest_verify("sha256:E3B0", "", 0, &err), -EINVAL);
	assert_int_equal(kilt_digest_verify("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715d"
					    "c83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b9"
					    "31bd47417a81a538327af927da3e",
					    "", 0, &err),
			 0);
	assert_false(kilt_digest_valid("sha256:" DA));
	assert_true(kilt_digest_valid(DA));
}

static void test_manifest__registry_errors(void **state)
{
	(void)state;
	const char *body = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
			   "required\",\"detail\":[{\"Type\":\"repository\"}]},"
			   "{\"code\":\"DENIED\",\"message\":\"no\"}]}";
	_cleanup_free_ char *m = kilt_registry_error_message(body, strlen(body));
	assert_string_equal(m, "UNAUTHORIZED: authentication required; DENIED: no");
	assert_null(kilt_registry_error_message("<html>", 6));
	assert_null(kilt_registry_error_message("{\"errors\":[]}", 13));
}

static void test_manifest__www_authenticate(void **state)
{
	(void)state;
	struct kilt_auth_challenge c = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(
		kilt_auth_challenge_parse(
			"Bearer realm=\"https://auth.example/token\",service=\"registry."
			"example\",scope=\"repository:a/b:pull,push\",error=\"invalid_token\"",
			&c, &err),
		0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://auth.example/token");
	assert_string_equal(c.service, "registry.example");
	assert_string_equal(c.scope, "repository:a/b:pull,push");
	assert_string_equal(c.error, "invalid_token");
	kilt_auth_challenge_done(&c);
	assert_int_equal(
		kilt_auth_challenge_parse("Basic realm=\"Registry \\\"Realm\\\"\"", &c, &err), 0);
	assert_string_equal(c.scheme, "basic");
	assert_string_equal(c.realm, "Registry \"Realm\"");
	assert_null(c.service);
	kilt_auth_challenge_done(&c);
	assert_int_equal(
		kilt_auth_challenge_parse("bearer  REALM = https://x/t , service=s", &c, &err), 0);
	assert_string_equal(c.realm, "https://x/t");
	assert_string_equal(c.service, "s");
	kilt_auth_challenge_done(&c);
	assert_int_equal(kilt_auth_challenge_parse("Bearer realm=\"unterminated", &c, &err),
			 -EINVAL);
	assert_int_equal(kilt_auth_challenge_parse("", &c, &err), -EINVAL);
	assert_int_equal(kilt_auth_challenge_parse("=x", &c, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest__image),
		cmocka_unit_test(test_manifest__index_select),
		cmocka_unit_test(test_manifest__invalid),
		cmocka_unit_test(test_manifest__config),
		cmocka_unit_test(test_manifest__digest),
		cmocka_unit_test(test_manifest__registry_errors),
		cmocka_unit_test(test_manifest__www_authenticate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
