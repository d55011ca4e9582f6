/* SPDX-License-Identifier: Apache-2.0 */
/* Test stand-in for pdig (a real pdig cannot be fetched or built in kilt's tests). Like pdig in
 * spawn mode (`pdig [-a] [-S] PROG ARGS...`) it runs PROG as its child and, like pdig, always
 * exits 0 and ignores SIGTERM. It records its argv and environment under /work, whether the
 * shared-memory ring Falco creates existed when it started, and whether it holds CAP_SYS_PTRACE. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void handler(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	FILE *f = fopen("/work/pdig.argv", "w");
	for (int i = 0; f && i < argc; i++)
		fprintf(f, "%s\n", argv[i]);
	if (f)
		fclose(f);
	f = fopen("/work/pdig.env", "w");
	for (char **e = environ; f && *e; e++)
		fprintf(f, "%s\n", *e);
	if (f)
		fclose(f);
	f = fopen("/work/pdig.state", "w");
	if (f) {
		fprintf(f, "ring %s\n", access("/dev/shm/udig_descs", F_OK) == 0 ? "yes" : "no");
		FILE *st = fopen("/proc/self/status", "r");
		char line[256];
		unsigned long long eff = 0;
		while (st && fgets(line, sizeof line, st))
			if (sscanf(line, "CapEff: %llx", &eff) == 1)
				break;
		if (st)
			fclose(st);
		fprintf(f, "sys_ptrace %s\n", eff & (1ull << 19) ? "yes" : "no");
		fclose(f);
	}
	int i = 1;
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0')
		i++;
	if (i >= argc)
		return 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sigaction(SIGTERM, &sa, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		execvp(argv[i], &argv[i]);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
	}
	return 0;
}
