/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt webhook serve`: options of the Kubernetes admission webhook server (webhook.c). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "webhook.h"
#include "webhook_manifests.h"

#define SA_NAMESPACE_FILE "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

static void help(FILE *out)
{
	fputs("Usage: kilt webhook serve --tls-cert FILE --tls-key FILE --recipe FILE [options]\n"
	      "\n"
	      "Serve the Kubernetes mutating admission webhook over HTTPS (TLS 1.2 and 1.3):\n"
	      "  POST /mutate   AdmissionReview v1 in, AdmissionReview v1 out (JSON Patch)\n"
	      "  GET  /healthz  200 while the process serves\n"
	      "  GET  /readyz   200 once the certificate and recipes are loaded; 503 while "
	      "draining\n"
	      "  GET  /metrics  Prometheus text\n"
	      "Logs are JSON lines on stderr. SIGTERM or SIGINT: /readyz fails, then (after the\n"
	      "shutdown delay) no new connection is accepted, the reviews in flight finish, and\n"
	      "kilt exits 0 (1 when the drain timeout cut a review short).\n"
	      "\n"
	      "Options:\n"
	      "  -l, --listen HOST:PORT     address to listen on (default 0.0.0.0:8443; "
	      "[V6]:PORT;\n"
	      "                             port 0 picks a free one, logged at start)\n"
	      "      --tls-cert FILE        serving certificate (PEM, chain allowed)\n"
	      "      --tls-key FILE         its private key (PEM); both files are checked for\n"
	      "                             changes and reloaded without dropping a request\n"
	      "  -r, --recipe FILE          recipe to inject (repeatable)\n"
	      "  -s, --set KEY=VALUE        recipe parameter, visible as config.KEY (repeatable)\n"
	      "  -n, --namespace NS         the webhook's own namespace, never injected (default:\n"
	      "                             POD_NAMESPACE, else the service account's namespace)\n"
	      "      --strict               deny a pod kilt cannot process (default: admit it\n"
	      "                             unpatched, with a warning)\n"
	      "  -m, --mode MODE            opt-out (default: every pod unless it or its "
	      "namespace\n"
	      "                             says kilt.dev/inject: disabled) or opt-in (only pods\n"
	      "                             whose namespace or themselves say enabled)\n"
	      "      --pod-security skip|proceed\n"
	      "                             a namespace whose enforced Pod Security level forbids\n"
	      "                             what the recipe adds: skip its pods (default) or\n"
	      "                             inject anyway\n"
	      "      --volume-source copy|image\n"
	      "                             fill the recipe's mounts by an init container copying\n"
	      "                             from the image (default) or use image volumes\n"
	      "      --copy-helper PATH     the copying program in the agent image (default\n"
	      "                             /kilt/bin/kilt-wait)\n"
	      "      --copy-user UID        the user the copying init containers run as (default\n"
	      "                             0, without capabilities)\n"
	      "      --kubeconfig FILE      reach the API server with this kubeconfig's current\n"
	      "                             context (default: in-cluster, with the service\n"
	      "                             account's token, when KUBERNETES_SERVICE_HOST is set)\n"
	      "      --no-api               never use the API server: namespace labels unknown\n"
	      "                             (or from --namespaces), no pull secrets\n"
	      "      --namespaces FILE      namespace labels to use when there is no API server\n"
	      "                             access (Namespace objects, YAML or JSON)\n"
	      "      --image-facts FILE     image facts to use instead of asking registries\n"
	      "                             ({\"IMAGE\": {\"entrypoint\": [..], \"command\": "
	      "[..]}})\n"
	      "      --no-image-lookup      never ask a registry for an image's ENTRYPOINT/CMD\n"
	      "      --max-body BYTES       largest review read (default and maximum 8388608)\n"
	      "      --threads N            worker threads (default: one per CPU available)\n"
	      "      --shutdown-delay MS    on SIGTERM, keep serving (not ready) this long before\n"
	      "                             closing the listening socket (default 0)\n"
	      "      --drain-timeout MS     then the longest wait for reviews in flight\n"
	      "                             (default 20000)\n"
	      "      --reload-interval MS   how often the certificate files are checked\n"
	      "                             (default 1000)\n"
	      "      --fixed-response       answer every review with the same constant "
	      "\"allowed\"\n"
	      "                             without parsing it (the floor of bench/webhook;\n"
	      "                             never for a cluster: its uid matches no review)\n"
	      "  -h, --help                 show this help\n"
	      "\n",
	      out);
	fputs(cli_registry_help, out);
	fputs("  (--image-budget is for each review's lookups together; default 3000: keep it\n"
	      "  under the webhook's timeoutSeconds)\n"
	      "\n"
	      "Exit status: 0 after a clean drain, 1 when the certificate or a recipe cannot be\n"
	      "loaded at start or a review was abandoned at the drain timeout, 2 usage error.\n",
	      out);
}

static int parse_uint(const char *cmd, const char *opt, const char *s, unsigned long long max,
		      unsigned long long *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return cli_usage_error(cmd, "%s: expected a number from 0 to %llu, got '%s'", opt,
				       max, s);
	*ret = v;
	return 0;
}

/* The namespace a pod runs in, as Kubernetes tells it (downward API or service account). */
static char *own_namespace(const char *given)
{
	if (given)
		return xstrdup(given);
	const char *env = getenv("POD_NAMESPACE");
	if (env && *env)
		return xstrdup(env);
	char *text = NULL;
	size_t len = 0;
	if (kilt_read_file(SA_NAMESPACE_FILE, 256, &text, &len) < 0)
		return NULL;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	return text;
}

static int serve(int argc, char **argv)
{
	enum {
		OPT_CERT = 256,
		OPT_KEY,
		OPT_STRICT,
		OPT_MAX_BODY,
		OPT_THREADS,
		OPT_DRAIN,
		OPT_DELAY,
		OPT_RELOAD,
		OPT_POD_SECURITY,
		OPT_VOLUME_SOURCE,
		OPT_COPY_HELPER,
		OPT_COPY_USER,
		OPT_NAMESPACES,
		OPT_IMAGE_FACTS,
		OPT_NO_IMAGE_LOOKUP,
		OPT_KUBECONFIG,
		OPT_NO_API,
		OPT_FIXED,
	};
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "tls-cert", required_argument, NULL, OPT_CERT },
		{ "tls-key", required_argument, NULL, OPT_KEY },
		{ "recipe", required_argument, NULL, 'r' },
		{ "set", required_argument, NULL, 's' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "strict", no_argument, NULL, OPT_STRICT },
		{ "max-body", required_argument, NULL, OPT_MAX_BODY },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
		{ "shutdown-delay", required_argument, NULL, OPT_DELAY },
		{ "reload-interval", required_argument, NULL, OPT_RELOAD },
		{ "mode", required_argument, NULL, 'm' },
		{ "pod-security", required_argument, NULL, OPT_POD_SECURITY },
		{ "volume-source", required_argument, NULL, OPT_VOLUME_SOURCE },
		{ "copy-helper", required_argument, NULL, OPT_COPY_HELPER },
		{ "copy-user", required_argument, NULL, OPT_COPY_USER },
		{ "namespaces", required_argument, NULL, OPT_NAMESPACES },
		{ "image-facts", required_argument, NULL, OPT_IMAGE_FACTS },
		{ "no-image-lookup", no_argument, NULL, OPT_NO_IMAGE_LOOKUP },
		{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
		{ "no-api", no_argument, NULL, OPT_NO_API },
		{ "fixed-response", no_argument, NULL, OPT_FIXED },
		{ "help", no_argument, NULL, 'h' },
		CLI_REGISTRY_LONG,
		{ 0 },
	};
	const char *cmd = "webhook serve";
	struct webhook_options o = {
		.listen = "0.0.0.0:8443",
		.max_body = KILT_ADMISSION_MAX_REVIEW,
		.drain_timeout_ms = 20000,
		.reload_interval_ms = 1000,
		.image_lookup = true,
	};
	struct cli_registry reg;
	cli_registry_init(&reg);
	/* a review's lookups must end well before the API server gives up on the webhook */
	reg.budget_ms = 3000;
	_cleanup_free_ const char **recipes = xcalloc((size_t)argc, sizeof(*recipes));
	_cleanup_json_ json_t *config = json_object();
	const char *ns = NULL;
	static const struct cli_command_options me = { .name = "webhook serve", .opts = lopts };
	unsigned long long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":l:r:s:n:m:h" CLI_REGISTRY_SHORT, lopts, NULL)) !=
	       -1) {
		int rr = cli_registry_option(&reg, cmd, c, optarg);
		if (rr < 0)
			return EXIT_USAGE;
		if (rr > 0)
			continue;
		switch (c) {
		case 'l':
			o.listen = optarg;
			break;
		case OPT_CERT:
			o.cert_file = optarg;
			break;
		case OPT_KEY:
			o.key_file = optarg;
			break;
		case 'r':
			recipes[o.n_recipes++] = optarg;
			break;
		case 's': {
			int r = cli_add_setting(config, optarg);
			if (r == -EILSEQ)
				return cli_usage_error(cmd, "--set %s: not valid UTF-8", optarg);
			if (r < 0)
				return cli_usage_error(cmd, "--set %s: expected KEY=VALUE", optarg);
			break;
		}
		case 'n':
			ns = optarg;
			break;
		case OPT_STRICT:
			o.strict = true;
			break;
		case OPT_MAX_BODY:
			if (parse_uint(cmd, "--max-body", optarg, KILT_ADMISSION_MAX_REVIEW, &v))
				return EXIT_USAGE;
			if (v == 0)
				return cli_usage_error(cmd, "--max-body: must be above 0");
			o.max_body = (size_t)v;
			break;
		case OPT_THREADS:
			if (parse_uint(cmd, "--threads", optarg, 1024, &v))
				return EXIT_USAGE;
			o.threads = (unsigned)v;
			break;
		case OPT_DRAIN:
			if (parse_uint(cmd, "--drain-timeout", optarg, 3600000, &v))
				return EXIT_USAGE;
			o.drain_timeout_ms = (unsigned)v;
			break;
		case OPT_DELAY:
			if (parse_uint(cmd, "--shutdown-delay", optarg, 3600000, &v))
				return EXIT_USAGE;
			o.shutdown_delay_ms = (unsigned)v;
			break;
		case OPT_RELOAD:
			if (parse_uint(cmd, "--reload-interval", optarg, 3600000, &v))
				return EXIT_USAGE;
			if (v < 10)
				return cli_usage_error(cmd, "--reload-interval: at least 10 ms");
			o.reload_interval_ms = (unsigned)v;
			break;
		case 'm':
			if (strcmp(optarg, "opt-in") == 0)
				o.mode = KILT_SELECT_OPT_IN;
			else if (strcmp(optarg, "opt-out") == 0)
				o.mode = KILT_SELECT_OPT_OUT;
			else
				return cli_usage_error(
					cmd, "--mode must be opt-in or opt-out, not '%s'", optarg);
			break;
		case OPT_POD_SECURITY:
			if (strcmp(optarg, "proceed") == 0)
				o.pod_security = KILT_K8S_PSA_PROCEED;
			else if (strcmp(optarg, "skip") == 0)
				o.pod_security = KILT_K8S_PSA_SKIP;
			else
				return cli_usage_error(cmd,
						       "--pod-security must be skip or proceed");
			break;
		case OPT_VOLUME_SOURCE:
			if (strcmp(optarg, "image") == 0)
				o.volume_source = KILT_K8S_VOLUME_IMAGE;
			else if (strcmp(optarg, "copy") == 0)
				o.volume_source = KILT_K8S_VOLUME_COPY;
			else
				return cli_usage_error(cmd,
						       "--volume-source must be copy or image");
			break;
		case OPT_COPY_HELPER:
			o.copy_helper = optarg;
			break;
		case OPT_COPY_USER:
			if (parse_uint(cmd, "--copy-user", optarg, 2147483647, &v))
				return EXIT_USAGE;
			o.copy_user = (long long)v;
			break;
		case OPT_NAMESPACES:
			o.namespaces_file = optarg;
			break;
		case OPT_IMAGE_FACTS:
			o.image_facts_file = optarg;
			break;
		case OPT_NO_IMAGE_LOOKUP:
			o.image_lookup = false;
			break;
		case OPT_KUBECONFIG:
			o.kubeconfig = optarg;
			break;
		case OPT_NO_API:
			o.no_api = true;
			break;
		case OPT_FIXED:
			o.fixed_response = true;
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		default:
			return cli_bad_option(&me, c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
	if (!o.cert_file || !o.key_file)
		return cli_usage_error(cmd, "--tls-cert and --tls-key are required");
	if (o.n_recipes == 0)
		return cli_usage_error(cmd, "at least one --recipe is required");
	if (o.kubeconfig && o.no_api)
		return cli_usage_error(cmd, "--kubeconfig and --no-api contradict each other");
	o.recipe_files = recipes;
	o.config = config;
	o.ropts = &reg.ro;
	o.image_budget_ms = reg.budget_ms;
	_cleanup_free_ char *own = own_namespace(ns);
	o.own_namespace = own;
	return webhook_serve(&o);
}

int cmd_webhook(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "manifests") == 0)
		return cmd_webhook_manifests(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs("Usage: kilt webhook serve|manifests [options]\n"
		      "\n"
		      "Commands:\n"
		      "  serve       run the Kubernetes mutating admission webhook (HTTPS)\n"
		      "  manifests   print the Kubernetes objects that install it\n"
		      "\n"
		      "Run 'kilt webhook COMMAND --help' for its options.\n"
		      "\n"
		      "Exit status: see each command's --help; 2 usage error.\n",
		      stdout);
		return EXIT_OK;
	}
	if (argc < 2)
		return cli_usage_error("webhook", "expected a command: serve or manifests");
	return cli_usage_error("webhook", "unknown command '%s' (expected: serve or manifests)",
			       argv[1]);
}
