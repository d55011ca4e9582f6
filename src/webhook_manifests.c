/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt webhook manifests`: prints every Kubernetes object that installs `kilt webhook serve`
 * in a cluster (docs/webhook.md "Installing it"). deploy/helm/kilt renders the same objects;
 * tests/k8s/manifests.py holds the two to each other. Nothing is printed unless all of it could
 * be made: the recipes are validated and the certificates made before the first byte goes out. */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "builtin_recipe.h"
#include "cli.h"
#include "fileio.h"
#include "util.h"
#include "webhook_manifests.h"

#define NAME "kilt-webhook"
#define TLS_SECRET NAME "-tls"
#define CA_SECRET NAME "-ca"
#define RECIPES_CONFIGMAP NAME "-recipes"
#define WEBHOOK_NAME "pods.kilt.dev"
#define TLS_DIR "/etc/kilt/tls"
#define RECIPES_DIR "/etc/kilt/recipes"
#define PORT 8443
/* The API server waits this long for an answer. The server answers from memory in well under a
 * millisecond; the rest is for the image lookups and pull-secret reads a review may need, all
 * within the review's budget, which stays well below it. */
#define TIMEOUT_SECONDS 10
#define REVIEW_BUDGET_MS "3000"
/* SIGTERM: the pod leaves the Service's endpoints while it still answers (shutdown delay), then
 * the reviews in flight finish (drain timeout), all well within the grace period. */
#define SHUTDOWN_DELAY_MS 5000
#define DRAIN_TIMEOUT_MS 20000
#define GRACE_SECONDS 30
#define RUN_AS 65532 /* a user that exists in no image: nothing is owned by it */
#define MAX_RECIPE_BYTES (512u * 1024u)
/* A ConfigMap holds at most 1 MiB in all. */
#define MAX_CONFIGMAP_BYTES (1000u * 1024u)
#define CA_DAYS 3650
#define DEFAULT_CERT_DAYS 730

struct recipe_file {
	char *key; /* owned: the ConfigMap key and file name under RECIPES_DIR */
	char *text; /* owned */
	size_t len;
};

struct settings {
	const char *ns;
	const char *image;
	unsigned replicas;
	const char *failure_policy;
	const char *mode; /* NULL: the server's default (opt-out) */
	bool cert_manager;
	unsigned cert_days;
	struct recipe_file *recipes; /* owned */
	size_t n_recipes;
	const char **sets; /* borrowed from argv */
	size_t n_sets;
	char *recipes_hash; /* owned */
	struct webhook_certs certs;
};

/* json_pack whose format is a constant of this file: a failure is a bug, not an input error. */
static json_t *pack(const char *fmt, ...)
{
	va_list ap;
	json_error_t e;
	va_start(ap, fmt);
	json_t *j = json_vpack_ex(&e, 0, fmt, ap);
	va_end(ap);
	if (!j) {
		fprintf(stderr, "kilt: internal error: json_pack: %s\n", e.text);
		abort();
	}
	return j;
}

static json_t *labels(void)
{
	return pack("{s:s, s:s}", "app.kubernetes.io/name", NAME, "app.kubernetes.io/part-of",
		    "kilt");
}

static json_t *selector_labels(void)
{
	return pack("{s:s}", "app.kubernetes.io/name", NAME);
}

static json_t *meta(const char *name, const char *ns)
{
	json_t *m = pack("{s:s}", "name", name);
	if (ns)
		json_object_set_new(m, "namespace", json_string(ns));
	json_object_set_new(m, "labels", labels());
	return m;
}

static json_t *object(const char *api_version, const char *kind, json_t *metadata)
{
	return pack("{s:s, s:s, s:o}", "apiVersion", api_version, "kind", kind, "metadata",
		    metadata);
}

static json_t *namespace_object(const struct settings *s)
{
	json_t *m = meta(s->ns, NULL);
	/* The webhook's own pods pass the strictest Pod Security level. */
	json_object_set_new(json_object_get(m, "labels"), "pod-security.kubernetes.io/enforce",
			    json_string("restricted"));
	return object("v1", "Namespace", m);
}

static json_t *rbac_objects(const struct settings *s, json_t *out)
{
	json_array_append_new(out, object("v1", "ServiceAccount", meta(NAME, s->ns)));
	/* Namespace labels (watched cache: opt-in/out, Pod Security level); the pull secrets of a
	 * pod and of its service account, read only when an image lookup needs them. */
	json_t *role = object("rbac.authorization.k8s.io/v1", "ClusterRole", meta(NAME, NULL));
	json_object_set_new(
		role, "rules",
		pack("[{s:[s], s:[s], s:[s,s,s]}, {s:[s], s:[s], s:[s]}, {s:[s], s:[s], s:[s]}]",
		     "apiGroups", "", "resources", "namespaces", "verbs", "get", "list", "watch",
		     "apiGroups", "", "resources", "secrets", "verbs", "get", "apiGroups", "",
		     "resources", "serviceaccounts", "verbs", "get"));
	json_array_append_new(out, role);
	json_t *bind =
		object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", meta(NAME, NULL));
	json_object_set_new(bind, "roleRef",
			    pack("{s:s, s:s, s:s}", "apiGroup", "rbac.authorization.k8s.io", "kind",
				 "ClusterRole", "name", NAME));
	json_object_set_new(bind, "subjects",
			    pack("[{s:s, s:s, s:s}]", "kind", "ServiceAccount", "name", NAME,
				 "namespace", s->ns));
	json_array_append_new(out, bind);
	return out;
}

/* The Service's DNS names, the first one being what the API server asks for. */
static void dns_names(const char *ns, char *names[4])
{
	names[0] = xasprintf("%s.%s.svc", NAME, ns);
	names[1] = xasprintf("%s.%s.svc.cluster.local", NAME, ns);
	names[2] = xasprintf("%s.%s", NAME, ns);
	names[3] = NULL;
}

static json_t *string_array(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static char *b64(const char *s)
{
	return kilt_base64_encode(s, strlen(s));
}

static void certificate_objects(const struct settings *s, json_t *out)
{
	char *names[4];
	dns_names(s->ns, names);
	if (!s->cert_manager) {
		json_t *secret = object("v1", "Secret", meta(TLS_SECRET, s->ns));
		json_object_set_new(secret, "type", json_string("kubernetes.io/tls"));
		_cleanup_free_ char *ca = b64(s->certs.ca_cert);
		_cleanup_free_ char *crt = b64(s->certs.cert);
		_cleanup_free_ char *key = b64(s->certs.key);
		json_object_set_new(
			secret, "data",
			pack("{s:s, s:s, s:s}", "ca.crt", ca, "tls.crt", crt, "tls.key", key));
		json_array_append_new(out, secret);
	} else {
		/* A CA of the webhook's own (self-signed, long-lived) issues the serving
		 * certificate, so renewing the serving certificate leaves the caBundle as it is. */
		json_t *o = object("cert-manager.io/v1", "Issuer", meta(NAME "-selfsigned", s->ns));
		json_object_set_new(o, "spec", pack("{s:{}}", "selfSigned"));
		json_array_append_new(out, o);
		o = object("cert-manager.io/v1", "Certificate", meta(CA_SECRET, s->ns));
		json_object_set_new(o, "spec",
				    pack("{s:b, s:s, s:s, s:s, s:{s:s, s:i}, s:{s:s, s:s}}", "isCA",
					 1, "commonName", NAME "-ca", "secretName", CA_SECRET,
					 "duration", "87600h", "privateKey", "algorithm", "ECDSA",
					 "size", 256, "issuerRef", "name", NAME "-selfsigned",
					 "kind", "Issuer"));
		json_array_append_new(out, o);
		o = object("cert-manager.io/v1", "Issuer", meta(CA_SECRET, s->ns));
		json_object_set_new(o, "spec", pack("{s:{s:s}}", "ca", "secretName", CA_SECRET));
		json_array_append_new(out, o);
		o = object("cert-manager.io/v1", "Certificate", meta(NAME, s->ns));
		json_object_set_new(
			o, "spec",
			pack("{s:s, s:o, s:s, s:s, s:[s,s], s:{s:s, s:i, s:s}, s:{s:s, s:s}}",
			     "secretName", TLS_SECRET, "dnsNames", string_array(names), "duration",
			     "2160h", "renewBefore", "720h", "usages", "server auth",
			     "digital signature", "privateKey", "algorithm", "ECDSA", "size", 256,
			     "rotationPolicy", "Always", "issuerRef", "name", CA_SECRET, "kind",
			     "Issuer"));
		json_array_append_new(out, o);
	}
	for (size_t i = 0; names[i]; i++)
		free(names[i]);
}

static json_t *configmap_object(const struct settings *s)
{
	json_t *cm = object("v1", "ConfigMap", meta(RECIPES_CONFIGMAP, s->ns));
	json_t *data = json_object();
	for (size_t i = 0; i < s->n_recipes; i++)
		json_object_set_new(data, s->recipes[i].key,
				    json_stringn(s->recipes[i].text, s->recipes[i].len));
	json_object_set_new(cm, "data", data);
	return cm;
}

static json_t *probe(const char *path, int period, int failures)
{
	return pack("{s:{s:s, s:s, s:s}, s:i, s:i, s:i}", "httpGet", "path", path, "port", "https",
		    "scheme", "HTTPS", "periodSeconds", period, "timeoutSeconds", 2,
		    "failureThreshold", failures);
}

static json_t *server_args(const struct settings *s)
{
	json_t *a = pack("[s, s, s, s, s, s, s, s]", "webhook", "serve", "--listen", "0.0.0.0:8443",
			 "--tls-cert", TLS_DIR "/tls.crt", "--tls-key", TLS_DIR "/tls.key");
	for (size_t i = 0; i < s->n_recipes; i++) {
		json_array_append_new(a, json_string("--recipe"));
		json_array_append_new(a, json_sprintf("%s/%s", RECIPES_DIR, s->recipes[i].key));
	}
	for (size_t i = 0; i < s->n_sets; i++) {
		json_array_append_new(a, json_string("--set"));
		json_array_append_new(a, json_string(s->sets[i]));
	}
	if (s->mode) {
		json_array_append_new(a, json_string("--mode"));
		json_array_append_new(a, json_string(s->mode));
	}
	json_t *tail =
		pack("[s, s, s, s, s, s, s, s]", "--image-budget", REVIEW_BUDGET_MS, "--namespace",
		     s->ns, "--shutdown-delay", "5000", "--drain-timeout", "20000");
	json_array_extend(a, tail);
	json_decref(tail);
	return a;
}

static json_t *deployment_object(const struct settings *s)
{
	json_t *container = pack(
		"{s:s, s:s, s:s, s:o, s:[{s:s, s:{s:{s:s}}}], s:[{s:s, s:i, s:s}], s:o, s:o, "
		"s:{s:{s:s, s:s}, s:{s:s}}, s:{s:b, s:b, s:{s:[s]}}, s:[{s:s, s:s, s:b}, {s:s, "
		"s:s, "
		"s:b}, {s:s, s:s}]}",
		"name", "webhook", "image", s->image, "imagePullPolicy", "IfNotPresent", "args",
		server_args(s), "env", "name", "POD_NAMESPACE", "valueFrom", "fieldRef",
		"fieldPath", "metadata.namespace", "ports", "name", "https", "containerPort", PORT,
		"protocol", "TCP", "readinessProbe", probe("/readyz", 5, 2), "livenessProbe",
		probe("/healthz", 10, 3), "resources", "requests", "cpu", "100m", "memory", "64Mi",
		"limits", "memory", "256Mi", "securityContext", "allowPrivilegeEscalation", 0,
		"readOnlyRootFilesystem", 1, "capabilities", "drop", "ALL", "volumeMounts", "name",
		"tls", "mountPath", TLS_DIR, "readOnly", 1, "name", "recipes", "mountPath",
		RECIPES_DIR, "readOnly", 1, "name", "tmp", "mountPath", "/tmp");
	/* Preferred, not required: a single-node cluster still runs both replicas. */
	json_t *affinity = pack("{s:{s:[{s:i, s:{s:{s:o}, s:s}}]}}", "podAntiAffinity",
				"preferredDuringSchedulingIgnoredDuringExecution", "weight", 100,
				"podAffinityTerm", "labelSelector", "matchLabels",
				selector_labels(), "topologyKey", "kubernetes.io/hostname");
	json_t *pod_spec = pack(
		"{s:s, s:b, s:i, s:{s:b, s:i, s:i, s:{s:s}}, s:o, s:[o], s:[{s:s, s:{s:s}}, {s:s, "
		"s:{s:s}}, {s:s, s:{s:s}}]}",
		"serviceAccountName", NAME, "automountServiceAccountToken", 1,
		"terminationGracePeriodSeconds", GRACE_SECONDS, "securityContext", "runAsNonRoot",
		1, "runAsUser", RUN_AS, "runAsGroup", RUN_AS, "seccompProfile", "type",
		"RuntimeDefault", "affinity", affinity, "containers", container, "volumes", "name",
		"tls", "secret", "secretName", TLS_SECRET, "name", "recipes", "configMap", "name",
		RECIPES_CONFIGMAP, "name", "tmp", "emptyDir", "medium", "Memory");
	json_t *dep = object("apps/v1", "Deployment", meta(NAME, s->ns));
	json_object_set_new(dep, "spec",
			    pack("{s:i, s:{s:o}, s:{s:s, s:{s:i, s:i}}, s:{s:{s:o, s:{s:s}}, s:o}}",
				 "replicas", (int)s->replicas, "selector", "matchLabels",
				 selector_labels(), "strategy", "type", "RollingUpdate",
				 "rollingUpdate", "maxUnavailable", 0, "maxSurge", 1, "template",
				 "metadata", "labels", labels(), "annotations",
				 "kilt.dev/recipes-sha256", s->recipes_hash, "spec", pod_spec));
	return dep;
}

static json_t *service_object(const struct settings *s)
{
	json_t *svc = object("v1", "Service", meta(NAME, s->ns));
	json_object_set_new(svc, "spec",
			    pack("{s:o, s:[{s:s, s:i, s:s, s:s}]}", "selector", selector_labels(),
				 "ports", "name", "https", "port", 443, "targetPort", "https",
				 "protocol", "TCP"));
	return svc;
}

static json_t *pdb_object(const struct settings *s)
{
	json_t *pdb = object("policy/v1", "PodDisruptionBudget", meta(NAME, s->ns));
	json_object_set_new(pdb, "spec",
			    pack("{s:i, s:{s:o}}", "maxUnavailable", 1, "selector", "matchLabels",
				 selector_labels()));
	return pdb;
}

static json_t *webhook_configuration(const struct settings *s)
{
	json_t *m = meta(NAME, NULL);
	if (s->cert_manager) {
		_cleanup_free_ char *from = xasprintf("%s/%s", s->ns, NAME);
		json_object_set_new(m, "annotations",
				    pack("{s:s}", "cert-manager.io/inject-ca-from", from));
	}
	json_t *mwc = object("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", m);
	json_t *client = pack("{s:{s:s, s:s, s:s, s:i}}", "service", "name", NAME, "namespace",
			      s->ns, "path", "/mutate", "port", 443);
	if (!s->cert_manager) {
		_cleanup_free_ char *ca = b64(s->certs.ca_cert);
		json_object_set_new(client, "caBundle", json_string(ca));
	}
	json_t *hook =
		pack("{s:s, s:[s], s:o, s:[{s:[s], s:[s], s:[s], s:[s], s:s}], s:s, s:s, "
		     "s:{s:[{s:s, s:s, s:[s,s,s,s]}]}, s:s, s:s, s:i}",
		     "name", WEBHOOK_NAME, "admissionReviewVersions", "v1", "clientConfig", client,
		     "rules", "apiGroups", "", "apiVersions", "v1", "operations", "CREATE",
		     "resources", "pods", "scope", "Namespaced", "failurePolicy", s->failure_policy,
		     "matchPolicy", "Equivalent", "namespaceSelector", "matchExpressions", "key",
		     "kubernetes.io/metadata.name", "operator", "NotIn", "values", s->ns,
		     "kube-system", "kube-public", "kube-node-lease", "reinvocationPolicy",
		     "IfNeeded", "sideEffects", "None", "timeoutSeconds", TIMEOUT_SECONDS);
	json_object_set_new(mwc, "webhooks", pack("[o]", hook));
	return mwc;
}

static json_t *all_objects(const struct settings *s)
{
	json_t *out = json_array();
	json_array_append_new(out, namespace_object(s));
	rbac_objects(s, out);
	certificate_objects(s, out);
	json_array_append_new(out, configmap_object(s));
	json_array_append_new(out, service_object(s));
	json_array_append_new(out, deployment_object(s));
	json_array_append_new(out, pdb_object(s));
	json_array_append_new(out, webhook_configuration(s));
	return out;
}

/* ---- checking what the user gave ------------------------------------------------------------ */

/* A DNS-1123 label: what a namespace name must be. */
static bool dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* What a ConfigMap key may be. */
static bool configmap_key(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    strncmp(s, "..", 2) == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

/* Reads and validates one recipe the way the server will load it from the ConfigMap, where it
 * is alone: a recipe that includes another file cannot work there. */
static int load_recipe(const char *path, const json_t *config, struct recipe_file *ret,
		       struct kilt_error *err)
{
	struct recipe_file rf = { 0 };
	int r;
	const char *text = NULL;
	if (path) {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (!configmap_key(base))
			return kilt_error_set(
				err, -EINVAL, path, 0, 0,
				"the file name '%s' cannot be a ConfigMap key (letters, "
				"digits, '-', '_' and '.' only): rename the file",
				base);
		r = fileio_read(path, MAX_RECIPE_BYTES, &rf.text, &rf.len, err);
		if (r < 0)
			return r;
		rf.key = xstrdup(base);
		text = rf.text;
	} else {
		text = builtin_recipe("falco", &rf.len);
		if (!text)
			return kilt_error_setf(
				err, -ENOENT,
				"this kilt was built without the built-in recipe; give "
				"one with --recipe");
		rf.text = xmalloc(rf.len + 1);
		memcpy(rf.text, text, rf.len);
		rf.text[rf.len] = '\0';
		rf.key = xstrdup("falco.kilt.conf");
	}
	const char *name = path ? path : "falco (built in)";
	if (kilt_utf8_valid_prefix((const unsigned char *)rf.text, rf.len) != rf.len ||
	    memchr(rf.text, '\0', rf.len)) {
		r = kilt_error_set(err, -EILSEQ, name, 0, 0,
				   "a recipe in a ConfigMap must be UTF-8 text without NUL bytes");
		goto fail;
	}
	struct kilt_recipe *recipe = NULL;
	r = kilt_recipe_load_string(rf.text, rf.len, name, &recipe, err);
	if (r == -EPERM) {
		kilt_error_prefix(err, "the webhook reads this recipe alone from a ConfigMap, "
				       "where it can include no other file");
		goto fail;
	}
	if (r < 0)
		goto fail;
	r = kilt_recipe_check_config(recipe, config, err);
	kilt_recipe_free(recipe);
	if (r < 0)
		goto fail;
	*ret = rf;
	return 0;
fail:
	free(rf.text);
	free(rf.key);
	return r;
}

static char *recipes_hash(const struct settings *s)
{
	/* Also computed by deploy/helm/kilt/templates/_helpers.tpl: keep the two alike. */
	struct kbuf b;
	kbuf_init(&b, (size_t)-1);
	for (size_t i = 0; i < s->n_recipes; i++) {
		kbuf_printf(&b, "%s\n%zu\n", s->recipes[i].key, s->recipes[i].len);
		kbuf_add(&b, s->recipes[i].text, s->recipes[i].len);
	}
	char *hex = webhook_sha256_hex(b.data ? b.data : "", b.len);
	kbuf_done(&b);
	return hex;
}

static void settings_done(struct settings *s)
{
	for (size_t i = 0; i < s->n_recipes; i++) {
		free(s->recipes[i].key);
		free(s->recipes[i].text);
	}
	free(s->recipes);
	free(s->recipes_hash);
	webhook_certs_done(&s->certs);
}

static void help(FILE *out)
{
	fputs("Usage: kilt webhook manifests --image REF [options]\n"
	      "\n"
	      "Print the Kubernetes objects that install the admission webhook, for kubectl "
	      "apply:\n"
	      "Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding (namespaces\n"
	      "get/list/watch, secrets and serviceaccounts get), the serving certificate (a\n"
	      "Secret with a new CA and a certificate it signed, or cert-manager objects),\n"
	      "ConfigMap with the recipes, Service, Deployment, PodDisruptionBudget and the\n"
	      "MutatingWebhookConfiguration. The output holds a private key unless --cert-manager\n"
	      "is given. Nothing is printed when a recipe or an option is wrong.\n"
	      "\n"
	      "Options:\n"
	      "      --image REF            the image that runs kilt (required;\n"
	      "                             deploy/images/build-webhook-image.sh builds one)\n"
	      "  -n, --namespace NS         namespace to install into (default kilt-system); it\n"
	      "                             and kube-system are never sent to the webhook\n"
	      "  -r, --recipe FILE          recipe to inject (repeatable; default: the built-in\n"
	      "                             Falco recipe); validated, then put in the ConfigMap\n"
	      "  -s, --set KEY=VALUE        recipe parameter, visible as config.KEY (repeatable)\n"
	      "  -m, --mode MODE            opt-out (default: every pod unless it or its\n"
	      "                             namespace says kilt.dev/inject: disabled) or opt-in\n"
	      "                             (only pods whose namespace or themselves say enabled)\n"
	      "      --cert-manager         let cert-manager issue the certificate and fill the\n"
	      "                             caBundle (Issuers, Certificates, inject-ca-from)\n"
	      "      --cert-days N          validity of the serving certificate made here\n"
	      "                             (default 730; its CA: 3650)\n"
	      "      --replicas N           webhook pods (default 2)\n"
	      "      --failure-policy P     Ignore (default: pods are admitted while the webhook\n"
	      "                             is down) or Fail\n"
	      "  -o, --output FORMAT        yaml (default) or json\n"
	      "  -h, --help                 show this help\n"
	      "\n"
	      "Exit status: 0 printed, 1 a recipe or the certificates could not be made, 2 usage\n"
	      "error.\n",
	      out);
}

static int parse_count(const char *opt, const char *arg, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		return cli_usage_error("webhook manifests",
				       "%s: expected a number from %u to %u, got '%s'", opt, min,
				       max, arg);
	*ret = (unsigned)v;
	return 0;
}

int cmd_webhook_manifests(int argc, char **argv)
{
	enum {
		OPT_IMAGE = 256,
		OPT_CERT_MANAGER,
		OPT_CERT_DAYS,
		OPT_REPLICAS,
		OPT_FAILURE_POLICY,
	};
	static const struct option lopts[] = {
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "namespace", required_argument, NULL, 'n' },
		{ "recipe", required_argument, NULL, 'r' },
		{ "set", required_argument, NULL, 's' },
		{ "cert-manager", no_argument, NULL, OPT_CERT_MANAGER },
		{ "cert-days", required_argument, NULL, OPT_CERT_DAYS },
		{ "replicas", required_argument, NULL, OPT_REPLICAS },
		{ "failure-policy", required_argument, NULL, OPT_FAILURE_POLICY },
		{ "mode", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct cli_command_options me = { .name = "webhook manifests", .opts = lopts };
	const char *cmd = "webhook manifests";
	struct settings s = {
		.ns = "kilt-system",
		.replicas = 2,
		.failure_policy = "Ignore",
		.cert_days = DEFAULT_CERT_DAYS,
	};
	enum cli_output format = CLI_OUTPUT_YAML;
	_cleanup_free_ const char **paths = xcalloc((size_t)argc + 1, sizeof(*paths));
	size_t n_paths = 0;
	_cleanup_free_ const char **sets = xcalloc((size_t)argc + 1, sizeof(*sets));
	_cleanup_json_ json_t *config = json_object();
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:r:s:m:o:h", lopts, NULL)) != -1) {
		switch (c) {
		case OPT_IMAGE:
			s.image = optarg;
			break;
		case 'n':
			s.ns = optarg;
			break;
		case 'r':
			paths[n_paths++] = optarg;
			break;
		case 's': {
			int r = cli_add_setting(config, optarg);
			if (r == -EILSEQ)
				return cli_usage_error(cmd, "--set %s: not valid UTF-8", optarg);
			if (r < 0)
				return cli_usage_error(cmd, "--set %s: expected KEY=VALUE", optarg);
			sets[s.n_sets++] = optarg;
			break;
		}
		case OPT_CERT_MANAGER:
			s.cert_manager = true;
			break;
		case OPT_CERT_DAYS:
			if (parse_count("--cert-days", optarg, 1, 36500, &s.cert_days))
				return EXIT_USAGE;
			break;
		case OPT_REPLICAS:
			if (parse_count("--replicas", optarg, 1, 100, &s.replicas))
				return EXIT_USAGE;
			break;
		case OPT_FAILURE_POLICY:
			if (strcmp(optarg, "Ignore") != 0 && strcmp(optarg, "Fail") != 0)
				return cli_usage_error(
					cmd, "--failure-policy: expected Ignore or Fail, got '%s'",
					optarg);
			s.failure_policy = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "opt-in") == 0)
				s.mode = optarg;
			else if (strcmp(optarg, "opt-out") != 0)
				return cli_usage_error(
					cmd, "--mode: expected opt-in or opt-out, got '%s'",
					optarg);
			break;
		case 'o':
			if (cli_output_parse(cmd, optarg,
					     CLI_OUTPUT_ALLOW(CLI_OUTPUT_YAML) |
						     CLI_OUTPUT_ALLOW(CLI_OUTPUT_JSON),
					     &format))
				return EXIT_USAGE;
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
	if (!s.image)
		return cli_usage_error(cmd, "--image is required: the image that runs kilt "
					    "(deploy/images/build-webhook-image.sh builds it)");
	struct kilt_error err = { 0 };
	struct kilt_imageref ref = { 0 };
	if (kilt_imageref_parse(s.image, &ref, &err) < 0) {
		char buf[700];
		return cli_usage_error(cmd, "--image: %s",
				       kilt_error_format(&err, buf, sizeof(buf)));
	}
	kilt_imageref_done(&ref);
	if (!dns_label(s.ns))
		return cli_usage_error(
			cmd,
			"--namespace '%s': expected a DNS label (lower-case letters, "
			"digits and '-', at most 63)",
			s.ns);
	if (strcmp(s.ns, "default") == 0 || strncmp(s.ns, "kube-", 5) == 0)
		return cli_usage_error(
			cmd,
			"--namespace %s: the webhook's namespace is never injected, so "
			"it needs one of its own (such as kilt-system)",
			s.ns);
	s.sets = sets;

	int r = 0;
	s.recipes = xcalloc(n_paths ? n_paths : 1, sizeof(*s.recipes));
	for (size_t i = 0; i < (n_paths ? n_paths : 1) && r == 0; i++) {
		r = load_recipe(n_paths ? paths[i] : NULL, config, &s.recipes[i], &err);
		if (r < 0)
			break;
		s.n_recipes++;
		for (size_t j = 0; j < i; j++)
			if (strcmp(s.recipes[j].key, s.recipes[i].key) == 0)
				r = kilt_error_set(&err, -EEXIST, paths[i], 0, 0,
						   "another recipe has the file name '%s' (%s): "
						   "each is a key of the ConfigMap",
						   s.recipes[i].key, paths[j]);
	}
	size_t total = 0;
	for (size_t i = 0; i < s.n_recipes; i++)
		total += s.recipes[i].len + strlen(s.recipes[i].key);
	if (r == 0 && total > MAX_CONFIGMAP_BYTES)
		r = kilt_error_setf(&err, -E2BIG,
				    "the recipes take %zu bytes; a ConfigMap holds at most %u",
				    total, MAX_CONFIGMAP_BYTES);
	if (r == 0) {
		s.recipes_hash = recipes_hash(&s);
		if (!s.cert_manager) {
			char *names[4];
			dns_names(s.ns, names);
			r = webhook_certs_make(NAME "-ca", CA_DAYS, (const char *const *)names,
					       s.cert_days, &s.certs, &err);
			for (size_t i = 0; names[i]; i++)
				free(names[i]);
		}
	}
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (r == 0) {
		_cleanup_json_ json_t *objects = all_objects(&s);
		if (format == CLI_OUTPUT_JSON)
			r = kilt_yaml_dump_json(objects, KILT_YAML_MULTI, &text, &len, &err);
		else
			r = kilt_yaml_dump(objects, KILT_YAML_MULTI, &text, &len, &err);
	}
	settings_done(&s);
	if (r < 0) {
		cli_report(&err);
		return EXIT_ERROR;
	}
	if (format == CLI_OUTPUT_YAML)
		fputs("# The kilt admission webhook (kilt webhook manifests, kilt " KILT_VERSION
		      ")\n",
		      stdout);
	if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
		fprintf(stderr, "kilt: cannot write the manifests: %s\n", strerror(errno));
		return EXIT_ERROR;
	}
	if (!s.cert_manager)
		OPENSSL_cleanse(text, len); /* it holds the private key */
	return EXIT_OK;
}
