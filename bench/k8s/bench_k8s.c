/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the Kubernetes engine on what the admission webhook sees: a Deployment of about
 * 20 KB with managedFields (the golden case deployment-managed-fields, its managedFields, env and
 * containers repeated to size). Per object, in the same run:
 *   floor   jansson load + compact dump of the object (what any webhook pays to read and answer)
 *   engine  load + kilt_k8s_mutate_owned (the JSON Patch, the patched object, the report) + dump of
 *           the patch
 * and the JSON Patch's size against the object's. Goal: engine <= 2x the floor.
 * Usage: bench_k8s [ROUNDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kilt.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
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

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 3000;
	if (rounds <= 0)
		rounds = 3000;
	char *text = make_object(20 * 1024);
	size_t len = strlen(text);
	struct kilt_recipe *recipe = NULL;
	struct kilt_error err = { 0 };
	if (kilt_recipe_load_string(RECIPE, sizeof(RECIPE) - 1, "falco", &recipe, &err) < 0) {
		fprintf(stderr, "bench_k8s: recipe: %s\n", err.msg);
		return 1;
	}
	struct kilt_k8s_recipe kr = { .name = "falco", .recipe = recipe };
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = &kr;
	o.n_recipes = 1;
	struct kilt_k8s_namespace ns = { .name = "shop" };

	double best_floor = 1e9, best_engine = 1e9;
	size_t patch_len = 0;
	/* interleaved batches, best of each: the same machine state for both */
	for (int batch = 0; batch < 5; batch++) {
		double t0 = now();
		for (long i = 0; i < rounds; i++) {
			json_t *d = json_loadb(text, len, 0, NULL);
			char *out = json_dumps(d, JSON_COMPACT);
			free(out);
			json_decref(d);
		}
		double t1 = now();
		for (long i = 0; i < rounds; i++) {
			json_t *d = json_loadb(text, len, 0, NULL);
			struct kilt_k8s_result res;
			kilt_k8s_result_init(&res);
			/* the webhook decoded the review itself: the pod is handed over */
			if (kilt_k8s_mutate_owned(d, &ns, &o, &res, &err) < 0) {
				fprintf(stderr, "bench_k8s: %s\n", err.msg);
				return 1;
			}
			char *out = json_dumps(res.patch, JSON_COMPACT);
			patch_len = strlen(out);
			if (res.report.n_patched == 0) {
				fprintf(stderr, "bench_k8s: nothing was injected\n");
				return 1;
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
	printf("object: %zu bytes (compact JSON), %ld rounds x 5 batches, best batch\n", len,
	       rounds);
	printf("floor  (load + dump):                    %8.1f us\n", best_floor * 1e6);
	printf("engine (load + mutate + dump the patch): %8.1f us  = %.2fx the floor (goal <= "
	       "2x)\n",
	       best_engine * 1e6, best_engine / best_floor);
	printf("JSON Patch: %zu bytes = %.2fx the object\n", patch_len,
	       (double)patch_len / (double)len);
	kilt_recipe_free(recipe);
	free(text);
	return 0;
}
