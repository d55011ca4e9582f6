/* SPDX-License-Identifier: Apache-2.0 */
/* Splits a command line into argv words the way a POSIX shell tokenizes it (quotes, backslashes,
 * comments), without running a shell and without any expansion. Used for recipe programs given as
 * one string (`background_exec`, original kilt's `exec[].run`, string entrypoints). */
#include "internal.h"
#include "kilt.h"

#define MAX_WORDS 4096u

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Characters a shell reads as operators when unquoted; we do not run a shell, so a recipe that
 * writes them unquoted almost certainly expects something that will not happen. */
static bool is_operator(char c)
{
	return c == '|' || c == '&' || c == ';' || c == '<' || c == '>' || c == '(' || c == ')';
}

static unsigned column_of(size_t i)
{
	return i + 1 > (size_t)~0u ? ~0u : (unsigned)(i + 1);
}

static int push_word(json_t *argv, const struct kbuf *w, struct kilt_error *err)
{
	if (json_array_size(argv) >= MAX_WORDS)
		return kilt_error_setf(err, -E2BIG, "more than %u words", MAX_WORDS);
	json_t *word = json_stringn(w->data ? w->data : "", w->len);
	if (!word)
		return kilt_error_setf(err, -EILSEQ, "word %zu is not valid UTF-8",
				       json_array_size(argv) + 1);
	json_array_append_new(argv, word);
	return 0;
}

int kilt_shellwords_split(const char *s, size_t len, json_t **ret, struct kilt_error *err)
{
	_cleanup_json_ json_t *argv = json_array();
	struct kbuf w;
	kbuf_init(&w, len + 1);
	bool in_word = false;
	int r = 0;
	size_t i = 0;

	/* Anywhere, quoted or escaped too: exec would cut the word at it. */
	const char *nul = memchr(s, '\0', len);
	if (nul) {
		r = kilt_error_setf(err, -EINVAL, "column %u: NUL byte in command line",
				    column_of((size_t)(nul - s)));
		goto out;
	}
	while (i < len) {
		char c = s[i];
		if (is_blank(c)) {
			if (in_word) {
				r = push_word(argv, &w, err);
				if (r < 0)
					goto out;
				w.len = 0;
				in_word = false;
			}
			i++;
			continue;
		}
		if (c == '#' && !in_word) {
			/* A comment runs to the end of the line. */
			while (i < len && s[i] != '\n')
				i++;
			continue;
		}
		if (is_operator(c)) {
			r = kilt_error_setf(err, -EINVAL,
					    "column %u: unquoted '%c': the program is not run by a "
					    "shell; quote it, or give the argv as a list",
					    column_of(i), c);
			goto out;
		}
		if (c == '\\') {
			if (i + 1 >= len) {
				r = kilt_error_setf(err, -EINVAL,
						    "column %u: command line ends with a backslash",
						    column_of(i));
				goto out;
			}
			if (s[i + 1] == '\n') {
				/* Line continuation: both characters vanish. */
				i += 2;
				continue;
			}
			kbuf_addc(&w, s[i + 1]);
			in_word = true;
			i += 2;
			continue;
		}
		if (c == '\'') {
			size_t start = i++;
			while (i < len && s[i] != '\'')
				i++;
			if (i >= len) {
				r = kilt_error_setf(err, -EINVAL,
						    "column %u: single quote is never closed",
						    column_of(start));
				goto out;
			}
			kbuf_add(&w, s + start + 1, i - start - 1);
			in_word = true;
			i++;
			continue;
		}
		if (c == '"') {
			size_t start = i++;
			for (;;) {
				if (i >= len) {
					r = kilt_error_setf(
						err, -EINVAL,
						"column %u: double quote is never closed",
						column_of(start));
					goto out;
				}
				char d = s[i];
				if (d == '"')
					break;
				if (d == '\\' && i + 1 < len) {
					char e = s[i + 1];
					/* Inside double quotes a backslash only escapes these. */
					if (e == '$' || e == '`' || e == '"' || e == '\\') {
						kbuf_addc(&w, e);
						i += 2;
						continue;
					}
					if (e == '\n') {
						i += 2;
						continue;
					}
				}
				kbuf_addc(&w, d);
				i++;
			}
			in_word = true;
			i++;
			continue;
		}
		kbuf_addc(&w, c);
		in_word = true;
		i++;
	}
	if (in_word) {
		r = push_word(argv, &w, err);
		if (r < 0)
			goto out;
	}
	*ret = steal_pointer(&argv);
out:
	kbuf_done(&w);
	return r;
}
