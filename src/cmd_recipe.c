/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt recipe check FILE...` validates recipes and reports every error with its place;
 * `kilt recipe render FILE --image REF ...` shows the plan the recipe makes of one container. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

/* ---- help ----------------------------------------------------------------------------------- */

static void help(FILE *out)
{
	fputs("Usage: kilt recipe check [-o text|json] FILE...\n"
	      "       kilt recipe render FILE --image REF [options]\n"
	      "\n"
	      "Check recipes, or show what a recipe makes of one container (the plan every target\n"
	      "applies). The recipe language is described in docs/recipe.md.\n"
	      "\n"
	      "Run 'kilt recipe check --help' or 'kilt recipe render --help' for the options.\n"
	      "\n"
	      "Exit status: 0 success, 1 error, 2 usage error.\n",
	      out);
}

static void help_check(FILE *out)
{
	fputs("Usage: kilt recipe check [-o text|json] FILE...\n"
	      "\n"
	      "Parse and validate each recipe. Every error is printed as 'file:line:column: "
	      "message'\n"
	      "on standard error; a valid recipe is reported as 'FILE: ok' on standard output "
	      "with\n"
	      "its name and SHA-256.\n"
	      "\n"
	      "Options:\n"
	      "  -o, --output text|json   json: one document on standard output for every FILE,\n"
	      "                           [{\"file\", \"ok\", \"name\", \"sha256\"} or {\"file\", "
	      "\"ok\",\n"
	      "                           \"errors\": [{\"file\", \"line\", \"column\", "
	      "\"message\"}]}]\n"
	      "  -h, --help               show this help\n"
	      "\n"
	      "Exit status: 0 when every recipe is valid, 1 when one is not, 2 on usage errors.\n",
	      out);
}

static void help_render(FILE *out)
{
	fputs("Usage: kilt recipe render FILE --image REF [options]\n"
	      "\n"
	      "Evaluate the recipe for one container and print the plan (docs/recipe.md, \"The\n"
	      "plan\"). The options describe the container as it is today.\n"
	      "\n"
	      "Options:\n"
	      "      --image REF          the container's image reference (required)\n"
	      "      --entrypoint JSON    the container's entrypoint, a JSON array of strings\n"
	      "      --command JSON       the container's command, a JSON array of strings\n"
	      "  -E, --env K=V            one environment variable of the container (repeatable,\n"
	      "                           kept in order)\n"
	      "      --name NAME          the container's name\n"
	      "  -g, --group GROUP        task family / logical ID / pod name\n"
	      "  -p, --platform P         the container's platform, e.g. linux/amd64\n"
	      "      --metadata K=V       a tag / label / annotation (repeatable)\n"
	      "  -s, --set KEY=VALUE      an operator parameter, visible as ${config.KEY}; KEY may "
	      "be\n"
	      "                           dotted (repeatable)\n"
	      "  -o, --output json|yaml   output format (default json)\n"
	      "  -h, --help               show this help\n"
	      "\n"
	      "Entrypoint and command follow Docker's rule: with only --entrypoint the command is\n"
	      "empty; with neither, both are unknown here (no image is read), and a recipe that\n"
	      "needs them fails saying which option to pass.\n"
	      "\n"
	      "Exit status: 0 success, 1 error, 2 usage error.\n",
	      out);
}

/* ---- check ---------------------------------------------------------------------------------- */

/* Where a check's errors go: printed at once (text) or collected (json). */
struct check_sink {
	unsigned count;
	json_t *errors; /* borrowed; NULL: print */
};

static void on_error(const struct kilt_error *err, void *userdata)
{
	struct check_sink *k = userdata;
	k->count++;
	if (!k->errors) {
		char buf[1024];
		fprintf(stderr, "%s\n", kilt_error_format(err, buf, sizeof(buf)));
		return;
	}
	json_t *e = json_object();
	json_object_set_new(e, "file", json_string(err->file));
	if (err->line) {
		json_object_set_new(e, "line", json_integer(err->line));
		json_object_set_new(e, "column", json_integer(err->column));
	}
	json_object_set_new(e, "message", json_string(err->msg));
	json_array_append_new(k->errors, e);
}

/* Checks one recipe; `ret_result` (owned, json only) describes it. */
static bool check_one(const char *path, bool json, json_t **ret_result)
{
	json_t *errors = json ? json_array() : NULL;
	struct check_sink sink = { .errors = errors };
	json_t *result = json_pack("{s:s}", "file", path);
	if (!result) /* a path that is not UTF-8 */
		result = json_pack("{s:s}", "file", "?");
	json_object_set_new(result, "ok", json_false());
	bool ok = false;
	if (kilt_recipe_check_file(path, on_error, &sink) == 0) {
		struct kilt_recipe *r = NULL;
		struct kilt_error err = { 0 };
		if (kilt_recipe_load_file(path, &r, &err) < 0) {
			on_error(&err, &sink);
		} else {
			ok = true;
			if (json) {
				json_object_set_new(result, "name",
						    json_string(kilt_recipe_name(r)));
				json_object_set_new(result, "sha256",
						    json_string(kilt_recipe_hash(r)));
			} else {
				printf("%s: ok (recipe %s, sha256 %s)\n", path, kilt_recipe_name(r),
				       kilt_recipe_hash(r));
			}
			kilt_recipe_free(r);
		}
	}
	json_object_set_new(result, "ok", json_boolean(ok));
	if (json && !ok)
		json_object_set_new(result, "errors", json_incref(errors));
	json_decref(errors);
	if (json)
		*ret_result = result;
	else
		json_decref(result);
	return ok;
}

static int recipe_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct cli_command_options me = { .name = "recipe check", .opts = opts };
	enum cli_output output = CLI_OUTPUT_TEXT;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (cli_output_parse("recipe check", optarg,
					     CLI_OUTPUT_ALLOW(CLI_OUTPUT_TEXT) |
						     CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON),
					     &output))
				return EXIT_USAGE;
			break;
		case 'h':
			help_check(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("recipe check", "expected at least one FILE");
	bool json = output == CLI_OUTPUT_JSON;
	_cleanup_json_ json_t *all = json ? json_array() : NULL;
	int rc = EXIT_OK;
	for (int i = optind; i < argc; i++) {
		json_t *result = NULL;
		if (!check_one(argv[i], json, &result))
			rc = EXIT_ERROR;
		if (json)
			json_array_append_new(all, result);
	}
	if (json && (json_dumpf(all, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF ||
		     fflush(stdout) != 0)) {
		fputs("kilt: cannot write output\n", stderr);
		return EXIT_ERROR;
	}
	return rc;
}

/* ---- render --------------------------------------------------------------------------------- */

static int parse_argv_option(const char *opt, const char *text, json_t **ret)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	bool ok = json_is_array(j);
	size_t i;
	json_t *el;
	json_array_foreach (j, i, el)
		if (!json_is_string(el))
			ok = false;
	if (!ok) {
		json_decref(j);
		return cli_usage_error("recipe render",
				       "%s expects a JSON array of strings, such as '[\"nginx\", "
				       "\"-g\", \"daemon off;\"]'",
				       opt);
	}
	json_decref(*ret);
	*ret = j;
	return 0;
}

static int add_pair(json_t *obj, const char *opt, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return cli_usage_error("recipe render", "%s expects NAME=VALUE, not '%s'", opt, kv);
	if (kilt_utf8_valid_prefix((const unsigned char *)kv, strlen(kv)) != strlen(kv))
		return cli_usage_error("recipe render", "%s: '%s' is not valid UTF-8", opt, kv);
	_cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
	json_object_set_new(obj, k, json_string(eq + 1));
	return 0;
}

/* Adds to an "original.X is not known" error which option of this command supplies X. */
static void add_cli_hint(struct kilt_error *err)
{
	static const struct {
		const char *fact, *hint;
	} hints[] = {
		{ "original.entrypoint",
		  "pass --entrypoint JSON (and --command JSON if it has one)" },
		{ "original.entry_point",
		  "pass --entrypoint JSON (and --command JSON if it has one)" },
		{ "original.command", "pass --command JSON, or --entrypoint alone when the command "
				      "is empty (Docker's rule)" },
		{ "original.name", "pass --name NAME" },
		{ "original.container_name", "pass --name NAME" },
		{ "original.group", "pass --group GROUP" },
		{ "original.container_group_name", "pass --group GROUP" },
		{ "original.platform", "pass --platform P" },
		{ "original.metadata", "pass --metadata K=V" },
	};
	if (err->code != -ENODATA)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(hints); i++) {
		size_t n = strlen(hints[i].fact);
		if (strncmp(err->msg, hints[i].fact, n) == 0 && err->msg[n] == ' ') {
			size_t len = strlen(err->msg);
			snprintf(err->msg + len, sizeof(err->msg) - len,
				 " [kilt recipe render: %s]", hints[i].hint);
			return;
		}
	}
}

static int recipe_render(int argc, char **argv)
{
	enum { OPT_IMAGE = 0x100, OPT_ENTRYPOINT, OPT_COMMAND, OPT_METADATA, OPT_NAME };
	static const struct option opts[] = {
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
		{ "command", required_argument, NULL, OPT_COMMAND },
		{ "env", required_argument, NULL, 'E' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "group", required_argument, NULL, 'g' },
		{ "platform", required_argument, NULL, 'p' },
		{ "metadata", required_argument, NULL, OPT_METADATA },
		{ "set", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* -i, -e, -c, -m and -n mean --in-place, --explain, --compact, --mode and --namespace
	 * elsewhere */
	static const struct cli_retired_short retired[] = {
		{ 'i', "--image" },    { 'e', "--entrypoint" }, { 'c', "--command" },
		{ 'm', "--metadata" }, { 'n', "--name" },	{ 0 },
	};
	static const struct cli_command_options me = { .name = "recipe render",
						       .opts = opts,
						       .retired = retired };
	const char *image = NULL, *name = NULL, *group = NULL, *platform = NULL;
	_cleanup_json_ json_t *entrypoint = NULL;
	_cleanup_json_ json_t *command = NULL;
	_cleanup_json_ json_t *env = json_object();
	_cleanup_json_ json_t *metadata = json_object();
	_cleanup_json_ json_t *config = json_object();
	enum cli_output output = CLI_OUTPUT_JSON;
	int c, r;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":E:g:p:s:o:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_IMAGE:
			image = optarg;
			break;
		case OPT_ENTRYPOINT:
			if ((r = parse_argv_option("--entrypoint", optarg, &entrypoint)))
				return r;
			break;
		case OPT_COMMAND:
			if ((r = parse_argv_option("--command", optarg, &command)))
				return r;
			break;
		case 'E':
			if ((r = add_pair(env, "--env", optarg)))
				return r;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'p':
			platform = optarg;
			break;
		case OPT_METADATA:
			if ((r = add_pair(metadata, "--metadata", optarg)))
				return r;
			break;
		case 's':
			if ((r = cli_add_setting(config, optarg)) == -EILSEQ)
				return cli_usage_error("recipe render",
						       "--set: '%s' is not valid UTF-8", optarg);
			if (r < 0)
				return cli_usage_error(
					"recipe render",
					"--set expects KEY=VALUE (KEY may be dotted: "
					"a.b=c), not '%s'",
					optarg);
			break;
		case 'o':
			if (cli_output_parse("recipe render", optarg,
					     CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON) |
						     CLI_OUTPUT_ALLOW(CLI_OUTPUT_YAML),
					     &output))
				return EXIT_USAGE;
			break;
		case 'h':
			help_render(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("recipe render", "expected exactly one recipe FILE");
	if (!image)
		return cli_usage_error("recipe render", "--image REF is required");
	/* Docker's rule (kilt_docker_argv): setting the entrypoint drops the image's CMD; with no
	 * entrypoint, what runs depends on the image, which this command does not read. An empty
	 * --entrypoint '[]' is the operator saying the image contributes nothing. */
	_cleanup_json_ json_t *run_ep = NULL, *run_cmd = NULL;
	_cleanup_json_ json_t *no_image = entrypoint ? json_object() : NULL;
	kilt_docker_argv(entrypoint, command, no_image, &run_ep, &run_cmd);

	struct kilt_error err = { 0 };
	struct kilt_recipe *recipe = NULL;
	if (kilt_recipe_load_file(argv[optind], &recipe, &err) < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	struct kilt_target t = {
		.image = image,
		.name = name,
		.group = group,
		.entrypoint = run_ep,
		.command = run_cmd,
		.environment = env,
		.metadata = metadata,
		.platform = platform,
	};
	_cleanup_json_ json_t *plan = NULL;
	r = kilt_recipe_evaluate(recipe, &t, config, &plan, &err);
	kilt_recipe_free(recipe);
	if (r < 0) {
		add_cli_hint(&err);
		cli_report(&err);
		return EXIT_ERROR;
	}
	/* the library's emitters, as every command writes JSON and YAML */
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	r = output == CLI_OUTPUT_YAML ? kilt_yaml_dump(plan, 0, &text, &len, &err)
				      : kilt_yaml_dump_json(plan, 0, &text, &len, &err);
	if (r < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0 || ferror(stdout)) {
		fputs("kilt: cannot write output\n", stderr);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

int cmd_recipe(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("recipe", "expected 'check' or 'render'");
	const char *sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		help(stdout);
		return EXIT_OK;
	}
	/* The subcommand parses from its own name on. */
	optind = 0;
	if (strcmp(sub, "check") == 0)
		return recipe_check(argc - 1, argv + 1);
	if (strcmp(sub, "render") == 0)
		return recipe_render(argc - 1, argv + 1);
	return cli_usage_error("recipe", "unknown subcommand '%s' (expected check or render)", sub);
}
