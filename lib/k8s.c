/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes engine: decides for each pod (found by k8s-walk.c) whether and with which
 * recipe to inject it, plans each container through the shared planning step (plan.c), and
 * writes the plan into the raw pod through the undo journal (journal.c), which also gives the
 * RFC 6902 patch. The pod keeps a status annotation recording what kilt added and what it
 * replaced, so that a second run is a no-op, a changed recipe replaces the injection and
 * removal restores the pod. docs/kubernetes.md documents the rules. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <strings.h>

#include "internal.h"
#include "journal.h"
#include "json-write.h"
#include "kilt.h"

#define DEFAULT_COPY_HELPER "/kilt/bin/kilt-wait"
#define COPY_MOUNT_ROOT "/kilt-volume"
#define MAX_NAME 63 /* a DNS label: container and volume names */
#define STATUS_VERSION_TEXT "1" /* the status's "version" */

/* What one run (a document or a pod) shares. */
struct run {
	const struct kilt_k8s_options *opts;
	/* borrowed: opts->prepared when it was made under opts, else NULL */
	struct kilt_k8s_prepared *prepared;
	struct kilt_journal *j;
	json_t *root; /* borrowed: the document being walked (the pods' pointers start there) */
	struct kilt_report *report; /* borrowed */
	json_t *warnings; /* borrowed array of strings, or NULL */
	struct kilt_image_needs *needs; /* borrowed: only listing what to look up */
	json_t *namespaces; /* borrowed: name -> Namespace object of the input, or NULL */
	const struct kilt_k8s_namespace *default_ns; /* borrowed, may be NULL */
	bool removing;
	struct kilt_error *err;
};

/* The annotations of kilt a pod may carry (struct pod's ann). */
enum {
	POD_ANN_STATUS,
	POD_ANN_RECIPE,
	POD_ANN_INCLUDE,
	POD_ANN_EXCLUDE,
	POD_ANN_INJECT,
	POD_ANN_COUNT
};

/* One pod being decided. */
struct pod {
	struct run *run;
	const struct kilt_k8s_pod_ref *ref;
	json_t *obj; /* borrowed: the object holding metadata and spec */
	json_t *spec; /* borrowed */
	/* Members of the pod read once, in one pass over each object, before anything is changed
	 * (each was looked up again by every step that needed it: a hash of the key each time).
	 * All borrowed, NULL when absent. */
	const json_t *labels; /* metadata.labels */
	const char *ann[POD_ANN_COUNT]; /* kilt's annotations (strings only) */
	const char *meta_namespace; /* metadata.namespace */
	const char *wnamespace; /* the workload's metadata.namespace */
	json_t *lists[2]; /* spec.containers and spec.initContainers */
	const json_t *node_selector, *affinity; /* spec.nodeSelector and spec.affinity */
	char task[512]; /* "Deployment web" / "Pod default/web-1" for the report */
	const char
		*group; /* borrowed: the workload's name (the recipe's original.group), or NULL */
	const char *ns_name; /* borrowed */
	const json_t *ns_labels, *ns_annotations; /* borrowed, may be NULL */
	const json_t *status; /* borrowed from `status_owned`, or NULL */
	json_t *status_owned; /* owned: the parsed status annotation */
	char *platform; /* owned; NULL when unknown */
	size_t decision; /* the pod's decision in the report */
	size_t mark; /* the journal before this pod */
	bool warn;
	char reason[1024];
};

static const char *const SYSTEM_NAMESPACES[] = { "kube-system", "kube-public", "kube-node-lease" };

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *str_at(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

__attribute__((format(printf, 3, 4))) static void append_reason(char *buf, size_t size,
								const char *fmt, ...)
{
	size_t len = strlen(buf);
	if (len + 3 >= size)
		return;
	if (len) {
		memcpy(buf + len, "; ", 3);
		len += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* Text put together piece by piece in a buffer of `size` bytes, cut as snprintf cuts it (the
 * first size - 1 bytes of the whole, NUL-terminated); for the few texts of every pod, which
 * snprintf's formatting made a tenth of the engine's own work. */
struct cut_text {
	char *buf;
	size_t size, len;
};

static void cut_init(struct cut_text *t, char *buf, size_t size)
{
	*t = (struct cut_text){ .buf = buf, .size = size };
	buf[0] = '\0';
}

static void cut_addn(struct cut_text *t, const char *s, size_t n)
{
	size_t room = t->size - 1 - t->len;
	if (n > room)
		n = room;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void cut_add(struct cut_text *t, const char *s)
{
	cut_addn(t, s, strlen(s));
}

/* The decimal digits of `u`, as %zu writes them. */
static void cut_add_size(struct cut_text *t, size_t u)
{
	char num[KILT_DIGITS_MAX];
	const char *s = kilt_digits(num + sizeof(num), u);
	cut_addn(t, s, (size_t)(num + sizeof(num) - s));
}

static void warn(struct run *run, const char *task, const char *container, const char *msg)
{
	if (!run->warnings)
		return;
	json_array_append_new(run->warnings,
			      container ? json_sprintf("%s / %s: %s", task, container, msg)
					: json_sprintf("%s: %s", task, msg));
}

/* A value of the label or annotation `key`: the label first, as Istio and Linkerd read them. */
static const char *meta_value(const json_t *labels, const json_t *annotations, const char *key)
{
	const char *v = str_at(labels, key);
	return v ? v : str_at(annotations, key);
}

/* +1 enabled, -1 disabled, 0 absent; -2 not a value kilt knows. */
static int inject_setting(const char *v)
{
	if (!v)
		return 0;
	if (strcasecmp(v, "enabled") == 0 || strcasecmp(v, "true") == 0)
		return 1;
	if (strcasecmp(v, "disabled") == 0 || strcasecmp(v, "false") == 0)
		return -1;
	return -2;
}

/* {"key": value, ...} of `n` members (values stolen), built as json_pack would ("{so...}"):
 * NULL when a value is NULL. */
static json_t *object_of(size_t n, ...)
{
	json_t *o = json_object();
	bool ok = true;
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const char *key = va_arg(ap, const char *);
		json_t *v = va_arg(ap, json_t *);
		if (!v)
			ok = false;
		else if (ok)
			json_object_set_new_nocheck(o, key, v);
		else
			json_decref(v);
	}
	va_end(ap);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* [value, ...] of `n` elements (stolen), NULL when one is NULL. */
static json_t *array_of(size_t n, ...)
{
	json_t *a = json_array();
	bool ok = true;
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		json_t *v = va_arg(ap, json_t *);
		if (!v)
			ok = false;
		else if (ok)
			json_array_append_new(a, v);
		else
			json_decref(v);
	}
	va_end(ap);
	if (!ok) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* A string node of text that is valid UTF-8 already: a literal, ASCII the engine wrote (names,
 * paths), or the C string of a jansson value (jansson holds only valid UTF-8; its C string ends at
 * the first NUL, as json_string's copy of it would). json_string checks it again, which was a
 * tenth of the strings' cost in a review. */
static json_t *str_node(const char *s)
{
	return json_string_nocheck(s);
}

#define STR_LIT(lit) json_stringn_nocheck("" lit, sizeof(lit) - 1)

/* A copy of the string node `s` (NULL when it is none). */
static json_t *copy_str(const json_t *s)
{
	return json_stringn_nocheck(json_string_value(s), json_string_length(s));
}

/* ---- journaled edits ----------------------------------------------------------------------- */

static void set(struct run *run, json_t *obj, const char *key, json_t *value)
{
	kilt_journal_set(run->j, obj, key, value);
}

static void del(struct run *run, json_t *obj, const char *key)
{
	kilt_journal_del(run->j, obj, key);
}

/* Tells the journal that `node` leads to changes (kilt_journal_via): the patch walks into it. */
static void via(struct run *run, const json_t *node)
{
	kilt_journal_via(run->j, node);
}

/* Declares the nodes from the document's root down to the one at `pointer` (RFC 6901). */
static void via_pointer(struct run *run, const char *pointer)
{
	const json_t *node = run->root;
	via(run, node);
	for (const char *s = pointer; node && *s == '/';) {
		s++;
		size_t n = strcspn(s, "/"), o = 0;
		char seg[256];
		if (n >= sizeof(seg))
			return;
		for (size_t i = 0; i < n; i++) {
			if (s[i] == '~' && i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '1')) {
				seg[o++] = s[i + 1] == '0' ? '~' : '/';
				i++;
			} else {
				seg[o++] = s[i];
			}
		}
		seg[o] = '\0';
		s += n;
		if (json_is_object(node)) {
			node = json_object_getn(node, seg, o);
		} else if (json_is_array(node)) {
			char *end;
			errno = 0;
			unsigned long k = strtoul(seg, &end, 10);
			node = o && *end == '\0' && errno == 0 ? json_array_get(node, k) : NULL;
		} else {
			node = NULL;
		}
		via(run, node);
	}
}

enum { CREATED = 1, CREATED_FROM_NULL = 2 };

/* What the status records for a field kilt created, as JSON text: true (it was absent) or
 * "null". */
static const char *created_marker(int created)
{
	return created == CREATED_FROM_NULL ? "\"null\"" : "true";
}

/* Undoes a created field when it is empty again: deleted, or null as it was. */
static void undo_created(struct run *run, json_t *obj, const char *key, const json_t *marker,
			 bool empty)
{
	if (!marker || !empty)
		return;
	if (json_is_true(marker))
		del(run, obj, key);
	else if (json_is_string(marker) && strcmp(json_string_value(marker), "null") == 0)
		set(run, obj, key, json_null());
}

/* Whether `v` is a container of the pieces kept for the options (kilt_k8s_prepared), which no
 * one may change. */
static bool frozen(const json_t *v)
{
	return v && v->refcount == (size_t)-1 && (json_is_object(v) || json_is_array(v));
}

/* `v`, obj[key], as a value the engine may change: a frozen one is replaced (journaled) by a
 * copy of its own. */
static json_t *own_copy(struct run *run, json_t *obj, const char *key, const json_t *v)
{
	if (!frozen(v))
		return (json_t *)(uintptr_t)v;
	json_t *copy = json_deep_copy(v);
	set(run, obj, key, copy);
	return copy;
}

/* obj[key] as an object or an array (`type`), created empty (journaled) when `v`, its value read
 * already (NULL: absent), is absent or null. NULL when it is something else. */
static json_t *ensure_had(struct run *run, json_t *obj, const char *key, const json_t *v,
			  json_type type, int *ret_created)
{
	if (ret_created)
		*ret_created = 0;
	if (!v || json_is_null(v)) {
		if (ret_created)
			*ret_created = v ? CREATED_FROM_NULL : CREATED;
		json_t *made = type == JSON_OBJECT ? json_object() : json_array();
		set(run, obj, key, made);
		return made;
	}
	via(run, v);
	return json_typeof(v) == type ? (json_t *)(uintptr_t)v : NULL;
}

/* obj[key] as an object, created (journaled) when absent or null. NULL when it is something else. */
static json_t *ensure_object(struct run *run, json_t *obj, const char *key, int *ret_created)
{
	return ensure_had(run, obj, key, json_object_get(obj, key), JSON_OBJECT, ret_created);
}

static json_t *ensure_array(struct run *run, json_t *obj, const char *key, int *ret_created)
{
	return ensure_had(run, obj, key, json_object_get(obj, key), JSON_ARRAY, ret_created);
}

static void append(struct run *run, json_t *list, json_t *value)
{
	kilt_journal_will_append(run->j, list);
	json_array_append_new(list, value);
}

/* Removes the elements of `list` whose `key` (or the string element itself when key is NULL) is
 * in `names` (an array of strings), journaled. */
static void remove_named(struct run *run, json_t *list, const char *key, const json_t *names)
{
	if (!json_is_array(list) || !json_array_size(names))
		return;
	json_t *before = NULL;
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *el = json_array_get(list, i);
		const char *name = key ? str_at(el, key) : json_string_value(el);
		bool hit = false;
		size_t k;
		json_t *n;
		json_array_foreach (names, k, n) {
			if (name && json_is_string(n) && strcmp(name, json_string_value(n)) == 0)
				hit = true;
		}
		if (!hit)
			continue;
		if (!before)
			before = json_copy(list);
		json_array_remove(list, i);
	}
	if (before)
		kilt_journal_removed(run->j, list, before);
}

static json_t *find_named(const json_t *list, const char *key, const char *name)
{
	size_t i;
	json_t *el;
	json_array_foreach (list, i, el) {
		const char *n = str_at(el, key);
		if (n && strcmp(n, name) == 0)
			return el;
	}
	return NULL;
}

/* The last entry of `list` whose `key` is `name`: for env, the one that takes effect. */
static json_t *find_named_last(const json_t *list, const char *key, const char *name)
{
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *el = json_array_get(list, i);
		const char *n = str_at(el, key);
		if (n && strcmp(n, name) == 0)
			return el;
	}
	return NULL;
}

/* ---- names --------------------------------------------------------------------------------- */

/* A DNS label from `prefix` + `s`: lower case, [a-z0-9-], at most 63, no leading/trailing '-'. */
static void dns_label(char *out, size_t size, const char *prefix, const char *s, int index)
{
	/* prefix, s and "-index", cut at 255 bytes */
	char raw[256];
	size_t r = 0;
	for (const char *parts[2] = { prefix, s }, **q = parts; q < parts + 2; q++)
		for (const char *c = *q; *c && r < sizeof(raw) - 1; c++)
			raw[r++] = *c;
	if (index >= 0) {
		char num[KILT_DIGITS_MAX + 1];
		char *d = kilt_digits(num + sizeof(num), (unsigned)index);
		*--d = '-';
		for (; d < num + sizeof(num) && r < sizeof(raw) - 1; d++)
			raw[r++] = *d;
	}
	raw[r] = '\0';
	size_t n = 0, max = size - 1 < MAX_NAME ? size - 1 : MAX_NAME;
	for (const char *p = raw; *p && n < max; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (n == 0 || out[n - 1] == '-'))
			continue;
		out[n++] = c;
	}
	while (n && out[n - 1] == '-')
		n--;
	out[n] = '\0';
}

/* The name of the volume of mount `m` (plan mount object), volume index `i`. When the mount
 * name already starts with "kilt", it is not prefixed again. */
static void volume_name(char *out, size_t size, const json_t *m, size_t i)
{
	const char *name = str_at(m, "name");
	if (!name)
		name = "mount";
	bool prefixed = strncmp(name, "kilt", 4) == 0;
	dns_label(out, size, prefixed ? "" : "kilt-", name, (int)i);
}

static void copier_name(char *out, size_t size, const json_t *m)
{
	const char *name = str_at(m, "name");
	if (!name)
		name = "mount";
	dns_label(out, size, "kilt-copy-", strncmp(name, "kilt-", 5) == 0 ? name + 5 : name, -1);
}

/* ---- platform ------------------------------------------------------------------------------ */

/* The single value a required node affinity or nodeSelector pins `key` to, or NULL (written
 * into buf). More than one allowed value is "unknown". */
static const char *pinned(const struct pod *p, const char *key, char *buf, size_t size)
{
	const char *v = str_at(p->node_selector, key);
	if (v) {
		snprintf(buf, size, "%s", v);
		return buf;
	}
	if (!p->affinity)
		return NULL;
	const json_t *na = json_object_get(p->affinity, "nodeAffinity");
	const json_t *req = json_object_get(na, "requiredDuringSchedulingIgnoredDuringExecution");
	const json_t *list = json_object_get(req, "nodeSelectorTerms");
	const char *found = NULL;
	size_t i, k;
	json_t *term, *expr;
	/* Terms are ORed: every term must pin the same single value. */
	json_array_foreach (list, i, term) {
		const char *in_term = NULL;
		const json_t *exprs = json_object_get(term, "matchExpressions");
		json_array_foreach (exprs, k, expr) {
			const char *ek = str_at(expr, "key"), *op = str_at(expr, "operator");
			const json_t *vals = json_object_get(expr, "values");
			if (!ek || strcmp(ek, key) != 0 || !op || strcmp(op, "In") != 0)
				continue;
			if (json_array_size(vals) != 1 || !json_is_string(json_array_get(vals, 0)))
				return NULL;
			in_term = json_string_value(json_array_get(vals, 0));
		}
		if (!in_term || (found && strcmp(found, in_term) != 0))
			return NULL;
		found = in_term;
	}
	if (!found)
		return NULL;
	snprintf(buf, size, "%s", found);
	return buf;
}

static void decide_platform(struct pod *p)
{
	char os[64], arch[64];
	const char *o = pinned(p, "kubernetes.io/os", os, sizeof(os));
	const char *a = pinned(p, "kubernetes.io/arch", arch, sizeof(arch));
	if (!o && !a)
		return;
	p->platform = xasprintf("%s/%s", o ? o : "linux", a ? a : "amd64");
	if (!a) {
		/* the OS alone does not say the architecture: keep only what is known */
		free(p->platform);
		p->platform = NULL;
		if (o && strcmp(o, "linux") != 0)
			p->platform = xasprintf("%s/unknown", o);
	}
}

/* ---- namespace facts ----------------------------------------------------------------------- */

static void namespace_facts(struct pod *p)
{
	struct run *run = p->run;
	const char *name = p->wnamespace;
	if (!name || !name[0])
		name = p->meta_namespace;
	if (!name || !name[0])
		name = run->default_ns && run->default_ns->name ? run->default_ns->name : NULL;
	if (!name || !name[0])
		name = run->opts->default_namespace ? run->opts->default_namespace : "default";
	p->ns_name = name;
	const json_t *nsobj = run->namespaces ? json_object_get(run->namespaces, name) : NULL;
	if (nsobj) {
		const json_t *m = json_object_get(nsobj, "metadata");
		p->ns_labels = json_object_get(m, "labels");
		p->ns_annotations = json_object_get(m, "annotations");
	} else if (run->default_ns &&
		   (!run->default_ns->name || strcmp(run->default_ns->name, name) == 0)) {
		p->ns_labels = run->default_ns->labels;
		p->ns_annotations = run->default_ns->annotations;
	}
}

/* ---- Pod Security -------------------------------------------------------------------------- */

/* Capabilities the baseline level allows a container to add (Pod Security Standards). */
static const char *const BASELINE_CAPS[] = {
	"AUDIT_WRITE",	    "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",	 "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT"
};

static const char *cap_base(const char *c)
{
	return strncasecmp(c, "CAP_", 4) == 0 ? c + 4 : c;
}

static bool cap_eq(const char *a, const char *b)
{
	return strcasecmp(cap_base(a), cap_base(b)) == 0;
}

/* Whether the list names capability s (a string entry equal to it by cap_eq). */
static bool cap_listed(const json_t *list, const char *s)
{
	size_t i;
	const json_t *have;
	json_array_foreach (list, i, have) {
		if (json_is_string(have) && cap_eq(json_string_value(have), s))
			return true;
	}
	return false;
}

/* The first capability of `caps` that `level` forbids, or NULL. */
static const char *forbidden_cap(const json_t *caps, const char *level)
{
	size_t i;
	json_t *c;
	json_array_foreach (caps, i, c) {
		const char *s = json_string_value(c);
		if (!s)
			continue;
		if (strcmp(level, "restricted") == 0) {
			if (!cap_eq(s, "NET_BIND_SERVICE"))
				return s;
			continue;
		}
		bool ok = false;
		for (size_t k = 0; k < ARRAY_SIZE(BASELINE_CAPS); k++)
			ok = ok || cap_eq(s, BASELINE_CAPS[k]);
		if (!ok)
			return s;
	}
	return NULL;
}

/* The namespace's Pod Security levels that forbid something (baseline or restricted), NULL
 * where it has none: enforced, warned at, audited at, read in one pass over its labels. */
enum { PSA_ENFORCE, PSA_WARN, PSA_AUDIT, PSA_COUNT };

static void psa_levels(const struct pod *p, const char *ret[PSA_COUNT])
{
	static const struct kilt_json_key keys[PSA_COUNT] = {
		KILT_JSON_KEY(KILT_K8S_PSA_ENFORCE),
		KILT_JSON_KEY(KILT_K8S_PSA_WARN),
		KILT_JSON_KEY(KILT_K8S_PSA_AUDIT),
	};
	const json_t *v[PSA_COUNT];
	kilt_json_members(p->ns_labels, keys, PSA_COUNT, v);
	for (size_t i = 0; i < PSA_COUNT; i++) {
		const char *s = json_string_value(v[i]);
		ret[i] = s && (strcmp(s, "baseline") == 0 || strcmp(s, "restricted") == 0) ? s
											   : NULL;
	}
}

/* ---- the status annotation ----------------------------------------------------------------- */

static int read_status(struct pod *p)
{
	const char *text = p->ann[POD_ANN_STATUS];
	if (!text)
		return 0;
	json_error_t jerr;
	json_t *s = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(s) || !json_is_array(json_object_get(s, "containers")) ||
	    !json_is_string(json_object_get(s, "recipe"))) {
		json_decref(s);
		return kilt_error_setf(p->run->err, -EINVAL,
				       "the %s annotation is not one kilt wrote (%s); delete it to "
				       "let kilt inject the pod again",
				       KILT_K8S_STATUS, s ? "unexpected shape" : jerr.text);
	}
	p->status_owned = s;
	p->status = s;
	return 0;
}

/* ---- undo ---------------------------------------------------------------------------------- */

/* Whether the array `list` holds the string `s`. */
static bool str_in(const json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach (list, i, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

/* The entries of a container's env list that are still to be read (kilt_json_parse_env_lists()),
 * or NULL when it has none: the engine reads an entry when it changes it or needs its value;
 * until then the list holds json_null() for it, and its name says all else there is to know
 * (kilt_env_list_unread_name()). */
static struct kilt_env_list *env_unread(const struct run *run, const json_t *env)
{
	return run->opts->env_lists ? kilt_env_list_find(run->opts->env_lists, env) : NULL;
}

/* Every entry of the env list of container `c` read, for what reads or changes the list
 * itself. */
static void env_read_all(const struct run *run, const json_t *c)
{
	struct kilt_env_list *l = env_unread(run, json_object_get(c, "env"));
	if (l)
		kilt_env_list_read_all(l);
}

/* Restores one container from its record in the status annotation. */
static void undo_container(struct run *run, json_t *c, const json_t *rec, const json_t *volumes)
{
	static const char *const fields[] = { "image", "command", "args" };
	const json_t *orig = json_object_get(rec, "original");
	via(run, c);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!json_object_get(orig, fields[i]))
			continue; /* not replaced */
		json_t *v = json_object_get(orig, fields[i]);
		/* null in the record is a field the container did not have; one it had as null is
		 * named in original_null */
		if (json_is_null(v) && !str_in(json_object_get(rec, "original_null"), fields[i]))
			del(run, c, fields[i]);
		else
			set(run, c, fields[i], json_deep_copy(v));
	}
	env_read_all(run, c);
	json_t *env = json_object_get(c, "env");
	if (json_is_array(env)) {
		size_t i;
		json_t *e;
		const json_t *replaced_env = json_object_get(rec, "env_replaced");
		json_array_foreach (replaced_env, i, e) {
			json_t *cur = find_named_last(env, "name",
						      str_at(e, "name") ? str_at(e, "name") : "");
			if (!cur)
				continue;
			via(run, env);
			via(run, cur);
			const char *k;
			json_t *v;
			void *tmp;
			json_object_foreach_safe (cur, tmp, k, v) {
				if (!json_object_get(e, k))
					del(run, cur, k);
			}
			json_object_foreach (e, k, v) {
				if (!json_equal(json_object_get(cur, k), v))
					set(run, cur, k, json_deep_copy(v));
			}
		}
		via(run, env);
		remove_named(run, env, "name", json_object_get(rec, "env_added"));
		undo_created(run, c, "env", json_object_get(rec, "env_created"),
			     json_array_size(env) == 0);
	}
	json_t *sc = own_copy(run, c, "securityContext", json_object_get(c, "securityContext"));
	json_t *caps = json_object_get(sc, "capabilities");
	json_t *add = json_object_get(caps, "add");
	via(run, sc);
	via(run, caps);
	via(run, add);
	remove_named(run, add, NULL, json_object_get(rec, "capabilities_added"));
	const char *created = str_at(rec, "capabilities_created");
	const json_t *how = json_is_true(json_object_get(rec, "capabilities_created_null"))
				    ? json_object_get(rec, "capabilities_created_null")
				    : NULL;
	if (created && json_is_array(add) && json_array_size(add) == 0) {
		_cleanup_json_ json_t *marker = how ? STR_LIT("null") : json_true();
		if (strcmp(created, "securityContext") == 0 && json_object_size(caps) == 1 &&
		    json_object_size(sc) == 1)
			undo_created(run, c, "securityContext", marker, true);
		else if (strcmp(created, "capabilities") == 0 && json_object_size(caps) == 1)
			undo_created(run, sc, "capabilities", marker, true);
		else if (strcmp(created, "add") == 0)
			undo_created(run, caps, "add", marker, true);
	}
	json_t *vm = json_object_get(c, "volumeMounts");
	via(run, vm);
	remove_named(run, vm, "name", volumes);
	undo_created(run, c, "volumeMounts", json_object_get(rec, "volume_mounts_created"),
		     json_is_array(vm) && json_array_size(vm) == 0);
}

/* Undoes the injection the status annotation records. */
static void undo_pod(struct pod *p)
{
	struct run *run = p->run;
	const json_t *st = p->status;
	const json_t *volumes = json_object_get(st, "volumes");
	size_t i;
	json_t *rec;
	const char *lists[] = { "containers", "initContainers" };
	via(run, p->spec);
	const json_t *old_recs = json_object_get(st, "containers");
	json_array_foreach (old_recs, i, rec) {
		const char *name = str_at(rec, "name");
		for (size_t l = 0; name && l < ARRAY_SIZE(lists); l++) {
			json_t *list = json_object_get(p->spec, lists[l]);
			json_t *c = find_named(list, "name", name);
			if (c) {
				via(run, list);
				undo_container(run, c, rec, volumes);
			}
		}
	}
	json_t *init = json_object_get(p->spec, "initContainers");
	via(run, init);
	remove_named(run, init, "name", json_object_get(st, "initContainers"));
	undo_created(run, p->spec, "initContainers", json_object_get(st, "init_containers_created"),
		     json_is_array(init) && json_array_size(init) == 0);
	json_t *vols = json_object_get(p->spec, "volumes");
	via(run, vols);
	remove_named(run, vols, "name", volumes);
	undo_created(run, p->spec, "volumes", json_object_get(st, "volumes_created"),
		     json_is_array(vols) && json_array_size(vols) == 0);
	json_t *meta = json_object_get(p->obj, "metadata");
	json_t *ann = json_object_get(meta, "annotations");
	via(run, meta);
	via(run, ann);
	del(run, ann, KILT_K8S_STATUS);
	undo_created(run, meta, "annotations", json_object_get(st, "annotations_created"),
		     json_is_object(ann) && json_object_size(ann) == 0);
	undo_created(run, p->obj, "metadata", json_object_get(st, "metadata_created"),
		     json_is_object(meta) && json_object_size(meta) == 0);
}

/* ---- applying a plan to a container -------------------------------------------------------- */

/* A member of the status annotation's object set on the pod level (recipe, volumes, version...). */
struct status_member {
	const char *key; /* borrowed: a literal */
	json_t *v; /* owned: its value, or NULL */
	const char *s; /* borrowed: or a string's text, valid UTF-8 */
	const char *raw; /* borrowed: or JSON text (a literal) */
	bool records; /* or the records of the containers injected now */
};

/* The status annotation, written as text while the pod is injected instead of a jansson object
 * built and dumped at the end (that was a tenth of the engine's work): the records of the
 * containers injected now, each as it is made, and the pod-level members, put together by
 * status_text() as jansson would have dumped the object (JSON_COMPACT, members in the order
 * they were first set). */
struct status {
	/* the status this injection adds to (its records stay first), a copy of the pod's, when
	 * it is current; NULL otherwise */
	json_t *base; /* owned */
	struct kilt_json_out recs; /* owned: the records of the containers injected now, joined */
	size_t n_recs;
	const char **names; /* owned array of borrowed names: the records' containers */
	size_t rec_mark; /* recs' length before the record being written */
	bool rec_bad; /* the record being written holds text that is not UTF-8 */
	bool bad; /* a record kept does: there is no status text (jansson's dump would fail) */
	struct status_member set[12];
	size_t n_set;
};

struct injection {
	const struct kilt_planner *planner;
	/* the recipe reads the container's environment only to list its variables ahead of its
	 * own in the plan (kilt_recipe_reads_environment is false): merge_env can take them in */
	bool env_merge_only;
	struct kilt_marker marker;
	struct status st; /* the status being written */
	json_t *mounts; /* owned: name -> plan mount (the first container's), pod-level objects */
	json_t *all_caps; /* owned: every capability added, for Pod Security */
	struct kilt_json_out summary; /* owned: the text of a container's decision */
};

/* How a member's value is written: as in jansson's dump of the object (JSON_ENCODE_ANY: a
 * member may be a scalar written alone) */
#define MEMBER_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

static const struct status_member *status_member(const struct status *st, const char *key)
{
	for (size_t i = 0; i < st->n_set; i++)
		if (strcmp(st->set[i].key, key) == 0)
			return &st->set[i];
	return NULL;
}

/* Sets the pod-level member `key` (a literal) of the status to `v` (stolen), the string `s` or
 * the JSON text `raw`: in place when it is set already, after the others otherwise, as
 * json_object_set would. A NULL value sets nothing (json_object_set_new with NULL). */
static void status_set(struct status *st, const char *key, json_t *v, const char *s,
		       const char *raw)
{
	if (!v && !s && !raw)
		return;
	struct status_member *m = (struct status_member *)(uintptr_t)status_member(st, key);
	if (!m) {
		if (st->n_set == ARRAY_SIZE(st->set))
			abort(); /* more members than kilt ever sets */
		m = &st->set[st->n_set++];
	}
	json_decref(m->v);
	*m = (struct status_member){ .key = key, .v = v, .s = s, .raw = raw };
}

/* The string member `key` of the text `s`, left out when `s` is not UTF-8 (json_string would
 * give NULL, which json_object_set_new does not set). */
static void status_set_string(struct status *st, const char *key, const char *s)
{
	size_t n = strlen(s);
	if (kilt_utf8_valid_prefix((const unsigned char *)s, n) == n)
		status_set(st, key, NULL, s, NULL);
}

/* ---- a record's text: the members of the container's object in the status, in order ------- */

static inline __attribute__((always_inline)) void rec_raw(struct status *st, const char *lit)
{
	kilt_json_out_raw(&st->recs, lit, strlen(lit));
}

static void rec_value(struct status *st, const json_t *v)
{
	if (kilt_json_out_value(&st->recs, v, MEMBER_FLAGS, 0) < 0)
		st->rec_bad = true;
}

static void rec_string(struct status *st, const char *s)
{
	if (kilt_json_out_string(&st->recs, s, strlen(s), 0) < 0)
		st->rec_bad = true;
}

/* `,"key":`, `key` a literal. */
static void rec_key(struct status *st, const char *key)
{
	kilt_json_out_raw(&st->recs, ",\"", 2);
	rec_raw(st, key);
	kilt_json_out_raw(&st->recs, "\":", 2);
}

/* `,"key":` then what created_marker(created) gives: true, or "null". */
static void rec_created(struct status *st, const char *key, int created)
{
	rec_key(st, key);
	rec_raw(st, created_marker(created));
}

/* `,"key":` then the array `v`, when it is not empty. */
static void rec_list(struct status *st, const char *key, const json_t *v)
{
	if (!json_array_size(v))
		return;
	rec_key(st, key);
	rec_value(st, v);
}

/* One more name of the record's list `key` (`n` names before it): `,"key":[` opens it. The list
 * is closed by rec_list_close. A NULL name is left out (as str_node gives no node for it). */
static void rec_list_add(struct status *st, const char *key, size_t *n, const char *name)
{
	if (!name)
		return;
	if ((*n)++) {
		kilt_json_out_raw(&st->recs, ",", 1);
	} else {
		rec_key(st, key);
		kilt_json_out_raw(&st->recs, "[", 1);
	}
	rec_string(st, name);
}

static void rec_list_close(struct status *st, size_t n)
{
	if (n)
		kilt_json_out_raw(&st->recs, "]", 1);
}

/* Starts the record of container `name`: {"name":...,"original":{ */
static void rec_open(struct status *st, const char *name)
{
	st->rec_mark = st->recs.text.len;
	st->rec_bad = false;
	rec_raw(st, st->n_recs ? ",{\"name\":" : "{\"name\":");
	rec_string(st, name);
	rec_raw(st, ",\"original\":{");
}

/* The record is complete (kept: its container is injected) or let go (the container is not). */
static void rec_close(struct status *st, const char *name, bool keep)
{
	if (!keep) {
		st->recs.text.len = st->rec_mark;
		return;
	}
	kilt_json_out_raw(&st->recs, "}", 1);
	st->bad = st->bad || st->rec_bad;
	st->names = xrealloc(st->names, (st->n_recs + 1) * sizeof(*st->names));
	st->names[st->n_recs++] = name;
}

static void status_done(struct status *st)
{
	json_decref(st->base);
	kilt_json_out_done(&st->recs);
	free(st->names);
	for (size_t i = 0; i < st->n_set; i++)
		json_decref(st->set[i].v);
}

/* Whether the status lists container `name` (a record of the injection it adds to, or of a
 * container injected now). */
static bool status_lists(const struct status *st, const char *name)
{
	const json_t *old = st->base ? json_object_get(st->base, "containers") : NULL;
	if (find_named(old, "name", name))
		return true;
	/* records go into the base's list: none when that is no list */
	if (st->base && !json_is_array(old))
		return false;
	for (size_t i = 0; i < st->n_recs; i++)
		if (strcmp(st->names[i], name) == 0)
			return true;
	return false;
}

static int put_member_value(struct kilt_json_out *o, const struct status *st,
			    const struct status_member *m)
{
	if (m->records) {
		kilt_json_out_raw(o, "[", 1);
		kilt_json_out_raw(o, st->recs.text.data, st->recs.text.len);
		return kilt_json_out_raw(o, "]", 1);
	}
	if (m->s)
		return kilt_json_out_string(o, m->s, strlen(m->s), 0);
	if (m->raw)
		return kilt_json_out_raw(o, m->raw, strlen(m->raw));
	return kilt_json_out_value(o, m->v, MEMBER_FLAGS, 0);
}

/* The status annotation's text: what jansson's dump (JSON_COMPACT) of the status object gives,
 * the base's members first in their order (the pod-level members set again in their place, the
 * records added to its list of containers), then the other members set. NULL when some text is
 * not UTF-8 (the dump would fail). */
static json_t *status_text(const struct status *st)
{
	if (st->bad)
		return NULL;
	struct kilt_json_out o;
	kilt_json_out_init(&o, NULL, NULL);
	/* room for the whole text at once instead of a buffer grown by doubling */
	kilt_json_out_reserve(&o, 512 + st->recs.text.len);
	bool used[ARRAY_SIZE(st->set)] = { false };
	int r = kilt_json_out_raw(&o, "{", 1);
	bool first = true;
	const char *k;
	json_t *v;
	json_object_foreach (st->base, k, v) {
		if (!first)
			kilt_json_out_raw(&o, ",", 1);
		first = false;
		if (kilt_json_out_string(&o, k, strlen(k), 0) < 0)
			r = -2;
		kilt_json_out_raw(&o, ":", 1);
		const struct status_member *m = status_member(st, k);
		if (m) {
			used[m - st->set] = true;
			if (put_member_value(&o, st, m) < 0)
				r = -2;
		} else if (strcmp(k, "containers") == 0 && json_is_array(v)) {
			kilt_json_out_raw(&o, "[", 1);
			size_t i;
			json_t *el;
			json_array_foreach (v, i, el) {
				if (i)
					kilt_json_out_raw(&o, ",", 1);
				if (kilt_json_out_value(&o, el, MEMBER_FLAGS, 0) < 0)
					r = -2;
			}
			if (json_array_size(v) && st->n_recs)
				kilt_json_out_raw(&o, ",", 1);
			kilt_json_out_raw(&o, st->recs.text.data, st->recs.text.len);
			kilt_json_out_raw(&o, "]", 1);
		} else if (kilt_json_out_value(&o, v, MEMBER_FLAGS, 0) < 0) {
			r = -2;
		}
	}
	for (size_t i = 0; i < st->n_set; i++) {
		if (used[i])
			continue;
		kilt_json_out_raw(&o, first ? "\"" : ",\"", first ? 1 : 2);
		first = false;
		kilt_json_out_raw(&o, st->set[i].key, strlen(st->set[i].key));
		kilt_json_out_raw(&o, "\":", 2);
		if (put_member_value(&o, st, &st->set[i]) < 0)
			r = -2;
	}
	kilt_json_out_raw(&o, "}", 1);
	json_t *text = r < 0 ? NULL : json_stringn_nocheck(o.text.data, o.text.len);
	kilt_json_out_done(&o);
	return text;
}

static json_t *env_entry(const char *name, const json_t *value)
{
	if (json_is_string(value))
		return object_of(2, "name", str_node(name), "value",
				 str_node(json_string_value(value)));
	if (json_is_object(value) && json_object_get(value, "valueFrom"))
		return object_of(2, "name", str_node(name), "valueFrom",
				 json_deep_copy(json_object_get(value, "valueFrom")));
	_cleanup_free_ char *text = kilt_json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
	return object_of(2, "name", str_node(name), "value", json_string(text ? text : ""));
}

/* An env entry's members, read in one pass over its object (a lookup by key hashes the key and
 * walks a bucket; an entry has two or three members). */
struct env_view {
	const char
		*name; /* borrowed: the name's C string, NULL when the entry has no string name */
	const json_t *value, *value_from; /* borrowed members, NULL when absent */
	size_t hash; /* of the name's C string */
	/* the entry already says what the recipe sees for its name when it is the name's last
	 * entry (its name and a string value hold no NUL: the entry written back is the C
	 * string's; no value or null: the empty string; a valueFrom), so that merging that value
	 * back into it keeps it as it is */
	bool keeps;
};

static size_t name_hash(const char *s, size_t *ret_len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	const char *p = s;
	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	if (ret_len)
		*ret_len = (size_t)(p - s);
	return (size_t)h;
}

/* Whether the string node `s` holds no NUL (its C string is the whole JSON string). */
static inline bool str_clean(const json_t *s)
{
	return strlen(json_string_value(s)) == json_string_length(s);
}

/* Reads `entry` into `ev`: a member is told by its key's length first (a key may hold a NUL, and
 * three lengths are all there is to match), then its bytes compared as a word or two. */
static inline __attribute__((always_inline)) void env_view_read(struct env_view *ev,
								const json_t *entry)
{
	json_t *e = (json_t *)(uintptr_t)entry;
	const json_t *nv = NULL, *value = NULL, *value_from = NULL;
	for (void *it = json_object_iter(e); it; it = json_object_iter_next(e, it)) {
		size_t len = json_object_iter_key_len(it);
		const json_t **slot;
		if (len == 4) {
			if (memcmp(json_object_iter_key(it), "name", 4) != 0)
				continue;
			slot = &nv;
		} else if (len == 5) {
			if (memcmp(json_object_iter_key(it), "value", 5) != 0)
				continue;
			slot = &value;
		} else if (len == 9) {
			if (memcmp(json_object_iter_key(it), "valueFrom", 9) != 0)
				continue;
			slot = &value_from;
		} else {
			continue;
		}
		*slot = json_object_iter_value(it);
	}
	ev->value = value;
	ev->value_from = value_from;
	ev->name = json_string_value(nv);
	ev->keeps = ev->name && str_clean(nv) &&
		    (value_from || !value || json_is_null(value) ||
		     (json_is_string(value) && str_clean(value)));
}

/* Entry `i` of `env`, read if it was not (`l`: env_unread(env)). */
static json_t *env_at(struct kilt_env_list *l, const json_t *env, size_t i)
{
	return l ? kilt_env_list_read(l, i) : json_array_get(env, i);
}

/* env_view_read() of entry `i` of `env`: an entry still to be read is a named one that keeps its
 * value (its value and value_from are not looked at then). */
static void env_view_at(struct env_view *ev, const struct kilt_env_list *l, const json_t *env,
			size_t i)
{
	const char *name = l ? kilt_env_list_unread_name(l, i) : NULL;
	if (name)
		*ev = (struct env_view){ .name = name, .keeps = true };
	else
		env_view_read(ev, json_array_get(env, i));
}

/* Where each name is first (what find_named would return) and last in a list of named entries,
 * found in constant time: an open-addressing table of indices into the list, so that merging a
 * plan's environment with a container's is linear in the entries instead of quadratic. Entries
 * appended to the list are added with name_index_add. */
struct name_index {
	const json_t *list; /* borrowed */
	const struct kilt_env_list *unread; /* borrowed: its entries still to be read, or NULL */
	struct env_view *v; /* owned: each entry's members, as read when it was added */
	size_t *slot; /* owned: each named entry's slot */
	size_t n, cap;
	size_t *first; /* owned: index + 1 of the first entry of a name, 0 when the slot is empty */
	size_t *last; /* owned: index of the last entry of the slot's name */
	size_t mask;
};

/* The slot of `name` (of hash `hash`): where it is, or the empty one where it would go. */
static size_t name_slot(const struct name_index *ix, const char *name, size_t hash)
{
	for (size_t h = hash & ix->mask;; h = (h + 1) & ix->mask) {
		size_t at = ix->first[h];
		if (!at)
			return h;
		const struct env_view *ev = &ix->v[at - 1];
		if (ev->hash == hash && strcmp(ev->name, name) == 0)
			return h;
	}
}

/* Takes in the list's entry `i` (the next one). */
static void name_index_add(struct name_index *ix, size_t i)
{
	if (ix->n == ix->cap) {
		ix->cap = 2 * ix->cap;
		ix->v = xrealloc(ix->v, ix->cap * sizeof(*ix->v));
		ix->slot = xrealloc(ix->slot, ix->cap * sizeof(*ix->slot));
	}
	struct env_view *ev = &ix->v[ix->n++];
	env_view_at(ev, ix->unread, ix->list, i);
	if (!ev->name)
		return;
	ev->hash = name_hash(ev->name, NULL);
	size_t h = name_slot(ix, ev->name, ev->hash);
	if (!ix->first[h])
		ix->first[h] = i + 1;
	ix->last[h] = i;
	ix->slot[i] = h;
}

/* A table for `list` (`unread`: its entries still to be read) with room for `extra` entries
 * more. */
static void name_index_init(struct name_index *ix, const json_t *list,
			    const struct kilt_env_list *unread, size_t extra)
{
	size_t n = json_array_size(list), cap = 16;
	while (cap < 2 * (n + extra))
		cap *= 2;
	*ix = (struct name_index){
		.list = list,
		.unread = unread,
		.v = xmalloc((n + extra + 1) * sizeof(struct env_view)),
		.slot = xmalloc((n + extra + 1) * sizeof(size_t)),
		.cap = n + extra + 1,
		.first = xcalloc(cap, sizeof(size_t)),
		.last = xmalloc(cap * sizeof(size_t)),
		.mask = cap - 1,
	};
	for (size_t i = 0; i < n; i++)
		name_index_add(ix, i);
}

static void name_index_done(struct name_index *ix)
{
	free(ix->v);
	free(ix->slot);
	free(ix->first);
	free(ix->last);
}

/* Whether `j` is the JSON string of the C string `s`. */
static bool is_cstring(const json_t *j, const char *s)
{
	size_t n = strlen(s);
	return json_is_string(j) && json_string_length(j) == n &&
	       memcmp(json_string_value(j), s, n) == 0;
}

/* Whether env entry `cur` already holds every member of env_entry(name, value) (members of its
 * own beyond those are not looked at), without building that entry. */
static bool env_entry_holds(const json_t *cur, const char *name, const json_t *value)
{
	if (!is_cstring(json_object_get(cur, "name"), name))
		return false;
	if (json_is_string(value)) {
		const json_t *v = json_object_get(cur, "value");
		/* an entry without a value, or with null, gives the empty string (the API server
		 * decodes both so) */
		if ((!v || json_is_null(v)) && !json_object_get(cur, "valueFrom"))
			return !*json_string_value(value);
		return is_cstring(v, json_string_value(value));
	}
	if (json_is_object(value) && json_object_get(value, "valueFrom"))
		return json_equal(json_object_get(cur, "valueFrom"),
				  json_object_get(value, "valueFrom"));
	_cleanup_json_ json_t *want = env_entry(name, value);
	const char *k;
	json_t *v;
	json_object_foreach (want, k, v) {
		if (!json_equal(json_object_get(cur, k), v))
			return false;
	}
	return true;
}

/* What a container's record says of its env: the names appended (written into the record as they
 * come) and the entries replaced (written after them). */
struct env_rec {
	struct status *st; /* borrowed */
	size_t n_added;
	json_t *replaced; /* owned: copies of the entries as they were */
};

/* The merge of one variable of the plan: kept when the container's entry of that name (`cur`:
 * its last one, the one that takes effect, since the kubelet keeps the last value of a name)
 * already says it, replaced when it says something else, appended when there is none. Returns
 * true when it appended an entry. */
static bool merge_variable(struct run *run, json_t *env, json_t *cur, const char *name,
			   const json_t *value, struct env_rec *er)
{
	/* the original's own value comes back from the plan unchanged: keep it */
	if (cur && env_entry_holds(cur, name, value))
		return false;
	_cleanup_json_ json_t *want = env_entry(name, value);
	if (!cur) {
		append(run, env, json_incref(want));
		rec_list_add(er->st, "env_added", &er->n_added, name);
		return true;
	}
	json_array_append_new(er->replaced, json_deep_copy(cur));
	via(run, cur);
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe (cur, tmp, k, v) {
		if (strcmp(k, "name") != 0 && !json_object_get(want, k))
			del(run, cur, k);
	}
	json_object_foreach (want, k, v) {
		if (!json_equal(json_object_get(cur, k), v))
			set(run, cur, k, json_incref(v));
	}
	return false;
}

#define FEW_PLAN_NAMES 4
#define FEW_PLAN_ENTRIES 16

/* A name of the plan's environment, and the container's first and last entry of it. */
struct plan_name {
	const char *name; /* borrowed */
	const json_t *value; /* borrowed: the value of the plan's last entry of the name */
	size_t first, last, appended;
	bool own, has_appended, merged;
};

/* merge_env's own_first merge when the plan has a few names (in at most FEW_PLAN_ENTRIES
 * entries) and every named entry of the container already says what the recipe sees for its
 * name (env_view.keeps): then only the entries of the plan's names can change, and they are
 * found by comparing names, without a table of every name. Returns false, having done nothing,
 * when that does not hold. */
static bool merge_env_few(struct run *run, json_t *env, struct kilt_env_list *unread,
			  const json_t *penv, struct env_rec *er)
{
	struct plan_name pn[FEW_PLAN_NAMES] = { 0 };
	/* the plan's entries, each read once: its name (NULL: none), value and name's pn */
	struct {
		const char *name;
		const json_t *value;
		size_t k;
	} pe[FEW_PLAN_ENTRIES];
	size_t n_pe = json_array_size(penv), n_pn = 0, i, k;
	if (n_pe > FEW_PLAN_ENTRIES)
		return false;
	static const struct kilt_json_key keys[2] = { KILT_JSON_KEY("name"),
						      KILT_JSON_KEY("value") };
	for (i = 0; i < n_pe; i++) {
		const json_t *m[2];
		kilt_json_members(json_array_get(penv, i), keys, 2, m);
		const char *name = json_string_value(m[0]);
		pe[i].name = name;
		pe[i].value = m[1];
		if (!name)
			continue;
		for (k = 0; k < n_pn && strcmp(pn[k].name, name) != 0; k++)
			;
		if (k == n_pn) {
			if (n_pn == FEW_PLAN_NAMES)
				return false;
			pn[n_pn++] = (struct plan_name){ .name = name };
		}
		pn[k].value = m[1];
		pe[i].k = k;
	}
	size_t n_own = json_array_size(env);
	for (i = 0; i < n_own; i++) {
		/* an entry still to be read keeps its value (env_view_at) */
		const char *name = unread ? kilt_env_list_unread_name(unread, i) : NULL;
		if (!name) {
			struct env_view ev;
			env_view_read(&ev, json_array_get(env, i));
			if (!ev.name)
				continue;
			if (!ev.keeps)
				return false;
			name = ev.name;
		}
		for (k = 0; k < n_pn; k++) {
			if (pn[k].name[0] != name[0] || strcmp(pn[k].name, name) != 0)
				continue;
			if (!pn[k].own)
				pn[k].first = i;
			pn[k].own = true;
			pn[k].last = i;
			break;
		}
	}
	/* the container's names in the order of their first entries, the plan's value merged
	 * into the last entry */
	for (;;) {
		struct plan_name *next = NULL;
		for (k = 0; k < n_pn; k++)
			if (pn[k].own && !pn[k].merged && (!next || pn[k].first < next->first))
				next = &pn[k];
		if (!next)
			break;
		next->merged = true;
		merge_variable(run, env, env_at(unread, env, next->last), next->name, next->value,
			       er);
	}
	/* then the plan's other variables, in its order */
	for (i = 0; i < n_pe; i++) {
		if (!pe[i].name)
			continue;
		struct plan_name *n = &pn[pe[i].k];
		if (n->own)
			continue;
		json_t *cur = n->has_appended ? json_array_get(env, n->appended) : NULL;
		if (merge_variable(run, env, cur, pe[i].name, pe[i].value, er)) {
			n->has_appended = true;
			n->appended = json_array_size(env) - 1;
		}
	}
	return true;
}

/* merge_env's merge through a table of the container's names (name_index). */
static void merge_env_indexed(struct run *run, json_t *env, struct kilt_env_list *unread,
			      const json_t *penv, bool own_first, struct env_rec *er)
{
	struct name_index ix;
	name_index_init(&ix, env, unread, json_array_size(penv));
	size_t n_own = json_array_size(env);
	if (own_first) {
		/* the plan's last entry of each name the container has, at its first entry */
		_cleanup_free_ const json_t **plan_of = xcalloc(n_own + 1, sizeof(*plan_of));
		size_t i;
		json_t *pe;
		json_array_foreach (penv, i, pe) {
			const char *name = str_at(pe, "name");
			if (!name)
				continue;
			size_t h = name_slot(&ix, name, name_hash(name, NULL));
			if (ix.first[h])
				plan_of[ix.first[h] - 1] = pe;
		}
		for (i = 0; i < n_own; i++) {
			const char *name = ix.v[i].name;
			if (!name || ix.first[ix.slot[i]] != i + 1)
				continue; /* no name, or not the first entry of its name */
			size_t last = ix.last[ix.slot[i]];
			json_t *e = env_at(unread, env, last);
			if (plan_of[i]) {
				merge_variable(run, env, e, name,
					       json_object_get(plan_of[i], "value"), er);
				continue;
			}
			/* the value the recipe would have seen: the last entry's */
			const struct env_view *l = &ix.v[last];
			const json_t *vf = l->value_from, *v = l->value;
			if (l->keeps)
				continue;
			_cleanup_json_ json_t *own = vf ? json_pack("{sO}", "valueFrom", vf)
						     : v && !json_is_null(v)
							     ? json_incref((json_t *)(uintptr_t)v)
							     : STR_LIT("");
			merge_variable(run, env, e, name, own, er);
		}
	}
	size_t i;
	json_t *pe;
	json_array_foreach (penv, i, pe) {
		const char *name = str_at(pe, "name");
		if (!name)
			continue;
		size_t h = name_slot(&ix, name, name_hash(name, NULL));
		/* a name the container had was merged above, with the plan's last value */
		if (own_first && ix.first[h] && ix.first[h] - 1 < n_own)
			continue;
		json_t *cur = ix.first[h] ? env_at(unread, env, ix.last[h]) : NULL;
		if (merge_variable(run, env, cur, name, json_object_get(pe, "value"), er))
			name_index_add(&ix, json_array_size(env) - 1);
	}
	name_index_done(&ix);
}

/* Merges the plan's environment into the container's env by name, recording what it did.
 * `own_first`: the plan holds the recipe's variables alone (its planner was not given the
 * container's environment), and the merge does what it would have done with a plan that lists
 * the container's own variables first (injection.env_merge_only): each name the container
 * has, in the order of its first entry, with the value of its last entry (as the recipe sees
 * the environment) or the plan's, then the plan's other variables. */
static int merge_env(struct run *run, json_t *c, const json_t *had, const json_t *penv,
		     bool own_first, struct status *st, struct kilt_error *err)
{
	int created;
	json_t *env = ensure_had(run, c, "env", had, JSON_ARRAY, &created);
	if (!env)
		return kilt_error_setf(err, -EINVAL, "env is not a list");
	struct env_rec er = { .st = st, .replaced = json_array() };
	struct kilt_env_list *unread = env_unread(run, env);
	if (!own_first || !merge_env_few(run, env, unread, penv, &er))
		merge_env_indexed(run, env, unread, penv, own_first, &er);
	rec_list_close(st, er.n_added);
	rec_list(st, "env_replaced", er.replaced);
	json_decref(er.replaced);
	if (created) {
		if (json_array_size(env) == 0 && created == CREATED)
			del(run, c, "env");
		else if (json_array_size(env) == 0)
			set(run, c, "env", json_null());
		else
			rec_created(st, "env_created", created);
	}
	return 0;
}

/* What a container without a securityContext gets for the plan's capabilities: the
 * securityContext {"capabilities":{"add":[...]}}, each capability once, and the text of its
 * record's list of them (`,"capabilities_added":[...]`). Made for one container
 * (caps_piece_build) or once and shared, frozen (kilt_k8s_prepared). */
struct caps_piece {
	json_t *sc; /* owned */
	char *text; /* owned, NULL when empty */
	size_t len;
	bool bad; /* the text holds a name that is not UTF-8 (status.rec_bad) */
};

static void caps_piece_build(const json_t *caps, struct caps_piece *ret)
{
	struct status scratch = { 0 };
	kilt_json_out_init(&scratch.recs, NULL, NULL);
	json_t *add = json_array();
	size_t i, n_added = 0;
	json_t *cap;
	json_array_foreach (caps, i, cap) {
		const char *s = json_string_value(cap);
		if (!cap_listed(add, s)) {
			json_array_append_new(add, str_node(s));
			rec_list_add(&scratch, "capabilities_added", &n_added, s);
		}
	}
	rec_list_close(&scratch, n_added);
	*ret = (struct caps_piece){ .sc = object_of(1, "capabilities", object_of(1, "add", add)),
				    .len = scratch.recs.text.len,
				    .bad = scratch.rec_bad };
	ret->text = ret->len ? steal_pointer(&scratch.recs.text.data) : NULL;
	kilt_json_out_done(&scratch.recs);
}

static void caps_piece_done(struct caps_piece *cp)
{
	json_decref(cp->sc);
	free(cp->text);
	*cp = (struct caps_piece){ 0 };
}

static const struct caps_piece *caps_of(const struct run *run, const json_t *caps,
					struct caps_piece *fresh);

static int merge_caps(struct run *run, json_t *c, const json_t *have_sc, const json_t *caps,
		      struct status *st, const char *cname, struct pod *p, struct kilt_error *err)
{
	if (!json_array_size(caps))
		return 0;
	if (!have_sc || json_is_null(have_sc)) {
		/* no securityContext: the one below is set whole at once (the same document, patch
		 * and undo as the three levels created one by one) */
		struct caps_piece fresh = { 0 };
		const struct caps_piece *cp = caps_of(run, caps, &fresh);
		if (cp->len)
			kilt_json_out_raw(&st->recs, cp->text, cp->len);
		st->rec_bad = st->rec_bad || cp->bad;
		set(run, c, "securityContext", json_incref(cp->sc));
		caps_piece_done(&fresh);
		rec_raw(st, ",\"capabilities_created\":\"securityContext\"");
		if (have_sc)
			rec_raw(st, ",\"capabilities_created_null\":true");
		return 0;
	}
	const char *created = NULL;
	int cr;
	bool from_null = false;
	json_t *sc = ensure_had(run, c, "securityContext",
				own_copy(run, c, "securityContext", have_sc), JSON_OBJECT, &cr);
	if (!sc)
		return kilt_error_setf(err, -EINVAL, "securityContext is not an object");
	if (cr) {
		created = "securityContext";
		from_null = cr == CREATED_FROM_NULL;
	}
	json_t *capo = ensure_object(run, sc, "capabilities", &cr);
	if (!capo)
		return kilt_error_setf(err, -EINVAL,
				       "securityContext.capabilities is not an object");
	if (cr && !created) {
		created = "capabilities";
		from_null = cr == CREATED_FROM_NULL;
	}
	json_t *add = ensure_array(run, capo, "add", &cr);
	if (!add)
		return kilt_error_setf(err, -EINVAL,
				       "securityContext.capabilities.add is not a list");
	if (cr && !created) {
		created = "add";
		from_null = cr == CREATED_FROM_NULL;
	}
	json_t *drop = json_object_get(capo, "drop");
	size_t i, k, n_added = 0;
	json_t *cap, *have;
	json_array_foreach (caps, i, cap) {
		const char *s = json_string_value(cap);
		if (!cap_listed(add, s)) {
			append(run, add, str_node(s));
			rec_list_add(st, "capabilities_added", &n_added, s);
		}
		json_array_foreach (drop, k, have) {
			if (json_is_string(have) && cap_eq(json_string_value(have), s)) {
				char w[256];
				snprintf(w, sizeof(w),
					 "securityContext.capabilities.drop names %s, which the "
					 "recipe adds: the runtime may drop it again",
					 s);
				append_reason(p->reason, sizeof(p->reason), "%s: %s", cname, w);
				p->warn = true;
			}
		}
	}
	rec_list_close(st, n_added);
	if (created) {
		rec_raw(st, ",\"capabilities_created\":");
		rec_string(st, created);
	}
	if (created && from_null)
		rec_raw(st, ",\"capabilities_created_null\":true");
	return 0;
}

/* Whether the pod's status annotation (an injection before this one) lists volume `name`. */
static bool status_volume(const struct pod *p, const char *name)
{
	return p->status && str_in(json_object_get(p->status, "volumes"), name);
}

/* ---- what a plan mount adds to a pod ------------------------------------------------------- */

/* One volume of a plan mount: its pod volume and a container's entry mounting it. */
struct volume_piece {
	char name[MAX_NAME + 1]; /* the pod volume's name */
	json_t *mount; /* owned: a container's volumeMounts entry; NULL when its path is no string */
	json_t *volume; /* owned: the pod volume */
};

/* What the injection of a plan mount adds to a pod: a function of the mount and of the options
 * alone. Made for one use (mount_pieces_build) or once and shared, frozen, by every run that has
 * the same options (kilt_k8s_prepared). */
struct mount_pieces {
	struct volume_piece *v; /* owned: one per element of the mount's volumes */
	size_t n;
	char cname[MAX_NAME + 1]; /* the copy init container's name */
	json_t *init; /* owned: the copy init container; NULL with image volumes */
};

/* The resources of the copy init containers. */
static json_t *init_resources(const struct kilt_k8s_options *o)
{
	if (o->init_resources)
		return json_deep_copy(o->init_resources);
	return object_of(2, "requests",
			 object_of(2, "cpu", STR_LIT("10m"), "memory", STR_LIT("16Mi")), "limits",
			 object_of(2, "cpu", STR_LIT("100m"), "memory", STR_LIT("64Mi")));
}

/* The pieces of plan mount `m` under the options `o` into `ret`: the containers' mount entries
 * only, or with `pod_objects` the pod volumes and the copy init container too. */
static void mount_pieces_build(const struct kilt_k8s_options *o, const json_t *m, bool pod_objects,
			       struct mount_pieces *ret)
{
	const json_t *volumes = json_object_get(m, "volumes");
	const char *image = str_at(m, "image");
	bool copy = o->volume_source != KILT_K8S_VOLUME_IMAGE;
	*ret = (struct mount_pieces){ .n = json_array_size(volumes) };
	ret->v = xcalloc(ret->n + 1, sizeof(*ret->v));
	json_t *cmd = NULL, *cvm = NULL;
	if (pod_objects && copy) {
		cmd = array_of(2,
			       o->copy_helper ? json_string(o->copy_helper)
					      : STR_LIT(DEFAULT_COPY_HELPER),
			       STR_LIT("--copy"));
		cvm = json_array();
	}
	for (size_t k = 0; k < ret->n; k++) {
		struct volume_piece *vp = &ret->v[k];
		const json_t *path = json_array_get(volumes, k);
		const char *ps = json_string_value(path);
		volume_name(vp->name, sizeof(vp->name), m, k);
		vp->mount = object_of(3, "name", str_node(vp->name), "mountPath", str_node(ps),
				      "readOnly", json_true());
		if (!copy && ps && ps[1])
			json_object_set_new_nocheck(vp->mount, "subPath", str_node(ps + 1));
		if (!pod_objects)
			continue;
		if (!copy) {
			vp->volume = object_of(2, "name", str_node(vp->name), "image",
					       object_of(2, "reference", str_node(image),
							 "pullPolicy", STR_LIT("IfNotPresent")));
			continue;
		}
		vp->volume = object_of(2, "name", str_node(vp->name), "emptyDir", json_object());
		char dest[64];
		struct cut_text d;
		cut_init(&d, dest, sizeof(dest));
		cut_add(&d, COPY_MOUNT_ROOT "/");
		cut_add_size(&d, k);
		json_array_append_new(cmd, copy_str(path));
		json_array_append_new(cmd, str_node(dest));
		json_array_append_new(
			cvm, object_of(2, "name", str_node(vp->name), "mountPath", str_node(dest)));
	}
	copier_name(ret->cname, sizeof(ret->cname), m);
	if (!pod_objects || !copy)
		return;
	json_t *sc = object_of(6, "allowPrivilegeEscalation", json_false(), "capabilities",
			       object_of(1, "drop", array_of(1, STR_LIT("ALL"))),
			       "readOnlyRootFilesystem", json_true(), "runAsNonRoot",
			       json_boolean(o->copy_user != 0), "runAsUser",
			       json_integer((json_int_t)o->copy_user), "seccompProfile",
			       object_of(1, "type", STR_LIT("RuntimeDefault")));
	ret->init = object_of(7, "name", str_node(ret->cname), "image", str_node(image), "command",
			      cmd, "imagePullPolicy", STR_LIT("IfNotPresent"), "resources",
			      init_resources(o), "volumeMounts", cvm, "securityContext", sc);
}

static void mount_pieces_done(struct mount_pieces *mp)
{
	for (size_t k = 0; k < mp->n; k++) {
		json_decref(mp->v[k].mount);
		json_decref(mp->v[k].volume);
	}
	free(mp->v);
	json_decref(mp->init);
	*mp = (struct mount_pieces){ 0 };
}

/* The count of every node of `v` set to `count` (jansson's true, false and null left alone). */
static void set_counts(json_t *v, size_t count)
{
	if (!v || v == json_true() || v == json_false() || v == json_null())
		return;
	v->refcount = count;
	if (json_is_object(v)) {
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
			set_counts(json_object_iter_value(it), count);
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			set_counts(json_array_get(v, i), count);
	}
}

/* jansson leaves a value whose count is (size_t)-1 alone (its true, false and null): never
 * counted, never freed. A tree made so can be put into any number of documents at once, by any
 * thread, without a count changing, and a request's arena (kilt-json-arena.h) takes it for none
 * of its own, as it does jansson's constants. Nothing may change it: the engine only adds it to
 * a document and removes it again. */
static void freeze(json_t *v)
{
	set_counts(v, (size_t)-1);
}

/* Counts every node of a frozen tree once again (each is referenced once in it), so that
 * json_decref frees it. */
static void thaw(json_t *v)
{
	set_counts(v, 1);
}

/* The pieces kept for one plan mount, found by what they are made of. */
struct prepared_mount {
	char *name; /* owned: the mount's name, NULL when it has none */
	char *image; /* owned */
	size_t name_len, image_len;
	json_t *volumes; /* owned: a copy of the mount's volumes (strings) */
	struct mount_pieces pieces; /* frozen */
};

#define PREPARED_MOUNTS 32
#define PREPARED_CAPS 32

/* The securityContext kept for a plan's capabilities. */
struct prepared_caps {
	json_t *caps; /* owned: a copy of the capabilities (strings) */
	struct caps_piece piece; /* its securityContext frozen */
};

struct kilt_k8s_prepared {
	/* the options the pieces are made under */
	enum kilt_k8s_volume_source volume_source;
	char *copy_helper; /* owned, may be NULL */
	long long copy_user;
	json_t *init_resources; /* owned, may be NULL */
	/* Entries [0, n) are complete and never change: read without the lock; the lock is for
	 * adding one. */
	struct prepared_mount mounts[PREPARED_MOUNTS];
	_Atomic size_t n;
	struct prepared_caps caps[PREPARED_CAPS]; /* the same, [0, n_caps) */
	_Atomic size_t n_caps;
	pthread_mutex_t lock;
};

struct kilt_k8s_prepared *kilt_k8s_prepared_new(const struct kilt_k8s_options *opts)
{
	struct kilt_k8s_prepared *pp = xcalloc(1, sizeof(*pp));
	/* what it keeps outlives any request's arena */
	bool arena = kilt_json_arena_suspend();
	pp->volume_source = opts->volume_source;
	pp->copy_helper = opts->copy_helper ? xstrdup(opts->copy_helper) : NULL;
	pp->copy_user = opts->copy_user;
	pp->init_resources = opts->init_resources ? json_deep_copy(opts->init_resources) : NULL;
	kilt_json_arena_resume(arena);
	atomic_init(&pp->n, 0);
	atomic_init(&pp->n_caps, 0);
	pthread_mutex_init(&pp->lock, NULL);
	return pp;
}

void kilt_k8s_prepared_free(struct kilt_k8s_prepared *pp)
{
	if (!pp)
		return;
	size_t n = atomic_load(&pp->n);
	for (size_t i = 0; i < n; i++) {
		struct prepared_mount *pm = &pp->mounts[i];
		free(pm->name);
		free(pm->image);
		json_decref(pm->volumes);
		struct mount_pieces *mp = &pm->pieces;
		for (size_t k = 0; k < mp->n; k++) {
			thaw(mp->v[k].mount);
			thaw(mp->v[k].volume);
		}
		thaw(mp->init);
		mount_pieces_done(mp);
	}
	size_t n_caps = atomic_load(&pp->n_caps);
	for (size_t i = 0; i < n_caps; i++) {
		json_decref(pp->caps[i].caps);
		thaw(pp->caps[i].piece.sc);
		caps_piece_done(&pp->caps[i].piece);
	}
	pthread_mutex_destroy(&pp->lock);
	free(pp->copy_helper);
	json_decref(pp->init_resources);
	free(pp);
}

/* Whether `pp` was made under the options `o` as far as the pieces go. */
static bool prepared_fits(const struct kilt_k8s_prepared *pp, const struct kilt_k8s_options *o)
{
	return pp->volume_source == o->volume_source && pp->copy_user == o->copy_user &&
	       (pp->copy_helper ? o->copy_helper && strcmp(pp->copy_helper, o->copy_helper) == 0
				: !o->copy_helper) &&
	       (pp->init_resources
			? o->init_resources && json_equal(pp->init_resources, o->init_resources)
			: !o->init_resources);
}

enum { MOUNT_NAME, MOUNT_IMAGE, MOUNT_VOLUMES, MOUNT_COUNT };

/* Whether `s` is the string `kept` (of `len` bytes), or absent as `kept` is NULL. */
static bool same_text(const char *kept, size_t len, const json_t *s)
{
	if (!kept)
		return !s;
	return json_is_string(s) && json_string_length(s) == len &&
	       memcmp(kept, json_string_value(s), len) == 0;
}

/* Whether the strings of `list` are those of `kept` (strings), one for one. */
static bool same_strings(const json_t *kept, const json_t *list)
{
	size_t n = json_array_size(list);
	if (n != json_array_size(kept))
		return false;
	for (size_t k = 0; k < n; k++) {
		const json_t *a = json_array_get(kept, k);
		if (!same_text(json_string_value(a), json_string_length(a),
			       json_array_get(list, k)))
			return false;
	}
	return true;
}

/* Whether `pm` was made for the mount of members `mm`. */
static bool prepared_is(const struct prepared_mount *pm, const json_t *const mm[MOUNT_COUNT])
{
	return same_text(pm->name, pm->name_len, mm[MOUNT_NAME]) &&
	       same_text(pm->image, pm->image_len, mm[MOUNT_IMAGE]) &&
	       same_strings(pm->volumes, mm[MOUNT_VOLUMES]);
}

static const struct prepared_mount *prepared_find(const struct kilt_k8s_prepared *pp, size_t from,
						  size_t to, const json_t *const mm[MOUNT_COUNT])
{
	for (size_t i = from; i < to; i++)
		if (prepared_is(&pp->mounts[i], mm))
			return &pp->mounts[i];
	return NULL;
}

/* The pieces of plan mount `m` kept by `pp`, made now when they are not yet; NULL when they
 * cannot be kept (a mount of another shape than the recipes give: names and image strings,
 * volumes strings without NUL, or the table is full). */
static const struct mount_pieces *prepared_pieces(struct kilt_k8s_prepared *pp, const json_t *m)
{
	static const struct kilt_json_key keys[MOUNT_COUNT] = {
		KILT_JSON_KEY("name"),
		KILT_JSON_KEY("image"),
		KILT_JSON_KEY("volumes"),
	};
	const json_t *mm[MOUNT_COUNT];
	kilt_json_members(m, keys, MOUNT_COUNT, mm);
	size_t n = atomic_load_explicit(&pp->n, memory_order_acquire);
	const struct prepared_mount *found = prepared_find(pp, 0, n, mm);
	if (found)
		return &found->pieces;
	/* the C strings the pieces are made of are the whole strings (what is kept is: a mount
	 * found above is so) */
	if ((mm[MOUNT_NAME] && !(json_is_string(mm[MOUNT_NAME]) && str_clean(mm[MOUNT_NAME]))) ||
	    !json_is_string(mm[MOUNT_IMAGE]) || !str_clean(mm[MOUNT_IMAGE]) ||
	    !json_is_array(mm[MOUNT_VOLUMES]))
		return NULL;
	size_t k;
	const json_t *v;
	json_array_foreach (mm[MOUNT_VOLUMES], k, v)
		if (!json_is_string(v) || !str_clean(v))
			return NULL;
	pthread_mutex_lock(&pp->lock);
	size_t now = atomic_load_explicit(&pp->n, memory_order_relaxed);
	found = prepared_find(pp, n, now, mm);
	if (!found && now < PREPARED_MOUNTS) {
		struct prepared_mount *pm = &pp->mounts[now];
		bool arena = kilt_json_arena_suspend();
		pm->name = mm[MOUNT_NAME] ? xstrdup(json_string_value(mm[MOUNT_NAME])) : NULL;
		pm->name_len = pm->name ? strlen(pm->name) : 0;
		pm->image = xstrdup(json_string_value(mm[MOUNT_IMAGE]));
		pm->image_len = strlen(pm->image);
		pm->volumes = json_deep_copy(mm[MOUNT_VOLUMES]);
		struct kilt_k8s_options o = { .volume_source = pp->volume_source,
					      .copy_helper = pp->copy_helper,
					      .copy_user = pp->copy_user,
					      .init_resources = pp->init_resources };
		mount_pieces_build(&o, m, true, &pm->pieces);
		kilt_json_arena_resume(arena);
		for (k = 0; k < pm->pieces.n; k++) {
			freeze(pm->pieces.v[k].mount);
			freeze(pm->pieces.v[k].volume);
		}
		freeze(pm->pieces.init);
		atomic_store_explicit(&pp->n, now + 1, memory_order_release);
		found = pm;
	}
	pthread_mutex_unlock(&pp->lock);
	return found ? &found->pieces : NULL;
}

static const struct prepared_caps *prepared_caps_find(const struct kilt_k8s_prepared *pp,
						      size_t from, size_t to, const json_t *caps)
{
	for (size_t i = from; i < to; i++)
		if (same_strings(pp->caps[i].caps, caps))
			return &pp->caps[i];
	return NULL;
}

/* The securityContext kept by `pp` for the capabilities `caps`, made now when it is not yet;
 * NULL when it cannot be kept (a capability that is no string without NUL, or the table is
 * full). */
static const struct caps_piece *prepared_caps(struct kilt_k8s_prepared *pp, const json_t *caps)
{
	size_t n = atomic_load_explicit(&pp->n_caps, memory_order_acquire);
	const struct prepared_caps *found = prepared_caps_find(pp, 0, n, caps);
	if (found)
		return &found->piece;
	size_t k;
	const json_t *v;
	json_array_foreach (caps, k, v)
		if (!json_is_string(v) || !str_clean(v))
			return NULL;
	pthread_mutex_lock(&pp->lock);
	size_t now = atomic_load_explicit(&pp->n_caps, memory_order_relaxed);
	found = prepared_caps_find(pp, n, now, caps);
	if (!found && now < PREPARED_CAPS) {
		struct prepared_caps *pc = &pp->caps[now];
		bool arena = kilt_json_arena_suspend();
		pc->caps = json_deep_copy(caps);
		caps_piece_build(caps, &pc->piece);
		kilt_json_arena_resume(arena);
		freeze(pc->piece.sc);
		atomic_store_explicit(&pp->n_caps, now + 1, memory_order_release);
		found = pc;
	}
	pthread_mutex_unlock(&pp->lock);
	return found ? &found->piece : NULL;
}

/* The securityContext for the capabilities `caps` in this run: the one kept by the options'
 * kilt_k8s_prepared, or one made into `fresh` (released by the caller with caps_piece_done). */
static const struct caps_piece *caps_of(const struct run *run, const json_t *caps,
					struct caps_piece *fresh)
{
	const struct caps_piece *kept = run->prepared ? prepared_caps(run->prepared, caps) : NULL;
	if (kept)
		return kept;
	caps_piece_build(caps, fresh);
	return fresh;
}

/* The options' kilt_k8s_prepared when it was made under them. */
static struct kilt_k8s_prepared *prepared_for(const struct kilt_k8s_options *o)
{
	return o->prepared && prepared_fits(o->prepared, o) ? o->prepared : NULL;
}

/* The pieces of plan mount `m` for this run: those kept by the options' kilt_k8s_prepared, or
 * made into `fresh` (released by the caller with mount_pieces_done). */
static const struct mount_pieces *pieces_of(const struct run *run, const json_t *m,
					    bool pod_objects, struct mount_pieces *fresh)
{
	const struct mount_pieces *kept = run->prepared ? prepared_pieces(run->prepared, m) : NULL;
	if (kept)
		return kept;
	mount_pieces_build(run->opts, m, pod_objects, fresh);
	return fresh;
}

/* The first entries of `vm` (a container's volumeMounts) mounting at `path` and named `name`. */
static void find_mount(const json_t *vm, const char *path, const char *name,
		       const json_t **ret_at_path, const json_t **ret_named)
{
	static const struct kilt_json_key keys[2] = { KILT_JSON_KEY("name"),
						      KILT_JSON_KEY("mountPath") };
	*ret_at_path = *ret_named = NULL;
	size_t i;
	const json_t *el;
	json_array_foreach (vm, i, el) {
		const json_t *mm[2];
		kilt_json_members(el, keys, 2, mm);
		const char *n = json_string_value(mm[0]), *mp = json_string_value(mm[1]);
		if (!*ret_at_path && mp && strcmp(mp, path) == 0)
			*ret_at_path = el;
		if (!*ret_named && n && strcmp(n, name) == 0)
			*ret_named = el;
	}
}

/* Mounts every volume of every plan mount into the container at its path. */
static int add_mounts(struct run *run, json_t *c, const json_t *had, const json_t *mounts,
		      struct status *st, const struct pod *p, struct kilt_error *err)
{
	if (!json_array_size(mounts))
		return 0;
	int created;
	json_t *vm = ensure_had(run, c, "volumeMounts", had, JSON_ARRAY, &created);
	if (!vm)
		return kilt_error_setf(err, -EINVAL, "volumeMounts is not a list");
	if (created)
		rec_created(st, "volume_mounts_created", created);
	size_t i, k;
	json_t *m, *path;
	json_array_foreach (mounts, i, m) {
		struct mount_pieces fresh = { 0 };
		const struct mount_pieces *mp = pieces_of(run, m, false, &fresh);
		const json_t *paths = json_object_get(m, "volumes");
		int r = 0;
		json_array_foreach (paths, k, path) {
			const char *ps = json_string_value(path);
			const char *name = mp->v[k].name;
			const json_t *clash, *named;
			find_mount(vm, ps ? ps : "", name, &clash, &named);
			const char *cn = clash ? str_at(clash, "name") : NULL;
			if (clash && !(cn && strcmp(cn, name) == 0)) {
				r = kilt_error_setf(err, -EEXIST,
						    "the container already mounts volume %s at %s, "
						    "where the recipe mounts %s",
						    cn ? cn : "?", ps, name);
				break;
			}
			if (named) {
				/* kilt's own mount of an earlier injection stays; a mount of the
				 * container's under that name would be taken for kilt's (and removed
				 * with it) */
				if (status_volume(p, name))
					continue;
				r = kilt_error_setf(err, -EEXIST,
						    "the container already mounts a volume named "
						    "%s, the name of the recipe's volume",
						    name);
				break;
			}
			append(run, vm, json_incref(mp->v[k].mount));
		}
		mount_pieces_done(&fresh);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool is_native_sidecar(const json_t *c)
{
	const char *rp = str_at(c, "restartPolicy");
	return rp && strcmp(rp, "Always") == 0;
}

static bool listed(const json_t *recs, const char *name)
{
	return find_named(recs, "name", name) != NULL;
}

/* The index of the first native sidecar of `init` that this injection patches (the size of
 * `init` when there is none): the copy init containers go before it. */
static size_t first_injected_sidecar(const json_t *init, const struct injection *inj)
{
	size_t k;
	json_t *ic;
	json_array_foreach (init, k, ic) {
		const char *n = str_at(ic, "name");
		if (n && is_native_sidecar(ic) && status_lists(&inj->st, n))
			return k;
	}
	return json_array_size(init);
}

static size_t index_named(const json_t *list, const char *name)
{
	size_t k;
	json_t *el;
	json_array_foreach (list, k, el) {
		const char *n = str_at(el, "name");
		if (n && strcmp(n, name) == 0)
			return k;
	}
	return json_array_size(list);
}

/* The pod volumes and the copy init container of one plan mount (its pieces `mp`), their names
 * listed in `vnames` and `inames`; `init` the pod's initContainers once made sure of. */
static int mount_objects(struct pod *p, const struct mount_pieces *mp, json_t *vols, json_t *vnames,
			 json_t *inames, const json_t *old_i, json_t **init, int *icreated,
			 const struct injection *inj, struct kilt_error *err)
{
	struct run *run = p->run;
	for (size_t k = 0; k < mp->n; k++) {
		const char *name = mp->v[k].name;
		json_array_append_new(vnames, str_node(name));
		/* a volume of the injection this one adds to stays as it is */
		if (find_named(vols, "name", name)) {
			if (!status_volume(p, name))
				return kilt_error_setf(err, -EEXIST,
						       "the pod already has a volume named %s",
						       name);
		} else {
			append(run, vols, json_incref(mp->v[k].volume));
		}
	}
	if (run->opts->volume_source == KILT_K8S_VOLUME_IMAGE)
		return 0;
	if (!*init) {
		*init = ensure_array(run, p->spec, "initContainers", icreated);
		if (!*init)
			return kilt_error_setf(err, -EINVAL, "spec.initContainers is not a list");
	}
	json_t *list = *init;
	const char *cname = mp->cname;
	bool ikept = str_in(old_i, cname);
	/* before the first native sidecar that is injected: it starts before the containers and
	 * needs the files already */
	size_t at = first_injected_sidecar(list, inj);
	if (ikept && find_named(list, "name", cname)) {
		json_array_append_new(inames, str_node(cname));
		/* a native sidecar another webhook put before it since (re-invocation), injected
		 * now, needs the files too: the copier moves before it (a new node, so that the
		 * patch removes and adds kilt's entry alone) */
		size_t cur = index_named(list, cname);
		if (cur > at) {
			json_t *before = json_copy(list);
			json_t *moved = json_copy(json_array_get(list, cur));
			json_array_remove(list, cur);
			json_array_insert_new(list, at, moved);
			kilt_journal_removed(run->j, list, before);
		}
		return 0;
	}
	if (find_named(list, "name", cname) || find_named(p->lists[0], "name", cname))
		return kilt_error_setf(err, -EEXIST, "the pod already has a container named %s",
				       cname);
	json_t *ic = json_incref(mp->init);
	if (at == json_array_size(list)) {
		append(run, list, ic);
	} else {
		kilt_journal_removed(run->j, list, json_copy(list));
		json_array_insert_new(list, at, ic);
	}
	json_array_append_new(inames, str_node(cname));
	return 0;
}

/* Pod-level objects for the plan's mounts: volumes, and copy init containers. */
static int add_pod_objects(struct pod *p, struct injection *inj, struct kilt_error *err)
{
	struct run *run = p->run;
	if (!json_object_size(inj->mounts))
		return 0;
	int vcreated, icreated = 0;
	json_t *vols = ensure_array(run, p->spec, "volumes", &vcreated);
	if (!vols)
		return kilt_error_setf(err, -EINVAL, "spec.volumes is not a list");
	/* on re-invocation the objects of the current injection stay as they are */
	const json_t *old_i = p->status ? json_object_get(p->status, "initContainers") : NULL;
	json_t *vnames = json_array(), *inames = json_array();
	status_set(&inj->st, "volumes", vnames, NULL, NULL);
	status_set(&inj->st, "initContainers", inames, NULL, NULL);
	if (vcreated)
		status_set(&inj->st, "volumes_created", NULL, NULL, created_marker(vcreated));
	json_t *init = NULL;
	const char *key;
	json_t *m;
	int r = 0;
	/* mount names in the plans' order: status->mounts keeps insertion order */
	json_object_foreach (inj->mounts, key, m) {
		struct mount_pieces fresh = { 0 };
		const struct mount_pieces *mp = pieces_of(run, m, true, &fresh);
		r = mount_objects(p, mp, vols, vnames, inames, old_i, &init, &icreated, inj, err);
		mount_pieces_done(&fresh);
		if (r < 0)
			return r;
	}
	if (init && icreated)
		status_set(&inj->st, "init_containers_created", NULL, NULL,
			   created_marker(icreated));
	return 0;
}

/* The members of a plan the engine applies. */
enum {
	PLAN_IMAGE,
	PLAN_ENTRYPOINT,
	PLAN_COMMAND,
	PLAN_ENVIRONMENT,
	PLAN_CAPABILITIES,
	PLAN_MOUNTS,
	PLAN_MEMBERS
};

static void plan_members(const json_t *plan, const json_t *ret[PLAN_MEMBERS])
{
	static const struct kilt_json_key keys[PLAN_MEMBERS] = {
		KILT_JSON_KEY("image"),	       KILT_JSON_KEY("entrypoint"),
		KILT_JSON_KEY("command"),      KILT_JSON_KEY("environment"),
		KILT_JSON_KEY("capabilities"), KILT_JSON_KEY("mounts"),
	};
	kilt_json_members(plan, keys, PLAN_MEMBERS, ret);
}

/* ---- deciding and planning one container --------------------------------------------------- */

/* The members of a container the engine reads, in one pass over it. */
enum {
	C_NAME,
	C_IMAGE,
	C_COMMAND,
	C_ARGS,
	C_RESTART_POLICY,
	C_ENV,
	C_SECURITY_CONTEXT,
	C_VOLUME_MOUNTS,
	C_COUNT
};

static void container_members(const json_t *c, const json_t *ret[C_COUNT])
{
	static const struct kilt_json_key keys[C_COUNT] = {
		KILT_JSON_KEY("name"),
		KILT_JSON_KEY("image"),
		KILT_JSON_KEY("command"),
		KILT_JSON_KEY("args"),
		KILT_JSON_KEY("restartPolicy"),
		KILT_JSON_KEY("env"),
		KILT_JSON_KEY("securityContext"),
		KILT_JSON_KEY("volumeMounts"),
	};
	kilt_json_members(c, keys, C_COUNT, ret);
}

/* The environment as the recipe sees it: name -> value (a string, or {"valueFrom": ...}). */
static json_t *target_env(const json_t *c)
{
	json_t *env = json_object();
	size_t i;
	json_t *e;
	const json_t *entries = json_object_get(c, "env");
	json_array_foreach (entries, i, e) {
		const char *name = str_at(e, "name");
		if (!name)
			continue;
		json_t *v = json_object_get(e, "value");
		json_t *vf = json_object_get(e, "valueFrom");
		if (vf)
			json_object_set_new(env, name, json_pack("{sO}", "valueFrom", vf));
		else
			json_object_set_new(env, name,
					    v && !json_is_null(v) ? json_incref(v) : STR_LIT(""));
	}
	return env;
}

/* Plans container `c`. Returns 0 with *ret_plan (and *ret_own_env: the plan's environment
 * leaves out the container's own variables, for merge_env to take them in), 1 when skipped
 * (reason in `why`), or a negative code (strict mode). */
static int plan_container(struct pod *p, struct injection *inj, json_t *c,
			  const json_t *const cm[C_COUNT], const char *cname,
			  const json_t *metadata, json_t **ret_plan, bool *ret_own_env, char *why,
			  size_t wsize)
{
	struct run *run = p->run;
	const char *image = json_string_value(cm[C_IMAGE]);
	if (!image) {
		snprintf(why, wsize, "the container has no image");
		return 1;
	}
	const json_t *cmd = cm[C_COMMAND], *args = cm[C_ARGS];
	if ((cmd && !json_is_array(cmd) && !json_is_null(cmd)) ||
	    (args && !json_is_array(args) && !json_is_null(args))) {
		snprintf(why, wsize, "command and args must be lists of strings");
		return 1;
	}
	_cleanup_json_ json_t *facts = NULL;
	if (kilt_docker_argv(cmd, args, NULL, NULL, NULL)) {
		if (run->needs) {
			kilt_image_needs_add(run->needs, image, p->platform);
			return 1;
		}
		struct kilt_error lerr = { 0 };
		int r = -ENOENT;
		if (run->opts->image_facts)
			r = run->opts->image_facts(run->opts->image_facts_userdata, image,
						   p->platform, &facts, &lerr);
		else
			snprintf(lerr.msg, sizeof(lerr.msg), "image lookups are off");
		if (r < 0) {
			snprintf(why, wsize,
				 "command is not set and the ENTRYPOINT of image %s could not be "
				 "looked up (%s); set command (and args) on the container to what "
				 "the image runs",
				 image, lerr.msg);
			if (run->opts->strict)
				return kilt_error_setf(run->err, r, "%s / %s: %s", p->task, cname,
						       why);
			return 1;
		}
	}
	if (run->needs)
		return 1;
	_cleanup_json_ json_t *ep = NULL, *argv = NULL, *env = NULL;
	/* read only (the recipe copies what it takes) */
	kilt_docker_argv_shared(cmd, args, facts, &ep, &argv);
	if (json_array_size(ep) == 0 && json_array_size(argv) == 0) {
		snprintf(why, wsize,
			 "neither the container nor image %s says what to run (no command, "
			 "ENTRYPOINT or CMD)",
			 image);
		if (run->opts->strict)
			return kilt_error_setf(run->err, -ENOENT, "%s / %s: %s", p->task, cname,
					       why);
		return 1;
	}
	const char *group = p->group;
	struct kilt_target target = {
		.image = image,
		.name = cname,
		.group = group,
		.entrypoint = ep,
		.command = argv,
		.environment = env,
		.metadata = metadata,
		.platform = p->platform,
		/* what plan_members reads */
		.members = KILT_PLAN_IMAGE | KILT_PLAN_ENTRYPOINT | KILT_PLAN_COMMAND |
			   KILT_PLAN_ENVIRONMENT | KILT_PLAN_CAPABILITIES | KILT_PLAN_MOUNTS,
		/* the engine reads the plan and copies what it writes into the pod */
		.shared = true,
	};
	struct kilt_error perr = { 0 };
	int r = -EINVAL;
	/* Without the container's variables in the plan when the planner leaves them to the
	 * engine (copying 50 of them in and out again was a fifth of the engine's time); with them
	 * when that fails, so that an error is the one the plan with them gives. */
	*ret_own_env = inj->env_merge_only;
	if (*ret_own_env)
		r = kilt_plan_container(inj->planner, &target, run->opts->config, ret_plan, &perr);
	if (r < 0) {
		*ret_own_env = false;
		perr = (struct kilt_error){ 0 };
		env_read_all(p->run, c);
		target.environment = env = target_env(c);
		r = kilt_plan_container(inj->planner, &target, run->opts->config, ret_plan, &perr);
	}
	if (r < 0) {
		snprintf(why, wsize, "%s", perr.msg);
		if (run->opts->strict) {
			*run->err = perr;
			return kilt_error_prefix(run->err, "%s / %s", p->task, cname);
		}
		return 1;
	}
	return 0;
}

/* ---- one pod ------------------------------------------------------------------------------- */

static const struct kilt_k8s_recipe *choose_recipe(struct pod *p, char *why, size_t size)
{
	const struct kilt_k8s_options *o = p->run->opts;
	const char *want = p->ann[POD_ANN_RECIPE];
	if (!want)
		want = str_at(p->ns_annotations, KILT_K8S_RECIPE);
	if (!want)
		return o->n_recipes ? &o->recipes[0] : NULL;
	for (size_t i = 0; i < o->n_recipes; i++)
		if (strcmp(o->recipes[i].name, want) == 0)
			return &o->recipes[i];
	struct kbuf names;
	kbuf_init(&names, 1024);
	for (size_t i = 0; i < o->n_recipes; i++)
		kbuf_printf(&names, "%s%s", i ? ", " : "", o->recipes[i].name);
	snprintf(size ? why : NULL, size,
		 "the %s annotation names recipe %s, which is not configured (configured: %s)",
		 KILT_K8S_RECIPE, want, names.len ? names.data : "none");
	kbuf_done(&names);
	return NULL;
}

static void comma_to_colon(char *s)
{
	for (; *s; s++)
		if (*s == ',')
			*s = ':';
}

static void fill_selection(struct pod *p, struct kilt_selection *sel)
{
	const char *inc = p->ann[POD_ANN_INCLUDE];
	const char *exc = p->ann[POD_ANN_EXCLUDE];
	sel->noun = "annotation";
	sel->verb = "annotated";
	sel->include_key = KILT_K8S_INCLUDE_CONTAINERS;
	sel->ignore_key = KILT_K8S_EXCLUDE_CONTAINERS;
	if (inc) {
		_cleanup_free_ char *s = xstrdup(inc);
		comma_to_colon(s);
		kilt_selection_set_list(sel, true, s);
	}
	if (exc) {
		_cleanup_free_ char *s = xstrdup(exc);
		comma_to_colon(s);
		kilt_selection_set_list(sel, false, s);
	}
}

/* Whether the pod is injected at all; `why` says why not. */
static bool pod_selected(struct pod *p, char *why, size_t size)
{
	const struct kilt_k8s_options *o = p->run->opts;
	for (size_t i = 0; i < ARRAY_SIZE(SYSTEM_NAMESPACES); i++)
		if (strcmp(p->ns_name, SYSTEM_NAMESPACES[i]) == 0) {
			snprintf(why, size, "kilt never injects into namespace %s", p->ns_name);
			return false;
		}
	if (o->own_namespace && strcmp(o->own_namespace, p->ns_name) == 0) {
		snprintf(why, size, "namespace %s is kilt's own: kilt never injects itself",
			 p->ns_name);
		return false;
	}
	/* the label first, as Istio and Linkerd read them */
	const char *pv = str_at(p->labels, KILT_K8S_INJECT);
	if (!pv)
		pv = p->ann[POD_ANN_INJECT];
	const char *nv = meta_value(p->ns_labels, p->ns_annotations, KILT_K8S_INJECT);
	int ps = inject_setting(pv), ns = inject_setting(nv);
	if (ps == -2) {
		snprintf(why, size, "the pod's %s is '%s'; use enabled or disabled",
			 KILT_K8S_INJECT, pv);
		p->warn = true;
		return false;
	}
	if (ps == -1) {
		snprintf(why, size, "the pod says %s: disabled", KILT_K8S_INJECT);
		return false;
	}
	if (ps == 1)
		return true;
	if (ns == -2) {
		snprintf(why, size, "namespace %s's %s is '%s'; use enabled or disabled",
			 p->ns_name, KILT_K8S_INJECT, nv);
		p->warn = true;
		return false;
	}
	if (ns == -1) {
		snprintf(why, size, "namespace %s says %s: disabled", p->ns_name, KILT_K8S_INJECT);
		return false;
	}
	if (ns == 1)
		return true;
	if (o->mode == KILT_SELECT_OPT_IN) {
		snprintf(why, size,
			 "opt-in mode and neither the pod nor namespace %s says %s: enabled",
			 p->ns_name, KILT_K8S_INJECT);
		return false;
	}
	return true;
}

static json_t *pod_metadata_fact(const json_t *obj)
{
	const json_t *meta = json_object_get(obj, "metadata");
	json_t *m = json_object();
	const char *k;
	json_t *v;
	json_t *ann = json_object_get(meta, "annotations");
	json_t *labels = json_object_get(meta, "labels");
	json_object_foreach (ann, k, v) {
		if (strcmp(k, KILT_K8S_STATUS) != 0)
			json_object_set(m, k, v);
	}
	json_object_foreach (labels, k, v) {
		json_object_set(m, k, v);
	}
	return m;
}

static size_t add_decision(struct pod *p, const char *container, enum kilt_verdict v, bool warning,
			   const char *reason)
{
	if (warning)
		warn(p->run, p->task, container, reason);
	return kilt_report_add(p->run->report, p->task, container, v, warning, reason);
}

static void settings_of(const struct kilt_k8s_options *o, json_t *s)
{
	if (json_object_size(o->config))
		json_object_set_nocheck(s, "config", (json_t *)(uintptr_t)o->config);
	if (o->volume_source == KILT_K8S_VOLUME_IMAGE)
		json_object_set_new_nocheck(s, "volumes", json_string("image"));
	if (o->copy_helper)
		json_object_set_new_nocheck(s, "copy_helper", json_string(o->copy_helper));
	if (o->copy_user)
		json_object_set_new_nocheck(s, "copy_user", json_integer((json_int_t)o->copy_user));
	if (o->init_resources)
		json_object_set_nocheck(s, "init_resources",
					(json_t *)(uintptr_t)o->init_resources);
}

static void set_pod_verdict(struct pod *p, enum kilt_verdict v, bool warning, const char *why)
{
	struct kilt_decision *d = &p->run->report->decisions[p->decision];
	d->verdict = v;
	d->warning = warning;
	kilt_report_set_reason(p->run->report, p->decision, why);
}

/* Leaves the pod as it came (everything since the pod's mark undone) and says why. */
static void skip_pod(struct pod *p, const char *why)
{
	kilt_journal_rollback(p->run->j, p->mark);
	struct kilt_report *r = p->run->report;
	/* the containers' decisions made so far no longer hold */
	for (size_t i = p->decision + 1; i < r->n_decisions; i++)
		if (r->decisions[i].verdict == KILT_PATCHED ||
		    r->decisions[i].verdict == KILT_REMOVED) {
			r->decisions[i].verdict = KILT_SKIPPED;
			kilt_report_set_reason(r, i, "not injected: the pod is skipped");
		}
	set_pod_verdict(p, KILT_SKIPPED, true, why);
	warn(p->run, p->task, NULL, why);
}

/* JSON of `v` (nothing when it cannot be written) after `o`'s text. */
static void put_json(struct kilt_json_out *o, const json_t *v)
{
	size_t mark = o->text.len;
	if (kilt_json_out_value(o, v, JSON_COMPACT, 0) < 0)
		o->text.len = mark;
}

/* "injected recipe R: command [...]", then "; capabilities [...]" when the plan adds some, cut
 * to fit `size` as snprintf and append_reason would cut them, in one buffer of the writer. */
static void injected_summary(struct kilt_json_out *o, char *out, size_t size, const char *recipe,
			     const json_t *ep, const json_t *caps)
{
	o->text.len = 0; /* the buffer of the pod's containers, each in turn */
	kilt_json_out_reserve(o, size);
	kilt_json_out_raw(o, "injected recipe ", 16);
	kilt_json_out_raw(o, recipe, strlen(recipe));
	kilt_json_out_raw(o, ": command ", 10);
	put_json(o, ep);
	if (json_array_size(caps) && o->text.len + 3 < size) {
		kilt_json_out_raw(o, "; capabilities ", 15);
		put_json(o, caps);
	}
	size_t n = o->text.len < size - 1 ? o->text.len : size - 1;
	memcpy(out, o->text.data, n);
	out[n] = '\0';
}

/* Injects `p` with `rec` (chosen recipe). Everything it changes is journaled. */
static int inject_pod(struct pod *p, const struct kilt_k8s_recipe *kr)
{
	struct run *run = p->run;
	struct kilt_planner planner;
	kilt_planner_from_recipe(kr->recipe, &planner);
	planner.name = kr->name;
	_cleanup_json_ json_t *settings = json_object();
	settings_of(run->opts, settings);
	struct injection inj = { .planner = &planner,
				 .env_merge_only = !kilt_recipe_reads_environment(kr->recipe) };
	kilt_marker_init(&inj.marker, &planner, settings);
	via(run, p->spec);
	int rc = 0;
	_cleanup_json_ json_t *metadata = NULL;

	if (!kilt_planner_supports(&planner, p->platform)) {
		char why[512];
		snprintf(why, sizeof(why), "recipe %s does not support platform %s", kr->name,
			 p->platform);
		if (p->status)
			undo_pod(p);
		set_pod_verdict(p, p->status ? KILT_REMOVED : KILT_SKIPPED, false, why);
		goto out;
	}

	bool current = p->status &&
		       kilt_marker_is(&inj.marker, str_at(p->status, "recipe"),
				      str_at(p->status, "hash"), str_at(p->status, "settings"));
	struct kilt_selection sel;
	kilt_selection_init(&sel, run->opts->mode);
	fill_selection(p, &sel);

	/* Which containers: the pod's containers, and native sidecars only when listed. */
	json_t *const *lists = p->lists;
	const json_t *old_recs = p->status ? json_object_get(p->status, "containers") : NULL;
	/* A container injected before that is no longer selected: start over. */
	if (current) {
		size_t i;
		json_t *r;
		json_array_foreach (old_recs, i, r) {
			const char *n = str_at(r, "name");
			char why[256];
			if (n &&
			    !kilt_selection_container(&sel, n, NULL, why, sizeof(why), NULL, NULL))
				current = false;
		}
	}
	if (p->status && !current) {
		undo_pod(p);
		old_recs = NULL;
	}
	/* the pod's labels and annotations, for a recipe that reads them */
	if (kilt_recipe_reads_metadata(kr->recipe))
		metadata = pod_metadata_fact(p->obj);
	/* a current status gets the records of the containers injected now added to its own */
	inj.st.base = current ? json_deep_copy(p->status) : NULL;
	kilt_json_out_init(&inj.st.recs, NULL, NULL);
	kilt_json_out_init(&inj.summary, NULL, NULL);
	/* room for a few records at once instead of a buffer grown by doubling */
	kilt_json_out_reserve(&inj.st.recs, 1024);
	inj.mounts = json_object();
	if (!current) {
		status_set_string(&inj.st, "recipe", inj.marker.recipe);
		status_set_string(&inj.st, "hash", inj.marker.hash);
		if (inj.marker.settings)
			status_set_string(&inj.st, "settings", inj.marker.settings);
		inj.st.set[inj.st.n_set++] =
			(struct status_member){ .key = "containers", .records = true };
	}
	size_t n_new = 0, n_current = 0;
	for (size_t l = 0; l < 2; l++) {
		size_t i;
		json_t *c;
		json_array_foreach (lists[l], i, c) {
			const json_t *cm[C_COUNT];
			container_members(c, cm);
			const char *cname = json_string_value(cm[C_NAME]);
			char why[1024];
			if (!cname)
				continue;
			const char *rp = json_string_value(cm[C_RESTART_POLICY]);
			if (l == 1 && !(rp && strcmp(rp, "Always") == 0))
				continue; /* an init container that runs to completion */
			if (l == 1 && !(sel.include_containers &&
					kilt_selection_container(&sel, cname, NULL, why,
								 sizeof(why), NULL, NULL))) {
				add_decision(p, cname, KILT_SKIPPED, false,
					     "a native sidecar: injected only when listed in the "
					     "kilt.dev/include-containers annotation");
				continue;
			}
			if (current && listed(old_recs, cname)) {
				add_decision(p, cname, KILT_UNCHANGED, false,
					     "already injected with this recipe");
				n_current++;
				continue;
			}
			if (!kilt_selection_container(&sel, cname, NULL, why, sizeof(why), NULL,
						      NULL)) {
				add_decision(p, cname, KILT_SKIPPED, false, why);
				continue;
			}
			_cleanup_json_ json_t *plan = NULL;
			bool own_env = false;
			int r = plan_container(p, &inj, c, cm, cname, metadata, &plan, &own_env,
					       why, sizeof(why));
			if (r < 0) {
				rc = r;
				goto done;
			}
			if (r > 0) {
				if (!run->needs)
					add_decision(p, cname, KILT_SKIPPED, true, why);
				continue;
			}
			size_t mark = kilt_journal_mark(run->j);
			via(run, lists[l]);
			via(run, c);
			/* the container's record: {"name":...,"original":{...},...} */
			struct status *st = &inj.st;
			rec_open(st, cname);
			bool orig_first = true;
			/* the plan's members, read in one pass */
			const json_t *pm[PLAN_MEMBERS] = { 0 };
			plan_members(plan, pm);
			const char *pimage = json_string_value(pm[PLAN_IMAGE]);
			if (pimage && strcmp(pimage, json_string_value(cm[C_IMAGE])) != 0) {
				rec_raw(st, "\"image\":");
				rec_value(st, cm[C_IMAGE]);
				orig_first = false;
				set(run, c, "image", str_node(pimage));
			}
			const char *nulls[2];
			size_t n_nulls = 0;
			const char *fields[2][2] = { { "command", "entrypoint" },
						     { "args", "command" } };
			for (size_t f = 0; f < 2; f++) {
				const json_t *cur = cm[f == 0 ? C_COMMAND : C_ARGS];
				json_t *want = (json_t *)(uintptr_t)
					pm[f == 0 ? PLAN_ENTRYPOINT : PLAN_COMMAND];
				/* a copy: the plan may be shared (kilt_target.shared) */
				want = kilt_json_copy_argv(want);
				if (cur && json_equal(cur, want)) {
					json_decref(want);
					continue;
				}
				/* the node itself: it leaves the container, unchanged */
				rec_raw(st, orig_first ? "\"" : ",\"");
				orig_first = false;
				rec_raw(st, fields[f][0]);
				rec_raw(st, "\":");
				if (cur)
					rec_value(st, cur);
				else
					rec_raw(st, "null");
				/* `args: null` comes back as null, not as no args */
				if (json_is_null(cur))
					nulls[n_nulls++] = fields[f][0];
				set(run, c, fields[f][0], want);
			}
			rec_raw(st, "}");
			for (size_t k = 0; k < n_nulls; k++) {
				rec_raw(st, k ? ",\"" : ",\"original_null\":[\"");
				rec_raw(st, nulls[k]);
				rec_raw(st, k + 1 < n_nulls ? "\"" : "\"]");
			}
			struct kilt_error ferr = { 0 };
			r = merge_env(run, c, cm[C_ENV], pm[PLAN_ENVIRONMENT], own_env, st, &ferr);
			if (r == 0)
				r = merge_caps(run, c, cm[C_SECURITY_CONTEXT],
					       pm[PLAN_CAPABILITIES], st, cname, p, &ferr);
			if (r == 0)
				r = add_mounts(run, c, cm[C_VOLUME_MOUNTS], pm[PLAN_MOUNTS], st, p,
					       &ferr);
			if (r < 0) {
				kilt_journal_rollback(run->j, mark);
				rec_close(st, cname, false);
				if (run->opts->strict) {
					*run->err = ferr;
					rc = kilt_error_prefix(run->err, "%s / %s", p->task, cname);
					goto done;
				}
				add_decision(p, cname, KILT_SKIPPED, true, ferr.msg);
				continue;
			}
			size_t k;
			json_t *m;
			json_array_foreach (pm[PLAN_MOUNTS], k, m) {
				const char *mn = str_at(m, "name");
				if (mn && !json_object_get(inj.mounts, mn))
					json_object_set(inj.mounts, mn, m);
			}
			json_t *caps = (json_t *)(uintptr_t)pm[PLAN_CAPABILITIES];
			if (!inj.all_caps)
				inj.all_caps = json_array();
			json_array_extend(inj.all_caps, caps);
			rec_close(st, cname, true);
			char summary[512];
			injected_summary(&inj.summary, summary, sizeof(summary), kr->name,
					 pm[PLAN_ENTRYPOINT], caps);
			add_decision(p, cname, KILT_PATCHED, false, summary);
			n_new++;
		}
	}
	if (run->needs)
		goto done;
	if (n_new == 0 && !current) {
		/* nothing selected: no status, no pod objects */
		set_pod_verdict(p, p->status ? KILT_REMOVED : KILT_SKIPPED, false,
				p->status ? "no container is injected any more: the earlier "
					    "injection was removed"
					  : "no container of the pod is injected");
		goto done;
	}
	if (n_new == 0) {
		set_pod_verdict(p, KILT_UNCHANGED, false,
				"already injected with this recipe: left as it is");
		goto done;
	}
	/* Pod Security: the level enforced decides whether the API server would take the pod. */
	const char *levels[PSA_COUNT];
	psa_levels(p, levels);
	const char *enforce = levels[PSA_ENFORCE];
	const char *bad = enforce ? forbidden_cap(inj.all_caps, enforce) : NULL;
	if (bad && run->opts->pod_security == KILT_K8S_PSA_SKIP) {
		char why[1024];
		snprintf(why, sizeof(why),
			 "namespace %s enforces Pod Security level %s, which forbids adding %s: "
			 "the API server would reject the injected pod (label the namespace "
			 "privileged, or tell kilt to proceed if an exemption applies)",
			 p->ns_name, enforce, bad);
		skip_pod(p, why);
		goto done;
	}
	if (bad) {
		append_reason(
			p->reason, sizeof(p->reason),
			"namespace %s enforces Pod Security level %s, which forbids adding %s; "
			"injected because kilt was told to proceed",
			p->ns_name, enforce, bad);
		p->warn = true;
	}
	for (size_t i = 0; i < 2; i++) {
		const char *lv = levels[i == 0 ? PSA_WARN : PSA_AUDIT];
		const char *b = lv ? forbidden_cap(inj.all_caps, lv) : NULL;
		if (b) {
			append_reason(
				p->reason, sizeof(p->reason),
				"namespace %s %s Pod Security level %s, which forbids adding %s",
				p->ns_name, i == 0 ? "warns at" : "audits at", lv, b);
			p->warn = true;
		}
	}
	struct kilt_error perr = { 0 };
	if (add_pod_objects(p, &inj, &perr) < 0) {
		if (run->opts->strict) {
			*run->err = perr;
			rc = kilt_error_prefix(run->err, "%s", p->task);
			goto done;
		}
		skip_pod(p, perr.msg);
		goto done;
	}
	/* the status annotation goes last */
	int mcreated = 0, acreated = 0;
	json_t *meta = ensure_object(run, p->obj, "metadata", &mcreated);
	json_t *ann = meta ? ensure_object(run, meta, "annotations", &acreated) : NULL;
	if (!ann) {
		rc = kilt_error_setf(run->err, -EINVAL, "%s: metadata.annotations is not an object",
				     p->task);
		goto done;
	}
	if (acreated)
		status_set(&inj.st, "annotations_created", NULL, NULL, created_marker(acreated));
	if (mcreated)
		status_set(&inj.st, "metadata_created", NULL, NULL, created_marker(mcreated));
	status_set(&inj.st, "version", NULL, NULL, STATUS_VERSION_TEXT);
	set(run, ann, KILT_K8S_STATUS, status_text(&inj.st));
	char why[1200];
	struct cut_text w;
	cut_init(&w, why, sizeof(why));
	cut_add(&w, current ? "added recipe " : "injected recipe ");
	cut_add(&w, kr->name);
	cut_add(&w, " into ");
	cut_add_size(&w, n_new);
	cut_add(&w, " container(s)");
	if (p->reason[0])
		append_reason(why, sizeof(why), "%s", p->reason);
	set_pod_verdict(p, KILT_PATCHED, p->warn, why);
	if (p->warn)
		warn(run, p->task, NULL, p->reason);
done:
	kilt_selection_done(&sel);
	status_done(&inj.st);
	kilt_json_out_done(&inj.summary);
	json_decref(inj.mounts);
	json_decref(inj.all_caps);
out:
	kilt_marker_done(&inj.marker);
	return rc < 0 ? rc : 0;
}

/* ---- the walk's callback ------------------------------------------------------------------- */

static void pod_done(struct pod *p)
{
	json_decref(p->status_owned);
	free(p->platform);
}

/* The members of metadata the engine reads. */
enum { META_NAME, META_GENERATE_NAME, META_NAMESPACE, META_LABELS, META_ANNOTATIONS, META_COUNT };

static void metadata_members(const json_t *obj, const json_t *ret[META_COUNT])
{
	static const struct kilt_json_key keys[META_COUNT] = {
		KILT_JSON_KEY("name"),	 KILT_JSON_KEY("generateName"), KILT_JSON_KEY("namespace"),
		KILT_JSON_KEY("labels"), KILT_JSON_KEY("annotations"),
	};
	kilt_json_members(json_object_get(obj, "metadata"), keys, META_COUNT, ret);
}

/* Names the pod for the report from the workload's metadata `wm` (metadata_members). */
static void task_name(struct pod *p, const json_t *const wm[META_COUNT])
{
	const char *name = json_string_value(wm[META_NAME]);
	p->group = name;
	const char *gen = json_string_value(wm[META_GENERATE_NAME]);
	const char *ns = json_string_value(wm[META_NAMESPACE]);
	p->wnamespace = ns;
	/* "%s %s/%s" of kind, namespace and the name cut to 299 bytes ("%s*" of generateName) */
	char nbuf[300];
	struct cut_text n, t;
	cut_init(&n, nbuf, sizeof(nbuf));
	if (name) {
		cut_add(&n, name);
	} else if (gen) {
		cut_add(&n, gen);
		cut_addn(&n, "*", 1);
	} else {
		cut_add(&n, "(unnamed)");
	}
	cut_init(&t, p->task, sizeof(p->task));
	cut_add(&t, p->ref->kind);
	cut_addn(&t, " ", 1);
	if (ns && ns[0]) {
		cut_add(&t, ns);
		cut_addn(&t, "/", 1);
	}
	cut_addn(&t, n.buf, n.len);
}

/* A container name used twice among containers and initContainers (the API server refuses such
 * a pod; kilt's status could not tell the two apart). */
static const char *duplicate_name(const struct pod *p)
{
	static const char *const lists[] = { "initContainers", "containers" };
	const json_t *cs[2] = { p->lists[1], p->lists[0] };
	const char *few[16];
	size_t n = 0;
	/* a pod's few containers are compared by name; many go through an object of names */
	for (size_t l = 0; l < ARRAY_SIZE(lists) && n <= ARRAY_SIZE(few); l++) {
		size_t i;
		json_t *c;
		json_array_foreach (cs[l], i, c) {
			const char *name = str_at(c, "name");
			if (!name)
				continue;
			if (n == ARRAY_SIZE(few)) {
				n++;
				break;
			}
			for (size_t k = 0; k < n; k++)
				if (strcmp(few[k], name) == 0)
					return name;
			few[n++] = name;
		}
	}
	if (n <= ARRAY_SIZE(few))
		return NULL;
	_cleanup_json_ json_t *seen = json_object();
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		json_t *c;
		json_array_foreach (cs[l], i, c) {
			const char *name = str_at(c, "name");
			if (!name)
				continue;
			if (json_object_get(seen, name))
				return name;
			json_object_set_new(seen, name, json_true());
		}
	}
	return NULL;
}

/* Reads the members of the pod the engine looks at (struct pod), `wm` the workload's metadata
 * (metadata_members). */
static void read_pod(struct pod *p, const json_t *const wm[META_COUNT])
{
	const json_t *m[META_COUNT];
	if (p->obj == p->ref->workload)
		memcpy(m, wm, sizeof(m));
	else
		metadata_members(p->obj, m);
	p->labels = m[META_LABELS];
	p->meta_namespace = json_string_value(m[META_NAMESPACE]);
	static const struct kilt_json_key ann_keys[POD_ANN_COUNT] = {
		KILT_JSON_KEY(KILT_K8S_STATUS),
		KILT_JSON_KEY(KILT_K8S_RECIPE),
		KILT_JSON_KEY(KILT_K8S_INCLUDE_CONTAINERS),
		KILT_JSON_KEY(KILT_K8S_EXCLUDE_CONTAINERS),
		KILT_JSON_KEY(KILT_K8S_INJECT),
	};
	const json_t *ann[POD_ANN_COUNT];
	kilt_json_members(m[META_ANNOTATIONS], ann_keys, POD_ANN_COUNT, ann);
	for (size_t i = 0; i < POD_ANN_COUNT; i++)
		p->ann[i] = json_string_value(ann[i]);
	enum { CONTAINERS, INIT_CONTAINERS, NODE_SELECTOR, AFFINITY, SPEC_COUNT };
	static const struct kilt_json_key spec_keys[SPEC_COUNT] = {
		KILT_JSON_KEY("containers"),
		KILT_JSON_KEY("initContainers"),
		KILT_JSON_KEY("nodeSelector"),
		KILT_JSON_KEY("affinity"),
	};
	const json_t *sm[SPEC_COUNT];
	p->spec = json_object_get(p->obj, "spec");
	kilt_json_members(p->spec, spec_keys, SPEC_COUNT, sm);
	p->lists[0] = (json_t *)(uintptr_t)sm[CONTAINERS];
	p->lists[1] = (json_t *)(uintptr_t)sm[INIT_CONTAINERS];
	p->node_selector = sm[NODE_SELECTOR];
	p->affinity = sm[AFFINITY];
}

static int process_pod(const struct kilt_k8s_pod_ref *ref, void *userdata)
{
	struct run *run = userdata;
	struct pod p = { .run = run, .ref = ref, .obj = ref->pod };
	const json_t *wm[META_COUNT];
	metadata_members(ref->workload, wm);
	task_name(&p, wm);
	p.mark = kilt_journal_mark(run->j);
	p.decision = kilt_report_add(run->report, p.task, NULL, KILT_SKIPPED, false, "");
	if (ref->problem) {
		if (!run->needs) {
			set_pod_verdict(&p, KILT_SKIPPED, true, ref->problem);
			warn(run, p.task, NULL, ref->problem);
		}
		return 0;
	}
	read_pod(&p, wm);
	if (run->root)
		via_pointer(run, ref->pointer);
	const char *dup = duplicate_name(&p);
	if (dup) {
		char why[512];
		snprintf(why, sizeof(why),
			 "two containers are named %s: container names must be unique in a pod",
			 dup);
		set_pod_verdict(&p, KILT_SKIPPED, true, why);
		warn(run, p.task, NULL, why);
		return 0;
	}
	namespace_facts(&p);
	int r = read_status(&p);
	if (r < 0) {
		if (run->needs) {
			pod_done(&p);
			return 0;
		}
		if (run->opts->strict) {
			kilt_error_prefix(run->err, "%s", p.task);
			pod_done(&p);
			return r;
		}
		set_pod_verdict(&p, KILT_SKIPPED, true, run->err->msg);
		warn(run, p.task, NULL, run->err->msg);
		*run->err = (struct kilt_error){ 0 };
		pod_done(&p);
		return 0;
	}
	if (run->removing) {
		if (run->needs) {
			pod_done(&p);
			return 0;
		}
		if (p.status) {
			undo_pod(&p);
			size_t i;
			json_t *rec;
			const json_t *old_recs = json_object_get(p.status, "containers");
			json_array_foreach (old_recs, i, rec) {
				kilt_report_add(run->report, p.task, str_at(rec, "name"),
						KILT_REMOVED, false, "the injection was removed");
			}
			set_pod_verdict(&p, KILT_REMOVED, false, "kilt's injection was removed");
		} else {
			set_pod_verdict(&p, KILT_UNCHANGED, false, "no kilt injection to remove");
		}
		pod_done(&p);
		return 0;
	}
	char why[1024] = "";
	if (!pod_selected(&p, why, sizeof(why))) {
		if (!run->needs) {
			if (p.status)
				undo_pod(&p);
			set_pod_verdict(&p, p.status ? KILT_REMOVED : KILT_SKIPPED, p.warn, why);
			if (p.warn)
				warn(run, p.task, NULL, why);
		}
		pod_done(&p);
		return 0;
	}
	decide_platform(&p);
	if (p.platform && strncmp(p.platform, "linux/", 6) != 0) {
		if (!run->needs) {
			snprintf(why, sizeof(why),
				 "the pod runs on %s: kilt injects Linux pods only", p.platform);
			set_pod_verdict(&p, KILT_SKIPPED, false, why);
		}
		pod_done(&p);
		return 0;
	}
	const struct kilt_k8s_recipe *kr = choose_recipe(&p, why, sizeof(why));
	if (!kr) {
		if (!why[0])
			snprintf(why, sizeof(why), "no recipe is configured");
		if (!run->needs) {
			if (run->opts->strict) {
				pod_done(&p);
				return kilt_error_setf(run->err, -ENOENT, "%s: %s", p.task, why);
			}
			set_pod_verdict(&p, KILT_SKIPPED, true, why);
			warn(run, p.task, NULL, why);
		}
		pod_done(&p);
		return 0;
	}
	r = inject_pod(&p, kr);
	pod_done(&p);
	return r;
}

/* ---- entry points -------------------------------------------------------------------------- */

void kilt_k8s_options_default(struct kilt_k8s_options *ret)
{
	*ret = (struct kilt_k8s_options){ .mode = KILT_SELECT_OPT_OUT };
}

void kilt_k8s_result_init(struct kilt_k8s_result *ret)
{
	*ret = (struct kilt_k8s_result){ 0 };
	kilt_report_init(&ret->report);
}

void kilt_k8s_result_done(struct kilt_k8s_result *result)
{
	if (!result)
		return;
	json_decref(result->patch);
	free(result->patch_text);
	json_decref(result->pod);
	json_decref(result->warnings);
	kilt_report_done(&result->report);
	kilt_k8s_result_init(result);
}

/* Namespace objects of the input: name -> object (borrowed values). */
static json_t *collect_namespaces(const json_t *doc)
{
	json_t *out = json_object();
	const json_t *one[1] = { doc };
	size_t n = json_is_array(doc) ? json_array_size(doc) : 1;
	for (size_t i = 0; i < n; i++) {
		const json_t *d = json_is_array(doc) ? json_array_get(doc, i) : one[0];
		const char *kind = str_at(d, "kind"), *api = str_at(d, "apiVersion");
		const char *name = str_at(json_object_get(d, "metadata"), "name");
		if (kind && api && name && strcmp(kind, "Namespace") == 0 && strcmp(api, "v1") == 0)
			json_object_set(out, name, (json_t *)(uintptr_t)d);
	}
	return out;
}

static int run_docs(struct run *run, json_t *doc, json_t **ret_patches)
{
	_cleanup_json_ json_t *nss = collect_namespaces(doc);
	run->namespaces = nss;
	size_t n = json_is_array(doc) ? json_array_size(doc) : 1;
	_cleanup_json_ json_t *patches = ret_patches ? json_array() : NULL;
	struct kilt_journal *journals = xcalloc(n + 1, sizeof(*journals));
	int r = 0;
	size_t done = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_is_array(doc) ? json_array_get(doc, i) : doc;
		kilt_journal_init(&journals[i]);
		run->j = &journals[i];
		run->root = d;
		done = i + 1;
		r = kilt_k8s_walk(d, process_pod, run, run->err);
		if (r < 0)
			break;
		if (patches)
			json_array_append_new(patches, kilt_journal_patch(&journals[i], d));
	}
	if (r < 0)
		for (size_t i = done; i-- > 0;)
			kilt_journal_rollback(&journals[i], 0);
	for (size_t i = 0; i < done; i++)
		kilt_journal_done(&journals[i]);
	free(journals);
	run->j = NULL;
	if (r == 0 && ret_patches)
		*ret_patches = steal_pointer(&patches);
	return r;
}

static int check_opts(const struct kilt_k8s_options *o, bool removing, struct kilt_error *err)
{
	if (!removing && o->n_recipes == 0)
		return kilt_error_setf(err, -EINVAL, "no recipe");
	for (size_t i = 0; i < o->n_recipes; i++)
		if (!o->recipes[i].recipe || !o->recipes[i].name)
			return kilt_error_setf(err, -EINVAL, "recipe %zu has no name or recipe", i);
	return 0;
}

static int inject_or_remove(json_t *doc, const struct kilt_k8s_namespace *default_ns,
			    const struct kilt_k8s_options *opts, bool removing,
			    struct kilt_report *report, json_t **ret_patches,
			    struct kilt_error *err)
{
	struct kilt_k8s_options dflt;
	if (!opts) {
		kilt_k8s_options_default(&dflt);
		opts = &dflt;
	}
	int r = check_opts(opts, removing, err);
	if (r < 0)
		return r;
	struct kilt_report local;
	kilt_report_init(&local);
	local.input = "kubernetes";
	struct run run = { .opts = opts,
			   .prepared = prepared_for(opts),
			   .report = &local,
			   .default_ns = default_ns,
			   .removing = removing,
			   .err = err };
	r = run_docs(&run, doc, ret_patches);
	kilt_report_tally(&local);
	if (report && r == 0) {
		kilt_report_done(report);
		*report = local;
	} else {
		kilt_report_done(&local);
	}
	return r;
}

int kilt_k8s_inject(json_t *doc, const struct kilt_k8s_namespace *default_ns,
		    const struct kilt_k8s_options *opts, struct kilt_report *report,
		    json_t **ret_patches, struct kilt_error *err)
{
	return inject_or_remove(doc, default_ns, opts, false, report, ret_patches, err);
}

int kilt_k8s_remove(json_t *doc, const struct kilt_k8s_options *opts, struct kilt_report *report,
		    json_t **ret_patches, struct kilt_error *err)
{
	return inject_or_remove(doc, NULL, opts, true, report, ret_patches, err);
}

int kilt_k8s_mutate_owned(json_t *pod, const struct kilt_k8s_namespace *ns,
			  const struct kilt_k8s_options *opts, struct kilt_k8s_result *ret,
			  struct kilt_error *err)
{
	_cleanup_json_ json_t *owned = pod;
	if (!json_is_object(pod) || !kilt_k8s_detect(pod))
		return kilt_error_setf(err, -EINVAL,
				       "not a Kubernetes object (no apiVersion and kind)");
	struct kilt_k8s_options dflt;
	if (!opts) {
		kilt_k8s_options_default(&dflt);
		opts = &dflt;
	}
	int r = check_opts(opts, false, err);
	if (r < 0)
		return r;
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	res.report.input = "kubernetes";
	res.pod = steal_pointer(&owned);
	res.warnings = json_array();
	struct kilt_k8s_namespace nsf = ns ? *ns : (struct kilt_k8s_namespace){ 0 };
	struct run run = { .opts = opts,
			   .prepared = prepared_for(opts),
			   .report = &res.report,
			   .warnings = res.warnings,
			   .default_ns = &nsf,
			   .err = err };
	struct kilt_journal j;
	kilt_journal_init(&j);
	run.j = &j;
	run.root = res.pod;
	/* the result holds the pod and the patch side by side: no copy of what the patch adds */
	j.share_values = true;
	r = kilt_k8s_walk(res.pod, process_pod, &run, err);
	if (r == 0 && opts->patch_as_text) {
		res.patch_text =
			kilt_journal_patch_text(&j, res.pod, &res.patch_len, &res.patch_ops);
		if (!res.patch_text)
			r = kilt_error_setf(err, -EINVAL,
					    "the patch cannot be written as JSON (a string that is "
					    "not UTF-8)");
	} else if (r == 0) {
		res.patch = kilt_journal_patch(&j, res.pod);
		res.patch_ops = json_array_size(res.patch);
	}
	kilt_journal_done(&j);
	if (r < 0) {
		kilt_k8s_result_done(&res);
		return r;
	}
	kilt_report_tally(&res.report);
	*ret = res;
	return 0;
}

int kilt_k8s_mutate(const json_t *pod, const struct kilt_k8s_namespace *ns,
		    const struct kilt_k8s_options *opts, struct kilt_k8s_result *ret,
		    struct kilt_error *err)
{
	/* the copy's env lists are not the options' lists: their entries are read first */
	if (opts)
		kilt_env_lists_read_all(opts->env_lists);
	return kilt_k8s_mutate_owned(json_deep_copy(pod), ns, opts, ret, err);
}

void kilt_k8s_list_images(const json_t *doc, const struct kilt_k8s_namespace *default_ns,
			  const struct kilt_k8s_options *opts, struct kilt_image_needs *needs)
{
	struct kilt_k8s_options dflt;
	if (!opts) {
		kilt_k8s_options_default(&dflt);
		opts = &dflt;
	}
	if (check_opts(opts, false, NULL) < 0)
		return;
	/* The engine is run on a copy; nothing is applied, only what it would look up noted. The
	 * copy's env lists are not the options' lists: every entry is read before (the document
	 * stays what it was, each entry in its list as the object it is). */
	kilt_env_lists_read_all(opts->env_lists);
	_cleanup_json_ json_t *copy = json_deep_copy(doc);
	struct kilt_report scratch;
	kilt_report_init(&scratch);
	struct kilt_error err = { 0 };
	struct run run = { .opts = opts,
			   .report = &scratch,
			   .needs = needs,
			   .default_ns = default_ns,
			   .err = &err };
	(void)run_docs(&run, copy, NULL);
	kilt_report_done(&scratch);
}
