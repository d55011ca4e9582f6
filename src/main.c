/* SPDX-License-Identifier: Apache-2.0 */
/* The kilt binary: global options and the table of subcommands. Each subcommand lives in its own
 * cmd_<name>.c file. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "internal.h"

static const struct kilt_command commands[] = {
	{ "hocon", "print a HOCON document resolved to JSON", cmd_hocon },
	{ "recipe", "check recipes and render the plan for a container", cmd_recipe },
	{ "inject", "apply a recipe to CloudFormation, ECS task definitions, Terraform",
	  cmd_inject },
	{ "cfn-macro", "run the CloudFormation macro (AWS Lambda custom runtime)", cmd_cfn_macro },
	{ "image", "inspect the facts kilt reads from image registries", cmd_image },
	{ "webhook", "run the Kubernetes admission webhook (HTTPS)", cmd_webhook },
};

static void print_help(FILE *out)
{
	fputs("Usage: kilt [--help] [--version] <command> [options]\n"
	      "\n"
	      "kilt puts a security agent inside containers where no kernel instrumentation is\n"
	      "possible, by applying a recipe to container definitions and running pods.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'kilt <command> --help' for the options of a command.\n"
	      "Exit status: 0 success, 1 error, 2 usage error.\n",
	      out);
}

void cli_report(const struct kilt_error *err)
{
	char buf[1024];
	fprintf(stderr, "kilt: %s\n", kilt_error_format(err, buf, sizeof(buf)));
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "kilt %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'kilt %s --help'.\n", cmd);
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;
	/* '+' stops at the first non-option: the subcommand parses the rest. */
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_help(stdout);
			return EXIT_OK;
		case 'V':
			printf("kilt %s\n", KILT_VERSION);
			return EXIT_OK;
		default:
			fputs("Try 'kilt --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		print_help(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;
			/* Subcommands run getopt_long from the start of their own argv. */
			optind = 0;
			return commands[i].run(sub_argc, sub_argv);
		}
	}
	fprintf(stderr, "kilt: unknown command '%s'\nTry 'kilt --help'.\n", name);
	return EXIT_USAGE;
}
