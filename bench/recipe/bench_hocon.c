/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the HOCON module: parse+resolve of a ~1 MB document against jansson's json_loadb
 * of the same text (the target is a ratio of at most 3), and the per-container cost of resolving
 * a small recipe-like document with a different context each time (target: 5 µs).
 * Times are CPU time of the process (stable on a busy machine), best of several repetitions.
 * Usage: bench_hocon [size-in-KiB] — exits 1 when the ratio target is missed by far (> 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kilt.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A JSON document (so also HOCON) of about `target` bytes: nested objects, arrays, strings,
 * integers, reals, booleans and null. */
static char *make_doc(size_t target, size_t *ret_len)
{
	struct kbuf b;
	kbuf_init(&b, SIZE_MAX);
	kbuf_adds(&b, "{\n  \"services\": {\n");
	unsigned i = 0;
	while (b.len < target) {
		if (i)
			kbuf_adds(&b, ",\n");
		kbuf_printf(&b,
			    "    \"svc%u\": {\n"
			    "      \"name\": \"service-%u\", \"id\": %u, \"weight\": %u.25,\n"
			    "      \"enabled\": %s, \"owner\": null,\n"
			    "      \"image\": \"registry.example.com/team/app-%u:1.%u.%u\",\n"
			    "      \"ports\": [%u, %u, %u],\n"
			    "      \"labels\": {\"tier\": \"backend\", \"zone\": \"zone-%u\", "
			    "\"escaped\": \"line\\nbreak \\\"quoted\\\"\"},\n"
			    "      \"env\": [{\"name\": \"A%u\", \"value\": \"x\"}, "
			    "{\"name\": \"B%u\", \"value\": \"y\"}]\n"
			    "    }",
			    i, i, i, i % 100, i % 2 ? "true" : "false", i, i % 7, i % 13,
			    8000 + i % 100, 9000 + i % 50, 443, i % 3, i, i);
		i++;
	}
	kbuf_adds(&b, "\n  },\n  \"list\": [");
	for (unsigned k = 0; k < 200; k++)
		kbuf_printf(&b, "%s%u", k ? ", " : "", k * 31);
	kbuf_adds(&b, "]\n}\n");
	*ret_len = b.len;
	return kbuf_steal(&b);
}

static const char recipe[] =
	"# a recipe like the ones kilt evaluates per container\n"
	"deploy {\n"
	"  entrypoint: [ /falco/pdig ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [\n"
	"    { image: \"falcosecurity/falco:0.32.2\", volume: /falco,\n"
	"      entrypoint: /falco/waitforever }\n"
	"    { image: ${config.helper_image}, volume: /helper }\n"
	"  ]\n"
	"  environment: {\n"
	"    FALCO_METADATA: \"image=\"${original.image}\",name=\"${original.name}\n"
	"    FALCO_GROUP: ${original.group}\n"
	"    HELPER_MODE: ${?config.mode}\n"
	"    __CW_LOG_GROUP: ${?original.metadata.log_group}\n"
	"  }\n"
	"  capabilities += SYS_PTRACE\n"
	"  pid_mode: task\n"
	"}\n"
	"patch {\n"
	"  upload: [\n"
	"    { url: \"https://example.com/falco\", as: /falco/falco, mode: 493 }\n"
	"    { file: local/path/to/pdig, as: /falco/pdig }\n"
	"    { payload: \"base64payload\", as: /falco/falco.cfg }\n"
	"  ]\n"
	"  background_exec: [ /falco/pdig -p 1 ]\n"
	"}\n"
	"platforms: [ linux/amd64 ]\n"
	"settings {\n"
	"  falco_version: \"0.32.2\"\n"
	"  pdig_version: \"0.1.0\"\n"
	"  rules: [ /falco/rules/falco_rules.yaml, /falco/rules/local.yaml ]\n"
	"  log_level: info\n"
	"  grpc { enabled: false, port: 5060 }\n"
	"  tags: ${original.metadata}\n"
	"  label: ${original.name}-${original.group}\n"
	"  image_ref: ${?config.image_override}\n"
	"}\n";

int main(int argc, char **argv)
{
	size_t kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	size_t len;
	_cleanup_free_ char *doc = make_doc(kib * 1024, &len);
	const int reps = 9;
	double best_j = 1e9, best_h = 1e9, best_p = 1e9;
	for (int r = 0; r < reps; r++) {
		json_error_t jerr;
		double t0 = now();
		json_t *j = json_loadb(doc, len, 0, &jerr);
		double t1 = now();
		if (!j) {
			fprintf(stderr, "bench_hocon: jansson: %s\n", jerr.text);
			return 1;
		}
		struct kilt_error err = { 0 };
		struct kilt_hocon *h = NULL;
		json_t *out = NULL;
		double t2 = now();
		if (kilt_hocon_parse_string(doc, len, "bench.conf", NULL, &h, &err) < 0) {
			fprintf(stderr, "bench_hocon: parse: %s\n", err.msg);
			return 1;
		}
		double t3 = now();
		if (kilt_hocon_resolve(h, NULL, NULL, &out, &err) < 0) {
			fprintf(stderr, "bench_hocon: resolve: %s\n", err.msg);
			return 1;
		}
		double t4 = now();
		if (r == 0 && !json_equal(j, out)) {
			fprintf(stderr, "bench_hocon: HOCON and JSON results differ\n");
			return 1;
		}
		json_decref(j);
		json_decref(out);
		kilt_hocon_free(h);
		if (t1 - t0 < best_j)
			best_j = t1 - t0;
		if (t4 - t2 < best_h)
			best_h = t4 - t2;
		if (t3 - t2 < best_p)
			best_p = t3 - t2;
	}
	double ratio = best_h / best_j;
	printf("document: %zu bytes, best of %d\n", len, reps);
	printf("jansson json_loadb:         %8.2f ms\n", best_j * 1e3);
	printf("kilt hocon parse+resolve:   %8.2f ms (parse alone %.2f ms)\n", best_h * 1e3,
	       best_p * 1e3);
	printf("ratio hocon/jansson:        %8.2f (target <= 3)\n", ratio);

	/* per-container resolution of a small recipe */
	struct kilt_error err = { 0 };
	struct kilt_hocon *h = NULL;
	if (kilt_hocon_parse_string(recipe, sizeof(recipe) - 1, "recipe.conf", NULL, &h, &err) <
	    0) {
		fprintf(stderr, "bench_hocon: recipe: %s\n", err.msg);
		return 1;
	}
	enum { N = 20000, CTXS = 16 };
	json_t *ctx[CTXS];
	for (int i = 0; i < CTXS; i++)
		ctx[i] = json_pack("{s:{s:s,s:s,s:s,s:[ss],s:[s],s:{s:s}},s:{s:s}}", "original",
				   "image", "nginx:1.25", "name", i % 2 ? "web" : "api", "group",
				   "task-family", "entrypoint", "/docker-entrypoint.sh", "nginx",
				   "command", "-g", "metadata", "log_group", "grp", "config",
				   "helper_image", "helper:1");
	double best = 1e9;
	for (int round = 0; round < 5; round++) {
		double t0 = now();
		for (int i = 0; i < N; i++) {
			json_t *out = NULL;
			if (kilt_hocon_resolve(h, ctx[i % CTXS], NULL, &out, &err) < 0) {
				fprintf(stderr, "bench_hocon: resolve recipe: %s\n", err.msg);
				return 1;
			}
			json_decref(out);
		}
		double t = (now() - t0) / N;
		if (t < best)
			best = t;
	}
	unsigned lines = 0;
	for (const char *c = recipe; *c; c++)
		lines += *c == '\n';
	printf("recipe resolve per container: %6.2f us (%u lines, target <= 5 us)\n", best * 1e6,
	       lines);
	for (int i = 0; i < CTXS; i++)
		json_decref(ctx[i]);
	kilt_hocon_free(h);
	return ratio > 4.0 ? 1 : 0;
}
