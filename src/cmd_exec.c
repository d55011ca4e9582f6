/* SPDX-License-Identifier: Apache-2.0 */
/* kilt exec: applies a recipe's `patch` to pods that already run, through the local kubectl
 * (every kubeconfig auth plugin works). The plan, the script and the tar stream come from
 * lib/exec*.c; this file runs kubectl (an argv, never a shell), fetches URLs, reads files, runs
 * pods in parallel and reports. docs/exec.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "http_client.h"
#include "util.h"
#include "kilt-exec.h"

extern char **environ;

#define MAX_KUBECTL_OUTPUT ((size_t)64 << 20)
#define MAX_UPLOAD ((size_t)512 << 20)
#define MAX_PARALLEL 64
#define DEBUG_WAIT_MS 60000

struct exec_opts {
	const char *kubectl;
	const char *global[8]; /* --context=…, --kubeconfig=…, --as=… (owned strings) */
	size_t n_global;
	const char *namespace;
	bool all_namespaces;
	const char *selector;
	const char *container;
	const char *pods_file;
	bool dry_run;
	bool verify; /* enter containers the pod annotation shows as done, to check them */
	long parallel;
	long timeout_s;
	enum cli_output output;
	struct kilt_exec_options x;
	char **names; /* borrowed from argv */
	size_t n_names;
};

/* ---- running kubectl ----------------------------------------------------------------------- */

struct proc_result {
	int status; /* exit status, 128+n for a signal, -errno when it could not start */
	struct kbuf out, err;
};

static void proc_result_done(struct proc_result *r)
{
	kbuf_done(&r->out);
	kbuf_done(&r->err);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The environment of kubectl children: kilt's own, plus GOGC=400 unless the operator set GOGC.
 * kubectl is a Go program started for one request, and most of its work is its start-up: at
 * GOGC=400 its collector runs about a quarter as often as at Go's default (100) and the heap may
 * grow to 5x what is live; a kubectl exec took a sixth less CPU time here and 3 MiB more memory
 * (bench/exec/README.md). Built once, before any thread starts. */
static char **child_env;

static void child_env_init(void)
{
	size_t n = 0;
	bool have = false;
	for (char **e = environ; *e; e++, n++)
		if (strncmp(*e, "GOGC=", 5) == 0)
			have = true;
	child_env = xcalloc(n + 2, sizeof(*child_env));
	memcpy(child_env, environ, n * sizeof(*child_env));
	if (!have)
		child_env[n] = (char *)(uintptr_t) "GOGC=400";
}

/* Runs argv (argv[0] searched in PATH when it has no '/'), feeding `in` on its standard input and
 * collecting its output; kills it after timeout_ms (0: none). With `gate`, nothing is written
 * before the child printed it on standard output (the script says when it reads the tar), and
 * standard input is closed unwritten when the child ends first: a `kubectl exec -i` whose remote
 * command exits without reading its input can otherwise wait forever. Pipes are close-on-exec,
 * so the other workers' children never hold them open. */
static void run_proc(char *const *argv, const char *in, size_t in_len, const char *gate,
		     long timeout_ms, struct proc_result *r)
{
	kbuf_init(&r->out, MAX_KUBECTL_OUTPUT);
	kbuf_init(&r->err, 1 << 20);
	r->status = -EIO;
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 };
	if (pipe2(pin, O_CLOEXEC) < 0 || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		r->status = -errno;
		goto out;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	pid_t pid;
	int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, child_env ? child_env : environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	pin[0] = pout[1] = perr[1] = -1;
	if (e) {
		r->status = -e;
		goto out;
	}
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	size_t sent = 0;
	if (!in_len) {
		close(pin[1]);
		pin[1] = -1;
	}
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	bool killed = false, open_gate = !gate;
	while (pout[0] >= 0 || perr[0] >= 0) {
		if (!open_gate && r->out.len && strstr(r->out.data, gate))
			open_gate = true;
		if (!open_gate && pout[0] < 0 && pin[1] >= 0) {
			close(pin[1]);
			pin[1] = -1;
		}
		struct pollfd p[3] = { { .fd = pout[0], .events = POLLIN },
				       { .fd = perr[0], .events = POLLIN },
				       { .fd = open_gate ? pin[1] : -1, .events = POLLOUT } };
		int wait = -1;
		if (deadline) {
			int64_t left = deadline - now_ms();
			wait = left > 0 ? (int)(left > 1000 ? 1000 : left) : 0;
		}
		int n = poll(p, 3, wait);
		if (n < 0 && errno != EINTR)
			break;
		if (deadline && now_ms() >= deadline && !killed) {
			kill(pid, SIGKILL);
			killed = true;
			kbuf_printf(&r->err, "\nkilt: kubectl did not finish within %ld s\n",
				    timeout_ms / 1000);
		}
		for (int k = 0; k < 2; k++) {
			int *fd = k == 0 ? &pout[0] : &perr[0];
			if (*fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[65536];
			ssize_t got = read(*fd, buf, sizeof(buf));
			if (got > 0)
				(void)kbuf_add(k == 0 ? &r->out : &r->err, buf, (size_t)got);
			else if (got == 0 || errno != EINTR) {
				close(*fd);
				*fd = -1;
			}
		}
		if (pin[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(pin[1], in + sent, in_len - sent);
			if (w > 0)
				sent += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == in_len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
out:
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
}

/* kubectl [global options] ARGS...: `in` is the script's tar stream, sent once it is asked for */
static void kubectl(const struct exec_opts *o, const char *const *args, const char *in,
		    size_t in_len, struct proc_result *r)
{
	const char *argv[128];
	size_t n = 0;
	argv[n++] = o->kubectl;
	for (size_t i = 0; i < o->n_global; i++)
		argv[n++] = o->global[i];
	for (size_t i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	run_proc((char *const *)(uintptr_t)argv, in, in_len, in_len ? "kilt-exec: ready\n" : NULL,
		 o->timeout_s * 1000, r);
}

/* The per-pod sentence for a kubectl that could not run or failed. */
static void kubectl_failure(const struct exec_opts *o, const struct proc_result *r,
			    const char *strategy, char *buf, size_t size)
{
	if (r->status == -ENOENT)
		snprintf(buf, size, "kubectl not found ('%s'%s): install it or give --kubectl PATH",
			 o->kubectl, strchr(o->kubectl, '/') ? "" : " in PATH");
	else if (r->status < 0)
		snprintf(buf, size, "cannot run %s: %s", o->kubectl, strerror(-r->status));
	else
		kilt_exec_failure_explain(r->err.data ? r->err.data : "", r->err.len, strategy, buf,
					  size);
}

/* ---- the content to upload ------------------------------------------------------------------- */

/* url / file name -> content, read once for the run */
struct blob {
	char *key; /* owned */
	char *data; /* owned */
	size_t len;
};
struct blobs {
	struct blob *v;
	size_t n;
};

static const struct blob *blob_find(const struct blobs *b, const char *key)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->v[i].key, key) == 0)
			return &b->v[i];
	return NULL;
}

static void blob_add(struct blobs *b, const char *key, char *data, size_t len)
{
	b->v = xrealloc(b->v, (b->n + 1) * sizeof(*b->v));
	b->v[b->n++] = (struct blob){ xstrdup(key), data, len };
}

static void blobs_done(struct blobs *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].key);
		free(b->v[i].data);
	}
	free(b->v);
}

static int fetch_url(const char *url, const char *want, char **ret, size_t *ret_len,
		     struct kilt_error *err)
{
	/* The content is checked against its sha256 whatever the transport, so plain HTTP and
	 * the URL's own host are allowed */
	char host[300];
	http_url_host(url, host, sizeof(host));
	const char *insecure[1] = { host };
	const struct http_options ho = { .insecure = insecure, .n_insecure = 1 };
	struct http_client *c = NULL;
	int r = http_client_new(&ho, &c, err);
	if (r < 0)
		return r;
	const struct http_request req = {
		.url = url, .max_body = MAX_UPLOAD, .timeout_ms = 300000, .max_redirects = 5
	};
	struct http_response resp;
	r = http_send(c, &req, &resp, err);
	http_client_free(c);
	if (r < 0)
		return kilt_error_prefix(err, "%s", url);
	if (resp.status != 200) {
		http_response_done(&resp);
		return kilt_error_setf(err, -EIO, "%s: HTTP %ld", url, resp.status);
	}
	char hex[65];
	kilt_macro_sha256_hex(resp.body.data ? resp.body.data : "", resp.body.len, hex);
	if (strcmp(hex, want) != 0) {
		http_response_done(&resp);
		return kilt_error_setf(err, -EBADMSG,
				       "%s: sha256 is %s, the recipe says %s: refused, nothing was "
				       "uploaded",
				       url, hex, want);
	}
	*ret_len = resp.body.len;
	*ret = kbuf_steal(&resp.body);
	http_response_done(&resp);
	return 0;
}

/* Fetches every URL and reads every local file of the plans once, before anything is sent. */
static int gather(const json_t *plans, struct blobs *b, struct kilt_error *err)
{
	size_t i;
	const json_t *plan;
	json_array_foreach (plans, i, plan) {
		size_t j;
		const json_t *u;
		json_array_foreach (json_object_get(plan, "uploads"), j, u) {
			const char *url = json_string_value(json_object_get(u, "url"));
			const char *file = json_string_value(json_object_get(u, "file"));
			const char *key = url ? url : file;
			if (!key || blob_find(b, key))
				continue;
			char *data = NULL;
			size_t len = 0;
			int r;
			if (url) {
				r = fetch_url(url, json_string_value(json_object_get(u, "sha256")),
					      &data, &len, err);
			} else {
				r = fileio_read(file, MAX_UPLOAD, &data, &len, err);
				const char *want = json_string_value(json_object_get(u, "sha256"));
				char hex[65];
				if (r == 0 && want) {
					kilt_macro_sha256_hex(data, len, hex);
					if (strcmp(hex, want) != 0) {
						free(data);
						r = kilt_error_setf(
							err, -EBADMSG,
							"%s: sha256 is %s, the recipe says %s: "
							"refused, nothing was uploaded",
							file, hex, want);
					}
				}
			}
			if (r < 0)
				return r;
			blob_add(b, key, data, len);
		}
		const char *lf = json_string_value(
			json_object_get(json_object_get(plan, "launcher"), "file"));
		if (lf && !blob_find(b, lf)) {
			char *data = NULL;
			size_t len = 0;
			int r = fileio_read(lf, MAX_UPLOAD, &data, &len, err);
			if (r < 0)
				return r;
			blob_add(b, lf, data, len);
		}
	}
	return 0;
}

/* The architecture of a static kilt-launch from its ELF header: "amd64", "arm64". */
static int launcher_arch(const char *path, const char **ret, struct kilt_error *err)
{
	char *data = NULL;
	size_t len = 0;
	int r = fileio_read(path, MAX_UPLOAD, &data, &len, err);
	if (r < 0)
		return r;
	const unsigned char *d = (const unsigned char *)data;
	r = kilt_error_setf(err, -EINVAL, "--launcher %s: not a 64-bit little-endian ELF program",
			    path);
	if (len < 64 || memcmp(d, "\177ELF", 4) != 0 || d[4] != 2 || d[5] != 1)
		goto out;
	unsigned machine = d[18] | (unsigned)d[19] << 8;
	uint64_t phoff = 0;
	for (int i = 7; i >= 0; i--)
		phoff = phoff << 8 | d[32 + i];
	unsigned phentsize = d[54] | (unsigned)d[55] << 8, phnum = d[56] | (unsigned)d[57] << 8;
	for (unsigned i = 0; i < phnum; i++) {
		uint64_t at = phoff + (uint64_t)i * phentsize;
		if (phentsize < 4 || at + 4 > len)
			goto out;
		if ((d[at] | (unsigned)d[at + 1] << 8) == 3 /* PT_INTERP */) {
			r = kilt_error_setf(err, -EINVAL,
					    "--launcher %s: a dynamically linked program; the "
					    "container may lack its libraries: give a static "
					    "kilt-launch (docs/runtime.md, Building)",
					    path);
			goto out;
		}
	}
	if (machine == 62)
		*ret = "amd64";
	else if (machine == 183)
		*ret = "arm64";
	else {
		r = kilt_error_setf(
			err, -EINVAL,
			"--launcher %s: built for ELF machine %u, neither amd64 nor arm64", path,
			machine);
		goto out;
	}
	r = 0;
out:
	free(data);
	return r;
}

/* ---- one pod --------------------------------------------------------------------------------- */

enum outcome { OUT_PLANNED, OUT_APPLIED, OUT_UNCHANGED, OUT_FAILED, OUT_PARTIAL };
static const char *const outcome_names[] = { "planned", "applied", "unchanged", "failed",
					     "partial" };

struct unit {
	const json_t *pod; /* borrowed */
	char *container; /* owned */
	json_t *plan; /* owned; NULL when planning failed */
	enum outcome outcome;
	char *detail; /* owned */
	json_t *pids; /* owned */
	json_t *steps; /* owned (dry run) */
};

struct pod_work {
	const json_t *pod; /* borrowed */
	size_t first, n; /* its units */
	char *annotation; /* owned: the kilt.dev/exec value to write; NULL: nothing to write */
	char *instances; /* owned: the digests of its container instances that carry the recipe */
};

struct run {
	const struct exec_opts *o;
	const struct kilt_recipe *recipe;
	struct unit *units;
	size_t n_units;
	struct pod_work *pods;
	size_t n_pods;
	struct blobs blobs;
	pthread_mutex_t lock;
	size_t next, done;
	bool tty;
};

static void set_detail(struct unit *u, enum outcome out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_detail(struct unit *u, enum outcome out, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(u->detail);
	u->detail = xstrdup(buf);
	u->outcome = out;
}

static const char *pod_ns(const json_t *pod)
{
	return json_string_value(json_object_get(pod, "namespace"));
}
static const char *pod_name(const json_t *pod)
{
	return json_string_value(json_object_get(pod, "name"));
}

/* Adds the debug container unless it runs already, and waits until it runs. */
static int ensure_debug(struct run *run, struct unit *u, char *why, size_t size)
{
	const struct exec_opts *o = run->o;
	const json_t *dbg = json_object_get(u->plan, "debug");
	const char *dname = json_string_value(json_object_get(dbg, "name"));
	const char *ns = pod_ns(u->pod), *name = pod_name(u->pod);
	bool exists = false;
	size_t i;
	const json_t *e;
	json_array_foreach (json_object_get(u->pod, "ephemeral"), i, e) {
		if (strcmp(json_string_value(json_object_get(e, "name")), dname) != 0)
			continue;
		exists = true;
		if (json_is_true(json_object_get(e, "ended"))) {
			snprintf(why, size,
				 "the ephemeral container %s of an earlier run has ended, and "
				 "Kubernetes can neither restart nor remove it: recreate the pod, "
				 "or "
				 "use --strategy exec",
				 dname);
			return -1;
		}
	}
	struct proc_result r;
	if (!exists) {
		_cleanup_free_ char *image =
			xasprintf("--image=%s", json_string_value(json_object_get(dbg, "image")));
		_cleanup_free_ char *target = xasprintf("--target=%s", u->container);
		const char *args[] = { "debug", "-n",
				       ns,	name,
				       image,	"--image-pull-policy=IfNotPresent",
				       target,	"-c",
				       dname,	"--profile=general",
				       "--",	"/kilt/bin/kilt-wait",
				       NULL };
		kubectl(o, args, NULL, 0, &r);
		if (r.status != 0) {
			kubectl_failure(o, &r, "debug", why, size);
			proc_result_done(&r);
			return -1;
		}
		proc_result_done(&r);
	}
	int64_t end = now_ms() + DEBUG_WAIT_MS;
	for (;;) {
		const char *args[] = { "get", "pod", "-n", ns, name, "-o", "json", NULL };
		kubectl(o, args, NULL, 0, &r);
		if (r.status != 0) {
			kubectl_failure(o, &r, "debug", why, size);
			proc_result_done(&r);
			return -1;
		}
		json_auto_t *pods = NULL;
		struct kilt_error err = { 0 };
		int pr = kilt_exec_pods_parse(r.out.data ? r.out.data : "", r.out.len, &pods, NULL,
					      &err);
		proc_result_done(&r);
		if (pr < 0) {
			snprintf(why, size, "%s", err.msg);
			return -1;
		}
		json_array_foreach (json_object_get(json_array_get(pods, 0), "ephemeral"), i, e) {
			if (strcmp(json_string_value(json_object_get(e, "name")), dname) != 0)
				continue;
			if (json_is_true(json_object_get(e, "running")))
				return 0;
			if (json_is_true(json_object_get(e, "ended"))) {
				snprintf(why, size,
					 "the ephemeral container %s ended at once (does image %s "
					 "hold /kilt/bin/kilt-wait?); Kubernetes cannot remove it",
					 dname, json_string_value(json_object_get(dbg, "image")));
				return -1;
			}
		}
		if (now_ms() > end) {
			snprintf(why, size, "the ephemeral container %s did not start within %d s",
				 dname, DEBUG_WAIT_MS / 1000);
			return -1;
		}
		usleep(200000);
	}
}

static void apply_unit(struct run *run, struct unit *u)
{
	const struct exec_opts *o = run->o;
	const json_t *plan = u->plan;
	const char *strategy = json_string_value(json_object_get(plan, "strategy"));
	bool debug = strcmp(strategy, "debug") == 0;
	char why[1024];
	if (debug && ensure_debug(run, u, why, sizeof(why)) < 0) {
		set_detail(u, OUT_FAILED, "%s", why);
		return;
	}
	/* the tar stream: uploads as "0", "1"…, the launcher as "L" */
	const json_t *uploads = json_object_get(plan, "uploads");
	size_t n = json_array_size(uploads);
	struct kilt_tar_file *files = xcalloc(n + 1, sizeof(*files));
	char(*names)[24] = xcalloc(n + 1, sizeof(*names));
	char **decoded = xcalloc(n + 1, sizeof(*decoded));
	size_t nf = 0;
	size_t i;
	const json_t *up;
	json_array_foreach (uploads, i, up) {
		const char *key = json_string_value(json_object_get(up, "url"));
		if (!key)
			key = json_string_value(json_object_get(up, "file"));
		snprintf(names[i], sizeof(names[i]), "%zu", i);
		files[nf] = (struct kilt_tar_file){ .name = names[i], .mode = 0600 };
		if (key) {
			const struct blob *b = blob_find(&run->blobs, key);
			files[nf].data = b->data;
			files[nf].len = b->len;
		} else {
			/* the recipe checked it is base64 */
			const char *p = json_string_value(json_object_get(up, "payload"));
			size_t dl = 0;
			if (kilt_base64_decode(p, strlen(p), &decoded[i], &dl, NULL) < 0)
				decoded[i] = NULL;
			files[nf].data = decoded[i];
			files[nf].len = decoded[i] ? dl : 0;
		}
		nf++;
	}
	const char *lf =
		json_string_value(json_object_get(json_object_get(plan, "launcher"), "file"));
	if (lf) {
		const struct blob *b = blob_find(&run->blobs, lf);
		files[nf++] = (struct kilt_tar_file){
			.name = "L", .mode = 0700, .data = b->data, .len = b->len
		};
	}
	char *tar = NULL;
	size_t tar_len = 0;
	struct kilt_error err = { 0 };
	int tr = kilt_tar_build(files, nf, &tar, &tar_len, &err);
	for (size_t k = 0; k < n; k++)
		free(decoded[k]);
	free(decoded);
	free(names);
	free(files);
	if (tr < 0) {
		set_detail(u, OUT_FAILED, "%s", err.msg);
		return;
	}
	_cleanup_free_ char *script = kilt_exec_script(plan);
	const char *c =
		debug ? json_string_value(json_object_get(json_object_get(plan, "debug"), "name"))
		      : u->container;
	const char *args[] = { "exec", "-i", "-n", pod_ns(u->pod), pod_name(u->pod), "-c", c,
			       "--",   "sh", "-c", script,	   "kilt-exec",	     NULL };
	struct proc_result r;
	kubectl(o, args, tar, tar_len, &r);
	free(tar);
	json_auto_t *res = NULL;
	kilt_exec_result_parse(r.out.data ? r.out.data : "", r.out.len, &res, NULL);
	const char *state = json_string_value(json_object_get(res, "state"));
	if (strcmp(state, "done") == 0 && r.status == 0) {
		u->pids = json_incref(json_object_get(res, "pids"));
		size_t np = json_array_size(u->pids);
		set_detail(u, OUT_APPLIED, "%zu file(s), %zu program(s)%s%s", n, np,
			   json_array_size(json_object_get(res, "stopped"))
				   ? "; replaced another recipe"
				   : "",
			   json_is_true(json_object_get(res, "stale"))
				   ? "; its programs had stopped, started again"
				   : "");
	} else if (strcmp(state, "unchanged") == 0 && r.status == 0) {
		set_detail(u, OUT_UNCHANGED, "recipe %s already applied",
			   json_string_value(json_object_get(res, "recipe")));
	} else if (strcmp(state, "other") == 0) {
		set_detail(u, OUT_FAILED,
			   "the container carries another recipe (%s, %.12s): left alone; --force "
			   "replaces it",
			   json_string_value(json_object_get(res, "recipe")),
			   json_string_value(json_object_get(res, "hash")));
	} else if (strcmp(state, "failed") == 0) {
		const char *step = json_string_value(json_object_get(res, "step"));
		const char *detail = json_string_value(json_object_get(res, "detail"));
		char extra[400];
		kilt_exec_failure_explain(detail, strlen(detail), strategy, extra, sizeof(extra));
		bool rolled = json_is_true(json_object_get(res, "rolled_back"));
		set_detail(
			u, rolled ? OUT_FAILED : OUT_PARTIAL, "%s failed: %s%s", step, extra,
			rolled ? " (rolled back: nothing of this recipe is left)"
			       : " (partial: the files placed so far are still there, no marker)");
	} else if (json_is_true(json_object_get(res, "started"))) {
		/* the session ended while the script worked: the pod vanished, the connection broke */
		kubectl_failure(o, &r, strategy, why, sizeof(why));
		set_detail(u, OUT_PARTIAL,
			   "%s (partial: ended while installing; some files may be in place, no "
			   "marker was written, so the next run installs again)",
			   why);
	} else {
		kubectl_failure(o, &r, strategy, why, sizeof(why));
		set_detail(u, OUT_FAILED, "%s", why);
	}
	proc_result_done(&r);
}

/* The kilt.dev/exec value a pod needs for its applied or unchanged containers and the digests
 * of those container instances, when the pod's annotations do not say so already. */
static void annotation_of(struct run *run, struct pod_work *pw)
{
	const json_t *ann = json_object_get(pw->pod, "annotations");
	const char *old = json_string_value(json_object_get(ann, "kilt.dev/exec"));
	const char *old_list = json_string_value(json_object_get(ann, KILT_EXEC_INSTANCES));
	char *value = old ? xstrdup(old) : NULL;
	struct kbuf list;
	kbuf_init(&list, 1 << 16);
	bool change = false;
	for (size_t i = pw->first; i < pw->first + pw->n; i++) {
		struct unit *u = &run->units[i];
		if (u->outcome != OUT_APPLIED && u->outcome != OUT_UNCHANGED)
			continue;
		char digest[17];
		if (kilt_exec_instance_digest(pw->pod, u->plan, digest)) {
			(void)kbuf_printf(&list, "%s%s", list.len ? " " : "", digest);
			if (!kilt_exec_instances_has(old_list, digest))
				change = true;
		}
		_cleanup_free_ char *have = kilt_exec_annotation_get(value, u->container);
		_cleanup_free_ char *want = kilt_exec_annotation_value(u->plan);
		if (have && strcmp(have, want) == 0)
			continue;
		char *nv = kilt_exec_annotation(value, u->container, want);
		free(value);
		value = nv;
		change = true;
	}
	if (change) {
		pw->annotation = value;
		pw->instances = list.len ? kbuf_steal(&list) : NULL;
	} else {
		free(value);
	}
	kbuf_done(&list);
}

static void annotation_failed(struct run *run, struct pod_work *pw, const char *why)
{
	for (size_t i = pw->first; i < pw->first + pw->n; i++) {
		struct unit *u = &run->units[i];
		if (u->outcome == OUT_APPLIED || u->outcome == OUT_UNCHANGED) {
			char *d = xasprintf("%s; marked in the container, but the pod annotation "
					    "was not written: %s",
					    u->detail, why);
			free(u->detail);
			u->detail = d;
			u->outcome = OUT_PARTIAL;
		}
	}
}

/* One `kubectl annotate` writes the annotations of up to ANNOTATE_BATCH pods of a namespace that
 * get the same kilt.dev/exec value. kubectl's client allows a burst of 10 requests, then 5 a
 * second, and annotating a pod takes two (GET, PATCH): one kubectl annotating 16 pods took 4.5 s,
 * mostly waiting for that limit (bench/exec/README.md), while 5 pods fit in the burst. */
#define ANNOTATE_BATCH 5
struct annotate_batch {
	struct pod_work *pods[ANNOTATE_BATCH]; /* borrowed */
	size_t n;
};

static void annotate_batch(struct run *run, const struct annotate_batch *b)
{
	const struct pod_work *lead = b->pods[0];
	/* the pods of one call share one kilt.dev/exec-instances value too: the digests of all
	 * their container instances (each digest names its own pod's uid) */
	struct kbuf list;
	kbuf_init(&list, (size_t)1 << 20);
	for (size_t j = 0; j < b->n; j++)
		if (b->pods[j]->instances)
			(void)kbuf_printf(&list, "%s%s", list.len ? " " : "",
					  b->pods[j]->instances);
	_cleanup_free_ char *kv = xasprintf("kilt.dev/exec=%s", lead->annotation);
	_cleanup_free_ char *iv =
		list.len ? xasprintf("%s=%s", KILT_EXEC_INSTANCES, list.data) : NULL;
	kbuf_done(&list);
	const char *args[ANNOTATE_BATCH + 9];
	size_t na = 0;
	args[na++] = "annotate";
	args[na++] = "--overwrite";
	args[na++] = "-n";
	args[na++] = pod_ns(lead->pod);
	args[na++] = "pod";
	for (size_t j = 0; j < b->n; j++)
		args[na++] = pod_name(b->pods[j]->pod);
	args[na++] = kv;
	if (iv)
		args[na++] = iv;
	args[na] = NULL;
	struct proc_result r;
	kubectl(run->o, args, NULL, 0, &r);
	if (r.status != 0) {
		char why[600];
		kubectl_failure(run->o, &r, NULL, why, sizeof(why));
		/* kubectl names the pods it could not annotate; without a name, all failed */
		size_t named = 0;
		for (size_t j = 0; j < b->n; j++) {
			_cleanup_free_ char *q = xasprintf("\"%s\"", pod_name(b->pods[j]->pod));
			if (r.err.len && strstr(r.err.data, q)) {
				annotation_failed(run, b->pods[j], why);
				named++;
			}
		}
		for (size_t j = 0; !named && j < b->n; j++)
			annotation_failed(run, b->pods[j], why);
	}
	proc_result_done(&r);
}

struct annotate_work {
	struct run *run;
	struct annotate_batch *batches;
	size_t n, next;
};

static void *annotator(void *arg)
{
	struct annotate_work *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->run->lock);
		size_t k = w->next++;
		pthread_mutex_unlock(&w->run->lock);
		if (k >= w->n)
			return NULL;
		annotate_batch(w->run, &w->batches[k]);
	}
}

/* Writes the annotations once every pod is done, the batches --parallel at a time. */
static void annotate_all(struct run *run)
{
	struct annotate_work w = { .run = run };
	w.batches = xcalloc(run->n_pods + 1, sizeof(*w.batches));
	bool *taken = xcalloc(run->n_pods + 1, sizeof(*taken));
	for (size_t k = 0; k < run->n_pods; k++) {
		struct pod_work *lead = &run->pods[k];
		if (!lead->annotation || taken[k])
			continue;
		struct annotate_batch *b = &w.batches[w.n++];
		for (size_t j = k; j < run->n_pods && b->n < ANNOTATE_BATCH; j++) {
			struct pod_work *pw = &run->pods[j];
			if (!taken[j] && pw->annotation &&
			    strcmp(pw->annotation, lead->annotation) == 0 &&
			    strcmp(pod_ns(pw->pod), pod_ns(lead->pod)) == 0) {
				b->pods[b->n++] = pw;
				taken[j] = true;
			}
		}
	}
	size_t nt = (size_t)run->o->parallel < w.n ? (size_t)run->o->parallel : w.n;
	pthread_t th[MAX_PARALLEL];
	size_t started = 0;
	for (size_t t = 0; t < nt; t++)
		if (pthread_create(&th[t], NULL, annotator, &w) == 0)
			started++;
	if (!started)
		annotator(&w);
	for (size_t t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	free(taken);
	free(w.batches);
}

static void progress(struct run *run)
{
	if (!run->tty)
		return;
	size_t width = 30, fill = run->n_pods ? run->done * width / run->n_pods : width;
	char bar[64];
	for (size_t i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';
	fprintf(stderr, "\r[%s] %zu/%zu pods", bar, run->done, run->n_pods);
	if (run->done == run->n_pods)
		fputs("\n", stderr);
	fflush(stderr);
}

static void *worker(void *arg)
{
	struct run *run = arg;
	for (;;) {
		pthread_mutex_lock(&run->lock);
		size_t k = run->next++;
		pthread_mutex_unlock(&run->lock);
		if (k >= run->n_pods)
			return NULL;
		struct pod_work *pw = &run->pods[k];
		for (size_t i = pw->first; i < pw->first + pw->n; i++)
			if (run->units[i].plan && run->units[i].outcome == OUT_PLANNED &&
			    !run->o->dry_run)
				apply_unit(run, &run->units[i]);
		if (!run->o->dry_run)
			annotation_of(run, pw);
		pthread_mutex_lock(&run->lock);
		run->done++;
		if (run->tty) {
			progress(run);
		} else if (run->o->output == CLI_OUTPUT_TEXT && !run->o->dry_run) {
			for (size_t i = pw->first; i < pw->first + pw->n; i++) {
				struct unit *u = &run->units[i];
				fprintf(stderr, "kilt exec: %s/%s %s: %s: %s\n", pod_ns(u->pod),
					pod_name(u->pod), u->container, outcome_names[u->outcome],
					u->detail);
			}
		}
		pthread_mutex_unlock(&run->lock);
	}
}

/* ---- the command ----------------------------------------------------------------------------- */

static void help(FILE *out)
{
	fputs("Usage: kilt exec -r RECIPE [-n NAMESPACE | -A] [-l SELECTOR] [POD...] [-c "
	      "CONTAINER]\n"
	      "                 [options]\n"
	      "\n"
	      "Applies the recipe's patch section to pods that already run, through kubectl: each\n"
	      "upload is put into the container (a URL is fetched once here and checked against\n"
	      "its sha256 before anything is sent), each background program is started detached\n"
	      "through kilt-launch, and a marker (a file in the container and the pod annotation\n"
	      "kilt.dev/exec) makes a second run a no-op. Also installable as the kubectl plugin\n"
	      "kubectl-kilt: `kubectl kilt exec ...` (docs/exec.md).\n"
	      "\n"
	      "Selecting pods (as kubectl does):\n"
	      "  -n, --namespace NS         the namespace (default: the kubeconfig's)\n"
	      "  -A, --all-namespaces       every namespace\n"
	      "  -l, --selector SELECTOR    pods whose labels match (kubectl's syntax)\n"
	      "  POD...                     these pods (not with -A or -l)\n"
	      "  -c, --container NAME       only this container (default: every container)\n"
	      "      --pods FILE            read the pods from FILE (kubectl get pods -o json) "
	      "instead\n"
	      "                             of asking kubectl; only with --dry-run\n"
	      "\n"
	      "What to apply:\n"
	      "  -r, --recipe FILE          the recipe (required); only its patch section is used\n"
	      "  -s, --set KEY=VALUE        a recipe parameter (config.KEY), repeatable\n"
	      "      --strategy exec|debug  exec (default): kubectl exec into the container, "
	      "which\n"
	      "                             needs sh and tar there; debug: an ephemeral container\n"
	      "                             from --debug-image sharing the container's processes,\n"
	      "                             writing through /proc/1/root (scratch, distroless);\n"
	      "                             Kubernetes cannot remove an ephemeral container\n"
	      "      --debug-image IMAGE    the debug strategy's image: sh, tar, and\n"
	      "                             /kilt/bin/kilt-launch and kilt-wait for the node's\n"
	      "                             architecture\n"
	      "      --launcher FILE        a static kilt-launch to upload (exec strategy), its\n"
	      "                             architecture read from the file; repeat for amd64 and\n"
	      "                             arm64\n"
	      "      --arch ARCH            the containers' architecture (default: their node's)\n"
	      "      --dir DIR              kilt's files in the container: launcher, marker, logs\n"
	      "                             (default /kilt)\n"
	      "      --force                replace another recipe applied earlier (its programs\n"
	      "                             are stopped)\n"
	      "      --verify               enter every container, also those the pod annotation\n"
	      "                             shows got the recipe in their present instance, to\n"
	      "                             check its marker and that its programs run\n"
	      "\n"
	      "Running:\n"
	      "      --dry-run              print every step for every container; change nothing\n"
	      "      --parallel N           pods at once (default 4, at most 64)\n"
	      "      --timeout SECONDS      limit of each kubectl call (default 300)\n"
	      "  -o, --output text|json     the summary table (default) or JSON on stdout\n"
	      "      --kubectl PATH         the kubectl to run (default: kubectl in PATH)\n"
	      "      --context NAME, --kubeconfig FILE, --as USER\n"
	      "                             passed to kubectl\n"
	      "  -h, --help                 this help\n"
	      "\n"
	      "Exit status: 0 every container applied or unchanged (or planned), 1 any failed or\n"
	      "partial, 2 usage error.\n",
	      out);
}

static int parse_long_arg(const char *name, const char *s, long min, long max, long *ret)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !end || *end || end == s || v < min || v > max)
		return cli_usage_error("exec", "%s: expected %ld to %ld, not '%s'", name, min, max,
				       s);
	*ret = v;
	return 0;
}

/* `kubectl get nodes`, run beside `kubectl get pods` (each is a kubectl process of its own). */
struct nodes_job {
	const struct exec_opts *o;
	struct proc_result r;
};

static void *get_nodes(void *arg)
{
	struct nodes_job *j = arg;
	const char *nargs[] = { "get", "nodes", "-o", "json", NULL };
	kubectl(j->o, nargs, NULL, 0, &j->r);
	return NULL;
}

/* The pods: from --pods, or kubectl get pods (and nodes). Named pods kubectl did not find are
 * added to `missing`. */
static int list_pods(struct exec_opts *o, json_t **ret_pods, json_t **ret_nodes, json_t *missing)
{
	struct kilt_error err = { 0 };
	if (o->pods_file) {
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		if (fileio_read(o->pods_file, MAX_KUBECTL_OUTPUT, &text, &len, &err) < 0 ||
		    kilt_exec_pods_parse(text, len, ret_pods, ret_nodes, &err) < 0) {
			kilt_error_prefix(&err, "--pods %s", o->pods_file);
			cli_report(&err);
			return EXIT_ERROR;
		}
		/* select as kubectl would have: the namespace, the names */
		json_t *kept = json_array();
		size_t k;
		const json_t *p;
		json_array_foreach (*ret_pods, k, p) {
			bool ok = !o->namespace || strcmp(pod_ns(p), o->namespace) == 0;
			if (ok && o->n_names) {
				ok = false;
				for (size_t i = 0; i < o->n_names; i++)
					if (strcmp(pod_name(p), o->names[i]) == 0)
						ok = true;
			}
			if (ok)
				json_array_append(kept, (json_t *)(uintptr_t)p);
		}
		for (size_t i = 0; i < o->n_names; i++) {
			bool found = false;
			json_array_foreach (kept, k, p) {
				if (strcmp(pod_name(p), o->names[i]) == 0)
					found = true;
			}
			if (!found)
				json_array_append_new(missing,
						      json_pack("{s:s, s:s}", "pod", o->names[i],
								"why", "not in the --pods file"));
		}
		json_decref(*ret_pods);
		*ret_pods = kept;
		return 0;
	}
	const char *args[64];
	size_t n = 0;
	args[n++] = "get";
	args[n++] = "pods";
	args[n++] = "-o";
	args[n++] = "json";
	if (o->all_namespaces)
		args[n++] = "--all-namespaces";
	else if (o->namespace) {
		args[n++] = "-n";
		args[n++] = o->namespace;
	}
	if (o->selector) {
		args[n++] = "-l";
		args[n++] = o->selector;
	}
	for (size_t i = 0; i < o->n_names && n < ARRAY_SIZE(args) - 1; i++)
		args[n++] = o->names[i];
	args[n] = NULL;
	/* the nodes say each pod's architecture, unless --arch does */
	struct nodes_job nj = { .o = o };
	pthread_t nt;
	bool nodes_asked = !o->x.arch && pthread_create(&nt, NULL, get_nodes, &nj) == 0;
	struct proc_result r;
	kubectl(o, args, NULL, 0, &r);
	int rc = 0;
	if (r.status < 0 || (r.status != 0 && !r.out.len)) {
		char why[1024];
		kubectl_failure(o, &r, NULL, why, sizeof(why));
		fprintf(stderr, "kilt exec: cannot list the pods: %s\n", why);
		rc = EXIT_ERROR;
	} else if (kilt_exec_pods_parse(r.out.data, r.out.len, ret_pods, NULL, &err) < 0) {
		cli_report(&err);
		rc = EXIT_ERROR;
	}
	if (rc) {
		proc_result_done(&r);
		if (nodes_asked) {
			pthread_join(nt, NULL);
			proc_result_done(&nj.r);
		}
		return rc;
	}
	for (size_t i = 0; i < o->n_names; i++) {
		bool found = false;
		size_t k;
		const json_t *p;
		json_array_foreach (*ret_pods, k, p) {
			if (strcmp(pod_name(p), o->names[i]) == 0)
				found = true;
		}
		if (!found) {
			char why[600];
			kilt_exec_failure_explain(r.err.data ? r.err.data : "", r.err.len, NULL,
						  why, sizeof(why));
			json_array_append_new(
				missing, json_pack("{s:s, s:s}", "pod", o->names[i], "why", why));
		}
	}
	proc_result_done(&r);
	*ret_nodes = json_object();
	if (!nodes_asked)
		return 0;
	pthread_join(nt, NULL);
	json_auto_t *nodes = NULL;
	if (nj.r.status == 0 && kilt_exec_pods_parse(nj.r.out.data ? nj.r.out.data : "",
						     nj.r.out.len, NULL, &nodes, &err) == 0) {
		json_decref(*ret_nodes);
		*ret_nodes = steal_pointer(&nodes);
	}
	/* unreadable nodes: the plans that need an architecture say so (give --arch) */
	proc_result_done(&nj.r);
	return 0;
}

static void print_table(const struct run *run, const json_t *missing)
{
	size_t wp = 3, wc = 9;
	for (size_t i = 0; i < run->n_units; i++) {
		const struct unit *u = &run->units[i];
		size_t l = strlen(pod_ns(u->pod)) + 1 + strlen(pod_name(u->pod));
		if (l > wp)
			wp = l;
		if (strlen(u->container) > wc)
			wc = strlen(u->container);
	}
	printf("%-*s  %-*s  %-8s  %-9s  %s\n", (int)wp, "POD", (int)wc, "CONTAINER", "STRATEGY",
	       "RESULT", "DETAIL");
	for (size_t i = 0; i < run->n_units; i++) {
		const struct unit *u = &run->units[i];
		char pod[600];
		snprintf(pod, sizeof(pod), "%s/%s", pod_ns(u->pod), pod_name(u->pod));
		printf("%-*s  %-*s  %-8s  %-9s  %s\n", (int)wp, pod, (int)wc, u->container,
		       run->o->x.strategy == KILT_EXEC_DEBUG ? "debug" : "exec",
		       outcome_names[u->outcome], u->detail ? u->detail : "");
	}
	size_t i;
	const json_t *m;
	json_array_foreach (missing, i, m) {
		printf("%-*s  %-*s  %-8s  %-9s  %s\n", (int)wp,
		       json_string_value(json_object_get(m, "pod")), (int)wc, "-",
		       run->o->x.strategy == KILT_EXEC_DEBUG ? "debug" : "exec", "failed",
		       json_string_value(json_object_get(m, "why")));
	}
}

static json_t *result_json(const struct run *run, const json_t *missing)
{
	json_t *list = json_array();
	size_t counts[5] = { 0 };
	for (size_t i = 0; i < run->n_units; i++) {
		const struct unit *u = &run->units[i];
		counts[u->outcome]++;
		json_t *o = json_pack(
			"{s:s, s:s, s:s, s:s, s:s, s:s}", "namespace", pod_ns(u->pod), "pod",
			pod_name(u->pod), "container", u->container, "strategy",
			run->o->x.strategy == KILT_EXEC_DEBUG ? "debug" : "exec", "result",
			outcome_names[u->outcome], "detail", u->detail ? u->detail : "");
		if (u->pids)
			json_object_set(o, "pids", u->pids);
		if (u->steps) {
			json_object_set(o, "steps", u->steps);
			/* exactly what would run in the container (sh -c SCRIPT) */
			char *script = kilt_exec_script(u->plan);
			json_object_set_new(o, "script", json_string(script));
			free(script);
		}
		if (u->plan)
			json_object_set(o, "recipe", json_object_get(u->plan, "recipe"));
		json_array_append_new(list, o);
	}
	size_t i;
	const json_t *m;
	json_array_foreach (missing, i, m) {
		counts[OUT_FAILED]++;
		json_array_append_new(list,
				      json_pack("{s:O, s:s, s:s}", "pod", json_object_get(m, "pod"),
						"result", "failed", "detail",
						json_string_value(json_object_get(m, "why"))));
	}
	json_t *out = json_pack("{s:o}", "containers", list);
	for (size_t k = 0; k < 5; k++)
		json_object_set_new(out, outcome_names[k], json_integer((json_int_t)counts[k]));
	return out;
}

static int run_exec(struct exec_opts *o, const char *recipe_path, const json_t *config)
{
	int rc = EXIT_ERROR;
	struct kilt_error err = { 0 };
	struct kilt_recipe *recipe = NULL;
	if (kilt_recipe_load_file(recipe_path, &recipe, &err) < 0 ||
	    kilt_recipe_check_config(recipe, config, &err) < 0) {
		cli_report(&err);
		kilt_recipe_free(recipe);
		return EXIT_ERROR;
	}
	/* a kubectl that ends early must not end kilt with it */
	signal(SIGPIPE, SIG_IGN);
	child_env_init();

	json_auto_t *pods = NULL, *nodes = NULL;
	json_auto_t *missing = json_array();
	int lr = list_pods(o, &pods, &nodes, missing);
	if (lr) {
		kilt_recipe_free(recipe);
		return lr;
	}

	/* plan every container first: nothing is sent before every plan is known and every
	 * download checked */
	struct run run = { .o = o, .recipe = recipe };
	pthread_mutex_init(&run.lock, NULL);
	size_t cap = 0;
	size_t i;
	const json_t *pod;
	run.pods = xcalloc(json_array_size(pods) + 1, sizeof(*run.pods));
	json_auto_t *plans = json_array();
	json_array_foreach (pods, i, pod) {
		struct pod_work *pw = &run.pods[run.n_pods++];
		pw->pod = pod;
		pw->first = run.n_units;
		size_t k;
		const json_t *cts = json_object_get(pod, "containers");
		size_t nc = o->container ? 1 : json_array_size(cts);
		for (k = 0; k < nc; k++) {
			const char *cn = o->container ? o->container
						      : json_string_value(json_object_get(
								json_array_get(cts, k), "name"));
			if (run.n_units == cap) {
				cap = cap ? cap * 2 : 16;
				run.units = xrealloc(run.units, cap * sizeof(*run.units));
			}
			struct unit *u = &run.units[run.n_units++];
			*u = (struct unit){ .pod = pod,
					    .container =
						    xstrdup(o->container ? o->container : cn) };
			int pr = kilt_exec_plan(recipe, pod, nodes, u->container, &o->x, &u->plan,
						&err);
			if (pr < 0) {
				set_detail(u, OUT_FAILED, "%s", err.msg);
				continue;
			}
			if (!o->verify && kilt_exec_annotated(pod, u->plan)) {
				/* nothing to send: its URLs are not even fetched */
				const json_t *inst = json_object_get(u->plan, "instance");
				set_detail(u, OUT_UNCHANGED,
					   "recipe %s already applied to this instance of the "
					   "container (%.25s, restarts %lld; the pod annotation "
					   "says): not entered; --verify checks its programs",
					   json_string_value(json_object_get(
						   json_object_get(u->plan, "recipe"), "name")),
					   json_string_value(json_object_get(inst, "id")),
					   (long long)json_integer_value(
						   json_object_get(inst, "restarts")));
				continue;
			}
			json_array_append(plans, u->plan);
			if (o->dry_run) {
				u->steps = kilt_exec_steps(u->plan);
				set_detail(u, OUT_PLANNED, "%zu step(s)",
					   json_array_size(u->steps));
			}
		}
		pw->n = run.n_units - pw->first;
	}
	if (!o->dry_run && gather(plans, &run.blobs, &err) < 0) {
		cli_report(&err);
		rc = EXIT_ERROR;
		goto done;
	}
	/* a dry run reads nothing it would upload, but says when a local file is not there */
	for (size_t k = 0; o->dry_run && k < run.n_units; k++) {
		struct unit *u = &run.units[k];
		size_t j;
		const json_t *up;
		json_array_foreach (json_object_get(u->plan, "uploads"), j, up) {
			const char *file = json_string_value(json_object_get(up, "file"));
			if (file && access(file, R_OK) < 0) {
				set_detail(u, OUT_FAILED, "cannot read the local file %s: %s", file,
					   strerror(errno));
				json_decref(u->steps);
				u->steps = NULL;
			}
		}
	}
	if (o->dry_run && o->output == CLI_OUTPUT_TEXT) {
		for (size_t k = 0; k < run.n_units; k++) {
			struct unit *u = &run.units[k];
			if (!u->steps)
				continue;
			printf("%s/%s %s (%s):\n", pod_ns(u->pod), pod_name(u->pod), u->container,
			       json_string_value(json_object_get(u->plan, "strategy")));
			size_t s;
			const json_t *step;
			json_array_foreach (u->steps, s, step) {
				printf("  %zu. %s\n", s + 1, json_string_value(step));
			}
		}
		if (o->x.strategy == KILT_EXEC_DEBUG)
			printf("Ephemeral containers cannot be removed from a pod: the debug "
			       "container stays (idle) until the pod is deleted.\n");
		printf("\n");
	}
	run.tty = !o->dry_run && o->output == CLI_OUTPUT_TEXT && isatty(STDERR_FILENO);
	if (!o->dry_run) {
		size_t nt = (size_t)o->parallel < run.n_pods ? (size_t)o->parallel : run.n_pods;
		pthread_t th[MAX_PARALLEL];
		size_t started = 0;
		for (size_t t = 0; t < nt; t++)
			if (pthread_create(&th[t], NULL, worker, &run) == 0)
				started++;
		if (!started && run.n_pods)
			worker(&run);
		for (size_t t = 0; t < started; t++)
			pthread_join(th[t], NULL);
		annotate_all(&run);
	}
	rc = EXIT_OK;
	for (size_t k = 0; k < run.n_units; k++)
		if (run.units[k].outcome == OUT_FAILED || run.units[k].outcome == OUT_PARTIAL)
			rc = EXIT_ERROR;
	if (json_array_size(missing))
		rc = EXIT_ERROR;
	if (!run.n_units && !json_array_size(missing)) {
		fprintf(stderr, "kilt exec: no pod matched\n");
		rc = EXIT_ERROR;
	}
	if (o->output == CLI_OUTPUT_JSON) {
		json_auto_t *j = result_json(&run, missing);
		char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
		puts(s);
		free(s);
	} else if (run.n_units || json_array_size(missing)) {
		print_table(&run, missing);
		if (!o->dry_run && o->x.strategy == KILT_EXEC_DEBUG)
			printf("Note: Kubernetes cannot remove ephemeral containers; each debug "
			       "container stays in its pod until the pod is deleted.\n");
	}
	fflush(stdout);
done:
	for (size_t k = 0; k < run.n_units; k++) {
		free(run.units[k].container);
		free(run.units[k].detail);
		json_decref(run.units[k].plan);
		json_decref(run.units[k].pids);
		json_decref(run.units[k].steps);
	}
	free(run.units);
	for (size_t k = 0; k < run.n_pods; k++) {
		free(run.pods[k].annotation);
		free(run.pods[k].instances);
	}
	free(run.pods);
	blobs_done(&run.blobs);
	pthread_mutex_destroy(&run.lock);
	kilt_recipe_free(recipe);
	return rc;
}

int cmd_exec(int argc, char **argv)
{
	enum {
		OPT_STRATEGY = 0x300,
		OPT_DEBUG_IMAGE,
		OPT_LAUNCHER,
		OPT_ARCH,
		OPT_DIR,
		OPT_FORCE,
		OPT_DRY_RUN,
		OPT_PARALLEL,
		OPT_TIMEOUT,
		OPT_KUBECTL,
		OPT_CONTEXT,
		OPT_KUBECONFIG,
		OPT_AS,
		OPT_PODS,
		OPT_VERIFY,
	};
	static const struct option opts[] = {
		{ "namespace", required_argument, NULL, 'n' },
		{ "all-namespaces", no_argument, NULL, 'A' },
		{ "selector", required_argument, NULL, 'l' },
		{ "container", required_argument, NULL, 'c' },
		{ "recipe", required_argument, NULL, 'r' },
		{ "set", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "strategy", required_argument, NULL, OPT_STRATEGY },
		{ "debug-image", required_argument, NULL, OPT_DEBUG_IMAGE },
		{ "launcher", required_argument, NULL, OPT_LAUNCHER },
		{ "arch", required_argument, NULL, OPT_ARCH },
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "parallel", required_argument, NULL, OPT_PARALLEL },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "kubectl", required_argument, NULL, OPT_KUBECTL },
		{ "context", required_argument, NULL, OPT_CONTEXT },
		{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
		{ "as", required_argument, NULL, OPT_AS },
		{ "pods", required_argument, NULL, OPT_PODS },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct cli_command_options me = { .name = "exec", .opts = opts };
	struct exec_opts o = { .kubectl = "kubectl", .parallel = 4, .timeout_s = 300 };
	o.x.strategy = KILT_EXEC_EXEC;
	const char *recipe_path = NULL;
	_cleanup_json_ json_t *config = json_object();
	_cleanup_json_ json_t *launchers = json_object();
	char *globals[8] = { 0 };
	size_t n_globals = 0;
	int c, rc = EXIT_ERROR;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:Al:c:r:s:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.namespace = optarg;
			break;
		case 'A':
			o.all_namespaces = true;
			break;
		case 'l':
			o.selector = optarg;
			break;
		case 'c':
			o.container = optarg;
			break;
		case 'r':
			recipe_path = optarg;
			break;
		case 's': {
			int r = cli_add_setting(config, optarg);
			if (r < 0) {
				rc = cli_usage_error("exec", "--set expects KEY=VALUE, not '%s'",
						     optarg);
				goto out;
			}
			break;
		}
		case 'o':
			if (cli_output_parse("exec", optarg,
					     CLI_OUTPUT_ALLOW(CLI_OUTPUT_TEXT) |
						     CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON),
					     &o.output)) {
				rc = EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_STRATEGY:
			if (strcmp(optarg, "exec") == 0)
				o.x.strategy = KILT_EXEC_EXEC;
			else if (strcmp(optarg, "debug") == 0)
				o.x.strategy = KILT_EXEC_DEBUG;
			else {
				rc = cli_usage_error("exec",
						     "--strategy must be exec or debug, not '%s'",
						     optarg);
				goto out;
			}
			break;
		case OPT_DEBUG_IMAGE:
			o.x.debug_image = optarg;
			break;
		case OPT_LAUNCHER: {
			const char *arch = NULL;
			struct kilt_error err = { 0 };
			if (launcher_arch(optarg, &arch, &err) < 0) {
				cli_report(&err);
				rc = EXIT_ERROR;
				goto out;
			}
			json_object_set_new(launchers, arch, json_string(optarg));
			break;
		}
		case OPT_ARCH:
			if (strcmp(optarg, "x86_64") == 0)
				optarg = (char *)(uintptr_t) "amd64";
			else if (strcmp(optarg, "aarch64") == 0)
				optarg = (char *)(uintptr_t) "arm64";
			o.x.arch = optarg;
			break;
		case OPT_DIR:
			o.x.dir = optarg;
			break;
		case OPT_FORCE:
			o.x.force = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_PARALLEL:
			if (parse_long_arg("--parallel", optarg, 1, MAX_PARALLEL, &o.parallel)) {
				rc = EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_TIMEOUT:
			if (parse_long_arg("--timeout", optarg, 1, 86400, &o.timeout_s)) {
				rc = EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_KUBECTL:
			o.kubectl = optarg;
			break;
		case OPT_CONTEXT:
		case OPT_KUBECONFIG:
		case OPT_AS:
			globals[n_globals++] = xasprintf("--%s=%s",
							 c == OPT_CONTEXT ? "context"
							 : c == OPT_AS	  ? "as"
									  : "kubeconfig",
							 optarg);
			if (n_globals == ARRAY_SIZE(globals)) {
				rc = cli_usage_error("exec", "too many kubectl options");
				goto out;
			}
			break;
		case OPT_PODS:
			o.pods_file = optarg;
			break;
		case OPT_VERIFY:
			o.verify = true;
			break;
		case 'h':
			help(stdout);
			rc = EXIT_OK;
			goto out;
		default:
			rc = cli_bad_option(&me, c, argv);
			goto out;
		}
	}
	for (size_t i = 0; i < n_globals; i++)
		o.global[o.n_global++] = globals[i];
	o.names = argv + optind;
	o.n_names = (size_t)(argc - optind);
	if (!recipe_path) {
		rc = cli_usage_error("exec", "-r RECIPE is required");
		goto out;
	}
	if (o.all_namespaces && o.namespace) {
		rc = cli_usage_error("exec", "-A and -n exclude each other");
		goto out;
	}
	if (o.n_names && (o.all_namespaces || o.selector)) {
		rc = cli_usage_error("exec", "name pods, or select them with -A or -l, not both");
		goto out;
	}
	if (o.pods_file && !o.dry_run) {
		rc = cli_usage_error("exec", "--pods plans from a file and changes nothing: it "
					     "needs --dry-run");
		goto out;
	}
	o.x.launchers = launchers;
	o.x.config = config;
	rc = run_exec(&o, recipe_path, config);
	free(child_env);
	child_env = NULL;
out:
	for (size_t i = 0; i < n_globals; i++)
		free(globals[i]);
	return rc;
}
