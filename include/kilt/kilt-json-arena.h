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
/* json_decref(v) for a tree built in this thread's arena: its values are not cleared or freed
 * one by one (the arena goes at once), only the references they hold to values outside the arena
 * are dropped, as json_decref would (the counts of its objects and arrays drop as json_decref's;
 * a string or number of the arena keeps its count: it holds nothing). Outside the arena,
 * json_decref itself. */
void kilt_json_arena_decref(json_t *v);
/* Whether p is memory of this thread's arena (for tests). */
bool kilt_json_arena_holds(const void *p);
/* Bytes handed out by this thread's arena since kilt_json_arena_begin(). */
size_t kilt_json_arena_used(void);

#endif
