/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the recipe module on the shipped Falco recipe: load time, evaluation per container
 * (the cached-template way and the full-resolution way), against baselines measured in the same
 * run: a jansson deep copy of the resulting plan and its JSON encoding. */
#include <stdio.h>
#include <time.h>

#include "internal.h"
#include "kilt.h"
#include "recipe-private.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define ROUNDS 5

/* Best of ROUNDS: the machine may be shared, the minimum is the least disturbed figure. */
#define BEST_NS(result, count, body)                                                               \
	do {                                                                                       \
		result = 1e300;                                                                    \
		for (int round_ = 0; round_ < ROUNDS; round_++) {                                  \
			double start_ = now_ns();                                                  \
			for (unsigned i = 0; i < (count); i++) {                                   \
				body;                                                              \
			}                                                                          \
			double per_ = (now_ns() - start_) / (count);                               \
			if (per_ < result)                                                         \
				result = per_;                                                     \
		}                                                                                  \
	} while (0)

static void die(const struct kilt_error *err)
{
	char buf[1024];
	fprintf(stderr, "bench_recipe: %s\n", kilt_error_format(err, buf, sizeof(buf)));
	exit(1);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : KILT_SOURCE_DIR "/deploy/recipes/falco.kilt.conf";
	unsigned iters = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
	if (iters == 0)
		iters = 1;
	struct kilt_error err = { 0 };

	/* Load (parse + hash + validation), many times. */
	unsigned loads = iters / 100 ? iters / 100 : 1;
	double load_ns;
	BEST_NS(load_ns, loads, {
		struct kilt_recipe *r = NULL;
		if (kilt_recipe_load_file(path, &r, &err) < 0)
			die(&err);
		kilt_recipe_free(r);
	});

	struct kilt_recipe *recipe = NULL;
	if (kilt_recipe_load_file(path, &recipe, &err) < 0)
		die(&err);
	json_t *ep = json_pack("[s]", "/docker-entrypoint.sh");
	json_t *cmd = json_pack("[sss]", "nginx", "-g", "daemon off;");
	json_t *env = json_pack("{ssss}", "NGINX_VERSION", "1.27.0", "PKG_RELEASE", "1~bookworm");
	json_t *config = json_pack("{ss}", "agent_image", "registry.example.com/kilt/agent:0.32.2");
	struct kilt_target t = {
		.image = "docker.io/library/nginx:1.27",
		.name = "web",
		.group = "shop",
		.entrypoint = ep,
		.command = cmd,
		.environment = env,
		.platform = "linux/amd64",
	};

	/* Warm up (the first evaluation compiles the template). */
	json_t *plan = NULL;
	if (kilt_recipe_evaluate(recipe, &t, config, &plan, &err) < 0)
		die(&err);

	double eval_ns;
	BEST_NS(eval_ns, iters, {
		json_t *p = NULL;
		if (kilt_recipe_evaluate(recipe, &t, config, &p, &err) < 0)
			die(&err);
		json_decref(p);
	});

	unsigned full_iters = iters / 10 ? iters / 10 : 1;
	double full_ns;
	BEST_NS(full_ns, full_iters, {
		json_t *p = NULL;
		if (kilt_recipe_evaluate_full(recipe, &t, config, &p, &err) < 0)
			die(&err);
		json_decref(p);
	});

	double copy_ns;
	BEST_NS(copy_ns, iters, json_decref(json_deep_copy(plan)));

	double dump_ns;
	BEST_NS(dump_ns, iters, free(json_dumps(plan, JSON_COMPACT)));

	printf("recipe: %s (best of %d rounds)\n", path, ROUNDS);
	printf("load (parse + hash + validate):      %9.1f us\n", load_ns / 1000);
	printf("evaluate (template, per container):  %9.3f us   (target <= 5 us)\n",
	       eval_ns / 1000);
	printf("evaluate (full resolution):          %9.3f us\n", full_ns / 1000);
	printf("baseline json_deep_copy(plan):       %9.3f us\n", copy_ns / 1000);
	printf("baseline json_dumps(plan):           %9.3f us\n", dump_ns / 1000);
	printf("ratio evaluate / deep copy:          %9.2f\n", eval_ns / copy_ns);
	printf("ratio evaluate / dumps:              %9.2f\n", eval_ns / dump_ns);
	printf("ratio full / template:               %9.2f\n", full_ns / eval_ns);

	json_decref(plan);
	json_decref(ep);
	json_decref(cmd);
	json_decref(env);
	json_decref(config);
	kilt_recipe_free(recipe);
	return 0;
}
