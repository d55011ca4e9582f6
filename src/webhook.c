/* SPDX-License-Identifier: Apache-2.0 */
/* The admission webhook's HTTPS server: libmicrohttpd with a thread pool sized to the CPUs,
 * GnuTLS (TLS 1.2 and 1.3) with a certificate that is reloaded when its files change, POST
 * /mutate, /healthz, /readyz, Prometheus /metrics, JSON logs and a graceful drain on SIGTERM.
 *
 * Certificates: each TLS handshake asks cert_retrieve() for the current certificate generation,
 * a complete and checked cert+key pair published with an atomic pointer, so a handshake sees
 * either the old or the new pair, never a half-loaded one. A session may keep using the pair it
 * got (GnuTLS does not copy it), so old generations are kept until exit: a few KB per rotation. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "util.h"
#include "webhook.h"
#include "webhook_libs.h"

/* TLS 1.2 and 1.3 only; GnuTLS's NORMAL set otherwise. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define MAX_CHAIN 8
#define MAX_PEM ((size_t)1 << 20)
#define IDLE_TIMEOUT_S 60
/* Room made for a review's body from its Content-Length before it comes, at most (a review is
 * 10-30 KB; a larger claim gets its room as its bytes come). */
#define BODY_ROOM ((size_t)256 << 10)

/* ---- JSON logs ----------------------------------------------------------------------------- */

/* The "time" of a log line: UTC with milliseconds. The text of the second is kept per thread
 * (a review's line needs no strftime). */
static void log_time(char when[40])
{
	static _Thread_local time_t last = -1;
	static _Thread_local char second[32];
	static _Thread_local size_t n;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != last) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(second, sizeof(second), "%Y-%m-%dT%H:%M:%S", &tm);
		last = ts.tv_sec;
	}
	memcpy(when, second, n);
	long ms = ts.tv_nsec / 1000000;
	when[n] = '.';
	when[n + 1] = (char)('0' + ms / 100);
	when[n + 2] = (char)('0' + ms / 10 % 10);
	when[n + 3] = (char)('0' + ms % 10);
	when[n + 4] = 'Z';
	when[n + 5] = '\0';
}

/* Writes `len` bytes to stderr, all of them unless stderr fails. */
static void write_all(const char *text, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, text, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		text += w;
		len -= (size_t)w;
	}
}

/* While the server serves, log lines are written in batches by one thread: a line goes into a
 * buffer (in the order the lines come) and the writer takes what gathered within LOG_BATCH_MS
 * of the first line in one write(2). A line per review was a write(2) per review, about 4 % of
 * the server's CPU time per review under bench/webhook's load. A line is on stderr at
 * most LOG_BATCH_MS after it was logged; the buffer is written out when the server stops.
 * Outside that time (starting, stopping, errors before serving) a line is written at once. */
#define LOG_BATCH_MS 10
/* Lines wait for the writer beyond this many bytes buffered (stderr is slower than the
 * reviews: a full pipe holds up its writers the same way). */
#define LOG_BUFFER_MAX ((size_t)4 << 20)
/* Room made in each of the two buffers at the start: the lines of 10 ms at 20,000 reviews/s
 * (the reviewing threads do not grow them under the lock) */
#define LOG_BATCH_ROOM ((size_t)64 << 10)

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the writer: a first line, or stop */
	pthread_cond_t drained; /* loggers waiting for room */
	struct kbuf buf; /* lines not taken by the writer yet */
	bool running, stop, idle; /* idle: the writer waits for a first line */
	pthread_t thread;
} batch = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .wake = PTHREAD_COND_INITIALIZER,
	    .drained = PTHREAD_COND_INITIALIZER };

static void *batch_writer(void *arg)
{
	(void)arg;
	struct kbuf out;
	kbuf_init(&out, SIZE_MAX / 2);
	kbuf_reserve(&out, LOG_BATCH_ROOM);
	pthread_mutex_lock(&batch.lock);
	for (;;) {
		while (!batch.stop && batch.buf.len == 0) {
			batch.idle = true;
			pthread_cond_wait(&batch.wake, &batch.lock);
			batch.idle = false;
		}
		if (batch.buf.len == 0)
			break; /* stopping, and everything is written */
		if (!batch.stop) {
			/* the lines of the next few milliseconds join this one's write */
			pthread_mutex_unlock(&batch.lock);
			struct timespec gather = { 0, LOG_BATCH_MS * 1000000L };
			nanosleep(&gather, NULL);
			pthread_mutex_lock(&batch.lock);
		}
		struct kbuf full = batch.buf;
		batch.buf = out;
		out = full;
		pthread_cond_broadcast(&batch.drained);
		pthread_mutex_unlock(&batch.lock);
		write_all(out.data, out.len);
		out.len = 0;
		pthread_mutex_lock(&batch.lock);
	}
	pthread_mutex_unlock(&batch.lock);
	kbuf_done(&out);
	return NULL;
}

/* Starts the batch writer; log lines are batched until batch_stop(). */
static int batch_start(void)
{
	kbuf_init(&batch.buf, SIZE_MAX / 2);
	kbuf_reserve(&batch.buf, LOG_BATCH_ROOM);
	batch.stop = false;
	int r = pthread_create(&batch.thread, NULL, batch_writer, NULL);
	if (r != 0)
		return -r;
	pthread_mutex_lock(&batch.lock);
	batch.running = true;
	pthread_mutex_unlock(&batch.lock);
	return 0;
}

/* Writes out every line batched and stops the writer: lines are written at once again. */
static void batch_stop(void)
{
	pthread_mutex_lock(&batch.lock);
	if (!batch.running) {
		pthread_mutex_unlock(&batch.lock);
		return;
	}
	batch.stop = true;
	pthread_cond_signal(&batch.wake);
	pthread_mutex_unlock(&batch.lock);
	pthread_join(batch.thread, NULL);
	pthread_mutex_lock(&batch.lock);
	batch.running = false;
	/* a line that came after the writer's last look */
	write_all(batch.buf.data, batch.buf.len);
	kbuf_done(&batch.buf);
	pthread_cond_broadcast(&batch.drained);
	pthread_mutex_unlock(&batch.lock);
}

/* Writes a whole line (with its newline) to stderr: into the batch while the writer runs,
 * otherwise at once, under the lock (lines of two threads do not interleave). */
static void write_line(const char *text, size_t len)
{
	pthread_mutex_lock(&batch.lock);
	while (batch.running && batch.buf.len > 0 && batch.buf.len + len > LOG_BUFFER_MAX)
		pthread_cond_wait(&batch.drained, &batch.lock);
	if (batch.running && kbuf_add(&batch.buf, text, len) == 0) {
		if (batch.idle)
			pthread_cond_signal(&batch.wake);
		pthread_mutex_unlock(&batch.lock);
		return;
	}
	write_all(text, len);
	pthread_mutex_unlock(&batch.lock);
}

/* Writes one JSON line {"time", "level", "msg", fields...} to stderr; takes `fields` (may be
 * NULL). kilt_json_dumps, not json_dumps: a line is written for every review, and json_dumps's
 * text would come from the review's arena (kilt-json-arena.h). */
static void log_json(const char *level, const char *msg, json_t *fields)
{
	char when[40];
	log_time(when);
	json_t *line = json_object();
	json_object_set_new(line, "time", json_string(when));
	json_object_set_new(line, "level", json_string(level));
	json_object_set_new(line, "msg", json_string(msg));
	if (fields)
		json_object_update(line, fields);
	json_decref(fields);
	char *text = kilt_json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(line);
	if (!text)
		return;
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: written by length */
	write_line(text, len + 1);
	free(text);
}

void webhook_log(const char *level, const char *msg, json_t *fields)
{
	log_json(level, msg, fields);
}

/* A copy of s whose bytes from 0x80 up are '?' (an error about a request may hold bytes from
 * outside that are not UTF-8: as a JSON string they would drop the whole field). */
static char *ascii_copy(const char *s)
{
	size_t len = strlen(s);
	char *copy = xstrndup(s, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	return copy;
}

/* A message that may hold bytes from outside, as a JSON string. */
static json_t *text_field(const char *s)
{
	json_t *v = json_string(s);
	if (v)
		return v;
	_cleanup_free_ char *copy = ascii_copy(s);
	return json_string(copy);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_json("warn", "http", json_pack("{s:o}", "detail", text_field(buf)));
}
#pragma GCC diagnostic pop

/* ---- metrics --------------------------------------------------------------------------------- */

enum outcome {
	OUT_PATCHED, /* allowed with a patch */
	OUT_ALLOWED, /* allowed unchanged: out of scope, or the engine had nothing to do */
	OUT_FAILED_OPEN, /* an error; allowed unchanged with a warning */
	OUT_DENIED, /* an error in strict mode */
	OUT_COUNT,
};
static const char *const outcome_names[OUT_COUNT] = { "patched", "allowed", "failed_open",
						      "denied" };

enum failure {
	FAIL_MALFORMED, /* not an AdmissionReview v1 */
	FAIL_TOO_LARGE, /* body over --max-body */
	FAIL_ENGINE, /* the Pod engine could not decide */
	FAIL_COUNT,
};
static const char *const failure_names[FAIL_COUNT] = { "malformed", "too_large", "engine" };

/* Latency buckets, seconds. */
static const double buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				  0.025,  0.05,	   0.1,	   0.25,  0.5,	  1,	 2.5 };
#define N_BUCKETS ARRAY_SIZE(buckets)
/* Skip reasons with their own counter; others are counted as "other". */
#define MAX_SKIP_REASONS 32

struct metrics {
	atomic_ulong outcomes[OUT_COUNT];
	atomic_ulong failures[FAIL_COUNT];
	atomic_ulong bucket[N_BUCKETS + 1]; /* the last is +Inf */
	atomic_ullong duration_ns;
	/* Reviews received whose answer is not built yet: dropped before the answer is queued, so
	 * a scrape made after a client has its answer never counts that review. */
	atomic_ulong in_flight;
	/* POST /mutate requests not finished (their answer may still be being sent): what the drain
	 * waits for. */
	atomic_ulong open;
	atomic_ulong cert_reloads_ok, cert_reloads_failed;
	atomic_llong cert_not_after;
	atomic_ulong dry_run;
	pthread_mutex_t skip_lock;
	const char *skip_names[MAX_SKIP_REASONS]; /* static strings */
	unsigned long skip_counts[MAX_SKIP_REASONS + 1]; /* the last is "other" */
	size_t n_skip;
};

static void count_skip(struct metrics *m, const char *reason)
{
	pthread_mutex_lock(&m->skip_lock);
	size_t i;
	for (i = 0; i < m->n_skip; i++)
		if (strcmp(m->skip_names[i], reason) == 0)
			break;
	if (i == m->n_skip && m->n_skip < MAX_SKIP_REASONS)
		m->skip_names[m->n_skip++] = reason;
	m->skip_counts[i < m->n_skip ? i : MAX_SKIP_REASONS]++;
	pthread_mutex_unlock(&m->skip_lock);
}

static void observe(struct metrics *m, double seconds)
{
	size_t i = 0;
	while (i < N_BUCKETS && seconds > buckets[i])
		i++;
	atomic_fetch_add(&m->bucket[i], 1);
	atomic_fetch_add(&m->duration_ns, (unsigned long long)(seconds * 1e9));
}

static char *metrics_text(struct metrics *m, struct webhook_engine *engine, bool ready)
{
	struct kbuf b;
	kbuf_init(&b, (size_t)1 << 20);
	kbuf_adds(&b, "# HELP kilt_webhook_reviews_total Admission reviews answered, by outcome.\n"
		      "# TYPE kilt_webhook_reviews_total counter\n");
	for (int i = 0; i < OUT_COUNT; i++)
		kbuf_printf(&b, "kilt_webhook_reviews_total{outcome=\"%s\"} %lu\n",
			    outcome_names[i], atomic_load(&m->outcomes[i]));
	kbuf_adds(&b, "# HELP kilt_webhook_failures_total Reviews kilt could not process, by cause "
		      "(answered by the failure policy).\n"
		      "# TYPE kilt_webhook_failures_total counter\n");
	for (int i = 0; i < FAIL_COUNT; i++)
		kbuf_printf(&b, "kilt_webhook_failures_total{cause=\"%s\"} %lu\n", failure_names[i],
			    atomic_load(&m->failures[i]));
	kbuf_printf(&b,
		    "# HELP kilt_webhook_injected_total Pods admitted with a patch.\n"
		    "# TYPE kilt_webhook_injected_total counter\n"
		    "kilt_webhook_injected_total %lu\n",
		    atomic_load(&m->outcomes[OUT_PATCHED]));
	kbuf_adds(&b, "# HELP kilt_webhook_skipped_total Reviews admitted unchanged, by reason.\n"
		      "# TYPE kilt_webhook_skipped_total counter\n");
	pthread_mutex_lock(&m->skip_lock);
	for (size_t i = 0; i < m->n_skip; i++)
		kbuf_printf(&b, "kilt_webhook_skipped_total{reason=\"%s\"} %lu\n", m->skip_names[i],
			    m->skip_counts[i]);
	if (m->skip_counts[MAX_SKIP_REASONS])
		kbuf_printf(&b, "kilt_webhook_skipped_total{reason=\"other\"} %lu\n",
			    m->skip_counts[MAX_SKIP_REASONS]);
	pthread_mutex_unlock(&m->skip_lock);
	kbuf_printf(&b,
		    "# HELP kilt_webhook_dry_run_reviews_total Reviews of dry-run requests.\n"
		    "# TYPE kilt_webhook_dry_run_reviews_total counter\n"
		    "kilt_webhook_dry_run_reviews_total %lu\n",
		    atomic_load(&m->dry_run));
	kbuf_adds(&b, "# HELP kilt_webhook_review_duration_seconds Time to answer a review.\n"
		      "# TYPE kilt_webhook_review_duration_seconds histogram\n");
	unsigned long cum = 0;
	for (size_t i = 0; i < N_BUCKETS; i++) {
		cum += atomic_load(&m->bucket[i]);
		kbuf_printf(&b, "kilt_webhook_review_duration_seconds_bucket{le=\"%g\"} %lu\n",
			    buckets[i], cum);
	}
	cum += atomic_load(&m->bucket[N_BUCKETS]);
	kbuf_printf(&b,
		    "kilt_webhook_review_duration_seconds_bucket{le=\"+Inf\"} %lu\n"
		    "kilt_webhook_review_duration_seconds_sum %.9f\n"
		    "kilt_webhook_review_duration_seconds_count %lu\n",
		    cum, (double)atomic_load(&m->duration_ns) / 1e9, cum);
	kbuf_printf(&b,
		    "# HELP kilt_webhook_reviews_in_flight Reviews being processed.\n"
		    "# TYPE kilt_webhook_reviews_in_flight gauge\n"
		    "kilt_webhook_reviews_in_flight %lu\n"
		    "# HELP kilt_webhook_certificate_expiry_timestamp_seconds When the serving "
		    "certificate expires (Unix time).\n"
		    "# TYPE kilt_webhook_certificate_expiry_timestamp_seconds gauge\n"
		    "kilt_webhook_certificate_expiry_timestamp_seconds %lld\n"
		    "# HELP kilt_webhook_certificate_reloads_total Certificate reloads after its "
		    "files changed, by result.\n"
		    "# TYPE kilt_webhook_certificate_reloads_total counter\n"
		    "kilt_webhook_certificate_reloads_total{result=\"success\"} %lu\n"
		    "kilt_webhook_certificate_reloads_total{result=\"failure\"} %lu\n"
		    "# HELP kilt_webhook_ready Whether the server is ready (1) or not (0).\n"
		    "# TYPE kilt_webhook_ready gauge\n"
		    "kilt_webhook_ready %d\n",
		    atomic_load(&m->in_flight), (long long)atomic_load(&m->cert_not_after),
		    atomic_load(&m->cert_reloads_ok), atomic_load(&m->cert_reloads_failed),
		    ready ? 1 : 0);
	webhook_engine_metrics(engine, &b);
	return kbuf_steal(&b);
}

/* ---- certificates ---------------------------------------------------------------------------- */

struct cert_gen {
	gnutls_pcert_st pcerts[MAX_CHAIN];
	unsigned n_pcerts;
	gnutls_privkey_t key;
	time_t not_after;
	struct cert_gen *older; /* owned: kept until exit (see the top of this file) */
};

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	bool exists;
};

static struct file_id file_id_of(const char *path)
{
	struct file_id id = { 0 };
	struct stat st;
	if (stat(path, &st) == 0) {
		id.exists = true;
		id.dev = st.st_dev;
		id.ino = st.st_ino;
		id.size = st.st_size;
		id.mtime = st.st_mtim;
		id.ctime = st.st_ctim;
	}
	return id;
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void cert_gen_free(struct cert_gen *g)
{
	while (g) {
		struct cert_gen *older = g->older;
		for (unsigned i = 0; i < g->n_pcerts; i++)
			wl.pcert_deinit(&g->pcerts[i]);
		if (g->key)
			wl.privkey_deinit(g->key);
		free(g);
		g = older;
	}
}

static int gnutls_fail(struct kilt_error *err, int r, const char *what, const char *path)
{
	return kilt_error_setf(err, -EINVAL, "%s: %s: %s", path, what, wl.strerror(r));
}

/* Loads and checks a certificate chain and its key: both parse, the key matches the first
 * certificate. */
static int cert_gen_load(const char *cert_file, const char *key_file, struct cert_gen **ret,
			 struct kilt_error *err)
{
	_cleanup_free_ char *cert_pem = NULL, *key_pem = NULL;
	size_t cert_len = 0, key_len = 0;
	int r = kilt_read_file(cert_file, MAX_PEM, &cert_pem, &cert_len);
	if (r < 0)
		return kilt_error_setf(err, r, "%s: %s", cert_file, strerror(-r));
	r = kilt_read_file(key_file, MAX_PEM, &key_pem, &key_len);
	if (r < 0)
		return kilt_error_setf(err, r, "%s: %s", key_file, strerror(-r));
	struct cert_gen *g = xcalloc(1, sizeof(*g));
	gnutls_datum_t cd = { (unsigned char *)cert_pem, (unsigned)cert_len };
	gnutls_datum_t kd = { (unsigned char *)key_pem, (unsigned)key_len };
	unsigned n = MAX_CHAIN;
	r = wl.pcert_list_import_x509_raw(g->pcerts, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
	if (r < 0) {
		free(g);
		return gnutls_fail(err, r, "certificate", cert_file);
	}
	g->n_pcerts = n;
	if ((r = wl.privkey_init(&g->key)) < 0 ||
	    (r = wl.privkey_import_x509_raw(g->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		cert_gen_free(g);
		return gnutls_fail(err, r, "private key", key_file);
	}
	/* The key must belong to the certificate: compare the public keys' ids. */
	gnutls_pubkey_t pub;
	unsigned char id_key[64], id_cert[64];
	size_t id_key_len = sizeof(id_key), id_cert_len = sizeof(id_cert);
	wl.pubkey_init(&pub);
	r = wl.pubkey_import_privkey(pub, g->key, 0, 0);
	if (r >= 0)
		r = wl.pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id_key, &id_key_len);
	wl.pubkey_deinit(pub);
	if (r >= 0)
		r = wl.pubkey_get_key_id(g->pcerts[0].pubkey, GNUTLS_KEYID_USE_SHA256, id_cert,
					 &id_cert_len);
	if (r < 0) {
		cert_gen_free(g);
		return gnutls_fail(err, r, "public key", key_file);
	}
	if (id_key_len != id_cert_len || memcmp(id_key, id_cert, id_key_len) != 0) {
		cert_gen_free(g);
		return kilt_error_setf(err, -EINVAL,
				       "%s: the key does not match the certificate in %s", key_file,
				       cert_file);
	}
	gnutls_x509_crt_t crt;
	wl.x509_crt_init(&crt);
	if (wl.x509_crt_import(crt, &g->pcerts[0].cert, GNUTLS_X509_FMT_DER) >= 0)
		g->not_after = wl.x509_crt_get_expiration_time(crt);
	wl.x509_crt_deinit(crt);
	*ret = g;
	return 0;
}

/* ---- the server ------------------------------------------------------------------------------ */

struct server {
	const struct webhook_options *o;
	struct webhook_engine *engine;
	struct metrics metrics;
	_Atomic(struct cert_gen *) cert; /* the current generation; older ones hang off it */
	atomic_bool draining;
	atomic_bool ready;
	/* certificate watcher */
	pthread_t watcher;
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;
	bool stop_watching;
	struct file_id cert_id, key_id;
};

/* Only one server per process: the GnuTLS callback has no user pointer. */
static struct server *the_server;

static int cert_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
			 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			 gnutls_pcert_st **pcert, unsigned int *pcert_length,
			 gnutls_privkey_t *privkey)
{
	(void)session;
	(void)req_ca_rdn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	struct cert_gen *g = atomic_load(&the_server->cert);
	if (!g)
		return -1;
	*pcert = g->pcerts;
	*pcert_length = g->n_pcerts;
	*privkey = g->key;
	return 0;
}

static void publish_cert(struct server *s, struct cert_gen *g)
{
	g->older = atomic_load(&s->cert);
	atomic_store(&s->cert, g);
	atomic_store(&s->metrics.cert_not_after, (long long)g->not_after);
}

static void log_cert(const char *msg, const struct server *s, const struct cert_gen *g)
{
	char when[32] = "unknown";
	struct tm tm;
	if (g->not_after > 0 && gmtime_r(&g->not_after, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_json("info", msg,
		 json_pack("{s:s, s:s, s:s, s:i}", "cert", s->o->cert_file, "key", s->o->key_file,
			   "notAfter", when, "chain", (int)g->n_pcerts));
	if (g->not_after > 0 && g->not_after < time(NULL))
		log_json("warn", "the serving certificate has expired",
			 json_pack("{s:s, s:s}", "cert", s->o->cert_file, "notAfter", when));
}

/* Reloads when either file changed since the last attempt. A pair that does not load (a rotation
 * caught between writing the certificate and the key) keeps the current one; the next change
 * retries. */
static void check_cert_files(struct server *s)
{
	struct file_id c = file_id_of(s->o->cert_file), k = file_id_of(s->o->key_file);
	if (file_id_eq(&c, &s->cert_id) && file_id_eq(&k, &s->key_id))
		return;
	s->cert_id = c;
	s->key_id = k;
	struct cert_gen *g = NULL;
	struct kilt_error err = { 0 };
	if (cert_gen_load(s->o->cert_file, s->o->key_file, &g, &err) < 0) {
		atomic_fetch_add(&s->metrics.cert_reloads_failed, 1);
		log_json("warn",
			 "certificate files changed but do not load; serving the previous one",
			 json_pack("{s:o}", "error", text_field(err.msg)));
		return;
	}
	publish_cert(s, g);
	atomic_fetch_add(&s->metrics.cert_reloads_ok, 1);
	log_cert("certificate reloaded", s, g);
}

static void *watch_certs(void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->watch_lock);
	while (!s->stop_watching) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += s->o->reload_interval_ms / 1000;
		until.tv_nsec += (long)(s->o->reload_interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->watch_cond, &s->watch_lock, &until);
		if (s->stop_watching)
			break;
		pthread_mutex_unlock(&s->watch_lock);
		check_cert_files(s);
		pthread_mutex_lock(&s->watch_lock);
	}
	pthread_mutex_unlock(&s->watch_lock);
	return NULL;
}

/* One HTTP request (MHD's per-request context). */
struct request {
	struct timespec start;
	bool mutate; /* POST /mutate */
	bool in_flight; /* counted in metrics.in_flight */
	bool too_large;
	struct kbuf body;
};

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static enum MHD_Result respond(struct server *s, struct MHD_Connection *conn, unsigned status,
			       const char *content_type, char *body, size_t len)
{
	struct MHD_Response *resp =
		wl.create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	wl.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (atomic_load(&s->draining))
		wl.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result r = wl.queue_response(conn, status, resp);
	wl.destroy_response(resp);
	return r;
}

static enum MHD_Result respond_text(struct server *s, struct MHD_Connection *conn, unsigned status,
				    const char *text)
{
	return respond(s, conn, status, "text/plain; charset=utf-8", xstrdup(text), strlen(text));
}

/* The answer of --fixed-response (bench/webhook's floor). */
#define FIXED_RESPONSE                                                                             \
	"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"response\":{"      \
	"\"uid\":\"\",\"allowed\":true}}"

/* The review is no longer in flight: its answer is built (or the request ended without one). */
static void answered(struct server *s, struct request *req)
{
	if (req->in_flight) {
		req->in_flight = false;
		atomic_fetch_sub(&s->metrics.in_flight, 1);
	}
}

/* The review's log line, written as the line log_json would write from the object {"uid",
 * "outcome", "durationMs", "namespace", "name", "kind", "operation", "dryRun", "skipped",
 * "failure", "error"} (members without a value left out) without building that object. Not
 * inlined: bench/webhook/instructions.py counts it apart. */
static __attribute__((noinline)) void log_review(const struct kilt_admission_review *rv,
						 const char *uid, enum outcome outcome,
						 enum failure failure, const char *skip,
						 double took, const struct kilt_error *err)
{
	char when[40];
	log_time(when);
	struct kbuf line;
	kbuf_init(&line, SIZE_MAX / 2);
	kbuf_reserve(&line, 512); /* most lines: no growing */
	/* the members whose text needs no escaping (the time is digits and punctuation) as they
	 * are, then the others by the JSON writer */
	kbuf_adds(&line, "{\"time\":\"");
	kbuf_adds(&line, when);
	kbuf_adds(&line, failure != FAIL_COUNT ? "\",\"level\":\"warn\",\"msg\":\"review\""
					       : "\",\"level\":\"info\",\"msg\":\"review\"");
	kilt_json_member_string(&line, "uid", uid);
	kilt_json_member_string(&line, "outcome", outcome_names[outcome]);
	kilt_json_member_real(&line, "durationMs", took * 1000, 6);
	if (rv->root) {
		kilt_json_member_string(&line, "namespace", rv->namespace);
		kilt_json_member_string(&line, "name", rv->name);
		kilt_json_member_string(&line, "kind", rv->kind);
		kilt_json_member_string(&line, "operation", rv->operation);
		if (rv->dry_run)
			kilt_json_member_value(&line, "dryRun", json_true(), 0);
	}
	if (skip)
		kilt_json_member_string(&line, "skipped", skip);
	if (failure != FAIL_COUNT) {
		kilt_json_member_string(&line, "failure", failure_names[failure]);
		if (kilt_json_member_string(&line, "error", err->msg) == -2) {
			_cleanup_free_ char *copy = ascii_copy(err->msg);
			kilt_json_member_string(&line, "error", copy);
		}
	}
	kilt_json_object_close(&line);
	kbuf_add(&line, "\n", 1);
	write_line(line.data, line.len);
	kbuf_done(&line);
}

/* Answers one review body: always a valid AdmissionReview (HTTP 200), whatever went wrong. */
static char *review(struct server *s, struct request *req, size_t *ret_len)
{
	/* Every jansson value of the review comes from this thread's arena, released in one step
	 * below (the answer and the log line are malloc's). */
	kilt_json_arena_begin();
	struct metrics *m = &s->metrics;
	struct kilt_admission_review rv = { 0 };
	struct kilt_error err = { 0 };
	struct webhook_mutation mut = { 0 };
	char salvaged[KILT_ADMISSION_MAX_UID + 1] = "";
	const char *warnings[10];
	size_t n_warnings = 0;
	char *warning = NULL; /* owned, among warnings[] */
	struct kilt_admission_answer a = { .uid = "", .allowed = true };
	enum outcome outcome = OUT_ALLOWED;
	enum failure failure = FAIL_COUNT;
	const char *skip = NULL;

	if (req->too_large) {
		failure = FAIL_TOO_LARGE;
		kilt_error_setf(&err, -E2BIG, "the review is larger than %zu bytes",
				s->o->max_body);
	} else if (kilt_admission_review_parse(req->body.data ? req->body.data : "", req->body.len,
					       &rv, &err) < 0) {
		failure = FAIL_MALFORMED;
		kilt_admission_uid_salvage(req->body.data ? req->body.data : "", req->body.len,
					   salvaged, sizeof(salvaged));
		a.uid = salvaged;
		kilt_error_prefix(&err, "not an AdmissionReview v1");
	} else {
		a.uid = rv.uid;
		if (rv.dry_run)
			atomic_fetch_add(&m->dry_run, 1);
		enum kilt_admission_scope scope = kilt_admission_scope(&rv);
		if (scope != KILT_ADMISSION_IN_SCOPE) {
			skip = kilt_admission_scope_name(scope);
		} else if (webhook_engine_mutate(s->engine, &rv, &mut, &err) < 0) {
			failure = FAIL_ENGINE;
		} else {
			for (size_t i = 0; i < mut.n_notes && n_warnings < 8; i++)
				warnings[n_warnings++] = mut.notes[i];
			if (mut.patch_text) {
				a.patch_text = mut.patch_text;
				a.patch_len = mut.patch_len;
				outcome = OUT_PATCHED;
			} else {
				skip = mut.skip_reason ? mut.skip_reason : "nothing_to_do";
			}
		}
	}
	if (failure != FAIL_COUNT) {
		atomic_fetch_add(&m->failures[failure], 1);
		char buf[700];
		kilt_error_format(&err, buf, sizeof(buf));
		if (s->o->strict) {
			outcome = OUT_DENIED;
			a.allowed = false;
			a.code = failure == FAIL_TOO_LARGE   ? 413
				 : failure == FAIL_MALFORMED ? 400
							     : 403;
			warning = xasprintf("kilt: denied (strict mode): %s", buf);
			a.message = warning;
		} else {
			outcome = OUT_FAILED_OPEN;
			warning = xasprintf("kilt: admitted without injection: %s", buf);
			warnings[n_warnings++] = warning;
		}
	}
	if (skip)
		count_skip(m, skip);
	a.warnings = warnings;
	a.n_warnings = n_warnings;
	char *out = kilt_admission_answer_encode(&a, ret_len);
	atomic_fetch_add(&m->outcomes[outcome], 1);

	double took = seconds_since(&req->start);
	observe(m, took);
	log_review(&rv, a.uid, outcome, failure, skip, took, &err);
	free(warning);
	webhook_mutation_done(&mut);
	kilt_admission_review_done(&rv);
	kilt_json_arena_end();
	return out;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	(void)version;
	struct server *s = cls;
	struct request *req = *con_cls;
	if (!req) {
		req = xcalloc(1, sizeof(*req));
		clock_gettime(CLOCK_MONOTONIC, &req->start);
		*con_cls = req;
		if (strcmp(url, "/mutate") == 0 && strcmp(method, "POST") == 0) {
			req->mutate = true;
			req->in_flight = true;
			atomic_fetch_add(&s->metrics.open, 1);
			atomic_fetch_add(&s->metrics.in_flight, 1);
			kbuf_init(&req->body, s->o->max_body);
			const char *cl = wl.lookup_connection_value(conn, MHD_HEADER_KIND,
								    MHD_HTTP_HEADER_CONTENT_LENGTH);
			if (cl) {
				char *end;
				errno = 0;
				unsigned long long n = strtoull(cl, &end, 10);
				if (errno || *end || n > s->o->max_body)
					req->too_large = true;
				else
					kbuf_reserve(&req->body, n < BODY_ROOM ? n : BODY_ROOM);
			}
			if (req->too_large) {
				/* Answer now: the body is not read (MHD closes the connection). */
				size_t len = 0;
				char *out = review(s, req, &len);
				answered(s, req);
				return respond(s, conn, MHD_HTTP_OK, "application/json", out, len);
			}
			return MHD_YES;
		}
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return MHD_YES; /* read (and drop) any body, then answer 405/404 */
	}
	if (req->mutate) {
		if (*upload_size) {
			if (!req->too_large &&
			    kbuf_add(&req->body, upload_data, *upload_size) < 0) {
				req->too_large = true;
				kbuf_done(&req->body);
			}
			*upload_size = 0;
			return MHD_YES;
		}
		if (s->o->fixed_response && !req->too_large) {
			answered(s, req);
			return respond(s, conn, MHD_HTTP_OK, "application/json",
				       xstrdup(FIXED_RESPONSE), strlen(FIXED_RESPONSE));
		}
		size_t len = 0;
		char *out = review(s, req, &len);
		answered(s, req);
		return respond(s, conn, MHD_HTTP_OK, "application/json", out, len);
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	if (strcmp(url, "/healthz") == 0 && get)
		return respond_text(s, conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0 && get) {
		if (atomic_load(&s->draining))
			return respond_text(s, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "draining\n");
		if (!atomic_load(&s->ready))
			return respond_text(s, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
		return respond_text(s, conn, MHD_HTTP_OK, "ok\n");
	}
	if (strcmp(url, "/metrics") == 0 && get) {
		char *text = metrics_text(&s->metrics, s->engine,
					  atomic_load(&s->ready) && !atomic_load(&s->draining));
		return respond(s, conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			       text, strlen(text));
	}
	if (strcmp(url, "/mutate") == 0 || strcmp(url, "/healthz") == 0 ||
	    strcmp(url, "/readyz") == 0 || strcmp(url, "/metrics") == 0)
		return respond_text(s, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	return respond_text(s, conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode code)
{
	(void)conn;
	(void)code;
	struct server *s = cls;
	struct request *req = *con_cls;
	if (!req)
		return;
	answered(s, req);
	if (req->mutate)
		atomic_fetch_sub(&s->metrics.open, 1);
	kbuf_done(&req->body);
	free(req);
	*con_cls = NULL;
}

/* CPUs this process may use: its affinity mask, lowered by a cgroup CPU quota (a container's
 * CPU limit). */
static unsigned cpus_available(void)
{
	unsigned n = 1;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		n = (unsigned)CPU_COUNT(&set);
	long long quota = -1, period = 0;
	FILE *f = fopen("/sys/fs/cgroup/cpu.max", "re"); /* cgroup v2: "max 100000" or "Q P" */
	if (f) {
		char q[32];
		if (fscanf(f, "%31s %lld", q, &period) == 2 && strcmp(q, "max") != 0) {
			char *end;
			quota = strtoll(q, &end, 10);
			if (*end)
				quota = -1;
		}
		fclose(f);
	} else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "re"))) {
		if (fscanf(f, "%lld", &quota) != 1)
			quota = -1;
		fclose(f);
		if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "re"))) {
			if (fscanf(f, "%lld", &period) != 1)
				period = 0;
			fclose(f);
		}
	}
	if (quota > 0 && period > 0) {
		long long q = (quota + period - 1) / period;
		if (q < (long long)n)
			n = q < 1 ? 1 : (unsigned)q;
	}
	return n;
}

/* ---- Accepting connections -------------------------------------------------------------- */

/* kilt accepts the connections and hands each to libmicrohttpd with MHD_add_connection(), which
 * spreads them over the pool's threads (by the socket's number, so consecutive connections go to
 * different threads). Left to accept for themselves, the pool's threads race for the listening
 * socket and the first one awake takes a burst of up to ten: under bench/webhook's load one
 * thread served all 16 connections while the others stayed idle, and a connection never moves
 * to another thread. */
struct acceptor {
	int fd; /* the listening socket */
	int stop[2]; /* a pipe: closing stop[1] ends the loop */
	struct MHD_Daemon *d;
	pthread_t thread;
};

static void *accept_loop(void *p)
{
	struct acceptor *a = p;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = a->fd, .events = POLLIN },
					 { .fd = a->stop[0], .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_json("error", "cannot wait for connections",
				 json_pack("{s:s}", "error", strerror(errno)));
			return NULL;
		}
		if (pfd[1].revents)
			return NULL;
		/* the listening socket is non-blocking: take every connection waiting */
		for (;;) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			int c = accept4(a->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
			if (c >= 0) {
				/* closes the socket itself when it cannot take it */
				wl.add_connection(a->d, c, (struct sockaddr *)&ss, sl);
				continue;
			}
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* out of descriptors or memory: the connections wait in the
				 * backlog until some are closed */
				struct timespec pause = { 0, 50 * 1000000L };
				nanosleep(&pause, NULL);
			}
			break;
		}
	}
}

static int acceptor_start(struct acceptor *a, int fd, struct MHD_Daemon *d)
{
	a->fd = fd;
	a->d = d;
	if (pipe2(a->stop, O_CLOEXEC) < 0)
		return -errno;
	int r = pthread_create(&a->thread, NULL, accept_loop, a);
	if (r != 0) {
		close(a->stop[0]);
		close(a->stop[1]);
		return -r;
	}
	return 0;
}

/* No new connections from now on (they are refused); those accepted stay with the daemon. */
static void acceptor_stop(struct acceptor *a)
{
	close(a->stop[1]);
	pthread_join(a->thread, NULL);
	close(a->stop[0]);
	close(a->fd);
}

/* Binds the listening socket ("HOST:PORT", "[V6]:PORT", ":PORT" for all addresses). */
static int listen_on(const char *spec, int *ret_fd, char *ret_addr, size_t addr_size,
		     struct kilt_error *err)
{
	_cleanup_free_ char *copy = xstrdup(spec);
	char *host = copy, *port = strrchr(copy, ':');
	if (!port)
		return kilt_error_setf(err, -EINVAL, "--listen %s: expected HOST:PORT", spec);
	*port++ = '\0';
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 2 || host[n - 1] != ']')
			return kilt_error_setf(err, -EINVAL, "--listen %s: expected [IPV6]:PORT",
					       spec);
		host[n - 1] = '\0';
		host++;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int r = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (r != 0)
		return kilt_error_setf(err, -EINVAL, "--listen %s: %s", spec, gai_strerror(r));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return kilt_error_setf(err, -e, "--listen %s: %s", spec, strerror(e));
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN] = "?", p[8] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
			    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(ret_addr, addr_size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
	*ret_fd = fd;
	return 0;
}

int webhook_serve(const struct webhook_options *o)
{
	struct server s = { .o = o };
	struct kilt_error err = { 0 };
	int rc = 1;
	pthread_mutex_init(&s.metrics.skip_lock, NULL);
	pthread_mutex_init(&s.watch_lock, NULL);
	pthread_cond_t cond;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);
	pthread_condattr_destroy(&ca);
	s.watch_cond = cond;
	the_server = &s;

	/* SIGTERM and SIGINT are taken by sigwait() below: block them before any thread starts. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	kilt_json_arena_install();
	/* Every review mallocs its body and its answer and frees them when it is answered. By
	 * default glibc gives the top of a thread's heap back to the kernel (madvise) as soon as
	 * 128 KiB of it are free, which reviews in flight on several connections pass all the time:
	 * the next reviews fault the same pages in again, and each trim costs the other CPU a TLB
	 * shootdown (bench/webhook: 3.5 page faults per review under 16 connections). Up to 8 MiB
	 * free at the top of a heap stay. */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);

	if (webhook_libs_load(&err) < 0) {
		log_json("error", "cannot start the HTTPS server",
			 json_pack("{s:o}", "error", text_field(err.msg)));
		return 1;
	}
	struct cert_gen *g = NULL;
	s.cert_id = file_id_of(o->cert_file);
	s.key_id = file_id_of(o->key_file);
	if (cert_gen_load(o->cert_file, o->key_file, &g, &err) < 0) {
		log_json("error", "cannot load the serving certificate",
			 json_pack("{s:o}", "error", text_field(err.msg)));
		return 1;
	}
	publish_cert(&s, g);
	log_cert("certificate loaded", &s, g);
	if (webhook_engine_new(o, &s.engine, &err) < 0) {
		char buf[1024];
		log_json("error", "cannot load the recipes",
			 json_pack("{s:o}", "error",
				   text_field(kilt_error_format(&err, buf, sizeof(buf)))));
		cert_gen_free(atomic_load(&s.cert));
		return 1;
	}

	int fd = -1;
	char addr[80];
	if (listen_on(o->listen, &fd, addr, sizeof(addr), &err) < 0) {
		log_json("error", "cannot listen",
			 json_pack("{s:o}", "error", text_field(err.msg)));
		goto out;
	}
	unsigned threads = o->threads ? o->threads : cpus_available();
	struct MHD_Daemon *d = wl.start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_ITC |
			MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
		0, NULL, NULL, handle, &s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
		MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
		MHD_OPTION_HTTPS_CERT_CALLBACK, cert_retrieve, MHD_OPTION_NOTIFY_COMPLETED,
		request_done, &s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
		MHD_OPTION_END);
	if (!d) {
		close(fd);
		log_json("error", "cannot start the HTTPS server (libmicrohttpd)", NULL);
		goto out;
	}
	struct acceptor acc;
	int ar = acceptor_start(&acc, fd, d);
	if (ar < 0) {
		close(fd);
		wl.stop_daemon(d);
		log_json("error", "cannot start the HTTPS server",
			 json_pack("{s:s}", "error", strerror(-ar)));
		goto out;
	}
	pthread_create(&s.watcher, NULL, watch_certs, &s);
	bool batching = batch_start() == 0;
	atomic_store(&s.ready, true);
	json_t *fields = json_pack("{s:s, s:i, s:b, s:I, s:s}", "address", addr, "threads",
				   (int)threads, "strict", o->strict, "maxBody",
				   (json_int_t)o->max_body, "tls", "1.2-1.3");
	json_object_update_new(fields, webhook_engine_describe(s.engine));
	log_json("info", "listening", fields);

	int sig = 0;
	sigwait(&sigs, &sig);
	/* Drain: readyz fails, (after the shutdown delay) no new connections, reviews in flight
	 * finish, then stop. */
	atomic_store(&s.draining, true);
	log_json("info", "draining",
		 json_pack("{s:s, s:I}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
			   "inFlight", (json_int_t)atomic_load(&s.metrics.open)));
	if (o->shutdown_delay_ms > 0) {
		/* Still serving while load balancers and the API server learn that this replica is
		 * going (readyz says so); a second signal cuts the delay short. */
		struct timespec delay = { o->shutdown_delay_ms / 1000,
					  (long)(o->shutdown_delay_ms % 1000) * 1000000L };
		sigtimedwait(&sigs, NULL, &delay);
	}
	acceptor_stop(&acc);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&s.metrics.open) > 0 &&
	       seconds_since(&t0) * 1000 < o->drain_timeout_ms) {
		struct timespec ten_ms = { 0, 10 * 1000000L };
		nanosleep(&ten_ms, NULL);
	}
	unsigned long left = atomic_load(&s.metrics.open);
	wl.stop_daemon(d);
	pthread_mutex_lock(&s.watch_lock);
	s.stop_watching = true;
	pthread_cond_signal(&s.watch_cond);
	pthread_mutex_unlock(&s.watch_lock);
	pthread_join(s.watcher, NULL);
	if (batching)
		batch_stop();
	log_json(left ? "warn" : "info", "stopped",
		 json_pack("{s:I, s:f}", "abandoned", (json_int_t)left, "drainMs",
			   seconds_since(&t0) * 1000));
	rc = left ? 1 : 0;
out:
	webhook_engine_free(s.engine);
	cert_gen_free(atomic_load(&s.cert));
	the_server = NULL;
	return rc;
}
