/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt cfn-macro`: the CloudFormation macro as an AWS Lambda custom runtime. It runs the Lambda
 * Runtime API loop (or processes one event with --event), resolves the per-stack settings, loads
 * and caches the recipe (builtin, inline, HTTPS or S3), patches every task definition of the
 * template with the ECS engine and answers {requestId, status, fragment, errorMessage}. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "builtin_recipe.h"
#include "aws.h"
#include "cli.h"
#include "http_client.h"
#include "fileio.h"
#include "util.h"
#include "lambda.h"
#include "registry.h"

extern char **environ;

#define MAX_RECIPE_BYTES ((size_t)1024 * 1024)
#define RECIPE_CACHE_SLOTS 8
/* Decisions kept in one log line (CloudWatch cuts events at 256 KB). */
#define MAX_LOGGED_DECISIONS 200
/* The most the event body may be: the Lambda payload limit plus JSON framing. */
#define MAX_EVENT_BYTES (KILT_MACRO_MAX_EVENT + 64 * 1024)

/* ---- state kept across warm invocations ---------------------------------------------------- */

struct cached_recipe {
	char *key; /* owned: kilt_macro_settings_recipe_key() */
	struct kilt_recipe *recipe; /* owned */
	uint64_t last_used;
};

struct macro {
	json_t *env; /* owned: the environment layer of the settings */
	struct cached_recipe cache[RECIPE_CACHE_SLOTS];
	uint64_t uses;
	struct http_client *
		fetch; /* owned, lazily created: recipe downloads (keep-alive across invocations) */
	/* owned, lazily created: image facts for containers that do not say what they run; its
	 * cache lives across warm invocations */
	struct registry_client *registry;
	int64_t deadline_ms; /* of the current invocation; 0 when unknown */
};

/* What one invocation did, for the log line. */
struct outcome {
	bool success;
	char error[KILT_MACRO_MAX_MESSAGE + 1];
	struct kilt_report report;
	bool have_report;
	const char *mode;
	char recipe_name[128];
	char recipe_hash[65];
	const char *recipe_from;
	size_t template_bytes;
};

static int64_t now_ms(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the environment layer ----------------------------------------------------------------- */

static const struct {
	const char *var, *setting;
} env_settings[] = {
	{ "KILT_MODE", "Mode" },
	{ "KILT_RECIPE", "Recipe" },
	{ "KILT_RECIPE_URL", "RecipeUrl" },
	{ "KILT_RECIPE_SHA256", "RecipeSha256" },
	{ "KILT_LOG_GROUP", "LogGroup" },
	{ "KILT_IMAGE_AUTH_SECRET", "ImageAuthSecret" },
	{ "KILT_CONFIG", "Config" },
};

/* Reads the function's environment into a settings layer: the KILT_* variables above, and
 * KILT_CONFIG_<name>=value for single recipe config values (name kept as written). Empty
 * variables count as unset (CloudFormation templates often pass "" for "not given"); a value that
 * is not UTF-8 is an error, never dropped (that would fall back to the defaults). */
static int env_layer(json_t **ret, struct kilt_error *err)
{
	json_auto_t *env = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(env_settings); i++) {
		const char *v = getenv(env_settings[i].var);
		if (!v || !*v)
			continue;
		json_t *s = json_string(v);
		if (!s)
			return kilt_error_setf(err, -EINVAL, "%s: not valid UTF-8",
					       env_settings[i].var);
		json_object_set_new(env, env_settings[i].setting, s);
	}
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "KILT_CONFIG_", 12) != 0)
			continue;
		const char *eq = strchr(*e, '=');
		if (!eq || eq == *e + 12 || !eq[1])
			continue;
		int n = (int)(eq - *e);
		_cleanup_free_ char *key = xasprintf("Config.%.*s", n - 12, *e + 12);
		json_t *s = json_string(eq + 1);
		if (!s || json_object_set_new(env, key, s) < 0) {
			/* The message goes into JSON too: name the variable only when it can be. */
			json_auto_t *name = json_stringn(*e, (size_t)n);
			return name ? kilt_error_setf(err, -EINVAL, "%.*s: not valid UTF-8", n, *e)
				    : kilt_error_setf(
					      err, -EINVAL,
					      "a KILT_CONFIG_ variable name is not valid UTF-8");
		}
	}
	*ret = steal_pointer(&env);
	return 0;
}

/* ---- time ---------------------------------------------------------------------------------- */

/* What an invocation keeps to answer after its image lookups (the engine, the reply). */
#define ANSWER_RESERVE_MS 3000
/* The image lookups' budget of an invocation without a deadline (--event). */
#define EVENT_LOOKUP_BUDGET_MS 20000

/* The budget of all the image lookups of this invocation: what is left until its deadline less
 * the time to answer, so that CloudFormation gets the reply (and its reason) before Lambda stops
 * the function. `*ret_source` names it for messages. */
static long lookup_budget_ms(const struct macro *m, const char **ret_source)
{
	if (m->deadline_ms <= 0) {
		*ret_source = "the macro's budget for an event without a deadline";
		return EVENT_LOOKUP_BUDGET_MS;
	}
	*ret_source = "the time this invocation has left, less 3000 ms to answer";
	int64_t left = m->deadline_ms - now_ms(CLOCK_REALTIME) - ANSWER_RESERVE_MS;
	return left < 1 ? 1 : (long)left;
}

/* ---- recipe loading ------------------------------------------------------------------------ */

/* The time an outbound fetch may take: what is left of the invocation minus a margin to answer,
 * at most 10 s. */
static long fetch_timeout_ms(const struct macro *m)
{
	long budget = 10000;
	if (m->deadline_ms > 0) {
		int64_t left = m->deadline_ms - now_ms(CLOCK_REALTIME) - 1500;
		if (left < budget)
			budget = left < 500 ? 500 : (long)left;
	}
	return budget;
}

/* GETs `url` (headers: "Name: value" lines, NULL-terminated, may be NULL) into an owned buffer,
 * HTTPS only (http_client.c), following redirects only when no header (a signature) is sent. */
static int http_get(struct macro *m, const char *url, const char *const *headers, char **ret,
		    size_t *ret_len, struct kilt_error *err)
{
	if (!m->fetch) {
		const struct http_options o = { .user_agent = "kilt-cfn-macro/" KILT_VERSION };
		int r = http_client_new(&o, &m->fetch, err);
		if (r < 0)
			return r;
	}
	const struct http_request req = {
		.url = url,
		.headers = headers,
		.max_body = MAX_RECIPE_BYTES,
		.timeout_ms = fetch_timeout_ms(m),
		.max_redirects = headers ? 0 : 5,
	};
	struct http_response resp;
	int r = http_send(m->fetch, &req, &resp, err);
	if (r == -EFBIG)
		return kilt_error_setf(err, -EFBIG, "more than %zu bytes; a recipe is smaller",
				       MAX_RECIPE_BYTES);
	if (r < 0)
		return r;
	if (resp.status != 200) {
		r = kilt_error_setf(err, -EIO, "HTTP %ld%s%.200s", resp.status,
				    resp.body.len ? ": " : "", resp.body.len ? resp.body.data : "");
		http_response_done(&resp);
		return r;
	}
	*ret_len = resp.body.len;
	*ret = kbuf_steal(&resp.body);
	http_response_done(&resp);
	return 0;
}

/* s3://bucket/key through the S3 REST API, signed with the function's role credentials. */
static int s3_get(struct macro *m, const char *url, char **ret, size_t *ret_len,
		  struct kilt_error *err)
{
	const char *bk = url + 5;
	const char *slash = strchr(bk, '/');
	_cleanup_free_ char *bucket = xstrndup(bk, (size_t)(slash - bk));
	const char *key = slash + 1;
	/* Keys are sent as written: restrict them to characters that need no encoding. */
	if (strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/") !=
	    strlen(key))
		return kilt_error_setf(err, -EINVAL,
				       "S3 key \"%.200s\": use only letters, digits and - . _ ~ /",
				       key);
	/* S3 signs the path as sent, but the SigV4 rules kilt_sigv4_sign follows (and curl) fold
	 * these segments: the request would be refused as SignatureDoesNotMatch. */
	for (const char *seg = key;; seg++) {
		size_t n = strcspn(seg, "/");
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return kilt_error_setf(err, -EINVAL,
					       "S3 key \"%.200s\": an empty, '.' or '..' segment "
					       "cannot be fetched",
					       key);
		seg += n;
		if (!*seg)
			break;
	}
	struct aws_credentials creds;
	const char *region = aws_region_from_env();
	if (aws_credentials_from_env(&creds) < 0)
		return kilt_error_setf(err, -EACCES,
				       "no AWS credentials in the function's environment "
				       "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
	if (!region)
		return kilt_error_setf(err, -EINVAL, "AWS_REGION is not set");
	/* KILT_S3_ENDPOINT (https://host[:port]) points at an S3-compatible endpoint using path
	 * style; the default is the bucket's virtual host in the function's region. */
	const char *endpoint = getenv("KILT_S3_ENDPOINT");
	_cleanup_free_ char *host = NULL;
	_cleanup_free_ char *path = NULL;
	if (endpoint && *endpoint) {
		if (strncmp(endpoint, "https://", 8) != 0)
			return kilt_error_setf(err, -EINVAL,
					       "KILT_S3_ENDPOINT: expected https://host[:port]");
		host = xstrdup(endpoint + 8);
		host[strcspn(host, "/")] = '\0';
		path = xasprintf("/%s/%s", bucket, key);
	} else {
		host = xasprintf("%s.s3.%s.amazonaws.com", bucket, region);
		path = xasprintf("/%s", key);
	}
	_cleanup_free_ char *full = xasprintf("https://%s%s", host, path);
	const struct aws_request req = {
		.method = "GET",
		.host = host,
		.path = path,
		.region = region,
		.service = "s3",
		.content_sha256 = true,
	};
	char **signed_headers = NULL;
	int r = aws_sign(&creds, &req, &signed_headers, err);
	if (r < 0)
		return r;
	r = http_get(m, full, (const char *const *)signed_headers, ret, ret_len, err);
	aws_headers_free(signed_headers);
	return r;
}

/* The recipe's name for messages: the URL's file name without extension. */
static char *name_from_url(const char *url)
{
	const char *base = strrchr(url, '/');
	base = base ? base + 1 : url;
	size_t n = strcspn(base, ".?#");
	return n ? xstrndup(base, n) : xstrdup("recipe");
}

static int load_recipe(struct macro *m, const struct kilt_macro_settings *s,
		       struct kilt_recipe **ret, struct kilt_error *err)
{
	_cleanup_free_ char *key = kilt_macro_settings_recipe_key(s);
	struct cached_recipe *slot = NULL;
	for (size_t i = 0; i < RECIPE_CACHE_SLOTS; i++) {
		if (m->cache[i].key && strcmp(m->cache[i].key, key) == 0) {
			m->cache[i].last_used = ++m->uses;
			*ret = m->cache[i].recipe;
			return 0;
		}
		if (!slot || m->cache[i].last_used < slot->last_used)
			slot = &m->cache[i];
	}

	_cleanup_free_ char *fetched = NULL;
	_cleanup_free_ char *name = NULL;
	const char *text;
	size_t len = 0;
	int r = 0;
	if (s->recipe_text) {
		text = s->recipe_text;
		len = strlen(text);
		name = xstrdup("inline");
	} else if (s->recipe_builtin) {
		text = builtin_recipe(s->recipe_builtin, &len);
		if (!text)
			return kilt_error_setf(err, -ENOENT,
					       "recipe " KILT_MACRO_BUILTIN_PREFIX
					       "%.64s: no such builtin recipe (builtin: falco)",
					       s->recipe_builtin);
		name = xstrdup(s->recipe_builtin);
	} else {
		if (strncmp(s->recipe_url, "s3://", 5) == 0)
			r = s3_get(m, s->recipe_url, &fetched, &len, err);
		else
			r = http_get(m, s->recipe_url, NULL, &fetched, &len, err);
		if (r < 0)
			return kilt_error_prefix(err, "recipe %.300s: cannot fetch", s->recipe_url);
		text = fetched;
		name = name_from_url(s->recipe_url);
	}
	if (s->recipe_sha256) {
		char hex[65];
		kilt_macro_sha256_hex(text, len, hex);
		if (strcmp(hex, s->recipe_sha256) != 0)
			return kilt_error_setf(
				err, -EBADMSG,
				"recipe %s: sha256 is %s but RecipeSha256 (%s) says "
				"%s; publish the expected file or update RecipeSha256",
				s->recipe_url ? s->recipe_url : name, hex,
				kilt_macro_layer_name(s->recipe_from), s->recipe_sha256);
	}
	struct kilt_recipe *recipe = NULL;
	r = kilt_recipe_load_string(text, len, name, &recipe, err);
	if (r < 0)
		return kilt_error_prefix(err, "recipe (from %s) is invalid",
					 kilt_macro_layer_name(s->recipe_from));
	free(slot->key);
	kilt_recipe_free(slot->recipe);
	slot->key = steal_pointer(&key);
	slot->recipe = recipe;
	slot->last_used = ++m->uses;
	*ret = recipe;
	return 0;
}

/* ---- one event ----------------------------------------------------------------------------- */

static void fail(struct outcome *o, const struct kilt_error *err, const char *prefix)
{
	char buf[1024];
	kilt_error_format(err, buf, sizeof(buf));
	snprintf(o->error, sizeof(o->error), "kilt: %s%s", prefix ? prefix : "", buf);
	o->success = false;
}

/* Processes a decoded event; returns the owned reply text. Never fails: every problem becomes
 * a "failure" reply. */
static char *process(struct macro *m, struct kilt_macro_event *ev, struct outcome *o,
		     size_t *ret_len)
{
	struct kilt_error err = { 0 };
	struct kilt_macro_settings s = { 0 };
	char *reply = NULL;
	json_auto_t *params = NULL;
	json_auto_t *logconf = NULL;
	_cleanup_(kilt_image_needs_done) struct kilt_image_needs needs = { 0 };
	int r = kilt_macro_event_check(ev, &err);
	if (r < 0) {
		fail(o, &err, NULL);
		goto out;
	}
	r = kilt_macro_settings_resolve(ev->params, ev->template, m->env, &s, &err);
	if (r < 0) {
		fail(o, &err, "settings: ");
		goto out;
	}
	o->mode = s.mode == KILT_MACRO_OPT_IN ? "opt-in" : "opt-out";
	o->recipe_from = kilt_macro_layer_name(s.recipe_from);
	struct kilt_recipe *recipe = NULL;
	r = load_recipe(m, &s, &recipe, &err);
	if (r < 0) {
		fail(o, &err, NULL);
		goto out;
	}
	snprintf(o->recipe_name, sizeof(o->recipe_name), "%s", kilt_recipe_name(recipe));
	snprintf(o->recipe_hash, sizeof(o->recipe_hash), "%s", kilt_recipe_hash(recipe));

	/* Template parameter values plus the pseudo parameters the event tells us. */
	params = json_deep_copy(ev->parameter_values);
	if (*ev->region)
		json_object_set_new(params, "AWS::Region", json_string(ev->region));
	if (*ev->account_id)
		json_object_set_new(params, "AWS::AccountId", json_string(ev->account_id));
	if (*ev->region)
		json_object_set_new(params, "AWS::URLSuffix",
				    json_string(strncmp(ev->region, "cn-", 3) == 0
							? "amazonaws.com.cn"
							: "amazonaws.com"));
	struct kilt_ecs_options opts;
	kilt_ecs_options_default(&opts);
	opts.input = KILT_ECS_INPUT_CLOUDFORMATION;
	opts.mode = s.mode == KILT_MACRO_OPT_IN ? KILT_ECS_OPT_IN : KILT_ECS_OPT_OUT;
	opts.config = s.config;
	opts.parameters = params;
	opts.sidecar_repository_credentials = s.image_auth_secret;
	if (s.log_group) {
		logconf = json_pack("{s:s, s:{s:s, s:s, s:s}}", "LogDriver", "awslogs", "Options",
				    "awslogs-group", s.log_group, "awslogs-region",
				    *ev->region ? ev->region : "us-east-1", "awslogs-stream-prefix",
				    "kilt");
		opts.sidecar_log_configuration = logconf;
	}
	if (!m->registry) {
		struct registry_options ropts;
		registry_options_default(&ropts);
		/* Leave time to answer within the function's timeout (>= 30 s). */
		ropts.timeout_ms = 8000;
		/* The CA bundle is found where Amazon Linux keeps it (http_ca_bundle). */
		if (registry_client_new(&ropts, &m->registry, &err) < 0) {
			fail(o, &err, "image lookups: ");
			goto out;
		}
	}
	/* the lookups first, together, each distinct image once and all within the invocation's
	 * time; then the engine */
	struct registry_table table = { .client = m->registry, .needs = &needs };
	table.budget_ms = lookup_budget_ms(m, &table.budget_source);
	kilt_ecs_list_images(recipe, ev->template, &opts, &needs);
	registry_table_resolve(&table);
	opts.image_facts = registry_table_callback;
	opts.image_facts_userdata = &table;
	kilt_report_init(&o->report);
	o->have_report = true;
	/* On failure the engine undoes its changes; the template is dropped then anyway, so it keeps
	 * no rollback beyond the current task. */
	opts.discard_on_failure = true;
	r = kilt_ecs_inject(recipe, ev->template, &opts, &o->report, &err);
	if (r < 0) {
		fail(o, &err, NULL);
		goto out;
	}
	r = kilt_macro_reply(ev->request_id, kilt_macro_event_result(ev), NULL, &reply, ret_len,
			     &err);
	if (r < 0) {
		fail(o, &err, NULL);
		goto out;
	}
	o->template_bytes = *ret_len;
	o->success = true;
out:
	kilt_macro_settings_done(&s);
	if (!reply) {
		struct kilt_error ignored = { 0 };
		kilt_macro_reply(ev->request_id, NULL, o->error, &reply, ret_len, &ignored);
	}
	return reply;
}

/* One JSON line per invocation: ids, decisions, counts and duration; never template contents. */
static void log_invocation(const char *lambda_id, const struct kilt_macro_event *ev,
			   const struct outcome *o, double ms)
{
	json_auto_t *line = json_object();
	json_object_set_new(line, "level", json_string(o->success ? "info" : "error"));
	json_object_set_new(line, "msg",
			    json_string(o->success ? "template processed" : "template refused"));
	if (lambda_id)
		json_object_set_new(line, "lambdaRequestId", json_string(lambda_id));
	if (ev) {
		json_object_set_new(line, "requestId", json_string(ev->request_id));
		json_object_set_new(line, "transformId", json_string(ev->transform_id));
		json_object_set_new(line, "region", json_string(ev->region));
		json_object_set_new(line, "accountId", json_string(ev->account_id));
	}
	json_object_set_new(line, "status", json_string(o->success ? "success" : "failure"));
	if (o->mode)
		json_object_set_new(line, "mode", json_string(o->mode));
	if (o->recipe_name[0])
		json_object_set_new(line, "recipe",
				    json_pack("{s:s, s:s, s:s}", "name", o->recipe_name, "sha256",
					      o->recipe_hash, "from", o->recipe_from));
	if (o->have_report) {
		/* the report as `kilt inject --report json` prints it; a log line stays bounded */
		json_auto_t *rep = kilt_report_to_json(&o->report);
		json_t *decisions = json_object_get(rep, "decisions");
		size_t n = json_array_size(decisions);
		if (n > MAX_LOGGED_DECISIONS) {
			for (size_t i = n; i > MAX_LOGGED_DECISIONS; i--)
				json_array_remove(decisions, i - 1);
			json_object_set_new(rep, "decisionsNotLogged",
					    json_integer((json_int_t)(n - MAX_LOGGED_DECISIONS)));
		}
		json_object_update(line, rep);
	}
	if (o->template_bytes)
		json_object_set_new(line, "replyBytes",
				    json_integer((json_int_t)o->template_bytes));
	if (!o->success)
		json_object_set_new(line, "error", json_string(o->error));
	json_object_set_new(line, "durationMs", json_real((double)(int64_t)(ms * 1000) / 1000));
	char *text = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (text) {
		fprintf(stderr, "%s\n", text);
		fflush(stderr);
		free(text);
	}
}

static void outcome_done(struct outcome *o)
{
	if (o->have_report)
		kilt_report_done(&o->report);
}

/* Decodes and processes one event body. Returns the owned reply, or NULL with `err` filled when
 * the body is not a macro event at all (no requestId to answer). */
static char *handle(struct macro *m, const char *lambda_id, const char *body, size_t len,
		    size_t *ret_len, bool *ret_success, struct kilt_error *err)
{
	double t0 = now_monotonic();
	struct kilt_macro_event ev = { 0 };
	struct outcome o = { 0 };
	char *reply = NULL;
	int r = kilt_macro_event_parse(body, len, &ev, err);
	if (r < 0) {
		kilt_error_prefix(err, "not a CloudFormation macro event");
		fail(&o, err, NULL);
		log_invocation(lambda_id, NULL, &o, (now_monotonic() - t0) * 1000);
		return NULL;
	}
	reply = process(m, &ev, &o, ret_len);
	*ret_success = o.success;
	log_invocation(lambda_id, &ev, &o, (now_monotonic() - t0) * 1000);
	outcome_done(&o);
	kilt_macro_event_done(&ev);
	return reply;
}

static void macro_done(struct macro *m)
{
	json_decref(m->env);
	for (size_t i = 0; i < RECIPE_CACHE_SLOTS; i++) {
		free(m->cache[i].key);
		kilt_recipe_free(m->cache[i].recipe);
	}
	http_client_free(m->fetch);
	registry_client_free(m->registry);
}

/* Checks the environment layer on its own (a template with neither parameters nor mapping) and
 * warms the recipe cache with the function-wide recipe. Returns 0, or the error that makes every
 * invocation fail (a bad KILT_* variable). */
static int macro_init(struct macro *m, struct kilt_error *err)
{
	int r = env_layer(&m->env, err);
	if (r < 0)
		return r;
	struct kilt_macro_settings s = { 0 };
	r = kilt_macro_settings_resolve(NULL, NULL, m->env, &s, err);
	if (r < 0)
		return r;
	/* A recipe that cannot be loaded now may still be overridden per stack: not fatal. */
	struct kilt_recipe *recipe;
	struct kilt_error ignored = { 0 };
	if (!s.recipe_url)
		load_recipe(m, &s, &recipe, &ignored);
	kilt_macro_settings_done(&s);
	return 0;
}

/* ---- front ends ---------------------------------------------------------------------------- */

/* --event answers on stdout whatever happens, as CloudFormation would be answered: a failure
 * reply carrying the event's requestId when one can be read ("" otherwise). The error also goes
 * to stderr. */
static int event_failure(const char *body, size_t len, const struct kilt_error *err)
{
	cli_report(err);
	char id[256] = "";
	if (body) {
		json_auto_t *j = json_loadb(body, len, 0, NULL);
		const char *s = json_string_value(json_object_get(j, "requestId"));
		if (s && strlen(s) < sizeof(id))
			memcpy(id, s, strlen(s) + 1);
	}
	char buf[1024], msg[1100];
	snprintf(msg, sizeof(msg), "kilt: %s", kilt_error_format(err, buf, sizeof(buf)));
	_cleanup_free_ char *reply = NULL;
	size_t reply_len = 0;
	struct kilt_error ignored = { 0 };
	if (kilt_macro_reply(id, NULL, msg, &reply, &reply_len, &ignored) == 0) {
		fwrite(reply, 1, reply_len, stdout);
		fputc('\n', stdout);
	}
	return EXIT_ERROR;
}

static int run_event_file(const char *path)
{
	struct kilt_error err = { 0 };
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	if (fileio_read(path, MAX_EVENT_BYTES, &body, &len, &err) < 0)
		return event_failure(NULL, 0, &err);
	struct macro m = { 0 };
	int r = macro_init(&m, &err);
	if (r < 0) {
		kilt_error_prefix(&err, "settings");
		macro_done(&m);
		return event_failure(body, len, &err);
	}
	size_t reply_len = 0;
	bool success = false;
	_cleanup_free_ char *reply = handle(&m, NULL, body, len, &reply_len, &success, &err);
	macro_done(&m);
	if (!reply)
		return event_failure(body, len, &err);
	fwrite(reply, 1, reply_len, stdout);
	fputc('\n', stdout);
	return success ? EXIT_OK : EXIT_ERROR;
}

static int run_loop(void)
{
	struct kilt_error err = { 0 };
	const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
	if (!api || !*api) {
		fputs("kilt cfn-macro: AWS_LAMBDA_RUNTIME_API is not set: this runs as an AWS "
		      "Lambda custom runtime (use --event FILE to process one event locally)\n",
		      stderr);
		return EXIT_ERROR;
	}
	struct lambda_client *client = NULL;
	if (lambda_client_new(api, &client, &err) < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	struct macro m = { 0 };
	int rc = EXIT_ERROR;
	if (macro_init(&m, &err) < 0) {
		char buf[1024];
		kilt_error_prefix(&err, "kilt: settings");
		kilt_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"init failed\",\"error\":");
		json_auto_t *s = json_string(buf);
		json_dumpf(s, stderr, JSON_ENCODE_ANY);
		fputs("}\n", stderr);
		struct kilt_error e2 = { 0 };
		if (lambda_init_error(client, "Kilt.InvalidSettings", buf, &e2) < 0)
			cli_report(&e2);
		goto out;
	}
	for (;;) {
		struct lambda_invocation inv = { 0 };
		int r = lambda_next(client, MAX_EVENT_BYTES, &inv, &err);
		/* A dropped connection is retried a few times before giving up on the API. */
		for (int attempt = 1; r == -EIO && attempt <= 3; attempt++) {
			cli_report(&err);
			nanosleep(&(struct timespec){ .tv_nsec = 50L * 1000000 * attempt }, NULL);
			err = (struct kilt_error){ 0 };
			r = lambda_next(client, MAX_EVENT_BYTES, &inv, &err);
		}
		if (r == -E2BIG && inv.request_id[0]) {
			struct kilt_error e2 = { 0 };
			if (lambda_invocation_error(client, inv.request_id, "Kilt.EventTooLarge",
						    err.msg, &e2) < 0)
				cli_report(&e2);
			lambda_invocation_done(&inv);
			continue;
		}
		if (r < 0) {
			/* The runtime API went away: exit and let Lambda start a fresh one. */
			cli_report(&err);
			goto out;
		}
		m.deadline_ms = inv.deadline_ms;
		if (inv.trace_id[0])
			setenv("_X_AMZN_TRACE_ID", inv.trace_id, 1);
		size_t len = 0;
		bool success = false;
		struct kilt_error e = { 0 };
		_cleanup_free_ char *reply =
			handle(&m, inv.request_id, inv.body, inv.len, &len, &success, &e);
		struct kilt_error e2 = { 0 };
		if (!reply)
			r = lambda_invocation_error(client, inv.request_id, "Kilt.InvalidEvent",
						    e.msg, &e2);
		else
			r = lambda_respond(client, inv.request_id, reply, len, &e2);
		if (r == -E2BIG) {
			/* The runtime API refused the reply's size: CloudFormation still needs an
			 * answer, and a failure reply is small. */
			cli_report(&e2);
			struct kilt_macro_event ev = { 0 };
			struct kilt_error ignored = { 0 };
			_cleanup_free_ char *small = NULL;
			size_t small_len = 0;
			const char *rid = "";
			if (kilt_macro_event_parse(inv.body, inv.len, &ev, &ignored) == 0)
				rid = ev.request_id;
			kilt_macro_reply(
				rid, NULL,
				"kilt: the reply was refused by Lambda as too large; split the "
				"stack into nested stacks",
				&small, &small_len, &ignored);
			kilt_macro_event_done(&ev);
			e2 = (struct kilt_error){ 0 };
			r = lambda_respond(client, inv.request_id, small, small_len, &e2);
		}
		if (r < 0)
			cli_report(&e2);
		lambda_invocation_done(&inv);
	}
out:
	macro_done(&m);
	lambda_client_free(client);
	return rc;
}

static void usage(FILE *out)
{
	fputs("Usage: kilt cfn-macro [--event FILE]\n"
	      "\n"
	      "The CloudFormation macro that patches every ECS task definition of a stack. "
	      "Without\n"
	      "options it is an AWS Lambda custom runtime: it serves invocations from the runtime\n"
	      "API named by AWS_LAMBDA_RUNTIME_API until the runtime stops it.\n"
	      "\n"
	      "Options:\n"
	      "      --event FILE   process one macro event (JSON, '-' for stdin), print the "
	      "reply\n"
	      "                     on stdout and the log line on stderr\n"
	      "  -h, --help         show this help\n"
	      "\n"
	      "Settings (highest first): the Transform's Parameters, the template's\n"
	      "Mappings.KiltSettings, the environment (KILT_MODE, KILT_RECIPE, KILT_RECIPE_URL,\n"
	      "KILT_RECIPE_SHA256, KILT_LOG_GROUP, KILT_IMAGE_AUTH_SECRET, KILT_CONFIG,\n"
	      "KILT_CONFIG_<name>), defaults. See docs/cloudformation.md.\n"
	      "\n"
	      "Exit status: 0 success (with --event: the reply's status is success), 1 error or a\n"
	      "failure reply, 2 usage error. As a runtime it runs until the runtime stops it.\n",
	      out);
}

int cmd_cfn_macro(int argc, char **argv)
{
	enum { OPT_EVENT = 0x100 };
	static const struct option opts[] = {
		{ "event", required_argument, NULL, OPT_EVENT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* -e is --explain in kilt inject: one meaning per letter */
	static const struct cli_retired_short retired[] = { { 'e', "--event FILE" }, { 0 } };
	static const struct cli_command_options me = { .name = "cfn-macro",
						       .opts = opts,
						       .retired = retired };
	const char *event = NULL;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_EVENT:
			event = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("cfn-macro", "unexpected argument '%s'", argv[optind]);
	/* OpenSSL reads openssl.cnf on first use: about a third of its first-use cost, paid inside
	 * the cold start (the recipe's sha256). The bundled libcrypto looks for Debian's path,
	 * which Amazon Linux does not have, so the function never had a configuration; skipping
	 * the read makes every host behave alike. OPENSSL_CONF, when set, is still honoured. */
	const char *conf = getenv("OPENSSL_CONF");
	if (!conf || !*conf)
		OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	return event ? run_event_file(event) : run_loop();
}
