/* SPDX-License-Identifier: Apache-2.0 */
/* Per-thread arenas for jansson's values: a server builds every value of one request from one
 * arena and releases it in one step when the answer is sent, instead of a malloc and a free for
 * each of thousands of nodes. Included by kilt.h.
 *
 * jansson's allocator is process-wide (json_set_alloc_funcs); kilt_json_arena_install() sets
 * one that serves a thread from its arena between kilt_json_arena_begin() and
 * kilt_json_arena_end(), and from malloc everywhere else (other threads, outside a request,
 * while suspended). Freeing a value works wherever it came from: memory of the thread's arena is
 * released with the arena, anything else goes back to free().
 *
 * What must outlive the request (a cache in a long-lived object, a value another thread keeps)
 * is made with the arena suspended. Under AddressSanitizer a released arena is poisoned, so a
 * value kept past its request is reported where it is next read. Two more rules while an arena
 * is active: json_dumps() returns arena memory that free() must not see (use kilt_json_dumps,
 * which allocates with malloc), and a value must not move to another thread. */
#ifndef KILT_JSON_ARENA_H
#define KILT_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Sets jansson's allocator to the arena's (process-wide, idempotent). Call before the threads
 * that use arenas start. Values allocated before stay valid and are freed with free(). */
void kilt_json_arena_install(void);
/* This thread's jansson allocations come from its arena until kilt_json_arena_end(). Aborts when
 * an arena is already active on the thread or the allocator is not installed. */
void kilt_json_arena_begin(void);
/* Releases every value allocated from this thread's arena since kilt_json_arena_begin() (they
 * must be unreachable by now), keeping some of its memory for the thread's next request. */
void kilt_json_arena_end(void);
/* Until kilt_json_arena_resume(), this thread allocates with malloc (values that outlive the
 * request). Returns whether an arena was active; pass that to kilt_json_arena_resume(). */
bool kilt_json_arena_suspend(void);
void kilt_json_arena_resume(bool was_active);
/* Lets go of v, a tree built in this thread's arena: nothing to do, the arena releases it at
 * once in kilt_json_arena_end(). That holds because such a tree has no reference to a value from
 * outside the arena (made before the request, while suspended, or kept by another thread): code
 * that puts one into a tree of the request puts an arena copy instead (json_deep_copy with the
 * arena active). Builds without NDEBUG check it and abort when one is reachable; see
 * kilt_json_arena_find_outside(). When the request went past the arena's limit (values from
 * malloc while active) or v is not the arena's, json_decref(v). NULL is fine. */
void kilt_json_arena_release(json_t *v);
/* The first value from outside the arena found in v's tree (through its containers of the
 * arena), or NULL when there is none or v itself is not the arena's. jansson's own constants
 * (true, false, null) are nobody's and never found. */
const json_t *kilt_json_arena_find_outside(const json_t *v);
/* Whether p is memory of this thread's arena (for tests). */
bool kilt_json_arena_holds(const void *p);
/* Bytes handed out by this thread's arena since kilt_json_arena_begin(). */
size_t kilt_json_arena_used(void);

#endif
