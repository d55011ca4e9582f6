/* SPDX-License-Identifier: Apache-2.0 */
/* The registry client's cache: a bounded LRU of tag -> digest (with a TTL), digest -> facts
 * (forever, optionally persisted on disk since a digest never changes) and failed lookups (short
 * TTL). Thread-safe behind one mutex; values are jansson objects handed out by reference.
 *
 * The directory on disk may be shared (root's and a user's runs, a CI cache): nothing in it is
 * trusted that this user did not write. It is refused when others may write into it (unless it
 * is sticky and this user's own), files are reached only through the directory's descriptor and
 * never through a link, temporary files are created exclusively under unpredictable names, and
 * an entry is read only when it is a regular file owned by this user. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"
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
	int dir_fd; /* the cache directory, or -1 */
};

/* A persisted entry is written by kilt only; anything larger is not one. */
#define MAX_DISK_ENTRY (1u << 20)

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

/* Opens the cache directory (made 0700 when missing) and checks that nobody else can write
 * into it: neither another owner, nor group or others, unless it is sticky (others can add
 * names but not replace this user's) and owned by this user. */
static int open_dir(const char *dir, int *ret_fd, struct kilt_error *err)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kilt_error_set(err, -errno, dir, 0, 0, "cache directory: cannot create: %s",
				      strerror(errno));
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return kilt_error_set(err, -errno, dir, 0, 0, "cache directory: %s",
				      strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kilt_error_set(err, -errno, dir, 0, 0, "cache directory: %s",
				      strerror(errno));
	bool mine = st.st_uid == geteuid();
	bool others_write = !mine || (st.st_mode & (S_IWGRP | S_IWOTH));
	if (others_write && !(mine && (st.st_mode & S_ISVTX)))
		return kilt_error_set(err, -EPERM, dir, 0, 0,
				      "cache directory: %s (mode %04o, owner %lu) lets other users "
				      "plant entries or links; use a directory of your own that "
				      "only you can write (chmod go-w), or a sticky one you own",
				      mine ? "writable by group or others"
					   : "owned by another user",
				      (unsigned)(st.st_mode & 07777), (unsigned long)st.st_uid);
	*ret_fd = fd;
	fd = -1;
	return 0;
}

int registry_cache_new(size_t max_entries, const char *dir, struct registry_cache **ret,
		       struct kilt_error *err)
{
	int dir_fd = -1;
	if (dir && *dir) {
		int r = open_dir(dir, &dir_fd, err);
		if (r < 0)
			return r;
	}
	struct registry_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->max_entries = max_entries ? max_entries : 4096;
	c->n_buckets = 64;
	while (c->n_buckets < c->max_entries)
		c->n_buckets *= 2;
	c->buckets = xcalloc(c->n_buckets, sizeof(*c->buckets));
	c->dir_fd = dir_fd;
	*ret = c;
	return 0;
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
	if (c->dir_fd >= 0)
		close(c->dir_fd);
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

/* The file name of a persisted key, inside the directory: its sha256 (keys hold '/' and ':'). */
static char *disk_name(const char *key)
{
	_cleanup_free_ char *d = kilt_digest_sha256(key, strlen(key));
	return xasprintf("%s.json", d + 7);
}

static json_t *disk_get(const struct registry_cache *c, const char *key)
{
	if (c->dir_fd < 0)
		return NULL;
	_cleanup_free_ char *name = disk_name(key);
	_cleanup_close_ int fd =
		openat(c->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    st.st_size > MAX_DISK_ENTRY)
		return NULL; /* absent, a link, or not written by this user: not an entry */
	json_error_t jerr;
	json_t *doc = json_loadfd(fd, 0, &jerr);
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

/* Creates "<name>.<random>" exclusively in the directory (never through a link). */
static int create_temp(const struct registry_cache *c, const char *name, char **ret_tmp)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		char *tmp = xasprintf("%s.%016llx.tmp", name, (unsigned long long)rnd);
		int fd = openat(c->dir_fd, tmp,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*ret_tmp = tmp;
			return fd;
		}
		int e = errno;
		free(tmp);
		if (e != EEXIST)
			return -e;
	}
	return -EEXIST;
}

static void disk_put(const struct registry_cache *c, const char *key, json_t *value)
{
	if (c->dir_fd < 0)
		return;
	_cleanup_free_ char *name = disk_name(key);
	_cleanup_free_ char *tmp = NULL;
	_cleanup_json_ json_t *doc = json_pack("{s:s, s:O}", "key", key, "value", value);
	_cleanup_close_ int fd = create_temp(c, name, &tmp);
	if (fd < 0)
		return; /* the cache on disk is an optimisation: the lookup stands without it */
	/* Written whole, then renamed: a reader never sees half a file. rename replaces a link
	 * planted at the name, never its target. */
	if (json_dumpfd(doc, fd, JSON_COMPACT | JSON_SORT_KEYS) < 0 ||
	    renameat(c->dir_fd, tmp, c->dir_fd, name) < 0)
		(void)unlinkat(c->dir_fd, tmp, 0);
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
	if (!e && c->dir_fd >= 0) {
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
