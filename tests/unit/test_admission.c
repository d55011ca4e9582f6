/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of AdmissionReview v1 decoding, the webhook's scope and the answer's encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

/* A review as the API server sends it for `kubectl run` (trimmed). */
#define POD_CREATE                                                                                 \
	"{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"       \
	"\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\","                                        \
	"\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"                           \
	"\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},"                  \
	"\"requestKind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"                    \
	"\"namespace\":\"team-a\",\"operation\":\"CREATE\","                                       \
	"\"userInfo\":{\"username\":\"admin\",\"groups\":[\"system:masters\"]},"                   \
	"\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"generateName\":\"web-" \
	"\"},"                                                                                     \
	"\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"busybox\"}]}},"                   \
	"\"oldObject\":null,\"dryRun\":false,\"options\":{\"kind\":\"CreateOptions\"}}}"

static void expect_invalid(const char *text, const char *msg)
{
	struct kilt_admission_review rv = { .uid = "untouched" };
	struct kilt_error err = { 0 };
	int r = kilt_admission_review_parse(text, strlen(text), &rv, &err);
	if (r != -EINVAL)
		fail_msg("%s: got %d, want -EINVAL", text, r);
	if (!strstr(err.msg, msg))
		fail_msg("%s: error '%s' does not say '%s'", text, err.msg, msg);
	assert_string_equal(rv.uid, "untouched");
	assert_null(rv.root);
}

static void test_admission__parse(void **state)
{
	(void)state;
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_admission_review_parse(POD_CREATE, strlen(POD_CREATE), &rv, &err), 0);
	assert_string_equal(rv.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
	assert_string_equal(rv.group, "");
	assert_string_equal(rv.version, "v1");
	assert_string_equal(rv.kind, "Pod");
	assert_string_equal(rv.sub_resource, "");
	assert_string_equal(rv.namespace, "team-a");
	assert_string_equal(rv.name, "");
	assert_string_equal(rv.operation, "CREATE");
	assert_false(rv.dry_run);
	assert_non_null(rv.object);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(rv.object, "metadata"), "generateName")),
			    "web-");
	assert_int_equal(kilt_admission_scope(&rv), KILT_ADMISSION_IN_SCOPE);
	assert_string_equal(kilt_admission_scope_name(kilt_admission_scope(&rv)), "in_scope");
	kilt_admission_review_done(&rv);
	assert_null(rv.root);
	kilt_admission_review_done(&rv); /* twice is fine */
	kilt_admission_review_done(NULL);

	/* DELETE: no object; dryRun */
	const char *del =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
		"\"request\":{\"uid\":\"u\",\"kind\":{\"version\":\"v1\",\"kind\":\"Pod\"},"
		"\"operation\":\"DELETE\",\"name\":\"p\",\"dryRun\":true}}";
	assert_int_equal(kilt_admission_review_parse(del, strlen(del), &rv, &err), 0);
	assert_null(rv.object);
	assert_true(rv.dry_run);
	assert_string_equal(rv.namespace, "");
	assert_int_equal(kilt_admission_scope(&rv), KILT_ADMISSION_NOT_CREATE);
	kilt_admission_review_done(&rv);
}

static void test_admission__scope(void **state)
{
	(void)state;
	static const struct {
		const char *kind, *sub, *op;
		enum kilt_admission_scope want;
	} cases[] = {
		{ "{\"group\":\"apps\",\"version\":\"v1\",\"kind\":\"Deployment\"}", "", "CREATE",
		  KILT_ADMISSION_NOT_A_POD },
		{ "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"}", "ephemeralcontainers",
		  "UPDATE", KILT_ADMISSION_NOT_A_POD },
		{ "{\"group\":\"example.com\",\"version\":\"v1\",\"kind\":\"Pod\"}", "", "CREATE",
		  KILT_ADMISSION_NOT_A_POD },
		{ "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"}", "", "UPDATE",
		  KILT_ADMISSION_NOT_CREATE },
		{ "{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"}", "", "CREATE",
		  KILT_ADMISSION_IN_SCOPE },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *text = xasprintf(
			"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
			"\"request\":{\"uid\":\"u\",\"kind\":%s,\"subResource\":\"%s\","
			"\"operation\":\"%s\",\"object\":{},\"oldObject\":{}}}",
			cases[i].kind, cases[i].sub, cases[i].op);
		struct kilt_admission_review rv = { 0 };
		struct kilt_error err = { 0 };
		if (kilt_admission_review_parse(text, strlen(text), &rv, &err) < 0)
			fail_msg("case %zu: %s", i, err.msg);
		assert_int_equal(kilt_admission_scope(&rv), cases[i].want);
		kilt_admission_review_done(&rv);
	}
	assert_string_equal(kilt_admission_scope_name(KILT_ADMISSION_NOT_A_POD), "not_a_pod");
	assert_string_equal(kilt_admission_scope_name(KILT_ADMISSION_NOT_CREATE), "not_create");
}

static void test_admission__invalid(void **state)
{
	(void)state;
	expect_invalid("", "not JSON");
	expect_invalid("{\"a\":1,\"a\":2}", "duplicate");
	expect_invalid("[]", "expected an AdmissionReview object");
	expect_invalid("{\"kind\":\"AdmissionReview\"}", "apiVersion: missing");
	expect_invalid("{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\"}",
		       "apiVersion: expected admission.k8s.io/v1");
	expect_invalid("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}",
		       "kind: expected AdmissionReview");
	expect_invalid("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
		       "request: expected an object");
#define REQ(body)                                                                                  \
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{" body  \
	"}}"
#define KIND_POD "\"kind\":{\"version\":\"v1\",\"kind\":\"Pod\"}"
	expect_invalid(REQ(""), "request.uid: missing");
	expect_invalid(REQ("\"uid\":\"\""), "request.uid: expected a non-empty string");
	expect_invalid(REQ("\"uid\":7"), "request.uid: expected a non-empty string");
	expect_invalid(REQ("\"uid\":\"u\""), "request.kind: expected an object");
	expect_invalid(REQ("\"uid\":\"u\",\"kind\":{\"kind\":\"Pod\"}"),
		       "request.kind.version: missing");
	expect_invalid(
		REQ("\"uid\":\"u\",\"kind\":{\"version\":\"v1\",\"kind\":\"Pod\",\"group\":1}"),
		"request.kind.group: expected a string");
	expect_invalid(REQ("\"uid\":\"u\"," KIND_POD), "request.operation: missing");
	expect_invalid(REQ("\"uid\":\"u\"," KIND_POD ",\"operation\":\"PATCH\""),
		       "request.operation: expected CREATE, UPDATE, DELETE or CONNECT");
	expect_invalid(REQ("\"uid\":\"u\"," KIND_POD ",\"operation\":\"CREATE\""),
		       "request.object: missing for CREATE");
	expect_invalid(REQ("\"uid\":\"u\"," KIND_POD ",\"operation\":\"CREATE\",\"object\":[]"),
		       "request.object: expected an object");
	expect_invalid(REQ("\"uid\":\"u\"," KIND_POD
			   ",\"operation\":\"CREATE\",\"object\":{},\"dryRun\":\"yes\""),
		       "request.dryRun: expected true or false");
	expect_invalid(REQ("\"uid\":\"u\"," KIND_POD
			   ",\"operation\":\"CREATE\",\"object\":{},\"namespace\":{}"),
		       "request.namespace: expected a string");
	expect_invalid(REQ("\"uid\":\"a\\u0000b\""), "not JSON");

	/* a uid longer than any the API server makes */
	char uid[KILT_ADMISSION_MAX_UID + 2];
	memset(uid, 'x', sizeof(uid) - 1);
	uid[sizeof(uid) - 1] = '\0';
	_cleanup_free_ char *long_uid = xasprintf(REQ("\"uid\":\"%s\""), uid);
	expect_invalid(long_uid, "request.uid: longer than 128 bytes");

	/* bad JSON: the place is given */
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	const char *bad = "{\n  \"apiVersion\": \"admission.k8s.io/v1\",\n  \"kind\": }";
	assert_int_equal(kilt_admission_review_parse(bad, strlen(bad), &rv, &err), -EINVAL);
	assert_int_equal(err.line, 3);
	assert_true(err.column > 0);

	/* over the size limit, whatever it holds */
	assert_int_equal(
		kilt_admission_review_parse(POD_CREATE, KILT_ADMISSION_MAX_REVIEW + 1, &rv, &err),
		-E2BIG);
#undef REQ
#undef KIND_POD
}

static void test_admission__uid_salvage(void **state)
{
	(void)state;
	char buf[KILT_ADMISSION_MAX_UID + 1];
	const char *no_kind = "{\"request\":{\"uid\":\"abc-123\"}}";
	assert_true(kilt_admission_uid_salvage(no_kind, strlen(no_kind), buf, sizeof(buf)));
	assert_string_equal(buf, "abc-123");
	const char *cases[] = { "",
				"nope",
				"[]",
				"{\"request\":[]}",
				"{\"request\":{\"uid\":1}}",
				"{\"request\":{\"uid\":\"a\\u0000b\"}}" };
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(buf, 'z', sizeof(buf));
		assert_false(
			kilt_admission_uid_salvage(cases[i], strlen(cases[i]), buf, sizeof(buf)));
		assert_string_equal(buf, "");
	}
	char small[8] = "zzz";
	assert_false(kilt_admission_uid_salvage(no_kind, strlen(no_kind), small, sizeof(small)));
	assert_string_equal(small, "");
}

static json_t *decode_answer(const char *text, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	if (!j)
		fail_msg("answer is not JSON: %s: %s", jerr.text, text);
	assert_string_equal(json_string_value(json_object_get(j, "apiVersion")),
			    "admission.k8s.io/v1");
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "AdmissionReview");
	return j;
}

static void test_admission__answer(void **state)
{
	(void)state;
	/* allowed, no patch: no patchType, no status, no warnings */
	struct kilt_admission_answer a = { .uid = "u-1", .allowed = true };
	size_t len = 0;
	_cleanup_free_ char *plain = kilt_admission_answer_encode(&a, &len);
	assert_int_equal(len, strlen(plain));
	assert_string_equal(plain,
			    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
			    "\"AdmissionReview\",\"response\":{\"uid\":\"u-1\",\"allowed\":true}}");

	/* a patch is sent base64-encoded with its type; an empty patch is not sent */
	json_t *patch = json_loads("[{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{}}]",
				   0, NULL);
	a.patch = patch;
	_cleanup_free_ char *with_patch = kilt_admission_answer_encode(&a, &len);
	json_t *j = decode_answer(with_patch, len);
	json_t *resp = json_object_get(j, "response");
	assert_string_equal(json_string_value(json_object_get(resp, "patchType")), "JSONPatch");
	const char *b64 = json_string_value(json_object_get(resp, "patch"));
	_cleanup_free_ char *decoded = NULL;
	size_t dlen = 0;
	assert_int_equal(kilt_base64_decode(b64, strlen(b64), &decoded, &dlen, NULL), 0);
	json_t *back = json_loadb(decoded, dlen, 0, NULL);
	assert_true(json_equal(back, patch));
	json_decref(back);
	json_decref(j);
	json_array_clear(patch);
	_cleanup_free_ char *empty = kilt_admission_answer_encode(&a, &len);
	assert_null(strstr(empty, "patch"));
	json_decref(patch);

	/* denied with a status; warnings made readable and bounded */
	char long_warning[600];
	memset(long_warning, 'w', sizeof(long_warning) - 1);
	long_warning[sizeof(long_warning) - 1] = '\0';
	/* a 3-byte character straddling the 256-byte cut is dropped whole */
	memcpy(long_warning + 254, "\xe2\x82\xac", 3);
	const char *warnings[20] = { "line\nbreak\ttab", "bad \xff utf8 \xc3", long_warning };
	for (size_t i = 3; i < ARRAY_SIZE(warnings); i++)
		warnings[i] = "more";
	struct kilt_admission_answer d = {
		.uid = "u-2",
		.allowed = false,
		.code = 403,
		.message = "no \x01 way",
		.warnings = warnings,
		.n_warnings = ARRAY_SIZE(warnings),
	};
	_cleanup_free_ char *denied = kilt_admission_answer_encode(&d, &len);
	j = decode_answer(denied, len);
	resp = json_object_get(j, "response");
	assert_string_equal(json_string_value(json_object_get(resp, "uid")), "u-2");
	assert_false(json_is_true(json_object_get(resp, "allowed")));
	json_t *st = json_object_get(resp, "status");
	assert_int_equal(json_integer_value(json_object_get(st, "code")), 403);
	assert_string_equal(json_string_value(json_object_get(st, "message")), "no ? way");
	json_t *ws = json_object_get(resp, "warnings");
	assert_int_equal(json_array_size(ws), KILT_ADMISSION_MAX_WARNINGS);
	assert_string_equal(json_string_value(json_array_get(ws, 0)), "line?break?tab");
	assert_string_equal(json_string_value(json_array_get(ws, 1)), "bad ? utf8 ?");
	const char *cut = json_string_value(json_array_get(ws, 2));
	assert_int_equal(strlen(cut), 254);
	assert_string_equal(json_string_value(json_array_get(ws, 15)),
			    "kilt: 5 more warnings not shown");
	json_decref(j);
}

/* The answer as jansson writes the object it stands for (the encoder writes it directly). */
static char *answer_by_jansson(const struct kilt_admission_answer *a)
{
	json_t *resp = json_object();
	json_object_set_new(resp, "uid", json_string(a->uid ? a->uid : ""));
	json_object_set_new(resp, "allowed", json_boolean(a->allowed));
	if (json_is_array(a->patch) && json_array_size(a->patch) > 0) {
		_cleanup_free_ char *p = json_dumps(a->patch, JSON_COMPACT);
		_cleanup_free_ char *b64 = kilt_base64_encode(p, strlen(p));
		json_object_set_new(resp, "patchType", json_string("JSONPatch"));
		json_object_set_new(resp, "patch", json_string(b64));
	}
	if (a->code || a->message) {
		json_t *st = json_object();
		if (a->code)
			json_object_set_new(st, "code", json_integer(a->code));
		if (a->message)
			json_object_set_new(st, "message", json_string(a->message));
		json_object_set_new(resp, "status", st);
	}
	if (a->n_warnings > 0) {
		json_t *ws = json_array();
		for (size_t i = 0; i < a->n_warnings; i++)
			json_array_append_new(ws, json_string(a->warnings[i]));
		json_object_set_new(resp, "warnings", ws);
	}
	json_t *root = json_pack("{s:s, s:s, s:o}", "apiVersion", "admission.k8s.io/v1", "kind",
				 "AdmissionReview", "response", resp);
	char *out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

/* Byte for byte what jansson writes for the same answer (readable warnings and messages, which
 * the encoder leaves as they are). */
static void test_admission__answer_bytes(void **state)
{
	(void)state;
	json_t *patch = json_loads("[{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":"
				   "{\"kilt.dev/status\":\"{\\\"a\\\":1}\",\"x/y\":\"\u00e9\\n\"}},"
				   "{\"op\":\"replace\",\"path\":\"/spec/containers/0/command\","
				   "\"value\":[\"/kilt/bin/kilt-launch\",\"--\",\"a b\"]}]",
				   0, NULL);
	assert_non_null(patch);
	json_t *empty = json_array();
	const char *uids[] = { "", "0b0a2c3d-1111-2222-3333-444455556666",
			       "quote\" back\\ \xc3\xa9", "tab\tnewline\n\x01" };
	const char *warnings[] = { "kilt: injected: added recipe falco into 2 container(s)",
				   "quote \" and \\ and / and \xe2\x82\xac",
				   "<b>'single'</b> & more" };
	const char *messages[] = { NULL, "kilt: denied (strict mode): not JSON" };
	/* the patch as jansson values, or as its text (patch_text): p 3 and 4 are the texts of 2
	 * and 1 */
	_cleanup_free_ char *patch_text = json_dumps(patch, JSON_COMPACT);
	for (size_t u = 0; u < ARRAY_SIZE(uids); u++)
		for (int allowed = 0; allowed < 2; allowed++)
			for (int p = 0; p < 5; p++)
				for (int code = 0; code < 2; code++)
					for (size_t m = 0; m < ARRAY_SIZE(messages); m++)
						for (size_t w = 0; w <= ARRAY_SIZE(warnings); w++) {
							struct kilt_admission_answer a = {
								.uid = uids[u],
								.allowed = allowed,
								.patch = p == 0	  ? NULL
									 : p == 1 ? empty
										  : patch,
								.code = code ? 403 : 0,
								.message = messages[m],
								.warnings = warnings,
								.n_warnings = w,
							};
							_cleanup_free_ char *want =
								answer_by_jansson(&a);
							if (p == 3 || p == 4) {
								a.patch = NULL;
								a.patch_text =
									p == 3 ? patch_text : "[]";
								a.patch_len = strlen(a.patch_text);
								free(want);
								struct kilt_admission_answer aj = a;
								aj.patch_text = NULL;
								aj.patch = p == 3 ? patch : empty;
								want = answer_by_jansson(&aj);
							}
							size_t len = 0;
							_cleanup_free_ char *got =
								kilt_admission_answer_encode(&a,
											     &len);
							assert_string_equal(got, want);
							assert_int_equal(len, strlen(want));
						}
	json_decref(patch);
	json_decref(empty);
}

static json_t *entry_labels(const json_t *cache, const char *name)
{
	return json_object_get(json_object_get(cache, name), "labels");
}

/* What a warning becomes, one character at a time: a control character or a byte of no valid
 * UTF-8 character is '?', the text cut to `max` bytes on a character boundary. */
static void readable_reference(const char *s, size_t max, struct kbuf *out)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
		bool ok = c >= 0x20 && c != 0x7f;
		if (c >= 0x80)
			ok = n <= len - i &&
			     kilt_utf8_valid_prefix((const unsigned char *)s + i, n) == n;
		if (!ok)
			n = 1;
		if (out->len + n > max)
			break;
		kbuf_add(out, ok ? s + i : "?", n);
		i += n;
	}
}

/* Warnings with a byte that needs a look at every position (the encoder takes eight printable
 * ASCII bytes at a time), and long ones cut with a character across the cut at every place. */
static void test_admission__warnings_every_position(void **state)
{
	(void)state;
	static const char *const specials[] = { "\n",	    "\x01",	    "\x7f",
						"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
						"\xc3",	    "\xff",	    "\xed\xa0\x80" };
	char text[KILT_ADMISSION_MAX_WARNING + 32];
	for (size_t sp = 0; sp < ARRAY_SIZE(specials); sp++) {
		size_t sl = strlen(specials[sp]);
		for (size_t len = 0; len + sl < sizeof(text); len++) {
			for (size_t at = 0; at <= len; at++) {
				if (len > 40 && len < KILT_ADMISSION_MAX_WARNING - 12)
					break; /* short ones, and ones about the cut */
				memset(text, 'a', at);
				memcpy(text + at, specials[sp], sl);
				memset(text + at + sl, 'b', len - at);
				text[len + sl] = '\0';
				const char *w[] = { text };
				struct kilt_admission_answer a = {
					.uid = "u", .allowed = true, .warnings = w, .n_warnings = 1
				};
				size_t n = 0;
				_cleanup_free_ char *got = kilt_admission_answer_encode(&a, &n);
				json_t *j = decode_answer(got, n);
				const char *ws = json_string_value(json_array_get(
					json_object_get(json_object_get(j, "response"), "warnings"),
					0));
				struct kbuf want;
				kbuf_init(&want, SIZE_MAX / 2);
				readable_reference(text, KILT_ADMISSION_MAX_WARNING, &want);
				assert_non_null(ws);
				assert_string_equal(ws, want.data ? want.data : "");
				kbuf_done(&want);
				json_decref(j);
			}
		}
	}
}

static void test_admission__namespace_watch(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	json_auto_t *cache = json_object();
	char *rv = NULL, *cont = NULL;
	const char *page1 = "{\"kind\":\"NamespaceList\",\"metadata\":{\"resourceVersion\":\"10\","
			    "\"continue\":\"next\"},\"items\":[{\"metadata\":{\"name\":\"apps\","
			    "\"labels\":{\"kilt.dev/inject\":\"disabled\",\"n\":1}}}]}";
	assert_int_equal(kilt_k8s_list_decode(page1, strlen(page1), cache, &rv, &cont, &err), 0);
	assert_string_equal(rv, "10");
	assert_string_equal(cont, "next");
	free(cont);
	/* only string values are kept */
	assert_string_equal(
		json_string_value(json_object_get(entry_labels(cache, "apps"), "kilt.dev/inject")),
		"disabled");
	assert_null(json_object_get(entry_labels(cache, "apps"), "n"));
	const char *mod = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"apps\","
			  "\"resourceVersion\":\"11\",\"labels\":{\"pod-security.kubernetes.io/"
			  "enforce\":\"baseline\"}}}}";
	assert_int_equal(kilt_k8s_watch_event_apply(mod, strlen(mod), cache, &rv, &err),
			 KILT_K8S_WATCH_APPLIED);
	assert_string_equal(rv, "11");
	assert_null(json_object_get(entry_labels(cache, "apps"), "kilt.dev/inject"));
	const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":"
			 "\"15\"}}}";
	assert_int_equal(kilt_k8s_watch_event_apply(bm, strlen(bm), cache, &rv, &err), 0);
	assert_string_equal(rv, "15");
	assert_int_equal(json_object_size(cache), 1);
	const char *del = "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"apps\","
			  "\"resourceVersion\":\"16\"}}}";
	assert_int_equal(kilt_k8s_watch_event_apply(del, strlen(del), cache, &rv, &err), 0);
	assert_int_equal(json_object_size(cache), 0);
	const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
			   "\"reason\":\"Expired\"}}";
	assert_int_equal(kilt_k8s_watch_event_apply(gone, strlen(gone), cache, &rv, &err),
			 KILT_K8S_WATCH_GONE);
	assert_string_equal(rv, "16"); /* unchanged: the caller lists again */
	const char *other = "{\"type\":\"ERROR\",\"object\":{\"code\":500,\"message\":\"boom\"}}";
	assert_int_equal(kilt_k8s_watch_event_apply(other, strlen(other), cache, &rv, &err),
			 -EPROTO);
	assert_non_null(strstr(err.msg, "boom"));
	assert_int_equal(kilt_k8s_watch_event_apply("{}", 2, cache, &rv, &err), -EINVAL);
	assert_int_equal(kilt_k8s_list_decode("{\"items\":[]}", 12, cache, &rv, &cont, &err),
			 -EINVAL); /* no resourceVersion */
	free(rv);
}

static void test_admission__pull_secret_names(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	json_auto_t *pod = json_loads("{\"spec\":{\"imagePullSecrets\":[{\"name\":\"a\"},"
				      "{\"name\":\"b/c\"},{},{\"name\":\"a\"}]}}",
				      0, NULL);
	json_auto_t *sa =
		json_loads("{\"imagePullSecrets\":[{\"name\":\"s\"},{\"name\":\"a\"}]}", 0, NULL);
	json_t *names = NULL;
	assert_int_equal(kilt_k8s_pull_secret_names(pod, sa, &names, &err), 0);
	assert_int_equal(json_array_size(names), 2);
	assert_string_equal(json_string_value(json_array_get(names, 0)), "a");
	assert_string_equal(json_string_value(json_array_get(names, 1)), "s");
	json_decref(names);
	json_auto_t *bad = json_loads("{\"spec\":{\"imagePullSecrets\":\"a\"}}", 0, NULL);
	assert_int_equal(kilt_k8s_pull_secret_names(bad, NULL, &names, &err), -EINVAL);
}

/* A review with metadata.managedFields in object (first member) and oldObject (last member). */
#define SKIM_MF                                                                                    \
	"[{\"manager\":\"kubectl\",\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\".\":{}}},\"k:{"   \
	"\\\"name\\\":\\\"a\\\"}\":{}}}]"
#define SKIM_REVIEW(OBJ_META, OLD_META)                                                            \
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"       \
	"\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"             \
	"\"operation\":\"UPDATE\",\"object\":{\"metadata\":{" OBJ_META "},\"spec\":{}},"           \
	"\"oldObject\":{\"metadata\":{" OLD_META "}}}}"

/* The members of request that kilt_admission_review_parse() leaves out. */
static const char *const request_never_read[] = { "resource",	     "requestKind",
						  "requestResource", "requestSubResource",
						  "userInfo",	     "options",
						  "oldObject" };
/* ... of request.object.spec */
static const char *const spec_never_read[] = { "tolerations",
					       "dnsPolicy",
					       "dnsConfig",
					       "schedulerName",
					       "priority",
					       "priorityClassName",
					       "preemptionPolicy",
					       "enableServiceLinks",
					       "terminationGracePeriodSeconds",
					       "topologySpreadConstraints",
					       "restartPolicy",
					       "serviceAccount" };
/* ... of each container of request.object.spec.containers */
static const char *const container_never_read[] = { "resources",
						    "readinessProbe",
						    "livenessProbe",
						    "startupProbe",
						    "ports",
						    "terminationMessagePath",
						    "terminationMessagePolicy",
						    "imagePullPolicy",
						    "lifecycle",
						    "resizePolicy" };

/* ... of each volume of request.object.spec.volumes */
static const char *const volume_never_read[] = {
	"configMap", "secret", "projected", "downwardAPI", "emptyDir", "persistentVolumeClaim"
};

/* `root` (a review read whole) less what kilt_admission_review_parse() leaves out: request's
 * members above; of request.object, metadata.managedFields, status, the spec's members above,
 * those above of each container of spec.containers (not of initContainers) and of each volume
 * of spec.volumes. */
static void del_never_read(json_t *root)
{
	json_t *req = json_object_get(root, "request");
	for (size_t i = 0; i < ARRAY_SIZE(request_never_read); i++)
		json_object_del(req, request_never_read[i]);
	json_t *obj = json_object_get(req, "object");
	json_object_del(json_object_get(obj, "metadata"), "managedFields");
	json_object_del(obj, "status");
	json_t *spec = json_object_get(obj, "spec");
	for (size_t i = 0; i < ARRAY_SIZE(spec_never_read); i++)
		json_object_del(spec, spec_never_read[i]);
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(spec, "containers"), i, c) {
		for (size_t k = 0; k < ARRAY_SIZE(container_never_read); k++)
			json_object_del(c, container_never_read[k]);
	}
	json_array_foreach (json_object_get(spec, "volumes"), i, c) {
		for (size_t k = 0; k < ARRAY_SIZE(volume_never_read); k++)
			json_object_del(c, volume_never_read[k]);
	}
}

/* Whether `e` is an env entry as the API server writes one: a string "name", a string or null
 * "value" or none, nothing else. */
static bool plain_env_entry(const json_t *e)
{
	const json_t *v = json_object_get(e, "value");
	return json_is_object(e) && json_is_string(json_object_get(e, "name")) &&
	       json_object_size(e) == 1u + (v != NULL) &&
	       (!v || json_is_string(v) || json_is_null(v));
}

/* The env lists of rv's containers against those of the whole decode: an entry still to be read
 * is json_null() where the whole decode has a plain entry, and every plain entry is one; then
 * every entry read (kilt_env_lists_read_all()). The number of entries that were to be read. */
static size_t read_env_lists(struct kilt_admission_review *rv,
			     const struct kilt_admission_review *whole)
{
	const json_t *cs = json_object_get(json_object_get(rv->object, "spec"), "containers");
	const json_t *wcs = json_object_get(json_object_get(whole->object, "spec"), "containers");
	size_t unread = 0;
	for (size_t i = 0; i < json_array_size(cs); i++) {
		const json_t *env = json_object_get(json_array_get(cs, i), "env");
		const json_t *wenv = json_object_get(json_array_get(wcs, i), "env");
		const struct kilt_env_list *l = kilt_env_list_find(rv->env_lists, env);
		for (size_t k = 0; json_is_array(env) && k < json_array_size(env); k++) {
			const json_t *we = json_array_get(wenv, k);
			bool plain = plain_env_entry(we);
			/* the name it is known by until then */
			const char *name = l ? kilt_env_list_unread_name(l, k) : NULL;
			const char *want =
				plain ? json_string_value(json_object_get(we, "name")) : NULL;
			if (!name != !want || (name && strcmp(name, want) != 0))
				fail_msg("entry %zu of container %zu: named %s, not %s", k, i,
					 name ? name : "(none)", want ? want : "(none)");
			assert_int_equal(json_is_null(json_array_get(env, k)) && !json_is_null(we),
					 plain);
			unread += plain;
		}
	}
	assert_int_equal(rv->env_lists != NULL, unread > 0);
	kilt_env_lists_read_all(rv->env_lists);
	return unread;
}

/* The review's tree without what kilt_admission_review_parse() leaves out (del_never_read()),
 * and every other member as the whole decode has it, once the env entries are read. */
static size_t assert_decoded_less_never_read(const char *text)
{
	struct kilt_admission_review rv = { 0 }, whole = { 0 };
	struct kilt_error err = { 0 };
	if (kilt_admission_review_parse(text, strlen(text), &rv, &err) != 0)
		fail_msg("refused: %s: %.300s", err.msg, text);
	assert_int_equal(kilt_admission_review_parse_whole(text, strlen(text), &whole, &err), 0);
	const json_t *req = json_object_get(rv.root, "request");
	assert_null(json_object_get(json_object_get(json_object_get(req, "object"), "metadata"),
				    "managedFields"));
	assert_null(json_object_get(req, "oldObject"));
	size_t unread = read_env_lists(&rv, &whole);
	json_auto_t *want = json_deep_copy(whole.root);
	del_never_read(want);
	_cleanup_free_ char *a = kilt_json_dumps(rv.root, JSON_COMPACT);
	_cleanup_free_ char *b = kilt_json_dumps(want, JSON_COMPACT);
	assert_string_equal(a, b);
	kilt_admission_review_done(&rv);
	kilt_admission_review_done(&whole);
	return unread;
}

/* Refused as the whole text is, with the same message and place. */
static void assert_refused_as_whole(const char *text, size_t len)
{
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 }, werr = { 0 };
	int r = kilt_admission_review_parse(text, len, &rv, &err);
	int w = kilt_admission_review_parse_whole(text, len, &rv, &werr);
	if (r == 0 || w == 0)
		fail_msg("accepted (%d, %d): %.*s", r, w, (int)(len < 300 ? len : 300), text);
	assert_int_equal(r, w);
	assert_string_equal(err.msg, werr.msg);
	assert_int_equal(err.line, werr.line);
	assert_int_equal(err.column, werr.column);
}

/* Refused with the message and place of the whole decode of `as` (the same length). */
static void assert_refused_as(const char *text, const char *as)
{
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 }, werr = { 0 };
	assert_int_equal(strlen(text), strlen(as));
	int r = kilt_admission_review_parse(text, strlen(text), &rv, &err);
	int w = kilt_admission_review_parse_whole(as, strlen(as), &rv, &werr);
	if (r == 0 || w == 0)
		fail_msg("accepted (%d, %d): %.300s", r, w, text);
	assert_int_equal(r, w);
	assert_string_equal(err.msg, werr.msg);
	assert_int_equal(err.line, werr.line);
	assert_int_equal(err.column, werr.column);
}

/* Duplicate keys inside managedFields are not refused (kilt never reads them; the API server
 * would keep the last one): the review is the text read without the duplicate check, less
 * managedFields. The whole decode refuses it. Duplicates anywhere else still are refused. */
static void test_admission__managed_fields_duplicates(void **state)
{
	(void)state;
	static const char *const read[] = {
		SKIM_REVIEW("\"managedFields\":[{\"f:a\":{},\"f:a\":{}}]", ""),
		SKIM_REVIEW("\"managedFields\":[{\"f:/\":{},\"f:\\/\":{}}]", ""),
		SKIM_REVIEW("\"managedFields\":[{\"\\u00e9\":{},\"\xc3\xa9\":{}}]", ""),
		/* deep inside, in both objects, with the member before and after others */
		SKIM_REVIEW(
			"\"name\":\"p\",\"managedFields\":[{\"manager\":\"m\",\"fieldsV1\":{"
			"\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":\\\"a\\\"}\":{\".\":{},"
			"\".\":{}}}}},\"manager\":\"n\"}],\"labels\":{}",
			"\"managedFields\":[{\"a\":[{\"b\":1,\"b\":2}],\"a\":3}]"),
		/* anywhere in oldObject, which is left out whole */
		SKIM_REVIEW("\"name\":\"p\"",
			    "\"labels\":{\"x\":\"1\",\"x\":\"2\"},\"name\":\"p\""),
		/* and a number the reader leaves to jansson */
		SKIM_REVIEW("\"managedFields\":[{\"t\":1,\"t\":1.000000000000000000000000000000"
			    "0000000000000000000000000000000000000001}]",
			    ""),
	};
	for (size_t i = 0; i < ARRAY_SIZE(read); i++) {
		const char *text = read[i];
		struct kilt_admission_review rv = { 0 };
		struct kilt_error err = { 0 };
		if (kilt_admission_review_parse(text, strlen(text), &rv, &err) != 0)
			fail_msg("refused: %s: %.300s", err.msg, text);
		struct kilt_admission_review whole = { 0 };
		assert_int_equal(
			kilt_admission_review_parse_whole(text, strlen(text), &whole, &err),
			-EINVAL);
		assert_non_null(strstr(err.msg, "duplicate object key"));
		json_auto_t *want = json_loadb(text, strlen(text), 0, NULL);
		del_never_read(want);
		_cleanup_free_ char *a = kilt_json_dumps(rv.root, JSON_COMPACT);
		_cleanup_free_ char *b = kilt_json_dumps(want, JSON_COMPACT);
		assert_string_equal(a, b);
		assert_string_equal(rv.uid, "u");
		kilt_admission_review_done(&rv);
	}

	/* A duplicate outside (the pod kept, metadata's own members, managedFields twice),
	 * after one inside or not: refused where it is. */
	static const char *const outside[][2] = {
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2}],\"name\":\"p\",\"name\":\"q\"",
			      ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2}],\"name\":\"p\",\"name\":\"q\"",
			      "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2}],\"managedFields\":[]", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2}],\"managedFields\":[]", "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2}],"
			      "\"labels\":{\"x\":\"1\",\"x\":\"2\"}",
			      ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2}],"
			      "\"labels\":{\"x\":\"1\",\"x\":\"2\"}",
			      "") },
		{ "{\"apiVersion\":\"admission.k8s.io/"
		  "v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		  "\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		  "\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"managedFields\":[{\"a\":1,"
		  "\"a\":1}]},\"spec\":{\"containers\":[{\"name\":\"a\",\"name\":\"b\"}]}}}}",
		  "{\"apiVersion\":\"admission.k8s.io/"
		  "v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		  "\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		  "\"operation\":\"CREATE\",\"object\":{\"metadata\":{\"managedFields\":[{\"a\":1,"
		  "\"b\":1}]},\"spec\":{\"containers\":[{\"name\":\"a\",\"name\":\"b\"}]}}}}" },
		/* not JSON inside after a duplicate: jansson's error for it */
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2},\"\\x\"]", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2},\"\\x\"]", "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2},\"\xc3\"]", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2},\"\xc3\"]", "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2},\"\\ud800\"]", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2},\"\\ud800\"]", "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2},1e999]", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2},1e999]", "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2},]", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2},]", "") },
		{ SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"a\":2}", ""),
		  SKIM_REVIEW("\"managedFields\":[{\"a\":1,\"b\":2}", "") },
	};
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++)
		assert_refused_as(outside[i][0], outside[i][1]);
}

/* request's members that describe the call (resource, requestKind, requestResource,
 * requestSubResource, userInfo, options) are left out of the tree: read and checked as the rest
 * is, but for duplicate keys inside them (kilt never reads them); the review is otherwise as
 * the whole decode has it. */
static void test_admission__request_never_read(void **state)
{
	(void)state;
	struct kilt_admission_review rv = { 0 }, whole = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_admission_review_parse(POD_CREATE, strlen(POD_CREATE), &rv, &err), 0);
	assert_int_equal(
		kilt_admission_review_parse_whole(POD_CREATE, strlen(POD_CREATE), &whole, &err), 0);
	const json_t *req = json_object_get(rv.root, "request");
	const json_t *wreq = json_object_get(whole.root, "request");
	for (size_t i = 0; i < ARRAY_SIZE(request_never_read); i++)
		assert_null(json_object_get(req, request_never_read[i]));
	assert_non_null(json_object_get(wreq, "userInfo"));
	assert_non_null(json_object_get(wreq, "options"));
	assert_true(json_object_get(wreq, "oldObject") != NULL);
	static const char *const kept[] = { "uid",	 "kind",   "namespace",
					    "operation", "object", "dryRun" };
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		assert_true(
			json_equal(json_object_get(req, kept[i]), json_object_get(wreq, kept[i])));
	assert_int_equal(json_object_size(req), ARRAY_SIZE(kept));
	kilt_admission_review_done(&rv);
	kilt_admission_review_done(&whole);

#define CALL_REVIEW(MEMBERS)                                                                       \
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"       \
	"\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"             \
	"\"operation\":\"CREATE\"," MEMBERS ",\"object\":{\"metadata\":{\"name\":\"p\","           \
	"\"labels\":{\"userInfo\":\"kept\"}},\"userInfo\":{\"kept\":true}}}}"
	/* read, as the whole decode reads them less those members; the same names elsewhere
	 * kept */
	static const char *const read[] = {
		CALL_REVIEW("\"userInfo\":{\"username\":\"a\",\"groups\":[\"x\",\"y\"],"
			    "\"extra\":{\"k\":[\"\\u00e9\"]}}"),
		CALL_REVIEW(
			"\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},"
			"\"requestKind\":{},\"requestResource\":{},\"requestSubResource\":\"\","
			"\"options\":{\"kind\":\"CreateOptions\",\"fieldManager\":\"kubectl\"}"),
		CALL_REVIEW("\"options\":null,\"userInfo\":[1,2.5,true,false,null]"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(read); i++)
		assert_decoded_less_never_read(read[i]);
	/* a duplicate inside: read, the whole decode refuses it */
	const char *dup = CALL_REVIEW("\"userInfo\":{\"username\":\"a\",\"username\":\"b\"},"
				      "\"options\":{\"k\":1,\"k\":2}");
	assert_int_equal(kilt_admission_review_parse(dup, strlen(dup), &rv, &err), 0);
	assert_null(json_object_get(json_object_get(rv.root, "request"), "userInfo"));
	assert_string_equal(rv.uid, "u");
	kilt_admission_review_done(&rv);
	assert_int_equal(kilt_admission_review_parse_whole(dup, strlen(dup), &whole, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "duplicate object key"));
	/* the member itself twice, and whatever is not JSON inside: refused as the whole text
	 * is */
	static const char *const refused[] = {
		CALL_REVIEW("\"userInfo\":{},\"userInfo\":{}"),
		CALL_REVIEW("\"userInfo\":{\"username\":\"\\x\"}"),
		CALL_REVIEW("\"userInfo\":{\"username\":\"\xc3\"}"),
		CALL_REVIEW("\"userInfo\":{\"username\":\"\\ud800\"}"),
		CALL_REVIEW("\"userInfo\":{\"uid\":01}"),
		CALL_REVIEW("\"options\":{\"a\":[1,]}"),
		CALL_REVIEW("\"requestSubResource\":\"a\tb\""),
		CALL_REVIEW("\"resource\":{\"group\" 1}"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		assert_refused_as_whole(refused[i], strlen(refused[i]));
#undef CALL_REVIEW
}

/* Two recipes for comparing the Pod engine's answers: one that mounts an agent, adds a
 * capability and a variable; another (a recipe change) with other mounts, no capability. */
static const char RECIPE_A[] =
	"platforms: [ linux/amd64, linux/arm64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-agent, image: \"example/agent:1\", volumes: [ /kilt ] } ]\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"  environment: { AGENT_NAME: ${original.name} }\n"
	"}\n";
static const char RECIPE_B[] =
	"deploy {\n"
	"  entrypoint: [ /opt/agent/bin/run, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: agent, image: \"example/agent:2\", volumes: [ /opt/agent, /etc/a ] } "
	"]\n"
	"}\n";

/* Recipes A and B, loaded into *ra and *rb (the caller frees them), named in *a and *b. */
static void load_recipes(struct kilt_recipe **ra, struct kilt_recipe **rb,
			 struct kilt_k8s_recipe *a, struct kilt_k8s_recipe *b)
{
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_recipe_load_string(RECIPE_A, sizeof(RECIPE_A) - 1, "a", ra, &err), 0);
	assert_int_equal(kilt_recipe_load_string(RECIPE_B, sizeof(RECIPE_B) - 1, "b", rb, &err), 0);
	*a = (struct kilt_k8s_recipe){ .name = "a", .recipe = *ra };
	*b = (struct kilt_k8s_recipe){ .name = "b", .recipe = *rb };
}

/* What the webhook answers for the pod of `rv` with recipe `kr` (the Pod engine's patch, its
 * warnings and the reasons of its decisions), as JSON text; the injected pod in *ret_pod when
 * asked. As the webhook does: the review's pod patched in place, with its env lists. */
static char *engine_answer(struct kilt_admission_review *rv, const struct kilt_k8s_recipe *kr,
			   json_t **ret_pod)
{
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = kr;
	o.n_recipes = 1;
	o.env_lists = rv->env_lists;
	struct kilt_k8s_namespace ns = { .name = "shop" };
	struct kilt_k8s_result res;
	struct kilt_error err = { 0 };
	if (kilt_k8s_mutate_owned(json_incref((json_t *)(uintptr_t)rv->object), &ns, &o, &res,
				  &err) != 0)
		fail_msg("the engine failed: %s", err.msg);
	kilt_env_lists_read_all(rv->env_lists);
	json_auto_t *reasons = json_array();
	for (size_t i = 0; i < res.report.n_decisions; i++)
		json_array_append_new(reasons, json_string(res.report.decisions[i].reason
								   ? res.report.decisions[i].reason
								   : ""));
	json_auto_t *all = json_pack("{sOsOsO}", "patch", res.patch, "warnings", res.warnings,
				     "reasons", reasons);
	char *text = kilt_json_dumps(all, JSON_COMPACT);
	if (ret_pod)
		*ret_pod = json_incref(res.pod);
	kilt_k8s_result_done(&res);
	return text;
}

/* A review's text with request.object replaced by `pod`. */
static char *review_with(const char *text, const json_t *pod)
{
	json_auto_t *r = json_loads(text, 0, NULL);
	assert_non_null(r);
	json_object_set_new(json_object_get(r, "request"), "object", json_deep_copy(pod));
	return kilt_json_dumps(r, JSON_COMPACT);
}

/* The review decoded (it leaves out what kilt never reads) and decoded whole give the same
 * answers from the Pod engine with recipe A (an injection), then, for the pod A injected, with
 * recipe A again (a re-invocation: nothing to do) and with recipe B (A's injection taken back,
 * B's made). Returns the pod A injected. */
static json_t *assert_same_answers(const char *text, const struct kilt_k8s_recipe *a,
				   const struct kilt_k8s_recipe *b)
{
	struct kilt_admission_review rv = { 0 }, whole = { 0 };
	struct kilt_error err = { 0 };
	if (kilt_admission_review_parse(text, strlen(text), &rv, &err) != 0)
		fail_msg("refused: %s", err.msg);
	assert_int_equal(kilt_admission_review_parse_whole(text, strlen(text), &whole, &err), 0);
	json_t *injected = NULL;
	_cleanup_free_ char *got = engine_answer(&rv, a, NULL);
	_cleanup_free_ char *want = engine_answer(&whole, a, &injected);
	assert_string_equal(got, want);
	assert_non_null(strstr(got, "\"op\":\"add\""));
	kilt_admission_review_done(&rv);
	kilt_admission_review_done(&whole);
	_cleanup_free_ char *again = review_with(text, injected);
	const struct kilt_k8s_recipe *next[] = { a, b };
	for (size_t i = 0; i < ARRAY_SIZE(next); i++) {
		assert_int_equal(kilt_admission_review_parse(again, strlen(again), &rv, &err), 0);
		assert_int_equal(
			kilt_admission_review_parse_whole(again, strlen(again), &whole, &err), 0);
		_cleanup_free_ char *g = engine_answer(&rv, next[i], NULL);
		_cleanup_free_ char *w = engine_answer(&whole, next[i], NULL);
		assert_string_equal(g, w);
		assert_true(i == 0 ? strstr(g, "\"patch\":[]") != NULL
				   : strstr(g, "\"op\":\"remove\"") != NULL);
		kilt_admission_review_done(&rv);
		kilt_admission_review_done(&whole);
	}
	return injected;
}

/* A review of a pod whose containers have the env lists `env0` and `env1` and whose init
 * container has `init_env`. */
static char *env_review(const char *env0, const char *env1, const char *init_env)
{
	return xasprintf(
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u-1\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		"\"namespace\":\"shop\",\"operation\":\"CREATE\",\"object\":{\"apiVersion\":\"v1\","
		"\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\"},"
		"\"spec\":{\"initContainers\":[{\"name\":\"init\",\"image\":\"example/init:1\","
		"\"command\":[\"/init\"],\"env\":%s}],\"containers\":[{\"name\":\"app\","
		"\"image\":\"example/app:1\",\"command\":[\"/app\"],\"env\":%s},{\"name\":\"side\","
		"\"image\":\"example/side:1\",\"command\":[\"/side\"],\"env\":%s}]}}}}",
		init_env, env0, env1);
}

/* The entries of spec.containers' env lists written as the API server writes them (a string
 * name, a string or null value or none, nothing else) are read when first needed, the others at
 * once: the tree read whole is the whole decode's, and the Pod engine's answers are the same,
 * also where the recipe's variable replaces an entry not read yet (AGENT_NAME) and for names
 * given twice (the last taken). An entry refused by the whole decode is refused the same way. */
static void test_admission__env_lists(void **state)
{
	(void)state;
	struct kilt_recipe *ra = NULL, *rb = NULL;
	struct kilt_k8s_recipe a, b;
	load_recipes(&ra, &rb, &a, &b);
	static const char mixed[] =
		"[{\"name\":\"A\",\"value\":\"1\"},{\"value\":\"2\",\"name\":\"B\"},{\"name\":"
		"\"C\"},"
		"{\"name\":\"D\",\"value\":null},"
		"{\"name\":\"E\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
		"{\"name\":\"F\",\"value\":\"x\",\"extra\":1},{\"name\":\"G\\u0041\",\"value\":"
		"\"e\\n\"},"
		"{\"name\":\"\\\"\",\"value\":\"q\"},{\"name\":\"\\\"\\\"x\",\"value\":\"q\"},"
		" { \"name\" : \"AGENT_NAME\" , \"value\" : \"old\" } "
		",{\"name\":\"A\",\"value\":\"2\"},"
		"{\"name\":7},{\"value\":\"nameless\"},{},\"text\",null,[],{\"name\":\"H\","
		"\"value\":1},"
		"{\"name\":\"\\u00e9\",\"value\":\"\xc3\xa9\"}]";
	static const char few[] =
		"[{\"name\":\"X\",\"value\":\"1\"},{\"name\":\"Y\",\"value\":\"\"}]";
	_cleanup_free_ char *t1 = env_review(mixed, few, few);
	/* A, B, C, D, GA, ", ""x, AGENT_NAME, A again, é; X, Y (not the init container's) */
	assert_int_equal(assert_decoded_less_never_read(t1), 12);
	json_decref(assert_same_answers(t1, &a, &b));
	_cleanup_free_ char *t2 = env_review("[]", "\"not a list\"", "[]");
	assert_int_equal(assert_decoded_less_never_read(t2), 0);
	json_decref(assert_same_answers(t2, &a, &b));
	/* every entry plain, the recipe's name among them: the engine's table of names */
	_cleanup_free_ char *t3 =
		env_review(few, "[{\"name\":\"AGENT_NAME\",\"value\":\"side\"}]", "[]");
	assert_int_equal(assert_decoded_less_never_read(t3), 3);
	json_decref(assert_same_answers(t3, &a, &b));

	/* names of 15, 16, 17 and more bytes (copied 16 bytes at a time up to 16), the last one
	 * the list's last member */
	static const char lengths[] =
		"[{\"name\":\"SIXTEEN_BYTES_AB\",\"value\":\"1\"},{\"name\":\"FIFTEEN_BYTES_A\","
		"\"value\":\"2\"},{\"name\":\"SEVENTEEN_BYTES_A\",\"value\":null},{\"name\":"
		"\"A_NAME_LONGER_THAN_THIRTY_TWO_BYTES\",\"value\":\"3\"},{\"name\":\"\",\"value\":"
		"\"\"},{\"value\":null,\"name\":\"LAST_SIXTEEN_BYT\"}]";
	_cleanup_free_ char *t4 = env_review(lengths, "[{\"value\":\"v\",\"name\":\"Z\"}]", "[]");
	assert_int_equal(assert_decoded_less_never_read(t4), 7);
	json_decref(assert_same_answers(t4, &a, &b));

	/* more entries (300) and bytes of names (over 9,000) than the reader gathers on its
	 * stack, one entry in ten decoded at once, one in seven with an escape in its name */
	struct kbuf many;
	kbuf_init(&many, SIZE_MAX / 2);
	kbuf_addc(&many, '[');
	for (size_t i = 0; i < 300; i++) {
		char entry[128];
		int len = snprintf(
			entry, sizeof(entry),
			i % 10 == 3 ? "%s{\"name\":\"N_%zu\",\"valueFrom\":{}}"
			: i % 7 == 2
				? "%s{\"name\":\"AN_ESCAPED_NAME_\\u0041_%zu\",\"value\":\"v\"}"
				: "%s{\"name\":\"A_NAME_OF_THIRTY_BYTES_OR_SO_%zu\",\"value\":"
				  "\"v\"}",
			i ? "," : "", i);
		kbuf_add(&many, entry, (size_t)len);
	}
	kbuf_adds(&many, "]");
	kbuf_addc(&many, '\0');
	_cleanup_free_ char *t5 = env_review(many.data, few, "[]");
	assert_int_equal(assert_decoded_less_never_read(t5), 270 + 2);
	json_decref(assert_same_answers(t5, &a, &b));
	kbuf_done(&many);

	static const char *const refused[] = {
		"[{\"name\":\"A\",\"name\":\"B\"}]",
		"[{\"name\":\"A\",\"value\":\"1\",\"value\":\"2\"}]",
		"[{\"name\":\"A\",\"value\":\"\xc3\"}]",
		"[{\"name\":\"A\",\"value\":\"\\u0000\"}]",
		"[{\"name\":\"A\",\"value\":\"1\"},]",
		"[{\"name\":\"A\",\"value\":\"1\"}",
		"[{\"name\":\"A\" \"value\":\"1\"}]",
		"[{\"name\":\"A\",\"value\":nul}]",
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		_cleanup_free_ char *t = env_review(refused[i], few, "[]");
		assert_refused_as_whole(t, strlen(t));
		/* and every cut of it */
		for (size_t len = strlen(t) / 2; len < strlen(t); len += 7)
			assert_refused_as_whole(t, len);
	}
	kilt_recipe_free(ra);
	kilt_recipe_free(rb);
}

/* Members of the pod the Pod engine never reads nor writes (the spec's scheduling and lifecycle
 * members, status, a volume's source, and a container's resources, probes, ports, pull and
 * termination policies, lifecycle, resize policy) are left out of the tree, as is oldObject; the same names elsewhere
 * (an init container's, labels, annotations, a volume's, nodeSelector's, an unknown member's)
 * are kept. The answers are those of the whole tree: with every one of those members present,
 * in a review of a bench-like Deployment pod, and with the pod injected already. */
static void test_admission__pod_never_read(void **state)
{
	(void)state;
	struct kilt_error err = { 0 };
	struct kilt_recipe *ra = NULL, *rb = NULL;
	struct kilt_k8s_recipe a, b;
	load_recipes(&ra, &rb, &a, &b);

	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	assert_int_equal(kilt_read_file(KILT_SOURCE_DIR "/fuzz/corpus/admission/pod-never-read",
					(size_t)1 << 20, &text, &len),
			 0);
	assert_decoded_less_never_read(text);
	struct kilt_admission_review rv = { 0 }, whole = { 0 };
	assert_int_equal(kilt_admission_review_parse(text, len, &rv, &err), 0);
	assert_int_equal(kilt_admission_review_parse_whole(text, len, &whole, &err), 0);
	const json_t *spec = json_object_get(rv.object, "spec");
	const json_t *wspec = json_object_get(whole.object, "spec");
	for (size_t i = 0; i < ARRAY_SIZE(spec_never_read); i++) {
		assert_null(json_object_get(spec, spec_never_read[i]));
		assert_non_null(json_object_get(wspec, spec_never_read[i]));
	}
	assert_null(json_object_get(rv.object, "status"));
	assert_non_null(json_object_get(whole.object, "status"));
	for (size_t c = 0; c < 2; c++) {
		const json_t *sc = json_array_get(json_object_get(spec, "containers"), c);
		const json_t *wc = json_array_get(json_object_get(wspec, "containers"), c);
		const json_t *ic = json_array_get(json_object_get(spec, "initContainers"), 0);
		for (size_t i = 0; i < ARRAY_SIZE(container_never_read); i++) {
			assert_null(json_object_get(sc, container_never_read[i]));
			assert_non_null(json_object_get(wc, container_never_read[i]));
			assert_non_null(json_object_get(ic, container_never_read[i]));
		}
		assert_non_null(json_object_get(sc, "image"));
	}
	/* elements that are not objects, as they are */
	assert_int_equal(json_array_size(json_object_get(spec, "containers")), 4);
	assert_true(json_is_null(json_array_get(json_object_get(spec, "containers"), 3)));
	const json_t *meta = json_object_get(rv.object, "metadata");
	assert_non_null(json_object_get(json_object_get(meta, "labels"), "resources"));
	assert_non_null(json_object_get(json_object_get(meta, "annotations"), "tolerations"));
	const json_t *vols = json_object_get(spec, "volumes");
	const json_t *wvols = json_object_get(wspec, "volumes");
	assert_int_equal(json_array_size(vols), ARRAY_SIZE(volume_never_read) + 1);
	for (size_t i = 0; i < ARRAY_SIZE(volume_never_read); i++) {
		/* one volume of each source, its name kept */
		assert_null(json_object_get(json_array_get(vols, i), volume_never_read[i]));
		assert_non_null(json_object_get(json_array_get(wvols, i), volume_never_read[i]));
		assert_non_null(json_object_get(json_array_get(vols, i), "name"));
	}
	/* hostPath is kept, and an unknown member */
	assert_non_null(json_object_get(json_array_get(vols, 6), "hostPath"));
	assert_non_null(json_object_get(json_array_get(vols, 0), "ports"));
	assert_non_null(json_object_get(json_object_get(spec, "nodeSelector"), "priority"));
	assert_non_null(json_object_get(spec, "futureSpecField"));
	assert_non_null(json_object_get(spec, "serviceAccountName"));
	kilt_admission_review_done(&rv);
	kilt_admission_review_done(&whole);
	json_auto_t *injected = assert_same_answers(text, &a, &b);
	/* the injected pod still has them all */
	const json_t *app =
		json_array_get(json_object_get(json_object_get(injected, "spec"), "containers"), 0);
	assert_non_null(json_object_get(app, "readinessProbe"));
	assert_non_null(json_object_get(app, "env"));

	/* a Deployment's pod as bench/webhook sends it */
	_cleanup_free_ char *real = NULL;
	assert_int_equal(kilt_read_file(KILT_SOURCE_DIR "/fuzz/corpus/admission/skim-real",
					(size_t)1 << 20, &real, &len),
			 0);
	assert_true(assert_decoded_less_never_read(real) > 0);
	json_decref(assert_same_answers(real, &a, &b));

	/* a duplicate key inside what is left out (a container's probe, oldObject) is not
	 * refused; the member twice in a container, a duplicate in an init container's probe
	 * (kept) and what is not JSON inside are refused as the whole decode refuses them */
	_cleanup_free_ char *dup = NULL;
	assert_int_equal(kilt_read_file(KILT_SOURCE_DIR
					"/fuzz/corpus/admission/pod-never-read-dup-inside",
					(size_t)1 << 20, &dup, &len),
			 0);
	assert_int_equal(kilt_admission_review_parse(dup, len, &rv, &err), 0);
	assert_null(json_object_get(json_object_get(rv.root, "request"), "oldObject"));
	kilt_admission_review_done(&rv);
	assert_int_equal(kilt_admission_review_parse_whole(dup, len, &whole, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "duplicate object key"));
	static const char *const refused[] = { "pod-never-read-member-twice",
					       "pod-never-read-dup-init",
					       "pod-never-read-bad-escape" };
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		_cleanup_free_ char *path =
			xasprintf("%s/fuzz/corpus/admission/%s", KILT_SOURCE_DIR, refused[i]);
		_cleanup_free_ char *bad = NULL;
		assert_int_equal(kilt_read_file(path, (size_t)1 << 20, &bad, &len), 0);
		assert_refused_as_whole(bad, len);
	}
	kilt_recipe_free(ra);
	kilt_recipe_free(rb);
}

static void test_admission__managed_fields(void **state)
{
	(void)state;
	/* first and last member, with whitespace around */
	const char *text = SKIM_REVIEW("\"managedFields\":" SKIM_MF " , \"name\":\"p\"",
				       "\"name\":\"p\", \"managedFields\" : " SKIM_MF);
	assert_decoded_less_never_read(text);
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_admission_review_parse(text, strlen(text), &rv, &err), 0);
	json_auto_t *want =
		json_loads("{\"object\":{\"metadata\":{\"name\":\"p\"},\"spec\":{}}}", 0, NULL);
	const json_t *req = json_object_get(rv.root, "request");
	assert_true(json_equal(json_object_get(req, "object"), json_object_get(want, "object")));
	assert_null(json_object_get(req, "oldObject"));
	kilt_admission_review_done(&rv);
	assert_int_equal(kilt_admission_review_parse_whole(text, strlen(text), &rv, &err), 0);
	assert_non_null(json_object_get(json_object_get(rv.object, "metadata"), "managedFields"));
	kilt_admission_review_done(&rv);

	static const char *const read[] = {
		/* the only member */
		SKIM_REVIEW(" \"managedFields\":[] ", ""),
		/* elsewhere it is kept */
		SKIM_REVIEW("\"labels\":{\"managedFields\":\"x\"}",
			    "\"annotations\":{\"managedFields\":\"y\"}"),
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
		"\"managedFields\":[],\"request\":{\"uid\":\"u\",\"kind\":{\"group\":\"\","
		"\"version\":\"v1\",\"kind\":\"Pod\"},\"operation\":\"DELETE\",\"metadata\":{"
		"\"managedFields\":[]},\"object\":null,\"oldObject\":{\"spec\":{\"metadata\":{"
		"\"managedFields\":1}},\"managedFields\":2}}}",
		/* what jansson reads, managedFields can hold: escapes, non-ASCII, numbers,
		 * literals, nesting, keys that differ only once decoded */
		SKIM_REVIEW("\"managedFields\":[{\"k:{\\\"name\\\":\\\"\\u00e9\\ud83d\\ude00\\\"}"
			    "\":{},\"\xc3\xa9\xe2\x82\xac\":\"\xf0\x9f\x98\x80\\n\\t\\/\"}]",
			    ""),
		SKIM_REVIEW("\"managedFields\":[0,-1,1.5e300,-0.0,123456789012345678,true,false,"
			    "null,[[[{\"a\":[{}]}]]]]",
			    ""),
		SKIM_REVIEW(
			"\"managedFields\":[{\"f:/\":{},\"f:\\\\/\":{},\"a\":{\"a\":{\"a\":1}}},"
			"{\"f:/\":{}}]",
			"\"managedFields\":{\"x\":{},\"y\":{}},\"managedfields\":0"),
		/* a number jansson reads its own way (too long for the reader) */
		SKIM_REVIEW(
			"\"managedFields\":[1.00000000000000000000000000000000000000000000000000"
			"00000000000001]",
			""),
	};
	for (size_t i = 0; i < ARRAY_SIZE(read); i++)
		assert_decoded_less_never_read(read[i]);

	/* Refused exactly as the whole text is, with jansson's message. */
	static const char *const refused[] = {
		SKIM_REVIEW("\"managedFields\":[],\"managedFields\":[]", ""),
		SKIM_REVIEW("\"managedFields\":[],\"managed\\u0046ields\":[]", ""),
		SKIM_REVIEW("\"managedFields\":[],\"name\":\"p\",\"name\":\"q\"", ""),
		SKIM_REVIEW("\"managedFields\":[1e999]", ""),
		SKIM_REVIEW("\"managedFields\":[12345678901234567890]", ""),
		SKIM_REVIEW("\"managedFields\":[01]", ""),
		SKIM_REVIEW("\"managedFields\":[tru]", ""),
		SKIM_REVIEW("\"managedFields\":[\"\\u0000\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"\\udc00\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"\\ud800x\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"\\x\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"\xc3\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"\xed\xa0\x80\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"a\tb\"]", ""),
		SKIM_REVIEW("\"managedFields\":[\"a\",]", ""),
		SKIM_REVIEW("\"managedFields\":[{\"a\" \"b\"}]", ""),
		SKIM_REVIEW("\"managedFields\":{\"a\":1,}", ""),
		SKIM_REVIEW("\"managedFields\"", ""),
		SKIM_REVIEW("\"managedFields\":", ""),
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		assert_refused_as_whole(refused[i], strlen(refused[i]));

	/* Nesting: up to jansson's limit (deeper than the reader's) read, beyond it refused. */
	for (size_t depth = 500; depth <= 2100; depth += 800) {
		struct kbuf b;
		kbuf_init(&b, SIZE_MAX / 2);
		kbuf_adds(&b,
			  "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
			  "\"request\":{\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":"
			  "\"v1\",\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"object\":{"
			  "\"metadata\":{\"managedFields\":");
		for (size_t i = 0; i < depth; i++)
			kbuf_adds(&b, "[{\"a\":");
		kbuf_adds(&b, "1");
		for (size_t i = 0; i < depth; i++)
			kbuf_adds(&b, "}]");
		kbuf_adds(&b, "}}}}");
		kbuf_addc(&b, '\0');
		if (depth < 1000)
			assert_decoded_less_never_read(b.data);
		else
			assert_refused_as_whole(b.data, b.len - 1);
		kbuf_done(&b);
	}

	/* Every cut of a review is refused as the whole text is. */
	for (size_t len = 0; len < strlen(text); len++)
		assert_refused_as_whole(text, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admission__parse),
		cmocka_unit_test(test_admission__scope),
		cmocka_unit_test(test_admission__invalid),
		cmocka_unit_test(test_admission__uid_salvage),
		cmocka_unit_test(test_admission__answer),
		cmocka_unit_test(test_admission__answer_bytes),
		cmocka_unit_test(test_admission__warnings_every_position),
		cmocka_unit_test(test_admission__namespace_watch),
		cmocka_unit_test(test_admission__pull_secret_names),
		cmocka_unit_test(test_admission__managed_fields),
		cmocka_unit_test(test_admission__managed_fields_duplicates),
		cmocka_unit_test(test_admission__request_never_read),
		cmocka_unit_test(test_admission__pod_never_read),
		cmocka_unit_test(test_admission__env_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
