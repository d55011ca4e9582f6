/* SPDX-License-Identifier: Apache-2.0 */
/* kilt exec: the shell script that applies a plan inside a container, and the tar stream it reads
 * (kilt-exec.h). The script is POSIX sh with the tools of busybox and coreutils (tar, mkdir, mv,
 * chmod, chown, rm, kill); every value in it is single-quoted, so nothing from a recipe or a pod
 * is ever parsed by the shell. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "kilt-exec.h"

#define TAR_BLOCK 512
#define TAR_MAX_TOTAL ((size_t)1 << 31)

/* ---- the tar stream -------------------------------------------------------------------------- */

static void octal(char *field, size_t width, unsigned long long v)
{
	/* width - 1 digits and a NUL, as ustar writes them */
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(width - 1), v);
	memcpy(field, tmp, width - 1);
	field[width - 1] = '\0';
}

int kilt_tar_build(const struct kilt_tar_file *files, size_t n, char **ret, size_t *ret_len,
		   struct kilt_error *err)
{
	size_t total = 2 * TAR_BLOCK;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(files[i].name);
		if (!nl || nl > 99 || files[i].name[0] == '/')
			return kilt_error_setf(err, -EINVAL,
					       "tar: '%s' is not a short relative name",
					       files[i].name);
		if (files[i].len > TAR_MAX_TOTAL ||
		    total > TAR_MAX_TOTAL - files[i].len - 2 * TAR_BLOCK)
			return kilt_error_setf(err, -EFBIG, "tar: more than 2 GiB to upload");
		total += TAR_BLOCK + (files[i].len + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
	}
	char *buf = xcalloc(1, total);
	char *p = buf;
	for (size_t i = 0; i < n; i++) {
		char *h = p;
		memcpy(h, files[i].name, strlen(files[i].name));
		octal(h + 100, 8, files[i].mode & 07777);
		octal(h + 108, 8, files[i].uid & 07777777);
		octal(h + 116, 8, files[i].gid & 07777777);
		octal(h + 124, 12, files[i].len);
		octal(h + 136, 12, 0);
		h[156] = '0';
		memcpy(h + 257, "ustar", 6);
		memcpy(h + 263, "00", 2);
		memset(h + 148, ' ', 8);
		unsigned sum = 0;
		for (size_t k = 0; k < TAR_BLOCK; k++)
			sum += (unsigned char)h[k];
		char ck[8];
		snprintf(ck, sizeof(ck), "%06o", sum);
		memcpy(h + 148, ck, 7); /* six digits, NUL, and the space already there */
		p += TAR_BLOCK;
		if (files[i].len)
			memcpy(p, files[i].data, files[i].len);
		p += (files[i].len + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
	}
	*ret = buf;
	*ret_len = total;
	return 0;
}

/* ---- the script ------------------------------------------------------------------------------ */

/* Appends s single-quoted: 'it'\''s'. */
static void sq(struct kbuf *b, const char *s)
{
	kbuf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			kbuf_adds(b, "'\\''");
		else
			kbuf_addc(b, *s);
	}
	kbuf_addc(b, '\'');
}

static const char prelude[] =
	"set -f\n"
	"say() { printf 'kilt-exec: %s\\n' \"$*\"; }\n"
	/* a pid from the marker is one of ours only while it is a kilt-launch (pids are reused) */
	"ours() { c=; read -r c 2>/dev/null < \"/proc/$1/comm\"; [ \"$c\" = kilt-launch ]; }\n"
	"alive() { ours \"$1\" && read -r _ _ st _ < \"/proc/$1/stat\" && [ \"$st\" != Z ]; }\n"
	"M=\"$R$D/marker\"\n"
	"S=\"$R$D/.stage.$$\"\n"
	"k=0\n"
	"pids=\n"
	/* the marker: three lines, the recipe's hash, its name, the supervisors' pids */
	"if [ -f \"$M\" ]; then\n"
	"  mh=; mn=; mp=\n"
	"  { read -r mh; read -r mn; read -r mp; } < \"$M\"\n"
	"  if [ \"$mh\" = \"$H\" ]; then\n"
	"    ok=1; for p in $mp; do alive \"$p\" || ok=0; done\n"
	"    if [ $ok = 1 ]; then say unchanged \"$mn\" \"$mh\"; exit 0; fi\n"
	"    say stale\n"
	"  elif [ \"$F\" != 1 ]; then\n"
	"    say other \"$mn\" \"$mh\"; exit 3\n"
	"  fi\n"
	"  for p in $mp; do ours \"$p\" && kill \"$p\" 2>/dev/null; done\n"
	"  say stopped $mp\n"
	"  rm -f \"$M\"\n"
	"fi\n"
	"for t in tar cat mkdir mv chmod chown rm kill; do\n"
	"  command -v $t >/dev/null 2>&1 || { say failed tools \"no $t in the container: use "
	"--strategy $OTHER\"; exit 4; }\n"
	"done\n"
	/* kilt sends the tar once told "ready"; whatever is left of it is read before exiting */
	"drain() { [ -z \"$ready\" ] || cat >/dev/null 2>&1; ready=; }\n"
	"fail() {\n"
	"  say failed \"$1\" \"$2\"\n"
	"  drain\n"
	"  for p in $pids; do kill \"$p\" 2>/dev/null; done\n"
	"  undo\n"
	"  rm -rf \"$S\"\n"
	"  say rolledback\n"
	"  exit 5\n"
	"}\n"
	"place() {\n"
	"  k=$((k + 1))\n"
	"  t=\"$R$2\"; d=\"${t%/*}\"; [ -n \"$d\" ] || d=/\n"
	"  e=$(mkdir -p \"$d\" 2>&1 && mv -f \"$S/$1\" \"$t\" 2>&1 && chmod \"$3\" \"$t\" 2>&1) "
	"|| fail place \"$2: $e\"\n"
	"  if [ \"$4\" != - ]; then e=$(chown \"$4:$5\" \"$t\" 2>&1) || fail owner \"$2: $e\"; fi\n"
	"}\n"
	"start() {\n"
	"  l=$1; shift\n"
	"  p=$(\"$LAUNCH\" --detach \"$l\" $ROOTOPT -- \"$@\" 2>&1) || fail start \"$1: $p\"\n"
	"  pids=\"$pids $p\"\n"
	"}\n";

static void undo_line(struct kbuf *b, size_t k, const char *as)
{
	kbuf_printf(b, "  [ \"$k\" -ge %zu ] && rm -f \"$R\"", k);
	sq(b, as);
	kbuf_adds(b, "\n");
}

char *kilt_exec_script(const json_t *plan)
{
	struct kbuf b;
	kbuf_init(&b, (size_t)1 << 26);
	const char *root = json_string_value(json_object_get(plan, "root"));
	const char *dir = json_string_value(json_object_get(plan, "dir"));
	const json_t *recipe = json_object_get(plan, "recipe");
	const char *strategy = json_string_value(json_object_get(plan, "strategy"));
	bool debug = strategy && strcmp(strategy, "debug") == 0;
	const json_t *launcher = json_object_get(plan, "launcher");
	const json_t *uploads = json_object_get(plan, "uploads");
	const json_t *programs = json_object_get(plan, "programs");
	const char *hash = json_string_value(json_object_get(recipe, "hash"));

#define VAR(name, value)                                                                           \
	do {                                                                                       \
		kbuf_adds(&b, name "=");                                                           \
		sq(&b, (value) ? (value) : "");                                                    \
		kbuf_adds(&b, "\n");                                                               \
	} while (0)
	VAR("R", root);
	VAR("D", dir);
	VAR("H", hash);
	VAR("N", json_string_value(json_object_get(recipe, "name")));
	VAR("F", json_is_true(json_object_get(plan, "force")) ? "1" : "0");
	VAR("OTHER", debug ? "exec" : "debug");
	VAR("LAUNCH", json_string_value(json_object_get(plan, "launch")));
	if (debug)
		kbuf_adds(&b, "ROOTOPT=\"--root $R\"\n");
	else
		kbuf_adds(&b, "ROOTOPT=\n");
	kbuf_adds(&b, prelude);
	if (!debug)
		kbuf_adds(&b, "LAUNCH=\"$R$LAUNCH\"\n");

	/* what a failure undoes: every file placed so far */
	kbuf_adds(&b, "undo() {\n  :\n");
	size_t i, k = 0;
	const json_t *u;
	json_array_foreach (uploads, i, u) {
		undo_line(&b, ++k, json_string_value(json_object_get(u, "as")));
	}
	if (json_is_object(launcher))
		undo_line(&b, ++k, json_string_value(json_object_get(launcher, "as")));
	kbuf_adds(&b, "}\n");

	kbuf_adds(&b, "e=$(mkdir -p \"$S\" 2>&1) || fail stage \"$e\"\n"
		      "say ready; ready=1\n"
		      "e=$(tar -x -f - -C \"$S\" 2>&1) || fail upload \"$e\"\n"
		      "drain\n");
	json_array_foreach (uploads, i, u) {
		char member[32], mode[16], uid[24], gid[24];
		snprintf(member, sizeof(member), "%zu", i);
		snprintf(mode, sizeof(mode), "%04llo",
			 (unsigned long long)json_integer_value(json_object_get(u, "mode")));
		snprintf(uid, sizeof(uid), "%lld",
			 (long long)json_integer_value(json_object_get(u, "uid")));
		snprintf(gid, sizeof(gid), "%lld",
			 (long long)json_integer_value(json_object_get(u, "gid")));
		kbuf_printf(&b, "place %s ", member);
		sq(&b, json_string_value(json_object_get(u, "as")));
		kbuf_printf(&b, " %s %s %s\n", mode, uid, gid);
	}
	if (json_is_object(launcher)) {
		kbuf_adds(&b, "place L ");
		sq(&b, json_string_value(json_object_get(launcher, "as")));
		kbuf_adds(&b, " 0755 - -\n");
	}
	const json_t *argv;
	json_array_foreach (programs, i, argv) {
		char log[1200];
		snprintf(log, sizeof(log), "%s/%.10s.%zu.log", dir, hash ? hash : "", i);
		kbuf_adds(&b, "start ");
		sq(&b, log);
		size_t j;
		const json_t *w;
		json_array_foreach (argv, j, w) {
			kbuf_addc(&b, ' ');
			sq(&b, json_string_value(w));
		}
		kbuf_adds(&b, "\n");
	}
	kbuf_adds(
		&b,
		"for p in $pids; do alive \"$p\" || fail verify \"the program with supervisor "
		"pid $p is not running (see its log under $D)\"; done\n"
		"e=$({ printf '%s\\n%s\\n%s\\n' \"$H\" \"$N\" \"${pids# }\" > \"$M.tmp\" && mv -f "
		"\"$M.tmp\" \"$M\"; } 2>&1) || fail marker \"$e\"\n"
		"rm -rf \"$S\"\n"
		"say done $pids\n");
#undef VAR
	return kbuf_steal(&b);
}
