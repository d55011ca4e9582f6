/* SPDX-License-Identifier: Apache-2.0 */
/* Reading inputs and writing results for every command that writes files (fileio.h): a result
 * replaces a regular file through a temporary file and a rename, keeping the file's owner, group
 * and mode and leaving nothing behind on failure or on a terminating signal; devices, FIFOs,
 * terminals and open descriptors are written into, never replaced. */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fileio.h"
#include "util.h"

#define MAX_LINK_HOPS 40

struct fileio_out {
	char *name; /* owned: as the user wrote it, for messages */
	char *target; /* owned: the file replaced (links followed), NULL when direct */
	char *tmp; /* owned: the temporary file, NULL when direct or once renamed/removed */
	int fd;
	unsigned long links;
	bool committed;
};

/* ---- reading -------------------------------------------------------------------------------- */

int fileio_read(const char *path, size_t max, char **ret, size_t *ret_len, struct kilt_error *err)
{
	if (strcmp(path, "-") != 0) {
		int r = kilt_read_file(path, max, ret, ret_len);
		if (r == -EFBIG)
			return kilt_error_set(err, r, path, 0, 0, "larger than %zu MiB", max >> 20);
		if (r < 0)
			return kilt_error_set(err, r, path, 0, 0, "cannot read: %s", strerror(-r));
		return 0;
	}
	struct kbuf in;
	kbuf_init(&in, max);
	char chunk[65536];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			kbuf_done(&in);
			return kilt_error_set(err, -e, "<stdin>", 0, 0, "cannot read: %s",
					      strerror(e));
		}
		if (n == 0)
			break;
		if (kbuf_add(&in, chunk, (size_t)n) < 0) {
			kbuf_done(&in);
			return kilt_error_set(err, -EFBIG, "<stdin>", 0, 0, "larger than %zu MiB",
					      max >> 20);
		}
	}
	*ret_len = in.len;
	*ret = kbuf_steal(&in);
	return 0;
}

bool fileio_same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (strcmp(a, "-") == 0 || strcmp(b, "-") == 0)
		return false;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* ---- removing the temporary file on a terminating signal ------------------------------------ */

static const int cleanup_signals[] = { SIGINT, SIGTERM, SIGHUP };
static char armed_path[PATH_MAX];
static volatile sig_atomic_t armed;

static void on_signal(int sig)
{
	if (armed)
		(void)unlink(armed_path);
	armed = 0;
	/* end as the signal would have ended the process (exit status 128+sig for a shell) */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigemptyset(&dfl.sa_mask);
	(void)sigaction(sig, &dfl, NULL);
	(void)raise(sig); /* pending until this handler returns: sig is blocked here */
}

static void install_handlers(void)
{
	static bool installed;
	if (installed)
		return;
	installed = true;
	for (size_t i = 0; i < ARRAY_SIZE(cleanup_signals); i++) {
		struct sigaction old;
		if (sigaction(cleanup_signals[i], NULL, &old) < 0 || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue; /* ignored (nohup) or someone else's: leave it */
		struct sigaction sa = { .sa_handler = on_signal };
		sigemptyset(&sa.sa_mask);
		for (size_t j = 0; j < ARRAY_SIZE(cleanup_signals); j++)
			sigaddset(&sa.sa_mask, cleanup_signals[j]);
		(void)sigaction(cleanup_signals[i], &sa, NULL);
	}
}

static void block_signals(sigset_t *ret_old)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(cleanup_signals); i++)
		sigaddset(&set, cleanup_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, ret_old);
}

static void restore_signals(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Makes `path` the file removed on a signal; called with the signals blocked. */
static void arm(const char *path)
{
	size_t n = strlen(path);
	armed = 0;
	if (n < sizeof(armed_path)) {
		memcpy(armed_path, path, n + 1);
		armed = 1;
	}
}

/* ---- where the result goes ------------------------------------------------------------------ */

/* The descriptor named by /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N, or -1. */
static int named_descriptor(const char *path)
{
	if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0)
		return STDOUT_FILENO;
	if (strcmp(path, "/dev/stderr") == 0)
		return STDERR_FILENO;
	const char *num = NULL;
	if (strncmp(path, "/dev/fd/", 8) == 0)
		num = path + 8;
	else if (strncmp(path, "/proc/self/fd/", 14) == 0)
		num = path + 14;
	if (!num || *num < '0' || *num > '9')
		return -1;
	char *end = NULL;
	errno = 0;
	long n = strtol(num, &end, 10);
	if (errno || *end || n > INT_MAX)
		return -1;
	return (int)n;
}

/* Follows a chain of symbolic links that ends at a name that does not exist yet (a dangling
 * link): the file is created there. Owned result. */
static int follow_dangling(const char *path, char **ret)
{
	_cleanup_free_ char *cur = xstrdup(path);
	for (int hops = 0; hops < MAX_LINK_HOPS; hops++) {
		struct stat st;
		if (lstat(cur, &st) < 0) {
			if (errno != ENOENT)
				return -errno;
			*ret = steal_pointer(&cur);
			return 0;
		}
		if (!S_ISLNK(st.st_mode)) {
			*ret = steal_pointer(&cur);
			return 0;
		}
		char link[PATH_MAX];
		ssize_t n = readlink(cur, link, sizeof(link) - 1);
		if (n < 0)
			return -errno;
		link[n] = '\0';
		if (link[0] == '/') {
			free(cur);
			cur = xstrdup(link);
		} else {
			_cleanup_free_ char *dcopy = xstrdup(cur);
			char *next = xasprintf("%s/%s", dirname(dcopy), link);
			free(cur);
			cur = next;
		}
	}
	return -ELOOP;
}

static int open_direct(struct fileio_out *o, const char *path, int named, struct kilt_error *err)
{
	int fd = named >= 0 ? fcntl(named, F_DUPFD_CLOEXEC, 3)
			    : open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return kilt_error_set(err, -errno, o->name, 0, 0, "cannot open for writing: %s",
				      strerror(errno));
	o->fd = fd;
	return 0;
}

static int open_replace(struct fileio_out *o, const char *target, const struct stat *st,
			struct kilt_error *err)
{
	o->target = xstrdup(target);
	o->links = st ? (unsigned long)st->st_nlink : 0;
	o->tmp = xasprintf("%s.kilt-XXXXXX", target);
	install_handlers();
	/* signals wait until the new file is armed: none can end the process in between */
	sigset_t old;
	block_signals(&old);
	int fd = mkostemp(o->tmp, O_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		arm(o->tmp);
	restore_signals(&old);
	if (fd < 0) {
		free(steal_pointer(&o->tmp));
		return kilt_error_set(err, -e, o->name, 0, 0, "cannot create a temporary file: %s",
				      strerror(e));
	}
	o->fd = fd;
	return 0;
}

bool fileio_out_replaces(const char *path)
{
	struct stat st;
	if (named_descriptor(path) >= 0)
		return false;
	if (stat(path, &st) < 0)
		return errno == ENOENT;
	return S_ISREG(st.st_mode);
}

int fileio_out_open(const char *path, struct fileio_out **ret, struct kilt_error *err)
{
	struct fileio_out *o = xcalloc(1, sizeof(*o));
	o->fd = -1;
	o->name = xstrdup(strcmp(path, "-") == 0 ? "<stdout>" : path);
	int r;
	struct stat st;
	int named = named_descriptor(path);
	if (named >= 0) {
		r = open_direct(o, path, named, err);
	} else if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			r = kilt_error_set(err, -EISDIR, o->name, 0, 0, "is a directory");
		} else if (!S_ISREG(st.st_mode)) {
			r = open_direct(o, path, -1, err);
		} else {
			_cleanup_free_ char *real = realpath(path, NULL);
			r = real ? open_replace(o, real, &st, err)
				 : kilt_error_set(err, -errno, o->name, 0, 0, "%s",
						  strerror(errno));
		}
	} else if (errno == ENOENT) {
		_cleanup_free_ char *target = NULL;
		r = follow_dangling(path, &target);
		if (r < 0)
			r = kilt_error_set(err, r, o->name, 0, 0, "%s", strerror(-r));
		else
			r = open_replace(o, target, NULL, err);
	} else {
		r = kilt_error_set(err, -errno, o->name, 0, 0, "%s", strerror(errno));
	}
	if (r < 0) {
		fileio_out_free(o);
		return r;
	}
	*ret = o;
	return 0;
}

int fileio_out_fd(const struct fileio_out *out)
{
	return out->fd;
}

bool fileio_out_direct(const struct fileio_out *out)
{
	return !out->target;
}

const char *fileio_out_name(const struct fileio_out *out)
{
	return out->name;
}

unsigned long fileio_out_links(const struct fileio_out *out)
{
	return out->links;
}

/* Gives the temporary file what the replaced file had: owner and group (when they differ from
 * what creating the file gave it), then mode (after chown, which may clear set-id bits). A new
 * file gets 0666 less the umask, as open(2) would give it. */
static int keep_attributes(struct fileio_out *o, struct kilt_error *err)
{
	struct stat st, tst;
	if (fstat(o->fd, &tst) < 0)
		return kilt_error_set(err, -errno, o->name, 0, 0, "cannot write: %s",
				      strerror(errno));
	mode_t mode;
	if (stat(o->target, &st) == 0 && S_ISREG(st.st_mode)) {
		if ((st.st_uid != tst.st_uid || st.st_gid != tst.st_gid) &&
		    fchown(o->fd, st.st_uid, st.st_gid) < 0)
			return kilt_error_set(err, -errno, o->name, 0, 0,
					      "cannot keep the file's owner and group (%lu:%lu): "
					      "%s; nothing was written",
					      (unsigned long)st.st_uid, (unsigned long)st.st_gid,
					      strerror(errno));
		mode = st.st_mode & 07777;
	} else {
		mode_t mask = umask(0);
		umask(mask);
		mode = 0666 & ~mask;
	}
	if (fchmod(o->fd, mode) < 0)
		return kilt_error_set(err, -errno, o->name, 0, 0, "cannot write: %s",
				      strerror(errno));
	return 0;
}

int fileio_out_commit(struct fileio_out *o, int r, struct kilt_error *err)
{
	o->committed = true;
	if (!o->target) {
		int fd = o->fd;
		o->fd = -1;
		if (close(fd) < 0 && r == 0)
			r = kilt_error_set(err, -errno, o->name, 0, 0, "cannot write: %s",
					   strerror(errno));
		return r;
	}
	if (r == 0)
		r = keep_attributes(o, err);
	if (r == 0 && fsync(o->fd) < 0)
		r = kilt_error_set(err, -errno, o->name, 0, 0, "cannot write: %s", strerror(errno));
	int fd = o->fd;
	o->fd = -1;
	if (close(fd) < 0 && r == 0)
		r = kilt_error_set(err, -errno, o->name, 0, 0, "cannot write: %s", strerror(errno));
	sigset_t old;
	block_signals(&old);
	if (r == 0 && rename(o->tmp, o->target) < 0)
		r = kilt_error_set(err, -errno, o->name, 0, 0, "cannot write: %s", strerror(errno));
	if (r < 0)
		(void)unlink(o->tmp);
	free(steal_pointer(&o->tmp));
	armed = 0;
	restore_signals(&old);
	if (r < 0) {
		if (err && !err->file[0])
			snprintf(err->file, sizeof(err->file), "%s", o->name);
		return r;
	}
	_cleanup_free_ char *dcopy = xstrdup(o->target);
	_cleanup_close_ int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

void fileio_out_free(struct fileio_out *out)
{
	if (!out)
		return;
	if (out->fd >= 0)
		close(out->fd);
	if (out->tmp) {
		sigset_t old;
		block_signals(&old);
		(void)unlink(out->tmp);
		armed = 0;
		restore_signals(&old);
	}
	free(out->tmp);
	free(out->target);
	free(out->name);
	free(out);
}
