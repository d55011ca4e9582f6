/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the Kubernetes engine on what the admission webhook sees, two workloads:
 *   deployment  a Deployment of about 20 KB with managedFields (the golden case
 *               deployment-managed-fields, its managedFields, env and containers repeated to
 *               size), the recipe below;
 *   reviews     the pods of bench/webhook's AdmissionReviews (reviews.py: 1, 2 and 3 containers
 *               of 50 env entries, probes, resources, the kube-api-access volume), without their
 *               managedFields as the webhook's decoder leaves them out, with bench/webhook's
 *               recipe (tests/k8s-inject/recipes/falco.conf).
 * Per object, in the same run (CPU time of the thread, the best of 5 interleaved batches):
 *   floor   jansson load + compact dump of the object (what any webhook pays to read and answer)
 *   engine  load + kilt_k8s_mutate_owned (the JSON Patch, the patched object, the report) + dump of
 *           the patch
 * and the JSON Patch's size against the object's. Goal: engine <= 2x the floor.
 * Usage: bench_k8s [ROUNDS [deployment|reviews]]   (both workloads when none is named) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kilt.h"

/* CPU time of this thread: on a shared machine, time spent waiting for a CPU is not the
 * engine's. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char RECIPE[] =
	"platforms: [ linux/amd64 ]\n"
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"-t\", \"1\", /kilt/falco/bin/pdig, \"--\" ] "
	"${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-falco, image: \"registry.example.com/kilt/falco-agent:0.32.2\", "
	"volumes: [ /kilt ] } ]\n"
	"  environment: { FALCO_METADATA: \"image=\"${original.image}\",name=\"${original.name} }\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"}\n";

/* The golden Deployment grown to about `target` bytes of compact JSON: more managedFields
 * entries (as many managers as a busy object has), env entries and containers. */
static char *make_object(size_t target)
{
	json_t *doc = NULL;
	struct kilt_error err = { 0 };
	if (kilt_yaml_load_file(KILT_SOURCE_DIR
				"/tests/golden/k8s/deployment-managed-fields/input.yaml",
				0, NULL, &doc, &err) < 0) {
		fprintf(stderr, "bench_k8s: %s\n", err.msg);
		exit(1);
	}
	json_t *mf = json_object_get(json_object_get(doc, "metadata"), "managedFields");
	json_t *spec =
		json_object_get(json_object_get(json_object_get(doc, "spec"), "template"), "spec");
	json_t *containers = json_object_get(spec, "containers");
	json_t *proto = json_deep_copy(json_array_get(containers, 0));
	json_t *env = json_array();
	for (int i = 0; i < 12; i++) {
		char n[32], v[64];
		snprintf(n, sizeof(n), "SETTING_%d", i);
		snprintf(v, sizeof(v), "value-%d-of-the-configuration", i);
		json_array_append_new(env, json_pack("{ssss}", "name", n, "value", v));
	}
	json_object_set_new(proto, "env", env);
	json_array_set(containers, 0, proto);
	json_t *entry = json_deep_copy(json_array_get(mf, 0));
	for (int round = 0;; round++) {
		char *text = json_dumps(doc, JSON_COMPACT);
		size_t len = strlen(text);
		free(text);
		if (len >= target || round > 200)
			break;
		if (round % 3 == 2 && json_array_size(containers) < 4) {
			json_t *c = json_deep_copy(proto);
			char n[32];
			snprintf(n, sizeof(n), "worker-%zu", json_array_size(containers));
			json_object_set_new(c, "name", json_string(n));
			json_array_append_new(containers, c);
		} else {
			json_t *e = json_deep_copy(entry);
			char m[48];
			snprintf(m, sizeof(m), "controller-%d", round);
			json_object_set_new(e, "manager", json_string(m));
			json_array_append_new(mf, e);
		}
	}
	json_decref(proto);
	json_decref(entry);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

/* The pod of bench/webhook/reviews.py's review `index` with `containers` containers of `envs`
 * env entries (and POD_IP from the downward API), less metadata.managedFields. */
static char *make_review_pod(int index, int containers, int envs)
{
	char app[32], rs[48], uid[64];
	snprintf(app, sizeof(app), "shop-%d", index);
	snprintf(rs, sizeof(rs), "%s-7d9f8c6b5d", app);
	snprintf(uid, sizeof(uid), "0b6c5a7e-2f4d-4c1e-9a3b-%012d", index);
	json_t *cs = json_array();
	for (int k = 0; k < containers; k++) {
		json_t *env = json_array();
		for (int i = 0; i < envs; i++) {
			char n[32], v[64];
			snprintf(n, sizeof(n), "SETTING_%d_%d", k, i);
			snprintf(v, sizeof(v), "value-%d-xxxxxxxxxxxxxxxxxxxxxxxx", i);
			json_array_append_new(env, json_pack("{ssss}", "name", n, "value", v));
		}
		json_array_append_new(env, json_pack("{sss{s{ssss}}}", "name", "POD_IP",
						     "valueFrom", "fieldRef", "apiVersion", "v1",
						     "fieldPath", "status.podIP"));
		char name[32], image[96];
		snprintf(name, sizeof(name), k ? "sidecar-%d" : "app", k);
		snprintf(image, sizeof(image), "registry.example.com/shop/app-%d:1.%d.0", k, index);
		json_t *c = json_pack("{sssss[sss]s[{sssiss}]so}", "name", name, "image", image,
				      "command", "/app", "--config", "/etc/app/config.yaml",
				      "ports", "name", "http", "containerPort", 8080, "protocol",
				      "TCP", "env", env);
		json_object_set_new(c, "resources",
				    json_pack("{s{ssss}s{ssss}}", "limits", "cpu", "500m", "memory",
					      "256Mi", "requests", "cpu", "100m", "memory",
					      "128Mi"));
		json_object_set_new(
			c, "volumeMounts",
			json_pack("[{sssssb}{sssssb}]", "name", "config", "mountPath", "/etc/app",
				  "readOnly", 1, "name", "kube-api-access-x7k2p", "mountPath",
				  "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly", 1));
		json_object_set_new(c, "readinessProbe",
				    json_pack("{s{sssiss}sisisisi}", "httpGet", "path", "/ready",
					      "port", 8080, "scheme", "HTTP", "timeoutSeconds", 1,
					      "periodSeconds", 10, "successThreshold", 1,
					      "failureThreshold", 3));
		json_object_set_new(c, "terminationMessagePath",
				    json_string("/dev/termination-log"));
		json_object_set_new(c, "terminationMessagePolicy", json_string("File"));
		json_object_set_new(c, "imagePullPolicy", json_string("IfNotPresent"));
		json_array_append_new(cs, c);
	}
	static const char SPEC[] =
		"{\"volumes\":[{\"name\":\"config\",\"configMap\":{\"name\":\"app-config\","
		"\"defaultMode\":420}},{\"name\":\"kube-api-access-x7k2p\",\"projected\":{"
		"\"sources\":[{\"serviceAccountToken\":{\"expirationSeconds\":3607,\"path\":"
		"\"token\"}},{\"configMap\":{\"name\":\"kube-root-ca.crt\",\"items\":[{\"key\":"
		"\"ca.crt\",\"path\":\"ca.crt\"}]}},{\"downwardAPI\":{\"items\":[{\"path\":"
		"\"namespace\",\"fieldRef\":{\"apiVersion\":\"v1\",\"fieldPath\":"
		"\"metadata.namespace\"}}]}}],\"defaultMode\":420}}],\"containers\":[],"
		"\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":"
		"\"ClusterFirst\",\"serviceAccountName\":\"default\",\"serviceAccount\":"
		"\"default\","
		"\"securityContext\":{},\"schedulerName\":\"default-scheduler\",\"tolerations\":[{"
		"\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"effect\":"
		"\"NoExecute\",\"tolerationSeconds\":300},{\"key\":\"node.kubernetes.io/"
		"unreachable\",\"operator\":\"Exists\",\"effect\":\"NoExecute\","
		"\"tolerationSeconds\":300}],\"priority\":0,\"enableServiceLinks\":true,"
		"\"preemptionPolicy\":\"PreemptLowerPriority\"}";
	json_t *spec = json_loads(SPEC, 0, NULL);
	char cfg[48];
	snprintf(cfg, sizeof(cfg), "%s-config", app);
	json_object_set_new(
		json_object_get(json_array_get(json_object_get(spec, "volumes"), 0), "configMap"),
		"name", json_string(cfg));
	json_object_set_new(spec, "containers", cs);
	char gen[64];
	snprintf(gen, sizeof(gen), "%s-", rs);
	json_t *pod = json_pack("{sssss{sssss{ssssss}s{ssssss}s[{sssssssssbsb}]}sos{}}", "kind",
				"Pod", "apiVersion", "v1", "metadata", "generateName", gen,
				"namespace", "shop", "labels", "app.kubernetes.io/name", app,
				"app.kubernetes.io/part-of", "shop", "pod-template-hash",
				"7d9f8c6b5d", "annotations", "kubectl.kubernetes.io/restartedAt",
				"2026-12-01T10:00:00Z", "prometheus.io/scrape", "true",
				"prometheus.io/port", "8080", "ownerReferences", "apiVersion",
				"apps/v1", "kind", "ReplicaSet", "name", rs, "uid", uid,
				"controller", 1, "blockOwnerDeletion", 1, "spec", spec, "status");
	if (!pod) {
		fprintf(stderr, "bench_k8s: the review pod could not be built\n");
		exit(1);
	}
	char *text = json_dumps(pod, JSON_COMPACT);
	json_decref(pod);
	return text;
}

struct workload {
	const char *name;
	const char *what;
	char *objects[3]; /* owned, compact JSON */
	size_t n;
	struct kilt_recipe *recipe; /* owned */
};

static struct kilt_recipe *load_recipe(const char *text, const char *path)
{
	struct kilt_recipe *recipe = NULL;
	struct kilt_error err = { 0 };
	int r = path ? kilt_recipe_load_file(path, &recipe, &err)
		     : kilt_recipe_load_string(text, strlen(text), "falco", &recipe, &err);
	if (r < 0) {
		fprintf(stderr, "bench_k8s: recipe: %s\n", err.msg);
		exit(1);
	}
	return recipe;
}

/* One workload, floor and engine interleaved in batches, the best batch of each. */
static void run(struct workload *w, long rounds)
{
	struct kilt_k8s_recipe kr = { .name = "falco", .recipe = w->recipe };
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = &kr;
	o.n_recipes = 1;
	struct kilt_k8s_namespace ns = { .name = "shop" };
	struct kilt_error err = { 0 };
	size_t lens[3], total = 0, patch_total = 0;
	for (size_t k = 0; k < w->n; k++) {
		lens[k] = strlen(w->objects[k]);
		total += lens[k];
	}
	double best_floor = 1e9, best_engine = 1e9;
	/* interleaved batches, best of each: the same machine state for both */
	for (int batch = 0; batch < 5; batch++) {
		double t0 = now();
		for (long i = 0; i < rounds; i++) {
			size_t k = (size_t)i % w->n;
			json_t *d = json_loadb(w->objects[k], lens[k], 0, NULL);
			char *out = json_dumps(d, JSON_COMPACT);
			free(out);
			json_decref(d);
		}
		double t1 = now();
		patch_total = 0;
		for (long i = 0; i < rounds; i++) {
			size_t k = (size_t)i % w->n;
			json_t *d = json_loadb(w->objects[k], lens[k], 0, NULL);
			struct kilt_k8s_result res;
			kilt_k8s_result_init(&res);
			/* the webhook decoded the review itself: the pod is handed over */
			if (kilt_k8s_mutate_owned(d, &ns, &o, &res, &err) < 0) {
				fprintf(stderr, "bench_k8s: %s\n", err.msg);
				exit(1);
			}
			char *out = json_dumps(res.patch, JSON_COMPACT);
			if (i < (long)w->n)
				patch_total += strlen(out);
			if (res.report.n_patched == 0) {
				fprintf(stderr, "bench_k8s: nothing was injected\n");
				exit(1);
			}
			free(out);
			kilt_k8s_result_done(&res);
		}
		double t2 = now();
		if ((t1 - t0) / (double)rounds < best_floor)
			best_floor = (t1 - t0) / (double)rounds;
		if ((t2 - t1) / (double)rounds < best_engine)
			best_engine = (t2 - t1) / (double)rounds;
	}
	printf("%s: %s\n", w->name, w->what);
	printf("  objects: %zu bytes on average (compact JSON), %ld rounds x 5 batches, best "
	       "batch, CPU time\n",
	       total / w->n, rounds);
	printf("  floor  (load + dump):                    %8.1f us\n", best_floor * 1e6);
	printf("  engine (load + mutate + dump the patch): %8.1f us  = %.2fx the floor (goal <= "
	       "2x)\n",
	       best_engine * 1e6, best_engine / best_floor);
	printf("  JSON Patch: %zu bytes on average = %.2fx the object\n", patch_total / w->n,
	       (double)patch_total / (double)total);
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 3000;
	if (rounds <= 0)
		rounds = 3000;
	const char *only = argc > 2 ? argv[2] : NULL;
	struct workload ws[2] = {
		{ .name = "deployment",
		  .what = "a Deployment with managedFields, about 20 KB",
		  .objects = { make_object(20 * 1024) },
		  .n = 1,
		  .recipe = load_recipe(RECIPE, NULL) },
		{ .name = "reviews",
		  .what = "bench/webhook's review pods (1, 2, 3 containers of 50 env entries, "
			  "no managedFields)",
		  .objects = { make_review_pod(0, 1, 50), make_review_pod(1, 2, 50),
			       make_review_pod(2, 3, 52) },
		  .n = 3,
		  .recipe = load_recipe(NULL,
					KILT_SOURCE_DIR "/tests/k8s-inject/recipes/falco.conf") },
	};
	int ran = 0;
	for (size_t i = 0; i < ARRAY_SIZE(ws); i++) {
		if (!only || strcmp(only, ws[i].name) == 0) {
			run(&ws[i], rounds);
			ran++;
		}
		for (size_t k = 0; k < ws[i].n; k++)
			free(ws[i].objects[k]);
		kilt_recipe_free(ws[i].recipe);
	}
	if (!ran) {
		fprintf(stderr, "bench_k8s: no workload named %s (deployment, reviews)\n", only);
		return 2;
	}
	return 0;
}
