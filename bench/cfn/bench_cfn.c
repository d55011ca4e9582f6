/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the ECS engine on a generated CloudFormation template (500 Fargate task definitions
 * x 4 containers by default): time of parse + inject + dump against parse + dump of the same
 * template in the same run (the I/O floor), and the peak RSS of an inject run (in a child process)
 * against the template's size. Goals: <= 3x the floor, peak RSS <= 5x the template.
 * Usage: bench_cfn [TASKS [CONTAINERS [ROUNDS]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kilt.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_long(const char *s, long dflt)
{
	if (!s)
		return dflt;
	char *end = NULL;
	long v = strtol(s, &end, 10);
	return (end && !*end && v > 0) ? v : dflt;
}

/* A template shaped like real ones: log group and role references, awslogs, environment, an
 * intrinsic image for every fourth container. */
static char *generate(long tasks, long containers)
{
	json_t *res = json_object();
	json_object_set_new(res, "Logs", json_pack("{ss}", "Type", "AWS::Logs::LogGroup"));
	for (long t = 0; t < tasks; t++) {
		json_t *list = json_array();
		for (long c = 0; c < containers; c++) {
			char name[32], image[96];
			snprintf(name, sizeof(name), "c%ld", c);
			snprintf(image, sizeof(image), "registry.example.com/app/svc%ld:1.%ld", t,
				 c);
			json_t *img = (c % 4 == 3) ? json_pack("{ss}", "Fn::Sub",
							       "${AWS::AccountId}.dkr.ecr.${AWS::"
							       "Region}.amazonaws.com/app:1")
						   : json_string(image);
			json_array_append_new(
				list,
				json_pack("{sssosbs[ss]s[sss]s[{sisiss}]s[{ssss}{sss{ss}}]s{sss{s{"
					  "ss}s{ss}ss}}}",
					  "Name", name, "Image", img, "Essential", c == 0,
					  "EntryPoint", "/docker-entrypoint.sh", "--", "Command",
					  "nginx", "-g", "daemon off;", "PortMappings",
					  "ContainerPort", 8080 + (int)c, "HostPort", 8080 + (int)c,
					  "Protocol", "tcp", "Environment", "Name", "MODE", "Value",
					  "production", "Name", "REGION", "Value", "Ref",
					  "AWS::Region", "LogConfiguration", "LogDriver", "awslogs",
					  "Options", "awslogs-group", "Ref", "Logs",
					  "awslogs-region", "Ref", "AWS::Region",
					  "awslogs-stream-prefix", name));
		}
		char id[32], family[32];
		snprintf(id, sizeof(id), "Task%ld", t);
		snprintf(family, sizeof(family), "svc%ld", t);
		json_object_set_new(res, id,
				    json_pack("{sss{sssssssss[s]so}}", "Type",
					      "AWS::ECS::TaskDefinition", "Properties", "Family",
					      family, "Cpu", "1024", "Memory", "2048",
					      "NetworkMode", "awsvpc", "RequiresCompatibilities",
					      "FARGATE", "ContainerDefinitions", list));
	}
	json_t *doc =
		json_pack("{ssso}", "AWSTemplateFormatVersion", "2010-09-09", "Resources", res);
	char *text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	return text;
}

static struct kilt_recipe *load_recipe(void)
{
	struct kilt_recipe *r = NULL;
	struct kilt_error err = { 0 };
	const char *path = KILT_SOURCE_DIR "/tests/ecs/recipes/falco.conf";
	if (kilt_recipe_load_file(path, &r, &err) < 0) {
		fprintf(stderr, "bench_cfn: %s: %s\n", path, err.msg);
		exit(1);
	}
	return r;
}

/* One pass; returns the output length (so the work cannot be optimised away). */
static size_t pass(const char *text, size_t len, const struct kilt_recipe *recipe)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, 0, &jerr);
	if (!doc) {
		fprintf(stderr, "bench_cfn: %s\n", jerr.text);
		exit(1);
	}
	if (recipe) {
		struct kilt_error err = { 0 };
		if (kilt_ecs_inject(recipe, doc, NULL, NULL, &err) < 0) {
			fprintf(stderr, "bench_cfn: inject: %s\n", err.msg);
			exit(1);
		}
	}
	char *out = json_dumps(doc, JSON_INDENT(2));
	size_t n = strlen(out);
	free(out);
	json_decref(doc);
	return n;
}

static double best_of(long rounds, const char *text, size_t len, const struct kilt_recipe *recipe,
		      size_t *ret_out)
{
	double best = 1e9;
	for (long i = 0; i < rounds; i++) {
		double t0 = now();
		*ret_out = pass(text, len, recipe);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
	}
	return best;
}

/* Peak RSS (KiB, VmHWM) of a fresh process (this program re-executed, so nothing of this one's
 * heap counts) that reads `path` and then does nothing ("read"), a load + dump ("floor") or a
 * load + inject + dump ("inject"). */
static long child_rss(const char *self, const char *mode, const char *path)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "'%s' --child %s '%s'", self, mode, path);
	FILE *p = popen(cmd, "r");
	long kib = -1;
	if (!p || fscanf(p, "%ld", &kib) != 1 || pclose(p) != 0) {
		fprintf(stderr, "bench_cfn: child %s failed\n", mode);
		exit(1);
	}
	return kib;
}

static long vm_hwm(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

static int child(const char *mode, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	if (kilt_read_file(path, 1u << 30, &text, &len) < 0)
		return 1;
	if (strcmp(mode, "read") != 0) {
		struct kilt_recipe *recipe = strcmp(mode, "inject") == 0 ? load_recipe() : NULL;
		pass(text, len, recipe);
		kilt_recipe_free(recipe);
	}
	free(text);
	printf("%ld\n", vm_hwm());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--child") == 0)
		return child(argv[2], argv[3]);
	long tasks = parse_long(argc > 1 ? argv[1] : NULL, 500);
	long containers = parse_long(argc > 2 ? argv[2] : NULL, 4);
	long rounds = parse_long(argc > 3 ? argv[3] : NULL, 7);
	struct kilt_recipe *recipe = load_recipe();
	char *text = generate(tasks, containers);
	size_t len = strlen(text);
	size_t out_floor = 0, out_inject = 0;

	/* warm up allocator and caches, then measure alternately */
	pass(text, len, recipe);
	double floor_s = best_of(rounds, text, len, NULL, &out_floor);
	double inject_s = best_of(rounds, text, len, recipe, &out_inject);

	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl < 0)
		return 1;
	self[sl] = '\0';
	char path[] = "/tmp/kilt-bench-cfn-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) < 0) {
		perror("bench_cfn: temporary template");
		return 1;
	}
	long base_kib = child_rss(self, "read", path);
	long floor_kib = child_rss(self, "floor", path);
	long inject_kib = child_rss(self, "inject", path);
	unlink(path);
	double tmpl_kib = (double)len / 1024.0;
	double rss_ratio = (double)(inject_kib - base_kib) / tmpl_kib;
	double ratio = inject_s / floor_s;

	printf("template: %ld task definitions x %ld containers, %.1f KiB in, %.1f KiB out\n",
	       tasks, containers, tmpl_kib, (double)out_inject / 1024.0);
	printf("floor (jansson load + dump):   %8.1f ms\n", floor_s * 1e3);
	printf("inject (load + inject + dump): %8.1f ms   = %.2fx the floor (goal <= 3x)\n",
	       inject_s * 1e3, ratio);
	printf("peak RSS: %ld KiB reading the file, %ld KiB load+dump, %ld KiB load+inject+dump\n",
	       base_kib, floor_kib, inject_kib);
	printf("inject's peak RSS above the process that only reads the file: %.2fx the template "
	       "(goal <= 5x); load+dump alone: %.2fx\n",
	       rss_ratio, (double)(floor_kib - base_kib) / tmpl_kib);
	printf("per container: %.1f us\n",
	       (inject_s - floor_s) * 1e6 / (double)(tasks * containers));
	kilt_recipe_free(recipe);
	free(text);
	(void)out_floor;
	return (ratio <= 3.0 && rss_ratio <= 5.0) ? 0 : 3;
}
