/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kilt-launch: the entrypoint kilt puts in front of a workload. It starts the agent programs and
 * the app (optionally run by a tracer), forwards every catchable signal to the app, reaps every
 * zombie (as PID 1 or as a child subreaper) and exits with the app's status. libc only, no heap in
 * the supervising process. Grammar and behaviour are documented in docs/runtime.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_AGENTS 16
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 32000
/* An agent that stayed up this long is restarted after the minimum delay again. */
#define BACKOFF_RESET_MS 60000
/* Time between SIGTERM and SIGKILL for agents after the app ended, and for policy "stop". */
#define GRACE_MS 5000
/* After SIGKILL, how long to wait for the kernel to hand the corpses back before giving up. */
#define KILL_WAIT_MS 1000
/* --wait-for: how often the path is looked for, and the default and largest time allowed. */
#define WAIT_POLL_MS 50
#define WAIT_DEFAULT_S 30
#define WAIT_MAX_S 86400

#define EXIT_USAGE 2
#define EXIT_INTERNAL 1

/* The internal option the tracer's child (this program again) is started with. */
#define SHIM_OPTION "--shim-status-fd"

enum policy { POLICY_RESTART, POLICY_IGNORE, POLICY_STOP };
enum on_timeout { ON_TIMEOUT_UNSET, ON_TIMEOUT_RUN, ON_TIMEOUT_EXIT }; /* unset: run */

/* A counted argv group: argc words starting at argv, borrowed from main's argv. */
struct group {
	char **argv;
	int argc;
};

struct agent {
	struct group cmd;
	pid_t pid; /* 0 while not running */
	int64_t started_ms; /* when the current instance started */
	int64_t restart_ms; /* when to start it again; 0 = not scheduled */
	int backoff_ms; /* delay before the next restart */
};

/* What the shim tells the supervisor through the status pipe. */
struct shim_msg {
	int32_t kind; /* 'P': value is the app's pid; 'S': value is its wait status */
	int32_t value;
};

struct launch {
	enum policy policy;
	struct agent agents[MAX_AGENTS];
	size_t n_agents;
	struct group tracer; /* argc 0: no tracer */
	char **app; /* NULL-terminated, borrowed from main's argv */
	const char *wait_path; /* --wait-for; NULL: start the app at once */
	int wait_timeout_s;
	enum on_timeout on_timeout;
	bool waiting; /* the app is held until wait_path exists */
	int64_t wait_deadline_ms;
	sigset_t orig_mask; /* restored in every child before exec */
	int sfd; /* signalfd */
	int status_fd; /* read end of the shim's status pipe; -1 when closed or unused */
	pid_t tracer_pid;
	bool tracer_done;
	int tracer_code;
	pid_t app_pid; /* 0 until known */
	bool app_done;
	int app_code;
	sigset_t pending; /* signals that arrived before the app's pid was known */
	int64_t stop_ms; /* policy stop: when to SIGKILL the app; 0 = none */
	bool shutting_down;
	bool killed;
	int64_t shutdown_ms; /* next escalation step of the shutdown */
	char self[PATH_MAX]; /* this program's path, for the tracer to run as the shim */
	const char *detach_log; /* --detach: where the detached supervisor's output goes */
	const char *root; /* --root: chroot here before starting anything */
};

static bool g_debug;
/* --detach: the write end of the pipe the waiting parent reads. A child that cannot exec the app
 * writes its errno there; a successful exec closes it (close-on-exec). -1: nobody waits. */
static int g_report_fd = -1;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	char buf[600];
	static const char prefix[] = "kilt-launch: ";
	int saved = errno;
	memcpy(buf, prefix, sizeof prefix - 1);
	size_t off = sizeof prefix - 1;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + off, sizeof buf - off - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	off += (size_t)n < sizeof buf - off - 1 ? (size_t)n : sizeof buf - off - 2;
	buf[off++] = '\n';
	for (size_t done = 0; done < off;) {
		ssize_t w = write(STDERR_FILENO, buf + done, off - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	errno = saved;
}

#define debug(...)                                                                                 \
	do {                                                                                       \
		if (g_debug)                                                                       \
			say(__VA_ARGS__);                                                          \
	} while (0)

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The status a shell would report: the exit code, or 128+n for death by signal n. */
static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_INTERNAL;
}

static const char *describe(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "exited with status %d", exit_code(status));
	return buf;
}

static _Noreturn void usage(const char *why)
{
	if (why)
		say("%s", why);
	static const char text[] =
		"usage: kilt-launch [--policy restart|ignore|stop] [-a N ARG1..ARGN]...\n"
		"                   [-t N ARG1..ARGN] [--wait-for PATH [--wait-timeout S]\n"
		"                   [--on-timeout run|exit]] [--detach LOG [--root DIR]]\n"
		"                   -- APP [ARG]...\n"
		"  -a, --agent N      start an agent: its argv is the next N words (repeatable)\n"
		"  -t, --tracer N     run the app under a tracer: its argv is the next N words\n"
		"  --policy P         when an agent dies: restart (default, backoff), ignore,\n"
		"                     stop\n"
		"  --wait-for PATH    hold the app until PATH exists (the agent is ready)\n"
		"  --wait-timeout S   give up waiting after S seconds (default 30)\n"
		"  --on-timeout W     then: run the app anyway (default; warns) or exit 1\n"
		"  --detach LOG       run in the background (new session, output to LOG); print\n"
		"                     the supervisor's pid once the app was executed\n"
		"  --root DIR         with --detach: chroot into DIR before starting anything\n"
		"Everything after the first top-level -- is the app's argv, untouched.\n";
	if (write(STDERR_FILENO, text, sizeof text - 1) < 0) {
		/* nothing left to report to */
	}
	_exit(EXIT_USAGE);
}

/* In a child: restore the inherited signal mask and exec; never returns. */
static _Noreturn void exec_or_die(char **argv, const sigset_t *mask)
{
	sigprocmask(SIG_SETMASK, mask, NULL);
	execvp(argv[0], argv);
	int e = errno;
	say("cannot execute %s: %s", argv[0], strerror(e));
	if (g_report_fd >= 0) {
		int32_t code = e;
		if (write(g_report_fd, &code, sizeof code) < 0) {
			/* the waiting parent then sees the supervisor end instead */
		}
	}
	_exit(e == ENOENT ? 127 : 126);
}

static int parse_count(const char *s, int remaining)
{
	/* digits only: strtol alone would also take " 1" and "+1" */
	if (*s < '1' || *s > '9')
		usage("the count after -a/-t must be a positive number");
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < 1 || n > INT_MAX)
		usage("the count after -a/-t must be a positive number");
	if (n > remaining)
		usage("an argv group is longer than the arguments that follow it");
	return (int)n;
}

static bool group_has_dashdash(const struct group *g)
{
	for (int k = 0; k < g->argc; k++)
		if (strcmp(g->argv[k], "--") == 0)
			return true;
	return false;
}

static void parse_args(struct launch *l, int argc, char **argv)
{
	int i = 1;
	struct group last = { NULL, 0 }; /* the group that ended just before argv[i] */
	const char *last_opt = NULL;
	while (i < argc) {
		const char *a = argv[i];
		struct group prev = last;
		last.argc = 0;
		if (strcmp(a, "--") == 0) {
			if (i + 1 >= argc)
				usage("no app after --");
			l->app = &argv[i + 1];
			return;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			usage(NULL);
		if (strcmp(a, "--policy") == 0) {
			if (i + 1 >= argc)
				usage("--policy needs a value");
			const char *p = argv[i + 1];
			if (strcmp(p, "restart") == 0)
				l->policy = POLICY_RESTART;
			else if (strcmp(p, "ignore") == 0)
				l->policy = POLICY_IGNORE;
			else if (strcmp(p, "stop") == 0)
				l->policy = POLICY_STOP;
			else
				usage("--policy must be restart, ignore or stop");
			i += 2;
			continue;
		}
		if (strcmp(a, "--wait-for") == 0) {
			if (i + 1 >= argc || !argv[i + 1][0])
				usage("--wait-for needs a path");
			l->wait_path = argv[i + 1];
			i += 2;
			continue;
		}
		if (strcmp(a, "--wait-timeout") == 0) {
			if (i + 1 >= argc)
				usage("--wait-timeout needs a number of seconds");
			char *end;
			errno = 0;
			long n = strtol(argv[i + 1], &end, 10);
			if (argv[i + 1][0] < '1' || argv[i + 1][0] > '9' || errno ||
			    end == argv[i + 1] || *end || n < 1 || n > WAIT_MAX_S)
				usage("--wait-timeout must be a whole number of seconds, 1 to "
				      "86400");
			l->wait_timeout_s = (int)n;
			i += 2;
			continue;
		}
		if (strcmp(a, "--detach") == 0 || strcmp(a, "--root") == 0) {
			if (i + 1 >= argc || !argv[i + 1][0])
				usage(a[2] == 'd' ? "--detach needs a log file (or /dev/null)"
						  : "--root needs a directory");
			if (a[2] == 'd')
				l->detach_log = argv[i + 1];
			else
				l->root = argv[i + 1];
			i += 2;
			continue;
		}
		if (strcmp(a, "--on-timeout") == 0) {
			if (i + 1 >= argc)
				usage("--on-timeout needs a value");
			if (strcmp(argv[i + 1], "run") == 0)
				l->on_timeout = ON_TIMEOUT_RUN;
			else if (strcmp(argv[i + 1], "exit") == 0)
				l->on_timeout = ON_TIMEOUT_EXIT;
			else
				usage("--on-timeout must be run or exit");
			i += 2;
			continue;
		}
		bool agent = strcmp(a, "-a") == 0 || strcmp(a, "--agent") == 0;
		bool tracer = strcmp(a, "-t") == 0 || strcmp(a, "--tracer") == 0;
		if (!agent && !tracer) {
			char why[300];
			if (prev.argc && group_has_dashdash(&prev))
				/* the usual cause: a count one or more too large swallowed the -- */
				snprintf(why, sizeof why,
					 "%.100s is not an option: the %s %d group before it took "
					 "the -- meant for the app (is its count too large?)",
					 a, last_opt, prev.argc);
			else
				snprintf(why, sizeof why,
					 "unknown option %.100s (the app's argv goes after --)", a);
			usage(why);
		}
		if (i + 1 >= argc)
			usage("-a/-t needs a count");
		/* The group must leave room for at least "--" and the app after it. */
		int n = parse_count(argv[i + 1], argc - (i + 2) - 2);
		struct group g = { &argv[i + 2], n };
		if (agent) {
			if (l->n_agents == MAX_AGENTS)
				usage("too many agents");
			l->agents[l->n_agents++].cmd = g;
		} else {
			if (l->tracer.argc)
				usage("only one tracer");
			l->tracer = g;
		}
		last = g;
		last_opt = a;
		i += 2 + n;
	}
	usage("missing -- before the app");
}

/* Forked child of the supervisor for an agent: own process group, then exec. */
static pid_t spawn_agent(struct launch *l, struct agent *ag)
{
	pid_t pid = fork();
	if (pid == 0) {
		g_report_fd = -1; /* only the app's exec is reported */
		setpgid(0, 0);
		/* This child's copy of argv ends the group; the word after it is not needed here. */
		ag->cmd.argv[ag->cmd.argc] = NULL;
		exec_or_die(ag->cmd.argv, &l->orig_mask);
	}
	if (pid > 0)
		setpgid(pid, pid); /* both sides, so that kill(-pid) works at once */
	return pid;
}

static void start_agent(struct launch *l, struct agent *ag, int64_t now)
{
	ag->restart_ms = 0;
	ag->started_ms = now;
	ag->pid = spawn_agent(l, ag);
	if (ag->pid < 0) {
		say("cannot start agent %s: %s", ag->cmd.argv[0], strerror(errno));
		ag->pid = 0;
		ag->restart_ms = now + ag->backoff_ms;
		return;
	}
	debug("agent %s started as pid %d", ag->cmd.argv[0], (int)ag->pid);
}

static void send_app(struct launch *l, int sig)
{
	if (l->app_done)
		return;
	if (l->app_pid > 0) {
		debug("forwarding signal %d to the app (pid %d)", sig, (int)l->app_pid);
		kill(l->app_pid, sig);
	} else {
		sigaddset(&l->pending, sig);
	}
}

/* Child of the supervisor that becomes the tracer; it runs "SELF --shim-status-fd FD -- APP". */
static _Noreturn void exec_tracer(struct launch *l, int wfd)
{
	static char shim_opt[] = SHIM_OPTION;
	static char dashdash[] = "--";
	char fdbuf[16];
	snprintf(fdbuf, sizeof fdbuf, "%d", wfd);
	fcntl(wfd, F_SETFD, 0);
	size_t napp = 0;
	while (l->app[napp])
		napp++;
	size_t n = (size_t)l->tracer.argc;
	/* The only allocation: in a child that execs at once. */
	char **v = malloc((n + 4 + napp + 1) * sizeof *v);
	if (!v) {
		say("out of memory");
		_exit(126);
	}
	memcpy(v, l->tracer.argv, n * sizeof *v);
	v[n] = l->self;
	v[n + 1] = shim_opt;
	v[n + 2] = fdbuf;
	v[n + 3] = dashdash;
	memcpy(v + n + 4, l->app, (napp + 1) * sizeof *v);
	exec_or_die(v, &l->orig_mask);
}

static void start_app(struct launch *l)
{
	if (!l->tracer.argc) {
		pid_t pid = fork();
		if (pid == 0)
			exec_or_die(l->app, &l->orig_mask);
		if (pid < 0) {
			say("cannot start %s: %s", l->app[0], strerror(errno));
			l->app_done = true;
			l->app_code = EXIT_INTERNAL;
			return;
		}
		l->app_pid = pid;
		debug("app %s started as pid %d", l->app[0], (int)pid);
		return;
	}
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		say("cannot create the status pipe: %s", strerror(errno));
		l->app_done = true;
		l->app_code = EXIT_INTERNAL;
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_tracer(l, fds[1]);
	close(fds[1]);
	if (pid < 0) {
		say("cannot start tracer %s: %s", l->tracer.argv[0], strerror(errno));
		close(fds[0]);
		l->app_done = true;
		l->app_code = EXIT_INTERNAL;
		return;
	}
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	l->status_fd = fds[0];
	l->tracer_pid = pid;
	debug("tracer %s started as pid %d", l->tracer.argv[0], (int)pid);
}

/* Policy "stop", or the tracer gave up: ask the app to end, SIGKILL after the grace period. */
static void stop_app(struct launch *l, int64_t now)
{
	if (l->waiting) {
		/* Still held: it is simply never started. */
		l->waiting = false;
		l->app_done = true;
		l->app_code = EXIT_INTERNAL;
		return;
	}
	send_app(l, SIGTERM);
	if (!l->stop_ms)
		l->stop_ms = now + GRACE_MS;
}

static void app_finished(struct launch *l, int status)
{
	l->app_done = true;
	l->app_code = exit_code(status);
	char d[64];
	debug("app (pid %d) %s", (int)l->app_pid, describe(status, d, sizeof d));
}

static void agent_died(struct launch *l, struct agent *ag, int status, int64_t now)
{
	char d[64];
	const char *what = describe(status, d, sizeof d);
	pid_t pid = ag->pid;
	ag->pid = 0;
	if (l->shutting_down) {
		debug("agent %s (pid %d) %s", ag->cmd.argv[0], (int)pid, what);
		return;
	}
	switch (l->policy) {
	case POLICY_RESTART:
		if (now - ag->started_ms >= BACKOFF_RESET_MS)
			ag->backoff_ms = BACKOFF_MIN_MS;
		say("agent %s (pid %d) %s; restarting in %d ms", ag->cmd.argv[0], (int)pid, what,
		    ag->backoff_ms);
		ag->restart_ms = now + ag->backoff_ms;
		ag->backoff_ms =
			ag->backoff_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : ag->backoff_ms * 2;
		break;
	case POLICY_IGNORE:
		say("agent %s (pid %d) %s; not restarted (policy ignore)", ag->cmd.argv[0],
		    (int)pid, what);
		break;
	case POLICY_STOP:
		say("agent %s (pid %d) %s; stopping the app (policy stop)", ag->cmd.argv[0],
		    (int)pid, what);
		stop_app(l, now);
		break;
	}
}

/* Reads one message from the shim; false when there is nothing (more) to read. */
static bool read_status(struct launch *l)
{
	struct shim_msg m;
	ssize_t n = read(l->status_fd, &m, sizeof m);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (n != (ssize_t)sizeof m) {
		/* EOF (the shim and the tracer are gone) or a torn message: nothing more will come. */
		close(l->status_fd);
		l->status_fd = -1;
		return false;
	}
	if (m.kind == 'P' && l->app_pid == 0 && m.value > 0) {
		l->app_pid = (pid_t)m.value;
		debug("app %s runs under the tracer as pid %d", l->app[0], (int)l->app_pid);
		for (int sig = 1; sig < NSIG; sig++) {
			if (sigismember(&l->pending, sig) == 1)
				send_app(l, sig);
		}
		sigemptyset(&l->pending);
	} else if (m.kind == 'S' && !l->app_done) {
		app_finished(l, (int)m.value);
	}
	return true;
}

static void tracer_died(struct launch *l, int status, int64_t now)
{
	char d[64];
	l->tracer_done = true;
	l->tracer_code = exit_code(status);
	/* The shim reports before it exits and the tracer ends after the shim: read what is in
	 * the pipe before judging whether the app still runs. */
	while (l->status_fd >= 0 && read_status(l)) {
	}
	if (l->app_pid <= 0 || l->app_done) {
		debug("tracer (pid %d) %s", (int)l->tracer_pid, describe(status, d, sizeof d));
		return;
	}
	say("tracer %s (pid %d) %s while the app (pid %d) runs; the app is no longer traced%s",
	    l->tracer.argv[0], (int)l->tracer_pid, describe(status, d, sizeof d), (int)l->app_pid,
	    l->policy == POLICY_STOP ? "; stopping it (policy stop)" : "");
	if (l->policy == POLICY_STOP)
		stop_app(l, now);
}

static int signal_adopted(const struct launch *l, int sig);

static void reap(struct launch *l, int64_t now)
{
	bool any = false;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0) {
			/* What ended may have left children that are ours now: they end too. */
			if (any && l->shutting_down && !l->killed)
				signal_adopted(l, SIGTERM);
			return;
		}
		any = true;
		if (pid == l->app_pid && !l->app_done) {
			app_finished(l, status);
			continue;
		}
		if (pid == l->tracer_pid && !l->tracer_done) {
			tracer_died(l, status, now);
			continue;
		}
		bool known = false;
		for (size_t i = 0; i < l->n_agents; i++) {
			if (l->agents[i].pid == pid) {
				agent_died(l, &l->agents[i], status, now);
				known = true;
				break;
			}
		}
		if (!known)
			debug("reaped pid %d", (int)pid);
	}
}

static void drain_signals(struct launch *l, int64_t now)
{
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(l->sfd, &si, sizeof si);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof si)
			return;
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			reap(l, now);
		} else if (l->waiting &&
			   (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT)) {
			/* Asked to stop before the app ever ran: do not start it just to stop it. */
			say("signal %d arrived while waiting for %s; the app is not started", sig,
			    l->wait_path);
			l->waiting = false;
			l->app_done = true;
			l->app_code = 128 + sig;
		} else {
			send_app(l, sig);
		}
	}
}

/* The tracer form when the shim could not report: fall back to what the tracer says. */
static void check_tracer_fallback(struct launch *l)
{
	if (l->app_done || !l->tracer.argc || l->status_fd >= 0 || !l->tracer_done)
		return;
	if (l->app_pid > 0)
		return; /* the app lives on as our orphan; its status comes through waitpid */
	say("tracer %s exited with status %d before reporting the app; using its status",
	    l->tracer.argv[0], l->tracer_code);
	l->app_done = true;
	l->app_code = l->tracer_code;
}

/* --wait-for: start the app once the path exists, or when the time is up (--on-timeout). */
static void check_wait(struct launch *l, int64_t now)
{
	if (!l->waiting)
		return;
	struct stat st;
	if (stat(l->wait_path, &st) == 0) {
		l->waiting = false;
		debug("%s exists; starting the app", l->wait_path);
		start_app(l);
		return;
	}
	if (now < l->wait_deadline_ms)
		return;
	l->waiting = false;
	if (l->on_timeout == ON_TIMEOUT_EXIT) {
		say("%s did not appear within %d s; not starting the app (--on-timeout exit)",
		    l->wait_path, l->wait_timeout_s);
		l->app_done = true;
		l->app_code = EXIT_INTERNAL;
		return;
	}
	say("%s did not appear within %d s; starting the app anyway (what it does before the "
	    "agent is ready goes unseen)",
	    l->wait_path, l->wait_timeout_s);
	start_app(l);
}

static bool children_alive(const struct launch *l)
{
	for (size_t i = 0; i < l->n_agents; i++) {
		if (l->agents[i].pid > 0)
			return true;
	}
	if (l->tracer_pid > 0 && !l->tracer_done)
		return true;
	/* Adopted orphans too (see signal_adopted): ECHILD means no child of any kind is left. */
	siginfo_t si;
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* The parent pid in /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold anything). */
static pid_t parent_of(const char *pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%s/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ' || !rp[2] || rp[3] != ' ')
		return -1;
	char *end;
	long ppid = strtol(rp + 4, &end, 10);
	return end != rp + 4 && *end == ' ' && ppid > 0 && ppid <= INT_MAX ? (pid_t)ppid : -1;
}

/* The entries of a directory as read by getdents64 (the layout is the kernel's). */
struct dirent64_raw {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/*
 * Sends `sig` to every child of this process that it did not start itself: orphans that the
 * kernel reparented here (as PID 1 or child subreaper), such as a daemon an agent started with
 * setsid, which left the agent's process group. Agents and the tracer are not touched here.
 * Returns how many were signalled. /proc is read with getdents64: no heap in the supervisor.
 */
static int signal_adopted(const struct launch *l, int sig)
{
	int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	pid_t self = getpid();
	int count = 0;
	_Alignas(struct dirent64_raw) char buf[4096];
	for (;;) {
		long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			const struct dirent64_raw *d = (const struct dirent64_raw *)(buf + off);
			off += d->reclen;
			if (d->name[0] < '1' || d->name[0] > '9' || parent_of(d->name) != self)
				continue;
			pid_t pid = (pid_t)strtol(d->name, NULL, 10);
			bool ours = pid == l->tracer_pid;
			for (size_t i = 0; i < l->n_agents; i++)
				ours = ours || pid == l->agents[i].pid;
			if (ours)
				continue;
			debug("sending signal %d to pid %d (an orphan adopted by kilt-launch)", sig,
			      (int)pid);
			if (kill(pid, sig) == 0)
				count++;
		}
	}
	close(dfd);
	return count;
}

/* An agent and its helpers share its process group, unless it moved itself elsewhere. */
static void signal_agent(const struct agent *ag, int sig)
{
	if (kill(-ag->pid, sig) < 0)
		kill(ag->pid, sig);
}

static void begin_shutdown(struct launch *l, int64_t now)
{
	l->shutting_down = true;
	l->shutdown_ms = now + GRACE_MS;
	for (size_t i = 0; i < l->n_agents; i++) {
		struct agent *ag = &l->agents[i];
		ag->restart_ms = 0;
		if (ag->pid > 0) {
			debug("stopping agent %s (pid %d)", ag->cmd.argv[0], (int)ag->pid);
			signal_agent(ag, SIGTERM);
		}
	}
	/* The tracer is not signalled: it ends by itself once it has no tracee left. */
	signal_adopted(l, SIGTERM);
}

static void kill_all(struct launch *l)
{
	for (size_t i = 0; i < l->n_agents; i++) {
		if (l->agents[i].pid > 0) {
			say("agent %s (pid %d) ignored SIGTERM; killing it",
			    l->agents[i].cmd.argv[0], (int)l->agents[i].pid);
			signal_agent(&l->agents[i], SIGKILL);
		}
	}
	if (l->tracer_pid > 0 && !l->tracer_done) {
		say("tracer %s (pid %d) still runs after the app; killing it", l->tracer.argv[0],
		    (int)l->tracer_pid);
		kill(l->tracer_pid, SIGKILL);
	}
	int n = signal_adopted(l, SIGKILL);
	if (n)
		say("%d orphaned process(es) ignored SIGTERM; killed them", n);
}

/* Timers: agent restarts, policy stop escalation, shutdown escalation. Returns poll's timeout. */
static int run_timers(struct launch *l, int64_t now, bool *give_up)
{
	int64_t next = INT64_MAX;
	if (!l->shutting_down) {
		for (size_t i = 0; i < l->n_agents; i++) {
			struct agent *ag = &l->agents[i];
			if (!ag->pid && ag->restart_ms && ag->restart_ms <= now)
				start_agent(l, ag, now);
			if (!ag->pid && ag->restart_ms && ag->restart_ms < next)
				next = ag->restart_ms;
		}
	}
	if (l->stop_ms && !l->app_done) {
		if (l->stop_ms <= now) {
			say("the app (pid %d) ignored SIGTERM; killing it", (int)l->app_pid);
			if (l->app_pid > 0)
				kill(l->app_pid, SIGKILL);
			l->stop_ms = 0;
		} else if (l->stop_ms < next) {
			next = l->stop_ms;
		}
	}
	if (l->shutting_down) {
		if (l->shutdown_ms <= now) {
			if (l->killed) {
				*give_up = true;
				return 0;
			}
			kill_all(l);
			l->killed = true;
			l->shutdown_ms = now + KILL_WAIT_MS;
		}
		if (l->shutdown_ms < next)
			next = l->shutdown_ms;
	}
	if (l->waiting && now + WAIT_POLL_MS < next)
		next = now + WAIT_POLL_MS;
	if (next == INT64_MAX)
		return -1;
	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

/*
 * The shim: started by the tracer as "SELF --shim-status-fd FD -- APP...". It forks the app so
 * that the app's real parent can tell its status, reports pid and status through FD and exits
 * with the same status. All signals stay blocked here, so a terminal's ^C cannot take the
 * reporter down before the app.
 */
static int shim_main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--") != 0)
		usage("bad internal shim invocation");
	char *end;
	errno = 0;
	long fd = strtol(argv[2], &end, 10);
	if (errno || end == argv[2] || *end || fd < 0 || fd > INT_MAX)
		usage("bad internal shim invocation");
	int wfd = (int)fd;
	fcntl(wfd, F_SETFD, FD_CLOEXEC);
	sigset_t all, orig;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &orig);
	pid_t pid = fork();
	if (pid == 0)
		exec_or_die(&argv[4], &orig);
	if (pid < 0) {
		say("cannot start %s: %s", argv[4], strerror(errno));
		return EXIT_INTERNAL;
	}
	struct shim_msg m = { 'P', (int32_t)pid };
	if (write(wfd, &m, sizeof m) != (ssize_t)sizeof m)
		say("cannot report the app's pid: %s", strerror(errno));
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			say("cannot wait for the app: %s", strerror(errno));
			return EXIT_INTERNAL;
		}
	}
	m.kind = 'S';
	m.value = (int32_t)status;
	if (write(wfd, &m, sizeof m) != (ssize_t)sizeof m)
		say("cannot report the app's status: %s", strerror(errno));
	return exit_code(status);
}

/*
 * --detach: the caller (often a `kubectl exec` session, which lasts as long as any process holds
 * its output open) gets back control once the app was executed; the supervisor goes on in a new
 * session with its output in the log, a child subreaper for everything it starts. The parent
 * learns the outcome through a close-on-exec pipe: the supervisor writes a zero once the app is
 * started (or held by --wait-for) and closes its end; a child that cannot exec the app writes its
 * errno; the exec closes the app's end. Nothing read at all: the supervisor died first.
 */
static void detach(struct launch *l)
{
	int hs[2];
	if (pipe2(hs, O_CLOEXEC) < 0) {
		say("cannot create a pipe: %s", strerror(errno));
		_exit(EXIT_INTERNAL);
	}
	int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t pid = fork();
	if (pid < 0) {
		say("cannot fork: %s", strerror(errno));
		_exit(EXIT_INTERNAL);
	}
	if (pid > 0) {
		close(hs[1]);
		bool started = false;
		int32_t code;
		for (;;) {
			ssize_t n = read(hs[0], &code, sizeof code);
			if (n < 0 && errno == EINTR)
				continue;
			if (n != (ssize_t)sizeof code)
				break;
			if (code != 0) {
				say("cannot execute %s: %s",
				    l->tracer.argc ? l->tracer.argv[0] : l->app[0], strerror(code));
				_exit(code == ENOENT ? 127 : 126);
			}
			started = true;
		}
		if (!started) {
			int status;
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
			}
			_exit(exit_code(status));
		}
		char buf[24];
		int len = snprintf(buf, sizeof buf, "%d\n", (int)pid);
		_exit(write(STDOUT_FILENO, buf, (size_t)len) == len ? 0 : EXIT_INTERNAL);
	}
	close(hs[0]);
	setsid();
	if (l->root && (chroot(l->root) < 0 || chdir("/") < 0)) {
		say("cannot change root to %s: %s", l->root, strerror(errno));
		_exit(EXIT_INTERNAL);
	}
	int logfd = open(l->detach_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0) {
		say("cannot open %s: %s", l->detach_log, strerror(errno));
		_exit(EXIT_INTERNAL);
	}
	if (nullfd >= 0) {
		dup2(nullfd, STDIN_FILENO);
		close(nullfd);
	}
	dup2(logfd, STDOUT_FILENO);
	dup2(logfd, STDERR_FILENO);
	close(logfd);
	g_report_fd = hs[1];
}

/* --detach: the app was started (or is held): tell the waiting parent, then let it go. */
static void detach_done(void)
{
	if (g_report_fd < 0)
		return;
	int32_t zero = 0;
	if (write(g_report_fd, &zero, sizeof zero) < 0) {
		/* the parent then reports the supervisor as gone; nothing else to do */
	}
	close(g_report_fd);
	g_report_fd = -1;
}

static void find_self(struct launch *l, const char *argv0)
{
	ssize_t n = readlink("/proc/self/exe", l->self, sizeof l->self - 1);
	if (n > 0) {
		l->self[n] = '\0';
		return;
	}
	if (strchr(argv0, '/') && strlen(argv0) < sizeof l->self) {
		memcpy(l->self, argv0, strlen(argv0) + 1);
		return;
	}
	say("cannot find this program's own path (is /proc mounted?)");
	_exit(EXIT_INTERNAL);
}

int main(int argc, char **argv)
{
	static struct launch l;
	const char *dbg = getenv("KILT_DEBUG");
	g_debug = dbg && *dbg && strcmp(dbg, "0") != 0;

	if (argc >= 2 && strcmp(argv[1], SHIM_OPTION) == 0)
		return shim_main(argc, argv);

	l.status_fd = -1;
	l.wait_timeout_s = -1;
	parse_args(&l, argc, argv);
	if (!l.wait_path && (l.wait_timeout_s > 0 || l.on_timeout != ON_TIMEOUT_UNSET))
		usage("--wait-timeout and --on-timeout need --wait-for");
	if (l.root && !l.detach_log)
		usage("--root needs --detach");
	if (l.wait_timeout_s < 0)
		l.wait_timeout_s = WAIT_DEFAULT_S;
	if (l.detach_log)
		detach(&l);
	for (size_t i = 0; i < l.n_agents; i++)
		l.agents[i].backoff_ms = BACKOFF_MIN_MS;
	if (l.tracer.argc)
		find_self(&l, argv[0]);

	/* Every signal that can be caught and is not a fault of our own goes through signalfd. */
	sigset_t set;
	sigfillset(&set);
	static const int own[] = { SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,
				   SIGILL,  SIGFPE,  SIGTRAP, SIGSYS };
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
		sigdelset(&set, own[i]);
	sigemptyset(&l.pending);
	if (sigprocmask(SIG_BLOCK, &set, &l.orig_mask) < 0) {
		say("sigprocmask: %s", strerror(errno));
		return EXIT_INTERNAL;
	}
	l.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (l.sfd < 0) {
		say("signalfd: %s", strerror(errno));
		return EXIT_INTERNAL;
	}
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		say("cannot become a child subreaper (%s); orphans will not be reaped",
		    strerror(errno));

	int64_t now = now_ms();
	for (size_t i = 0; i < l.n_agents; i++)
		start_agent(&l, &l.agents[i], now);
	if (l.wait_path) {
		debug("holding the app until %s exists (at most %d s)", l.wait_path,
		      l.wait_timeout_s);
		l.waiting = true;
		l.wait_deadline_ms = now + (int64_t)l.wait_timeout_s * 1000;
	} else {
		start_app(&l);
	}
	detach_done();

	for (;;) {
		now = now_ms();
		check_wait(&l, now);
		check_tracer_fallback(&l);
		if (l.app_done && !l.shutting_down)
			begin_shutdown(&l, now);
		if (l.shutting_down && !children_alive(&l))
			break;
		bool give_up = false;
		int timeout = run_timers(&l, now, &give_up);
		if (give_up)
			break;
		struct pollfd p[2] = { { .fd = l.sfd, .events = POLLIN },
				       { .fd = l.status_fd, .events = POLLIN } };
		int r = poll(p, l.status_fd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno != EINTR) {
			say("poll: %s", strerror(errno));
			return EXIT_INTERNAL;
		}
		now = now_ms();
		if (r > 0 && p[0].revents)
			drain_signals(&l, now);
		if (r > 0 && l.status_fd >= 0 && p[1].revents)
			(void)read_status(&l);
	}
	debug("exiting with the app's status %d", l.app_code);
	return l.app_code;
}
