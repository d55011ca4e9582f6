/* SPDX-License-Identifier: Apache-2.0 */
/* Test stand-in for Falco 0.32.2 in userspace mode (a real Falco cannot be fetched or built in
 * kilt's tests). It records its argv, environment and the configuration it was given under
 * /work, checks that the files the configuration names exist, creates the shared-memory ring
 * files the way Falco's udig engine does when it opens the capture, prints one JSON alert on
 * stdout and waits for SIGTERM. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static void copy_file(const char *from, const char *to)
{
	char buf[4096];
	FILE *in = fopen(from, "r");
	FILE *out = fopen(to, "w");
	if (!out)
		return;
	if (!in) {
		fprintf(out, "cannot open %s\n", from);
		fclose(out);
		return;
	}
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("Falco version: 0.32.2 (stand-in)\n");
		return 0;
	}
	FILE *f = fopen("/work/falco.argv", "w");
	for (int i = 0; f && i < argc; i++)
		fprintf(f, "%s\n", argv[i]);
	if (f)
		fclose(f);
	f = fopen("/work/falco.env", "w");
	for (char **e = environ; f && *e; e++)
		fprintf(f, "%s\n", *e);
	if (f)
		fclose(f);
	const char *config = NULL;
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "-c") == 0)
			config = argv[i + 1];
	if (config)
		copy_file(config, "/work/falco.yaml.seen");
	/* Every rules_file entry of the configuration must exist in the image. */
	f = fopen("/work/falco.rules", "w");
	FILE *c = config ? fopen(config, "r") : NULL;
	char line[1024];
	int in_rules = 0;
	while (c && f && fgets(line, sizeof line, c)) {
		if (strncmp(line, "rules_file:", 11) == 0) {
			in_rules = 1;
			continue;
		}
		if (in_rules && strncmp(line, "  - ", 4) == 0) {
			line[strcspn(line, "\n")] = '\0';
			fprintf(f, "%s %s\n", line + 4,
				access(line + 4, R_OK) == 0 ? "ok" : "missing");
		} else if (line[0] != ' ' && line[0] != '#') {
			in_rules = 0;
		}
	}
	if (c)
		fclose(c);
	if (f)
		fclose(f);
	/* Opening takes a moment (rules are compiled first); then the ring exists. */
	usleep(700 * 1000);
	int fd = open("/dev/shm/udig_buf", O_CREAT | O_RDWR, 0666);
	if (fd >= 0)
		close(fd);
	fd = open("/dev/shm/udig_descs", O_CREAT | O_RDWR, 0666);
	if (fd >= 0)
		close(fd);
	printf("{\"output\":\"kilt stand-in "
	       "alert\",\"priority\":\"Notice\",\"rule\":\"stand-in\"}\n");
	fflush(stdout);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	return 0;
}
