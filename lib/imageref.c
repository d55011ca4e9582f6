/* SPDX-License-Identifier: Apache-2.0 */
/* Image references, platforms and registry credentials (docker config.json, Kubernetes pull
 * secrets, ECR hosts): the pure half of the registry client. */
#include <ctype.h>

#include "internal.h"
#include "kilt.h"

#define NAME_MAX_LEN 255u
#define TAG_MAX_LEN 128u
#define REF_MAX_LEN 4096u

void kilt_imageref_done(struct kilt_imageref *ref)
{
	if (!ref)
		return;
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	*ref = (struct kilt_imageref){ 0 };
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component: [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )* */
static bool valid_path_component(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]))
		return false;
	while (i < n) {
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return true;
		size_t sep = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i == n || !is_lower_alnum(s[i]) || i == sep)
			return false;
	}
	return true;
}

/* domain-component ('.' domain-component)* (':' port)?; domain-component: alnum, inner '-'. */
static bool valid_domain(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t host_len = colon ? (size_t)(colon - s) : n;
	if (host_len == 0)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= host_len; i++) {
		if (i == host_len || s[i] == '.') {
			size_t len = i - start;
			if (len == 0 || !isalnum((unsigned char)s[start]) ||
			    !isalnum((unsigned char)s[i - 1]))
				return false;
			start = i + 1;
		} else if (!isalnum((unsigned char)s[i]) && s[i] != '-') {
			return false;
		}
	}
	if (colon) {
		size_t plen = n - host_len - 1;
		if (plen == 0 || plen > 5)
			return false;
		unsigned long port = 0;
		for (size_t i = host_len + 1; i < n; i++) {
			if (!isdigit((unsigned char)s[i]))
				return false;
			port = port * 10 + (unsigned long)(s[i] - '0');
		}
		if (port == 0 || port > 65535)
			return false;
	}
	return true;
}

static bool valid_tag(const char *s, size_t n)
{
	if (n == 0 || n > TAG_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool word = isalnum((unsigned char)c) || c == '_';
		if (!word && (i == 0 || (c != '.' && c != '-')))
			return false;
	}
	return true;
}

static bool is_hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool kilt_digest_valid(const char *s)
{
	if (!s)
		return false;
	if (strncmp(s, "sha256:", 7) == 0)
		return strlen(s + 7) == 64 && is_hex_lower(s + 7, 64);
	if (strncmp(s, "sha512:", 7) == 0)
		return strlen(s + 7) == 128 && is_hex_lower(s + 7, 128);
	return false;
}

static char *lower_dup(const char *s, size_t n)
{
	char *p = xstrndup(s, n);
	for (char *q = p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

int kilt_imageref_parse(const char *text, struct kilt_imageref *ret, struct kilt_error *err)
{
	if (!text || !*text)
		return kilt_error_setf(err, -EINVAL, "image reference: empty");
	size_t total = strlen(text);
	if (total > REF_MAX_LEN)
		return kilt_error_setf(err, -EINVAL, "image reference: longer than %u bytes",
				       REF_MAX_LEN);
	for (size_t i = 0; i < total; i++)
		if ((unsigned char)text[i] <= ' ' || (unsigned char)text[i] >= 0x7f)
			return kilt_error_setf(
				err, -EINVAL,
				"image reference '%.200s': contains a space or control character",
				text);

	_cleanup_free_ char *digest = NULL;
	size_t rest = total;
	const char *at = strchr(text, '@');
	if (at) {
		if (strchr(at + 1, '@'))
			return kilt_error_setf(err, -EINVAL,
					       "image reference '%.200s': more than one '@'", text);
		digest = xstrdup(at + 1);
		if (!kilt_digest_valid(digest))
			return kilt_error_setf(err, -EINVAL,
					       "image reference '%.200s': digest '%.200s' is not "
					       "sha256:<64 lower-case hex> (or sha512:<128 hex>)",
					       text, digest);
		rest = (size_t)(at - text);
	}
	/* A tag is after the last ':' that follows the last '/'. */
	const char *last_slash = NULL;
	const char *last_colon = NULL;
	for (size_t i = 0; i < rest; i++) {
		if (text[i] == '/')
			last_slash = text + i;
		else if (text[i] == ':')
			last_colon = text + i;
	}
	_cleanup_free_ char *tag = NULL;
	size_t name_len = rest;
	if (last_colon && (!last_slash || last_colon > last_slash)) {
		size_t tlen = rest - (size_t)(last_colon - text) - 1;
		if (!valid_tag(last_colon + 1, tlen))
			return kilt_error_setf(err, -EINVAL,
					       "image reference '%.200s': tag '%.*s' is not valid "
					       "([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
					       text, (int)(tlen > 200 ? 200 : tlen),
					       last_colon + 1);
		tag = xstrndup(last_colon + 1, tlen);
		name_len = (size_t)(last_colon - text);
	}
	if (name_len == 0)
		return kilt_error_setf(err, -EINVAL, "image reference '%.200s': no repository name",
				       text);

	/* Split the domain off the way Docker does. */
	const char *slash = memchr(text, '/', name_len);
	_cleanup_free_ char *registry = NULL;
	const char *path = text;
	size_t path_len = name_len;
	if (slash) {
		size_t dlen = (size_t)(slash - text);
		bool is_domain = memchr(text, '.', dlen) || memchr(text, ':', dlen) ||
				 (dlen == 9 && memcmp(text, "localhost", 9) == 0);
		for (size_t i = 0; i < dlen && !is_domain; i++)
			if (isupper((unsigned char)text[i]))
				is_domain = true;
		if (is_domain) {
			if (!valid_domain(text, dlen))
				return kilt_error_setf(
					err, -EINVAL,
					"image reference '%.200s': registry '%.*s' is "
					"not a valid host[:port]",
					text, (int)(dlen > 200 ? 200 : dlen), text);
			registry = lower_dup(text, dlen);
			path = slash + 1;
			path_len = name_len - dlen - 1;
		}
	}
	if (!registry || strcmp(registry, "index.docker.io") == 0 ||
	    strcmp(registry, "registry-1.docker.io") == 0) {
		free(registry);
		registry = xstrdup("docker.io");
	}
	if (path_len == 0)
		return kilt_error_setf(err, -EINVAL, "image reference '%.200s': no repository name",
				       text);
	size_t start = 0;
	for (size_t i = 0; i <= path_len; i++) {
		if (i == path_len || path[i] == '/') {
			if (!valid_path_component(path + start, i - start))
				return kilt_error_setf(
					err, -EINVAL,
					"image reference '%.200s': repository component '%.*s' "
					"must "
					"be lower-case letters and digits separated by '.', '_', "
					"'__' or '-'",
					text, (int)(i - start > 200 ? 200 : i - start),
					path + start);
			start = i + 1;
		}
	}
	_cleanup_free_ char *repository = NULL;
	if (strcmp(registry, "docker.io") == 0 && !memchr(path, '/', path_len))
		repository = xasprintf("library/%.*s", (int)path_len, path);
	else
		repository = xstrndup(path, path_len);
	if (strlen(registry) + 1 + strlen(repository) > NAME_MAX_LEN)
		return kilt_error_setf(err, -EINVAL,
				       "image reference '%.200s': name longer than %u characters",
				       text, NAME_MAX_LEN);
	if (!tag && !digest)
		tag = xstrdup("latest");
	*ret = (struct kilt_imageref){
		.registry = steal_pointer(&registry),
		.repository = steal_pointer(&repository),
		.tag = steal_pointer(&tag),
		.digest = steal_pointer(&digest),
	};
	return 0;
}

char *kilt_imageref_format(const struct kilt_imageref *ref)
{
	return xasprintf("%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
			 ref->tag ? ref->tag : "", ref->digest ? "@" : "",
			 ref->digest ? ref->digest : "");
}

int kilt_imageref_normalize(const char *text, char **ret, struct kilt_error *err)
{
	struct kilt_imageref ref = { 0 };
	int r = kilt_imageref_parse(text, &ref, err);
	if (r < 0)
		return r;
	*ret = ref.digest ? xasprintf("%s/%s@%s", ref.registry, ref.repository, ref.digest)
			  : xasprintf("%s/%s:%s", ref.registry, ref.repository, ref.tag);
	kilt_imageref_done(&ref);
	return 0;
}

const char *kilt_imageref_api_host(const struct kilt_imageref *ref)
{
	if (strcmp(ref->registry, "docker.io") == 0)
		return "registry-1.docker.io";
	return ref->registry;
}

bool kilt_imageref_ecr_region(const char *registry, char *buf, size_t size)
{
	if (!registry)
		return false;
	/* <12 digits>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] or <12 digits>.dkr-ecr.<region>.on.aws */
	size_t i = 0;
	while (isdigit((unsigned char)registry[i]))
		i++;
	if (i != 12)
		return false;
	const char *p = registry + 12;
	const char *rest;
	if (strncmp(p, ".dkr.ecr.", 9) == 0)
		rest = p + 9;
	else if (strncmp(p, ".dkr.ecr-fips.", 14) == 0)
		rest = p + 14;
	else if (strncmp(p, ".dkr-ecr.", 9) == 0)
		rest = p + 9;
	else
		return false;
	const char *dot = strchr(rest, '.');
	if (!dot || dot == rest)
		return false;
	/* A port, if any, is not part of the name. */
	size_t tail = strcspn(dot, ":");
	if (!((tail == 14 && strncmp(dot, ".amazonaws.com", 14) == 0) ||
	      (tail == 17 && strncmp(dot, ".amazonaws.com.cn", 17) == 0) ||
	      (tail == 7 && strncmp(dot, ".on.aws", 7) == 0)))
		return false;
	size_t rlen = (size_t)(dot - rest);
	for (size_t k = 0; k < rlen; k++)
		if (!is_lower_alnum(rest[k]) && rest[k] != '-')
			return false;
	if (rlen + 1 > size)
		return false;
	memcpy(buf, rest, rlen);
	buf[rlen] = '\0';
	return true;
}

/* ---- platforms ----------------------------------------------------------------------------- */

static void normalize_arch(char *arch, size_t asize, char *variant, size_t vsize)
{
	if (strcmp(arch, "x86_64") == 0 || strcmp(arch, "x86-64") == 0) {
		snprintf(arch, asize, "amd64");
	} else if (strcmp(arch, "aarch64") == 0) {
		snprintf(arch, asize, "arm64");
	} else if (strcmp(arch, "armhf") == 0) {
		snprintf(arch, asize, "arm");
		if (!*variant)
			snprintf(variant, vsize, "v7");
	} else if (strcmp(arch, "armel") == 0) {
		snprintf(arch, asize, "arm");
		if (!*variant)
			snprintf(variant, vsize, "v6");
	} else if (strcmp(arch, "i386") == 0 || strcmp(arch, "i686") == 0) {
		snprintf(arch, asize, "386");
	}
}

int kilt_platform_parse(const char *text, struct kilt_platform *ret, struct kilt_error *err)
{
	struct kilt_platform p = { 0 };
	const char *parts[3] = { 0 };
	size_t lens[3] = { 0 };
	unsigned n = 0;
	const char *s = text ? text : "";
	for (;;) {
		const char *slash = strchr(s, '/');
		size_t len = slash ? (size_t)(slash - s) : strlen(s);
		if (n == 3 || len == 0 || len >= sizeof(p.os))
			return kilt_error_setf(
				err, -EINVAL,
				"platform '%.100s': expected os/arch[/variant], e.g. "
				"linux/amd64 or linux/arm64/v8",
				text ? text : "");
		for (size_t i = 0; i < len; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' &&
			    s[i] != '.')
				return kilt_error_setf(
					err, -EINVAL,
					"platform '%.100s': unexpected character '%c'", text, s[i]);
		parts[n] = s;
		lens[n++] = len;
		if (!slash)
			break;
		s = slash + 1;
	}
	if (n < 2)
		return kilt_error_setf(err, -EINVAL,
				       "platform '%.100s': expected os/arch[/variant], e.g. "
				       "linux/amd64 or linux/arm64/v8",
				       text ? text : "");
	snprintf(p.os, sizeof(p.os), "%.*s", (int)lens[0], parts[0]);
	snprintf(p.architecture, sizeof(p.architecture), "%.*s", (int)lens[1], parts[1]);
	if (n == 3)
		snprintf(p.variant, sizeof(p.variant), "%.*s", (int)lens[2], parts[2]);
	for (char *c = p.os; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	for (char *c = p.architecture; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	normalize_arch(p.architecture, sizeof(p.architecture), p.variant, sizeof(p.variant));
	*ret = p;
	return 0;
}

const char *kilt_platform_format(const struct kilt_platform *p, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s%s", p->os, p->architecture, p->variant[0] ? "/" : "",
		 p->variant);
	return buf;
}

static bool variant_equal(const char *arch, const char *a, const char *b)
{
	/* arm64 without a variant is v8. */
	if (strcmp(arch, "arm64") == 0) {
		if (!*a)
			a = "v8";
		if (!*b)
			b = "v8";
	}
	return strcmp(a, b) == 0;
}

bool kilt_platform_matches(const struct kilt_platform *want, const char *os, const char *arch,
			   const char *variant)
{
	char a[32], v[32];
	snprintf(a, sizeof(a), "%s", arch ? arch : "");
	snprintf(v, sizeof(v), "%s", variant ? variant : "");
	normalize_arch(a, sizeof(a), v, sizeof(v));
	if (!os || strcmp(os, want->os) != 0 || strcmp(a, want->architecture) != 0)
		return false;
	if (!want->variant[0] || !v[0])
		return true;
	return variant_equal(a, want->variant, v);
}

/* ---- docker config.json and pull secrets --------------------------------------------------- */

/* "https://Index.Docker.IO/v1/" -> "index.docker.io" */
static char *auth_key_host(const char *key)
{
	const char *p = key;
	if (strncmp(p, "https://", 8) == 0)
		p += 8;
	else if (strncmp(p, "http://", 7) == 0)
		p += 7;
	size_t n = strcspn(p, "/");
	return lower_dup(p, n);
}

static bool is_docker_hub(const char *host)
{
	return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
	       strcmp(host, "registry-1.docker.io") == 0 ||
	       strcmp(host, "registry.hub.docker.com") == 0;
}

static int entry_credentials(const char *key, const json_t *entry, char **ret_user,
			     char **ret_password, struct kilt_error *err)
{
	if (!json_is_object(entry))
		return kilt_error_setf(err, -EINVAL, "auths.\"%.200s\": expected an object", key);
	const char *auth = json_string_value(json_object_get(entry, "auth"));
	const char *user = json_string_value(json_object_get(entry, "username"));
	const char *pass = json_string_value(json_object_get(entry, "password"));
	if (auth && *auth) {
		_cleanup_free_ char *plain = NULL;
		size_t plen = 0;
		int r = kilt_base64_decode(auth, strlen(auth), &plain, &plen, err);
		if (r < 0)
			return kilt_error_prefix(err, "auths.\"%.200s\".auth", key);
		char *colon = memchr(plain, ':', plen);
		if (!colon || strlen(plain) != plen)
			return kilt_error_setf(err, -EINVAL,
					       "auths.\"%.200s\".auth: expected base64 of "
					       "\"user:password\"",
					       key);
		*ret_user = xstrndup(plain, (size_t)(colon - plain));
		*ret_password = xstrdup(colon + 1);
		return 0;
	}
	if (user && pass) {
		*ret_user = xstrdup(user);
		*ret_password = xstrdup(pass);
		return 0;
	}
	if (json_object_get(entry, "identitytoken"))
		return kilt_error_setf(err, -ENOTSUP,
				       "auths.\"%.200s\": identity tokens (OAuth2 refresh tokens) "
				       "are not supported; use a username and password or token",
				       key);
	return kilt_error_setf(err, -EINVAL,
			       "auths.\"%.200s\": no \"auth\" and no \"username\"/\"password\"",
			       key);
}

int kilt_docker_auth_lookup(const json_t *config, const char *registry, char **ret_user,
			    char **ret_password, struct kilt_error *err)
{
	const json_t *auths = json_object_get(config, "auths");
	if (!json_is_object(auths))
		return -ENOENT;
	_cleanup_free_ char *want = lower_dup(registry, strlen(registry));
	bool hub = is_docker_hub(want);
	const char *key;
	json_t *entry;
	/* Exact spelling first, then the same host written as a URL. */
	entry = json_object_get(auths, registry);
	if (entry)
		return entry_credentials(registry, entry, ret_user, ret_password, err);
	union {
		const json_t *c;
		json_t *m;
	} it = { .c = auths };
	json_object_foreach (it.m, key, entry) {
		_cleanup_free_ char *host = auth_key_host(key);
		if (strcmp(host, want) == 0 || (hub && is_docker_hub(host)))
			return entry_credentials(key, entry, ret_user, ret_password, err);
	}
	return -ENOENT;
}

static bool looks_like_auth_map(const json_t *obj)
{
	const char *key;
	json_t *v;
	if (!json_is_object(obj) || json_object_size(obj) == 0)
		return false;
	union {
		const json_t *c;
		json_t *m;
	} it = { .c = obj };
	json_object_foreach (it.m, key, v) {
		if (!json_is_object(v) ||
		    !(json_object_get(v, "auth") || json_object_get(v, "username")))
			return false;
	}
	return true;
}

static json_t *wrap_auths(json_t *map)
{
	json_t *o = json_object();
	json_object_set(o, "auths", map);
	return o;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k;
		if (c < 0x80)
			k = 0;
		else if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3;
		else
			return false;
		if (k > n - i - 1)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

int kilt_docker_config_parse(const char *text, size_t len, json_t **ret, struct kilt_error *err)
{
	/* Credentials files are text; refusing other bytes early also keeps them away from the
	 * YAML scanner, which can spin on some invalid sequences. */
	if (!valid_utf8((const unsigned char *)text, len))
		return kilt_error_setf(err, -EINVAL, "not valid UTF-8 text");
	json_error_t jerr;
	_cleanup_json_ json_t *root = NULL;
	/* JSON and YAML alike (a config.json, or a Secret as kubectl prints it). */
	int r = kilt_yaml_load(text, len, NULL, 0, NULL, &root, err);
	if (r < 0)
		return r;
	if (!json_is_object(root))
		return kilt_error_setf(err, -EINVAL, "expected an object");
	if (json_is_object(json_object_get(root, "auths"))) {
		*ret = json_incref(root);
		return 0;
	}
	const json_t *data = json_object_get(root, "data");
	const json_t *sdata = json_object_get(root, "stringData");
	const char *type = json_string_value(json_object_get(root, "type"));
	if (json_is_object(data) || json_is_object(sdata)) {
		bool is_cfg = false;
		const char *b64 = json_string_value(json_object_get(data, ".dockerconfigjson"));
		const char *plain = json_string_value(json_object_get(sdata, ".dockerconfigjson"));
		if (!b64 && !plain) {
			b64 = json_string_value(json_object_get(data, ".dockercfg"));
			plain = json_string_value(json_object_get(sdata, ".dockercfg"));
			is_cfg = b64 || plain;
		}
		if (!b64 && !plain)
			return kilt_error_setf(
				err, -EINVAL,
				"Secret%s%s%s has no data \".dockerconfigjson\" or \".dockercfg\"",
				type ? " of type " : "", type ? type : "", "");
		_cleanup_free_ char *decoded = NULL;
		size_t dlen = 0;
		if (b64) {
			r = kilt_base64_decode(b64, strlen(b64), &decoded, &dlen, err);
			if (r < 0)
				return kilt_error_prefix(err, "Secret data \"%s\"",
							 is_cfg ? ".dockercfg"
								: ".dockerconfigjson");
		} else {
			decoded = xstrdup(plain);
			dlen = strlen(decoded);
		}
		_cleanup_json_ json_t *inner = json_loadb(decoded, dlen, 0, &jerr);
		if (!json_is_object(inner))
			return kilt_error_setf(err, -EINVAL,
					       "Secret data \"%s\": not a JSON object",
					       is_cfg ? ".dockercfg" : ".dockerconfigjson");
		if (json_is_object(json_object_get(inner, "auths"))) {
			*ret = json_incref(inner);
			return 0;
		}
		*ret = wrap_auths(inner);
		return 0;
	}
	if (looks_like_auth_map(root)) {
		*ret = wrap_auths(root);
		return 0;
	}
	return kilt_error_setf(
		err, -EINVAL,
		"not a docker config (no \"auths\") nor a Kubernetes dockerconfigjson "
		"Secret");
}
