/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the YAML layer (lib/yaml.c): CloudFormation short forms in and out, scalar
 * resolution, quoting, key order, multi-document streams, anchors, limits, located errors, and
 * the golden folders tests/golden/yaml/<case>/ (KILT_UPDATE_GOLDEN=1 rewrites them). */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "internal.h"
#include "kilt.h"

#define CFN KILT_YAML_CFN_TAGS

static json_t *load_ok(const char *text, unsigned flags)
{
	struct kilt_error err = { 0 };
	json_t *v = NULL;
	int r = kilt_yaml_load(text, strlen(text), "t.yaml", flags, NULL, &v, &err);
	if (r < 0)
		fail_msg("load failed: %u:%u: %s\n--- input ---\n%s", err.line, err.column, err.msg,
			 text);
	return v;
}

static char *dump_ok(const json_t *v, unsigned flags)
{
	struct kilt_error err = { 0 };
	char *out = NULL;
	size_t len = 0;
	int r = kilt_yaml_dump(v, flags, &out, &len, &err);
	if (r < 0)
		fail_msg("dump failed: %s", err.msg);
	assert_int_equal(len, strlen(out));
	return out;
}

static char *compact(const json_t *v)
{
	return kilt_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Loads `yaml`, expects the compact JSON `want_json`, dumps, expects `want_yaml` (when not
 * NULL) and checks that the dump loads back to the same JSON. */
static void roundtrip(const char *yaml, unsigned flags, const char *want_json,
		      const char *want_yaml)
{
	json_auto_t *v = load_ok(yaml, flags);
	_cleanup_free_ char *got = compact(v);
	if (strcmp(got, want_json) != 0)
		fail_msg("input:\n%s\nwant json %s\n got json %s", yaml, want_json, got);
	_cleanup_free_ char *out = dump_ok(v, flags);
	if (want_yaml && strcmp(out, want_yaml) != 0)
		fail_msg("json %s\nwant yaml:\n%s\ngot yaml:\n%s", want_json, want_yaml, out);
	json_auto_t *back = load_ok(out, flags);
	_cleanup_free_ char *got2 = compact(back);
	if (strcmp(got2, want_json) != 0)
		fail_msg("round trip of\n%s\ngave %s, want %s", out, got2, want_json);
}

static void load_fails(const char *yaml, unsigned flags, int code, unsigned line, unsigned column,
		       const char *needle)
{
	struct kilt_error err = { 0 };
	json_t *v = (json_t *)0x1;
	int r = kilt_yaml_load(yaml, strlen(yaml), "bad.yaml", flags, NULL, &v, &err);
	if (r >= 0)
		fail_msg("load of\n%s\nsucceeded, want error \"%s\"", yaml, needle);
	assert_ptr_equal(v, (json_t *)0x1); /* untouched on failure */
	assert_int_equal(r, code);
	assert_int_equal(err.code, code);
	assert_string_equal(err.file, "bad.yaml");
	if (err.line != line || err.column != column || !strstr(err.msg, needle))
		fail_msg("input:\n%s\nwant %u:%u \"%s\"\n got %u:%u \"%s\"", yaml, line, column,
			 needle, err.line, err.column, err.msg);
}

/* ---- short forms -------------------------------------------------------------------------- */

static void test_yaml__every_tag_in_and_out(void **state)
{
	(void)state;
	static const char *const tags[] = {
		"Base64",	"Cidr",		"FindInMap", "GetAZs",	   "ImportValue",
		"Join",		"Select",	"Split",     "Sub",	   "If",
		"Equals",	"And",		"Or",	     "Not",	   "Transform",
		"Length",	"ToJsonString", "ForEach",   "Contains",   "EachMemberEquals",
		"EachMemberIn", "RefAll",	"ValueOf",   "ValueOfAll", "Implies"
	};
	for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
		_cleanup_free_ char *yaml = xasprintf("v: !%s x\n", tags[i]);
		_cleanup_free_ char *json = xasprintf("{\"v\":{\"Fn::%s\":\"x\"}}", tags[i]);
		roundtrip(yaml, CFN, json, yaml);
		_cleanup_free_ char *seq = xasprintf("v: !%s\n  - a\n  - 1\n", tags[i]);
		_cleanup_free_ char *seqjson = xasprintf("{\"v\":{\"Fn::%s\":[\"a\",1]}}", tags[i]);
		roundtrip(seq, CFN, seqjson, seq);
		const char *tag = NULL;
		_cleanup_free_ char *key = xasprintf("Fn::%s", tags[i]);
		assert_true(kilt_yaml_cfn_intrinsic(key, &tag));
		assert_string_equal(tag, tags[i]);
	}
	roundtrip("v: !Ref x\n", CFN, "{\"v\":{\"Ref\":\"x\"}}", "v: !Ref x\n");
	roundtrip("v: !Condition IsProd\n", CFN, "{\"v\":{\"Condition\":\"IsProd\"}}",
		  "v: !Condition IsProd\n");
	assert_false(kilt_yaml_cfn_intrinsic("Fn::Nope", NULL));
	assert_false(kilt_yaml_cfn_intrinsic("Type", NULL));
}

static void test_yaml__tag_values_are_strings(void **state)
{
	(void)state;
	/* a tagged scalar is never resolved: `!Ref 123` names "123" */
	roundtrip("- !Ref 123\n- !Sub true\n- !GetAZs ''\n- !Base64\n", CFN,
		  "[{\"Ref\":\"123\"},{\"Fn::Sub\":\"true\"},{\"Fn::GetAZs\":\"\"},"
		  "{\"Fn::Base64\":\"\"}]",
		  "- !Ref '123'\n- !Sub 'true'\n- !GetAZs ''\n- !Base64 ''\n");
}

static void test_yaml__getatt(void **state)
{
	(void)state;
	roundtrip("a: !GetAtt Db.Endpoint.Address\n", CFN,
		  "{\"a\":{\"Fn::GetAtt\":[\"Db\",\"Endpoint.Address\"]}}",
		  "a: !GetAtt Db.Endpoint.Address\n");
	roundtrip("a: !GetAtt [Db, Arn]\n", CFN, "{\"a\":{\"Fn::GetAtt\":[\"Db\",\"Arn\"]}}",
		  "a: !GetAtt Db.Arn\n");
	/* attribute chosen by an intrinsic: sequence form */
	roundtrip("a: !GetAtt [Db, !Ref Attr]\n", CFN,
		  "{\"a\":{\"Fn::GetAtt\":[\"Db\",{\"Ref\":\"Attr\"}]}}",
		  "a: !GetAtt\n  - Db\n  - !Ref Attr\n");
	/* the long form with a string has no short form (it would read back as an array) */
	roundtrip("a:\n  Fn::GetAtt: Db.Arn\n", CFN, "{\"a\":{\"Fn::GetAtt\":\"Db.Arn\"}}",
		  "a:\n  Fn::GetAtt: Db.Arn\n");
	/* a logical ID with a dot cannot be written as a.b */
	roundtrip("a: !GetAtt [D.b, Arn]\n", CFN, "{\"a\":{\"Fn::GetAtt\":[\"D.b\",\"Arn\"]}}",
		  "a: !GetAtt\n  - D.b\n  - Arn\n");
	load_fails("a: !GetAtt Db\n", CFN, -EINVAL, 1, 4, "expected LogicalName.AttributeName");
}

static void test_yaml__nested_tags(void **state)
{
	(void)state;
	roundtrip("v: !If [IsProd, !Sub '${A}-x', !Ref AWS::NoValue]\n", CFN,
		  "{\"v\":{\"Fn::If\":[\"IsProd\",{\"Fn::Sub\":\"${A}-x\"},{\"Ref\":\"AWS::"
		  "NoValue\"}]}}",
		  "v: !If\n  - IsProd\n  - !Sub ${A}-x\n  - !Ref AWS::NoValue\n");
	/* a short form inside a short form must be a long form in YAML */
	roundtrip("u: !Base64\n  Fn::Sub: |\n    #!/bin/sh\n    echo ${X}\n", CFN,
		  "{\"u\":{\"Fn::Base64\":{\"Fn::Sub\":\"#!/bin/sh\\necho ${X}\\n\"}}}",
		  "u: !Base64\n  Fn::Sub: |\n    #!/bin/sh\n    echo ${X}\n");
	roundtrip("s: !Sub\n  - 'arn:${P}:${Id}'\n  - Id: !Ref Thing\n", CFN,
		  "{\"s\":{\"Fn::Sub\":[\"arn:${P}:${Id}\",{\"Id\":{\"Ref\":\"Thing\"}}]}}",
		  "s: !Sub\n  - arn:${P}:${Id}\n  - Id: !Ref Thing\n");
	roundtrip("- !Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}\n", CFN,
		  "[{\"Fn::Transform\":{\"Name\":\"AWS::Include\",\"Parameters\":{\"Location\":"
		  "\"s3://b/k\"}}}]",
		  "- !Transform\n  Name: AWS::Include\n  Parameters:\n    Location: s3://b/k\n");
	/* `!Base64 !Sub x` is not YAML: the error says how to write it */
	load_fails("u: !Base64 !Sub x\n", CFN, -EINVAL, 1, 12, "long form");
}

static void test_yaml__tags_without_cfn(void **state)
{
	(void)state;
	load_fails("a: 1\nb: !Ref x\n", 0, -EINVAL, 2, 4, "unknown tag !Ref");
	load_fails("a: !Bogus x\n", CFN, -EINVAL, 1, 4, "unknown tag !Bogus");
	load_fails("a: !Bogus [x]\n", CFN, -EINVAL, 1, 4, "unknown tag !Bogus");
	load_fails("a: !!binary aGVsbG8=\n", CFN, -EINVAL, 1, 4, "unsupported tag !!binary");
	/* without the flag, intrinsic keys are ordinary keys on output */
	json_auto_t *v = load_ok("{\"a\": {\"Ref\": \"x\"}}", 0);
	_cleanup_free_ char *out = dump_ok(v, 0);
	assert_string_equal(out, "a:\n  Ref: x\n");
	/* core tags */
	roundtrip("- !!str 12\n- !!int '12'\n- !!float '1'\n- !!bool 'yes'\n- !!null ''\n- ! 12\n",
		  0, "[\"12\",12,1.0,true,null,\"12\"]", NULL);
	load_fails("a: !!int x\n", 0, -EINVAL, 1, 4, "not a 64-bit integer");
}

/* ---- scalars -------------------------------------------------------------------------------- */

static void test_yaml__scalars_yaml11(void **state)
{
	(void)state;
	/* the rules CloudFormation and cfn-lint apply (YAML 1.1) */
	roundtrip("[true, false, yes, No, ON, off, y, n, null, ~, Null, '', \"x\"]", CFN,
		  "[true,false,true,false,true,false,\"y\",\"n\",null,null,null,\"\",\"x\"]", NULL);
	roundtrip("[0755, 0x1F, 0b101, 1_000, -12, +3, 0, 08, 1e3, 1.5, 1.0e+3, .5, -1.5e-3, 1.]",
		  CFN, "[493,31,5,1000,-12,3,0,\"08\",\"1e3\",1.5,1000.0,0.5,-0.0015,1.0]", NULL);
	/* not numbers in JSON: keep the text */
	roundtrip("[.inf, -.Inf, .nan, 2001-12-14, 12:30, 1.2.3, 1e400, 1e-999999]", CFN,
		  "[\".inf\",\"-.Inf\",\".nan\",\"2001-12-14\",\"12:30\",\"1.2.3\",\"1e400\","
		  "\"1e-999999\"]",
		  NULL);
	/* numbers jansson cannot hold exactly: kept as written, read and written back as numbers
	 * (they were strings, so kilt wrote 99999999999999999999 back quoted) */
	roundtrip("[99999999999999999999, -9223372036854775809, 1.0e-999999, 1.0e+400, "
		  "0.12345678901234567890, 1.00000000000000000000001]",
		  CFN,
		  "[99999999999999999999,-9223372036854775809,1.0e-999999,1.0e+400,"
		  "0.12345678901234567890,1.00000000000000000000001]",
		  "- 99999999999999999999\n- -9223372036854775809\n- 1.0e-999999\n- 1.0e+400\n"
		  "- 0.12345678901234567890\n- 1.00000000000000000000001\n");
	/* YAML's own float spellings too, kept in JSON's (they were doubles: written back with 17
	 * digits, read again as kept numbers, fuzz_yaml) */
	roundtrip(
		"[.666666666666666666666, +1.00000000000000000000001, 007.50000000000000000001, "
		"1_0.5000000000000000000001, -.5, 1.5]",
		CFN,
		"[0.666666666666666666666,1.00000000000000000000001,7.50000000000000000001,"
		"10.5000000000000000000001,-0.5,1.5]",
		"- 0.666666666666666666666\n- 1.00000000000000000000001\n- 7.50000000000000000001\n"
		"- 10.5000000000000000000001\n- -0.5\n- 1.5\n");
	roundtrip("[!!float 12345678901234567, !!float 1.5, !!float 3]", CFN,
		  "[12345678901234567.0,1.5,3.0]", "- 12345678901234567.0\n- 1.5\n- 3.0\n");
	roundtrip("[9223372036854775807, -9223372036854775808]", CFN,
		  "[9223372036854775807,-9223372036854775808]", NULL);
	/* libfyaml's own text for this block scalar was "\n\n|\n" (and leaked); PyYAML agrees
	 * with this one */
	roundtrip("a:\n |\n\n\n |\n\n  \n\n  \n  \n ", CFN,
		  "{\"a\":\"\\n\\n|\\n\\n \\n\\n \\n \\n\"}", NULL);
	/* quoted and block scalars are strings */
	roundtrip("a: '0755'\nb: \"true\"\nc: |\n  12\n", CFN,
		  "{\"a\":\"0755\",\"b\":\"true\",\"c\":\"12\\n\"}",
		  "a: '0755'\nb: 'true'\nc: |\n  12\n");
}

static void test_yaml__scalars_yaml12(void **state)
{
	(void)state;
	unsigned f = KILT_YAML_SCHEMA_1_2;
	roundtrip("[true, yes, on, 0755, 0o17, 0x1F, 1e3, 1_000, -.5, 1.]", f,
		  "[true,\"yes\",\"on\",755,15,31,1000.0,\"1_000\",-0.5,1.0]", NULL);
	/* beyond a double either way: the text, never 0 or infinity */
	roundtrip("[1e-999999, -1.5e-400, 1e999999, 0e-999999]", f,
		  "[\"1e-999999\",\"-1.5e-400\",\"1e999999\",0.0]", NULL);
}

static void test_yaml__quoting(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *yaml;
	} cases[] = {
		{ "true", "'true'" },
		{ "Yes", "'Yes'" },
		{ "y", "'y'" },
		{ "null", "'null'" },
		{ "~", "'~'" },
		{ "", "''" },
		{ "123", "'123'" },
		{ "0755", "'0755'" },
		{ "1e3", "'1e3'" },
		{ "-1", "'-1'" },
		{ ".5", "'.5'" },
		{ "2010-09-09", "'2010-09-09'" },
		{ "a: b", "'a: b'" },
		{ "a #b", "'a #b'" },
		{ "#x", "'#x'" },
		{ "key:", "'key:'" },
		{ "- x", "'- x'" },
		{ "-", "'-'" },
		{ "--config", "--config" },
		{ "-Xmx1g", "-Xmx1g" },
		{ "!Ref", "'!Ref'" },
		{ "*a", "'*a'" },
		{ "&a", "'&a'" },
		{ "{x}", "'{x}'" },
		{ "[x]", "'[x]'" },
		{ "%x", "'%x'" },
		{ "@x", "'@x'" },
		{ "`x", "'`x'" },
		{ "|", "'|'" },
		{ ">", "'>'" },
		{ "it's", "it's" },
		{ "'q'", "'''q'''" },
		{ "\"q\"", "'\"q\"'" },
		{ " lead", "' lead'" },
		{ "trail ", "'trail '" },
		{ "---", "'---'" },
		{ "...", "'...'" },
		{ "<<", "'<<'" },
		{ "tab\there", "\"tab\\there\"" },
		{ "bell\a", "\"bell\\x07\"" },
		{ "a:b", "a:b" },
		{ "a,b[c]{d}", "a,b[c]{d}" },
		{ "${AWS::Region}", "${AWS::Region}" },
		{ "héllo ☃", "héllo ☃" },
		{ "nel\xc2\x85", "\"nel\\x85\"" },
		{ "ls\xe2\x80\xa8", "\"ls\\u2028\"" },
		{ "s3://bucket/key", "s3://bucket/key" },
		{ "AWS::NoValue", "AWS::NoValue" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_auto_t *v = json_pack("{s:s}", "k", cases[i].s);
		_cleanup_free_ char *out = dump_ok(v, CFN);
		_cleanup_free_ char *want = xasprintf("k: %s\n", cases[i].yaml);
		if (strcmp(out, want) != 0)
			fail_msg("string \"%s\": want %s got %s", cases[i].s, want, out);
		json_auto_t *back = load_ok(out, CFN);
		assert_true(json_equal(v, back));
		json_auto_t *back12 = load_ok(out, CFN | KILT_YAML_SCHEMA_1_2);
		assert_true(json_equal(v, back12));
	}
	/* keys are quoted by the same rules */
	json_auto_t *k = json_pack("{s:i,s:i,s:i}", "true", 1, "a: b", 2, "", 3);
	_cleanup_free_ char *out = dump_ok(k, CFN);
	assert_string_equal(out, "'true': 1\n'a: b': 2\n'': 3\n");
}

static void test_yaml__multiline(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *yaml;
	} cases[] = {
		{ "a\nb\n", "k: |\n  a\n  b\n" },
		{ "a\nb", "k: |-\n  a\n  b\n" },
		{ "a\n\n", "k: |+\n  a\n\n" },
		{ "a\n\nb\n", "k: |\n  a\n\n  b\n" },
		{ " lead\nx\n", "k: |2\n   lead\n  x\n" },
		{ "\nfirst empty\n", "k: |2\n\n  first empty\n" },
		{ "trailing \nspace", "k: \"trailing \\nspace\"\n" },
		{ "\n", "k: \"\\n\"\n" },
		{ "cr\r\nlf", "k: \"cr\\r\\nlf\"\n" },
		{ "#!/bin/sh\n  echo \"$X\" # x: y\n",
		  "k: |\n  #!/bin/sh\n    echo \"$X\" # x: y\n" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_auto_t *v = json_pack("{s:s}", "k", cases[i].s);
		_cleanup_free_ char *out = dump_ok(v, CFN);
		if (strcmp(out, cases[i].yaml) != 0)
			fail_msg("string %zu: want\n%s\ngot\n%s", i, cases[i].yaml, out);
		json_auto_t *back = load_ok(out, CFN);
		assert_true(json_equal(v, back));
	}
	/* inside sequences and after tags */
	roundtrip("- !Sub |\n  a ${X}\n  b\n- - |-\n    c\n    d\n", CFN,
		  "[{\"Fn::Sub\":\"a ${X}\\nb\\n\"},[\"c\\nd\"]]",
		  "- !Sub |\n  a ${X}\n  b\n- - |-\n    c\n    d\n");
	/* a multi-line root scalar is written double-quoted */
	json_auto_t *root = json_string("x\ny");
	_cleanup_free_ char *out = dump_ok(root, 0);
	assert_string_equal(out, "\"x\\ny\"\n");
}

static void test_yaml__numbers_out(void **state)
{
	(void)state;
	json_auto_t *v = json_pack("[f,f,f,f,f,I,b,b,n]", 1.0, 0.1, 1e300, -2.5e-8, -0.0,
				   (json_int_t)-42, 1, 0);
	_cleanup_free_ char *out = dump_ok(v, 0);
	assert_string_equal(out, "- 1.0\n- 0.1\n- 1.0e+300\n- -2.5e-08\n- -0.0\n- -42\n- true\n"
				 "- false\n- null\n");
	json_auto_t *back = load_ok(out, 0);
	assert_true(json_equal(v, back));
	json_auto_t *back12 = load_ok(out, KILT_YAML_SCHEMA_1_2);
	assert_true(json_equal(v, back12));
}

/* ---- structure ------------------------------------------------------------------------------ */

static void test_yaml__key_order_and_layout(void **state)
{
	(void)state;
	const char *yaml = "zeta: 1\n"
			   "alpha:\n"
			   "  m: []\n"
			   "  b: {}\n"
			   "  a:\n"
			   "    - x: 1\n"
			   "      w:\n"
			   "        - - 1\n"
			   "          - 2\n"
			   "        - []\n"
			   "    - - a\n"
			   "      - b: c\n"
			   "        d: e\n"
			   "middle: null\n";
	roundtrip(yaml, CFN,
		  "{\"zeta\":1,\"alpha\":{\"m\":[],\"b\":{},\"a\":[{\"x\":1,\"w\":[[1,2],[]]},"
		  "[\"a\",{\"b\":\"c\",\"d\":\"e\"}]]},\"middle\":null}",
		  yaml);
	/* the same json_t always gives the same bytes */
	json_auto_t *v = load_ok(yaml, CFN);
	_cleanup_free_ char *a = dump_ok(v, CFN);
	_cleanup_free_ char *b = dump_ok(v, CFN);
	assert_string_equal(a, b);
	/* roots */
	roundtrip("[]", 0, "[]", "[]\n");
	roundtrip("{}", 0, "{}", "{}\n");
	roundtrip("", 0, "null", "null\n");
	roundtrip("- a\n- b\n", 0, "[\"a\",\"b\"]", "- a\n- b\n");
	roundtrip("!Ref x\n", CFN, "{\"Ref\":\"x\"}", "!Ref x\n");
	roundtrip("!Join\n- ','\n- [a]\n", CFN, "{\"Fn::Join\":[\",\",[\"a\"]]}",
		  "!Join\n- ','\n- - a\n");
}

static void test_yaml__long_keys(void **state)
{
	(void)state;
	char key[2000];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	json_auto_t *v = json_pack("{s:{s:i},s:i}", key, "a", 1, "b", 2);
	_cleanup_free_ char *out = dump_ok(v, 0);
	assert_true(strncmp(out, "? kkk", 5) == 0);
	json_auto_t *back = load_ok(out, 0);
	assert_true(json_equal(v, back));
}

static void test_yaml__multi_document(void **state)
{
	(void)state;
	unsigned m = KILT_YAML_MULTI;
	roundtrip("kind: A\n---\nkind: B\n...\n---\n# only a comment\n---\n- 1\n", m,
		  "[{\"kind\":\"A\"},{\"kind\":\"B\"},[1]]", "kind: A\n---\nkind: B\n---\n- 1\n");
	roundtrip("", m, "[]", "");
	roundtrip("---\nnull\n---\n", m, "[]", "");
	/* anchors do not cross documents */
	load_fails("a: &x 1\n---\nb: *x\n", m, -EINVAL, 3, 4, "undefined alias *x");
	/* one-document mode refuses a stream */
	load_fails("a: 1\n---\nb: 2\n", 0, -EINVAL, 2, 1, "more than one YAML document");
	/* JSON streams */
	json_auto_t *j = load_ok("{\"a\": 1}\n{\"b\": [2]}\n", m);
	_cleanup_free_ char *s = compact(j);
	assert_string_equal(s, "[{\"a\":1},{\"b\":[2]}]");
	json_auto_t *j2 = load_ok("[]\nnull\n{}", m);
	_cleanup_free_ char *s2 = compact(j2);
	assert_string_equal(s2, "[[],{}]");
	/* a string holding NUL, as kilt_yaml_dump_json writes it, in a stream (which has no YAML
	 * reading to fall back on) */
	json_auto_t *j3 = load_ok("[\"a\\u0000b\"]\n[\"x\"]\n", m);
	assert_int_equal(json_string_length(json_array_get(json_array_get(j3, 0), 0)), 3);
	/* dump requires an array */
	json_auto_t *o = json_object();
	struct kilt_error err = { 0 };
	char *out = NULL;
	assert_int_equal(kilt_yaml_dump(o, m, &out, NULL, &err), -EINVAL);
	assert_null(out);
	assert_int_equal(kilt_yaml_dump_json(o, m, &out, NULL, &err), -EINVAL);
	json_auto_t *docs = json_pack("[{s:i},[i]]", "a", 1, 2);
	assert_int_equal(kilt_yaml_dump_json(docs, m, &out, NULL, &err), 0);
	assert_string_equal(out, "{\n  \"a\": 1\n}\n[\n  2\n]\n");
	free(out);
}

static void test_yaml__anchors(void **state)
{
	(void)state;
	json_auto_t *v = load_ok("base: &b {x: [1, 2]}\ncopy: *b\nlist: [&s str, *s]\n", 0);
	_cleanup_free_ char *s = compact(v);
	assert_string_equal(s, "{\"base\":{\"x\":[1,2]},\"copy\":{\"x\":[1,2]},"
			       "\"list\":[\"str\",\"str\"]}");
	/* expanded copies are independent values */
	json_t *base = json_object_get(v, "base");
	json_t *copy = json_object_get(v, "copy");
	assert_ptr_not_equal(base, copy);
	assert_ptr_not_equal(json_object_get(base, "x"), json_object_get(copy, "x"));
	assert_int_equal(json_object_get(base, "x")->refcount, 1);
	/* merge keys (Kubernetes manifests); explicit keys win */
	roundtrip("d: &d {a: 1, b: 2}\ne:\n  b: 3\n  <<: *d\n  c: 4\n", 0,
		  "{\"d\":{\"a\":1,\"b\":2},\"e\":{\"b\":3,\"a\":1,\"c\":4}}", NULL);
	roundtrip("d: &d {a: 1}\ne: &e {a: 2, z: 0}\nf:\n  <<: [*d, *e]\n  z: 9\n", 0,
		  "{\"d\":{\"a\":1},\"e\":{\"a\":2,\"z\":0},\"f\":{\"a\":1,\"z\":9}}", NULL);
	load_fails("d: &d {a: 1}\ne:\n  <<: *d\n", CFN, -EINVAL, 3, 3, "merge keys (<<)");
	load_fails("e:\n  <<: 1\n", 0, -EINVAL, 2, 3, "merge key <<");
	load_fails("a: &a [1, *a]\n", 0, -EINVAL, 1, 11, "refers to a node that contains it");
	load_fails("a: 1\nb: *nope\n", 0, -EINVAL, 2, 4, "undefined alias *nope");
}

/* Scalars and keys of every style: one line without escapes is read straight from the input,
 * anything else through libfyaml's text; both give the same values and keys, and a key written
 * twice in different styles is a duplicate. */
static void test_yaml__scalar_styles(void **state)
{
	(void)state;
	roundtrip("a: x y\nb: 'x y'\nc: \"x y\"\nd: >-\n  x\n  y\ne: x\n  y\nf: 'x\n  y'\n"
		  "g: \"x\n  y\"\n",
		  0,
		  "{\"a\":\"x y\",\"b\":\"x y\",\"c\":\"x y\",\"d\":\"x y\",\"e\":\"x y\",\"f\":"
		  "\"x y\",\"g\":\"x y\"}",
		  NULL);
	roundtrip("a: \"t\\tq\\\"\\\\ \\u00e9\"\nb: 'it''s ''q'''\nc: \"\"\nd: ''\ne: ~\n", 0,
		  "{\"a\":\"t\\tq\\\"\\\\ \xc3\xa9\",\"b\":\"it's 'q'\",\"c\":\"\",\"d\":\"\","
		  "\"e\":null}",
		  "a: \"t\\tq\\\"\\\\ \xc3\xa9\"\nb: it's 'q'\nc: ''\nd: ''\ne: null\n");
	roundtrip("'k 1': 1\n\"k 2\": 2\nk 3: 3\n\"k\\u00e94\": 4\n? |-\n  k5\n: 5\n", 0,
		  "{\"k 1\":1,\"k 2\":2,\"k 3\":3,\"k\xc3\xa9"
		  "4\":4,\"k5\":5}",
		  "k 1: 1\nk 2: 2\nk 3: 3\nk\xc3\xa9"
		  "4: 4\nk5: 5\n");
	/* a key from an alias, and keys of an anchored mapping copied by an alias */
	roundtrip("a: &k key\nb:\n  *k : v\nc: &m {'x': 1, \"y\": 2}\nd: *m\n", 0,
		  "{\"a\":\"key\",\"b\":{\"key\":\"v\"},\"c\":{\"x\":1,\"y\":2},\"d\":{\"x\":1,"
		  "\"y\":2}}",
		  NULL);
	load_fails("a: 1\n\"a\": 2\n", 0, -EINVAL, 2, 2,
		   "duplicate key \"a\""); /* inside the quote */
	load_fails("'a b': 1\na b: 2\n", 0, -EINVAL, 2, 1, "duplicate key \"a b\"");
	load_fails("\"a\\u0062\": 1\nab: 2\n", 0, -EINVAL, 2, 1, "duplicate key \"ab\"");
	/* single-quoted output doubles every quote */
	json_auto_t *v = json_pack("{ss}", "v", "'a'b c'");
	_cleanup_free_ char *out = dump_ok(v, 0);
	assert_string_equal(out, "v: '''a''b c'''\n");
}

static void test_yaml__billion_laughs(void **state)
{
	(void)state;
	const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
	load_fails(bomb, 0, -E2BIG, 5, 36, "limit on alias expansion");
	/* the limit is configurable */
	struct kilt_yaml_limits lim;
	kilt_yaml_limits_default(&lim);
	lim.max_alias_nodes = 10;
	struct kilt_error err = { 0 };
	json_t *v = NULL;
	const char *small = "a: &a [1, 2, 3]\nb: *a\nc: *a\nd: *a\n";
	assert_int_equal(kilt_yaml_load(small, strlen(small), "s", 0, &lim, &v, &err), -E2BIG);
	assert_int_equal(err.line, 4);
	lim.max_alias_nodes = 12;
	assert_int_equal(kilt_yaml_load(small, strlen(small), "s", 0, &lim, &v, &err), 0);
	json_decref(v);

	/* a bomb by bytes, not nodes: one 1 MiB scalar aliased 2000 times is 2001 nodes */
	size_t big = 1u << 20;
	struct kbuf b;
	kbuf_init(&b, 4u << 20);
	kbuf_adds(&b, "a: &big \"");
	for (size_t i = 0; i < big; i++)
		kbuf_add(&b, "x", 1);
	kbuf_adds(&b, "\"\nb:\n");
	for (int i = 0; i < 2000; i++)
		kbuf_adds(&b, "  - *big\n");
	err = (struct kilt_error){ 0 };
	assert_int_equal(kilt_yaml_load(b.data, b.len, "bomb.yaml", 0, NULL, &v, &err), -E2BIG);
	assert_int_equal(err.line, 11); /* the 9th alias: 9 MiB is over the 8 MiB default */
	assert_int_equal(err.column, 5);
	assert_non_null(strstr(err.msg, "alias *big"));
	assert_non_null(strstr(err.msg, "more than 8388608 bytes"));
	kbuf_done(&b);
	/* configurable, and aliases used as keys count too */
	lim.max_alias_nodes = 100;
	lim.max_alias_bytes = 10;
	const char *keys = "k: &k abcd\nm:\n  *k : 1\nn:\n  *k : 2\no:\n  *k : 3\n";
	assert_int_equal(kilt_yaml_load(keys, strlen(keys), "k", 0, &lim, &v, &err), -E2BIG);
	assert_int_equal(err.line, 7);
	lim.max_alias_bytes = 12;
	assert_int_equal(kilt_yaml_load(keys, strlen(keys), "k", 0, &lim, &v, &err), 0);
	json_decref(v);
}

/* What kilt writes, it reads back: the writers stop where the default input limit is. */
static void test_yaml__dump_within_input_limit(void **state)
{
	(void)state;
	size_t chunk = 1u << 20;
	char *s = xmalloc(chunk + 1);
	memset(s, 'x', chunk);
	s[chunk] = '\0';
	json_auto_t *doc = json_array();
	for (int i = 0; i < 7; i++)
		json_array_append_new(doc, json_string(s));
	char *out = NULL;
	size_t len = 0;
	struct kilt_error err = { 0 };
	/* 7 MiB of text: written and read back with the default limits */
	assert_int_equal(kilt_yaml_dump(doc, 0, &out, &len, &err), 0);
	json_t *back = NULL;
	assert_int_equal(kilt_yaml_load(out, len, "7", 0, NULL, &back, &err), 0);
	assert_true(json_equal(doc, back));
	json_decref(back);
	free(out);
	/* 9 MiB: refused with the reason, by both writers */
	json_array_append_new(doc, json_string(s));
	json_array_append_new(doc, json_string(s));
	out = NULL;
	assert_int_equal(kilt_yaml_dump(doc, 0, &out, &len, &err), -E2BIG);
	assert_null(out);
	assert_non_null(
		strstr(err.msg, "cannot write more than 8388608 bytes, the most kilt reads"));
	assert_int_equal(kilt_yaml_dump_json(doc, 0, &out, &len, &err), -E2BIG);
	assert_null(out);
	assert_non_null(strstr(err.msg, "cannot write more than 8388608 bytes"));
	free(s);
}

/* kilt_yaml_dump_callback: the same bytes as kilt_yaml_dump, handed out in pieces of at most a
 * chunk and one value; the limit holds for the whole text; a refusal stops it. */
struct pieces {
	struct kbuf text;
	size_t n, largest;
	size_t refuse_after; /* 0: never */
};

static int collect(const char *p, size_t n, void *data)
{
	struct pieces *c = data;
	c->n++;
	if (n > c->largest)
		c->largest = n;
	if (c->refuse_after && c->n > c->refuse_after)
		return -1;
	return kbuf_add(&c->text, p, n);
}

static void test_yaml__dump_callback(void **state)
{
	(void)state;
	/* a template of 3000 tasks (about 1.2 MiB of YAML) and a stream of 3000 documents */
	json_auto_t *res = json_object();
	json_auto_t *docs = json_array();
	for (int i = 0; i < 3000; i++) {
		char id[32];
		snprintf(id, sizeof(id), "Task%d", i);
		json_t *t = json_pack("{ss s{s[{ss s{ss} s[ss]}] sI}}", "Type",
				      "AWS::ECS::TaskDefinition", "Properties",
				      "ContainerDefinitions", "Name", "app", "Image", "Ref",
				      "Image", "Command", "sh", "-c: 'x'", "Cpu", (json_int_t)i);
		json_object_set_new(res, id, json_deep_copy(t));
		json_array_append_new(docs, t);
	}
	json_auto_t *tmpl = json_pack("{sO}", "Resources", res);
	struct {
		const json_t *root;
		unsigned flags;
	} cases[] = { { tmpl, CFN }, { docs, KILT_YAML_MULTI }, { json_string("x"), 0 } };
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		_cleanup_free_ char *whole = dump_ok(cases[k].root, cases[k].flags);
		struct pieces c = { .n = 0 };
		kbuf_init(&c.text, SIZE_MAX / 2);
		struct kilt_error err = { 0 };
		assert_int_equal(
			kilt_yaml_dump_callback(cases[k].root, cases[k].flags, collect, &c, &err),
			0);
		assert_int_equal(c.text.len, strlen(whole));
		assert_memory_equal(c.text.data, whole, c.text.len);
		if (strlen(whole) > (1u << 20))
			assert_true(c.n > 10);
		assert_true(c.largest < 65536 + 4096);
		kbuf_done(&c.text);
	}
	json_decref((json_t *)(uintptr_t)cases[2].root);
	/* the output refuses a piece: the writer stops there */
	struct pieces c = { .refuse_after = 2 };
	kbuf_init(&c.text, SIZE_MAX / 2);
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_yaml_dump_callback(docs, KILT_YAML_MULTI, collect, &c, &err), -EIO);
	assert_int_equal(c.n, 3);
	assert_non_null(strstr(err.msg, "cannot write the text"));
	kbuf_done(&c.text);
	/* 9 MiB: refused with the reason although no piece is larger than a chunk */
	size_t chunk = 1u << 20;
	_cleanup_free_ char *s = xmalloc(chunk + 1);
	memset(s, 'x', chunk);
	s[chunk] = '\0';
	json_auto_t *big = json_array();
	for (int i = 0; i < 9; i++)
		json_array_append_new(big, json_string(s));
	struct pieces b = { .n = 0 };
	kbuf_init(&b.text, SIZE_MAX / 2);
	assert_int_equal(kilt_yaml_dump_callback(big, 0, collect, &b, &err), -E2BIG);
	assert_non_null(
		strstr(err.msg, "cannot write more than 8388608 bytes, the most kilt reads"));
	assert_true(b.text.len <= 8388608);
	kbuf_done(&b.text);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_yaml__errors_located(void **state)
{
	(void)state;
	load_fails("a: 1\nb:\n  c: 1\n  c: 2\n", 0, -EINVAL, 4, 3, "duplicate key \"c\"");
	load_fails("a: [1, 2\n", 0, -EINVAL, 2, 1, "flow sequence without a closing bracket");
	load_fails("a:\n\tb: 1\n", 0, -EINVAL, 2, 1, "tab");
	load_fails("? [a]\n: 1\n", 0, -EINVAL, 1, 3, "cannot be a mapping key");
	load_fails("a: \"\\ud800\"\n", 0, -EINVAL, 1, 5, "UTF8");
	load_fails("a: !!map x\n", 0, -EINVAL, 1, 4, "!!map on a scalar");
	/* invalid UTF-8 is refused before the parser sees it (libfyaml can hang on `%\xe0`) */
	load_fails("a: 1\nb: \xc3\xa9\xe0\n", 0, -EINVAL, 2, 5, "invalid UTF-8 (byte 0xE0)");
	load_fails("%\xe0", 0, -EINVAL, 1, 2, "invalid UTF-8");
	load_fails("a: |\n  x\x01\n", 0, -EINVAL, 2, 4, "control character 0x01");
	/* block scalars less indented than their parent (libfyaml accepts them, then misreads) */
	load_fails("- - |-\n  x\n   \n   y\n", 0, -EINVAL, 2, 1, "indented more than their parent");
	roundtrip("? k\n: |\n  text\nm:\n- |\n x\n- a: |\n   y\n", 0,
		  "{\"k\":\"text\\n\",\"m\":[\"x\\n\",{\"a\":\"y\\n\"}]}", NULL);
	{
		struct kilt_error nerr = { 0 };
		json_t *nv = NULL;
		assert_int_equal(kilt_yaml_load("a: |\0\n", 6, "n", 0, NULL, &nv, &nerr), -EINVAL);
		assert_non_null(strstr(nerr.msg, "control character 0x00"));
	}
	/* libfyaml misreads runs of '' in single quotes: kilt decodes one-line ones itself */
	roundtrip("a: 'x'''' y'\nb: ''''''\n'k''''': 1\n", 0,
		  "{\"a\":\"x'' y\",\"b\":\"''\",\"k''\":1}", "a: x'' y\nb: \"''\"\nk'': 1\n");
	load_fails("a: 'x\n  y''''z'\n", 0, -EINVAL, 1, 5, "consecutive escaped quotes");

	load_fails("a: \xed\xa0\x80\n", 0, -EINVAL, 1, 4, "invalid UTF-8");
	/* JSON-looking input that is neither JSON nor YAML reports the JSON error */
	load_fails("{\"a\": 1,,}", 0, -EINVAL, 1, 9, "invalid JSON");
	load_fails("{\"a\": 1, \"a\": 2}", 0, -EINVAL, 1, 12, "duplicate");
	load_fails("%YAML 9.9\n---\na\n", 0, -EINVAL, 0, 0, "unsupport");
}

static void test_yaml__limits(void **state)
{
	(void)state;
	struct kilt_yaml_limits lim;
	kilt_yaml_limits_default(&lim);
	assert_int_equal(lim.max_depth, 128);
	lim.max_depth = 3;
	struct kilt_error err = { 0 };
	json_t *v = NULL;
	const char *deep = "a:\n  b:\n    c:\n      d: 1\n";
	assert_int_equal(kilt_yaml_load(deep, strlen(deep), "d.yaml", 0, &lim, &v, &err), -E2BIG);
	assert_int_equal(err.line, 4);
	assert_int_equal(err.column, 7);
	assert_non_null(strstr(err.msg, "deeper than 3"));
	const char *deepjson = "{\"a\":{\"b\":{\"c\":{}}}}";
	assert_int_equal(kilt_yaml_load(deepjson, strlen(deepjson), "d.json", 0, &lim, &v, &err),
			 -E2BIG);
	/* the default depth limit stops a pathological nesting */
	size_t n = 100000;
	char *big = xmalloc(2 * n + 8);
	memcpy(big, "a: ", 3);
	memset(big + 3, '[', n);
	memset(big + 3 + n, ']', n);
	big[3 + 2 * n] = '\0';
	assert_int_equal(kilt_yaml_load(big, strlen(big), "n.yaml", 0, NULL, &v, &err), -E2BIG);
	assert_int_equal(err.line, 1);
	assert_int_equal(err.column, 131);
	free(big);
	kilt_yaml_limits_default(&lim);
	lim.max_input_bytes = 4;
	assert_int_equal(kilt_yaml_load("a: 12", 5, "s.yaml", 0, &lim, &v, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "more than the limit of 4"));
	kilt_yaml_limits_default(&lim);
	lim.max_documents = 2;
	const char *docs = "a: 1\n---\nb: 2\n---\nc: 3\n";
	assert_int_equal(
		kilt_yaml_load(docs, strlen(docs), "m.yaml", KILT_YAML_MULTI, &lim, &v, &err),
		-E2BIG);
	assert_int_equal(err.line, 5);
}

static void test_yaml__silent(void **state)
{
	(void)state;
	/* libkilt never writes to stderr: the parser's diagnostics end up in kilt_error */
	char path[] = "/tmp/kilt-test-yaml-stderr-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	struct kilt_error err = { 0 };
	json_t *v = NULL;
	static const char *const bad[] = { "a: [1, 2\n",      "a: b: c\n",	     "'x\n",
					   "a: !foo!bar x\n", "%YAML 9.9\n---\na\n", "a:\n\tb: 1\n",
					   "{\"a\": [}" };
	int rc[ARRAY_SIZE(bad)];
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		rc[i] = kilt_yaml_load(bad[i], strlen(bad[i]), "x", 0, NULL, &v, &err);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (rc[i] >= 0)
			fail_msg("input %zu loaded: %s", i, bad[i]);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	close(fd);
	unlink(path);
	assert_int_equal(st.st_size, 0);
}

static void test_yaml__json_input(void **state)
{
	(void)state;
	assert_int_equal(kilt_yaml_detect("  \n{\"a\":1}", 10), KILT_FORMAT_JSON);
	assert_int_equal(kilt_yaml_detect("\xef\xbb\xbf[1]", 6), KILT_FORMAT_JSON);
	assert_int_equal(kilt_yaml_detect("a: 1", 4), KILT_FORMAT_YAML);
	assert_int_equal(kilt_yaml_detect("# {x}\n{}", 8), KILT_FORMAT_YAML);
	assert_int_equal(kilt_yaml_detect(NULL, 0), KILT_FORMAT_YAML);
	/* JSON numbers are exact and JSON strings stay strings */
	roundtrip("{\"n\": 2.50, \"s\": \"0755\", \"b\": true, \"i\": 12345678901}", CFN,
		  "{\"n\":2.5,\"s\":\"0755\",\"b\":true,\"i\":12345678901}",
		  "'n': 2.5\ns: '0755'\nb: true\ni: 12345678901\n");
	/* a YAML flow mapping at the root still loads */
	roundtrip("{a: !Ref b}", CFN, "{\"a\":{\"Ref\":\"b\"}}", "a: !Ref b\n");
	/* the JSON writer keeps key order and indents by 2 */
	json_auto_t *v = load_ok("z: 1\na: [x, {k: v}]\n", 0);
	char *out = NULL;
	size_t len = 0;
	struct kilt_error err = { 0 };
	assert_int_equal(kilt_yaml_dump_as(v, KILT_FORMAT_JSON, 0, &out, &len, &err), 0);
	assert_string_equal(out, "{\n  \"z\": 1,\n  \"a\": [\n    \"x\",\n    {\n      \"k\": "
				 "\"v\"\n    }\n  ]\n}\n");
	assert_int_equal(len, strlen(out));
	free(out);
	assert_int_equal(kilt_yaml_dump_as(v, KILT_FORMAT_YAML, 0, &out, NULL, &err), 0);
	assert_string_equal(out, "z: 1\na:\n  - x\n  - k: v\n");
	free(out);
}

static void test_yaml__load_file(void **state)
{
	(void)state;
	char path[] = "/tmp/kilt-test-yaml-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "a: 1\nb: [\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct kilt_error err = { 0 };
	json_t *v = NULL;
	assert_int_equal(kilt_yaml_load_file(path, 0, NULL, &v, &err), -EINVAL);
	assert_string_equal(err.file, path);
	assert_int_equal(err.line, 3);
	char buf[1024];
	kilt_error_format(&err, buf, sizeof(buf));
	assert_true(strncmp(buf, path, strlen(path)) == 0);
	unlink(path);
	assert_int_equal(kilt_yaml_load_file(path, 0, NULL, &v, &err), -ENOENT);
	assert_null(v);
}

/* ---- golden folders ------------------------------------------------------------------------- */

static bool update_golden(void)
{
	const char *u = getenv("KILT_UPDATE_GOLDEN");
	return u && *u && strcmp(u, "0") != 0;
}

static char *read_opt(const char *dir, const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	char *buf = NULL;
	return kilt_read_file(p, 16u << 20, &buf, NULL) < 0 ? NULL : buf;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void check_text(const char *dir, const char *name, const char *got, unsigned *failures)
{
	_cleanup_free_ char *want = read_opt(dir, name);
	if (update_golden()) {
		write_file(dir, name, got);
		return;
	}
	if (!want || strcmp(want, got) != 0) {
		fprintf(stderr, "golden %s/%s differs:\n--- want\n%s--- got\n%s---\n", dir, name,
			want ? want : "(missing)\n", got);
		(*failures)++;
	}
}

static unsigned parse_flags(const char *text)
{
	unsigned flags = 0;
	if (!text)
		return CFN;
	if (strstr(text, "cfn"))
		flags |= CFN;
	if (strstr(text, "multi"))
		flags |= KILT_YAML_MULTI;
	if (strstr(text, "schema-1.2"))
		flags |= KILT_YAML_SCHEMA_1_2;
	return flags;
}

static void run_golden_case(const char *dir, unsigned *failures)
{
	_cleanup_free_ char *flags_text = read_opt(dir, "flags");
	unsigned flags = parse_flags(flags_text);
	const char *name = "input.yaml";
	_cleanup_free_ char *input = read_opt(dir, name);
	if (!input) {
		name = "input.json";
		input = read_opt(dir, name);
	}
	if (!input)
		fail_msg("golden case %s has no input.yaml or input.json", dir);
	_cleanup_free_ char *want_error = read_opt(dir, "want-error.txt");
	struct kilt_error err = { 0 };
	json_auto_t *v = NULL;
	int r = kilt_yaml_load(input, strlen(input), name, flags, NULL, &v, &err);
	if (r < 0 || want_error) {
		char buf[1024];
		_cleanup_free_ char *got = xasprintf(
			"%s\n", r < 0 ? kilt_error_format(&err, buf, sizeof(buf)) : "(no error)");
		check_text(dir, "want-error.txt", got, failures);
		return;
	}
	_cleanup_free_ char *json = NULL, *yaml = NULL, *yaml2 = NULL;
	assert_int_equal(kilt_yaml_dump_json(v, flags, &json, NULL, &err), 0);
	assert_int_equal(kilt_yaml_dump(v, flags, &yaml, NULL, &err), 0);
	check_text(dir, "want.json", json, failures);
	check_text(dir, "want.yaml", yaml, failures);
	/* yaml -> json -> yaml -> json gives the same json, and the output is a fixed point */
	json_auto_t *back = NULL;
	if (kilt_yaml_load(yaml, strlen(yaml), "want.yaml", flags, NULL, &back, &err) < 0) {
		fprintf(stderr, "golden %s: output does not load: %u:%u %s\n", dir, err.line,
			err.column, err.msg);
		(*failures)++;
		return;
	}
	_cleanup_free_ char *a = compact(v), *b = compact(back);
	if (strcmp(a, b) != 0) {
		fprintf(stderr, "golden %s: round trip changed the value:\n%s\n%s\n", dir, a, b);
		(*failures)++;
	}
	assert_int_equal(kilt_yaml_dump(back, flags, &yaml2, NULL, &err), 0);
	if (strcmp(yaml, yaml2) != 0) {
		fprintf(stderr, "golden %s: dump is not a fixed point\n", dir);
		(*failures)++;
	}
	/* the JSON output loads back (through jansson) to the same value */
	json_auto_t *fromjson = NULL;
	assert_int_equal(
		kilt_yaml_load(json, strlen(json), "want.json", flags, NULL, &fromjson, &err), 0);
	_cleanup_free_ char *c = compact(fromjson);
	if (strcmp(a, c) != 0) {
		fprintf(stderr, "golden %s: JSON output reads back differently\n", dir);
		(*failures)++;
	}
}

static void test_yaml__golden(void **state)
{
	(void)state;
	const char *root = KILT_SOURCE_DIR "/tests/golden/yaml";
	struct dirent **ents = NULL;
	int n = scandir(root, &ents, NULL, alphasort);
	assert_true(n >= 0);
	unsigned cases = 0, failures = 0;
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			_cleanup_free_ char *dir = xasprintf("%s/%s", root, ents[i]->d_name);
			struct stat st;
			if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
				run_golden_case(dir, &failures);
				cases++;
			}
		}
		free(ents[i]);
	}
	free(ents);
	printf("golden yaml: %u cases, %u failures\n", cases, failures);
	assert_true(cases >= 25);
	assert_int_equal(failures, 0);
}

static void test_yaml__has_comments(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool want;
	} cases[] = {
		{ "a: 1\n", false },
		{ "# top\na: 1\n", true },
		{ "a: 1 # after\n", true },
		{ "a: 1\n# at the end", true },
		{ "a: b#c\n", false }, /* part of a plain scalar */
		{ "a: \"# quoted\"\n", false },
		{ "a: '# quoted'\n", false },
		{ "a: |\n  # inside a literal block\n  x\nb: 2\n", false },
		{ "a: |\n  x\n# after the block\nb: 2\n", true },
		{ "- !Sub '${A}#x'\n- [1, 2] # flow\n", true },
		{ "{\"a\": \"#\"}", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = kilt_yaml_has_comments(cases[i].text, strlen(cases[i].text));
		if (got != cases[i].want)
			fail_msg("case %zu (%s): got %d", i, cases[i].text, got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yaml__every_tag_in_and_out),
		cmocka_unit_test(test_yaml__tag_values_are_strings),
		cmocka_unit_test(test_yaml__getatt),
		cmocka_unit_test(test_yaml__nested_tags),
		cmocka_unit_test(test_yaml__tags_without_cfn),
		cmocka_unit_test(test_yaml__scalars_yaml11),
		cmocka_unit_test(test_yaml__scalars_yaml12),
		cmocka_unit_test(test_yaml__quoting),
		cmocka_unit_test(test_yaml__multiline),
		cmocka_unit_test(test_yaml__numbers_out),
		cmocka_unit_test(test_yaml__key_order_and_layout),
		cmocka_unit_test(test_yaml__long_keys),
		cmocka_unit_test(test_yaml__multi_document),
		cmocka_unit_test(test_yaml__anchors),
		cmocka_unit_test(test_yaml__scalar_styles),
		cmocka_unit_test(test_yaml__billion_laughs),
		cmocka_unit_test(test_yaml__errors_located),
		cmocka_unit_test(test_yaml__limits),
		cmocka_unit_test(test_yaml__dump_within_input_limit),
		cmocka_unit_test(test_yaml__dump_callback),
		cmocka_unit_test(test_yaml__silent),
		cmocka_unit_test(test_yaml__json_input),
		cmocka_unit_test(test_yaml__load_file),
		cmocka_unit_test(test_yaml__golden),
		cmocka_unit_test(test_yaml__has_comments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
