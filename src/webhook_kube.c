/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's access to the Kubernetes API server (webhook_kube.h), over http_client.c.
 *
 * Namespaces: one thread lists them (pages of 500) and then watches from the list's
 * resourceVersion with bookmarks, applying each event (lib/k8s-watch.c) to the cache under a
 * lock; a watch that ends or whose connection breaks is resumed from the last resourceVersion
 * seen, a 410 Gone lists again at once, any other error the watch's stream brings (an ERROR
 * event, an event that cannot be decoded) lists again after the wait, and a failure waits
 * (250 ms, doubling up to 30 s; back to 250 ms once a watch delivered an event) before it tries
 * again. Reviews only read the cache. RBAC: namespaces get/list/watch, serviceaccounts get, secrets get
 * (docs/webhook.md). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "http_client.h"
#include "webhook.h"
#include "webhook_kube.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define MAX_CONFIG_BYTES (4u << 20)
#define MAX_LIST_BYTES (64u << 20)
#define MAX_OBJECT_BYTES (4u << 20)
#define MAX_EVENT_BYTES (4u << 20)
#define WATCH_SECONDS 240
#define FIRST_SYNC_MS 5000
#define MISS_GET_MS 1000

struct webhook_kube {
	char *source; /* owned: "in-cluster" or "kubeconfig FILE" */
	char *server; /* owned: https://host:port */
	char *token; /* owned, may be NULL */
	char *token_file; /* owned, may be NULL: read for each request (bound tokens rotate) */
	char *ca_file, *ca_pem, *cert_pem, *key_pem; /* owned, may be NULL */
	char *insecure_host; /* owned, may be NULL: insecure-skip-tls-verify */

	pthread_mutex_t lock; /* guards what follows */
	json_t *namespaces; /* owned cache: name -> {labels, annotations} */
	bool synced;
	char last_error[sizeof(((struct kilt_error *)0)->msg)];
	pthread_cond_t changed; /* synced, or stop */

	pthread_t watcher;
	bool started;
	atomic_bool stop;
	atomic_ulong lists, relists, events, reconnects, errors, misses, secret_reads,
		secret_failures;
	atomic_llong synced_at;
};

const char *webhook_kube_source(const struct webhook_kube *k)
{
	return k->source;
}

static void set_error(struct webhook_kube *k, const struct kilt_error *err)
{
	pthread_mutex_lock(&k->lock);
	snprintf(k->last_error, sizeof(k->last_error), "%s", err->msg);
	pthread_mutex_unlock(&k->lock);
	atomic_fetch_add(&k->errors, 1);
}

/* ---- requests ------------------------------------------------------------------------------ */

static int new_client(const struct webhook_kube *k, struct http_client **ret,
		      struct kilt_error *err)
{
	const char *insecure[1] = { k->insecure_host };
	struct http_options ho = {
		.insecure = insecure,
		.n_insecure = k->insecure_host ? 1 : 0,
		.ca_file = k->ca_file,
		.ca_pem = k->ca_pem,
		.client_cert_pem = k->cert_pem,
		.client_key_pem = k->key_pem,
	};
	return http_client_new(&ho, ret, err);
}

/* GET `path` (starting with /api); the body in `ret` (2xx only), or a streaming request when
 * `req_in` says so. */
static int api_get(struct webhook_kube *k, struct http_client *hc, const char *path,
		   struct http_request *req, struct http_response *ret, struct kilt_error *err)
{
	_cleanup_free_ char *url = xasprintf("%s%s", k->server, path);
	_cleanup_free_ char *auth = NULL;
	if (k->token_file) {
		_cleanup_free_ char *t = NULL;
		size_t len = 0;
		int r = kilt_read_file(k->token_file, 64u << 10, &t, &len);
		if (r < 0)
			return kilt_error_setf(err, r, "%s: %s", k->token_file, strerror(-r));
		while (len && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' '))
			t[--len] = '\0';
		auth = xasprintf("Authorization: Bearer %s", t);
		explicit_bzero(t, len);
	} else if (k->token) {
		auth = xasprintf("Authorization: Bearer %s", k->token);
	}
	const char *headers[3] = { "Accept: application/json", auth, NULL };
	req->url = url;
	req->headers = headers;
	int r = http_send(hc, req, ret, err);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	if (r < 0)
		return r;
	if (ret->status < 200 || ret->status > 299) {
		/* a Status object says why */
		json_t *st =
			ret->body.data ? json_loadb(ret->body.data, ret->body.len, 0, NULL) : NULL;
		const char *msg = json_string_value(json_object_get(st, "message"));
		r = kilt_error_setf(err,
				    ret->status == 401 || ret->status == 403 ? -EACCES
				    : ret->status == 404		     ? -ENOENT
				    : ret->status == 410		     ? -ESTALE
									     : -EPROTO,
				    "GET %s: HTTP %ld: %.300s", path, ret->status,
				    msg ? msg : "(no message)");
		json_decref(st);
		http_response_done(ret);
		return r;
	}
	return 0;
}

/* ---- the namespace watch ------------------------------------------------------------------- */

/* `s` percent-encoded for a query string (continue tokens are base64: '+', '/', '='). */
static char *query_escape(const char *s)
{
	struct kbuf b;
	kbuf_init(&b, 4 * strlen(s) + 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			kbuf_addc(&b, (char)*p);
		else
			kbuf_printf(&b, "%%%02X", *p);
	}
	return kbuf_steal(&b);
}

/* Lists every namespace into a new cache; *ret_rv is where the watch starts. */
static int list_namespaces(struct webhook_kube *k, struct http_client *hc, char **ret_rv,
			   struct kilt_error *err)
{
	_cleanup_json_ json_t *cache = json_object();
	_cleanup_free_ char *cont = NULL, *rv = NULL;
	do {
		_cleanup_free_ char *token = cont ? query_escape(cont) : NULL;
		_cleanup_free_ char *path =
			token ? xasprintf("/api/v1/namespaces?limit=500&continue=%s", token)
			      : xstrdup("/api/v1/namespaces?limit=500");
		struct http_request req = { .max_body = MAX_LIST_BYTES,
					    .timeout_ms = 30000,
					    .cancel = &k->stop };
		struct http_response resp;
		int r = api_get(k, hc, path, &req, &resp, err);
		if (r < 0)
			return r;
		free(cont);
		free(rv);
		cont = rv = NULL;
		r = kilt_k8s_list_decode(resp.body.data ? resp.body.data : "", resp.body.len, cache,
					 &rv, &cont, err);
		http_response_done(&resp);
		if (r < 0)
			return kilt_error_prefix(err, "GET /api/v1/namespaces");
	} while (cont);
	pthread_mutex_lock(&k->lock);
	json_decref(k->namespaces);
	k->namespaces = steal_pointer(&cache);
	k->synced = true;
	k->last_error[0] = '\0';
	pthread_cond_broadcast(&k->changed);
	pthread_mutex_unlock(&k->lock);
	atomic_store(&k->synced_at, (long long)time(NULL));
	atomic_fetch_add(&k->lists, 1);
	*ret_rv = steal_pointer(&rv);
	return 0;
}

struct stream {
	struct webhook_kube *k;
	struct kbuf line;
	char **rv; /* the watch's resource version, moved by each event */
	bool gone; /* 410: list again */
	bool delivered; /* an event was applied: the watch worked */
	struct kilt_error err;
	int rc;
};

static size_t on_stream(void *userdata, const char *p, size_t n)
{
	struct stream *s = userdata;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n') {
			if (kbuf_addc(&s->line, p[i]) < 0) {
				s->rc = kilt_error_setf(&s->err, -EFBIG,
							"a watch event is larger than %u bytes",
							MAX_EVENT_BYTES);
				return 0;
			}
			continue;
		}
		if (s->line.len == 0)
			continue;
		pthread_mutex_lock(&s->k->lock);
		int r = kilt_k8s_watch_event_apply(s->line.data, s->line.len, s->k->namespaces,
						   s->rv, &s->err);
		pthread_mutex_unlock(&s->k->lock);
		kbuf_done(&s->line);
		kbuf_init(&s->line, MAX_EVENT_BYTES);
		if (r == KILT_K8S_WATCH_GONE) {
			s->gone = true;
			return 0;
		}
		if (r < 0) {
			s->rc = r;
			return 0;
		}
		atomic_fetch_add(&s->k->events, 1);
		s->delivered = true;
	}
	return n;
}

/* Watches from *rv until the server ends the watch (0), the version is gone (1), or an error;
 * *ret_delivered says whether it applied an event, *ret_relist whether the error came in the
 * stream (an ERROR event the server keeps sending for that version, say: resuming from it
 * could fail for ever) rather than from the connection. */
static int watch_namespaces(struct webhook_kube *k, struct http_client *hc, char **rv,
			    bool *ret_delivered, bool *ret_relist, struct kilt_error *err)
{
	_cleanup_free_ char *version = query_escape(*rv);
	_cleanup_free_ char *path = xasprintf("/api/v1/namespaces?watch=1&allowWatchBookmarks=true"
					      "&timeoutSeconds=%d&resourceVersion=%s",
					      WATCH_SECONDS, version);
	struct stream s = { .k = k, .rv = rv };
	kbuf_init(&s.line, MAX_EVENT_BYTES);
	struct http_request req = { .max_body = MAX_OBJECT_BYTES,
				    .timeout_ms = (WATCH_SECONDS + 30) * 1000L,
				    .on_data = on_stream,
				    .on_data_userdata = &s,
				    .cancel = &k->stop };
	struct http_response resp;
	int r = api_get(k, hc, path, &req, &resp, err);
	kbuf_done(&s.line);
	if (r == 0)
		http_response_done(&resp);
	*ret_delivered = s.delivered;
	*ret_relist = false;
	if (s.gone)
		return 1;
	if (s.rc < 0) {
		*err = s.err;
		*ret_relist = true;
		return s.rc;
	}
	if (r == -ESTALE)
		return 1;
	return r;
}

static void wait_ms(struct webhook_kube *k, long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->lock);
	while (!atomic_load(&k->stop) && pthread_cond_timedwait(&k->changed, &k->lock, &until) == 0)
		;
	pthread_mutex_unlock(&k->lock);
}

static void *watch_thread(void *arg)
{
	struct webhook_kube *k = arg;
	struct http_client *hc = NULL;
	char *rv = NULL;
	long backoff = 250;
	while (!atomic_load(&k->stop)) {
		struct kilt_error err = { 0 };
		int r = hc ? 0 : new_client(k, &hc, &err);
		if (r == 0 && !rv) {
			r = list_namespaces(k, hc, &rv, &err);
			if (r == 0) {
				pthread_mutex_lock(&k->lock);
				size_t n = json_object_size(k->namespaces);
				pthread_mutex_unlock(&k->lock);
				webhook_log("info", "namespaces listed",
					    json_pack("{s:s, s:I}", "resourceVersion", rv,
						      "namespaces", (json_int_t)n));
			}
		}
		bool relist = false;
		if (r == 0) {
			bool delivered = false;
			r = watch_namespaces(k, hc, &rv, &delivered, &relist, &err);
			/* it worked: what breaks it now is a new outage, not the last one's sequel */
			if (delivered)
				backoff = 250;
			if (r == 1) {
				/* the resource version is too old: list again at once */
				atomic_fetch_add(&k->relists, 1);
				webhook_log("info", "namespace watch expired (410): listing again",
					    NULL);
				free(rv);
				rv = NULL;
				continue;
			}
			if (r == 0) {
				backoff = 250; /* the server ended a healthy watch: resume */
				continue;
			}
		}
		if (atomic_load(&k->stop))
			break;
		set_error(k, &err);
		atomic_fetch_add(&k->reconnects, 1);
		webhook_log("warn", "namespace watch failed; retrying",
			    json_pack("{s:s, s:I, s:b}", "error", err.msg, "retryMs",
				      (json_int_t)backoff, "relist", relist));
		http_client_free(hc); /* a new connection next time */
		hc = NULL;
		if (relist) {
			free(rv);
			rv = NULL;
		}
		wait_ms(k, backoff);
		backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
	}
	http_client_free(hc);
	free(rv);
	return NULL;
}

/* ---- configuration ------------------------------------------------------------------------- */

static const json_t *named(const json_t *list, const char *name, const char *field)
{
	size_t i;
	json_t *e;
	json_array_foreach (list, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));
		if (n && strcmp(n, name) == 0)
			return json_object_get(e, field);
	}
	return NULL;
}

/* A file a kubeconfig names, relative to the kubeconfig's folder. */
static int read_config_file(const char *config, const char *path, char **ret,
			    struct kilt_error *err)
{
	_cleanup_free_ char *full = NULL;
	if (path[0] != '/') {
		const char *slash = strrchr(config, '/');
		full = slash ? xasprintf("%.*s/%s", (int)(slash - config), config, path)
			     : xstrdup(path);
	} else {
		full = xstrdup(path);
	}
	size_t len = 0;
	int r = kilt_read_file(full, MAX_CONFIG_BYTES, ret, &len);
	if (r < 0)
		return kilt_error_setf(err, r, "kubeconfig %s: %s: %s", config, full, strerror(-r));
	return 0;
}

/* `field`-data (base64) or `field` (a file) of `obj`, as text; NULL when neither. */
static int config_blob(const char *config, const json_t *obj, const char *field, char **ret,
		       struct kilt_error *err)
{
	_cleanup_free_ char *data_field = xasprintf("%s-data", field);
	const char *data = json_string_value(json_object_get(obj, data_field));
	const char *file = json_string_value(json_object_get(obj, field));
	*ret = NULL;
	if (data) {
		size_t len = 0;
		if (kilt_base64_decode(data, strlen(data), ret, &len, err) < 0)
			return kilt_error_prefix(err, "kubeconfig %s: %s", config, data_field);
		return 0;
	}
	if (file)
		return read_config_file(config, file, ret, err);
	return 0;
}

static int from_kubeconfig(struct webhook_kube *k, const char *path, struct kilt_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = kilt_read_file(path, MAX_CONFIG_BYTES, &text, &len);
	if (r < 0)
		return kilt_error_setf(err, r, "kubeconfig %s: %s", path, strerror(-r));
	_cleanup_json_ json_t *cfg = NULL;
	r = kilt_yaml_load(text, len, path, 0, NULL, &cfg, err);
	if (r < 0)
		return r;
	const char *cur = json_string_value(json_object_get(cfg, "current-context"));
	if (!cur)
		return kilt_error_setf(err, -EINVAL, "kubeconfig %s: no current-context", path);
	const json_t *ctx = named(json_object_get(cfg, "contexts"), cur, "context");
	const char *cname = json_string_value(json_object_get(ctx, "cluster"));
	const char *uname = json_string_value(json_object_get(ctx, "user"));
	const json_t *cluster =
		cname ? named(json_object_get(cfg, "clusters"), cname, "cluster") : NULL;
	const json_t *user = uname ? named(json_object_get(cfg, "users"), uname, "user") : NULL;
	const char *server = json_string_value(json_object_get(cluster, "server"));
	if (!ctx || !cluster || !server)
		return kilt_error_setf(err, -EINVAL,
				       "kubeconfig %s: context %s names no cluster with a server",
				       path, cur);
	if (strncmp(server, "https://", 8) != 0)
		return kilt_error_setf(err, -EINVAL, "kubeconfig %s: server %s is not https://",
				       path, server);
	if (json_object_get(user, "exec") || json_object_get(user, "auth-provider"))
		return kilt_error_setf(err, -ENOTSUP,
				       "kubeconfig %s: user %s authenticates with a plugin, which "
				       "kilt webhook does not run; give a token or a client "
				       "certificate",
				       path, uname ? uname : "");
	k->server = xstrdup(server);
	size_t n = strlen(k->server);
	while (n && k->server[n - 1] == '/')
		k->server[--n] = '\0';
	if (json_is_true(json_object_get(cluster, "insecure-skip-tls-verify"))) {
		char host[300];
		http_url_host(k->server, host, sizeof(host));
		k->insecure_host = xstrdup(host);
	}
	if ((r = config_blob(path, cluster, "certificate-authority", &k->ca_pem, err)) < 0 ||
	    (r = config_blob(path, user, "client-certificate", &k->cert_pem, err)) < 0 ||
	    (r = config_blob(path, user, "client-key", &k->key_pem, err)) < 0)
		return r;
	const char *token = json_string_value(json_object_get(user, "token"));
	const char *token_file = json_string_value(json_object_get(user, "tokenFile"));
	if (token)
		k->token = xstrdup(token);
	else if (token_file)
		k->token_file = xstrdup(token_file);
	k->source = xasprintf("kubeconfig %s", path);
	return 0;
}

static bool in_cluster(struct webhook_kube *k)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (!host || !*host || access(SA_DIR "/token", R_OK) != 0)
		return false;
	k->server = strchr(host, ':') ? xasprintf("https://[%s]:%s", host, port ? port : "443")
				      : xasprintf("https://%s:%s", host, port ? port : "443");
	k->token_file = xstrdup(SA_DIR "/token");
	k->ca_file = xstrdup(SA_DIR "/ca.crt");
	k->source = xstrdup("in-cluster");
	return true;
}

int webhook_kube_new(const char *kubeconfig, struct webhook_kube **ret, struct kilt_error *err)
{
	struct webhook_kube *k = xcalloc(1, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->changed, &ca);
	pthread_condattr_destroy(&ca);
	k->namespaces = json_object();
	*ret = NULL;
	if (kubeconfig) {
		int r = from_kubeconfig(k, kubeconfig, err);
		if (r < 0) {
			webhook_kube_free(k);
			return r;
		}
	} else if (!in_cluster(k)) {
		webhook_kube_free(k);
		return 0;
	}
	snprintf(k->last_error, sizeof(k->last_error), "no answer from %s yet", k->server);
	if (pthread_create(&k->watcher, NULL, watch_thread, k) != 0) {
		webhook_kube_free(k);
		return kilt_error_setf(err, -EAGAIN, "cannot start the namespace watch");
	}
	k->started = true;
	/* a clean start: the first reviews find the namespaces known (or not, said in warnings) */
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += FIRST_SYNC_MS / 1000;
	pthread_mutex_lock(&k->lock);
	while (!k->synced && pthread_cond_timedwait(&k->changed, &k->lock, &until) == 0)
		;
	pthread_mutex_unlock(&k->lock);
	*ret = k;
	return 0;
}

void webhook_kube_free(struct webhook_kube *k)
{
	if (!k)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->lock);
		atomic_store(&k->stop, true);
		pthread_cond_broadcast(&k->changed);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->watcher, NULL);
	}
	json_decref(k->namespaces);
	pthread_cond_destroy(&k->changed);
	pthread_mutex_destroy(&k->lock);
	free(k->source);
	free(k->server);
	if (k->token)
		explicit_bzero(k->token, strlen(k->token));
	free(k->token);
	free(k->token_file);
	free(k->ca_file);
	free(k->ca_pem);
	free(k->cert_pem);
	if (k->key_pem)
		explicit_bzero(k->key_pem, strlen(k->key_pem));
	free(k->key_pem);
	free(k->insecure_host);
	free(k);
}

/* ---- what reviews ask ---------------------------------------------------------------------- */

/* Is `s` a DNS label as Kubernetes names namespaces and secrets (so it can go into a path)? */
static bool is_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static json_t *as_namespace(const json_t *entry)
{
	return json_pack("{s:{s:O, s:O}}", "metadata", "labels", json_object_get(entry, "labels"),
			 "annotations", json_object_get(entry, "annotations"));
}

int webhook_kube_namespace(struct webhook_kube *k, const char *name, json_t **ret, char *why,
			   size_t why_size)
{
	pthread_mutex_lock(&k->lock);
	if (!k->synced) {
		snprintf(why, why_size, "the namespace cache is not synced yet: %s", k->last_error);
		pthread_mutex_unlock(&k->lock);
		return -EAGAIN;
	}
	const json_t *e = json_object_get(k->namespaces, name);
	if (e) {
		*ret = as_namespace(e);
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	pthread_mutex_unlock(&k->lock);
	/* Not in the cache: created an instant ago, its watch event still on the way. */
	atomic_fetch_add(&k->misses, 1);
	if (!is_name(name)) {
		snprintf(why, why_size, "'%.100s' is not a namespace name", name);
		return -ENOENT;
	}
	struct kilt_error err = { 0 };
	struct http_client *hc = NULL;
	int r = new_client(k, &hc, &err);
	struct http_response resp = { 0 };
	if (r == 0) {
		_cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s", name);
		struct http_request req = { .max_body = MAX_OBJECT_BYTES,
					    .timeout_ms = MISS_GET_MS };
		r = api_get(k, hc, path, &req, &resp, &err);
	}
	http_client_free(hc);
	if (r < 0) {
		snprintf(why, why_size, "%s", err.msg);
		return r;
	}
	/* a one-event watch stream: the same decoder puts it into the cache */
	json_t *obj = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
	http_response_done(&resp);
	json_t *ev = json_pack("{s:s, s:o}", "type", "ADDED", "object", obj ? obj : json_object());
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	char *rv = NULL;
	pthread_mutex_lock(&k->lock);
	r = kilt_k8s_watch_event_apply(text, strlen(text), k->namespaces, &rv, &err);
	e = json_object_get(k->namespaces, name);
	if (r == 0 && e)
		*ret = as_namespace(e);
	pthread_mutex_unlock(&k->lock);
	free(rv);
	free(text);
	if (r < 0 || !e) {
		snprintf(why, why_size, "GET /api/v1/namespaces/%s: %s", name,
			 r < 0 ? err.msg : "not that namespace");
		return -ENOENT;
	}
	return 0;
}

int webhook_kube_pull_secrets(struct webhook_kube *k, const char *ns, const json_t *pod,
			      long budget_ms, json_t **ret, char *why, size_t why_size)
{
	*ret = NULL;
	if (!is_name(ns)) {
		snprintf(why, why_size, "'%.100s' is not a namespace name", ns);
		return -EINVAL;
	}
	const char *sa = json_string_value(
		json_object_get(json_object_get(pod, "spec"), "serviceAccountName"));
	if (!sa || !*sa)
		sa = "default";
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct kilt_error err = { 0 };
	struct http_client *hc = NULL;
	_cleanup_json_ json_t *account = NULL, *names = NULL, *auths = json_object();
	int r = new_client(k, &hc, &err);
	/* the service account's pull secrets (an account that cannot be read adds none: the pod's
	 * own still count) */
	if (r == 0 && is_name(sa)) {
		_cleanup_free_ char *path =
			xasprintf("/api/v1/namespaces/%s/serviceaccounts/%s", ns, sa);
		struct http_request req = { .max_body = MAX_OBJECT_BYTES, .timeout_ms = budget_ms };
		struct http_response resp;
		struct kilt_error serr = { 0 };
		if (api_get(k, hc, path, &req, &resp, &serr) == 0) {
			account = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0,
					     NULL);
			http_response_done(&resp);
		} else {
			r = -EACCES;
			err = serr;
		}
	}
	if (r == 0 || r == -EACCES) {
		int r2 = kilt_k8s_pull_secret_names(pod, account, &names, &err);
		if (r2 < 0)
			r = r2;
	}
	size_t i;
	json_t *n;
	json_array_foreach (names, i, n) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = budget_ms - (long)((now.tv_sec - t0.tv_sec) * 1000 +
					       (now.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			r = kilt_error_setf(&err, -ETIMEDOUT,
					    "the pull secrets were not read within %ld ms",
					    budget_ms);
			break;
		}
		const char *name = json_string_value(n);
		if (!is_name(name))
			continue;
		_cleanup_free_ char *path = xasprintf("/api/v1/namespaces/%s/secrets/%s", ns, name);
		struct http_request req = { .max_body = MAX_OBJECT_BYTES, .timeout_ms = left };
		struct http_response resp;
		struct kilt_error serr = { 0 };
		if (api_get(k, hc, path, &req, &resp, &serr) < 0) {
			atomic_fetch_add(&k->secret_failures, 1);
			r = -EACCES;
			err = serr;
			continue; /* the others may still do */
		}
		json_t *cfg = NULL;
		int pr = kilt_docker_config_parse(resp.body.data ? resp.body.data : "",
						  resp.body.len, &cfg, &serr);
		if (resp.body.data)
			explicit_bzero(resp.body.data, resp.body.len);
		http_response_done(&resp);
		if (pr < 0) {
			atomic_fetch_add(&k->secret_failures, 1);
			r = pr;
			err = serr;
			kilt_error_prefix(&err, "secret %s/%s", ns, name);
			continue;
		}
		atomic_fetch_add(&k->secret_reads, 1);
		/* the first secret naming a registry wins, as for the kubelet's first match */
		json_object_update_missing(auths, json_object_get(cfg, "auths"));
		json_decref(cfg);
	}
	http_client_free(hc);
	if (json_object_size(auths))
		*ret = json_pack("{s:O}", "auths", auths);
	if (r < 0) {
		snprintf(why, why_size, "%s", err.msg);
		return r;
	}
	return 0;
}

void webhook_kube_metrics(struct webhook_kube *k, struct kbuf *b)
{
	pthread_mutex_lock(&k->lock);
	bool synced = k->synced;
	size_t n = json_object_size(k->namespaces);
	pthread_mutex_unlock(&k->lock);
	kbuf_printf(b,
		    "# HELP kilt_webhook_namespace_cache_synced Whether the namespace cache has "
		    "been listed (1) or not (0).\n"
		    "# TYPE kilt_webhook_namespace_cache_synced gauge\n"
		    "kilt_webhook_namespace_cache_synced %d\n"
		    "# HELP kilt_webhook_namespace_cache_namespaces Namespaces in the cache.\n"
		    "# TYPE kilt_webhook_namespace_cache_namespaces gauge\n"
		    "kilt_webhook_namespace_cache_namespaces %zu\n"
		    "# HELP kilt_webhook_namespace_lists_total Lists of the namespaces (the first, "
		    "and after a watch expired).\n"
		    "# TYPE kilt_webhook_namespace_lists_total counter\n"
		    "kilt_webhook_namespace_lists_total %lu\n"
		    "# HELP kilt_webhook_namespace_relists_total Watches that expired (410 Gone).\n"
		    "# TYPE kilt_webhook_namespace_relists_total counter\n"
		    "kilt_webhook_namespace_relists_total %lu\n"
		    "# HELP kilt_webhook_namespace_watch_events_total Watch events applied.\n"
		    "# TYPE kilt_webhook_namespace_watch_events_total counter\n"
		    "kilt_webhook_namespace_watch_events_total %lu\n"
		    "# HELP kilt_webhook_namespace_watch_errors_total Failed lists or watches "
		    "(retried with backoff).\n"
		    "# TYPE kilt_webhook_namespace_watch_errors_total counter\n"
		    "kilt_webhook_namespace_watch_errors_total %lu\n"
		    "# HELP kilt_webhook_namespace_cache_misses_total Namespaces read with a GET "
		    "because the cache did not hold them yet.\n"
		    "# TYPE kilt_webhook_namespace_cache_misses_total counter\n"
		    "kilt_webhook_namespace_cache_misses_total %lu\n"
		    "# HELP kilt_webhook_pull_secret_reads_total Pull secrets read for image "
		    "lookups, by result.\n"
		    "# TYPE kilt_webhook_pull_secret_reads_total counter\n"
		    "kilt_webhook_pull_secret_reads_total{result=\"success\"} %lu\n"
		    "kilt_webhook_pull_secret_reads_total{result=\"failure\"} %lu\n",
		    synced ? 1 : 0, n, atomic_load(&k->lists), atomic_load(&k->relists),
		    atomic_load(&k->events), atomic_load(&k->errors), atomic_load(&k->misses),
		    atomic_load(&k->secret_reads), atomic_load(&k->secret_failures));
}
