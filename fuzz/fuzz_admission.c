/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the webhook's AdmissionReview decoder and everything the server does with a body
 * before the Pod engine: decode, scope, uid salvage of a refused review, and the answer, which
 * must always be JSON that echoes the uid. The same bytes also go through what the webhook
 * decodes from the API server (k8s-watch.c): a list page and a watch event applied to a cache
 * (which must stay name -> {labels, annotations} of strings), and the pull secret names of a
 * pod. The review decoder that leaves out what kilt never reads (managedFields, request's
 * members that describe the call, members of the pod the Pod engine never reads) must agree
 * with the one that reads everything, and
 * kilt_json_parse's reader with json_loadb, with and without members left out. */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_answer(const char *uid, bool allowed, const char *warning)
{
	const char *warnings[1] = { warning };
	struct kilt_admission_answer a = {
		.uid = uid,
		.allowed = allowed,
		.code = allowed ? 0 : 400,
		.message = allowed ? NULL : warning,
		.warnings = warnings,
		.n_warnings = allowed ? 1 : 0,
	};
	size_t len = 0;
	char *out = kilt_admission_answer_encode(&a, &len);
	json_t *j = json_loadb(out, len, 0, NULL);
	const json_t *resp = json_object_get(j, "response");
	if (!j || strcmp(json_string_value(json_object_get(resp, "uid")), uid) != 0 ||
	    json_is_true(json_object_get(resp, "allowed")) != allowed)
		abort(); /* every answer is a valid review echoing the uid */
	json_decref(j);
	free(out);
}

/* Every cache entry is {"labels": {..}, "annotations": {..}} with string values. */
static void check_cache(const json_t *cache)
{
	const char *name;
	json_t *e;
	json_object_foreach ((json_t *)(uintptr_t)cache, name, e) {
		static const char *const maps[] = { "labels", "annotations" };
		if (!*name || json_object_size(e) != 2)
			abort();
		for (size_t i = 0; i < 2; i++) {
			const char *k;
			json_t *v;
			json_t *m = json_object_get(e, maps[i]);
			if (!json_is_object(m))
				abort();
			json_object_foreach (m, k, v) {
				if (!json_is_string(v))
					abort();
			}
		}
	}
}

static void api_answers(const char *text, size_t size)
{
	struct kilt_error err = { 0 };
	json_t *cache = json_object();
	char *rv = NULL, *cont = NULL;
	if (kilt_k8s_list_decode(text, size, cache, &rv, &cont, &err) == 0 && (!rv || !*rv))
		abort(); /* a list always says where its watch resumes */
	free(cont);
	check_cache(cache);
	int r = kilt_k8s_watch_event_apply(text, size, cache, &rv, &err);
	if (r == KILT_K8S_WATCH_APPLIED && (!rv || !*rv))
		abort();
	check_cache(cache);
	free(rv);
	json_decref(cache);
	json_t *obj = json_loadb(text, size, 0, NULL);
	json_t *names = NULL;
	if (kilt_k8s_pull_secret_names(obj, obj, &names, &err) == 0) {
		if (json_array_size(names) > KILT_K8S_MAX_PULL_SECRETS)
			abort();
		json_decref(names);
	}
	json_decref(obj);
}

static void same_values(json_t *a, json_t *b);

static bool same_str(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* A review read whole, less what kilt_admission_review_parse() leaves out: request's members
 * that describe the call and its oldObject; of request.object, metadata.managedFields, status,
 * the spec's members below, those below of each container of spec.containers (not of
 * initContainers) and the sources below of each volume of spec.volumes. */
static void del_never_read(json_t *root)
{
	json_t *req = json_object_get(root, "request");
	static const char *const call[] = { "resource",		  "requestKind", "requestResource",
					    "requestSubResource", "userInfo",	 "options",
					    "oldObject" };
	for (size_t i = 0; i < ARRAY_SIZE(call); i++)
		json_object_del(req, call[i]);
	json_t *obj = json_object_get(req, "object");
	json_object_del(json_object_get(obj, "metadata"), "managedFields");
	json_object_del(obj, "status");
	json_t *spec = json_object_get(obj, "spec");
	static const char *const spec_members[] = { "tolerations",
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
	for (size_t i = 0; i < ARRAY_SIZE(spec_members); i++)
		json_object_del(spec, spec_members[i]);
	static const char *const container_members[] = { "resources",
							 "readinessProbe",
							 "livenessProbe",
							 "startupProbe",
							 "ports",
							 "terminationMessagePath",
							 "terminationMessagePolicy",
							 "imagePullPolicy",
							 "lifecycle",
							 "resizePolicy" };
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(spec, "containers"), i, c) {
		for (size_t k = 0; k < ARRAY_SIZE(container_members); k++)
			json_object_del(c, container_members[k]);
	}
	static const char *const volume_members[] = { "configMap", "secret",
						      "projected", "downwardAPI",
						      "emptyDir",  "persistentVolumeClaim" };
	json_array_foreach (json_object_get(spec, "volumes"), i, c) {
		for (size_t k = 0; k < ARRAY_SIZE(volume_members); k++)
			json_object_del(c, volume_members[k]);
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

/* The env lists of rv's containers against those of `want` (the review read otherwise): an
 * entry still to be read is json_null() where `want` has a plain entry, known by that entry's
 * name, and every plain entry is one, or none is (a text that jansson read in the end: its lists
 * are decoded whole); then every entry read (kilt_env_lists_read_all()). */
static void read_env_lists(const struct kilt_admission_review *rv, const json_t *want)
{
	const json_t *obj = json_object_get(json_object_get(want, "request"), "object");
	const json_t *cs = json_object_get(json_object_get(rv->object, "spec"), "containers");
	const json_t *wcs = json_object_get(json_object_get(obj, "spec"), "containers");
	size_t plain = 0, unread = 0;
	for (size_t i = 0; i < json_array_size(cs); i++) {
		const json_t *env = json_object_get(json_array_get(cs, i), "env");
		const json_t *wenv = json_object_get(json_array_get(wcs, i), "env");
		const struct kilt_env_list *l = kilt_env_list_find(rv->env_lists, env);
		for (size_t k = 0; json_is_array(env) && k < json_array_size(env); k++) {
			const json_t *we = json_array_get(wenv, k);
			bool waits = json_is_null(json_array_get(env, k)) && !json_is_null(we);
			const char *name = l ? kilt_env_list_unread_name(l, k) : NULL;
			if (waits != (name != NULL) || (waits && !plain_env_entry(we)) ||
			    (name && strcmp(name, json_string_value(json_object_get(we, "name")))))
				abort();
			plain += plain_env_entry(we);
			unread += waits;
		}
	}
	if ((unread && unread != plain) || (rv->env_lists != NULL) != (unread > 0))
		abort();
	kilt_env_lists_read_all(rv->env_lists);
}

/* The decoder that leaves out what kilt never reads and the one that reads every member agree
 * on every input: the same error, or the same review whose trees differ at most by what the
 * first leaves out (del_never_read()). */
static void check_skim(const char *text, size_t size, int r, const struct kilt_admission_review *rv,
		       const struct kilt_error *err)
{
	struct kilt_admission_review whole = { 0 };
	struct kilt_error werr = { 0 };
	int w = kilt_admission_review_parse_whole(text, size, &whole, &werr);
	if (r == 0 && w < 0) {
		/* only for duplicate keys inside what is left out, which the whole decode
		 * refuses: the review is then the text read without the duplicate check, less
		 * it */
		if (!strstr(werr.msg, "duplicate object key"))
			abort();
		json_t *loose = json_loadb(text, size, 0, NULL);
		if (!loose)
			abort();
		del_never_read(loose);
		read_env_lists(rv, loose);
		same_values(rv->root, loose);
		json_decref(loose);
		return;
	}
	if (r != w)
		abort();
	if (r < 0) {
		/* the same error, unless the whole decode's is a duplicate key inside what is
		 * left out (check_reader() holds the other's) */
		if ((err->line != werr.line || err->column != werr.column ||
		     strcmp(err->msg, werr.msg) != 0) &&
		    !strstr(werr.msg, "duplicate object key"))
			abort();
		return;
	}
	if (!same_str(rv->uid, whole.uid) || !same_str(rv->group, whole.group) ||
	    !same_str(rv->version, whole.version) || !same_str(rv->kind, whole.kind) ||
	    !same_str(rv->sub_resource, whole.sub_resource) ||
	    !same_str(rv->namespace, whole.namespace) || !same_str(rv->name, whole.name) ||
	    !same_str(rv->operation, whole.operation) || rv->dry_run != whole.dry_run ||
	    !rv->object != !whole.object)
		abort();
	/* what is left out is not in the review, the rest as the whole decode has it (once the
	 * env entries are read) */
	read_env_lists(rv, whole.root);
	json_t *b = json_deep_copy(whole.root);
	del_never_read(b);
	json_t *a = rv->root;
	if (!json_equal(a, b))
		abort();
	json_decref(b);
	kilt_admission_review_done(&whole);
}

/* The paths left out when reading: the review's managedFields and a container's probe, and
 * short ones a mutation finds, through objects and arrays (NULL: each element); one ending at
 * NULL, which is not followed. */
static const char *const mf_object[] = { "request", "object", "metadata", "managedFields" };
static const char *const mf_old[] = { "request", "oldObject", "metadata", "managedFields" };
static const char *const probe[] = { "request",	   "object", "spec",
				     "containers", NULL,     "livenessProbe" };
static const char *const short_a[] = { "a" };
static const char *const short_ab[] = { "b", "a" };
static const char *const short_abc[] = { "b", "a", "c" };
static const char *const short_each_a[] = { "c", NULL, "a" };
static const char *const short_each_each[] = { "b", NULL, NULL, "d" };
static const char *const short_a_each_b[] = { "d", "a", NULL, "b" };
static const char *const ends_at_each[] = { "e", NULL };
static const struct kilt_json_skip skips[] = {
	{ mf_object, ARRAY_SIZE(mf_object) },
	{ mf_old, ARRAY_SIZE(mf_old) },
	{ probe, ARRAY_SIZE(probe) },
	{ short_a, ARRAY_SIZE(short_a) },
	{ short_ab, ARRAY_SIZE(short_ab) },
	{ short_abc, ARRAY_SIZE(short_abc) },
	{ short_each_a, ARRAY_SIZE(short_each_a) },
	{ short_each_each, ARRAY_SIZE(short_each_each) },
	{ short_a_each_b, ARRAY_SIZE(short_a_each_b) },
	{ ends_at_each, ARRAY_SIZE(ends_at_each) },
};

/* Deletes the member at keys[k..n) below `v` (NULL: in each element of an array). */
static void del_path(json_t *v, const char *const *keys, size_t k, size_t n)
{
	if (!keys[k]) {
		size_t i;
		json_t *el;
		json_array_foreach (v, i, el) {
			del_path(el, keys, k + 1, n);
		}
	} else if (k + 1 == n) {
		json_object_del(v, keys[k]);
	} else {
		del_path(json_object_get(v, keys[k]), keys, k + 1, n);
	}
}

/* json_loadb's value without the members at `skips` (but those ending at NULL), removed one
 * by one. */
static json_t *loadb_without(const char *text, size_t size, size_t flags, json_error_t *jerr)
{
	json_t *v = json_loadb(text, size, flags, jerr);
	for (size_t i = 0; v && i < ARRAY_SIZE(skips); i++)
		if (skips[i].keys[skips[i].n_keys - 1])
			del_path(v, skips[i].keys, 0, skips[i].n_keys);
	return v;
}

static void same_values(json_t *a, json_t *b)
{
	char *ta = kilt_json_dumps(a, JSON_COMPACT), *tb = kilt_json_dumps(b, JSON_COMPACT);
	if (!ta || !tb || strcmp(ta, tb) != 0 || !json_equal(a, b))
		abort();
	free(ta);
	free(tb);
}

/* jansson's line and column of a position in a text: a line per newline, a column per byte
 * that is not a UTF-8 continuation byte before it. */
static void line_column(const char *text, int position, int *ret_line, int *ret_column)
{
	int line = 1, column = 0;
	for (int i = 0; i < position; i++) {
		if (text[i] == '\n') {
			line++;
			column = 0;
		} else if ((unsigned char)text[i] < 0x80 || (unsigned char)text[i] >= 0xC0) {
			column++;
		}
	}
	*ret_line = line;
	*ret_column = column;
}

/* The JSON string at text[i] (jansson read it, up to `end`): where it ends. */
static size_t string_end(const char *text, size_t end, size_t i)
{
	for (i++; i < end && text[i] != '"'; i++)
		if (text[i] == '\\')
			i++;
	return i < end ? i + 1 : end;
}

/* The value at text[i] (jansson read it, up to `end`): where it ends. */
static size_t value_end(const char *text, size_t end, size_t i)
{
	size_t open = 0;
	do {
		char c = text[i];
		if (c == '"') {
			i = string_end(text, end, i);
			continue;
		}
		if (c == '{' || c == '[') {
			open++;
		} else if (c == '}' || c == ']') {
			open--;
		} else if (!open && !strchr(" \t\r\n,", c)) {
			while (i < end && text[i] && !strchr(" \t\r\n,]}", text[i]))
				i++;
			/* jansson reads a NUL byte right after a number or a literal as nothing */
			if (i < end && !text[i])
				i++;
			return i;
		}
		i++;
	} while (open && i < end);
	return i < end ? i : end;
}

/* A copy of a text jansson read (flags 0) without an error up to `end`, with the value of each
 * member at `skips` before `end` replaced by a 0 and spaces (up to `end` for one cut there):
 * the same length. Found by a walk of the text that keeps the keys from the root down, each
 * decoded by jansson itself. */
static char *blank_left_out(const char *text, size_t size, size_t end)
{
	char *out = xmalloc(size + 1);
	memcpy(out, text, size);
	struct level {
		bool object;
		char *key; /* owned: the key of the member being read (NULL: none yet, or cut) */
	} *st = NULL;
	size_t depth = 0, cap = 0, i = 0;
	bool want_key = false;
	while (i < end) {
		char c = text[i];
		if (c && strchr(" \t\r\n:", c)) {
			i++;
			continue;
		}
		if (c == ',' && depth) {
			want_key = st[depth - 1].object;
			i++;
			continue;
		}
		if ((c == '}' || c == ']') && depth) {
			free(st[--depth].key);
			want_key = false;
			i++;
			continue;
		}
		if (want_key) {
			size_t e = string_end(text, end, i);
			json_t *k = json_loadb(text + i, e - i, JSON_DECODE_ANY, NULL);
			free(st[depth - 1].key);
			st[depth - 1].key =
				json_is_string(k) ? xstrdup(json_string_value(k)) : NULL;
			json_decref(k);
			i = e;
			want_key = false;
			continue;
		}
		/* a value at depth: left out when the levels above are the path's (an object and
		 * its key, or an array for NULL), from the root down, and the path does not end at
		 * NULL */
		bool left_out = false;
		for (size_t s = 0; s < ARRAY_SIZE(skips) && !left_out; s++) {
			if (skips[s].n_keys != depth || !skips[s].keys[depth - 1])
				continue;
			left_out = true;
			for (size_t k = 0; k < depth && left_out; k++)
				left_out = skips[s].keys[k] ? st[k].object && st[k].key &&
								      strcmp(st[k].key,
									     skips[s].keys[k]) == 0
							    : !st[k].object;
		}
		if (left_out) {
			size_t e = value_end(text, end, i);
			out[i] = '0';
			memset(out + i + 1, ' ', e - i - 1);
			i = e;
			continue;
		}
		if (c == '{' || c == '[') {
			if (depth == cap) {
				cap = cap ? 2 * cap : 16;
				st = xrealloc(st, cap * sizeof(*st));
			}
			st[depth].object = c == '{';
			st[depth++].key = NULL;
			want_key = c == '{';
			i++;
			continue;
		}
		i = value_end(text, end, i);
	}
	while (depth)
		free(st[--depth].key);
	free(st);
	return out;
}

/* What kilt_json_parse_skip(JSON_REJECT_DUPLICATES) gives: json_loadb's value less the members
 * at `skips`, or json_loadb's error; but duplicate keys inside those members are not refused,
 * so for a text jansson refuses for a duplicate key: the first error jansson gives when those
 * are not taken for errors. That is json_loadb(flags 0)'s (its value less the members, or its
 * error at `cut`), unless a strict re-check of the text with the values of the members left
 * out blanked (before `cut`) finds a duplicate before `cut`: that one's error then, placed
 * where jansson places it in the text itself. */
static json_t *expected_skip(const char *text, size_t size, json_error_t *werr)
{
	json_t *want = loadb_without(text, size, JSON_REJECT_DUPLICATES, werr);
	if (want || json_error_code(werr) != json_error_duplicate_key)
		return want;
	int line, column;
	line_column(text, werr->position, &line, &column);
	/* line_column() counts as jansson does, but for a NUL byte right after a number or a
	 * literal, which jansson reads as nothing, counting it neither as a position nor as a
	 * column: not checked for a text with a NUL byte */
	if ((line != werr->line || column != werr->column) && !memchr(text, '\0', size))
		abort();
	json_error_t loose_err, strict;
	json_t *loose = loadb_without(text, size, 0, &loose_err);
	size_t cut = loose || loose_err.position < 0 || (size_t)loose_err.position > size
			     ? size
			     : (size_t)loose_err.position;
	char *blanked = blank_left_out(text, size, cut);
	want = loadb_without(blanked, size, JSON_REJECT_DUPLICATES, &strict);
	free(blanked);
	if (loose && want) {
		same_values(want, loose);
		json_decref(loose);
		return want;
	}
	json_decref(want);
	if (loose && json_error_code(&strict) != json_error_duplicate_key)
		abort(); /* only what was left out was blanked */
	if (json_error_code(&strict) == json_error_duplicate_key && strict.position >= 0 &&
	    (size_t)strict.position <= cut) {
		*werr = strict;
		line_column(text, werr->position, &werr->line, &werr->column);
	} else {
		*werr = loose_err;
	}
	json_decref(loose);
	return NULL;
}

/* kilt_json_parse's reader accepts only what json_loadb accepts, and builds the same values:
 * types, members and their order (compared as written). Leaving members out, it reads what
 * json_loadb reads less those members, and refuses (with jansson's error) what jansson refuses:
 * what it leaves out is checked as strictly as the rest, but for duplicate keys inside it
 * (expected_skip()). */
static void check_reader(const char *text, size_t size)
{
	json_t *fast = kilt_json_parse_fast(text, size, NULL, 0);
	json_t *ref = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
	if (fast && !ref)
		abort();
	if (fast)
		same_values(fast, ref);
	json_decref(fast);
	json_decref(ref);

	static const size_t flags[] = { JSON_REJECT_DUPLICATES, 0 };
	json_t *expected = NULL;
	for (size_t f = 0; f < ARRAY_SIZE(flags); f++) {
		json_error_t jerr, werr;
		json_t *skip =
			kilt_json_parse_skip(text, size, flags[f], skips, ARRAY_SIZE(skips), &jerr);
		json_t *want = flags[f] ? expected_skip(text, size, &werr)
					: loadb_without(text, size, flags[f], &werr);
		if (!skip != !want)
			abort();
		if (skip)
			same_values(skip, want);
		else if (strcmp(jerr.text, werr.text) != 0 || jerr.line != werr.line ||
			 jerr.column != werr.column || jerr.position != werr.position)
			abort();
		json_decref(skip);
		if (flags[f])
			expected = want;
		else
			json_decref(want);
	}
	fast = kilt_json_parse_fast(text, size, skips, ARRAY_SIZE(skips));
	if (fast) {
		if (!expected)
			abort();
		same_values(fast, expected);
	}
	json_decref(fast);
	json_decref(expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_reader((const char *)data, size);
	api_answers((const char *)data, size);
	const char *text = (const char *)data;
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	int r = kilt_admission_review_parse(text, size, &rv, &err);
	check_skim(text, size, r, &rv, &err);
	if (r < 0) {
		char uid[KILT_ADMISSION_MAX_UID + 1];
		kilt_admission_uid_salvage(text, size, uid, sizeof(uid));
		check_answer(uid, true, err.msg);
		check_answer(uid, false, err.msg);
		return 0;
	}
	enum kilt_admission_scope scope = kilt_admission_scope(&rv);
	if (scope == KILT_ADMISSION_IN_SCOPE && !rv.object)
		abort(); /* a pod being created always has its object */
	check_answer(rv.uid, true, kilt_admission_scope_name(scope));
	kilt_admission_review_done(&rv);
	return 0;
}
