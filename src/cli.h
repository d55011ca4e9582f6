/* SPDX-License-Identifier: Apache-2.0 */
/* What the subcommands of the kilt binary share (src/cli.c): the command table entry, exit
 * codes, reporting of errors to stderr, unknown options with a suggestion, output formats and the
 * registry options of every command that looks up images.
 *
 * The flag vocabulary: one meaning per short letter across every command.
 *   -h --help   -r --recipe FILE   -o --output FORMAT (what goes to standard output)
 *   -i --in-place   -f --format KIND (of the input)   -m --mode opt-in|opt-out
 *   -s --set KEY=VALUE   -e --explain   -p --platform OS/ARCH   -a --auth-file FILE
 *   -c --compact   -n --namespace   -l --listen   -g --group   -E --env K=V
 * kilt exec mirrors kubectl's own letters for what kubectl users type there: -c --container,
 * -l --selector, -A --all-namespaces.
 * A letter a command does not use is unknown there (with a pointer to the long option). */
#ifndef KILT_CLI_H
#define KILT_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "kilt.h"
#include "registry.h"

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

/* What cli_bad_option needs to know of a command's options. */
struct cli_retired_short {
	int letter; /* a short option this command once had (0 ends the list) */
	const char *instead; /* the spelling that works now, e.g. "--image" */
};
struct cli_command_options {
	const char *name; /* "inject", "recipe render" */
	const struct option *opts; /* the getopt_long table */
	const char *const *hidden; /* NULL-terminated names never suggested; may be NULL */
	const struct cli_retired_short *retired; /* may be NULL */
};

/* Reports, once, what getopt_long (run with opterr = 0 and an optstring starting with ':')
 * refused: `c` is its '?' or ':'. Names the option, suggests the nearest long option or the
 * spelling of a retired short one. Returns EXIT_USAGE. */
int cli_bad_option(const struct cli_command_options *cmd, int c, char **argv);

/* True when `a` and `b` differ by at most two edits (letters added, dropped, changed, swapped). */
bool cli_similar(const char *a, const char *b);

/* Parses the whole of `s` as a decimal number from `min` to `max` into `*ret` (untouched on
 * failure). Returns 0 or -EINVAL. */
int cli_parse_long(const char *s, long min, long max, long *ret);

/* Formats of what a command prints on standard output (-o/--output). */
enum cli_output {
	CLI_OUTPUT_TEXT,
	CLI_OUTPUT_JSON,
	CLI_OUTPUT_YAML,
};
#define CLI_OUTPUT_ALLOW(f) (1u << (f))
/* Parses `arg` among the `allowed` formats (CLI_OUTPUT_ALLOW bits); 0, or EXIT_USAGE after
 * saying which formats this command has. */
int cli_output_parse(const char *cmd, const char *arg, unsigned allowed, enum cli_output *ret);

/* The registry options every command that looks up images takes, with one spelling. */
enum {
	CLI_OPT_INSECURE_REGISTRY = 0x200,
	CLI_OPT_CA_FILE,
	CLI_OPT_IMAGE_TIMEOUT,
	CLI_OPT_CONCURRENCY,
	CLI_OPT_CACHE_DIR,
	CLI_OPT_CACHE_ENTRIES,
	CLI_OPT_IMAGE_BUDGET,
};
#define CLI_REGISTRY_SHORT "a:"
/* --timeout is the spelling `kilt image inspect` had: kept as an alias of --image-timeout. */
#define CLI_REGISTRY_LONG                                                                          \
	{ "auth-file", required_argument, NULL, 'a' },                                             \
		{ "insecure-registry", required_argument, NULL, CLI_OPT_INSECURE_REGISTRY },       \
		{ "ca-file", required_argument, NULL, CLI_OPT_CA_FILE },                           \
		{ "image-timeout", required_argument, NULL, CLI_OPT_IMAGE_TIMEOUT },               \
		{ "timeout", required_argument, NULL, CLI_OPT_IMAGE_TIMEOUT },                     \
		{ "image-budget", required_argument, NULL, CLI_OPT_IMAGE_BUDGET },                 \
		{ "concurrency", required_argument, NULL, CLI_OPT_CONCURRENCY },                   \
		{ "cache-dir", required_argument, NULL, CLI_OPT_CACHE_DIR },                       \
	{                                                                                          \
		"cache-entries", required_argument, NULL, CLI_OPT_CACHE_ENTRIES                    \
	}

struct cli_registry {
	struct registry_options ro; /* ro.insecure points into `insecure` */
	/* --image-budget: all the lookups of a run together (struct registry_table); 60000 */
	long budget_ms;
	const char *insecure[64]; /* borrowed from argv */
};
void cli_registry_init(struct cli_registry *r);
/* Applies option `c` when it is a registry option: 1 when applied, 0 when it is not one, -1
 * after a usage error was printed. */
int cli_registry_option(struct cli_registry *r, const char *cmd, int c, const char *arg);
/* The help text of the registry options. */
extern const char cli_registry_help[];

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
int cmd_exec(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
