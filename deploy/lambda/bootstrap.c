/* SPDX-License-Identifier: Apache-2.0 */
/* The `bootstrap` of the kilt macro's Lambda zip: a tiny static program that starts the bundled
 * kilt binary through the bundled dynamic loader and libraries, so the function runs on Amazon
 * Linux 2023 (provided.al2023) without depending on any library of the host image.
 *
 *   <root>/lib/<loader> --inhibit-cache --library-path <root>/lib --argv0 kilt \
 *       <root>/bin/kilt cfn-macro [arguments...]
 *
 * <root> is the directory of this program. Built -static by deploy/lambda/package.py with -DKILT_LOADER="ld-linux-....so.N". */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KILT_LOADER
#error "define KILT_LOADER to the dynamic loader's file name"
#endif

/* The directory this program was started from: /proc/self/exe, else LAMBDA_TASK_ROOT (where
 * Lambda unpacks the zip), else argv[0]'s directory. */
static void root_dir(const char *argv0, char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	if (n > 0) {
		buf[n] = '\0';
	} else {
		const char *env = getenv("LAMBDA_TASK_ROOT");
		if (env && *env) {
			snprintf(buf, size, "%s", env);
			return;
		}
		snprintf(buf, size, "%s", argv0);
	}
	char *slash = strrchr(buf, '/');
	if (slash == buf)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(buf, size, ".");
}

int main(int argc, char **argv)
{
	char root[PATH_MAX];
	root_dir(argc > 0 ? argv[0] : "bootstrap", root, sizeof(root));
	char loader[PATH_MAX + 64], libdir[PATH_MAX + 64], kilt[PATH_MAX + 64];
	snprintf(loader, sizeof(loader), "%s/lib/%s", root, KILT_LOADER);
	snprintf(libdir, sizeof(libdir), "%s/lib", root);
	snprintf(kilt, sizeof(kilt), "%s/bin/kilt", root);

	enum { FIXED = 8 };
	if (argc < 1 || argc > 1024) {
		fputs("bootstrap: bad argument count\n", stderr);
		return 127;
	}
	static char inhibit[] = "--inhibit-cache", libpath[] = "--library-path",
		    argv0[] = "--argv0", name[] = "kilt", command[] = "cfn-macro";
	char *args[FIXED + 1024];
	int i = 0;
	args[i++] = loader;
	args[i++] = inhibit;
	args[i++] = libpath;
	args[i++] = libdir;
	args[i++] = argv0;
	args[i++] = name;
	args[i++] = kilt;
	args[i++] = command;
	for (int a = 1; a < argc; a++)
		args[i++] = argv[a];
	args[i] = NULL;
	execv(loader, args);
	fprintf(stderr, "bootstrap: cannot execute %s: %s\n", loader, strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
