/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilt-wait: the idle entrypoint of kilt's agent sidecar, and the copier of kilt's agent files.
 *
 * Without arguments (or with any that do not start with --copy) it sleeps in sigwaitinfo (no CPU,
 * no timers) until SIGTERM or SIGINT and then exits 0; as PID 1 it also reaps whatever gets
 * reparented to it. Other arguments are ignored, so a command appended by the orchestrator is
 * harmless.
 *
 * `kilt-wait --copy SRC DEST [SRC DEST]...` copies the tree under each directory SRC into the
 * directory DEST that follows it (created when missing), pair after pair, and exits: 0 when everything was copied, 1 on the first failure (one
 * line on stderr naming the path and the reason), 2 on a usage error. On Kubernetes it is the
 * init container that fills an emptyDir from the agent image, which may hold nothing but the
 * agent's files and these static helpers: no shell, no cp. Directories, regular files and
 * symbolic links are copied with their permission bits (widened so that any user can read them,
 * and run or search those anyone could; set-user-ID and set-group-ID dropped) and modification
 * times; symbolic links are copied as links, never followed; ownership is kept
 * when the process may set it. Anything else (devices, FIFOs, sockets) is refused. A file that
 * is already in DEST is replaced, so the copy can run again after a restart. The walk is bounded
 * in depth, entries and bytes, and a DEST inside SRC is not copied into itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define COPY_MAX_DEPTH 64
#define COPY_MAX_ENTRIES 100000u
#define COPY_MAX_BYTES (16ull << 30)

static void reap(void)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0 || (pid < 0 && errno == EINTR))
			continue;
		break;
	}
}

static int idle(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Children that ended before the mask was set sent a SIGCHLD that nobody will see again. */
	reap();
	for (;;) {
		int sig = sigwaitinfo(&all, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			return 0;
		if (sig == SIGCHLD)
			reap();
	}
}

/* ---- copy mode ----------------------------------------------------------------------------- */

struct copy {
	dev_t dest_dev; /* DEST itself, so that a DEST inside SRC is skipped */
	ino_t dest_ino;
	unsigned long entries;
	unsigned long long bytes;
	bool set_owner; /* running as root: keep uid/gid where the kernel lets us */
	char path[PATH_MAX]; /* the source path being copied, for messages */
	char buf[65536];
};

/* One line on stderr; returns 1 (the exit status of a failed copy). */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	size_t len = (size_t)n < sizeof(msg) - 1 ? (size_t)n : sizeof(msg) - 2;
	msg[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, msg, len);
	(void)w;
	return 1;
}

static int fail_errno(const struct copy *c, const char *what, int e)
{
	if (e == EACCES) /* the image's files are not readable by the copier's user */
		return fail("kilt-wait: copy: %s: %s: %s (kilt-wait runs as uid %u, gid %u: the "
			    "agent image's files must be readable by that user)",
			    c->path, what, strerror(e), (unsigned)getuid(), (unsigned)getgid());
	return fail("kilt-wait: copy: %s: %s: %s", c->path, what, strerror(e));
}

/* The mode of a copy. The copies belong to the copier, not to the user the app containers run
 * as (any user; they mount the volume read-only): each is readable by everyone, and executable
 * (or searchable) by everyone when it is by anyone; set-user-ID and set-group-ID are dropped. */
static mode_t shared_mode(mode_t st_mode)
{
	mode_t m = (st_mode & 01777) | 0444;
	if (S_ISDIR(st_mode) || (m & 0111))
		m |= 0111;
	return m;
}

/* Appends "/name" to c->path; returns the former length to restore, or -1 when too long. */
static long path_push(struct copy *c, const char *name)
{
	size_t len = strlen(c->path), n = strlen(name);
	if (len + 1 + n >= sizeof(c->path))
		return -1;
	c->path[len] = '/';
	memcpy(c->path + len + 1, name, n + 1);
	return (long)len;
}

static void set_meta(const struct copy *c, int dirfd, const char *name, int fd,
		     const struct stat *st)
{
	/* Ownership first: chown clears set-ID bits, and a failure to keep it is not an error
	 * (a non-root init container, or root without CAP_CHOWN). */
	if (c->set_owner) {
		int r = fd >= 0 ? fchown(fd, st->st_uid, st->st_gid)
				: fchownat(dirfd, name, st->st_uid, st->st_gid,
					   AT_SYMLINK_NOFOLLOW);
		(void)r;
	}
	struct timespec times[2] = { st->st_atim, st->st_mtim };
	if (fd >= 0)
		(void)futimens(fd, times);
	else
		(void)utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW);
}

/* Removes what is at dirfd/name unless it is a directory (which is merged into). */
static int clear_slot(struct copy *c, int dirfd, const char *name, bool *ret_is_dir)
{
	struct stat st;
	*ret_is_dir = false;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return fail_errno(c, "cannot inspect the destination", errno);
	}
	if (S_ISDIR(st.st_mode)) {
		*ret_is_dir = true;
		return 0;
	}
	if (unlinkat(dirfd, name, 0) < 0)
		return fail_errno(c, "cannot replace the destination", errno);
	return 0;
}

static int copy_file(struct copy *c, int sdir, int ddir, const char *name, const struct stat *st)
{
	int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return fail_errno(c, "cannot open", errno);
	bool is_dir;
	if (clear_slot(c, ddir, name, &is_dir)) {
		close(in);
		return 1;
	}
	if (is_dir) {
		close(in);
		return fail("kilt-wait: copy: %s: a directory is in the way in the destination",
			    c->path);
	}
	int out = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = errno;
		close(in);
		return fail_errno(c, "cannot create in the destination", e);
	}
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, c->buf, sizeof(c->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail_errno(c, "read error", errno);
			break;
		}
		if (n == 0)
			break;
		c->bytes += (unsigned long long)n;
		if (c->bytes > COPY_MAX_BYTES) {
			rc = fail("kilt-wait: copy: %s: more than %llu bytes in all", c->path,
				  COPY_MAX_BYTES);
			break;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, c->buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = fail_errno(c, "write error", errno);
				break;
			}
			off += w;
		}
		if (rc)
			break;
	}
	if (rc == 0) {
		set_meta(c, ddir, name, out, st);
		if (fchmod(out, shared_mode(st->st_mode)) < 0)
			rc = fail_errno(c, "cannot set the mode", errno);
	}
	close(in);
	if (close(out) < 0 && rc == 0)
		rc = fail_errno(c, "write error", errno);
	return rc;
}

static int copy_link(struct copy *c, int sdir, int ddir, const char *name, const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(sdir, name, target, sizeof(target));
	if (n < 0)
		return fail_errno(c, "cannot read the link", errno);
	if ((size_t)n >= sizeof(target))
		return fail("kilt-wait: copy: %s: link target too long", c->path);
	target[n] = '\0';
	bool is_dir;
	if (clear_slot(c, ddir, name, &is_dir))
		return 1;
	if (is_dir)
		return fail("kilt-wait: copy: %s: a directory is in the way in the destination",
			    c->path);
	if (symlinkat(target, ddir, name) < 0)
		return fail_errno(c, "cannot create the link", errno);
	set_meta(c, ddir, name, -1, st);
	return 0;
}

static int copy_dir(struct copy *c, int sdir, int ddir, unsigned depth);

static int copy_subdir(struct copy *c, int sdir, int ddir, const char *name, const struct stat *st,
		       unsigned depth)
{
	if (st->st_dev == c->dest_dev && st->st_ino == c->dest_ino)
		return 0; /* DEST itself, inside SRC */
	if (depth >= COPY_MAX_DEPTH)
		return fail("kilt-wait: copy: %s: deeper than %d directories", c->path,
			    COPY_MAX_DEPTH);
	int in = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return fail_errno(c, "cannot open the directory", errno);
	bool is_dir;
	if (clear_slot(c, ddir, name, &is_dir)) {
		close(in);
		return 1;
	}
	if (!is_dir && mkdirat(ddir, name, 0700) < 0) {
		int e = errno;
		close(in);
		return fail_errno(c, "cannot create the directory", e);
	}
	int out = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		int e = errno;
		close(in);
		return fail_errno(c, "cannot open the destination directory", e);
	}
	/* Writable while it is filled; its own mode once it is full. */
	(void)fchmod(out, 0700);
	int rc = copy_dir(c, in, out, depth + 1); /* closes `in` */
	if (rc == 0) {
		set_meta(c, ddir, name, -1, st);
		if (fchmod(out, shared_mode(st->st_mode)) < 0)
			rc = fail_errno(c, "cannot set the mode", errno);
		struct timespec times[2] = { st->st_atim, st->st_mtim };
		(void)futimens(out, times);
	}
	close(out);
	return rc;
}

/* Copies the entries of the open directory `sdir` (consumed) into `ddir`. */
static int copy_dir(struct copy *c, int sdir, int ddir, unsigned depth)
{
	DIR *d = fdopendir(sdir);
	if (!d) {
		int e = errno;
		close(sdir);
		return fail_errno(c, "cannot read the directory", e);
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = fail_errno(c, "cannot read the directory", errno);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		long mark = path_push(c, de->d_name);
		if (mark < 0) {
			rc = fail("kilt-wait: copy: %s/%s: path too long", c->path, de->d_name);
			break;
		}
		if (++c->entries > COPY_MAX_ENTRIES) {
			rc = fail("kilt-wait: copy: %s: more than %u entries", c->path,
				  COPY_MAX_ENTRIES);
			break;
		}
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = fail_errno(c, "cannot inspect", errno);
		else if (S_ISDIR(st.st_mode))
			rc = copy_subdir(c, dirfd(d), ddir, de->d_name, &st, depth);
		else if (S_ISREG(st.st_mode))
			rc = copy_file(c, dirfd(d), ddir, de->d_name, &st);
		else if (S_ISLNK(st.st_mode))
			rc = copy_link(c, dirfd(d), ddir, de->d_name, &st);
		else
			rc = fail("kilt-wait: copy: %s: not a file, directory or symbolic link",
				  c->path);
		c->path[mark] = '\0';
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int copy_tree(const char *src, const char *dest)
{
	static struct copy c; /* large: keep it off the stack */
	memset(&c, 0, sizeof(c));
	c.set_owner = geteuid() == 0;
	size_t n = strlen(src);
	while (n > 1 && src[n - 1] == '/')
		n--; /* messages read SRC/name */
	if (n >= sizeof(c.path))
		return fail("kilt-wait: copy: source path too long");
	memcpy(c.path, src, n);
	c.path[n] = '\0';
	int in = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (in < 0)
		return fail_errno(&c, "cannot open the source directory", errno);
	if (mkdir(dest, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		close(in);
		return fail("kilt-wait: copy: %s: cannot create the destination: %s", dest,
			    strerror(e));
	}
	int out = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (out < 0 || fstat(out, &st) < 0) {
		int e = errno;
		close(in);
		if (out >= 0)
			close(out);
		return fail("kilt-wait: copy: %s: cannot open the destination directory: %s", dest,
			    strerror(e));
	}
	c.dest_dev = st.st_dev;
	c.dest_ino = st.st_ino;
	int rc = copy_dir(&c, in, out, 0);
	if (rc == 0 && fsync(out) < 0 && errno != EINVAL)
		rc = fail("kilt-wait: copy: %s: %s", dest, strerror(errno));
	close(out);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--copy") == 0) {
		bool ok = argc >= 4 && argc % 2 == 0;
		for (int i = 2; ok && i < argc; i++)
			ok = argv[i][0] != '\0';
		if (!ok) {
			fail("usage: kilt-wait --copy SRC DEST [SRC DEST]...");
			return 2;
		}
		for (int i = 2; i + 1 < argc; i += 2)
			if (copy_tree(argv[i], argv[i + 1]))
				return 1;
		return 0;
	}
	return idle();
}
