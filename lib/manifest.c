/* SPDX-License-Identifier: Apache-2.0 */
/* Registry responses: image manifests, indexes / manifest lists, image configs, digests, error
 * bodies and WWW-Authenticate challenges, all parsed from untrusted bytes. */
#include <ctype.h>

#include <openssl/evp.h>

#include "internal.h"
#include "kilt.h"

struct entry {
	char *digest; /* owned */
	char *os, *arch, *variant; /* owned, may be NULL */
};

struct kilt_manifest {
	enum kilt_manifest_kind kind;
	char *media_type; /* owned */
	char *config_digest; /* owned (image) */
	int64_t config_size;
	struct entry *entries; /* owned (index) */
	size_t n_entries;
};

void kilt_manifest_free(struct kilt_manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	free(m->config_digest);
	for (size_t i = 0; i < m->n_entries; i++) {
		free(m->entries[i].digest);
		free(m->entries[i].os);
		free(m->entries[i].arch);
		free(m->entries[i].variant);
	}
	free(m->entries);
	free(m);
}

static void manifest_freep(struct kilt_manifest **m)
{
	kilt_manifest_free(*m);
}

static char *opt_string(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? xstrdup(s) : NULL;
}

/* Content-Type may carry parameters ("...; charset=utf-8"); compares the bare type. */
static bool type_is(const char *content_type, const char *media)
{
	size_t n = strlen(media);
	if (strncasecmp(content_type, media, n) != 0)
		return false;
	char c = content_type[n];
	return c == '\0' || c == ';' || c == ' ';
}

int kilt_manifest_parse(const char *body, size_t len, const char *content_type,
			struct kilt_manifest **ret, struct kilt_error *err)
{
	if (len > KILT_MANIFEST_MAX_BYTES)
		return kilt_error_setf(err, -EFBIG, "manifest: larger than %u bytes",
				       KILT_MANIFEST_MAX_BYTES);
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return kilt_error_setf(err, -EBADMSG, "manifest: not JSON: %s (line %d)", jerr.text,
				       jerr.line);
	if (!json_is_object(root))
		return kilt_error_setf(err, -EBADMSG, "manifest: expected a JSON object");
	json_t *schema = json_object_get(root, "schemaVersion");
	if (json_is_integer(schema) && json_integer_value(schema) == 1)
		return kilt_error_setf(err, -ENOTSUP,
				       "manifest: schema version 1 (Docker v2.1) is not supported; "
				       "push the image again with a current client");
	const char *body_type = json_string_value(json_object_get(root, "mediaType"));
	const char *type = NULL;
	static const char *const known[] = { KILT_MEDIA_OCI_MANIFEST, KILT_MEDIA_OCI_INDEX,
					     KILT_MEDIA_DOCKER_MANIFEST, KILT_MEDIA_DOCKER_LIST };
	for (size_t i = 0; i < ARRAY_SIZE(known) && !type; i++)
		if (content_type && type_is(content_type, known[i]))
			type = known[i];
	for (size_t i = 0; i < ARRAY_SIZE(known) && !type; i++)
		if (body_type && strcmp(body_type, known[i]) == 0)
			type = known[i];
	if (!type) {
		if (json_object_get(root, "manifests"))
			type = KILT_MEDIA_OCI_INDEX;
		else if (json_object_get(root, "config"))
			type = KILT_MEDIA_OCI_MANIFEST;
		else
			return kilt_error_setf(
				err, -ENOTSUP, "manifest: unsupported media type '%.100s'",
				body_type ? body_type : (content_type ? content_type : "(none)"));
	}
	_cleanup_(manifest_freep) struct kilt_manifest *m = xcalloc(1, sizeof(*m));
	m->media_type = xstrdup(type);
	if (strcmp(type, KILT_MEDIA_OCI_INDEX) == 0 || strcmp(type, KILT_MEDIA_DOCKER_LIST) == 0) {
		m->kind = KILT_MANIFEST_INDEX;
		json_t *list = json_object_get(root, "manifests");
		if (!json_is_array(list))
			return kilt_error_setf(err, -EBADMSG,
					       "manifest index: \"manifests\" must be an array");
		size_t n = json_array_size(list);
		if (n > KILT_INDEX_MAX_ENTRIES)
			return kilt_error_setf(err, -EFBIG, "manifest index: more than %u entries",
					       KILT_INDEX_MAX_ENTRIES);
		m->entries = xcalloc(n, sizeof(*m->entries));
		for (size_t i = 0; i < n; i++) {
			json_t *d = json_array_get(list, i);
			const char *digest = json_string_value(json_object_get(d, "digest"));
			if (!kilt_digest_valid(digest))
				return kilt_error_setf(err, -EBADMSG,
						       "manifest index: manifests[%zu].digest is "
						       "missing or malformed",
						       i);
			struct entry *e = &m->entries[m->n_entries++];
			e->digest = xstrdup(digest);
			json_t *plat = json_object_get(d, "platform");
			if (plat && !json_is_object(plat))
				return kilt_error_setf(
					err, -EBADMSG,
					"manifest index: manifests[%zu].platform must "
					"be an object",
					i);
			e->os = opt_string(plat, "os");
			e->arch = opt_string(plat, "architecture");
			e->variant = opt_string(plat, "variant");
		}
	} else {
		m->kind = KILT_MANIFEST_IMAGE;
		json_t *cfg = json_object_get(root, "config");
		if (!json_is_object(cfg))
			return kilt_error_setf(err, -EBADMSG,
					       "image manifest: \"config\" must be an object");
		const char *digest = json_string_value(json_object_get(cfg, "digest"));
		if (!kilt_digest_valid(digest))
			return kilt_error_setf(
				err, -EBADMSG,
				"image manifest: config.digest is missing or malformed");
		json_t *size = json_object_get(cfg, "size");
		if (size && (!json_is_integer(size) || json_integer_value(size) < 0))
			return kilt_error_setf(err, -EBADMSG,
					       "image manifest: config.size must be a non-negative "
					       "integer");
		m->config_digest = xstrdup(digest);
		m->config_size = size ? (int64_t)json_integer_value(size) : -1;
	}
	*ret = steal_pointer(&m);
	return 0;
}

enum kilt_manifest_kind kilt_manifest_kind(const struct kilt_manifest *m)
{
	return m->kind;
}

const char *kilt_manifest_media_type(const struct kilt_manifest *m)
{
	return m->media_type;
}

const char *kilt_manifest_config_digest(const struct kilt_manifest *m)
{
	return m->config_digest;
}

int64_t kilt_manifest_config_size(const struct kilt_manifest *m)
{
	return m->config_size;
}

size_t kilt_manifest_count(const struct kilt_manifest *m)
{
	return m->n_entries;
}

bool kilt_manifest_entry(const struct kilt_manifest *m, size_t i, const char **ret_digest,
			 const char **ret_os, const char **ret_arch, const char **ret_variant)
{
	if (i >= m->n_entries)
		return false;
	const struct entry *e = &m->entries[i];
	if (ret_digest)
		*ret_digest = e->digest;
	if (ret_os)
		*ret_os = e->os;
	if (ret_arch)
		*ret_arch = e->arch;
	if (ret_variant)
		*ret_variant = e->variant;
	return true;
}

int kilt_manifest_select(const struct kilt_manifest *m, const struct kilt_platform *want,
			 const char **ret_digest, struct kilt_error *err)
{
	if (m->kind != KILT_MANIFEST_INDEX)
		return kilt_error_setf(err, -EINVAL, "not a manifest index");
	const struct entry *compatible = NULL;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct entry *e = &m->entries[i];
		if (!kilt_platform_matches(want, e->os, e->arch, e->variant))
			continue;
		const char *v = e->variant ? e->variant : "";
		if (strcmp(v, want->variant) == 0) {
			*ret_digest = e->digest;
			return 0;
		}
		if (!compatible)
			compatible = e;
	}
	if (compatible) {
		*ret_digest = compatible->digest;
		return 0;
	}
	struct kbuf b;
	kbuf_init(&b, 400);
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct entry *e = &m->entries[i];
		if (!e->os || strcmp(e->os, "unknown") == 0)
			continue;
		if (kbuf_printf(&b, "%s%s/%s%s%s", b.len ? ", " : "", e->os,
				e->arch ? e->arch : "?", e->variant ? "/" : "",
				e->variant ? e->variant : "") < 0) {
			kbuf_add(&b, "...", b.max - b.len < 3 ? 0 : 3);
			break;
		}
	}
	char want_s[100];
	kilt_platform_format(want, want_s, sizeof(want_s));
	kilt_error_setf(err, -ENOENT, "platform %s missing from the image index (it has: %s)",
			want_s, b.len ? b.data : "no platforms");
	kbuf_done(&b);
	return err ? err->code : -ENOENT;
}

/* ---- configs ------------------------------------------------------------------------------- */

static int string_array(const json_t *v, const char *what, json_t **ret, struct kilt_error *err)
{
	if (!v || json_is_null(v)) {
		*ret = json_array();
		return 0;
	}
	if (!json_is_array(v))
		return kilt_error_setf(err, -EBADMSG, "image config: %s must be an array", what);
	size_t i;
	json_t *el;
	json_array_foreach (v, i, el) {
		if (!json_is_string(el))
			return kilt_error_setf(err, -EBADMSG,
					       "image config: %s[%zu] must be a string", what, i);
	}
	*ret = json_deep_copy(v);
	return 0;
}

static int opt_config_string(const json_t *obj, const char *key, const char *what, json_t *facts,
			     const char *name, struct kilt_error *err)
{
	json_t *v = json_object_get(obj, key);
	if (v && !json_is_null(v) && !json_is_string(v))
		return kilt_error_setf(err, -EBADMSG, "image config: %s must be a string", what);
	json_object_set_new(facts, name,
			    json_string(json_is_string(v) ? json_string_value(v) : ""));
	return 0;
}

int kilt_image_config_parse(const char *body, size_t len, json_t **ret, struct kilt_error *err)
{
	if (len > KILT_CONFIG_MAX_BYTES)
		return kilt_error_setf(err, -EFBIG, "image config: larger than %u bytes",
				       KILT_CONFIG_MAX_BYTES);
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(root))
		return kilt_error_setf(err, -EBADMSG, "image config: not a JSON object%s%s",
				       root ? "" : ": ", root ? "" : jerr.text);
	json_t *cfg = json_object_get(root, "config");
	if (cfg && !json_is_null(cfg) && !json_is_object(cfg))
		return kilt_error_setf(err, -EBADMSG, "image config: \"config\" must be an object");
	_cleanup_json_ json_t *facts = json_object();
	json_t *arr = NULL;
	int r = string_array(json_object_get(cfg, "Entrypoint"), "config.Entrypoint", &arr, err);
	if (r < 0)
		return r;
	json_object_set_new(facts, "entrypoint", arr);
	r = string_array(json_object_get(cfg, "Cmd"), "config.Cmd", &arr, err);
	if (r < 0)
		return r;
	json_object_set_new(facts, "command", arr);
	r = string_array(json_object_get(cfg, "Env"), "config.Env", &arr, err);
	if (r < 0)
		return r;
	json_object_set_new(facts, "environment", arr);
	if ((r = opt_config_string(cfg, "User", "config.User", facts, "user", err)) < 0 ||
	    (r = opt_config_string(cfg, "WorkingDir", "config.WorkingDir", facts, "working_dir",
				   err)) < 0 ||
	    (r = opt_config_string(root, "os", "os", facts, "os", err)) < 0 ||
	    (r = opt_config_string(root, "architecture", "architecture", facts, "architecture",
				   err)) < 0)
		return r;
	json_t *variant = json_object_get(root, "variant");
	if (json_is_string(variant) && *json_string_value(variant))
		json_object_set(facts, "variant", variant);
	*ret = steal_pointer(&facts);
	return 0;
}

/* ---- digests ------------------------------------------------------------------------------- */

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void digest_of(const EVP_MD *md, const void *data, size_t len, char *out)
{
	unsigned char buf[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, buf, &n, md, NULL))
		abort();
	hex(buf, n, out);
}

char *kilt_digest_sha256(const void *data, size_t len)
{
	char h[2 * EVP_MAX_MD_SIZE + 1];
	digest_of(EVP_sha256(), data, len, h);
	return xasprintf("sha256:%s", h);
}

int kilt_digest_verify(const char *digest, const void *data, size_t len, struct kilt_error *err)
{
	if (!kilt_digest_valid(digest))
		return kilt_error_setf(err, -EINVAL, "digest '%.200s' is malformed or unsupported",
				       digest ? digest : "");
	const EVP_MD *md = strncmp(digest, "sha256:", 7) == 0 ? EVP_sha256() : EVP_sha512();
	char h[2 * EVP_MAX_MD_SIZE + 1];
	digest_of(md, data, len, h);
	if (strcmp(h, digest + 7) != 0)
		return kilt_error_setf(err, -EBADMSG,
				       "content does not match its digest: expected %.200s, got "
				       "%.7s%.128s",
				       digest, digest, h);
	return 0;
}

char *kilt_registry_error_message(const char *body, size_t len)
{
	if (!body || len == 0 || len > (1u << 20))
		return NULL;
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(body, len, 0, &jerr);
	json_t *errors = json_object_get(root, "errors");
	if (!json_is_array(errors) || json_array_size(errors) == 0)
		return NULL;
	struct kbuf b;
	kbuf_init(&b, 1024);
	size_t i;
	json_t *e;
	json_array_foreach (errors, i, e) {
		const char *code = json_string_value(json_object_get(e, "code"));
		const char *msg = json_string_value(json_object_get(e, "message"));
		if (!code && !msg)
			continue;
		if (kbuf_printf(&b, "%s%s%s%s", b.len ? "; " : "", code ? code : "",
				code && msg ? ": " : "", msg ? msg : "") < 0)
			break;
	}
	if (b.len == 0) {
		kbuf_done(&b);
		return NULL;
	}
	return kbuf_steal(&b);
}

/* ---- WWW-Authenticate ---------------------------------------------------------------------- */

void kilt_auth_challenge_done(struct kilt_auth_challenge *c)
{
	if (!c)
		return;
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	*c = (struct kilt_auth_challenge){ 0 };
}

static bool is_token_char(char c)
{
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~/:", c));
}

int kilt_auth_challenge_parse(const char *header, struct kilt_auth_challenge *ret,
			      struct kilt_error *err)
{
	if (!header)
		return kilt_error_setf(err, -EINVAL, "WWW-Authenticate: empty");
	size_t hlen = strnlen(header, 8193);
	if (hlen > 8192)
		return kilt_error_setf(err, -EINVAL, "WWW-Authenticate: longer than 8 KiB");
	const char *p = header;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t slen = 0;
	while (isalpha((unsigned char)p[slen]))
		slen++;
	if (slen == 0 || slen >= sizeof(ret->scheme))
		return kilt_error_setf(err, -EINVAL, "WWW-Authenticate: no auth scheme in '%.100s'",
				       header);
	struct kilt_auth_challenge c = { 0 };
	for (size_t i = 0; i < slen; i++)
		c.scheme[i] = (char)tolower((unsigned char)p[i]);
	p += slen;
	struct kbuf val;
	kbuf_init(&val, 8192);
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		const char *name = p;
		while (is_token_char(*p) && *p != '/' && *p != ':')
			p++;
		size_t nlen = (size_t)(p - name);
		while (*p == ' ' || *p == '\t')
			p++;
		if (nlen == 0 || *p != '=') {
			/* token68 or a second challenge ("Basic realm=..., Bearer ..."): stop. */
			break;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		kbuf_done(&val);
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				kbuf_addc(&val, *p);
				p++;
			}
			if (*p != '"') {
				kilt_auth_challenge_done(&c);
				kbuf_done(&val);
				return kilt_error_setf(
					err, -EINVAL,
					"WWW-Authenticate: unterminated quoted value");
			}
			p++;
		} else {
			while (is_token_char(*p) || *p == '=')
				kbuf_addc(&val, *p++);
		}
		char **slot = NULL;
		if (nlen == 5 && strncasecmp(name, "realm", 5) == 0)
			slot = &c.realm;
		else if (nlen == 7 && strncasecmp(name, "service", 7) == 0)
			slot = &c.service;
		else if (nlen == 5 && strncasecmp(name, "scope", 5) == 0)
			slot = &c.scope;
		else if (nlen == 5 && strncasecmp(name, "error", 5) == 0)
			slot = &c.error;
		if (slot && !*slot)
			*slot = xstrdup(val.data ? val.data : "");
	}
	kbuf_done(&val);
	*ret = c;
	return 0;
}
