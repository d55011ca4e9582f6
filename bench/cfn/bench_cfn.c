/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark of the ECS engine on a generated CloudFormation template (500 Fargate task definitions
 * x 4 containers by default): time of parse + inject + dump against parse + dump of the same
 * template in the same run (the I/O floor), and the peak RSS of fresh processes (the library
 * pipelines, streamed (lib/cfn-stream.c, what kilt inject runs on JSON) and whole-document, and
 * the kilt binary itself on both paths) against the template's size.
 * Goals: <= 3x the floor, peak RSS above an idle process <= 5x the template.
 * Usage: bench_cfn [TASKS [CONTAINERS [ROUNDS]]] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kilt.h"
#include "bench-common.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* How a pass writes its result: streamed by jansson (json_dumpf: the floor), streamed by
 * kilt_json_dump_callback (the same bytes; what kilt inject and the macro write with), or into one string
 * first (json_dumps, as kilt inject did before streaming). */
enum dump_kind { DUMP_STREAM, DUMP_KILT, DUMP_STRING };

static int file_write(const char *p, size_t n, void *userdata)
{
	return fwrite(p, 1, n, userdata) == n ? 0 : -1;
}

/* One pass as kilt inject runs it: parse, let go of the text when `drop_text` (*text is freed
 * and cleared), inject, dump into `sink` (NULL: /dev/null). Returns the output length (so the
 * work cannot be optimised away). */
static size_t pass(char **text, size_t len, const struct kilt_recipe *recipe, enum dump_kind dump,
		   FILE *sink, bool drop_text, bool keep_rollback)
{
	json_error_t jerr;
	/* kilt's whole-document path reads as kilt inject --json-path=whole and the macro do; the
	 * floor and the older pipelines with jansson's json_loadb */
	json_t *doc = dump == DUMP_KILT ? kilt_json_loadb(*text, len, 0, &jerr)
					: json_loadb(*text, len, 0, &jerr);
	if (!doc) {
		fprintf(stderr, "bench_cfn: %s\n", jerr.text);
		exit(1);
	}
	if (drop_text) {
		free(*text);
		*text = NULL;
	}
	if (recipe) {
		struct kilt_error err = { 0 };
		struct kilt_report rep;
		kilt_report_init(&rep);
		struct kilt_ecs_options opts;
		kilt_ecs_options_default(&opts);
		opts.discard_on_failure = !keep_rollback; /* as kilt inject runs it */
		if (kilt_ecs_inject(recipe, doc, &opts, &rep, &err) < 0) {
			fprintf(stderr, "bench_cfn: inject: %s\n", err.msg);
			exit(1);
		}
		kilt_report_done(&rep);
	}
	size_t n = 0;
	if (dump == DUMP_STRING) {
		char *out = json_dumps(doc, JSON_INDENT(2));
		n = strlen(out);
		free(out);
	} else {
		FILE *f = sink ? sink : fopen("/dev/null", "w");
		if (!f ||
		    (dump == DUMP_KILT ? kilt_json_dump_callback(doc, JSON_INDENT(2), file_write, f)
				       : json_dumpf(doc, f, JSON_INDENT(2))) < 0) {
			fprintf(stderr, "bench_cfn: dump failed\n");
			exit(1);
		}
		n = (size_t)ftell(f);
		if (sink)
			rewind(f);
		else
			fclose(f);
	}
	json_decref(doc);
	return n;
}

/* One pass as kilt inject runs a JSON template now: lib/cfn-stream.c over the text, which stays
 * in memory, one resource parsed at a time, the result streamed into `sink` (NULL: /dev/null). */
static size_t stream_pass(const char *text, size_t len, const struct kilt_recipe *recipe,
			  FILE *sink)
{
	FILE *f = sink ? sink : fopen("/dev/null", "w");
	if (!f) {
		fprintf(stderr, "bench_cfn: /dev/null\n");
		exit(1);
	}
	struct kilt_cfn_stream io = { .write = file_write, .write_userdata = f };
	struct kilt_error err = { 0 };
	struct kilt_ecs_options opts;
	kilt_ecs_options_default(&opts);
	opts.discard_on_failure = true;
	struct kilt_report rep;
	kilt_report_init(&rep);
	if (kilt_cfn_stream_inject(recipe, text, len, &opts, &io, &rep, &err) != 0 ||
	    fputc('\n', f) == EOF) {
		fprintf(stderr, "bench_cfn: stream: %s\n", err.msg);
		exit(1);
	}
	kilt_report_done(&rep);
	size_t n = (size_t)ftell(f);
	if (sink)
		rewind(f);
	else
		fclose(f);
	return n;
}

static double best_of_stream(long rounds, const char *text, size_t len,
			     const struct kilt_recipe *recipe, FILE *sink, size_t *ret_out)
{
	double best = 1e9;
	for (long i = 0; i < rounds; i++) {
		double t0 = now();
		*ret_out = stream_pass(text, len, recipe, sink);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
	}
	return best;
}

static double best_of(long rounds, char *text, size_t len, const struct kilt_recipe *recipe,
		      enum dump_kind dump, FILE *sink, size_t *ret_out)
{
	double best = 1e9;
	for (long i = 0; i < rounds; i++) {
		double t0 = now();
		*ret_out = pass(&text, len, recipe, dump, sink, false, false);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
	}
	return best;
}

/* Peak RSS (KiB) of a fresh process: this program re-executed (so nothing of this one's heap
 * counts), in one of the modes of child(). */
static long child_rss(const char *self, const char *mode, const char *path)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' --child %s '%s'", self, mode, path);
	FILE *p = popen(cmd, "r");
	long kib = -1;
	if (!p || fscanf(p, "%ld", &kib) != 1 || pclose(p) != 0) {
		fprintf(stderr, "bench_cfn: child %s failed\n", mode);
		exit(1);
	}
	return kib;
}

/* Runs the kilt binary (output and messages to /dev/null) and returns its peak RSS (KiB) from
 * wait4. Called in a freshly executed copy of this program, which is small, because a child's
 * peak also counts the memory it had before exec. */
static long cli_rss(char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	int status = 0;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return ru.ru_maxrss;
}

static int child(const char *mode, const char *path)
{
	long kib = -1;
	if (strcmp(mode, "idle") == 0) {
		kib = vm_hwm();
	} else if (strncmp(mode, "cli-", 4) == 0) {
#ifdef KILT_CLI
		_cleanup_free_ char *out = xasprintf("%s.out", path);
		char kilt[] = KILT_CLI, inject[] = "inject", help_opt[] = "--help",
		     no_lookup[] = "--no-image-lookup", r_opt[] = "-r", recipe[] = RECIPE,
		     o_opt[] = "--output-file";
		char whole[] = "--json-path=whole";
		char *help[] = { kilt, inject, help_opt, NULL };
		char *run[] = { kilt,  inject, no_lookup, r_opt, recipe, (char *)(uintptr_t)path,
				o_opt, out,    NULL };
		char *run_whole[] = {
			kilt,  inject, no_lookup, whole, r_opt, recipe, (char *)(uintptr_t)path,
			o_opt, out,    NULL
		};
		kib = cli_rss(strcmp(mode, "cli-idle") == 0    ? help
			      : strcmp(mode, "cli-whole") == 0 ? run_whole
							       : run);
		unlink(out);
#endif
	} else {
		char *text = NULL;
		size_t len = 0;
		if (kilt_read_file(path, 1u << 30, &text, &len) < 0)
			return 1;
		if (strcmp(mode, "stream") == 0) {
			struct kilt_recipe *recipe = load_recipe_named("bench_cfn");
			stream_pass(text, len, recipe, NULL);
			kilt_recipe_free(recipe);
		} else if (strcmp(mode, "read") != 0) {
			bool inject = strncmp(mode, "inject", 6) == 0;
			bool string = strstr(mode, "-string") != NULL;
			struct kilt_recipe *recipe = inject ? load_recipe_named("bench_cfn") : NULL;
			pass(&text, len, recipe, string ? DUMP_STRING : DUMP_STREAM, NULL, !string,
			     string || strstr(mode, "-keep") != NULL);
			kilt_recipe_free(recipe);
		}
		free(text);
		kib = vm_hwm();
	}
	printf("%ld\n", kib);
	return kib < 0;
}

/* `bench_cfn --profile floor|whole|whole-jansson|stream|none N [TASKS [CONTAINERS]]`: only that
 * path, N times (for perf record or valgrind --tool=callgrind; `none` only generates the
 * template and loads the recipe). */
static int profile(int argc, char **argv)
{
	const char *what = argv[2];
	long n = parse_long(argv[3], 10);
	long tasks = parse_long(argc > 4 ? argv[4] : NULL, 500);
	long containers = parse_long(argc > 5 ? argv[5] : NULL, 4);
	struct kilt_recipe *recipe = load_recipe_named("bench_cfn");
	char *text = generate(tasks, containers);
	size_t len = strlen(text);
	FILE *sink = tmpfile();
	if (!sink)
		return 1;
	size_t out = 0;
	for (long i = 0; i < n && strcmp(what, "none") != 0; i++) {
		if (strcmp(what, "stream") == 0)
			out += stream_pass(text, len, recipe, sink);
		else
			out += pass(&text, len, strncmp(what, "whole", 5) == 0 ? recipe : NULL,
				    strcmp(what, "whole") == 0 ? DUMP_KILT : DUMP_STREAM, sink,
				    false, false);
	}
	printf("%s: %ld passes, %zu bytes out\n", what, n, out);
	fclose(sink);
	kilt_recipe_free(recipe);
	free(text);
	return 0;
}

/* CPU time (user + system, from wait4) of a fresh process running one path `passes` times:
 * `self --profile MODE PASSES TASKS CONTAINERS`. */
static double cpu_child(const char *self, const char *mode, long passes, long tasks,
			long containers)
{
	char n[24], t[24], c[24];
	snprintf(n, sizeof(n), "%ld", passes);
	snprintf(t, sizeof(t), "%ld", tasks);
	snprintf(c, sizeof(c), "%ld", containers);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execl(self, self, "--profile", mode, n, t, c, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_cfn: --profile %s failed\n", mode);
		exit(1);
	}
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Per pass CPU time of each path, each in fresh processes (10 passes, less a process that only
 * generates the template and loads the recipe), the paths in turn three times, the best of each:
 * [0] the floor, [1] whole document, [2] whole document written by jansson, [3] streamed. What
 * other programs on the machine do disturbs this less than the wall clock. */
static void cpu_times(const char *self, long tasks, long containers, double best[4])
{
	static const char *const modes[] = { "floor", "whole", "whole-jansson", "stream" };
	const long passes = 10;
	for (int k = 0; k < 4; k++)
		best[k] = 1e9;
	for (int round = 0; round < 3; round++) {
		double base = cpu_child(self, "none", 1, tasks, containers);
		for (int k = 0; k < 4; k++) {
			double dt = (cpu_child(self, modes[k], passes, tasks, containers) - base) /
				    (double)passes;
			if (dt < best[k])
				best[k] = dt;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--child") == 0)
		return child(argv[2], argv[3]);
	if (argc >= 4 && strcmp(argv[1], "--profile") == 0)
		return profile(argc, argv);
	long tasks = parse_long(argc > 1 ? argv[1] : NULL, 500);
	long containers = parse_long(argc > 2 ? argv[2] : NULL, 4);
	long rounds = parse_long(argc > 3 ? argv[3] : NULL, 7);
	struct kilt_recipe *recipe = load_recipe_named("bench_cfn");
	char *text = generate(tasks, containers);
	size_t len = strlen(text);
	size_t out_floor = 0, out_inject = 0;

	/* Both passes stream into the same scratch file; warm up allocator and caches first. */
	FILE *sink = tmpfile();
	if (!sink) {
		perror("bench_cfn: scratch file");
		return 1;
	}
	pass(&text, len, recipe, DUMP_STREAM, sink, false, false);
	double floor_s = best_of(rounds, text, len, NULL, DUMP_STREAM, sink, &out_floor);
	double inject_s = best_of(rounds, text, len, recipe, DUMP_KILT, sink, &out_inject);
	size_t out_jansson = 0;
	double inject_jansson_s =
		best_of(rounds, text, len, recipe, DUMP_STREAM, sink, &out_jansson);
	size_t out_stream = 0;
	double stream_s = best_of_stream(rounds, text, len, recipe, sink, &out_stream);
	fclose(sink);
	if (out_jansson != out_inject)
		fprintf(stderr, "bench_cfn: kilt_json_dump_callback wrote %zu bytes, jansson %zu\n",
			out_inject, out_jansson);
	if (out_stream != out_inject + 1) /* + the newline kilt inject ends with */
		fprintf(stderr, "bench_cfn: the streamed output has %zu bytes, not %zu\n",
			out_stream, out_inject + 1);

	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl < 0)
		return 1;
	self[sl] = '\0';
	double cpu[4];
	cpu_times(self, tasks, containers, cpu);
	char path[] = "/tmp/kilt-bench-cfn-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) < 0) {
		perror("bench_cfn: temporary template");
		return 1;
	}
	long idle = child_rss(self, "idle", path);
	long read = child_rss(self, "read", path);
	long floor_kib = child_rss(self, "floor", path);
	long inject_kib = child_rss(self, "inject", path);
	long inject_keep = child_rss(self, "inject-keep", path);
	long floor_str = child_rss(self, "floor-string", path);
	long inject_str = child_rss(self, "inject-string", path);
	long cli_idle = child_rss(self, "cli-idle", path);
	long cli_run = child_rss(self, "cli-run", path);
	long cli_whole = child_rss(self, "cli-whole", path);
	long stream_kib = child_rss(self, "stream", path);
	unlink(path);
	double t = (double)len / 1024.0;
	double ratio = stream_s / floor_s;
	double net = (double)(stream_kib - idle) / t;

	printf("template: %ld task definitions x %ld containers, %.1f KiB in, %.1f KiB out\n",
	       tasks, containers, t, (double)out_inject / 1024.0);
	printf("floor (jansson load + dump):   %8.1f ms\n", floor_s * 1e3);
	printf("inject, whole document (load + inject + dump): %8.1f ms   = %.2fx the floor\n",
	       inject_s * 1e3, inject_s / floor_s);
	printf("  the same, written by jansson's dump:         %8.1f ms   = %.2fx the floor\n",
	       inject_jansson_s * 1e3, inject_jansson_s / floor_s);
	printf("inject, streamed (lib/cfn-stream.c):           %8.1f ms   = %.2fx the floor "
	       "(goal <= 3x)\n",
	       stream_s * 1e3, ratio);
	printf("CPU time per pass (fresh processes, 10 passes, best of 3): floor %.1f ms\n",
	       cpu[0] * 1e3);
	printf("  whole document %.1f ms = %.2fx the floor (goal <= 2x); written by jansson's dump "
	       "%.1f ms = %.2fx\n",
	       cpu[1] * 1e3, cpu[1] / cpu[0], cpu[2] * 1e3, cpu[2] / cpu[0]);
	printf("  streamed %.1f ms = %.2fx the floor (goal <= 1.5x)\n", cpu[3] * 1e3,
	       cpu[3] / cpu[0]);
	printf("per container above the floor: %.1f us whole, %.1f us streamed\n",
	       (inject_s - floor_s) * 1e6 / (double)(tasks * containers),
	       (stream_s - floor_s) * 1e6 / (double)(tasks * containers));
	printf("peak RSS (VmHWM, KiB) of fresh processes; x = per byte of template:\n");
	printf("  %-44s %7ld\n", "idle (started, did nothing)", idle);
	printf("  %-44s %7ld\n", "read the file only", read);
	printf("  %-44s %7ld  gross %5.2fx  net %5.2fx\n", "load + dump (streamed)", floor_kib,
	       (double)floor_kib / t, (double)(floor_kib - idle) / t);
	printf("  %-44s %7ld  gross %5.2fx  net %5.2fx (goal <= 5x)\n",
	       "streamed: text kept, one resource at a time", stream_kib, (double)stream_kib / t,
	       net);
	printf("  %-44s %7ld  gross %5.2fx  net %5.2fx\n", "whole document: load + inject + dump",
	       inject_kib, (double)inject_kib / t, (double)(inject_kib - idle) / t);
	printf("  %-44s %7ld  gross %5.2fx  net %5.2fx\n", "  the same, rollback kept to the end",
	       inject_keep, (double)inject_keep / t, (double)(inject_keep - idle) / t);
	printf("  %-44s %7ld  gross %5.2fx  net %5.2fx\n", "load + dump (text kept, json_dumps)",
	       floor_str, (double)floor_str / t, (double)(floor_str - idle) / t);
	printf("  %-44s %7ld  gross %5.2fx  net %5.2fx\n",
	       "load + inject + dump (text kept, json_dumps)", inject_str, (double)inject_str / t,
	       (double)(inject_str - idle) / t);
	if (cli_idle > 0 && cli_run > 0)
		printf("  %-44s %7ld  gross %5.2fx  net %5.2fx (above `kilt inject --help`: %ld)\n",
		       "kilt inject --output-file FILE (the binary, streamed)", cli_run,
		       (double)cli_run / t, (double)(cli_run - cli_idle) / t, cli_idle);
	if (cli_idle > 0 && cli_whole > 0)
		printf("  %-44s %7ld  gross %5.2fx  net %5.2fx\n",
		       "kilt inject --output-file FILE --json-path=whole", cli_whole,
		       (double)cli_whole / t, (double)(cli_whole - cli_idle) / t);
	printf("  net = above the idle process\n");
	kilt_recipe_free(recipe);
	free(text);
	(void)out_floor;
	return (ratio <= 3.0 && net <= 5.0) ? 0 : 3;
}
