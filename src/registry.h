/* SPDX-License-Identifier: Apache-2.0 */
/* The registry client: resolves image references to image facts (ENTRYPOINT, CMD, Env, User,
 * WorkingDir, platform, digests) over the OCI distribution API with libcurl, with auth (bearer
 * tokens, basic, docker config.json, pull secrets, ECR), TLS policy, a cache and a time budget per
 * lookup. One client may be used from many threads at once. */
#ifndef KILT_REGISTRY_H
#define KILT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"

struct registry_options {
	/* docker config.json or Kubernetes dockerconfigjson Secret (JSON/YAML); NULL: the default
	 * $DOCKER_CONFIG/config.json or ~/.docker/config.json when present */
	const char *auth_file;
	/* "host[:port]" registries (and token realms) allowed over plain HTTP or with an unverified
	 * certificate; KILT_INSECURE_REGISTRIES (comma-separated) is added */
	const char *const *insecure;
	size_t n_insecure;
	/* CA bundle (PEM); NULL: SSL_CERT_FILE when set, else the system bundle */
	const char *ca_file;
	long timeout_ms; /* time budget of one lookup (all its requests); default 15000 */
	unsigned concurrency; /* lookups at once in registry_lookup_many; default 8 */
	long tag_ttl_s; /* tag -> digest; default 300 */
	long negative_ttl_s; /* failed lookups; default 30 */
	size_t max_entries; /* cache entries in memory (LRU); default 4096 */
	/* digest -> facts persisted here (immutable by digest); NULL: KILT_CACHE_DIR or none */
	const char *cache_dir;
	/* platform when the caller gives none; default "linux/amd64" */
	const char *default_platform;
};

struct registry_client;

/* Fills `ret` with the defaults above (nothing configured). */
void registry_options_default(struct registry_options *ret);
int registry_client_new(const struct registry_options *opts, struct registry_client **ret,
			struct kilt_error *err);
void registry_client_free(struct registry_client *c);
static inline void registry_client_freep(struct registry_client **c)
{
	registry_client_free(*c);
}

/* Resolves `ref` for `platform` ("os/arch[/variant]", NULL: the default). On success `ret_facts`
 * receives an owned object:
 *   { "reference", "digest" (what the reference resolved to: index or manifest),
 *     "manifest_digest" (the platform's manifest), "config_digest", "platform",
 *     "os", "architecture", ["variant"], "entrypoint": [..], "command": [..],
 *     "environment": ["K=V"..], "user", "working_dir" }
 * Errors: -EINVAL bad reference, -ENOENT not found / platform missing, -EACCES unauthorized (with
 * the registry's own message), -ETIMEDOUT time budget spent, -EPROTO bad response, -EHOSTUNREACH
 * network. Cached results (positive and negative) are returned without any request. */
int registry_lookup(struct registry_client *c, const char *ref, const char *platform,
		    json_t **ret_facts, struct kilt_error *err);

struct registry_job {
	const char *ref; /* borrowed */
	const char *platform; /* borrowed, may be NULL */
	json_t *facts; /* owned result, NULL on failure */
	int rc;
	struct kilt_error err;
};
/* Runs every job with up to `concurrency` lookups at once; identical lookups run once. */
void registry_lookup_many(struct registry_client *c, struct registry_job *jobs, size_t n);

struct registry_stats {
	unsigned long requests; /* HTTP requests sent */
	unsigned long hits; /* lookups answered from the cache */
	unsigned long negative_hits; /* of which failures */
	unsigned long misses;
};
void registry_stats(struct registry_client *c, struct registry_stats *ret);

/* Resolves every entry of `needs` (kilt-plan.h) not resolved yet, up to `concurrency` lookups
 * at once (identical ones run once), storing each result or failure in its entry. */
void registry_resolve(struct registry_client *c, struct kilt_image_needs *needs);

/* An image-facts hook (kilt_ecs_image_facts_fn) over a table resolved by registry_resolve:
 * the table's result when it has one, else a lookup through the client (and its cache). */
struct registry_table {
	struct registry_client *client; /* borrowed */
	struct kilt_image_needs *needs; /* borrowed, may be NULL */
};
int registry_table_callback(void *userdata, const char *image, const char *platform,
			    json_t **ret_facts, struct kilt_error *err);

/* The ECS engine's image-facts hook (kilt_ecs_image_facts_fn): `userdata` is the client. */
int registry_facts_callback(void *userdata, const char *image, const char *platform,
			    json_t **ret_facts, struct kilt_error *err);

/* ---- the cache (registry_cache.c) ---------------------------------------------------------- */

struct registry_cache;
/* `dir` (NULL: memory only) must be writable by this user alone, or sticky and this user's:
 * else -EPERM with a message saying why. */
int registry_cache_new(size_t max_entries, const char *dir, struct registry_cache **ret,
		       struct kilt_error *err);
void registry_cache_free(struct registry_cache *cache);
/* Returns a new reference to the cached value of `key` (NULL when absent or expired). A
 * negative entry returns NULL with *ret_negative set and `err` filled from the stored error. */
json_t *registry_cache_get(struct registry_cache *cache, const char *key, bool *ret_negative,
			   struct kilt_error *err);
/* Stores a new reference to `value`; ttl_s <= 0 means forever. `persist` also writes it under
 * the cache dir (for values keyed by digest only). */
void registry_cache_put(struct registry_cache *cache, const char *key, json_t *value, long ttl_s,
			bool persist);
void registry_cache_put_negative(struct registry_cache *cache, const char *key,
				 const struct kilt_error *err, long ttl_s);

#endif
