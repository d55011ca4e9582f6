/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt hocon FILE|-`: print a HOCON document resolved to JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"

static void help(FILE *out)
{
	fputs("Usage: kilt hocon [--compact] FILE|-\n"
	      "\n"
	      "Parse a HOCON document (JSON is valid HOCON), resolve its includes and "
	      "substitutions,\n"
	      "and print the result as JSON. '-' reads standard input (includes are then resolved\n"
	      "relative to the current directory). Environment variables are never consulted.\n"
	      "\n"
	      "Options:\n"
	      "  -c, --compact   print on one line\n"
	      "  -h, --help      show this help\n"
	      "\n"
	      "Exit status: 0 success, 1 error (the document's, located), 2 usage error.\n",
	      out);
}

int cmd_hocon(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "compact", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct cli_command_options me = { .name = "hocon", .opts = opts };
	bool compact = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ch", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			compact = true;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("hocon", "expected exactly one FILE or '-'");
	const char *path = argv[optind];

	struct kilt_error err = { 0 };
	_cleanup_json_ json_t *root = NULL;
	int r;
	if (strcmp(path, "-") == 0) {
		struct kilt_hocon_limits lim;
		kilt_hocon_limits_default(&lim);
		struct kbuf in;
		kbuf_init(&in, lim.max_input_bytes);
		char chunk[65536];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
			if (kbuf_add(&in, chunk, n) < 0) {
				kbuf_done(&in);
				kilt_error_setf(&err, -EFBIG,
						"<stdin>: input larger than %zu bytes",
						lim.max_input_bytes);
				cli_report(&err);
				return EXIT_ERROR;
			}
		}
		if (ferror(stdin)) {
			int e = errno ? errno : EIO;
			kbuf_done(&in);
			kilt_error_setf(&err, -e, "<stdin>: cannot read: %s", strerror(e));
			cli_report(&err);
			return EXIT_ERROR;
		}
		struct kilt_hocon *doc = NULL;
		r = kilt_hocon_parse_string(in.data ? in.data : "", in.len, "<stdin>", &lim, &doc,
					    &err);
		kbuf_done(&in);
		if (r == 0)
			r = kilt_hocon_resolve(doc, NULL, NULL, &root, &err);
		kilt_hocon_free(doc);
	} else {
		r = kilt_hocon_load_file(path, NULL, &root, &err);
	}
	if (r < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	size_t flags = JSON_ENCODE_ANY | (compact ? JSON_COMPACT : JSON_INDENT(2));
	if (json_dumpf(root, stdout, flags) < 0 || fputc('\n', stdout) == EOF || fflush(stdout)) {
		fputs("kilt: cannot write output\n", stderr);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}
