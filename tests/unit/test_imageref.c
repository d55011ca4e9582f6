/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of image references, platforms, base64, ECR hosts and registry credentials (docker
 * config.json and Kubernetes pull secrets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

static void expect_ref(const char *in, const char *registry, const char *repo, const char *tag,
		       const char *digest, const char *canonical)
{
	struct kilt_imageref r = { 0 };
	struct kilt_error err = { 0 };
	int rc = kilt_imageref_parse(in, &r, &err);
	if (rc < 0)
		fail_msg("%s: %s", in, err.msg);
	assert_string_equal(r.registry, registry);
	assert_string_equal(r.repository, repo);
	if (tag)
		assert_string_equal(r.tag, tag);
	else
		assert_null(r.tag);
	if (digest)
		assert_string_equal(r.digest, digest);
	else
		assert_null(r.digest);
	_cleanup_free_ char *s = kilt_imageref_format(&r);
	assert_string_equal(s, canonical);
	kilt_imageref_done(&r);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_imageref__normalize(void **state)
{
	(void)state;
	expect_ref("nginx", "docker.io", "library/nginx", "latest", NULL,
		   "docker.io/library/nginx:latest");
	expect_ref("nginx:1.25", "docker.io", "library/nginx", "1.25", NULL,
		   "docker.io/library/nginx:1.25");
	expect_ref("falco/falco", "docker.io", "falco/falco", "latest", NULL,
		   "docker.io/falco/falco:latest");
	expect_ref("index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", NULL,
		   "docker.io/library/busybox:1");
	expect_ref("docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
		   "docker.io/library/busybox:latest");
	expect_ref("localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest");
	expect_ref("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000", "team/app", "v2", NULL,
		   "127.0.0.1:5000/team/app:v2");
	expect_ref("Registry.Example.com:443/a/b/c", "registry.example.com:443", "a/b/c", "latest",
		   NULL, "registry.example.com:443/a/b/c:latest");
	expect_ref("ghcr.io/org/app@sha256:" D64, "ghcr.io", "org/app", NULL, "sha256:" D64,
		   "ghcr.io/org/app@sha256:" D64);
	expect_ref("app:1.0@sha256:" D64, "docker.io", "library/app", "1.0", "sha256:" D64,
		   "docker.io/library/app:1.0@sha256:" D64);
	expect_ref("123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app:prod",
		   "123456789012.dkr.ecr.eu-west-1.amazonaws.com", "my-app", "prod", NULL,
		   "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app:prod");
	expect_ref("a__b/c-d--e.f_g", "docker.io", "a__b/c-d--e.f_g", "latest", NULL,
		   "docker.io/a__b/c-d--e.f_g:latest");
}

/* One lookup per image: the spellings of one image normalize alike, and the run's table of
 * image facts (kilt-plan.h) holds one entry for all of them. */
static void expect_lookup(const char *in, const char *want)
{
	_cleanup_free_ char *got = NULL;
	struct kilt_error err = { 0 };
	if (kilt_imageref_normalize(in, &got, &err) < 0)
		fail_msg("%s: %s", in, err.msg);
	assert_string_equal(got, want);
}

static void test_imageref__lookup_spelling(void **state)
{
	(void)state;
	const char *nginx[] = { "nginx",
				"nginx:latest",
				"docker.io/nginx",
				"library/nginx",
				"docker.io/library/nginx",
				"docker.io/library/nginx:latest",
				"index.docker.io/library/nginx:latest",
				"registry-1.docker.io/library/nginx" };
	for (size_t i = 0; i < ARRAY_SIZE(nginx); i++)
		expect_lookup(nginx[i], "docker.io/library/nginx:latest");
	expect_lookup("Registry.Example.com:443/a/b:1", "registry.example.com:443/a/b:1");
	/* with a digest, the digest is fetched: a tag beside it changes nothing */
	expect_lookup("app:1.0@sha256:" D64, "docker.io/library/app@sha256:" D64);
	expect_lookup("docker.io/library/app@sha256:" D64, "docker.io/library/app@sha256:" D64);
	/* what differs stays apart */
	expect_lookup("nginx:1.27", "docker.io/library/nginx:1.27");
	expect_lookup("localhost:5000/nginx", "localhost:5000/nginx:latest");
	expect_lookup("127.0.0.1:5000/nginx", "127.0.0.1:5000/nginx:latest");
	_cleanup_free_ char *bad = NULL;
	assert_int_equal(kilt_imageref_normalize("Nginx", &bad, NULL), -EINVAL);
	assert_null(bad);

	struct kilt_image_needs needs;
	kilt_image_needs_init(&needs);
	for (size_t i = 0; i < ARRAY_SIZE(nginx); i++)
		kilt_image_needs_add(&needs, nginx[i], "linux/amd64");
	kilt_image_needs_add(&needs, "nginx", "linux/arm64");
	kilt_image_needs_add(&needs, "nginx", NULL);
	kilt_image_needs_add(&needs, "nginx:1.27", "linux/amd64");
	kilt_image_needs_add(&needs, "Not A Reference", "linux/amd64");
	assert_int_equal(needs.n, 5);
	assert_string_equal(needs.v[0].image, "docker.io/library/nginx:latest");
	assert_string_equal(needs.v[4].image, "Not A Reference");
	/* a result stored for one spelling answers every other */
	needs.v[0].resolved = true;
	needs.v[0].facts = json_pack("{s[s]}", "entrypoint", "/docker-entrypoint.sh");
	for (size_t i = 0; i < ARRAY_SIZE(nginx); i++) {
		assert_ptr_equal(kilt_image_needs_find(&needs, nginx[i], "linux/amd64"),
				 &needs.v[0]);
		json_t *facts = NULL;
		assert_int_equal(
			kilt_image_needs_facts(&needs, nginx[i], "linux/amd64", &facts, NULL), 0);
		assert_ptr_equal(facts, needs.v[0].facts);
		json_decref(facts);
	}
	assert_null(kilt_image_needs_find(&needs, "nginx", "linux/s390x"));
	kilt_image_needs_done(&needs);
}

static void expect_bad(const char *in, const char *needle)
{
	struct kilt_imageref r = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_imageref_parse(in, &r, &err), -EINVAL);
	if (!strstr(err.msg, needle))
		fail_msg("'%s': error '%s' lacks '%s'", in, err.msg, needle);
	assert_null(r.registry);
}

static void test_imageref__invalid(void **state)
{
	(void)state;
	expect_bad("", "empty");
	expect_bad("Nginx", "repository component 'Nginx'");
	expect_bad("nginx:", "tag ''");
	expect_bad("nginx:-x", "tag '-x'");
	expect_bad("nginx@sha256:abc", "digest");
	expect_bad("nginx@md5:" D64, "digest");
	expect_bad("a//b", "repository component ''");
	expect_bad("host:99999/a", "registry 'host:99999'");
	expect_bad("-bad.host/a", "registry");
	expect_bad("with space", "space");
	expect_bad("a/b_/c", "repository component 'b_'");
	expect_bad("a@sha256:" D64 "@sha256:" D64, "more than one");
}

static void test_imageref__api_host_and_ecr(void **state)
{
	(void)state;
	struct kilt_imageref r = { 0 };
	assert_int_equal(kilt_imageref_parse("nginx", &r, NULL), 0);
	assert_string_equal(kilt_imageref_api_host(&r), "registry-1.docker.io");
	kilt_imageref_done(&r);
	assert_int_equal(kilt_imageref_parse("quay.io/x/y", &r, NULL), 0);
	assert_string_equal(kilt_imageref_api_host(&r), "quay.io");
	kilt_imageref_done(&r);

	char region[64];
	assert_true(kilt_imageref_ecr_region("123456789012.dkr.ecr.us-east-1.amazonaws.com", region,
					     sizeof(region)));
	assert_string_equal(region, "us-east-1");
	assert_true(kilt_imageref_ecr_region("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
					     region, sizeof(region)));
	assert_string_equal(region, "cn-north-1");
	assert_true(kilt_imageref_ecr_region(
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", region, sizeof(region)));
	assert_string_equal(region, "us-gov-west-1");
	assert_true(kilt_imageref_ecr_region("123456789012.dkr.ecr.us-west-2.amazonaws.com:8443",
					     region, sizeof(region)));
	assert_string_equal(region, "us-west-2");
	assert_false(kilt_imageref_ecr_region("123456789012.dkr.ecr.us-west-2.amazonaws.comx",
					      region, sizeof(region)));
	assert_false(kilt_imageref_ecr_region("12345.dkr.ecr.us-east-1.amazonaws.com", region,
					      sizeof(region)));
	assert_false(kilt_imageref_ecr_region("123456789012.dkr.ecr.us-east-1.example.com", region,
					      sizeof(region)));
	assert_false(kilt_imageref_ecr_region("public.ecr.aws", region, sizeof(region)));
}

static void test_imageref__platform(void **state)
{
	(void)state;
	struct kilt_platform p;
	char buf[100];
	assert_int_equal(kilt_platform_parse("linux/x86_64", &p, NULL), 0);
	assert_string_equal(kilt_platform_format(&p, buf, sizeof(buf)), "linux/amd64");
	assert_int_equal(kilt_platform_parse("linux/aarch64", &p, NULL), 0);
	assert_string_equal(kilt_platform_format(&p, buf, sizeof(buf)), "linux/arm64");
	assert_true(kilt_platform_matches(&p, "linux", "arm64", "v8"));
	assert_true(kilt_platform_matches(&p, "linux", "arm64", NULL));
	assert_false(kilt_platform_matches(&p, "linux", "amd64", NULL));
	assert_false(kilt_platform_matches(&p, "windows", "arm64", NULL));
	assert_int_equal(kilt_platform_parse("linux/arm/v7", &p, NULL), 0);
	assert_true(kilt_platform_matches(&p, "linux", "arm", "v7"));
	assert_false(kilt_platform_matches(&p, "linux", "arm", "v6"));
	assert_int_equal(kilt_platform_parse("linux/arm64/v8", &p, NULL), 0);
	assert_true(kilt_platform_matches(&p, "linux", "arm64", ""));
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_platform_parse("linux", &p, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "os/arch"));
	assert_int_equal(kilt_platform_parse("linux/amd64/v1/x", &p, &err), -EINVAL);
	assert_int_equal(kilt_platform_parse("linux//v1", &p, &err), -EINVAL);
}

static void test_imageref__base64(void **state)
{
	(void)state;
	char *out = NULL;
	size_t n = 0;
	assert_int_equal(kilt_base64_decode("dXNlcjpwYXNz", 12, &out, &n, NULL), 0);
	assert_string_equal(out, "user:pass");
	assert_int_equal(n, 9);
	free(out);
	assert_int_equal(kilt_base64_decode("YQ", 2, &out, &n, NULL), 0);
	assert_string_equal(out, "a");
	free(out);
	assert_int_equal(kilt_base64_decode("Y\nQ==", 5, &out, &n, NULL), 0);
	assert_string_equal(out, "a");
	free(out);
	assert_int_equal(kilt_base64_decode("Y!==", 4, &out, &n, NULL), -EINVAL);
	assert_int_equal(kilt_base64_decode("Y", 1, &out, &n, NULL), -EINVAL);
	_cleanup_free_ char *e = kilt_base64_encode("user:pass", 9);
	assert_string_equal(e, "dXNlcjpwYXNz");
	_cleanup_free_ char *e2 = kilt_base64_encode("ab", 2);
	assert_string_equal(e2, "YWI=");
}

static void lookup(const json_t *cfg, const char *registry, int want_rc, const char *user,
		   const char *pass)
{
	char *u = NULL, *p = NULL;
	struct kilt_error err = { 0 };
	int rc = kilt_docker_auth_lookup(cfg, registry, &u, &p, &err);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), want %d", registry, rc, err.msg, want_rc);
	if (rc == 0) {
		assert_string_equal(u, user);
		assert_string_equal(p, pass);
	}
	free(u);
	free(p);
}

static void test_imageref__docker_config(void **state)
{
	(void)state;
	/* "alice:s3cr:et" and "bob:pw" */
	const char *text = "{\"auths\": {"
			   "\"https://index.docker.io/v1/\": {\"auth\": \"YWxpY2U6czNjcjpldA==\"},"
			   "\"registry.example.com:5000\": {\"username\": \"bob\", \"password\": "
			   "\"pw\"},"
			   "\"https://quay.io/v2/\": {\"auth\": \"Ym9iOnB3\"},"
			   "\"broken.example\": {\"auth\": \"bm9jb2xvbg==\"},"
			   "\"oauth.example\": {\"identitytoken\": \"x\"}"
			   "}}";
	json_t *cfg = NULL;
	assert_int_equal(kilt_docker_config_parse(text, strlen(text), &cfg, NULL), 0);
	lookup(cfg, "docker.io", 0, "alice", "s3cr:et");
	lookup(cfg, "registry.example.com:5000", 0, "bob", "pw");
	lookup(cfg, "Registry.Example.com:5000", 0, "bob", "pw");
	lookup(cfg, "quay.io", 0, "bob", "pw");
	lookup(cfg, "registry.example.com", -ENOENT, NULL, NULL);
	lookup(cfg, "broken.example", -EINVAL, NULL, NULL);
	lookup(cfg, "oauth.example", -ENOTSUP, NULL, NULL);
	json_decref(cfg);
}

static void test_imageref__pull_secret(void **state)
{
	(void)state;
	/* .dockerconfigjson = {"auths":{"reg.local:443":{"auth":"dTpw"}}}  (u:p) */
	const char *yaml = "apiVersion: v1\n"
			   "kind: Secret\n"
			   "metadata:\n"
			   "  name: regcred\n"
			   "type: kubernetes.io/dockerconfigjson\n"
			   "data:\n"
			   "  .dockerconfigjson: "
			   "eyJhdXRocyI6eyJyZWcubG9jYWw6NDQzIjp7ImF1dGgiOiJkVHB3In19fQ==\n";
	json_t *cfg = NULL;
	struct kilt_error err = { 0 };
	int rc = kilt_docker_config_parse(yaml, strlen(yaml), &cfg, &err);
	if (rc < 0)
		fail_msg("%s", err.msg);
	lookup(cfg, "reg.local:443", 0, "u", "p");
	json_decref(cfg);

	const char *json = "{\"kind\":\"Secret\",\"type\":\"kubernetes.io/dockercfg\",\"data\":{"
			   "\".dockercfg\":\"eyJyZWcubG9jYWwiOnsiYXV0aCI6ImRUcHcifX0=\"}}";
	assert_int_equal(kilt_docker_config_parse(json, strlen(json), &cfg, NULL), 0);
	lookup(cfg, "reg.local", 0, "u", "p");
	json_decref(cfg);

	const char *opaque = "{\"kind\":\"Secret\",\"data\":{\"token\":\"eA==\"}}";
	assert_int_equal(kilt_docker_config_parse(opaque, strlen(opaque), &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, ".dockerconfigjson"));
	const char *latin1 = "{\"auths\":{\"h\xe9\":{}}}";
	assert_int_equal(kilt_docker_config_parse(latin1, strlen(latin1), &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "not valid UTF-8 text");
	const char *utf8 = "{\"auths\":{\"h\xc3\xa9\":{\"auth\":\"dTpw\"}}}";
	assert_int_equal(kilt_docker_config_parse(utf8, strlen(utf8), &cfg, &err), 0);
	json_decref(cfg);
	const char *junk = "[1, 2";
	assert_int_equal(kilt_docker_config_parse(junk, strlen(junk), &cfg, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imageref__normalize),
		cmocka_unit_test(test_imageref__lookup_spelling),
		cmocka_unit_test(test_imageref__invalid),
		cmocka_unit_test(test_imageref__api_host_and_ecr),
		cmocka_unit_test(test_imageref__platform),
		cmocka_unit_test(test_imageref__base64),
		cmocka_unit_test(test_imageref__docker_config),
		cmocka_unit_test(test_imageref__pull_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
