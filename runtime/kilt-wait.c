/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilt-wait: the idle entrypoint of kilt's agent sidecar. It sleeps in sigwaitinfo (no CPU, no
 * timers) until SIGTERM or SIGINT and then exits 0; as PID 1 it also reaps whatever gets
 * reparented to it. Arguments are ignored, so a command appended by the orchestrator is harmless.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/wait.h>

static void reap(void)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0 || (pid < 0 && errno == EINTR))
			continue;
		break;
	}
}

int main(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Children that ended before the mask was set sent a SIGCHLD that nobody will see again. */
	reap();
	for (;;) {
		int sig = sigwaitinfo(&all, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			return 0;
		if (sig == SIGCHLD)
			reap();
	}
}
