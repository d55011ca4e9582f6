/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt inject`: applies a recipe to CloudFormation templates (JSON or YAML), ECS task
 * definitions and Terraform container definitions offline, writing the result atomically. */
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "builtin_recipe.h"
#include "fileio.h"
#include "inject_k8s.h"
#include "registry.h"
#include "util.h"

#define MAX_INPUT_BYTES (64u << 20)

static void help(FILE *out)
{
	fputs("Usage: kilt inject [-r RECIPE] [FILE|-] [--output-file OUT | -i] [options]\n"
	      "\n"
	      "Apply a recipe to container definitions: a CloudFormation template (JSON or\n"
	      "YAML, short-form tags kept), an ECS task definition (register-task-definition\n"
	      "input or describe-task-definition output), a Terraform container_definitions\n"
	      "array, or Kubernetes manifests (Pods and workloads with a pod template, one or\n"
	      "more YAML documents, or JSON). The result is written to standard output in the\n"
	      "input's syntax. Without -r the built-in Falco recipe is used. Applying the same\n"
	      "recipe again changes nothing; a different recipe replaces the earlier injection.\n"
	      "\n"
	      "Options:\n"
	      "  -r, --recipe FILE       recipe to apply (default: the built-in Falco recipe)\n"
	      "  -o, --output json|yaml  the result's syntax (default: the input's)\n"
	      "      --output-file OUT   write the result to OUT instead of standard output (a\n"
	      "                          file is replaced atomically)\n"
	      "  -i, --in-place          rewrite FILE (atomically; YAML comments are not kept)\n"
	      "  -f, --format KIND       auto (default), cloudformation, task-definition,\n"
	      "                          container-definitions, or terraform-external: speak\n"
	      "                          the protocol of Terraform's external data source\n"
	      "                          (docs/terraform.md)\n"
	      "  -m, --mode MODE         opt-out (default: every Fargate task unless tagged\n"
	      "                          kilt-ignore) or opt-in (only tasks tagged kilt-include)\n"
	      "  -s, --set KEY=VALUE     recipe parameter, visible as config.KEY (repeatable)\n"
	      "      --param NAME=VALUE  template parameter value (repeatable; defaults\n"
	      "                          otherwise)\n"
	      "  -e, --explain           print the decision and reason for every task and\n"
	      "                          container\n"
	      "      --report text|json  the report on standard error: text lines (default) or\n"
	      "                          one JSON document with every decision\n"
	      "      --remove            undo every earlier kilt injection instead of injecting\n"
	      "      --fail-open         skip (with a warning) containers that cannot be patched\n"
	      "      --skip-container NAME  a container that is not the application: skipped\n"
	      "                          unless a kilt-include-containers tag names it\n"
	      "                          (repeatable; FireLens routers and the\n"
	      "                          ProxyConfiguration proxy are skipped anyway)\n"
	      "      --sidecar-credentials ARN\n"
	      "                          RepositoryCredentials secret for the sidecars' images\n"
	      "      --sidecar-logs inherit|none\n"
	      "                          sidecars inherit the app's awslogs settings (default) or\n"
	      "                          get no log configuration\n"
	      "      --no-image-lookup   never ask a registry for an image's ENTRYPOINT/CMD\n"
	      "  -h, --help              show this help\n"
	      "\n"
	      "Kubernetes manifests (docs/kubernetes.md; several -r for kilt.dev/recipe):\n"
	      "      --json-patch        print the RFC 6902 patches instead of the documents\n"
	      "      --pod-security skip|proceed\n"
	      "                          a namespace whose Pod Security level forbids SYS_PTRACE\n"
	      "      --volume-source copy|image\n"
	      "                          how the agent's files reach the pod\n"
	      "      --copy-helper PATH  the copying program in the agent image\n"
	      "      --copy-user UID     the user the copying init containers run as (default 0:\n"
	      "                          root, without capabilities)\n"
	      "      --namespace NS      the namespace the manifests go to\n"
	      "      --namespace-label KEY=VALUE\n"
	      "                          a label of that namespace (repeatable)\n"
	      "      --image-facts FILE  image facts to use instead of asking registries\n"
	      "      --pull-secret FILE  a dockerconfigjson pull secret for image lookups\n"
	      "\n",
	      out);
	fputs(cli_registry_help, out);
	fputs("\n"
	      "Exit status: 0 success, 1 error (nothing is written), 2 usage error.\n",
	      out);
}

static int parse_doc(const char *buf, size_t len, const char *name, enum kilt_format *ret_fmt,
		     json_t **ret, struct kilt_error *err)
{
	enum kilt_format fmt = kilt_yaml_detect(buf, len);
	if (fmt == KILT_FORMAT_JSON) {
		/* kilt_yaml_detect looks past a UTF-8 byte order mark; jansson refuses one */
		if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
			buf += 3;
			len -= 3;
		}
		json_error_t jerr;
		/* numbers jansson cannot hold exactly are kept as written */
		json_t *doc = kilt_json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!doc)
			return kilt_error_set(err, -EINVAL, name, (unsigned)jerr.line,
					      (unsigned)jerr.column, "%s", jerr.text);
		*ret_fmt = fmt;
		*ret = doc;
		return 0;
	}
	int r = kilt_yaml_load(buf, len, name, KILT_YAML_CFN_TAGS, NULL, ret, err);
	if (r < 0)
		return r;
	*ret_fmt = KILT_FORMAT_YAML;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* JSON goes out through a fixed buffer as jansson encodes it, so the text of a large template
 * never exists whole in memory. */
struct out_stream {
	int fd;
	int error; /* the first write error (negative errno), or 0 */
	size_t len;
	char buf[65536];
};

static int out_flush(struct out_stream *o)
{
	if (o->error == 0 && o->len)
		o->error = write_all(o->fd, o->buf, o->len);
	o->len = 0;
	return o->error;
}

static int out_callback(const char *p, size_t n, void *data)
{
	struct out_stream *o = data;
	while (n && o->error == 0) {
		if (o->len == sizeof(o->buf))
			(void)out_flush(o);
		size_t k = sizeof(o->buf) - o->len;
		if (k > n)
			k = n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
	}
	return o->error ? -1 : 0;
}

/* Writes the result to `out` in the input's syntax, streamed as it is made. The YAML emitter
 * (lib/yaml.c) can fail part way (more than it reads back): where the output cannot be discarded
 * (it goes straight into a descriptor) the YAML text is made whole first. */
static int write_doc(const struct fileio_out *out, const json_t *doc, enum kilt_format fmt,
		     struct kilt_error *err)
{
	int fd = fileio_out_fd(out);
	if (fmt == KILT_FORMAT_YAML && fileio_out_direct(out)) {
		_cleanup_free_ char *text = NULL;
		size_t len = 0;
		int r = kilt_yaml_dump(doc, KILT_YAML_CFN_TAGS, &text, &len, err);
		if (r < 0)
			return r;
		r = write_all(fd, text, len);
		return r < 0 ? kilt_error_setf(err, r, "cannot write the result: %s", strerror(-r))
			     : 0;
	}
	_cleanup_free_ struct out_stream *o = xmalloc(sizeof(*o));
	o->fd = fd;
	o->error = 0;
	o->len = 0;
	if (fmt == KILT_FORMAT_YAML) {
		int r = kilt_yaml_dump_callback(doc, KILT_YAML_CFN_TAGS, out_callback, o, err);
		if (out_flush(o) < 0) /* the write error first: it is why the emitter stopped */
			return kilt_error_setf(err, o->error, "cannot write the result: %s",
					       strerror(-o->error));
		return r;
	}
	/* 15 digits: every decimal a template author writes (0.1) comes back as written */
	int r = kilt_json_dump_callback(
		doc, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15), out_callback, o);
	if (r == 0)
		r = out_callback("\n", 1, o);
	if (out_flush(o) < 0)
		return kilt_error_setf(err, o->error, "cannot write the result: %s",
				       strerror(-o->error));
	if (r < 0) /* jansson refuses only what a parser never produces (loops, bad UTF-8) */
		return kilt_error_setf(err, -EINVAL, "cannot encode the result as JSON");
	return 0;
}

void inject_print_report(const struct kilt_report *rep, unsigned how)
{
	if (how & INJECT_REPORT_JSON) {
		/* the object the macro's log line also holds */
		_cleanup_json_ json_t *j = kilt_report_to_json(rep);
		_cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2));
		if (text)
			fprintf(stderr, "%s\n", text);
		return;
	}
	for (size_t i = 0; i < rep->n_decisions; i++) {
		const struct kilt_decision *d = &rep->decisions[i];
		if (!(how & INJECT_REPORT_EXPLAIN) && !d->warning)
			continue;
		if (d->container)
			fprintf(stderr, "%s%s / %s: %s: %s\n", d->warning ? "warning: " : "",
				d->task, d->container, kilt_verdict_name(d->verdict), d->reason);
		else
			fprintf(stderr, "%s%s: %s: %s\n", d->warning ? "warning: " : "", d->task,
				kilt_verdict_name(d->verdict), d->reason);
	}
	fprintf(stderr,
		"kilt inject: %s: %zu container(s) patched, %zu unchanged, %zu skipped, %zu "
		"removed, %zu warning(s)\n",
		rep->input, rep->n_patched, rep->n_unchanged, rep->n_skipped, rep->n_removed,
		rep->n_warnings);
}

/* ---- where the result goes (src/fileio.c) ------------------------------------------------- */

/* True when the run changed nothing and would write onto its own input: the file is left as it
 * is, bytes, comments and time stamps included, instead of being rewritten in kilt's syntax. */
static bool leave_untouched(const char *path, const char *out_path, const struct kilt_report *rep)
{
	return out_path && rep->n_patched == 0 && rep->n_removed == 0 &&
	       fileio_same_file(path, out_path);
}

/* The report, printed once the result is in place (or not needed): its counts are true then. */
static int finish(const struct kilt_report *rep, unsigned how, const struct fileio_out *out,
		  const char *untouched)
{
	inject_print_report(rep, how);
	if (untouched)
		fprintf(stderr, "kilt inject: %s: nothing to change; the file is left untouched\n",
			untouched);
	unsigned long links = out ? fileio_out_links(out) : 0;
	if (links > 1)
		fprintf(stderr,
			"kilt inject: warning: %s had %lu hard links: it was replaced by a new "
			"file, so its %lu other name(s) still hold the old content\n",
			fileio_out_name(out), links, links - 1);
	return EXIT_OK;
}

/* Writes `len` bytes held in memory, then a newline, to OUT ("-": standard output). */
static int write_held(const char *out_path, const char *data, size_t len,
		      struct fileio_out **ret_out, struct kilt_error *err)
{
	int r = fileio_out_open(out_path ? out_path : "-", ret_out, err);
	if (r < 0)
		return r;
	int fd = fileio_out_fd(*ret_out);
	r = write_all(fd, data, len);
	if (r == 0)
		r = write_all(fd, "\n", 1);
	if (r < 0)
		r = kilt_error_set(err, r, fileio_out_name(*ret_out), 0, 0,
				   "cannot write the result: %s", strerror(-r));
	return fileio_out_commit(*ret_out, r, err);
}

static int load_recipe(const char *path, struct kilt_recipe **ret, struct kilt_error *err)
{
	if (path)
		return kilt_recipe_load_file(path, ret, err);
	size_t len = 0;
	const char *text = builtin_recipe("falco", &len);
	if (!text)
		return kilt_error_setf(err, -ENOENT,
				       "this kilt was built without the built-in recipe; give one "
				       "with -r");
	return kilt_recipe_load_string(text, len, "falco", ret, err);
}

/* ---- the streaming path for CloudFormation JSON (lib/cfn-stream.c) ------------------------ */

/* Which path a JSON template takes (hidden --json-path, for tests and benchmarks). */
enum json_path {
	JSON_PATH_AUTO = 0, /* streamed when lib/cfn-stream.c can, else the whole document */
	JSON_PATH_WHOLE, /* always parse the whole document */
	JSON_PATH_STREAM, /* streamed, or fail: proves a test went through the streaming path */
};

#define STREAM_FALLBACK (-1)
/* Output to standard output, a device or a FIFO is held until the run succeeds (nothing is
 * written on failure); beyond this the whole-document path takes over. */
#define MAX_STDOUT_BUFFER (256u << 20)

struct stream_sink {
	struct out_stream *o; /* borrowed: the temporary file, or NULL */
	struct kbuf *mem; /* borrowed: the held output, or NULL */
	bool overflow;
};

/* A write error is kept in the out_stream and reported after the run, as write_doc does. */
static int sink_write(const char *p, size_t n, void *data)
{
	struct stream_sink *k = data;
	if (k->mem) {
		if (kbuf_add(k->mem, p, n) < 0)
			k->overflow = true;
		return k->overflow ? -1 : 0;
	}
	(void)out_callback(p, n, k->o);
	return 0;
}

/* Injects a JSON template resource by resource, holding the input text and one resource (or one
 * batch whose images are resolved together) instead of the whole tree. Gives the same bytes, report and errors as the
 * whole-document path, or STREAM_FALLBACK (nothing written, nothing printed) for the inputs
 * lib/cfn-stream.c hands back. A regular file receives the text as it is made (in its temporary
 * file); anything else gets it whole at the end. */
static int inject_streamed(const char *buf, size_t len, const char *path, const char *name,
			   const char *out_path, const struct kilt_recipe *recipe,
			   struct registry_table *table, const struct kilt_ecs_options *opts,
			   unsigned how)
{
	struct kilt_error err = { 0 };
	_cleanup_free_ struct out_stream *o = NULL;
	_cleanup_(fileio_out_freep) struct fileio_out *out = NULL;
	struct kbuf mem;
	kbuf_init(&mem, MAX_STDOUT_BUFFER);
	struct stream_sink sink = { .mem = &mem };
	if (out_path && fileio_out_replaces(out_path)) {
		if (fileio_out_open(out_path, &out, &err) < 0) {
			cli_report(&err);
			return EXIT_ERROR;
		}
		o = xmalloc(sizeof(*o));
		*o = (struct out_stream){ .fd = fileio_out_fd(out) };
		sink = (struct stream_sink){ .o = o };
	}
	struct kilt_cfn_stream io = {
		.write = sink_write,
		.write_userdata = &sink,
		.needs = table->client && recipe ? table->needs : NULL,
		.resolve = registry_table_resolve_hook,
		.resolve_userdata = table,
	};
	struct kilt_report rep;
	kilt_report_init(&rep);
	int r = kilt_cfn_stream_inject(recipe, buf, len, opts, &io, &rep, &err);
	if (r != 0 || sink.overflow) {
		kbuf_done(&mem);
		kilt_report_done(&rep);
		if (r == KILT_CFN_STREAM_WHOLE || sink.overflow)
			return STREAM_FALLBACK;
		if (!err.file[0])
			snprintf(err.file, sizeof(err.file), "%s", name);
		cli_report(&err);
		return EXIT_ERROR;
	}
	if (leave_untouched(path, out_path, &rep)) {
		kbuf_done(&mem);
		finish(&rep, how, NULL, out_path);
		kilt_report_done(&rep);
		return EXIT_OK;
	}
	if (out) {
		(void)out_callback("\n", 1, o);
		r = 0;
		if (out_flush(o) < 0)
			r = kilt_error_set(&err, o->error, fileio_out_name(out), 0, 0,
					   "cannot write the result: %s", strerror(-o->error));
		r = fileio_out_commit(out, r, &err);
	} else {
		r = write_held(out_path, mem.data ? mem.data : "", mem.len, &out, &err);
	}
	kbuf_done(&mem);
	if (r < 0) {
		cli_report(&err);
		kilt_report_done(&rep);
		return EXIT_ERROR;
	}
	finish(&rep, how, out, NULL);
	kilt_report_done(&rep);
	return EXIT_OK;
}

static void recipe_freep(struct kilt_recipe **recipe)
{
	kilt_recipe_free(*recipe);
}

/* ---- options ------------------------------------------------------------------------------ */

enum {
	OPT_REMOVE = 0x100,
	OPT_FAIL_OPEN,
	OPT_SIDECAR_CREDS,
	OPT_SIDECAR_LOGS,
	OPT_NO_IMAGE_LOOKUP,
	OPT_JSON_PATH,
	OPT_OUTPUT_FILE,
	OPT_PARAM,
	OPT_REPORT,
	OPT_SKIP_CONTAINER,
	OPT_POD_SECURITY,
	OPT_VOLUME_SOURCE,
	OPT_COPY_HELPER,
	OPT_COPY_USER,
	OPT_NAMESPACE,
	OPT_NAMESPACE_LABEL,
	OPT_IMAGE_FACTS,
	OPT_PULL_SECRET,
	OPT_JSON_PATCH,
};

/* What the command line asks for. */
struct inject_args {
	const char *path; /* borrowed: the input, "-" for standard input */
	const char *recipe_path; /* borrowed; NULL: the built-in recipe */
	const char *out_path; /* borrowed; NULL: standard output */
	bool in_place, explain, remove, image_lookup;
	bool tf_external; /* --format terraform-external: the external data source protocol */
	/* the result's syntax; CLI_OUTPUT_TEXT: the input's */
	enum cli_output output;
	enum cli_output report; /* TEXT or JSON, on standard error */
	enum json_path json_path;
	struct kilt_ecs_options opts; /* config and parameters point into the two below */
	struct cli_registry registry;
	json_t *config; /* owned: --set */
	json_t *params; /* owned: --param */
	json_t *skip; /* owned: --skip-container */
	/* Kubernetes manifests (src/inject_k8s.c); its ropts points at registry.ro */
	struct inject_k8s_args k8s;
	json_t *ns_labels; /* owned: --namespace-label */
};

static void inject_args_done(struct inject_args *a)
{
	json_decref(a->config);
	json_decref(a->params);
	json_decref(a->skip);
	json_decref(a->ns_labels);
}

static int parse_format(struct inject_args *a, const char *arg)
{
	static const struct {
		const char *name;
		enum kilt_ecs_input input;
	} kinds[] = {
		{ "auto", KILT_ECS_INPUT_AUTO },
		{ "cloudformation", KILT_ECS_INPUT_CLOUDFORMATION },
		{ "cfn", KILT_ECS_INPUT_CLOUDFORMATION },
		{ "task-definition", KILT_ECS_INPUT_TASK_DEFINITION },
		{ "ecs", KILT_ECS_INPUT_TASK_DEFINITION },
		{ "container-definitions", KILT_ECS_INPUT_CONTAINER_DEFINITIONS },
		{ "terraform", KILT_ECS_INPUT_CONTAINER_DEFINITIONS },
	};
	a->tf_external = strcmp(arg, "terraform-external") == 0;
	if (a->tf_external) {
		a->opts.input = KILT_ECS_INPUT_CONTAINER_DEFINITIONS;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (strcmp(arg, kinds[i].name) == 0) {
			a->opts.input = kinds[i].input;
			return 0;
		}
	}
	return cli_usage_error("inject",
			       "unknown --format '%s' (expected auto, cloudformation, "
			       "task-definition, container-definitions or terraform-external)",
			       arg);
}

/* -o/--output names the result's format, as it does in every command. Before, it named the
 * output file here: a value that is not a format is still taken as one, with a warning, so that
 * scripts keep working while `-o json` can never become a file named "json". */
static int parse_output(struct inject_args *a, const char *arg)
{
	if (strcmp(arg, "json") == 0 || strcmp(arg, "yaml") == 0)
		return cli_output_parse("inject", arg,
					CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON) |
						CLI_OUTPUT_ALLOW(CLI_OUTPUT_YAML),
					&a->output);
	if (strcmp(arg, "text") == 0 || !*arg)
		return cli_usage_error("inject", "--output must be json or yaml, not '%s'", arg);
	fprintf(stderr,
		"kilt inject: warning: '-o %s' is the old spelling of '--output-file %s' (-o now "
		"names the result's format: json or yaml)\n",
		arg, arg);
	a->out_path = arg;
	return 0;
}

/* Fills `a` from the command line. Returns -1 to go on, or the exit status. */
static int parse_options(int argc, char **argv, struct inject_args *a)
{
	static const struct option lopts[] = {
		{ "recipe", required_argument, NULL, 'r' },
		{ "output", required_argument, NULL, 'o' },
		{ "output-file", required_argument, NULL, OPT_OUTPUT_FILE },
		{ "in-place", no_argument, NULL, 'i' },
		{ "format", required_argument, NULL, 'f' },
		{ "mode", required_argument, NULL, 'm' },
		{ "set", required_argument, NULL, 's' },
		{ "param", required_argument, NULL, OPT_PARAM },
		{ "explain", no_argument, NULL, 'e' },
		{ "report", required_argument, NULL, OPT_REPORT },
		{ "remove", no_argument, NULL, OPT_REMOVE },
		{ "fail-open", no_argument, NULL, OPT_FAIL_OPEN },
		{ "sidecar-credentials", required_argument, NULL, OPT_SIDECAR_CREDS },
		{ "sidecar-logs", required_argument, NULL, OPT_SIDECAR_LOGS },
		{ "no-image-lookup", no_argument, NULL, OPT_NO_IMAGE_LOOKUP },
		{ "skip-container", required_argument, NULL, OPT_SKIP_CONTAINER },
		{ "pod-security", required_argument, NULL, OPT_POD_SECURITY },
		{ "volume-source", required_argument, NULL, OPT_VOLUME_SOURCE },
		{ "copy-helper", required_argument, NULL, OPT_COPY_HELPER },
		{ "copy-user", required_argument, NULL, OPT_COPY_USER },
		{ "namespace", required_argument, NULL, OPT_NAMESPACE },
		{ "namespace-label", required_argument, NULL, OPT_NAMESPACE_LABEL },
		{ "image-facts", required_argument, NULL, OPT_IMAGE_FACTS },
		{ "pull-secret", required_argument, NULL, OPT_PULL_SECRET },
		{ "json-patch", no_argument, NULL, OPT_JSON_PATCH },
		CLI_REGISTRY_LONG,
		{ "json-path", required_argument, NULL, OPT_JSON_PATH }, /* hidden */
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const hidden[] = { "json-path", NULL };
	static const struct cli_retired_short retired[] = {
		{ 'p', "--param NAME=VALUE" },
		{ 0 },
	};
	static const struct cli_command_options me = {
		.name = "inject", .opts = lopts, .hidden = hidden, .retired = retired
	};
	*a = (struct inject_args){ .path = "-", .image_lookup = true };
	kilt_ecs_options_default(&a->opts);
	cli_registry_init(&a->registry);
	a->config = json_object();
	a->params = json_object();
	a->skip = json_array();
	a->ns_labels = json_object();
	a->k8s = (struct inject_k8s_args){ .ropts = &a->registry.ro,
					   .namespace_labels = a->ns_labels };
	int c, r;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:o:if:m:s:eh" CLI_REGISTRY_SHORT, lopts, NULL)) !=
	       -1) {
		if ((r = cli_registry_option(&a->registry, "inject", c, optarg)) != 0) {
			if (r < 0)
				return EXIT_USAGE;
			continue;
		}
		switch (c) {
		case 'r':
			a->recipe_path = optarg;
			if (a->k8s.n_recipes == INJECT_K8S_MAX_RECIPES)
				return cli_usage_error("inject", "too many -r");
			a->k8s.recipe_paths[a->k8s.n_recipes++] = optarg;
			break;
		case 'o':
			if (parse_output(a, optarg))
				return EXIT_USAGE;
			break;
		case OPT_OUTPUT_FILE:
			if (!*optarg)
				return cli_usage_error("inject", "--output-file needs a FILE");
			a->out_path = optarg;
			break;
		case 'i':
			a->in_place = true;
			break;
		case 'f':
			if (parse_format(a, optarg))
				return EXIT_USAGE;
			break;
		case 'm':
			if (strcmp(optarg, "opt-in") == 0)
				a->opts.mode = KILT_ECS_OPT_IN;
			else if (strcmp(optarg, "opt-out") == 0)
				a->opts.mode = KILT_ECS_OPT_OUT;
			else
				return cli_usage_error("inject",
						       "--mode must be opt-in or opt-out, not '%s'",
						       optarg);
			break;
		case 's':
			if (cli_add_setting(a->config, optarg) < 0)
				return cli_usage_error("inject",
						       "--set expects KEY=VALUE, not '%s'", optarg);
			break;
		case OPT_PARAM: {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return cli_usage_error(
					"inject", "--param expects NAME=VALUE, not '%s'", optarg);
			_cleanup_free_ char *name = xstrndup(optarg, (size_t)(eq - optarg));
			json_t *v = json_string(eq + 1);
			if (!v || json_object_set_new(a->params, name, v) < 0)
				return cli_usage_error("inject", "--param: '%s' is not valid UTF-8",
						       optarg);
			break;
		}
		case 'e':
			a->explain = true;
			break;
		case OPT_REPORT:
			if (cli_output_parse("inject", optarg,
					     CLI_OUTPUT_ALLOW(CLI_OUTPUT_TEXT) |
						     CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON),
					     &a->report))
				return EXIT_USAGE;
			break;
		case OPT_REMOVE:
			a->remove = true;
			break;
		case OPT_FAIL_OPEN:
			a->opts.fail_open = true;
			break;
		case OPT_SIDECAR_CREDS:
			if (!*optarg)
				return cli_usage_error("inject", "--sidecar-credentials needs the "
								 "ARN or name of a secret");
			a->opts.sidecar_repository_credentials = optarg;
			break;
		case OPT_SIDECAR_LOGS:
			if (strcmp(optarg, "none") == 0)
				a->opts.sidecar_logs_off = true;
			else if (strcmp(optarg, "inherit") != 0)
				return cli_usage_error("inject",
						       "--sidecar-logs must be inherit or none");
			break;
		case OPT_NO_IMAGE_LOOKUP:
			a->image_lookup = false;
			break;
		case OPT_POD_SECURITY:
			if (strcmp(optarg, "proceed") == 0)
				a->k8s.pod_security = KILT_K8S_PSA_PROCEED;
			else if (strcmp(optarg, "skip") == 0)
				a->k8s.pod_security = KILT_K8S_PSA_SKIP;
			else
				return cli_usage_error("inject",
						       "--pod-security must be skip or proceed");
			break;
		case OPT_VOLUME_SOURCE:
			if (strcmp(optarg, "image") == 0)
				a->k8s.volume_source = KILT_K8S_VOLUME_IMAGE;
			else if (strcmp(optarg, "copy") == 0)
				a->k8s.volume_source = KILT_K8S_VOLUME_COPY;
			else
				return cli_usage_error("inject",
						       "--volume-source must be copy or image");
			break;
		case OPT_COPY_HELPER:
			a->k8s.copy_helper = optarg;
			break;
		case OPT_COPY_USER: {
			char *end;
			errno = 0;
			long long uid = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || uid < 0 || uid > 2147483647)
				return cli_usage_error(
					"inject", "--copy-user expects a numeric uid, not '%s'",
					optarg);
			a->k8s.copy_user = uid;
			break;
		}
		case OPT_NAMESPACE:
			a->k8s.namespace_name = optarg;
			break;
		case OPT_NAMESPACE_LABEL:
			if (inject_k8s_add_label(a->ns_labels, optarg) < 0)
				return cli_usage_error(
					"inject", "--namespace-label expects KEY=VALUE, not '%s'",
					optarg);
			break;
		case OPT_IMAGE_FACTS:
			a->k8s.image_facts_file = optarg;
			break;
		case OPT_PULL_SECRET:
			a->registry.ro.auth_file = optarg;
			break;
		case OPT_JSON_PATCH:
			a->k8s.json_patch = true;
			break;
		case OPT_SKIP_CONTAINER:
			if (!*optarg || json_array_append_new(a->skip, json_string(optarg)) < 0)
				return cli_usage_error("inject",
						       "--skip-container expects a container name "
						       "(UTF-8)");
			break;
		case OPT_JSON_PATH:
			if (strcmp(optarg, "auto") == 0)
				a->json_path = JSON_PATH_AUTO;
			else if (strcmp(optarg, "whole") == 0)
				a->json_path = JSON_PATH_WHOLE;
			else if (strcmp(optarg, "stream") == 0)
				a->json_path = JSON_PATH_STREAM;
			else
				return cli_usage_error("inject",
						       "--json-path must be auto, whole or stream");
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("inject", "expected at most one FILE, got '%s' and '%s'",
				       argv[optind], argv[optind + 1]);
	if (optind < argc)
		a->path = argv[optind];
	if (a->tf_external && (a->in_place || a->out_path || a->output || a->remove))
		return cli_usage_error("inject",
				       "--format terraform-external answers on standard "
				       "output: -i, --output-file, -o and --remove do not "
				       "apply");
	if (a->in_place && a->out_path)
		return cli_usage_error("inject", "-i and --output-file exclude each other");
	if (a->in_place && strcmp(a->path, "-") == 0)
		return cli_usage_error("inject", "-i needs a FILE");
	if (a->in_place)
		a->out_path = a->path;
	a->opts.config = a->config;
	a->opts.parameters = a->params;
	a->opts.skip_containers = json_array_size(a->skip) ? a->skip : NULL;
	a->opts.discard_on_failure = true; /* nothing is written when the run fails */
	return -1;
}

/* ---- the run -------------------------------------------------------------------------------- */

/* kilt's YAML keeps data, tags and key order, not comments: say so before a file that had
 * some is rewritten. */
static void warn_dropped_comments(const char *path)
{
	fprintf(stderr,
		"kilt inject: warning: %s: its YAML comments are not kept (kilt writes data, tags "
		"and key order, not comments)\n",
		path);
}

/* Terraform's and OpenTofu's `external` data source (lib/terraform.c): the query on standard
 * input, the result object on standard output, kilt's message on standard error and a non-zero
 * status on any error (Terraform shows that message). */
static int tf_external_run(struct inject_args *a, struct kilt_ecs_options *opts,
			   struct registry_table *table)
{
	struct kilt_error err = { 0 };
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct kilt_tf_query q = { 0 };
	_cleanup_(recipe_freep) struct kilt_recipe *recipe = NULL;
	_cleanup_free_ char *text = NULL;
	struct kilt_report rep;
	kilt_report_init(&rep);
	int r = fileio_read(a->path, MAX_INPUT_BYTES, &buf, &len, &err);
	if (r == 0)
		r = kilt_tf_query_parse(buf, len, &q, &err);
	/* the query's settings win over the command line's */
	if (r == 0 && q.config)
		json_object_update(a->config, q.config);
	if (r == 0 && q.has_mode)
		opts->mode = q.opt_in ? KILT_ECS_OPT_IN : KILT_ECS_OPT_OUT;
	if (r == 0)
		r = load_recipe(q.recipe ? q.recipe : a->recipe_path, &recipe, &err);
	if (r == 0) {
		if (table->client) { /* the lookups first, together; then the engine */
			kilt_ecs_list_images(recipe, q.container_definitions, opts, table->needs);
			registry_table_resolve(table);
		}
		r = kilt_ecs_inject(recipe, q.container_definitions, opts, &rep, &err);
	}
	if (r == 0)
		r = kilt_tf_result(q.container_definitions, &rep, &text, &len, &err);
	if (r == 0) {
		inject_print_report(
			&rep, (a->explain ? INJECT_REPORT_EXPLAIN : 0u) |
				      (a->report == CLI_OUTPUT_JSON ? INJECT_REPORT_JSON : 0u));
		r = write_all(STDOUT_FILENO, text, len);
		if (r < 0)
			kilt_error_setf(&err, r, "cannot write the result: %s", strerror(-r));
	}
	kilt_report_done(&rep);
	kilt_tf_query_done(&q);
	if (r < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

static int inject_run(struct inject_args *a)
{
	const char *recipe_path = a->recipe_path, *out_path = a->out_path, *path = a->path;
	bool remove = a->remove;
	unsigned how = (a->explain ? INJECT_REPORT_EXPLAIN : 0u) |
		       (a->report == CLI_OUTPUT_JSON ? INJECT_REPORT_JSON : 0u);
	enum json_path json_path = a->json_path;
	struct kilt_ecs_options opts = a->opts;
	_cleanup_(registry_client_freep) struct registry_client *registry = NULL;
	/* the run's image facts, resolved ahead of the engine (kilt_ecs_list_images) */
	_cleanup_(kilt_image_needs_done) struct kilt_image_needs needs = { 0 };
	struct registry_table table = {
		.needs = &needs,
		.budget_ms = a->registry.budget_ms,
		.budget_source = "--image-budget",
	};
	struct kilt_error err = { 0 };
	if (a->image_lookup && !remove) {
		if (registry_client_new(&a->registry.ro, &registry, &err) < 0) {
			cli_report(&err);
			return EXIT_ERROR;
		}
		table.client = registry;
		opts.image_facts = registry_table_callback;
		opts.image_facts_userdata = &table;
	}
	if (a->tf_external)
		return tf_external_run(a, &opts, &table);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	if (fileio_read(path, MAX_INPUT_BYTES, &buf, &len, &err) < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	json_t *k8s_docs = NULL;
	enum kilt_format k8s_fmt;
	bool k8s_single;
	if (inject_k8s_parse(buf, len, name, &k8s_docs, &k8s_fmt, &k8s_single)) {
		free(steal_pointer(&buf));
		struct inject_k8s_args *k8s = &a->k8s;
		k8s->out_path = out_path;
		k8s->config = a->config;
		k8s->report_how = how;
		k8s->patch_yaml = a->output == CLI_OUTPUT_YAML;
		if (a->output == CLI_OUTPUT_JSON)
			k8s_fmt = KILT_FORMAT_JSON;
		else if (a->output == CLI_OUTPUT_YAML)
			k8s_fmt = KILT_FORMAT_YAML;
		k8s->remove = remove;
		k8s->fail_open = opts.fail_open;
		k8s->mode = (enum kilt_select_mode)opts.mode;
		k8s->image_lookup = a->image_lookup;
		k8s->image_budget_ms = a->registry.budget_ms;
		return inject_k8s(k8s, k8s_docs, k8s_fmt, k8s_single, name);
	}
	/* Loaded before the input is parsed, reported after it: a syntax error comes first. */
	_cleanup_(recipe_freep) struct kilt_recipe *recipe = NULL;
	struct kilt_error recipe_err = { 0 };
	int recipe_r = remove ? 0 : load_recipe(recipe_path, &recipe, &recipe_err);
	if (json_path != JSON_PATH_WHOLE && recipe_r == 0 && a->output != CLI_OUTPUT_YAML &&
	    kilt_yaml_detect(buf, len) == KILT_FORMAT_JSON) {
		int s = inject_streamed(buf, len, path, name, out_path, recipe, &table, &opts, how);
		if (s != STREAM_FALLBACK)
			return s;
	}
	if (json_path == JSON_PATH_STREAM) {
		fprintf(stderr, "kilt inject: %s: this input cannot be streamed\n", name);
		return EXIT_ERROR;
	}
	enum kilt_format fmt;
	_cleanup_json_ json_t *doc = NULL;
	if (parse_doc(buf, len, name, &fmt, &doc, &err) < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	bool drops_comments =
		a->in_place && fmt == KILT_FORMAT_YAML && kilt_yaml_has_comments(buf, len);
	if (a->output == CLI_OUTPUT_JSON)
		fmt = KILT_FORMAT_JSON;
	else if (a->output == CLI_OUTPUT_YAML)
		fmt = KILT_FORMAT_YAML;
	free(steal_pointer(&buf)); /* the tree holds everything now */
	struct kilt_report rep;
	kilt_report_init(&rep);
	int r;
	if (remove) {
		r = kilt_ecs_remove(doc, &opts, &rep, &err);
	} else {
		r = recipe_r;
		if (r < 0)
			err = recipe_err;
		if (r == 0) {
			if (registry) { /* the lookups first, together; then the engine */
				kilt_ecs_list_images(recipe, doc, &opts, &needs);
				registry_table_resolve(&table);
			}
			r = kilt_ecs_inject(recipe, doc, &opts, &rep, &err);
		}
	}
	if (r < 0) {
		if (!err.file[0])
			snprintf(err.file, sizeof(err.file), "%s", name);
		cli_report(&err);
		kilt_report_done(&rep);
		return EXIT_ERROR;
	}
	if (leave_untouched(path, out_path, &rep)) {
		finish(&rep, how, NULL, out_path);
		kilt_report_done(&rep);
		return EXIT_OK;
	}
	if (drops_comments)
		warn_dropped_comments(path);
	_cleanup_(fileio_out_freep) struct fileio_out *out = NULL;
	r = fileio_out_open(out_path ? out_path : "-", &out, &err);
	if (r == 0)
		r = fileio_out_commit(out, write_doc(out, doc, fmt, &err), &err);
	if (r < 0) {
		cli_report(&err);
		kilt_report_done(&rep);
		return EXIT_ERROR;
	}
	finish(&rep, how, out, NULL);
	kilt_report_done(&rep);
	return EXIT_OK;
}

int cmd_inject(int argc, char **argv)
{
	struct inject_args a;
	int rc = parse_options(argc, argv, &a);
	if (rc < 0)
		rc = inject_run(&a);
	inject_args_done(&a);
	return rc;
}
