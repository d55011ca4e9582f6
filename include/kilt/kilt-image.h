/* SPDX-License-Identifier: Apache-2.0 */
/* Image facts without I/O: image references, platforms, manifests and image configs, registry
 * auth challenges, docker config.json / pull-secret credentials, and AWS Signature Version 4.
 * The registry client in src/ does the HTTP; everything it parses or signs is here, so it can be
 * unit-tested and fuzzed. Included by kilt.h. Every function is thread-safe on distinct objects. */
#ifndef KILT_IMAGE_H
#define KILT_IMAGE_H

#include <stdint.h>

/* ---- references ---------------------------------------------------------------------------- */

/* A normalized image reference: `nginx` is docker.io / library/nginx / latest. A caller-owned
 * struct; release with kilt_imageref_done. */
struct kilt_imageref {
	char *registry; /* owned: "docker.io", "ghcr.io", "127.0.0.1:5000" (lower case) */
	char *repository; /* owned: "library/nginx" */
	char *tag; /* owned; "latest" when neither tag nor digest was written; NULL with a digest only */
	char *digest; /* owned: "sha256:<64 hex>" or NULL */
};

/* Parses and normalizes `text` the way Docker does (first component is a registry when it has a
 * '.' or ':' or is "localhost"; docker.io gets "library/" for one-component names; index.docker.io
 * means docker.io). Fills `ret` only on success. Errors say what is wrong with which part. */
int kilt_imageref_parse(const char *text, struct kilt_imageref *ret, struct kilt_error *err);
/* Releases the fields; NULL is a no-op. */
void kilt_imageref_done(struct kilt_imageref *ref);
/* The canonical spelling "registry/repository[:tag][@digest]"; owned. */
char *kilt_imageref_format(const struct kilt_imageref *ref);
/* The spelling of what a registry is asked for `text`: the canonical registry/repository, then
 * "@digest" when the reference has one (a tag beside a digest is not what is fetched), else
 * ":tag". Two references name the same lookup exactly when their normalized spellings are equal:
 * "nginx", "docker.io/library/nginx" and "index.docker.io/library/nginx:latest" are all
 * "docker.io/library/nginx:latest". `*ret` receives an owned string; errors as
 * kilt_imageref_parse. */
int kilt_imageref_normalize(const char *text, char **ret, struct kilt_error *err);
/* The host[:port] to talk to: registry-1.docker.io for docker.io, else the registry; borrowed
 * (static or from `ref`). */
const char *kilt_imageref_api_host(const struct kilt_imageref *ref);
/* The AWS region when `registry` is an ECR host (<acct>.dkr.ecr.<region>.amazonaws.com[.cn], also
 * the dkr-ecr-fips and .on.aws spellings); writes it into `buf` and returns true, else false. */
bool kilt_imageref_ecr_region(const char *registry, char *buf, size_t size);

/* ---- platforms ----------------------------------------------------------------------------- */

struct kilt_platform {
	char os[32];
	char architecture[32];
	char variant[32]; /* "" when none */
};

/* Parses "os/arch[/variant]" and normalizes architecture aliases (x86_64 -> amd64, aarch64 ->
 * arm64, armhf -> arm/v7). */
int kilt_platform_parse(const char *text, struct kilt_platform *ret, struct kilt_error *err);
/* Writes "os/arch[/variant]" into buf; returns buf. */
const char *kilt_platform_format(const struct kilt_platform *p, char *buf, size_t size);
/* True when an image for (os, arch, variant) runs on `want`. A missing variant on either side
 * matches (arm64 images rarely say v8); os and architecture must be equal after normalization. */
bool kilt_platform_matches(const struct kilt_platform *want, const char *os, const char *arch,
			   const char *variant);

/* ---- manifests and configs ----------------------------------------------------------------- */

#define KILT_MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define KILT_MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define KILT_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define KILT_MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
/* The Accept header value a client sends for manifests. */
#define KILT_MANIFEST_ACCEPT                                                                       \
	KILT_MEDIA_OCI_INDEX ", " KILT_MEDIA_DOCKER_LIST ", " KILT_MEDIA_OCI_MANIFEST              \
			     ", " KILT_MEDIA_DOCKER_MANIFEST

/* Upper bounds on what the parsers accept (untrusted input). */
#define KILT_MANIFEST_MAX_BYTES (4u << 20)
#define KILT_CONFIG_MAX_BYTES (8u << 20)
#define KILT_INDEX_MAX_ENTRIES 1024u

enum kilt_manifest_kind {
	KILT_MANIFEST_IMAGE, /* an image manifest: names a config blob */
	KILT_MANIFEST_INDEX, /* an OCI index or Docker manifest list: names per-platform manifests */
};

/* A parsed manifest or index. Immutable. */
struct kilt_manifest;

/* Parses a manifest body. `content_type` (the response's Content-Type, may be NULL) wins over the
 * body's own mediaType; when both are absent, the shape decides (config => image, manifests =>
 * index). Schema 1 manifests are refused with an error that says so. */
int kilt_manifest_parse(const char *body, size_t len, const char *content_type,
			struct kilt_manifest **ret, struct kilt_error *err);
void kilt_manifest_free(struct kilt_manifest *m);
enum kilt_manifest_kind kilt_manifest_kind(const struct kilt_manifest *m);
/* The media type decided at parse time; borrowed. */
const char *kilt_manifest_media_type(const struct kilt_manifest *m);
/* Image manifests: the config descriptor's digest ("sha256:...") and size; borrowed. */
const char *kilt_manifest_config_digest(const struct kilt_manifest *m);
int64_t kilt_manifest_config_size(const struct kilt_manifest *m);
/* Indexes: the number of entries and each entry's digest and platform (NULL strings when the entry
 * has no platform); borrowed. */
size_t kilt_manifest_count(const struct kilt_manifest *m);
bool kilt_manifest_entry(const struct kilt_manifest *m, size_t i, const char **ret_digest,
			 const char **ret_os, const char **ret_arch, const char **ret_variant);
/* Picks the entry for `want` from an index: the first exact match (variant equal), else the first
 * compatible one. Attestation entries (unknown/unknown) are skipped. -ENOENT with a message that
 * lists the platforms the index has. `ret_digest` is borrowed. */
int kilt_manifest_select(const struct kilt_manifest *m, const struct kilt_platform *want,
			 const char **ret_digest, struct kilt_error *err);

/* Parses an image config blob into facts (owned object):
 *   { "entrypoint": [..], "command": [..], "environment": ["K=V", ..], "user": "",
 *     "working_dir": "", "os": "linux", "architecture": "amd64", "variant": "" (when set) }
 * Absent or null Entrypoint/Cmd become []; each array element must be a string. */
int kilt_image_config_parse(const char *body, size_t len, json_t **ret, struct kilt_error *err);

/* "sha256:<hex>" of data; owned. */
char *kilt_digest_sha256(const void *data, size_t len);
/* Checks that `digest` ("sha256:..." or "sha512:...") is the digest of data. -EINVAL for a
 * malformed or unsupported digest, -EBADMSG for a mismatch (message shows both). */
int kilt_digest_verify(const char *digest, const void *data, size_t len, struct kilt_error *err);
/* True when `s` is a well-formed digest (sha256 with 64 hex or sha512 with 128 hex, lower case). */
bool kilt_digest_valid(const char *s);

/* Formats a registry error body ({"errors":[{"code","message","detail"}]}) as
 * "CODE: message[; CODE: message]"; NULL when the body is not one. Owned. */
char *kilt_registry_error_message(const char *body, size_t len);

/* ---- auth ---------------------------------------------------------------------------------- */

/* One parsed WWW-Authenticate challenge (the first one in the header). */
struct kilt_auth_challenge {
	char scheme[16]; /* "bearer" or "basic", lower case */
	char *realm; /* owned, may be NULL */
	char *service; /* owned, may be NULL */
	char *scope; /* owned, may be NULL */
	char *error; /* owned, may be NULL (bearer error="insufficient_scope"...) */
};
/* Parses `header` (without the "WWW-Authenticate:" name). Values may be tokens or quoted strings
 * with backslash escapes. At most 8 KiB. */
int kilt_auth_challenge_parse(const char *header, struct kilt_auth_challenge *ret,
			      struct kilt_error *err);
void kilt_auth_challenge_done(struct kilt_auth_challenge *c);

/* Finds credentials for `registry` ("docker.io", "host:port") in a docker config.json document:
 * `auths` keys may be bare hosts, URLs ("https://index.docker.io/v1/") or host/path; an entry has a
 * base64 `auth` ("user:password") or `username`/`password` (an `identitytoken` alone is refused
 * with -ENOTSUP). Returns 0 with owned strings, -ENOENT when there is no entry, or another error
 * for a malformed entry. */
int kilt_docker_auth_lookup(const json_t *config, const char *registry, char **ret_user,
			    char **ret_password, struct kilt_error *err);
/* Reads a docker config from text that is one of: a config.json ({"auths":{..}}), a Kubernetes
 * Secret (JSON or YAML) of type kubernetes.io/dockerconfigjson (data[".dockerconfigjson"], base64)
 * or kubernetes.io/dockercfg (data[".dockercfg"]), or a bare .dockercfg map. Returns an owned
 * {"auths": {...}} object. */
int kilt_docker_config_parse(const char *text, size_t len, json_t **ret, struct kilt_error *err);

/* ---- AWS Signature Version 4 --------------------------------------------------------------- */

struct kilt_sigv4_request {
	const char *method; /* "GET", "POST" */
	const char *path; /* raw (not yet encoded) absolute path; NULL or "" means "/" */
	const char *query; /* raw query string without '?', may be NULL */
	/* "Name:value" strings, NULL-terminated; must include Host. Names are matched without case,
	 * values are trimmed and inner runs of spaces collapsed; repeated names are joined by ','. */
	const char *const *headers;
	const void *payload;
	size_t payload_len;
	const char *region, *service;
	const char *amz_date; /* "YYYYMMDDTHHMMSSZ" (also sent as X-Amz-Date by the caller) */
	const char *access_key, *secret_key;
	/* may be NULL; when set the caller sends X-Amz-Security-Token and it is signed */
	const char *session_token;
};

struct kilt_sigv4_result {
	char *canonical_request; /* owned */
	char *string_to_sign; /* owned */
	char *signature; /* owned: 64 lower-case hex */
	char *authorization; /* owned: the Authorization header value */
};

/* Signs a request (non-S3 rules: the path is normalized and each segment encoded). */
int kilt_sigv4_sign(const struct kilt_sigv4_request *req, struct kilt_sigv4_result *ret,
		    struct kilt_error *err);
void kilt_sigv4_result_done(struct kilt_sigv4_result *r);

#endif
