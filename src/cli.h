/* SPDX-License-Identifier: Apache-2.0 */
/* What the subcommands of the kilt binary share: the command table entry, exit codes and
 * reporting of errors to stderr. */
#ifndef KILT_CLI_H
#define KILT_CLI_H

#include "kilt.h"

enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
};

struct kilt_command {
	const char *name;
	const char *summary;
	/* argv[0] is the command name; returns an exit code. */
	int (*run)(int argc, char **argv);
};

/* Prints "kilt: <formatted error>" to stderr. */
void cli_report(const struct kilt_error *err);
/* Prints "kilt <cmd>: <message>" and a hint to use --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "KEY=VALUE" into the object `obj` (key may be a dotted path: a.b=c makes nested
 * objects). Returns 0, -EINVAL when there is no '=' or a key part is empty, -EILSEQ when it is
 * not valid UTF-8. */
int cli_add_setting(json_t *obj, const char *kv);

int cmd_hocon(int argc, char **argv);
int cmd_recipe(int argc, char **argv);
int cmd_inject(int argc, char **argv);
int cmd_cfn_macro(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_webhook(int argc, char **argv);

#endif
