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
	/* While active, the newest chunk's next free byte and the end of what it may hand out
	 * (ARENA_MAX included); both 0 otherwise, so that one comparison serves every allocation.
	 * The newest chunk's `used` is brought up to date when it stops being read from here. */
	uintptr_t cur, limit;
	size_t older; /* handed out since begin by the chunks before the newest */
	bool active;
	/* since begin, some allocation came from malloc while active (past ARENA_MAX): trees of
	 * the request may hold such values, released by jansson's walk */
	bool spilled;
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

/* Where allocations come from while the arena is active: the newest chunk, from its `used`. */
static void open_newest(struct arena *a)
{
	struct chunk *c = a->chunks;
	if (!c) {
		a->cur = a->limit = 0;
		return;
	}
	size_t room = c->size - c->used;
	if (room > ARENA_MAX - a->older - c->used)
		room = ARENA_MAX - a->older - c->used;
	a->cur = (uintptr_t)c->data + c->used;
	a->limit = a->cur + room;
}

/* The newest chunk's `used` from the cursor (the arena is active). */
static void close_newest(struct arena *a)
{
	if (a->chunks)
		a->chunks->used = a->cur - (uintptr_t)a->chunks->data;
	a->cur = a->limit = 0;
}

/* arena_malloc() when the newest chunk cannot give n bytes (size rounded up): outside a
 * request, over ARENA_MAX, or a new chunk. */
static __attribute__((noinline)) void *arena_grow(struct arena *a, size_t size, size_t n)
{
	if (!a->active || n < size)
		return malloc(size);
	struct chunk *c = a->chunks;
	size_t in_newest = c ? a->cur - (uintptr_t)c->data : 0;
	if (n > ARENA_MAX - a->older - in_newest) {
		a->spilled = true;
		return malloc(size);
	}
	size_t want = c ? c->size * 2 : CHUNK_MIN;
	if (want > CHUNK_MAX)
		want = CHUNK_MAX;
	if (want < n)
		want = n;
	struct chunk *fresh = malloc(sizeof(*fresh) + want);
	if (!fresh)
		return NULL;
	if (c) {
		close_newest(a);
		a->older += c->used;
	}
	fresh->size = want;
	fresh->used = n;
	fresh->next = c;
	a->chunks = fresh;
	ASAN_POISON_MEMORY_REGION(fresh->data, fresh->size);
	if (!a->registered) {
		pthread_once(&exit_once, make_key);
		pthread_setspecific(exit_key, a);
		a->registered = true;
	}
	open_newest(a);
	ASAN_UNPOISON_MEMORY_REGION(fresh->data, size);
	return fresh->data;
}

/* Every jansson value's allocation: one comparison and a bump (arena_grow() for the rest). */
static void *arena_malloc(size_t size)
{
	struct arena *a = &tl;
	size_t n = (size + ALIGN - 1) & ~(ALIGN - 1);
	/* 1 <= n <= room: 0 for a size that rounds past SIZE_MAX */
	if (n - 1 < a->limit - a->cur) {
		void *p = (void *)a->cur;
		a->cur += n;
		ASAN_UNPOISON_MEMORY_REGION(p, size);
		return p;
	}
	return arena_grow(a, size, n);
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
	tl.spilled = false;
	tl.older = 0;
	open_newest(&tl);
}

void kilt_json_arena_end(void)
{
	struct arena *a = &tl;
	a->active = false;
	a->cur = a->limit = 0;
	a->older = 0;
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
	if (was)
		close_newest(&tl);
	tl.active = false;
	return was;
}

void kilt_json_arena_resume(bool was_active)
{
	if (was_active == tl.active)
		return;
	if (!was_active)
		close_newest(&tl);
	tl.active = was_active;
	if (was_active)
		open_newest(&tl);
}

bool kilt_json_arena_holds(const void *p)
{
	return p && in_chunks(tl.chunks, (uintptr_t)p);
}

size_t kilt_json_arena_used(void)
{
	const struct arena *a = &tl;
	if (!a->chunks)
		return 0;
	return a->older + (a->active ? a->cur - (uintptr_t)a->chunks->data : a->chunks->used);
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

/* Depth-first through the containers of the arena (a value of jansson's own, whose count is
 * (size_t)-1, holds nothing and is nobody's). */
static const json_t *outside_in(const json_t *v)
{
	if (!v || v->refcount == (size_t)-1)
		return NULL;
	if (!in_arena(&tl, v))
		return v;
	const json_t *found = NULL;
	if (json_is_object(v)) {
		json_t *o = (json_t *)(uintptr_t)v;
		for (void *it = json_object_iter(o); it && !found;
		     it = json_object_iter_next(o, it))
			found = outside_in(json_object_iter_value(it));
	} else if (json_is_array(v)) {
		size_t n = json_array_size(v);
		for (size_t i = 0; i < n && !found; i++)
			found = outside_in(json_array_get(v, i));
	}
	return found;
}

const json_t *kilt_json_arena_find_outside(const json_t *v)
{
	if (!v || !in_arena(&tl, v))
		return NULL;
	return outside_in(v);
}

void kilt_json_arena_release(json_t *v)
{
	if (!v || v->refcount == (size_t)-1)
		return;
	if (!in_arena(&tl, v) || tl.spilled) {
		/* jansson's own walk: what came from malloc is freed, references dropped */
		json_decref(v);
		return;
	}
#ifndef NDEBUG
	/* a reference to a value from outside would be lost with the arena (a leak, and a count
	 * that never comes down): the code that put it in the tree must put a copy instead */
	if (kilt_json_arena_find_outside(v))
		abort();
#endif
}
