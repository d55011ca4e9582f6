/* SPDX-License-Identifier: Apache-2.0 */
/* The kilt binary: global options and the table of subcommands. Each subcommand lives in its own
 * cmd_<name>.c file; what they share is in cli.c. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static const struct kilt_command commands[] = {
	{ "hocon", "print a HOCON document resolved to JSON", cmd_hocon },
	{ "recipe", "check recipes and render the plan for a container", cmd_recipe },
	{ "inject", "apply a recipe to CloudFormation, ECS, Terraform, Kubernetes manifests",
	  cmd_inject },
	{ "cfn-macro", "run the CloudFormation macro (AWS Lambda custom runtime)", cmd_cfn_macro },
	{ "image", "inspect the facts kilt reads from image registries", cmd_image },
	{ "webhook", "run the Kubernetes admission webhook (HTTPS)", cmd_webhook },
	{ "exec", "apply a recipe's patch to running pods through kubectl", cmd_exec },
	{ "help", "show this help, or a command's: kilt help COMMAND", cmd_help },
	{ "version", "print kilt's version", cmd_version },
};

static void print_help(FILE *out)
{
	fputs("Usage: kilt [--help] [--version] <command> [options]\n"
	      "\n"
	      "kilt puts a security agent inside containers where no kernel instrumentation is\n"
	      "possible, by applying a recipe to container definitions: CloudFormation templates,\n"
	      "ECS task definitions, Terraform container definitions and Kubernetes manifests,\n"
	      "to pods as they are created (an admission webhook) and to pods that already run.\n"
	      "\n"
	      "Commands:\n",
	      out);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'kilt help <command>' or 'kilt <command> --help' for the options of a "
	      "command.\n"
	      "\n"
	      "Exit status: 0 success, 1 error, 2 usage error.\n",
	      out);
}

static const struct kilt_command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int unknown_command(const char *name)
{
	const char *near = NULL;
	size_t len = strlen(name);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		size_t n = strlen(commands[i].name);
		/* a command that starts with what was typed, or differs by a letter or two */
		if ((len >= 2 && strncmp(commands[i].name, name, len) == 0) ||
		    (len + 2 >= n && n + 2 >= len && cli_similar(name, commands[i].name)))
			near = commands[i].name;
	}
	if (near)
		fprintf(stderr, "kilt: unknown command '%s'; did you mean '%s'?\n", name, near);
	else
		fprintf(stderr, "kilt: unknown command '%s'\n", name);
	fputs("Try 'kilt --help'.\n", stderr);
	return EXIT_USAGE;
}

int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stdout);
		return EXIT_OK;
	}
	if (argc > 2)
		return cli_usage_error("help", "expected at most one COMMAND");
	const struct kilt_command *cmd = find_command(argv[1]);
	if (!cmd)
		return unknown_command(argv[1]);
	if (cmd->run == cmd_help || cmd->run == cmd_version) {
		print_help(stdout);
		return EXIT_OK;
	}
	char *sub_argv[] = { argv[1], (char *)(uintptr_t) "--help", NULL };
	optind = 0;
	return cmd->run(2, sub_argv);
}

int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage_error("version", "takes no arguments");
	printf("kilt %s\n", KILT_VERSION);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	static const struct cli_command_options me = { .name = "", .opts = opts };
	int c;
	opterr = 0;
	/* '+' stops at the first non-option: the subcommand parses the rest. */
	while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			print_help(stdout);
			return EXIT_OK;
		case 'V':
			printf("kilt %s\n", KILT_VERSION);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (optind >= argc) {
		print_help(stderr);
		return EXIT_USAGE;
	}
	const struct kilt_command *cmd = find_command(argv[optind]);
	if (!cmd)
		return unknown_command(argv[optind]);
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	/* Subcommands run getopt_long from the start of their own argv. */
	optind = 0;
	return cmd->run(sub_argc, sub_argv);
}
