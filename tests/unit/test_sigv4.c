/* SPDX-License-Identifier: Apache-2.0 */
/* AWS Signature Version 4 against AWS's published examples: cases of the aws-sig-v4-test-suite
 * (credential scope AKIDEXAMPLE/20150830/us-east-1/service/aws4_request) and the IAM ListUsers
 * example of the signing documentation. The expected signatures are AWS's, not ours. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

#define AK "AKIDEXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define DATE "20150830T123600Z"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static struct kilt_sigv4_result sign(const char *method, const char *path, const char *query,
				     const char *const *headers, const char *payload,
				     const char *service)
{
	struct kilt_sigv4_request req = {
		.method = method,
		.path = path,
		.query = query,
		.headers = headers,
		.payload = payload,
		.payload_len = payload ? strlen(payload) : 0,
		.region = "us-east-1",
		.service = service,
		.amz_date = DATE,
		.access_key = AK,
		.secret_key = SK,
	};
	struct kilt_sigv4_result r = { 0 };
	struct kilt_error err = { 0 };
	if (kilt_sigv4_sign(&req, &r, &err) < 0)
		fail_msg("%s", err.msg);
	return r;
}

static const char *const suite_headers[] = { "Host:example.amazonaws.com", "X-Amz-Date:" DATE,
					     NULL };

static void test_sigv4__get_vanilla(void **state)
{
	(void)state;
	struct kilt_sigv4_result r = sign("GET", "/", NULL, suite_headers, NULL, "service");
	assert_string_equal(r.canonical_request, "GET\n/\n\n"
						 "host:example.amazonaws.com\n"
						 "x-amz-date:" DATE "\n\n"
						 "host;x-amz-date\n" EMPTY_SHA);
	assert_string_equal(r.signature,
			    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	assert_string_equal(
		r.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
		"aws4_request, SignedHeaders=host;x-amz-date, "
		"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	kilt_sigv4_result_done(&r);
}

static void test_sigv4__get_vanilla_query_order_key_case(void **state)
{
	(void)state;
	struct kilt_sigv4_result r =
		sign("GET", "/", "Param2=value2&Param1=value1", suite_headers, NULL, "service");
	assert_string_equal(r.canonical_request, "GET\n/\nParam1=value1&Param2=value2\n"
						 "host:example.amazonaws.com\n"
						 "x-amz-date:" DATE "\n\n"
						 "host;x-amz-date\n" EMPTY_SHA);
	assert_string_equal(r.string_to_sign,
			    "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/service/aws4_request\n"
			    "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
	assert_string_equal(r.signature,
			    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	kilt_sigv4_result_done(&r);
}

static void test_sigv4__post_vanilla(void **state)
{
	(void)state;
	struct kilt_sigv4_result r = sign("POST", "/", NULL, suite_headers, NULL, "service");
	assert_string_equal(r.signature,
			    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
	kilt_sigv4_result_done(&r);
}

static void test_sigv4__post_x_www_form_urlencoded(void **state)
{
	(void)state;
	static const char *const h[] = { "Content-Type:application/x-www-form-urlencoded",
					 "Host:example.amazonaws.com", "X-Amz-Date:" DATE, NULL };
	struct kilt_sigv4_result r = sign("POST", "/", NULL, h, "Param1=value1", "service");
	assert_non_null(strstr(r.authorization, "SignedHeaders=content-type;host;x-amz-date,"));
	assert_string_equal(r.signature,
			    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
	kilt_sigv4_result_done(&r);
}

static void test_sigv4__iam_list_users(void **state)
{
	(void)state;
	static const char *const h[] = {
		"Host:iam.amazonaws.com",
		"Content-Type:application/x-www-form-urlencoded; charset=utf-8",
		"X-Amz-Date:" DATE,
		NULL,
	};
	struct kilt_sigv4_result r =
		sign("GET", "/", "Action=ListUsers&Version=2010-05-08", h, "", "iam");
	assert_string_equal(r.canonical_request,
			    "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
			    "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
			    "host:iam.amazonaws.com\n"
			    "x-amz-date:" DATE "\n\n"
			    "content-type;host;x-amz-date\n" EMPTY_SHA);
	assert_string_equal(r.string_to_sign,
			    "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/iam/aws4_request\n"
			    "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
	assert_string_equal(
		r.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/"
		"aws4_request, SignedHeaders=content-type;host;x-amz-date, "
		"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
	kilt_sigv4_result_done(&r);
}

/* The canonical forms of the suite's normalization cases (header trimming, repeated headers,
 * relative paths, encoded query): what the canonical request must look like. */
static void test_sigv4__canonical_forms(void **state)
{
	(void)state;
	static const char *const h[] = { "Host:example.amazonaws.com", "My-Header1:  value1  ",
					 "My-Header1:value2",	       "My-Header2: \"a   b   c\" ",
					 "X-Amz-Date:" DATE,	       NULL };
	struct kilt_sigv4_result r =
		sign("GET", "/example/../a/./b//c/", "ሴ=bar&a b=%7E&z", h, NULL, "service");
	assert_string_equal(r.canonical_request,
			    "GET\n/a/b/c/\n%E1%88%B4=bar&a%20b=~&z=\n"
			    "host:example.amazonaws.com\n"
			    "my-header1:value1,value2\n"
			    "my-header2:\"a b c\"\n"
			    "x-amz-date:" DATE "\n\n"
			    "host;my-header1;my-header2;x-amz-date\n" EMPTY_SHA);
	kilt_sigv4_result_done(&r);
	r = sign("GET", "/example space/ሴ", NULL, suite_headers, NULL, "service");
	const char *want = "GET\n/example%20space/%E1%88%B4\n\n";
	assert_true(strncmp(r.canonical_request, want, strlen(want)) == 0);
	kilt_sigv4_result_done(&r);
}

static void test_sigv4__session_token_is_signed(void **state)
{
	(void)state;
	struct kilt_sigv4_request req = {
		.method = "POST",
		.path = "/",
		.headers = suite_headers,
		.region = "us-east-1",
		.service = "ecr",
		.amz_date = DATE,
		.access_key = AK,
		.secret_key = SK,
		.session_token = "TOKEN123",
	};
	struct kilt_sigv4_result r = { 0 };
	assert_int_equal(kilt_sigv4_sign(&req, &r, NULL), 0);
	assert_non_null(strstr(r.canonical_request, "x-amz-security-token:TOKEN123\n"));
	assert_non_null(
		strstr(r.authorization, "SignedHeaders=host;x-amz-date;x-amz-security-token"));
	kilt_sigv4_result_done(&r);
}

static void test_sigv4__errors(void **state)
{
	(void)state;
	static const char *const nohost[] = { "X-Amz-Date:" DATE, NULL };
	struct kilt_sigv4_request req = {
		.method = "GET",
		.headers = nohost,
		.region = "us-east-1",
		.service = "ecr",
		.amz_date = DATE,
		.access_key = AK,
		.secret_key = SK,
	};
	struct kilt_sigv4_result r = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_sigv4_sign(&req, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "Host"));
	req.headers = suite_headers;
	req.amz_date = "2015-08-30";
	assert_int_equal(kilt_sigv4_sign(&req, &r, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "YYYYMMDDTHHMMSSZ"));
	assert_null(r.signature);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigv4__get_vanilla),
		cmocka_unit_test(test_sigv4__get_vanilla_query_order_key_case),
		cmocka_unit_test(test_sigv4__post_vanilla),
		cmocka_unit_test(test_sigv4__post_x_www_form_urlencoded),
		cmocka_unit_test(test_sigv4__iam_list_users),
		cmocka_unit_test(test_sigv4__canonical_forms),
		cmocka_unit_test(test_sigv4__session_token_is_signed),
		cmocka_unit_test(test_sigv4__errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
