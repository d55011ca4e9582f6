/* SPDX-License-Identifier: Apache-2.0 */
/* The report every engine fills: one decision per workload and container, with a reason a user
 * can act on, its totals and its JSON form (kilt-plan.h). */
#include "internal.h"
#include "kilt.h"

void kilt_report_init(struct kilt_report *report)
{
	*report = (struct kilt_report){ 0 };
}

void kilt_report_done(struct kilt_report *report)
{
	if (!report)
		return;
	for (size_t i = 0; i < report->n_decisions; i++) {
		free(report->decisions[i].task);
		free(report->decisions[i].container);
		free(report->decisions[i].reason);
	}
	free(report->decisions);
	kilt_report_init(report);
}

const char *kilt_verdict_name(enum kilt_verdict verdict)
{
	switch (verdict) {
	case KILT_PATCHED:
		return "patched";
	case KILT_UNCHANGED:
		return "unchanged";
	case KILT_SKIPPED:
		return "skipped";
	case KILT_REMOVED:
		return "removed";
	}
	return "unknown";
}

json_t *kilt_report_to_json(const struct kilt_report *report)
{
	json_t *list = json_array();
	for (size_t i = 0; i < report->n_decisions; i++) {
		const struct kilt_decision *d = &report->decisions[i];
		json_t *o = json_pack("{ss}", "task", d->task);
		if (d->container)
			json_object_set_new(o, "container", json_string(d->container));
		json_object_set_new(o, "decision", json_string(kilt_verdict_name(d->verdict)));
		json_object_set_new(o, "reason", json_string(d->reason));
		if (d->warning)
			json_object_set_new(o, "warning", json_true());
		json_array_append_new(list, o);
	}
	return json_pack("{sssosIsIsIsIsI}", "input", report->input ? report->input : "auto",
			 "decisions", list, "patched", (json_int_t)report->n_patched, "unchanged",
			 (json_int_t)report->n_unchanged, "skipped", (json_int_t)report->n_skipped,
			 "removed", (json_int_t)report->n_removed, "warnings",
			 (json_int_t)report->n_warnings);
}

/* Text cut to a buffer (a name or value inside a reason) may end inside a UTF-8 character: such
 * bytes are dropped, or the reason could not go into JSON. Owned. */
static char *reason_dup(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *out = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		size_t n = kilt_utf8_valid_prefix((const unsigned char *)s + i, len - i);
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* Room for `more` decisions (doubling: a run adds thousands, one at a time). */
static void reserve(struct kilt_report *r, size_t more)
{
	if (r->n_decisions + more <= r->cap)
		return;
	size_t cap = r->cap ? r->cap * 2 : 16;
	while (cap < r->n_decisions + more)
		cap *= 2;
	r->decisions = xrealloc(r->decisions, cap * sizeof(*r->decisions));
	r->cap = cap;
}

size_t kilt_report_add(struct kilt_report *r, const char *task, const char *container,
		       enum kilt_verdict verdict, bool warning, const char *reason)
{
	reserve(r, 1);
	r->decisions[r->n_decisions] = (struct kilt_decision){
		.task = xstrdup(task),
		.container = container ? xstrdup(container) : NULL,
		.verdict = verdict,
		.warning = warning,
		.reason = reason_dup(reason),
	};
	return r->n_decisions++;
}

void kilt_report_set_reason(struct kilt_report *r, size_t i, const char *reason)
{
	free(r->decisions[i].reason);
	r->decisions[i].reason = reason_dup(reason);
}

void kilt_report_move(struct kilt_report *dst, struct kilt_report *src)
{
	if (src->n_decisions) {
		reserve(dst, src->n_decisions);
		memcpy(dst->decisions + dst->n_decisions, src->decisions,
		       src->n_decisions * sizeof(*src->decisions));
		dst->n_decisions += src->n_decisions;
	}
	free(src->decisions);
	kilt_report_init(src);
}

void kilt_report_tally(struct kilt_report *r)
{
	r->n_patched = r->n_unchanged = r->n_skipped = r->n_removed = r->n_warnings = 0;
	for (size_t i = 0; i < r->n_decisions; i++) {
		const struct kilt_decision *d = &r->decisions[i];
		if (d->warning)
			r->n_warnings++;
		if (!d->container)
			continue;
		switch (d->verdict) {
		case KILT_PATCHED:
			r->n_patched++;
			break;
		case KILT_UNCHANGED:
			r->n_unchanged++;
			break;
		case KILT_SKIPPED:
			r->n_skipped++;
			break;
		case KILT_REMOVED:
			r->n_removed++;
			break;
		}
	}
}
