/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming injection of CloudFormation JSON: splits the template's text into its sections and
 * resources without building a tree, then parses, patches, writes and frees one resource at a
 * time, so a large template never exists whole as a jansson tree (about five times its text).
 * The bytes written are those of the whole-document path; anything this splitter does not follow
 * is handed back (KILT_CFN_STREAM_WHOLE) to that path, which then gives the exact result or error. */
#include "ecs-internal.h"
#include "json-write.h"

/* jansson refuses nesting deeper than 2048; spans nested up to this parse the same alone and
 * inside the document. */
#define MAX_SPLIT_DEPTH 1000
/* With a table of image facts, resources are parsed this many (or this many bytes of text) ahead
 * so their image lookups run together. */
#define BATCH_RESOURCES 64
#define BATCH_BYTES (8u << 20)
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)
/* what kilt inject writes (src/cmd_inject.c: write_doc) */
#define DUMP_FLAGS (JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

struct span {
	size_t start, end; /* [start, end) in the text */
};

struct member {
	struct span key, value;
	json_t *name; /* owned: the decoded key */
};

struct members {
	struct member *v; /* owned */
	size_t n, cap;
};

struct stream {
	const char *text; /* borrowed */
	size_t len;
	const struct kilt_cfn_stream *io; /* borrowed */
	struct kilt_json_out out; /* to io->write in runs of up to 64 KiB (json-write.c) */
};

static void members_done(struct members *m)
{
	for (size_t i = 0; i < m->n; i++)
		json_decref(m->v[i].name);
	free(m->v);
	*m = (struct members){ 0 };
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *t, size_t len, size_t i)
{
	while (i < len && is_ws(t[i]))
		i++;
	return i;
}

/* t[i] is '"': the offset after the closing quote, or 0 when there is none. What lies between
 * is checked by jansson when the span is parsed. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (t[i] == '\\')
			i++;
		else if (t[i] == '"')
			return i + 1;
	}
	return 0;
}

static bool ends_scalar(char c)
{
	return is_ws(c) || c == ',' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']' ||
	       c == '"';
}

/* The end of the value that starts at t[i], inside `depth` containers: brackets are counted and
 * strings skipped. A span that jansson then parses whole (nothing may follow the value) is a
 * value that ends exactly there, so this needs to check no more. 0 when there is no end or the
 * nesting is too deep. */
static size_t skip_value(const char *t, size_t len, size_t i, unsigned depth)
{
	if (i >= len)
		return 0;
	if (t[i] == '"')
		return skip_string(t, len, i);
	if (t[i] == '{' || t[i] == '[') {
		unsigned d = depth;
		while (i < len) {
			char c = t[i];
			if (c == '"') {
				i = skip_string(t, len, i);
				if (!i)
					return 0;
				continue;
			}
			if (c == '{' || c == '[') {
				if (++d > MAX_SPLIT_DEPTH)
					return 0;
			} else if (c == '}' || c == ']') {
				if (--d == depth)
					return i + 1;
			}
			i++;
		}
		return 0;
	}
	size_t j = i;
	while (j < len && !ends_scalar(t[j]))
		j++;
	return j > i ? j : 0;
}

static void members_push(struct members *m, const struct member *one)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
	}
	m->v[m->n++] = *one;
}

/* A key's text with its quotes: most keys hold no escape or control character and are taken as
 * they are (json_stringn still checks the UTF-8); the others go through jansson's parser. */
static json_t *decode_key(const char *p, size_t n)
{
	for (size_t i = 1; i + 1 < n; i++)
		if (p[i] == '\\' || (unsigned char)p[i] < 0x20)
			return json_loadb(p, n, JSON_DECODE_ANY, NULL);
	return json_stringn(p + 1, n - 2);
}

/* Splits the object that starts at t[i] ('{'), itself inside `depth` containers, into members.
 * Returns the offset after its '}', or 0 when the text is not what the splitter follows (a
 * syntax error, a duplicate key, a key jansson would refuse). */
static size_t split_object(const char *t, size_t len, size_t i, unsigned depth, struct members *out)
{
	_cleanup_json_ json_t *seen = json_object();
	i = skip_ws(t, len, i + 1);
	if (i < len && t[i] == '}')
		return i + 1;
	for (;;) {
		if (i >= len || t[i] != '"')
			return 0;
		size_t k = skip_string(t, len, i);
		if (!k)
			return 0;
		json_t *name = decode_key(t + i, k - i);
		const char *s = json_string_value(name);
		if (!s || strlen(s) != json_string_length(name) || json_object_get(seen, s)) {
			json_decref(name);
			return 0;
		}
		json_object_set_new(seen, s, json_true());
		struct member m = { .key = { i, k }, .name = name };
		i = skip_ws(t, len, k);
		if (i >= len || t[i] != ':') {
			json_decref(name);
			return 0;
		}
		i = skip_ws(t, len, i + 1);
		size_t v = skip_value(t, len, i, depth + 1);
		if (!v) {
			json_decref(name);
			return 0;
		}
		m.value = (struct span){ i, v };
		members_push(out, &m);
		i = skip_ws(t, len, v);
		if (i < len && t[i] == ',') {
			i = skip_ws(t, len, i + 1);
			continue;
		}
		if (i < len && t[i] == '}')
			return i + 1;
		return 0;
	}
}

static json_t *parse_span(const struct stream *s, struct span sp)
{
	return kilt_json_loadb(s->text + sp.start, sp.end - sp.start, LOAD_FLAGS, NULL);
}

/* True when every value from `from` on parses. */
static bool spans_parse(const struct stream *s, const struct members *m, size_t from)
{
	for (size_t i = from; i < m->n; i++) {
		json_t *v = parse_span(s, m->v[i].value);
		if (!v)
			return false;
		json_decref(v);
	}
	return true;
}

static int emit(struct stream *s, const char *p, size_t n)
{
	return kilt_json_out_raw(&s->out, p, n);
}

/* The text json_dump_callback(v, DUMP_FLAGS) gives (jansson's indented form, byte for byte),
 * with `indent` more spaces after every newline: the nested values stand `indent` deep in the
 * template (ecs/stream-parity and fuzz_ecs hold the bytes to the whole-document path's). */
static int dump(struct stream *s, const json_t *v, size_t indent, struct kilt_error *err)
{
	int r = kilt_json_out_value(&s->out, v, DUMP_FLAGS, indent);
	if (r == 0)
		return 0;
	if (s->out.write_failed)
		return kilt_error_setf(err, -EIO, "cannot write the result");
	return kilt_error_setf(err, -EINVAL, "cannot encode the result as JSON");
}

/* `"key": ` after the separator that opens a member at `indent`. */
static int emit_key(struct stream *s, bool first, const char *sep, const json_t *name,
		    struct kilt_error *err)
{
	if (emit(s, first ? sep + 1 : sep, strlen(first ? sep + 1 : sep)) < 0)
		return kilt_error_setf(err, -EIO, "cannot write the result");
	int r = dump(s, name, 0, err);
	if (r == 0 && emit(s, ": ", 2) < 0)
		r = kilt_error_setf(err, -EIO, "cannot write the result");
	return r;
}

struct batch {
	json_t *v[BATCH_RESOURCES]; /* owned, the parsed resources [next, n) */
	size_t next, n;
};

static void batch_done(struct batch *b)
{
	for (size_t i = b->next; i < b->n; i++)
		json_decref(b->v[i]);
	b->next = b->n = 0;
}

/* Parses the next resources (one, or a batch when there is a table of image facts) from `*from`
 * on, and has the images the batch needs resolved. KILT_CFN_STREAM_WHOLE when one does not
 * parse. */
static int batch_fill(struct stream *s, const struct kilt_recipe *recipe, json_t *ctx,
		      const struct kilt_ecs_options *o, const struct members *res, size_t *from,
		      struct batch *b)
{
	batch_done(b);
	size_t limit = s->io->needs ? BATCH_RESOURCES : 1, bytes = 0;
	while (*from < res->n && b->n < limit && bytes < BATCH_BYTES) {
		struct span sp = res->v[*from].value;
		json_t *v = parse_span(s, sp);
		if (!v)
			return KILT_CFN_STREAM_WHOLE;
		b->v[b->n++] = v;
		bytes += sp.end - sp.start;
		(*from)++;
	}
	if (s->io->needs && recipe && b->n) {
		/* the batch stands in the engine's template while the engine lists its images */
		json_t *resources = json_object_get(ctx, "Resources");
		_cleanup_json_ json_t *before = json_copy(resources);
		for (size_t i = 0; i < b->n; i++)
			json_object_set(resources, json_string_value(res->v[*from - b->n + i].name),
					b->v[i]);
		kilt_ecs_list_images(recipe, ctx, o, s->io->needs);
		json_object_clear(resources);
		json_object_update(resources, before);
		if (s->io->resolve)
			s->io->resolve(s->io->resolve_userdata, s->io->needs);
	}
	return 0;
}

/* The Resources object, one resource at a time through the engine with `ctx` (the context
 * sections and an empty Resources object) as its template. */
static int stream_resources(struct stream *s, const struct kilt_recipe *recipe, json_t *ctx,
			    const struct members *res, const struct kilt_ecs_options *o,
			    struct kilt_report *acc, bool *ret_failed, struct kilt_error *err)
{
	if (res->n == 0)
		return emit(s, "{}", 2) < 0 ? kilt_error_setf(err, -EIO, "cannot write the result")
					    : 0;
	if (emit(s, "{", 1) < 0)
		return kilt_error_setf(err, -EIO, "cannot write the result");
	json_t *resources = json_object_get(ctx, "Resources");
	/* the services ctx holds for the engine, put back after their own turn */
	_cleanup_json_ json_t *kept = json_copy(resources);
	struct batch b = { .n = 0 };
	size_t parsed = 0;
	int r = 0;
	for (size_t i = 0; i < res->n && r == 0; i++) {
		if (b.next == b.n) {
			r = batch_fill(s, recipe, ctx, o, res, &parsed, &b);
			if (r != 0)
				break;
		}
		const char *id = json_string_value(res->v[i].name);
		json_object_set_new(resources, id, b.v[b.next++]);
		struct kilt_report one;
		kilt_report_init(&one);
		r = recipe ? kilt_ecs_inject(recipe, ctx, o, &one, err)
			   : kilt_ecs_remove(ctx, o, &one, err);
		_cleanup_json_ json_t *v = json_incref(json_object_get(resources, id));
		json_object_del(resources, id);
		if (json_object_get(kept, id))
			json_object_set(resources, id, json_object_get(kept, id));
		if (r < 0) {
			kilt_report_done(&one);
			*ret_failed = true;
			/* the whole-document path parses everything before it patches anything */
			if (!spans_parse(s, res, parsed))
				r = KILT_CFN_STREAM_WHOLE;
			break;
		}
		kilt_report_move(acc, &one);
		r = emit_key(s, i == 0, ",\n    ", res->v[i].name, err);
		if (r == 0)
			r = dump(s, v, 4, err);
	}
	batch_done(&b);
	if (r == 0 && emit(s, "\n  }", 4) < 0)
		r = kilt_error_setf(err, -EIO, "cannot write the result");
	return r;
}

static ssize_t find_member(const struct members *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(json_string_value(m->v[i].name), name) == 0)
			return (ssize_t)i;
	return -1;
}

static int run(struct stream *s, const struct kilt_recipe *recipe, const struct kilt_ecs_options *o,
	       struct members *top, struct members *res, struct kilt_report *acc,
	       struct kilt_error *err)
{
	const char *t = s->text;
	size_t len = s->len;
	size_t i = skip_ws(t, len, 0);
	if (i >= len || t[i] != '{')
		return KILT_CFN_STREAM_WHOLE;
	size_t end = split_object(t, len, i, 0, top);
	if (!end || skip_ws(t, len, end) != len)
		return KILT_CFN_STREAM_WHOLE;
	ssize_t ri = find_member(top, "Resources");
	if (ri < 0)
		return KILT_CFN_STREAM_WHOLE;
	struct span rs = top->v[ri].value;
	if (t[rs.start] != '{' || split_object(t, len, rs.start, 1, res) != rs.end)
		return KILT_CFN_STREAM_WHOLE;

	/* The engine's template: the sections it reads, and Resources, one resource at a time. */
	_cleanup_json_ json_t *ctx = json_object();
	static const char *const sections[] = CFN_CONTEXT_SECTIONS;
	for (size_t k = 0; k < ARRAY_SIZE(sections); k++) {
		ssize_t m = find_member(top, sections[k]);
		if (m < 0)
			continue;
		json_t *v = parse_span(s, top->v[m].value);
		if (!v)
			return KILT_CFN_STREAM_WHOLE;
		json_object_set_new(ctx, sections[k], v);
	}
	/* The engine reads the Services and TaskSets that run a task (whether they can run it on
	 * Fargate): they stay in its Resources throughout. A resource is one only if its text
	 * says so, or hides words behind \u escapes: only those are parsed here. */
	json_t *kept = json_object();
	json_object_set_new(ctx, "Resources", kept);
	for (size_t k = 0; k < res->n; k++) {
		const char *p = t + res->v[k].value.start;
		size_t n = res->v[k].value.end - res->v[k].value.start;
		if (!memmem(p, n, "ECS::Service", 12) && !memmem(p, n, "ECS::TaskSet", 12) &&
		    !memmem(p, n, "\\u", 2))
			continue;
		json_t *v = parse_span(s, res->v[k].value);
		if (!v)
			return KILT_CFN_STREAM_WHOLE;
		const char *type = json_string_value(json_object_get(v, "Type"));
		if (type && (strcmp(type, "AWS::ECS::Service") == 0 ||
			     strcmp(type, "AWS::ECS::TaskSet") == 0))
			json_object_set(kept, json_string_value(res->v[k].name), v);
		json_decref(v);
	}

	if (emit(s, "{", 1) < 0)
		return kilt_error_setf(err, -EIO, "cannot write the result");
	for (size_t k = 0; k < top->n; k++) {
		int r = emit_key(s, k == 0, ",\n  ", top->v[k].name, err);
		if (r < 0)
			return r;
		if ((ssize_t)k == ri) {
			bool failed = false;
			r = stream_resources(s, recipe, ctx, res, o, acc, &failed, err);
			if (r < 0 && failed && !spans_parse(s, top, k + 1))
				r = KILT_CFN_STREAM_WHOLE;
			if (r != 0)
				return r;
			continue;
		}
		const char *name = json_string_value(top->v[k].name);
		json_t *have = json_object_get(ctx, name);
		_cleanup_json_ json_t *v = NULL;
		if (have && strcmp(name, "Resources") != 0)
			v = json_incref(have);
		else
			v = parse_span(s, top->v[k].value);
		if (!v)
			return KILT_CFN_STREAM_WHOLE;
		r = dump(s, v, 2, err);
		if (r < 0)
			return r;
	}
	if (emit(s, "\n}", 2) < 0)
		return kilt_error_setf(err, -EIO, "cannot write the result");
	return 0;
}

int kilt_cfn_stream_inject(const struct kilt_recipe *recipe, const char *text, size_t len,
			   const struct kilt_ecs_options *opts, const struct kilt_cfn_stream *io,
			   struct kilt_report *report, struct kilt_error *err)
{
	struct kilt_ecs_options o;
	if (opts)
		o = *opts;
	else
		kilt_ecs_options_default(&o);
	if (!io || !io->write || !text ||
	    (o.input != KILT_ECS_INPUT_AUTO && o.input != KILT_ECS_INPUT_CLOUDFORMATION))
		return KILT_CFN_STREAM_WHOLE;
	struct stream s = { .text = text, .len = len, .io = io };
	kilt_json_out_init(&s.out, io->write, io->write_userdata);
	struct members top = { 0 }, res = { 0 };
	struct kilt_report acc;
	kilt_report_init(&acc);
	int r = run(&s, recipe, &o, &top, &res, &acc, err);
	if (r == 0 && kilt_json_out_flush(&s.out) < 0)
		r = kilt_error_setf(err, -EIO, "cannot write the result");
	kilt_json_out_done(&s.out);
	members_done(&top);
	members_done(&res);
	if (r != 0) {
		kilt_report_done(&acc);
		return r;
	}
	acc.input = kilt_ecs_input_name(KILT_ECS_INPUT_CLOUDFORMATION);
	kilt_report_tally(&acc);
	if (report) {
		kilt_report_done(report);
		*report = acc;
	} else {
		kilt_report_done(&acc);
	}
	return 0;
}
