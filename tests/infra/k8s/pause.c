// SPDX-License-Identifier: Apache-2.0
/* The pod sandbox's first process in the test cluster (containerd's sandbox_image): holds the
 * pod's namespaces, reaps what a shared PID namespace hands it, and exits 0 on SIGINT or SIGTERM.
 * Built -static by tests/infra/k8s_cluster.py, since the test cluster has no registry to pull the
 * upstream pause image from. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

int main(void)
{
	struct sigaction sa = { 0 };

	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;)
		pause();
}
