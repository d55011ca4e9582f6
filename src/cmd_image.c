/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt image inspect REF...`: print what kilt learns from a registry about images (entrypoint,
 * command, environment, user, working directory, platform, digests), the facts `kilt inject`
 * uses for containers that do not say what they run. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"
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
	      "  -o, --output text|json     output format (default text)\n"
	      "      --repeat N             look every REF up N times (shows the cache at work)\n"
	      "      --stats                print request and cache counters to stderr\n"
	      "  -h, --help                 show this help\n"
	      "\n",
	      out);
	fputs(cli_registry_help, out);
	fputs("\n"
	      "Credentials come from the auth file (auths: base64 auth or username/password); ECR\n"
	      "registries (<acct>.dkr.ecr.<region>.amazonaws.com) without an entry use\n"
	      "GetAuthorizationToken signed with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
	      "AWS_SESSION_TOKEN.\n"
	      "\n"
	      "Exit status: 0 when every REF resolved, 1 otherwise, 2 usage error.\n",
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

static int inspect(int argc, char **argv)
{
	enum {
		OPT_REPEAT = 0x100,
		OPT_STATS,
	};
	static const struct option opts[] = {
		{ "platform", required_argument, NULL, 'p' },
		CLI_REGISTRY_LONG,
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct cli_command_options me = { .name = "image inspect", .opts = opts };
	struct cli_registry reg;
	cli_registry_init(&reg);
	const char *platform = NULL;
	enum cli_output output = CLI_OUTPUT_TEXT;
	bool stats = false;
	long repeat = 1;
	int c, r;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:o:h" CLI_REGISTRY_SHORT, opts, NULL)) != -1) {
		if ((r = cli_registry_option(&reg, "image inspect", c, optarg)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		switch (c) {
		case 'p':
			platform = optarg;
			break;
		case OPT_REPEAT:
			if (cli_parse_long(optarg, 1, 1000000, &repeat) < 0)
				return cli_usage_error("image inspect",
						       "--repeat: expected a count");
			break;
		case OPT_STATS:
			stats = true;
			break;
		case 'o':
			if (cli_output_parse("image inspect", optarg,
					     CLI_OUTPUT_ALLOW(CLI_OUTPUT_TEXT) |
						     CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON),
					     &output))
				return EXIT_USAGE;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	bool json_out = output == CLI_OUTPUT_JSON;
	if (optind >= argc)
		return cli_usage_error("image inspect", "expected at least one image reference");
	struct kilt_platform plat;
	struct kilt_error perr = { 0 };
	if (platform && kilt_platform_parse(platform, &plat, &perr) < 0)
		return cli_usage_error("image inspect", "%s", perr.msg);
	struct kilt_error err = { 0 };
	struct registry_client *client = NULL;
	if (registry_client_new(&reg.ro, &client, &err) < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	size_t n = (size_t)(argc - optind);
	struct registry_job *jobs = xcalloc(n, sizeof(*jobs));
	struct registry_table run = { .client = client,
				      .budget_ms = reg.budget_ms,
				      .budget_source = "--image-budget" };
	registry_table_start(&run);
	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct registry_job){ .ref = argv[optind + (int)i],
						 .platform = platform,
						 .run = &run };
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
