/* SPDX-License-Identifier: Apache-2.0 */
/* The registry client over the HTTP client (http_client.c): manifests and config blobs by the OCI distribution API, the
 * auth dance (WWW-Authenticate bearer/basic, docker config.json, pull secrets, ECR tokens signed
 * with SigV4), TLS policy, per-lookup time budget and concurrent lookups sharing one cache. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "aws.h"
#include "http_client.h"
#include "util.h"
#include "registry.h"

#define MAX_HOSTS 64
#define MAX_INFLIGHT 256
#define TOKEN_MAX_BYTES (256u << 10)
#define ERROR_BODY_MAX (64u << 10)
#define DEFAULT_TOKEN_TTL_S 60

struct host_auth {
	char *host; /* owned */
	bool resolved; /* credentials looked up (file, ECR) */
	int64_t expires_ms; /* 0: never (auth file); ECR passwords last 12 hours */
	char *user, *password; /* owned, NULL: anonymous */
	bool plain_http; /* insecure registry found speaking HTTP */
};

struct token {
	char *key; /* owned: host|repository */
	char *header; /* owned: "Authorization: ..." */
	int64_t expires_ms;
	struct token *next;
};

struct registry_client {
	struct registry_options opts; /* strings below are owned copies */
	char **insecure; /* owned */
	size_t n_insecure;
	char *ca_file; /* owned, may be NULL */
	char **resolve; /* owned, NULL-terminated: KILT_RESOLVE entries (HOST:PORT:ADDRESS) */
	size_t n_resolve;
	struct kilt_platform default_platform;
	json_t *auth_config; /* owned, may be NULL */
	char *auth_source; /* owned: where auth_config came from */
	struct registry_cache *cache; /* owned */

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t done; /* an in-flight lookup finished */
	struct host_auth hosts[MAX_HOSTS];
	size_t n_hosts;
	struct token *tokens; /* owned list */
	char *inflight[MAX_INFLIGHT]; /* owned keys being looked up now */
	struct http_client **idle; /* owned pool of clients (connections kept alive) */
	size_t n_idle, cap_idle;

	atomic_ulong requests, hits, negative_hits, misses;
};

/* One lookup's state: its handle, deadline and the error being built. */
struct lookup {
	struct registry_client *c;
	struct http_client *http; /* borrowed from the pool */
	int64_t deadline_ms;
	/* borrowed, may be NULL: the run whose deadline comes before the lookup's own */
	const struct registry_table *run_bound;
	const struct kilt_imageref *ref;
	char *auth_header; /* owned: current Authorization header line, may be NULL */
};

struct response {
	long status;
	struct kbuf body;
	char content_type[256];
	char digest[160]; /* Docker-Content-Digest */
	char *www_auth; /* owned */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void registry_options_default(struct registry_options *ret)
{
	*ret = (struct registry_options){
		.timeout_ms = 15000,
		.concurrency = 8,
		.tag_ttl_s = 300,
		.negative_ttl_s = 30,
		.max_entries = 4096,
	};
}

static void add_insecure(struct registry_client *c, const char *h, size_t n)
{
	while (n && isspace((unsigned char)*h)) {
		h++;
		n--;
	}
	while (n && isspace((unsigned char)h[n - 1]))
		n--;
	if (!n)
		return;
	c->insecure = xrealloc(c->insecure, (c->n_insecure + 1) * sizeof(*c->insecure));
	char *s = xstrndup(h, n);
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	c->insecure[c->n_insecure++] = s;
}

static bool is_insecure(const struct registry_client *c, const char *host)
{
	for (size_t i = 0; i < c->n_insecure; i++)
		if (strcasecmp(c->insecure[i], host) == 0)
			return true;
	return false;
}

static int load_auth(struct registry_client *c, const char *explicit_path, struct kilt_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (explicit_path) {
		path = xstrdup(explicit_path);
	} else {
		const char *dc = getenv("DOCKER_CONFIG");
		const char *home = getenv("HOME");
		if (dc && *dc)
			path = xasprintf("%s/config.json", dc);
		else if (home && *home)
			path = xasprintf("%s/.docker/config.json", home);
		else
			return 0;
	}
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = kilt_read_file(path, 4u << 20, &text, &len);
	if (r == -ENOENT && !explicit_path)
		return 0;
	if (r < 0)
		return kilt_error_setf(err, r, "auth file %s: %s", path, strerror(-r));
	r = kilt_docker_config_parse(text, len, &c->auth_config, err);
	if (r < 0)
		return kilt_error_prefix(err, "auth file %s", path);
	c->auth_source = steal_pointer(&path);
	return 0;
}

int registry_client_new(const struct registry_options *opts, struct registry_client **ret,
			struct kilt_error *err)
{
	struct registry_client *c = xcalloc(1, sizeof(*c));
	c->opts = *opts;
	if (c->opts.timeout_ms <= 0)
		c->opts.timeout_ms = 15000;
	if (c->opts.concurrency == 0)
		c->opts.concurrency = 8;
	if (c->opts.concurrency > 64)
		c->opts.concurrency = 64;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->done, NULL);
	for (size_t i = 0; i < opts->n_insecure; i++)
		add_insecure(c, opts->insecure[i], strlen(opts->insecure[i]));
	const char *env = getenv("KILT_INSECURE_REGISTRIES");
	while (env && *env) {
		size_t n = strcspn(env, ",");
		add_insecure(c, env, n);
		env += n;
		if (*env == ',')
			env++;
	}
	/* KILT_RESOLVE pins names to addresses (curl's --resolve), for split-horizon setups and for
	 * tests that need an ECR-shaped host name on loopback. */
	const char *res = getenv("KILT_RESOLVE");
	while (res && *res) {
		size_t n = strcspn(res, ",");
		_cleanup_free_ char *one = xstrndup(res, n);
		c->resolve = xrealloc(c->resolve, (c->n_resolve + 2) * sizeof(*c->resolve));
		c->resolve[c->n_resolve++] = steal_pointer(&one);
		c->resolve[c->n_resolve] = NULL;
		res += n;
		if (*res == ',')
			res++;
	}
	const char *ca = opts->ca_file ? opts->ca_file : getenv("SSL_CERT_FILE");
	c->ca_file = ca && *ca ? xstrdup(ca) : NULL;
	const char *dir = opts->cache_dir ? opts->cache_dir : getenv("KILT_CACHE_DIR");
	c->opts.cache_dir = NULL;
	c->opts.insecure = NULL;
	c->opts.auth_file = NULL;
	c->opts.auth_config = NULL;
	c->opts.ca_file = NULL;
	c->opts.default_platform = NULL;
	int r = kilt_platform_parse(opts->default_platform ? opts->default_platform : "linux/amd64",
				    &c->default_platform, err);
	if (r == 0)
		r = registry_cache_new(opts->max_entries, dir, &c->cache, err);
	if (r == 0 && opts->auth_config) {
		c->auth_config = json_deep_copy(opts->auth_config);
		c->auth_source = xstrdup("the pod's pull secrets");
	} else if (r == 0) {
		r = load_auth(c, opts->auth_file, err);
	}
	if (r < 0) {
		registry_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void registry_client_free(struct registry_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_insecure; i++)
		free(c->insecure[i]);
	free(c->insecure);
	free(c->ca_file);
	for (size_t i = 0; i < c->n_resolve; i++)
		free(c->resolve[i]);
	free(c->resolve);
	json_decref(c->auth_config);
	free(c->auth_source);
	registry_cache_free(c->cache);
	for (size_t i = 0; i < c->n_hosts; i++) {
		free(c->hosts[i].host);
		free(c->hosts[i].user);
		if (c->hosts[i].password)
			explicit_bzero(c->hosts[i].password, strlen(c->hosts[i].password));
		free(c->hosts[i].password);
	}
	for (struct token *t = c->tokens, *n; t; t = n) {
		n = t->next;
		free(t->key);
		free(t->header);
		free(t);
	}
	for (size_t i = 0; i < MAX_INFLIGHT; i++)
		free(c->inflight[i]);
	for (size_t i = 0; i < c->n_idle; i++)
		http_client_free(c->idle[i]);
	free(c->idle);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void registry_stats(struct registry_client *c, struct registry_stats *ret)
{
	*ret = (struct registry_stats){
		.requests = atomic_load(&c->requests),
		.hits = atomic_load(&c->hits),
		.negative_hits = atomic_load(&c->negative_hits),
		.misses = atomic_load(&c->misses),
	};
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* A client from the pool, or a new one; -ELIBACC when libcurl cannot be loaded. */
static int handle_get(struct registry_client *c, struct http_client **ret, struct kilt_error *err)
{
	pthread_mutex_lock(&c->lock);
	struct http_client *h = c->n_idle ? c->idle[--c->n_idle] : NULL;
	pthread_mutex_unlock(&c->lock);
	if (h) {
		*ret = h;
		return 0;
	}
	const struct http_options o = {
		.insecure = (const char *const *)c->insecure,
		.n_insecure = c->n_insecure,
		.ca_file = c->ca_file,
		.resolve = (const char *const *)c->resolve,
		.registry_hints = true,
	};
	return http_client_new(&o, ret, err);
}

static void handle_put(struct registry_client *c, struct http_client *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_idle == c->cap_idle) {
		c->cap_idle = c->cap_idle ? 2 * c->cap_idle : 8;
		c->idle = xrealloc(c->idle, c->cap_idle * sizeof(*c->idle));
	}
	c->idle[c->n_idle++] = h;
	pthread_mutex_unlock(&c->lock);
}

static void response_done(struct response *r)
{
	kbuf_done(&r->body);
	free(r->www_auth);
	r->www_auth = NULL;
}

/* "the run's image lookup budget of N ms (SOURCE)", for messages. */
static const char *run_budget_text(const struct registry_table *run, char *buf, size_t size)
{
	snprintf(buf, size, "the run's image lookup budget of %ld ms%s%s%s", run->budget_ms,
		 run->budget_source ? " (" : "", run->budget_source ? run->budget_source : "",
		 run->budget_source ? ")" : "");
	return buf;
}

/* Sends one request (redirects followed, at most 5) within the lookup's time budget. Returns 0
 * with `resp` filled (any HTTP status), or a negative code with `err` filled (http_send). */
static int http_do(struct lookup *l, const char *method, const char *url,
		   const char *const *headers, const char *body, size_t body_len, size_t max_body,
		   struct response *resp, struct kilt_error *err)
{
	struct registry_client *c = l->c;
	const struct registry_table *run = l->run_bound;
	char budget[300];
	int64_t left = l->deadline_ms - now_ms();
	if (left <= 0 && run)
		return kilt_error_setf(err, -ETIMEDOUT, "%s ran out before %s %s",
				       run_budget_text(run, budget, sizeof(budget)), method, url);
	if (left <= 0)
		return kilt_error_setf(err, -ETIMEDOUT, "time budget of %ld ms spent before %s %s",
				       c->opts.timeout_ms, method, url);
	const struct http_request req = {
		.method = method,
		.url = url,
		.headers = headers,
		.body = body,
		.body_len = body_len,
		.max_body = max_body,
		.timeout_ms = (long)left,
		.budget_ms = c->opts.timeout_ms,
		.max_redirects = 5,
	};
	atomic_fetch_add(&c->requests, 1);
	struct http_response hr;
	int r = http_send(l->http, &req, &hr, err);
	if (r == -ETIMEDOUT && run)
		/* the run's deadline came before the lookup's own: it ended the request */
		return kilt_error_setf(err, -ETIMEDOUT, "%s %s: timed out: %s ran out", method, url,
				       run_budget_text(run, budget, sizeof(budget)));
	if (r < 0)
		return r;
	*resp = (struct response){ .status = hr.status, .body = hr.body };
	http_response_header(&hr, "Content-Type", resp->content_type, sizeof(resp->content_type));
	http_response_header(&hr, "Docker-Content-Digest", resp->digest, sizeof(resp->digest));
	char buf[8192];
	if (http_response_header(&hr, "WWW-Authenticate", buf, sizeof(buf)))
		resp->www_auth = xstrdup(buf);
	kbuf_done(&hr.headers);
	return 0;
}

/* ---- credentials --------------------------------------------------------------------------- */

static char *urlencode(const char *s)
{
	struct kbuf b;
	kbuf_init(&b, 1u << 16);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || strchr("-._~", ch))
			kbuf_addc(&b, (char)ch);
		else
			kbuf_printf(&b, "%%%02X", ch);
	}
	return kbuf_steal(&b);
}

static int ecr_credentials(struct lookup *l, const char *region, char **ret_user,
			   char **ret_password, struct kilt_error *err)
{
	struct aws_credentials creds;
	if (aws_credentials_from_env(&creds) < 0)
		return -ENOENT;
	/* KILT_ECR_ENDPOINT points the call elsewhere (tests; VPC endpoints). */
	const char *ep = getenv("KILT_ECR_ENDPOINT");
	_cleanup_free_ char *url =
		ep && *ep ? xstrdup(ep)
			  : xasprintf("https://api.ecr.%s.amazonaws.com%s/", region,
				      strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
	char host[300];
	http_url_host(url, host, sizeof(host));
	const char *body = "{}";
	const char *const hdrs[] = {
		"X-Amz-Target:AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
		"Content-Type:application/x-amz-json-1.1",
		NULL,
	};
	const struct aws_request req = {
		.method = "POST",
		.host = host,
		.path = "/",
		.region = region,
		.service = "ecr",
		.headers = hdrs,
		.payload = body,
		.payload_len = 2,
	};
	char **signed_headers = NULL;
	int r = aws_sign(&creds, &req, &signed_headers, err);
	if (r < 0)
		return r;
	struct response resp;
	r = http_do(l, "POST", url, (const char *const *)signed_headers, body, 2, 1u << 20, &resp,
		    err);
	aws_headers_free(signed_headers);
	if (r < 0)
		return kilt_error_prefix(err, "ECR GetAuthorizationToken (%s)", region);
	json_error_t jerr;
	_cleanup_json_ json_t *doc =
		json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
	long status = resp.status;
	response_done(&resp);
	if (status != 200) {
		const char *type = json_string_value(json_object_get(doc, "__type"));
		const char *msg = json_string_value(json_object_get(doc, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(doc, "Message"));
		return kilt_error_setf(err, -EACCES,
				       "ECR GetAuthorizationToken (%s): HTTP %ld%s%s%s%s", region,
				       status, type ? ": " : "", type ? type : "", msg ? ": " : "",
				       msg ? msg : "");
	}
	const char *tok = json_string_value(
		json_object_get(json_array_get(json_object_get(doc, "authorizationData"), 0),
				"authorizationToken"));
	_cleanup_free_ char *plain = NULL;
	size_t plen = 0;
	if (!tok || kilt_base64_decode(tok, strlen(tok), &plain, &plen, NULL) < 0 ||
	    !strchr(plain, ':'))
		return kilt_error_setf(err, -EPROTO,
				       "ECR GetAuthorizationToken (%s): no authorizationToken in "
				       "the answer",
				       region);
	char *colon = strchr(plain, ':');
	*ret_user = xstrndup(plain, (size_t)(colon - plain));
	*ret_password = xstrdup(colon + 1);
	explicit_bzero(plain, plen);
	return 0;
}

/* Credentials for the lookup's registry (auth file, then ECR); NULLs when anonymous. */
static int host_credentials(struct lookup *l, char **ret_user, char **ret_password,
			    struct kilt_error *err)
{
	struct registry_client *c = l->c;
	const char *registry = l->ref->registry;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_hosts; i++) {
		struct host_auth *h = &c->hosts[i];
		if (strcmp(h->host, registry) == 0 && h->resolved &&
		    (!h->expires_ms || h->expires_ms > now_ms())) {
			*ret_user = h->user ? xstrdup(h->user) : NULL;
			*ret_password = h->password ? xstrdup(h->password) : NULL;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	_cleanup_free_ char *user = NULL, *pass = NULL;
	int r = -ENOENT;
	if (c->auth_config) {
		r = kilt_docker_auth_lookup(c->auth_config, registry, &user, &pass, err);
		if (r < 0 && r != -ENOENT)
			return kilt_error_prefix(err, "auth file %s", c->auth_source);
	}
	char region[64];
	int64_t expires = 0;
	if (r == -ENOENT && kilt_imageref_ecr_region(registry, region, sizeof(region))) {
		r = ecr_credentials(l, region, &user, &pass, err);
		if (r < 0 && r != -ENOENT)
			return r;
		/* ECR passwords last 12 hours: ask again well before. */
		expires = now_ms() + 6 * 3600 * 1000;
	}
	pthread_mutex_lock(&c->lock);
	struct host_auth *h = NULL;
	for (size_t i = 0; i < c->n_hosts && !h; i++)
		if (strcmp(c->hosts[i].host, registry) == 0 && c->hosts[i].resolved)
			h = &c->hosts[i]; /* expired: replaced below */
	if (!h && c->n_hosts < MAX_HOSTS) {
		h = &c->hosts[c->n_hosts++];
		h->host = xstrdup(registry);
	}
	if (h) {
		free(h->user);
		if (h->password)
			explicit_bzero(h->password, strlen(h->password));
		free(h->password);
		h->resolved = true;
		h->expires_ms = expires;
		h->user = user ? xstrdup(user) : NULL;
		h->password = pass ? xstrdup(pass) : NULL;
	}
	pthread_mutex_unlock(&c->lock);
	*ret_user = steal_pointer(&user);
	*ret_password = steal_pointer(&pass);
	return 0;
}

static char *token_key(const struct lookup *l)
{
	return xasprintf("%s|%s", l->ref->registry, l->ref->repository);
}

static char *token_cached(struct lookup *l)
{
	struct registry_client *c = l->c;
	_cleanup_free_ char *key = token_key(l);
	char *hdr = NULL;
	int64_t now = now_ms();
	pthread_mutex_lock(&c->lock);
	for (struct token *t = c->tokens; t; t = t->next)
		if (strcmp(t->key, key) == 0 && t->expires_ms > now)
			hdr = xstrdup(t->header);
	pthread_mutex_unlock(&c->lock);
	return hdr;
}

static void token_store(struct lookup *l, const char *header, long ttl_s)
{
	struct registry_client *c = l->c;
	struct token *t = xcalloc(1, sizeof(*t));
	t->key = token_key(l);
	t->header = xstrdup(header);
	/* Renew a little before the registry would refuse it. */
	t->expires_ms = now_ms() + (ttl_s > 20 ? ttl_s - 10 : ttl_s) * 1000;
	int64_t now = now_ms();
	pthread_mutex_lock(&c->lock);
	/* Drop expired tokens and the one this replaces: the list stays as long as the set of
	 * repositories in use. */
	for (struct token **pp = &c->tokens; *pp;) {
		struct token *o = *pp;
		if (o->expires_ms <= now || strcmp(o->key, t->key) == 0) {
			*pp = o->next;
			free(o->key);
			free(o->header);
			free(o);
		} else {
			pp = &o->next;
		}
	}
	t->next = c->tokens;
	c->tokens = t;
	pthread_mutex_unlock(&c->lock);
}

static char *basic_header(const char *user, const char *pass)
{
	_cleanup_free_ char *up = xasprintf("%s:%s", user, pass);
	_cleanup_free_ char *b64 = kilt_base64_encode(up, strlen(up));
	explicit_bzero(up, strlen(up));
	return xasprintf("Authorization: Basic %s", b64);
}

/* `host` without its port ("[::1]:5000" -> "::1"), lower-case. */
static void host_only(const char *hostport, char *buf, size_t size)
{
	const char *p = hostport;
	size_t n;
	if (*p == '[') {
		p++;
		n = strcspn(p, "]");
	} else {
		n = strcspn(p, ":");
	}
	snprintf(buf, size, "%.*s", (int)n, p);
	for (char *q = buf; *q; q++)
		*q = (char)tolower((unsigned char)*q);
}

static bool is_ip_literal(const char *h)
{
	return strchr(h, ':') || strspn(h, "0123456789.") == strlen(h);
}

static bool ends_with_label(const char *h, const char *domain)
{
	size_t a = strlen(h), b = strlen(domain);
	return a > b && h[a - b - 1] == '.' && strcmp(h + a - b, domain) == 0;
}

/* May the credentials of the registry at `registry` (host[:port]) go to a token service on
 * `realm_host`? Yes for the same host, a name under it, or a name under its parent domain when
 * that parent has two labels or more and does not look like a public suffix such as co.uk
 * (registry-1.docker.io -> auth.docker.io, registry.gitlab.com -> gitlab.com). Ports do not
 * matter; IP addresses must match exactly. kilt has no public suffix list: this is the rule,
 * and docs/images.md states it. */
static bool realm_shares_domain(const char *registry, const char *realm_host)
{
	char reg[300], realm[300];
	host_only(registry, reg, sizeof(reg));
	host_only(realm_host, realm, sizeof(realm));
	if (strcmp(reg, realm) == 0)
		return true;
	if (is_ip_literal(reg) || is_ip_literal(realm))
		return false;
	if (ends_with_label(realm, reg))
		return true;
	const char *parent = strchr(reg, '.');
	if (!parent || !strchr(++parent, '.'))
		return false;
	const char *last = strrchr(parent, '.') + 1;
	bool two_labels = strchr(parent, '.') == last - 1;
	if (two_labels && strlen(last) == 2 && (size_t)(last - 1 - parent) <= 3)
		return false; /* co.uk, com.au, or.jp: registrable domains sit one label below */
	return strcmp(realm, parent) == 0 || ends_with_label(realm, parent);
}

/* Gets a bearer token from the challenge's realm (with basic credentials when there are some). */
static int bearer_token(struct lookup *l, const struct kilt_auth_challenge *ch, const char *user,
			const char *pass, struct kilt_error *err)
{
	const char *reg = l->ref->registry;
	if (strncmp(ch->realm, "https://", 8) != 0 && strncmp(ch->realm, "http://", 7) != 0)
		return kilt_error_setf(err, -EPROTO,
				       "%s: token realm '%.200s' is not an http(s) URL", reg,
				       ch->realm);
	/* realm?service=..&scope=repository:<repo>:pull */
	_cleanup_free_ char *scope_raw = xasprintf("repository:%s:pull", l->ref->repository);
	_cleanup_free_ char *scope = urlencode(scope_raw);
	_cleanup_free_ char *svc = ch->service ? urlencode(ch->service) : NULL;
	_cleanup_free_ char *url =
		xasprintf("%s%sscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?", scope,
			  svc ? "&service=" : "", svc ? svc : "");
	char realm_host[300];
	http_url_host(ch->realm, realm_host, sizeof(realm_host));
	bool withheld = false;
	if (user && !realm_shares_domain(kilt_imageref_api_host(l->ref), realm_host) &&
	    !realm_shares_domain(reg, realm_host)) {
		/* The registry named a token service elsewhere: its credentials stay home. */
		fprintf(stderr,
			"kilt: warning: %s: the token service %s is not on the registry's domain; "
			"asking it for a token without the registry's credentials\n",
			reg, realm_host);
		user = pass = NULL;
		withheld = true;
	}
	_cleanup_free_ char *basic = user ? basic_header(user, pass) : NULL;
	const char *const list[] = { basic, NULL };
	struct response resp;
	int r = http_do(l, "GET", url, list, NULL, 0, TOKEN_MAX_BYTES, &resp, err);
	if (basic)
		explicit_bzero(basic, strlen(basic));
	if (r < 0)
		return kilt_error_prefix(err, "%s: token service", reg);
	json_error_t jerr;
	_cleanup_json_ json_t *doc =
		json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
	if (resp.status != 200) {
		_cleanup_free_ char *msg =
			kilt_registry_error_message(resp.body.data, resp.body.len);
		const char *detail = json_string_value(json_object_get(doc, "details"));
		r = kilt_error_setf(err,
				    resp.status == 401 || resp.status == 403 ? -EACCES : -EPROTO,
				    "%s: unauthorized: token service %s answered HTTP %ld%s%s%s",
				    reg, ch->realm, resp.status, msg || detail ? ": " : "",
				    msg ? msg : (detail ? detail : ""),
				    user       ? ""
				    : withheld ? " (the registry's credentials were not sent: the "
						 "token service is not on the registry's domain)"
					       : " (no credentials configured for this registry)");
		response_done(&resp);
		return r;
	}
	response_done(&resp);
	const char *tok = json_string_value(json_object_get(doc, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(doc, "access_token"));
	if (!tok || !*tok || strlen(tok) > 64 * 1024 || strpbrk(tok, "\r\n"))
		return kilt_error_setf(err, -EPROTO, "%s: token service %s gave no token", reg,
				       ch->realm);
	json_t *ttl = json_object_get(doc, "expires_in");
	long ttl_s = json_is_integer(ttl) && json_integer_value(ttl) > 0
			     ? (long)json_integer_value(ttl)
			     : DEFAULT_TOKEN_TTL_S;
	free(l->auth_header);
	l->auth_header = xasprintf("Authorization: Bearer %s", tok);
	token_store(l, l->auth_header, ttl_s);
	return 0;
}

/* Answers a 401 challenge: fills l->auth_header for the retry. */
static int authenticate(struct lookup *l, const char *www_auth, struct kilt_error *err)
{
	const char *reg = l->ref->registry;
	if (!www_auth)
		return kilt_error_setf(err, -EACCES,
				       "%s: unauthorized (HTTP 401 without a WWW-Authenticate "
				       "challenge)",
				       reg);
	struct kilt_auth_challenge ch = { 0 };
	int r = kilt_auth_challenge_parse(www_auth, &ch, err);
	if (r < 0)
		return kilt_error_prefix(err, "%s", reg);
	char *user = NULL, *pass = NULL;
	r = host_credentials(l, &user, &pass, err);
	if (r < 0) {
	} else if (strcmp(ch.scheme, "basic") == 0) {
		if (!user) {
			r = kilt_error_setf(err, -EACCES,
					    "%s: unauthorized: the registry wants a username and "
					    "password and none is configured for it (docker login, "
					    "--auth-file, or a pull secret)",
					    reg);
		} else {
			free(l->auth_header);
			l->auth_header = basic_header(user, pass);
			/* Later lookups send it at once instead of meeting the 401 again. */
			token_store(l, l->auth_header, 3600);
		}
	} else if (strcmp(ch.scheme, "bearer") != 0 || !ch.realm) {
		r = kilt_error_setf(err, -EACCES, "%s: unsupported auth challenge '%.200s'", reg,
				    www_auth);
	} else {
		r = bearer_token(l, &ch, user, pass, err);
	}
	kilt_auth_challenge_done(&ch);
	if (pass)
		explicit_bzero(pass, strlen(pass));
	free(user);
	free(pass);
	return r;
}

/* GET /v2/<repo>/<kind>/<ref> with auth; 2xx responses only, else a clear error. */
static int registry_get(struct lookup *l, const char *kind, const char *what, const char *accept,
			size_t max_body, struct response *resp, struct kilt_error *err)
{
	struct registry_client *c = l->c;
	const char *host = kilt_imageref_api_host(l->ref);
	bool plain = false;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_hosts; i++)
		if (strcmp(c->hosts[i].host, l->ref->registry) == 0)
			plain |= c->hosts[i].plain_http;
	pthread_mutex_unlock(&c->lock);
	if (!l->auth_header)
		l->auth_header = token_cached(l);
	for (int attempt = 0;; attempt++) {
		_cleanup_free_ char *url =
			xasprintf("%s://%s/v2/%s/%s/%s", plain ? "http" : "https", host,
				  l->ref->repository, kind, what);
		_cleanup_free_ char *acc = accept ? xasprintf("Accept: %s", accept) : NULL;
		const char *list[3] = { NULL };
		size_t nl = 0;
		if (acc)
			list[nl++] = acc;
		if (l->auth_header)
			list[nl++] = l->auth_header;
		int r = http_do(l, "GET", url, list, NULL, 0, max_body, resp, err);
		if (r == -EPROTO && !plain && is_insecure(c, host) && attempt == 0) {
			/* An insecure registry that speaks plain HTTP: remember and retry. */
			plain = true;
			pthread_mutex_lock(&c->lock);
			if (c->n_hosts < MAX_HOSTS) {
				c->hosts[c->n_hosts].host = xstrdup(l->ref->registry);
				c->hosts[c->n_hosts++].plain_http = true;
			}
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		if (r < 0)
			return r;
		if (resp->status == 401 && attempt < 2) {
			_cleanup_free_ char *challenge =
				resp->www_auth ? xstrdup(resp->www_auth) : NULL;
			_cleanup_free_ char *msg =
				kilt_registry_error_message(resp->body.data, resp->body.len);
			bool had_auth = l->auth_header != NULL;
			response_done(resp);
			if (had_auth && attempt > 0)
				return kilt_error_setf(err, -EACCES, "%s: unauthorized: %s",
						       l->ref->registry,
						       msg ? msg : "credentials refused");
			r = authenticate(l, challenge, err);
			if (r < 0)
				return r;
			continue;
		}
		if (resp->status >= 200 && resp->status < 300)
			return 0;
		_cleanup_free_ char *msg =
			kilt_registry_error_message(resp->body.data, resp->body.len);
		long st = resp->status;
		response_done(resp);
		int code = st == 404		      ? -ENOENT
			   : (st == 401 || st == 403) ? -EACCES
			   : st == 429		      ? -EAGAIN
						      : -EPROTO;
		const char *label = st == 404		       ? "not found"
				    : (st == 401 || st == 403) ? "unauthorized"
				    : st == 429		       ? "rate limited"
							       : "failed";
		return kilt_error_setf(err, code, "%s %s: %s (HTTP %ld from %s)%s%s",
				       strcmp(kind, "blobs") == 0 ? "blob" : "manifest", what,
				       label, st, host, msg ? ": " : "", msg ? msg : "");
	}
}

/* ---- lookups ------------------------------------------------------------------------------- */

static int fetch_manifest(struct lookup *l, const char *what, struct kilt_manifest **ret,
			  char **ret_digest, struct kilt_error *err)
{
	struct response resp;
	int r = registry_get(l, "manifests", what, KILT_MANIFEST_ACCEPT, KILT_MANIFEST_MAX_BYTES,
			     &resp, err);
	if (r < 0)
		return r;
	const char *body = resp.body.data ? resp.body.data : "";
	_cleanup_free_ char *digest = NULL;
	if (kilt_digest_valid(what)) {
		/* Pinned: the bytes must hash to what was asked for. */
		r = kilt_digest_verify(what, body, resp.body.len, err);
		if (r < 0)
			kilt_error_prefix(err, "manifest %s", what);
		else
			digest = xstrdup(what);
	} else if (kilt_digest_valid(resp.digest) && strncmp(resp.digest, "sha256:", 7) != 0) {
		r = kilt_digest_verify(resp.digest, body, resp.body.len, err);
		if (r < 0)
			kilt_error_prefix(err, "manifest %s", what);
		else
			digest = xstrdup(resp.digest);
	} else {
		digest = kilt_digest_sha256(body, resp.body.len);
		if (resp.digest[0] && strcmp(resp.digest, digest) != 0)
			r = kilt_error_setf(err, -EPROTO,
					    "manifest %s: Docker-Content-Digest %s does not match "
					    "the content (%s)",
					    what, resp.digest, digest);
	}
	if (r == 0) {
		r = kilt_manifest_parse(body, resp.body.len, resp.content_type, ret, err);
		if (r < 0)
			kilt_error_prefix(err, "manifest %s", what);
	}
	response_done(&resp);
	if (r < 0)
		return r;
	*ret_digest = steal_pointer(&digest);
	return 0;
}

static int lookup_uncached(struct lookup *l, const struct kilt_platform *want, bool explicit_plat,
			   json_t **ret, struct kilt_error *err)
{
	const struct kilt_imageref *ref = l->ref;
	const char *what = ref->digest ? ref->digest : ref->tag;
	struct response resp;
	struct kilt_manifest *m = NULL;
	_cleanup_free_ char *digest = NULL;
	int r = fetch_manifest(l, what, &m, &digest, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *manifest_digest = xstrdup(digest);
	char want_s[100];
	kilt_platform_format(want, want_s, sizeof(want_s));
	if (!ref->digest) {
		/* A tag moved to (or stayed on) a digest whose facts are known: done. */
		_cleanup_free_ char *fkey = xasprintf("facts|%s|%s", digest, want_s);
		bool neg = false;
		json_t *known = registry_cache_get(l->c->cache, fkey, &neg, NULL);
		if (known && explicit_plat &&
		    !kilt_platform_matches(
			    want, json_string_value(json_object_get(known, "os")),
			    json_string_value(json_object_get(known, "architecture")),
			    json_string_value(json_object_get(known, "variant")))) {
			json_decref(known);
			known = NULL;
		}
		if (known) {
			kilt_manifest_free(m);
			*ret = known;
			return 0;
		}
	}
	if (kilt_manifest_kind(m) == KILT_MANIFEST_INDEX) {
		const char *pick = NULL;
		r = kilt_manifest_select(m, want, &pick, err);
		if (r == 0) {
			free(manifest_digest);
			manifest_digest = xstrdup(pick);
		}
		kilt_manifest_free(m);
		m = NULL;
		if (r < 0)
			return r;
		_cleanup_free_ char *again = NULL;
		r = fetch_manifest(l, manifest_digest, &m, &again, err);
		if (r < 0)
			return r;
		if (kilt_manifest_kind(m) != KILT_MANIFEST_IMAGE) {
			kilt_manifest_free(m);
			return kilt_error_setf(err, -EPROTO,
					       "manifest %s: an index inside an index is not "
					       "supported",
					       manifest_digest);
		}
	}
	_cleanup_free_ char *cfg_digest = xstrdup(kilt_manifest_config_digest(m));
	kilt_manifest_free(m);
	r = registry_get(l, "blobs", cfg_digest, NULL, KILT_CONFIG_MAX_BYTES, &resp, err);
	if (r < 0)
		return kilt_error_prefix(err, "config");
	r = kilt_digest_verify(cfg_digest, resp.body.data ? resp.body.data : "", resp.body.len,
			       err);
	if (r < 0) {
		response_done(&resp);
		return kilt_error_prefix(err, "config blob %s", cfg_digest);
	}
	json_t *facts = NULL;
	r = kilt_image_config_parse(resp.body.data ? resp.body.data : "", resp.body.len, &facts,
				    err);
	response_done(&resp);
	if (r < 0)
		return r;
	const char *os = json_string_value(json_object_get(facts, "os"));
	const char *arch = json_string_value(json_object_get(facts, "architecture"));
	const char *variant = json_string_value(json_object_get(facts, "variant"));
	if (explicit_plat && !kilt_platform_matches(want, os, arch, variant)) {
		kilt_error_setf(err, -ENOENT,
				"platform %s missing: the image is single-platform %s/%s%s%s",
				want_s, os && *os ? os : "?", arch && *arch ? arch : "?",
				variant ? "/" : "", variant ? variant : "");
		json_decref(facts);
		return err ? err->code : -ENOENT;
	}
	char plat[100];
	snprintf(plat, sizeof(plat), "%s/%s%s%s", os ? os : "", arch ? arch : "",
		 variant ? "/" : "", variant ? variant : "");
	json_object_set_new(facts, "digest", json_string(digest));
	json_object_set_new(facts, "manifest_digest", json_string(manifest_digest));
	json_object_set_new(facts, "config_digest", json_string(cfg_digest));
	json_object_set_new(facts, "platform", json_string(plat));
	*ret = facts;
	return 0;
}

static bool inflight_begin(struct registry_client *c, const char *key)
{
	/* Returns false after waiting when another thread already looks `key` up. */
	pthread_mutex_lock(&c->lock);
	bool waited = false;
	for (;;) {
		bool busy = false;
		for (size_t i = 0; i < MAX_INFLIGHT; i++)
			if (c->inflight[i] && strcmp(c->inflight[i], key) == 0)
				busy = true;
		if (!busy)
			break;
		waited = true;
		pthread_cond_wait(&c->done, &c->lock);
	}
	if (!waited) {
		for (size_t i = 0; i < MAX_INFLIGHT; i++) {
			if (!c->inflight[i]) {
				c->inflight[i] = xstrdup(key);
				break;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	return !waited;
}

static void inflight_end(struct registry_client *c, const char *key)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < MAX_INFLIGHT; i++) {
		if (c->inflight[i] && strcmp(c->inflight[i], key) == 0) {
			free(c->inflight[i]);
			c->inflight[i] = NULL;
			break;
		}
	}
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
}

/* Looks the cache up: tag -> digest, then digest+platform -> facts. */
static json_t *cached_facts(struct registry_client *c, const char *neg_key, const char *tag_key,
			    const char *pinned, const char *plat_s, bool *ret_negative,
			    struct kilt_error *err)
{
	bool neg = false;
	json_t *v = registry_cache_get(c->cache, neg_key, &neg, err);
	json_decref(v);
	if (neg) {
		*ret_negative = true;
		return NULL;
	}
	_cleanup_free_ char *digest = pinned ? xstrdup(pinned) : NULL;
	if (!digest) {
		_cleanup_json_ json_t *t = registry_cache_get(c->cache, tag_key, &neg, NULL);
		const char *d = json_string_value(json_object_get(t, "digest"));
		if (!d)
			return NULL;
		digest = xstrdup(d);
	}
	_cleanup_free_ char *fkey = xasprintf("facts|%s|%s", digest, plat_s);
	return registry_cache_get(c->cache, fkey, &neg, NULL);
}

static json_t *with_reference(json_t *facts, const char *canonical)
{
	json_t *out = json_deep_copy(facts);
	json_object_set_new(out, "reference", json_string(canonical));
	return out;
}

/* Remembers a failed lookup for `ttl_s` across runs; the stored message says for how long, so a
 * later run that gets it knows it is an earlier answer. */
static void remember_failure(struct registry_client *c, const char *key, const struct kilt_error *e,
			     long ttl_s)
{
	if (ttl_s <= 0)
		return;
	struct kilt_error kept = *e;
	size_t len = strnlen(kept.msg, sizeof(kept.msg));
	snprintf(kept.msg + len, sizeof(kept.msg) - len, " (failure remembered for %lds)", ttl_s);
	registry_cache_put_negative(c->cache, key, &kept, ttl_s);
}

/* registry_lookup within the budget of `run` (may be NULL; its clock started by
 * registry_table_start). */
static int lookup_within(struct registry_client *c, const char *text, const char *platform,
			 const struct registry_table *run, json_t **ret_facts,
			 struct kilt_error *err)
{
	struct kilt_imageref ref = { 0 };
	int r = kilt_imageref_parse(text, &ref, err);
	if (r < 0)
		return r;
	struct kilt_platform want = c->default_platform;
	bool explicit_plat = platform && *platform;
	if (explicit_plat && (r = kilt_platform_parse(platform, &want, err)) < 0) {
		kilt_imageref_done(&ref);
		return r;
	}
	char plat_s[100];
	kilt_platform_format(&want, plat_s, sizeof(plat_s));
	_cleanup_free_ char *canonical = kilt_imageref_format(&ref);
	_cleanup_free_ char *tag_key =
		xasprintf("tag|%s/%s:%s", ref.registry, ref.repository, ref.tag ? ref.tag : "");
	_cleanup_free_ char *neg_key = xasprintf("neg|%s|%s|%d", canonical, plat_s, explicit_plat);

	bool negative = false;
	json_t *hit = NULL;
	for (;;) {
		hit = cached_facts(c, neg_key, tag_key, ref.digest, plat_s, &negative, err);
		/* inflight_begin returns false after waiting for the same lookup in another
		 * thread: its result is in the cache now (or it failed without caching). */
		if (hit || negative || inflight_begin(c, neg_key))
			break;
	}
	if (hit && explicit_plat &&
	    !kilt_platform_matches(&want, json_string_value(json_object_get(hit, "os")),
				   json_string_value(json_object_get(hit, "architecture")),
				   json_string_value(json_object_get(hit, "variant")))) {
		kilt_error_setf(err, -ENOENT, "image %s: platform %s missing: the image is %s",
				canonical, plat_s,
				json_string_value(json_object_get(hit, "platform")));
		json_decref(hit);
		kilt_imageref_done(&ref);
		return -ENOENT;
	}
	if (hit || negative) {
		kilt_imageref_done(&ref);
		atomic_fetch_add(&c->hits, 1);
		if (negative) {
			/* the stored message says it is an earlier answer (remember_failure) */
			atomic_fetch_add(&c->negative_hits, 1);
			return err ? err->code : -ENOENT;
		}
		*ret_facts = with_reference(hit, canonical);
		json_decref(hit);
		return 0;
	}
	struct lookup l = {
		.c = c,
		.deadline_ms = now_ms() + c->opts.timeout_ms,
		.ref = &ref,
	};
	if (run && run->budget_ms > 0 && run->deadline_ms) {
		if (run->deadline_ms <= now_ms()) {
			char budget[300];
			kilt_error_setf(err, -ETIMEDOUT, "image %s: not looked up: %s was spent",
					canonical, run_budget_text(run, budget, sizeof(budget)));
			inflight_end(c, neg_key);
			kilt_imageref_done(&ref);
			return -ETIMEDOUT;
		}
		if (run->deadline_ms < l.deadline_ms) {
			l.deadline_ms = run->deadline_ms;
			l.run_bound = run;
		}
	}
	atomic_fetch_add(&c->misses, 1);
	json_t *facts = NULL;
	struct kilt_error e = { 0 };
	r = handle_get(c, &l.http, &e);
	if (r == 0) {
		r = lookup_uncached(&l, &want, explicit_plat, &facts, &e);
		handle_put(c, l.http);
	}
	free(l.auth_header);
	if (r == 0) {
		const char *top = json_string_value(json_object_get(facts, "digest"));
		_cleanup_free_ char *fkey = xasprintf("facts|%s|%s", top, plat_s);
		registry_cache_put(c->cache, fkey, facts, 0, true);
		if (!ref.digest && ref.tag) {
			_cleanup_json_ json_t *t = json_pack("{s:s}", "digest", top);
			registry_cache_put(c->cache, tag_key, t, c->opts.tag_ttl_s, false);
		}
		*ret_facts = with_reference(facts, canonical);
		json_decref(facts);
	} else {
		kilt_error_prefix(&e, "image %s", canonical);
		/* Across runs (a run's table keeps its own failures to its end), definite answers
		 * are remembered for the negative TTL; transport trouble (timeout, refused,
		 * unreachable) for at most 10 s, so another run soon after recovers quickly. A
		 * timeout the run's budget caused says nothing about the registry. */
		if (r == -ENOENT || r == -EACCES || r == -EPROTO || r == -EBADMSG || r == -ENOTSUP)
			remember_failure(c, neg_key, &e, c->opts.negative_ttl_s);
		else if (r != -EINVAL && !(r == -ETIMEDOUT && l.run_bound))
			remember_failure(c, neg_key, &e,
					 c->opts.negative_ttl_s < 10 ? c->opts.negative_ttl_s : 10);
		if (err)
			*err = e;
	}
	inflight_end(c, neg_key);
	kilt_imageref_done(&ref);
	return r;
}

int registry_lookup(struct registry_client *c, const char *text, const char *platform,
		    json_t **ret_facts, struct kilt_error *err)
{
	return lookup_within(c, text, platform, NULL, ret_facts, err);
}

struct pool {
	struct registry_client *c;
	struct registry_job *jobs;
	size_t n;
	atomic_size_t next;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			break;
		struct registry_job *j = &p->jobs[i];
		j->err = (struct kilt_error){ 0 };
		j->facts = NULL;
		j->rc = lookup_within(p->c, j->ref, j->platform, j->run, &j->facts, &j->err);
	}
	return NULL;
}

void registry_lookup_many(struct registry_client *c, struct registry_job *jobs, size_t n)
{
	struct pool p = { .c = c, .jobs = jobs, .n = n };
	atomic_init(&p.next, 0);
	size_t nt = c->opts.concurrency < n ? c->opts.concurrency : n;
	if (nt <= 1) {
		worker(&p);
		return;
	}
	pthread_t *t = xcalloc(nt, sizeof(*t));
	size_t started = 0;
	for (size_t i = 0; i < nt; i++)
		if (pthread_create(&t[i], NULL, worker, &p) == 0)
			started++;
		else
			break;
	if (started == 0)
		worker(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
}

/* ---- two-phase image facts ---------------------------------------------------------------- */

void registry_table_start(struct registry_table *t)
{
	if (t->budget_ms > 0 && !t->deadline_ms)
		t->deadline_ms = now_ms() + t->budget_ms;
}

/* Failures that are not about one platform of the image: its other platforms would fail alike. */
static bool image_wide_failure(int rc)
{
	return rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ECONNREFUSED || rc == -EACCES ||
	       rc == -EAGAIN || rc == -EPERM || rc == -EINVAL || rc == -ELIBACC;
}

void registry_table_resolve(struct registry_table *t)
{
	struct kilt_image_needs *needs = t->needs;
	if (!needs || !needs->n)
		return;
	registry_table_start(t);
	struct registry_job *jobs = xcalloc(needs->n, sizeof(*jobs));
	size_t *at = xcalloc(needs->n, sizeof(*at));
	/* Each pass asks for at most one platform of each image; an image-wide failure answers the
	 * image's remaining entries. An image has a few platforms, so there are a few passes. */
	for (;;) {
		_cleanup_json_ json_t *failed = json_object(); /* image -> entry with its failure */
		_cleanup_json_ json_t *asked = json_object(); /* images asked in this pass */
		for (size_t i = 0; i < needs->n; i++) {
			const struct kilt_image_need *need = &needs->v[i];
			if (need->resolved && need->rc < 0 && image_wide_failure(need->rc))
				json_object_set_new(failed, need->image,
						    json_integer((json_int_t)i));
		}
		size_t n = 0;
		for (size_t i = 0; i < needs->n; i++) {
			struct kilt_image_need *need = &needs->v[i];
			if (need->resolved)
				continue;
			json_t *f = json_object_get(failed, need->image);
			if (f) {
				const struct kilt_image_need *src =
					&needs->v[json_integer_value(f)];
				need->resolved = true;
				need->rc = src->rc;
				need->err = src->err;
				continue;
			}
			if (json_object_get(asked, need->image))
				continue;
			json_object_set_new(asked, need->image, json_true());
			jobs[n] = (struct registry_job){ .ref = need->image,
							 .platform = need->platform,
							 .run = t };
			at[n++] = i;
		}
		if (!n)
			break;
		registry_lookup_many(t->client, jobs, n);
		for (size_t k = 0; k < n; k++) {
			struct kilt_image_need *need = &needs->v[at[k]];
			need->resolved = true;
			need->rc = jobs[k].rc;
			need->facts = jobs[k].facts;
			need->err = jobs[k].err;
		}
	}
	free(at);
	free(jobs);
}

void registry_resolve(struct registry_client *c, struct kilt_image_needs *needs)
{
	struct registry_table t = { .client = c, .needs = needs };
	registry_table_resolve(&t);
}

void registry_table_resolve_hook(void *userdata, struct kilt_image_needs *needs)
{
	struct registry_table *t = userdata;
	t->needs = needs;
	registry_table_resolve(t);
}

int registry_table_callback(void *userdata, const char *image, const char *platform,
			    json_t **ret_facts, struct kilt_error *err)
{
	struct registry_table *t = userdata;
	if (!t->needs) {
		registry_table_start(t);
		return lookup_within(t->client, image, platform, t, ret_facts, err);
	}
	const struct kilt_image_need *need = kilt_image_needs_find(t->needs, image, platform);
	if (!need || !need->resolved) {
		/* not listed ahead: looked up now, and kept for the rest of the run all the same */
		kilt_image_needs_add(t->needs, image, platform);
		registry_table_resolve(t);
	}
	return kilt_image_needs_facts(t->needs, image, platform, ret_facts, err);
}

int registry_facts_callback(void *userdata, const char *image, const char *platform,
			    json_t **ret_facts, struct kilt_error *err)
{
	return registry_lookup(userdata, image, platform, ret_facts, err);
}
