/* SPDX-License-Identifier: Apache-2.0 */
/* What every subcommand of the kilt binary shares: reporting errors once, usage errors with a
 * suggestion, KEY=VALUE settings, output formats and the one set of registry options of the
 * commands that look up images. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

void cli_report(const struct kilt_error *err)
{
	char buf[1024];
	fprintf(stderr, "kilt: %s\n", kilt_error_format(err, buf, sizeof(buf)));
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	const char *sep = *cmd ? " " : "";
	fprintf(stderr, "kilt%s%s: ", sep, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'kilt%s%s --help'.\n", sep, cmd);
	return EXIT_USAGE;
}

int cli_add_setting(json_t *obj, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return -EINVAL;
	/* jansson refuses such keys and values (and frees what was to be added) */
	if (kilt_utf8_valid_prefix((const unsigned char *)kv, strlen(kv)) != strlen(kv))
		return -EILSEQ;
	_cleanup_free_ char *key = xstrndup(kv, (size_t)(eq - kv));
	json_t *cur = obj;
	char *seg = key;
	for (char *dot; (dot = strchr(seg, '.')); seg = dot + 1) {
		*dot = '\0';
		if (!*seg)
			return -EINVAL;
		json_t *next = json_object_get(cur, seg);
		if (!json_is_object(next)) {
			next = json_object();
			json_object_set_new(cur, seg, next);
		}
		cur = next;
	}
	if (!*seg)
		return -EINVAL;
	json_object_set_new(cur, seg, json_string(eq + 1));
	return 0;
}

/* ---- unknown options ------------------------------------------------------------------------ */

/* Optimal string alignment distance (a swap of two neighbours counts one), capped at 9. */
static unsigned edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	if (la > 40 || lb > 40)
		return 9;
	unsigned d[41][41];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb] > 9 ? 9 : d[la][lb];
}

bool cli_similar(const char *a, const char *b)
{
	return edit_distance(a, strlen(a), b, strlen(b)) <= 2;
}

static bool is_hidden(const char *name, const char *const *hidden)
{
	for (size_t i = 0; hidden && hidden[i]; i++)
		if (strcmp(hidden[i], name) == 0)
			return true;
	return false;
}

/* The long option nearest to `name` (at most a third of its letters apart), or NULL. */
static const char *nearest_long(const char *name, size_t len, const struct option *opts,
				const char *const *hidden)
{
	const char *best = NULL;
	unsigned best_d = len < 6 ? 2 : (unsigned)(len / 3);
	for (const struct option *o = opts; o->name; o++) {
		if (is_hidden(o->name, hidden))
			continue;
		unsigned d = edit_distance(name, len, o->name, strlen(o->name));
		if (d <= best_d && (!best || d < best_d)) {
			best = o->name;
			best_d = d;
		}
	}
	return best;
}

static const char *long_of_short(int c, const struct option *opts)
{
	for (const struct option *o = opts; o->name; o++)
		if (o->val == c && !o->flag)
			return o->name;
	return NULL;
}

int cli_bad_option(const struct cli_command_options *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	const char *name = cmd->name;
	if (c == ':') {
		/* a missing argument: optopt is the short letter or the long option's value */
		const char *ln = long_of_short(optopt, cmd->opts);
		if (strncmp(arg, "--", 2) == 0 || optopt >= 256 || !optopt)
			return cli_usage_error(name, "option '%s' needs a value", arg);
		if (ln)
			return cli_usage_error(name, "option '-%c' (--%s) needs a value", optopt,
					       ln);
		return cli_usage_error(name, "option '-%c' needs a value", optopt);
	}
	if (strncmp(arg, "--", 2) == 0 && (optopt == 0 || optopt >= 256 || arg[2])) {
		const char *n = arg + 2;
		size_t len = strcspn(n, "=");
		size_t prefixed = 0;
		for (const struct option *o = cmd->opts; o->name; o++) {
			if (strlen(o->name) == len && strncmp(o->name, n, len) == 0) {
				if (n[len] == '=' && o->has_arg == no_argument)
					return cli_usage_error(name, "option '--%s' takes no value",
							       o->name);
				return cli_usage_error(name, "option '--%.*s' needs a value",
						       (int)len, n);
			}
			if (strncmp(o->name, n, len) == 0)
				prefixed++;
		}
		if (prefixed > 1)
			return cli_usage_error(name,
					       "option '--%.*s' is ambiguous (%zu options "
					       "start so); spell it out",
					       (int)len, n, prefixed);
		const char *near = nearest_long(n, len, cmd->opts, cmd->hidden);
		if (near)
			return cli_usage_error(name,
					       "unknown option '--%.*s'; did you mean '--%s'?",
					       (int)len, n, near);
		return cli_usage_error(name, "unknown option '--%.*s'", (int)len, n);
	}
	/* an unknown short option; short letters kilt gave up (one meaning per letter across every
	 * command) point to the long spelling that still works */
	for (const struct cli_retired_short *r = cmd->retired; r && r->letter; r++)
		if (r->letter == optopt)
			return cli_usage_error(name, "unknown option '-%c'; did you mean '%s'?",
					       optopt, r->instead);
	if (optopt > ' ' && optopt < 127)
		return cli_usage_error(name, "unknown option '-%c'", optopt);
	return cli_usage_error(name, "unknown option '%s'", arg);
}

/* ---- output formats ------------------------------------------------------------------------- */

static const char *const output_names[] = {
	[CLI_OUTPUT_TEXT] = "text",
	[CLI_OUTPUT_JSON] = "json",
	[CLI_OUTPUT_YAML] = "yaml",
};

int cli_output_parse(const char *cmd, const char *arg, unsigned allowed, enum cli_output *ret)
{
	char list[64] = "";
	for (size_t i = 0; i < ARRAY_SIZE(output_names); i++) {
		if (!(allowed & (1u << i)))
			continue;
		if (strcmp(arg, output_names[i]) == 0) {
			*ret = (enum cli_output)i;
			return 0;
		}
		size_t n = strlen(list);
		snprintf(list + n, sizeof(list) - n, "%s%s", n ? " or " : "", output_names[i]);
	}
	return cli_usage_error(cmd, "--output must be %s, not '%s'", list, arg);
}

/* ---- registry options ----------------------------------------------------------------------- */

void cli_registry_init(struct cli_registry *r)
{
	*r = (struct cli_registry){ 0 };
	registry_options_default(&r->ro);
	r->ro.insecure = r->insecure;
	r->budget_ms = 60000;
}

int cli_parse_long(const char *s, long min, long max, long *ret)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !end || *end || end == s || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli_registry_option(struct cli_registry *r, const char *cmd, int c, const char *arg)
{
	long v;
	switch (c) {
	case 'a':
		r->ro.auth_file = arg;
		return 1;
	case CLI_OPT_INSECURE_REGISTRY:
		if (r->ro.n_insecure == ARRAY_SIZE(r->insecure)) {
			cli_usage_error(cmd, "too many --insecure-registry (at most %zu)",
					ARRAY_SIZE(r->insecure));
			return -1;
		}
		r->insecure[r->ro.n_insecure++] = arg;
		return 1;
	case CLI_OPT_CA_FILE:
		r->ro.ca_file = arg;
		return 1;
	case CLI_OPT_IMAGE_TIMEOUT:
		if (cli_parse_long(arg, 1, 3600000, &v) < 0) {
			cli_usage_error(cmd,
					"--image-timeout: expected milliseconds (1 to "
					"3600000), not '%s'",
					arg);
			return -1;
		}
		r->ro.timeout_ms = v;
		return 1;
	case CLI_OPT_IMAGE_BUDGET:
		if (cli_parse_long(arg, 1, 3600000, &v) < 0) {
			cli_usage_error(cmd,
					"--image-budget: expected milliseconds (1 to "
					"3600000), not '%s'",
					arg);
			return -1;
		}
		r->budget_ms = v;
		return 1;
	case CLI_OPT_CONCURRENCY:
		if (cli_parse_long(arg, 1, 64, &v) < 0) {
			cli_usage_error(cmd, "--concurrency: expected 1 to 64, not '%s'", arg);
			return -1;
		}
		r->ro.concurrency = (unsigned)v;
		return 1;
	case CLI_OPT_CACHE_DIR:
		r->ro.cache_dir = arg;
		return 1;
	case CLI_OPT_CACHE_ENTRIES:
		if (cli_parse_long(arg, 1, 1000000, &v) < 0) {
			cli_usage_error(cmd, "--cache-entries: expected a count, not '%s'", arg);
			return -1;
		}
		r->ro.max_entries = (size_t)v;
		return 1;
	default:
		return 0;
	}
}

const char cli_registry_help[] =
	"Image lookups (a container that does not say what it runs; docs/images.md):\n"
	"  -a, --auth-file FILE       docker config.json or a Kubernetes dockerconfigjson\n"
	"                             Secret (JSON or YAML); default $DOCKER_CONFIG/config.json\n"
	"                             or ~/.docker/config.json\n"
	"      --insecure-registry HOST[:PORT]\n"
	"                             allow plain HTTP or an unverified certificate for this\n"
	"                             registry (repeatable; also the comma-separated\n"
	"                             KILT_INSECURE_REGISTRIES)\n"
	"      --ca-file FILE         trust this CA bundle (default: SSL_CERT_FILE or system)\n"
	"      --image-timeout MS     time budget of each lookup (default 15000; also --timeout)\n"
	"      --image-budget MS      time budget of all the lookups of the run together, from\n"
	"                             the first (default 60000); each distinct image is looked\n"
	"                             up once per run\n"
	"      --concurrency N        lookups at once (default 8)\n"
	"      --cache-dir DIR        keep facts by digest in DIR across runs (default\n"
	"                             KILT_CACHE_DIR; none when unset)\n"
	"      --cache-entries N      entries kept in memory (default 4096)\n";
