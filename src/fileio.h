/* SPDX-License-Identifier: Apache-2.0 */
/* Files a user points kilt at: reading an input (a path or standard input) and writing a result
 * so that nothing is half-written or clobbered. Every command that writes files goes through
 * here. */
#ifndef KILT_FILEIO_H
#define KILT_FILEIO_H

#include <stdbool.h>
#include <stddef.h>

#include "kilt.h"

/* Reads `path` ("-": standard input) whole, up to `max` bytes. On failure `err` names the file
 * and the OS reason (-EFBIG when larger than `max`). `ret` is owned and NUL-terminated. */
int fileio_read(const char *path, size_t max, char **ret, size_t *ret_len, struct kilt_error *err);

/* True when `a` and `b` name the same existing file (links followed). "-" is never a file. */
bool fileio_same_file(const char *a, const char *b);

/* Where a result is written. How depends on what `path` is:
 *  - "-", /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: the open descriptor itself;
 *  - a device, FIFO, terminal or socket: written straight into it (never replaced);
 *  - a regular file or a new name: a temporary file beside it (created exclusively), renamed
 *    over it once complete. An existing file keeps its owner, group and mode (a new one gets
 *    0666 less the umask). A symbolic link is followed: its target is replaced, the link stays.
 *    Until then, SIGINT, SIGTERM and SIGHUP remove the temporary file before the process ends
 *    as the signal would have ended it (a signal ignored at start stays ignored).
 * One output at a time may be open with a temporary file. */
struct fileio_out;

/* True when a result written to `path` goes through a temporary file (a regular file or a new
 * name), false when it would go straight into a descriptor, device, FIFO or terminal. */
bool fileio_out_replaces(const char *path);
/* Prepares writing to `path` (see above). `err` names the path on failure. */
int fileio_out_open(const char *path, struct fileio_out **ret, struct kilt_error *err);
/* The descriptor to write the result into; borrowed. */
int fileio_out_fd(const struct fileio_out *out);
/* True when the result goes straight into the destination (no temporary file): a caller that
 * can fail halfway should hold the result and write it whole. */
bool fileio_out_direct(const struct fileio_out *out);
/* The destination's name for messages ("<stdout>" for "-"); borrowed. */
const char *fileio_out_name(const struct fileio_out *out);
/* The number of hard links of the regular file about to be replaced (0 when there is none).
 * Above 1, the other names keep the old content after fileio_out_commit: tell the user. */
unsigned long fileio_out_links(const struct fileio_out *out);

/* Finishes the output: `r` is the caller's result of writing (0, or a negative errno with `err`
 * already set). On success the result is in place (flushed to disk for a replaced file); on any
 * failure the destination is as it was and the temporary file is gone. Call once. */
int fileio_out_commit(struct fileio_out *out, int r, struct kilt_error *err);
/* Releases `out`; an uncommitted temporary file is removed. NULL is a no-op. */
void fileio_out_free(struct fileio_out *out);
static inline void fileio_out_freep(struct fileio_out **out)
{
	fileio_out_free(*out);
}

#endif
