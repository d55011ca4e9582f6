/* SPDX-License-Identifier: Apache-2.0 */
/* Per-thread arenas behind jansson's allocator (kilt-json-arena.h): the webhook decodes, patches
 * and answers a review with thousands of jansson nodes, and malloc/free of each was a quarter of
 * its CPU time. Inside a request the allocator bumps a pointer and free() of arena memory does
 * nothing; the arena is reset when the request ends. */
#include <pthread.h>
#include <stdalign.h>
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

/* The first chunk of a thread; each next one doubles, up to CHUNK_MAX (larger allocations get
 * a chunk of their own size). */
#define CHUNK_MIN ((size_t)256 << 10)
#define CHUNK_MAX ((size_t)8 << 20)
/* One request takes at most this much from its arena; beyond, values come from malloc (a review
 * is at most 8 MiB of text). */
#define ARENA_MAX ((size_t)128 << 20)
/* The largest chunk kept for the thread's next request. */
#define KEEP_MAX ((size_t)4 << 20)
#define ALIGN alignof(max_align_t)

struct chunk {
	struct chunk *next; /* owned: an older chunk */
	size_t size, used; /* of data[] */
	alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct chunk *chunks; /* owned, newest first */
	size_t used; /* handed out since begin */
	bool active;
	bool registered; /* the thread-exit destructor knows it */
};

static _Thread_local struct arena tl;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool installed;

static void free_chunks(struct chunk *c)
{
	while (c) {
		struct chunk *next = c->next;
		ASAN_UNPOISON_MEMORY_REGION(c->data, c->size);
		free(c);
		c = next;
	}
}

static void thread_exit(void *p)
{
	struct arena *a = p;
	free_chunks(a->chunks);
	a->chunks = NULL;
}

static void make_key(void)
{
	if (pthread_key_create(&exit_key, thread_exit) != 0)
		abort();
}

static bool in_chunks(const struct chunk *c, uintptr_t p)
{
	for (; c; c = c->next)
		if (p >= (uintptr_t)c->data && p < (uintptr_t)c->data + c->size)
			return true;
	return false;
}

/* arena_malloc() when the newest chunk has no room for n bytes (size rounded up). */
static __attribute__((noinline)) void *arena_grow(struct arena *a, size_t size, size_t n)
{
	struct chunk *c = a->chunks;
	size_t want = c ? c->size * 2 : CHUNK_MIN;
	if (want > CHUNK_MAX)
		want = CHUNK_MAX;
	if (want < n)
		want = n;
	c = malloc(sizeof(*c) + want);
	if (!c)
		return NULL;
	c->size = want;
	c->used = n;
	c->next = a->chunks;
	a->chunks = c;
	a->used += n;
	ASAN_POISON_MEMORY_REGION(c->data, c->size);
	if (!a->registered) {
		pthread_once(&exit_once, make_key);
		pthread_setspecific(exit_key, a);
		a->registered = true;
	}
	ASAN_UNPOISON_MEMORY_REGION(c->data, size);
	return c->data;
}

/* Every jansson value's allocation: kept short, the rest is in arena_grow(). */
static void *arena_malloc(size_t size)
{
	struct arena *a = &tl;
	if (!a->active || size > ARENA_MAX - a->used)
		return malloc(size);
	size_t n = (size + ALIGN - 1) & ~(ALIGN - 1);
	struct chunk *c = a->chunks;
	if (!c || c->size - c->used < n)
		return arena_grow(a, size, n);
	void *p = c->data + c->used;
	c->used += n;
	a->used += n;
	ASAN_UNPOISON_MEMORY_REGION(p, size);
	return p;
}

static void arena_free(void *p)
{
	if (!p)
		return;
	if (tl.chunks && in_chunks(tl.chunks, (uintptr_t)p)) {
		/* released with the arena; under ASan unreadable from now on would need its size */
		return;
	}
	free(p);
}

void kilt_json_arena_install(void)
{
	if (installed)
		return;
	json_set_alloc_funcs(arena_malloc, arena_free);
	installed = true;
}

void kilt_json_arena_begin(void)
{
	if (!installed || tl.active)
		abort();
	tl.active = true;
	tl.used = 0;
}

void kilt_json_arena_end(void)
{
	struct arena *a = &tl;
	a->active = false;
	a->used = 0;
	/* Keep the newest (largest) chunk when it is not too large: the next request of this
	 * thread most likely needs about as much. */
	struct chunk *keep = a->chunks;
	if (keep && keep->size > KEEP_MAX)
		keep = NULL;
	free_chunks(keep ? keep->next : a->chunks);
	a->chunks = keep;
	if (keep) {
		keep->next = NULL;
		keep->used = 0;
		ASAN_POISON_MEMORY_REGION(keep->data, keep->size);
	}
}

bool kilt_json_arena_suspend(void)
{
	bool was = tl.active;
	tl.active = false;
	return was;
}

void kilt_json_arena_resume(bool was_active)
{
	tl.active = was_active;
}

bool kilt_json_arena_holds(const void *p)
{
	return p && in_chunks(tl.chunks, (uintptr_t)p);
}

size_t kilt_json_arena_used(void)
{
	return tl.used;
}

/* Whether p is memory of the arena: most values are in its newest chunk. */
static inline bool in_arena(const struct arena *a, const void *p)
{
	const struct chunk *c = a->chunks;
	if (!c)
		return false;
	if ((uintptr_t)p - (uintptr_t)c->data < c->size)
		return true;
	return in_chunks(c->next, (uintptr_t)p);
}

static void drop_children(json_t *v);

/* One reference to v held by a value of the arena, dropped: json_decref for a value from
 * outside; for a container of the arena, its count, and what it holds once that reaches 0
 * (json_decref's own count, atomic as in jansson.h's macro; the container itself is neither
 * cleared nor freed). A string or number of the arena holds nothing: its count is left as it is,
 * nothing reads it once the arena is released. */
static inline void drop(json_t *v)
{
	if (!v || v->refcount == (size_t)-1)
		return;
	if (!in_arena(&tl, v)) {
		json_decref(v);
		return;
	}
	if ((json_is_object(v) || json_is_array(v)) && JSON_INTERNAL_DECREF(v) == 0)
		drop_children(v);
}

static void drop_children(json_t *v)
{
	if (json_is_object(v)) {
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it))
			drop(json_object_iter_value(it));
	} else {
		size_t n = json_array_size(v);
		for (size_t i = 0; i < n; i++)
			drop(json_array_get(v, i));
	}
}

void kilt_json_arena_decref(json_t *v)
{
	if (!v || v->refcount == (size_t)-1)
		return;
	if (!in_arena(&tl, v)) {
		json_decref(v);
		return;
	}
	if (JSON_INTERNAL_DECREF(v) == 0 && (json_is_object(v) || json_is_array(v)))
		drop_children(v);
}
