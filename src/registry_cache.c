/* SPDX-License-Identifier: Apache-2.0 */
/* The registry client's cache: a bounded LRU of tag -> digest (with a TTL), digest -> facts
 * (forever, optionally persisted on disk since a digest never changes) and failed lookups (short
 * TTL). Thread-safe behind one mutex; values are jansson objects handed out by reference. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"
#include "registry.h"

struct centry {
	char *key; /* owned */
	json_t *value; /* owned; NULL for a negative entry */
	struct kilt_error err; /* negative entries */
	int64_t expires_ms; /* monotonic; 0 = never */
	struct centry *hnext; /* bucket chain */
	struct centry *prev, *next; /* LRU list, most recent first */
};

struct registry_cache {
	pthread_mutex_t lock;
	struct centry **buckets; /* owned */
	size_t n_buckets, n_entries, max_entries;
	struct centry *head, *tail;
	char *dir; /* owned, may be NULL */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

struct registry_cache *registry_cache_new(size_t max_entries, const char *dir)
{
	struct registry_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->max_entries = max_entries ? max_entries : 4096;
	c->n_buckets = 64;
	while (c->n_buckets < c->max_entries)
		c->n_buckets *= 2;
	c->buckets = xcalloc(c->n_buckets, sizeof(*c->buckets));
	if (dir && *dir) {
		c->dir = xstrdup(dir);
		mkdir(dir, 0700);
	}
	return c;
}

static void entry_free(struct centry *e)
{
	free(e->key);
	json_decref(e->value);
	free(e);
}

void registry_cache_free(struct registry_cache *c)
{
	if (!c)
		return;
	for (struct centry *e = c->head, *n; e; e = n) {
		n = e->next;
		entry_free(e);
	}
	free(c->buckets);
	free(c->dir);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void lru_unlink(struct registry_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct registry_cache *c, struct centry *e)
{
	e->next = c->head;
	e->prev = NULL;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void remove_entry(struct registry_cache *c, struct centry *e)
{
	struct centry **pp = &c->buckets[hash_key(e->key) & (c->n_buckets - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	entry_free(e);
	c->n_entries--;
}

static struct centry *find(struct registry_cache *c, const char *key)
{
	for (struct centry *e = c->buckets[hash_key(key) & (c->n_buckets - 1)]; e; e = e->hnext)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* The file name of a persisted key: its sha256 (keys hold '/' and ':'). */
static char *disk_path(const struct registry_cache *c, const char *key)
{
	_cleanup_free_ char *d = kilt_digest_sha256(key, strlen(key));
	return xasprintf("%s/%s.json", c->dir, d + 7);
}

static json_t *disk_get(const struct registry_cache *c, const char *key)
{
	if (!c->dir)
		return NULL;
	_cleanup_free_ char *path = disk_path(c, key);
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	const char *k = json_string_value(json_object_get(doc, "key"));
	json_t *v = json_object_get(doc, "value");
	if (!k || strcmp(k, key) != 0 || !json_is_object(v)) {
		json_decref(doc);
		return NULL;
	}
	json_incref(v);
	json_decref(doc);
	return v;
}

static void disk_put(const struct registry_cache *c, const char *key, json_t *value)
{
	if (!c->dir)
		return;
	_cleanup_free_ char *path = disk_path(c, key);
	_cleanup_free_ char *tmp = xasprintf("%s.%ld.tmp", path, (long)getpid());
	_cleanup_json_ json_t *doc = json_pack("{s:s, s:O}", "key", key, "value", value);
	/* Written whole, then renamed: a reader never sees half a file. */
	if (json_dump_file(doc, tmp, JSON_COMPACT | JSON_SORT_KEYS) == 0) {
		if (rename(tmp, path) < 0)
			unlink(tmp);
	} else {
		unlink(tmp);
	}
}

static void insert(struct registry_cache *c, const char *key, json_t *value,
		   const struct kilt_error *err, long ttl_s)
{
	struct centry *old = find(c, key);
	if (old)
		remove_entry(c, old);
	while (c->n_entries >= c->max_entries && c->tail)
		remove_entry(c, c->tail);
	struct centry *e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->value = value ? json_incref(value) : NULL;
	if (err)
		e->err = *err;
	e->expires_ms = ttl_s > 0 ? now_ms() + (int64_t)ttl_s * 1000 : 0;
	size_t b = hash_key(key) & (c->n_buckets - 1);
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	lru_push_front(c, e);
	c->n_entries++;
}

json_t *registry_cache_get(struct registry_cache *c, const char *key, bool *ret_negative,
			   struct kilt_error *err)
{
	*ret_negative = false;
	pthread_mutex_lock(&c->lock);
	struct centry *e = find(c, key);
	if (e && e->expires_ms && e->expires_ms <= now_ms()) {
		remove_entry(c, e);
		e = NULL;
	}
	json_t *v = NULL;
	if (e) {
		lru_unlink(c, e);
		lru_push_front(c, e);
		if (e->value) {
			v = json_incref(e->value);
		} else {
			*ret_negative = true;
			if (err)
				*err = e->err;
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (!e && c->dir) {
		v = disk_get(c, key);
		if (v) {
			pthread_mutex_lock(&c->lock);
			insert(c, key, v, NULL, 0);
			pthread_mutex_unlock(&c->lock);
		}
	}
	return v;
}

void registry_cache_put(struct registry_cache *c, const char *key, json_t *value, long ttl_s,
			bool persist)
{
	pthread_mutex_lock(&c->lock);
	insert(c, key, value, NULL, ttl_s);
	pthread_mutex_unlock(&c->lock);
	if (persist)
		disk_put(c, key, value);
}

void registry_cache_put_negative(struct registry_cache *c, const char *key,
				 const struct kilt_error *err, long ttl_s)
{
	if (ttl_s <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	insert(c, key, NULL, err, ttl_s);
	pthread_mutex_unlock(&c->lock);
}
