/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt recipe check FILE...` validates recipes and reports every error with its place;
 * `kilt recipe render FILE --image REF ...` shows the plan the recipe makes of one container. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "internal.h"

/* ---- help ----------------------------------------------------------------------------------- */

static void help(FILE *out)
{
	fputs("Usage: kilt recipe check FILE...\n"
	      "       kilt recipe render FILE --image REF [options]\n"
	      "\n"
	      "Check recipes, or show what a recipe makes of one container (the plan every target\n"
	      "applies). The recipe language is described in docs/recipe.md.\n"
	      "\n"
	      "Run 'kilt recipe check --help' or 'kilt recipe render --help' for the options.\n",
	      out);
}

static void help_check(FILE *out)
{
	fputs("Usage: kilt recipe check [-h] FILE...\n"
	      "\n"
	      "Parse and validate each recipe. Every error is printed as 'file:line:column: "
	      "message'\n"
	      "on standard error; a valid recipe is reported as 'FILE: ok' on standard output "
	      "with\n"
	      "its name and SHA-256.\n"
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
	      "  -i, --image REF          the container's image reference (required)\n"
	      "  -e, --entrypoint JSON    the container's entrypoint, a JSON array of strings\n"
	      "  -c, --command JSON       the container's command, a JSON array of strings\n"
	      "  -E, --env K=V            one environment variable of the container (repeatable,\n"
	      "                           kept in order)\n"
	      "  -n, --name NAME          the container's name\n"
	      "  -g, --group GROUP        task family / logical ID / pod name\n"
	      "  -p, --platform P         the container's platform, e.g. linux/amd64\n"
	      "  -m, --metadata K=V       a tag / label / annotation (repeatable)\n"
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

static void print_error(const struct kilt_error *err, void *userdata)
{
	unsigned *count = userdata;
	char buf[1024];
	fprintf(stderr, "%s\n", kilt_error_format(err, buf, sizeof(buf)));
	(*count)++;
}

static int recipe_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			help_check(stdout);
			return EXIT_OK;
		default:
			return cli_usage_error("recipe check", "invalid option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("recipe check", "expected at least one FILE");
	int rc = EXIT_OK;
	for (int i = optind; i < argc; i++) {
		unsigned count = 0;
		if (kilt_recipe_check_file(argv[i], print_error, &count) < 0) {
			rc = EXIT_ERROR;
			continue;
		}
		struct kilt_recipe *r = NULL;
		struct kilt_error err = { 0 };
		if (kilt_recipe_load_file(argv[i], &r, &err) < 0) {
			print_error(&err, &count);
			rc = EXIT_ERROR;
			continue;
		}
		printf("%s: ok (recipe %s, sha256 %s)\n", argv[i], kilt_recipe_name(r),
		       kilt_recipe_hash(r));
		kilt_recipe_free(r);
	}
	return rc;
}

/* ---- YAML output ---------------------------------------------------------------------------- */

/* True when `s` can be written as a plain YAML scalar that reads back as the same string. */
static bool yaml_plain(const char *s)
{
	static const char *const reserved[] = { "true", "false", "null", "yes", "no", "on",
						"off",	"y",	 "n",	 "~",	NULL };
	if (!s[0] || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == '/'))
		return false;
	for (size_t i = 0; reserved[i]; i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return false;
	size_t n = strlen(s);
	if (s[n - 1] == ':')
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_./=+@:-", *p))
			return false;
	return true;
}

static void yaml_string(FILE *o, const char *s)
{
	if (yaml_plain(s)) {
		fputs(s, o);
		return;
	}
	/* A JSON string is a valid YAML double-quoted scalar. */
	json_t *j = json_string(s);
	char *q = json_dumps(j, JSON_ENCODE_ANY);
	fputs(q ? q : "\"\"", o);
	free(q);
	json_decref(j);
}

static void yaml_scalar(FILE *o, const json_t *j)
{
	if (json_is_string(j)) {
		yaml_string(o, json_string_value(j));
		return;
	}
	char *s = json_dumps(j, JSON_ENCODE_ANY);
	fputs(s ? s : "null", o);
	free(s);
}

static bool yaml_is_block(const json_t *j)
{
	return (json_is_object(j) && json_object_size(j) > 0) ||
	       (json_is_array(j) && json_array_size(j) > 0);
}

static void yaml_node(FILE *o, const json_t *j, int indent, bool inline_first);

static void yaml_value_after_key(FILE *o, const json_t *v, int indent)
{
	if (yaml_is_block(v)) {
		fputc('\n', o);
		yaml_node(o, v, json_is_array(v) ? indent : indent + 2, false);
	} else if (json_is_object(v)) {
		fputs(" {}\n", o);
	} else if (json_is_array(v)) {
		fputs(" []\n", o);
	} else {
		fputc(' ', o);
		yaml_scalar(o, v);
		fputc('\n', o);
	}
}

/* Writes a non-empty block node at `indent`; with `inline_first` the first line's indentation
 * is already written (after "- "). */
static void yaml_node(FILE *o, const json_t *j, int indent, bool inline_first)
{
	bool first = true;
	if (json_is_object(j)) {
		const char *key;
		json_t *v;
		json_object_foreach ((json_t *)(uintptr_t)j, key, v) {
			if (!(first && inline_first))
				fprintf(o, "%*s", indent, "");
			first = false;
			yaml_string(o, key);
			fputc(':', o);
			yaml_value_after_key(o, v, indent);
		}
		return;
	}
	size_t i;
	json_t *v;
	json_array_foreach (j, i, v) {
		if (!(first && inline_first))
			fprintf(o, "%*s", indent, "");
		first = false;
		fputs("- ", o);
		if (yaml_is_block(v)) {
			yaml_node(o, v, indent + 2, true);
		} else if (json_is_object(v)) {
			fputs("{}\n", o);
		} else if (json_is_array(v)) {
			fputs("[]\n", o);
		} else {
			yaml_scalar(o, v);
			fputc('\n', o);
		}
	}
}

static void yaml_dump(FILE *o, const json_t *j)
{
	if (yaml_is_block(j))
		yaml_node(o, j, 0, false);
	else {
		yaml_scalar(o, j);
		fputc('\n', o);
	}
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
	static const struct option opts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "entrypoint", required_argument, NULL, 'e' },
		{ "command", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'E' },
		{ "name", required_argument, NULL, 'n' },
		{ "group", required_argument, NULL, 'g' },
		{ "platform", required_argument, NULL, 'p' },
		{ "metadata", required_argument, NULL, 'm' },
		{ "set", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *image = NULL, *name = NULL, *group = NULL, *platform = NULL;
	_cleanup_json_ json_t *entrypoint = NULL;
	_cleanup_json_ json_t *command = NULL;
	_cleanup_json_ json_t *env = json_object();
	_cleanup_json_ json_t *metadata = json_object();
	_cleanup_json_ json_t *config = json_object();
	bool yaml = false;
	int c, r;
	while ((c = getopt_long(argc, argv, "i:e:c:E:n:g:p:m:s:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			image = optarg;
			break;
		case 'e':
			if ((r = parse_argv_option("--entrypoint", optarg, &entrypoint)))
				return r;
			break;
		case 'c':
			if ((r = parse_argv_option("--command", optarg, &command)))
				return r;
			break;
		case 'E':
			if ((r = add_pair(env, "--env", optarg)))
				return r;
			break;
		case 'n':
			name = optarg;
			break;
		case 'g':
			group = optarg;
			break;
		case 'p':
			platform = optarg;
			break;
		case 'm':
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
			if (strcmp(optarg, "yaml") == 0)
				yaml = true;
			else if (strcmp(optarg, "json") == 0)
				yaml = false;
			else
				return cli_usage_error("recipe render",
						       "--output must be json or yaml, not '%s'",
						       optarg);
			break;
		case 'h':
			help_render(stdout);
			return EXIT_OK;
		default:
			return cli_usage_error("recipe render", "invalid option");
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
	if (yaml)
		yaml_dump(stdout, plan);
	else if (json_dumpf(plan, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF)
		goto write_error;
	if (fflush(stdout) != 0 || ferror(stdout))
		goto write_error;
	return EXIT_OK;
write_error:
	fputs("kilt: cannot write output\n", stderr);
	return EXIT_ERROR;
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
