/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt image inspect REF...`: print what kilt learns from a registry about images (entrypoint,
 * command, environment, user, working directory, platform, digests), the facts `kilt inject`
 * uses for containers that do not say what they run. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "internal.h"
#include "registry.h"

static void help(FILE *out)
{
	fputs("Usage: kilt image inspect [options] REF...\n"
	      "\n"
	      "Resolve image references against their registries and print the facts kilt uses:\n"
	      "entrypoint, command, environment, user, working directory, platform and digests.\n"
	      "REF is any Docker reference: nginx, ghcr.io/org/app:1.2, host:5000/app@sha256:...\n"
	      "Several REFs are looked up concurrently; identical ones once.\n"
	      "\n"
	      "Options:\n"
	      "  -p, --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image\n"
	      "                                    (default linux/amd64; a single-platform image\n"
	      "                                    for another platform is then an error)\n"
	      "  -a, --auth-file FILE       docker config.json or a Kubernetes dockerconfigjson\n"
	      "                             Secret (JSON or YAML); default "
	      "$DOCKER_CONFIG/config.json\n"
	      "                             or ~/.docker/config.json\n"
	      "      --insecure-registry HOST[:PORT]  allow plain HTTP or an unverified "
	      "certificate\n"
	      "                             for this registry (repeatable; also the "
	      "comma-separated\n"
	      "                             KILT_INSECURE_REGISTRIES)\n"
	      "      --ca-file FILE         trust this CA bundle (default: SSL_CERT_FILE or "
	      "system)\n"
	      "      --timeout MS           time budget of each lookup (default 15000)\n"
	      "      --concurrency N        lookups at once (default 8)\n"
	      "      --cache-dir DIR        keep facts by digest in DIR across runs (default\n"
	      "                             KILT_CACHE_DIR; none when unset)\n"
	      "      --cache-entries N      entries kept in memory, least recently used dropped\n"
	      "                             first (default 4096)\n"
	      "      --repeat N             look every REF up N times (shows the cache at work)\n"
	      "      --stats                print request and cache counters to stderr\n"
	      "  -o, --output json|text     output format (default text)\n"
	      "  -h, --help                 show this help\n"
	      "\n"
	      "Credentials come from the auth file (auths: base64 auth or username/password); ECR\n"
	      "registries (<acct>.dkr.ecr.<region>.amazonaws.com) without an entry use\n"
	      "GetAuthorizationToken signed with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
	      "AWS_SESSION_TOKEN. Exit status: 0 when every REF resolved, 1 otherwise.\n",
	      out);
}

static void print_list(const char *label, const json_t *arr)
{
	printf("%-14s", label);
	if (json_array_size(arr) == 0) {
		puts("(none)");
		return;
	}
	_cleanup_free_ char *s = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);
	puts(s ? s : "");
}

static void print_text(const json_t *f)
{
	static const char *const keys[][2] = {
		{ "reference", "reference:" },	    { "digest", "digest:" },
		{ "manifest_digest", "manifest:" }, { "config_digest", "config:" },
		{ "platform", "platform:" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		printf("%-14s%s\n", keys[i][1], json_string_value(json_object_get(f, keys[i][0])));
	print_list("entrypoint:", json_object_get(f, "entrypoint"));
	print_list("command:", json_object_get(f, "command"));
	const char *user = json_string_value(json_object_get(f, "user"));
	const char *wd = json_string_value(json_object_get(f, "working_dir"));
	printf("%-14s%s\n", "user:", user && *user ? user : "(default)");
	printf("%-14s%s\n", "working_dir:", wd && *wd ? wd : "(default)");
	const json_t *env = json_object_get(f, "environment");
	printf("%-14s%s\n", "environment:", json_array_size(env) ? "" : "(none)");
	size_t i;
	json_t *v;
	json_array_foreach (env, i, v) {
		printf("  %s\n", json_string_value(v));
	}
}

static int parse_long(const char *s, long min, long max, long *ret)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !end || *end || end == s || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int inspect(int argc, char **argv)
{
	enum {
		OPT_INSECURE = 256,
		OPT_CA,
		OPT_TIMEOUT,
		OPT_CONC,
		OPT_CACHE_DIR,
		OPT_REPEAT,
		OPT_STATS,
		OPT_CACHE_ENTRIES,
	};
	static const struct option opts[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "auth-file", required_argument, NULL, 'a' },
		{ "insecure-registry", required_argument, NULL, OPT_INSECURE },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "concurrency", required_argument, NULL, OPT_CONC },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "cache-entries", required_argument, NULL, OPT_CACHE_ENTRIES },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct registry_options ro;
	registry_options_default(&ro);
	const char *platform = NULL;
	const char *insecure[64];
	size_t n_insecure = 0;
	bool json_out = false, stats = false;
	long repeat = 1, v;
	int c;
	while ((c = getopt_long(argc, argv, "p:a:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			platform = optarg;
			break;
		case 'a':
			ro.auth_file = optarg;
			break;
		case OPT_INSECURE:
			if (n_insecure == ARRAY_SIZE(insecure))
				return cli_usage_error("image inspect",
						       "too many --insecure-registry");
			insecure[n_insecure++] = optarg;
			break;
		case OPT_CA:
			ro.ca_file = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_long(optarg, 1, 3600000, &v) < 0)
				return cli_usage_error("image inspect",
						       "--timeout: expected milliseconds");
			ro.timeout_ms = v;
			break;
		case OPT_CONC:
			if (parse_long(optarg, 1, 64, &v) < 0)
				return cli_usage_error("image inspect",
						       "--concurrency: expected 1 to 64");
			ro.concurrency = (unsigned)v;
			break;
		case OPT_CACHE_DIR:
			ro.cache_dir = optarg;
			break;
		case OPT_REPEAT:
			if (parse_long(optarg, 1, 1000000, &repeat) < 0)
				return cli_usage_error("image inspect",
						       "--repeat: expected a count");
			break;
		case OPT_STATS:
			stats = true;
			break;
		case OPT_CACHE_ENTRIES:
			if (parse_long(optarg, 1, 1000000, &v) < 0)
				return cli_usage_error("image inspect",
						       "--cache-entries: expected a count");
			ro.max_entries = (size_t)v;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				json_out = true;
			else if (strcmp(optarg, "text") == 0)
				json_out = false;
			else
				return cli_usage_error("image inspect",
						       "--output: expected json or text");
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			return cli_usage_error("image inspect", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("image inspect", "expected at least one image reference");
	struct kilt_platform plat;
	struct kilt_error perr = { 0 };
	if (platform && kilt_platform_parse(platform, &plat, &perr) < 0)
		return cli_usage_error("image inspect", "%s", perr.msg);
	ro.insecure = insecure;
	ro.n_insecure = n_insecure;
	struct kilt_error err = { 0 };
	struct registry_client *client = NULL;
	if (registry_client_new(&ro, &client, &err) < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	size_t n = (size_t)(argc - optind);
	struct registry_job *jobs = xcalloc(n, sizeof(*jobs));
	for (size_t i = 0; i < n; i++)
		jobs[i] =
			(struct registry_job){ .ref = argv[optind + (int)i], .platform = platform };
	for (long k = 0; k < repeat; k++) {
		if (k > 0)
			for (size_t i = 0; i < n; i++)
				json_decref(jobs[i].facts);
		registry_lookup_many(client, jobs, n);
	}
	int rc = EXIT_OK;
	_cleanup_json_ json_t *all = json_array();
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].rc < 0) {
			cli_report(&jobs[i].err);
			rc = EXIT_ERROR;
			continue;
		}
		if (json_out) {
			json_array_append(all, jobs[i].facts);
		} else {
			if (i > 0)
				putchar('\n');
			print_text(jobs[i].facts);
		}
	}
	if (json_out) {
		/* One REF prints one object; several print an array in argument order. */
		const json_t *doc = n == 1 ? json_array_get(all, 0) : all;
		if (doc) {
			_cleanup_free_ char *s =
				json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
			puts(s ? s : "");
		}
	}
	if (stats) {
		struct registry_stats st;
		registry_stats(client, &st);
		fprintf(stderr, "kilt: requests=%lu cache_hits=%lu negative_hits=%lu misses=%lu\n",
			st.requests, st.hits, st.negative_hits, st.misses);
	}
	for (size_t i = 0; i < n; i++)
		json_decref(jobs[i].facts);
	free(jobs);
	registry_client_free(client);
	return rc;
}

int cmd_image(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		help(stdout);
		return EXIT_OK;
	}
	if (argc < 2)
		return cli_usage_error("image", "expected a subcommand: inspect");
	if (strcmp(argv[1], "inspect") == 0) {
		optind = 0;
		return inspect(argc - 1, argv + 1);
	}
	return cli_usage_error("image", "unknown subcommand '%s' (expected: inspect)", argv[1]);
}
