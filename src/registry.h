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
	/* borrowed, may be NULL: credentials already read ({"auths": {...}}, as
	 * kilt_docker_config_parse gives, e.g. from the pull secrets of a pod); used instead of
	 * auth_file and the default config.json */
	const json_t *auth_config;
	/* "host[:port]" registries (and token realms) allowed over plain HTTP or with an unverified
	 * certificate; KILT_INSECURE_REGISTRIES (comma-separated) is added */
	const char *const *insecure;
	size_t n_insecure;
	/* CA bundle (PEM); NULL: SSL_CERT_FILE when set, else the system bundle */
	const char *ca_file;
	long timeout_ms; /* time budget of one lookup (all its requests); default 15000. A run's
			  * budget for all its lookups is its table's (struct registry_table) */
	unsigned concurrency; /* lookups at once in registry_lookup_many; default 8 */
	long tag_ttl_s; /* tag -> digest; default 300 */
	/* failed lookups, across runs (a run's table keeps its failures for the whole run): answers
	 * about the image (not found, unauthorized, bad content) for this, default 30; network
	 * trouble and timeouts for at most 10 */
	long negative_ttl_s;
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

struct registry_table;
struct registry_job {
	const char *ref; /* borrowed */
	const char *platform; /* borrowed, may be NULL */
	/* borrowed, may be NULL: the run whose budget the lookup must end within */
	const struct registry_table *run;
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

/* One run's image facts (a `kilt inject`, one macro invocation): the table of (image, platform)
 * pairs an engine lists (kilt-plan.h), one entry per image whatever its spelling, so each
 * distinct image is looked up once; a result or failure stays in the table for the rest of the
 * run; and every lookup of the run ends by the run's deadline, `budget_ms` after its first
 * lookup. Fill the first four fields; the table is used from one thread at a time. */
struct registry_table {
	struct registry_client *client; /* borrowed */
	struct kilt_image_needs *needs; /* borrowed, may be NULL (no table: lookups go to the
					 * client and its cache) */
	long budget_ms; /* all the run's lookups together; <= 0: none (each lookup has its own) */
	/* static or borrowed: where budget_ms comes from, for messages ("--image-budget") */
	const char *budget_source;
	int64_t deadline_ms; /* CLOCK_MONOTONIC ms; 0 until the first lookup starts the clock */
};

/* Starts the run's clock (done by the first registry_table_resolve or registry_table_callback;
 * a caller that runs registry_lookup_many with jobs naming the table starts it first). */
void registry_table_start(struct registry_table *t);
/* Resolves every entry of the table not resolved yet, up to `concurrency` lookups at once. An
 * image listed for several platforms is asked for one platform first: a failure that is not
 * about a platform (a timeout, an unreachable or refusing registry, unauthorized, a bad
 * reference) then answers its other platforms without asking again, here and in later calls.
 * Lookups that the run's budget leaves no time for fail with -ETIMEDOUT without a request. */
void registry_table_resolve(struct registry_table *t);
/* registry_table_resolve on a table without a run budget (for callers that keep none). */
void registry_resolve(struct registry_client *c, struct kilt_image_needs *needs);
/* A kilt_cfn_stream resolve hook: `userdata` is the struct registry_table of `needs`. */
void registry_table_resolve_hook(void *userdata, struct kilt_image_needs *needs);

/* An image-facts hook (kilt_ecs_image_facts_fn) over a table: the table's result or failure
 * when it has one; a pair the engine did not list is added to the table and resolved then (so
 * it too is looked up once per run, within the run's budget). */
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
