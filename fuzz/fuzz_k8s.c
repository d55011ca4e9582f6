/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the Kubernetes object walker and engine: the input is a manifest stream (YAML
 * or JSON, one or more documents). Checks, for whatever parses:
 *  - every pod the walker reports sits at its JSON Pointer inside its document;
 *  - injecting gives a patch; injecting the result again changes nothing (empty patches);
 *  - removing the injection gives back the input (when the input held no kilt status);
 *  - the webhook's door (kilt_k8s_mutate) on each Pod document succeeds or fails cleanly, and
 *    answers the same for the pod in a review decoded as the webhook decodes one (env entries
 *    read when first needed) and decoded whole;
 *  - every step answers the same with the options' kilt_k8s_prepared (one for the whole run of
 *    the fuzzer, so that a piece a step changed would show in a later input's answers). */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

static const char RECIPE[] =
	"deploy {\n"
	"  entrypoint: [ /kilt/bin/kilt-launch, \"--\" ] ${original.entrypoint}\n"
	"  command: ${original.command}\n"
	"  mount: [ { name: kilt-agent, image: \"example/agent:1\", volumes: [ /kilt, /opt/x ] } "
	"]\n"
	"  environment: { META: \"image=\"${original.image} }\n"
	"  capabilities: [ SYS_PTRACE ]\n"
	"}\n";

static struct kilt_recipe *recipe(void)
{
	static struct kilt_recipe *r;
	if (!r && kilt_recipe_load_string(RECIPE, sizeof(RECIPE) - 1, "fuzz", &r, NULL) < 0)
		abort();
	return r;
}

/* `o` with the pieces kept for its options (made once, kept for the whole run). */
static struct kilt_k8s_options prepared(const struct kilt_k8s_options *o)
{
	static struct kilt_k8s_prepared *pp;
	if (!pp)
		pp = kilt_k8s_prepared_new(o);
	struct kilt_k8s_options op = *o;
	op.prepared = pp;
	return op;
}

/* Resolves an RFC 6901 pointer made of plain keys and indices (what the walker writes). */
static json_t *resolve(json_t *doc, const char *ptr)
{
	json_t *cur = doc;
	while (cur && *ptr == '/') {
		ptr++;
		size_t n = strcspn(ptr, "/");
		char key[256];
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, ptr, n);
		key[n] = '\0';
		ptr += n;
		if (json_is_array(cur)) {
			char *end;
			unsigned long i = strtoul(key, &end, 10);
			cur = *end ? NULL : json_array_get(cur, i);
		} else {
			cur = json_object_get(cur, key);
		}
	}
	return *ptr ? NULL : cur;
}

static json_t *docs_of;

static int check_ref(const struct kilt_k8s_pod_ref *ref, void *userdata)
{
	(void)userdata;
	json_t *doc = json_is_array(docs_of) ? json_array_get(docs_of, ref->document) : docs_of;
	if (!ref->kind || !ref->pointer || !ref->workload)
		abort();
	if (!ref->problem && resolve(doc, ref->pointer) != ref->pod)
		abort(); /* the walker's pointer does not lead to the pod it reported */
	if (!ref->problem && !json_is_object(json_object_get(ref->pod, "spec")))
		abort();
	return 0;
}

static bool all_empty(const json_t *patches)
{
	size_t i;
	json_t *p;
	json_array_foreach (patches, i, p) {
		if (json_array_size(p))
			return false;
	}
	return true;
}

/* The answer of the webhook's door for `rv`'s pod (its patch and warnings as text), with the
 * review's env lists; NULL when the engine fails. */
static char *review_answer(struct kilt_admission_review *rv, const struct kilt_k8s_namespace *ns,
			   const struct kilt_k8s_options *o)
{
	struct kilt_k8s_options ol = *o;
	ol.env_lists = rv->env_lists;
	ol.patch_as_text = true;
	struct kilt_k8s_result res;
	kilt_k8s_result_init(&res);
	struct kilt_error err = { 0 };
	if (kilt_k8s_mutate_owned(json_incref((json_t *)(uintptr_t)rv->object), ns, &ol, &res,
				  &err) != 0)
		return NULL;
	char *warnings = kilt_json_dumps(res.warnings, JSON_COMPACT);
	char *text = xasprintf("%s %s", res.patch_text, warnings ? warnings : "");
	free(warnings);
	kilt_k8s_result_done(&res);
	return text;
}

/* Pod `pod` in an AdmissionReview, decoded as the webhook decodes one (what kilt never reads
 * left out, env entries read when first needed) and decoded whole: the same answer. */
static void check_review_door(const json_t *pod, const struct kilt_k8s_namespace *ns,
			      const struct kilt_k8s_options *o)
{
	json_t *review = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s,s:s},s:s,s:s,s:O}}", "apiVersion",
				   "admission.k8s.io/v1", "kind", "AdmissionReview", "request",
				   "uid", "u", "kind", "group", "", "version", "v1", "kind", "Pod",
				   "namespace", ns->name, "operation", "CREATE", "object", pod);
	char *text = review ? kilt_json_dumps(review, JSON_COMPACT) : NULL;
	json_decref(review);
	struct kilt_admission_review rv = { 0 }, whole = { 0 };
	struct kilt_error err = { 0 };
	if (text && kilt_admission_review_parse(text, strlen(text), &rv, &err) == 0) {
		if (kilt_admission_review_parse_whole(text, strlen(text), &whole, &err) != 0)
			abort(); /* (a duplicate key cannot be in what jansson wrote) */
		char *a = review_answer(&rv, ns, o), *b = review_answer(&whole, ns, o);
		if (!a != !b || (a && strcmp(a, b) != 0))
			abort();
		/* (each answer patched its review's pod: a review decoded again) */
		struct kilt_admission_review again = { 0 };
		if (kilt_admission_review_parse(text, strlen(text), &again, &err) != 0)
			abort();
		struct kilt_k8s_options op = prepared(o);
		char *c = review_answer(&again, ns, &op);
		if (!a != !c || (a && strcmp(a, c) != 0))
			abort(); /* the kept pieces give another answer */
		kilt_admission_review_done(&again);
		free(a);
		free(b);
		free(c);
		kilt_admission_review_done(&rv);
		kilt_admission_review_done(&whole);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *docs = NULL;
	struct kilt_error err = { 0 };
	if (kilt_yaml_load((const char *)data, size, "fuzz", KILT_YAML_MULTI, NULL, &docs, &err) <
	    0)
		return 0;
	docs_of = docs;
	(void)kilt_k8s_walk(docs, check_ref, NULL, &err);
	bool had_status = memmem(data, size, "kilt.dev/status", 15) != NULL;
	struct kilt_k8s_recipe kr = { .name = "fuzz", .recipe = recipe() };
	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.recipes = &kr;
	o.n_recipes = 1;
	json_t *orig = json_deep_copy(docs);
	/* the same steps on a copy with the kept pieces: the same documents and patches */
	struct kilt_k8s_options op = prepared(&o);
	json_t *pdocs = json_deep_copy(docs);
	json_t *patches = NULL, *ppatches = NULL;
	struct kilt_report rep;
	kilt_report_init(&rep);
	int r = kilt_k8s_inject(docs, NULL, &o, &rep, &patches, &err);
	if (kilt_k8s_inject(pdocs, NULL, &op, &rep, &ppatches, &err) != r ||
	    !json_equal(docs, pdocs) || (r == 0 && !json_equal(patches, ppatches)))
		abort();
	if (r == 0) {
		json_t *again = NULL, *pagain = NULL;
		if (kilt_k8s_inject(docs, NULL, &o, &rep, &again, &err) != 0 ||
		    kilt_k8s_inject(pdocs, NULL, &op, &rep, &pagain, &err) != 0)
			abort(); /* what kilt wrote, kilt must read */
		if (!had_status && !all_empty(again))
			abort(); /* applying twice differs from once */
		if (!json_equal(docs, pdocs) || !json_equal(again, pagain))
			abort();
		json_decref(again);
		json_decref(pagain);
		json_t *removed = NULL, *premoved = NULL;
		if (kilt_k8s_remove(docs, &o, &rep, &removed, &err) != 0 ||
		    kilt_k8s_remove(pdocs, &op, &rep, &premoved, &err) != 0)
			abort();
		if (!had_status && !json_equal(docs, orig))
			abort(); /* removal does not restore the input */
		if (!json_equal(docs, pdocs) || !json_equal(removed, premoved))
			abort();
		json_decref(removed);
		json_decref(premoved);
	} else if (!json_equal(docs, orig)) {
		abort(); /* a failed run must leave the documents as they were */
	}
	json_decref(pdocs);
	kilt_report_done(&rep);
	json_decref(patches);
	json_decref(ppatches);
	size_t i;
	json_t *d;
	json_array_foreach (orig, i, d) {
		if (!json_is_object(d) || !json_is_string(json_object_get(d, "kind")) ||
		    strcmp(json_string_value(json_object_get(d, "kind")), "Pod") != 0)
			continue;
		struct kilt_k8s_result res;
		kilt_k8s_result_init(&res);
		struct kilt_k8s_namespace ns = { .name = "fuzz" };
		check_review_door(d, &ns, &o);
		if (kilt_k8s_mutate(d, &ns, &o, &res, &err) == 0) {
			if (!json_is_array(res.patch) || !json_is_object(res.pod) ||
			    !json_is_array(res.warnings))
				abort();
			/* the webhook's form of the patch, its text, is the same bytes */
			char *want = kilt_json_dumps(res.patch, JSON_COMPACT);
			struct kilt_k8s_options ot = o;
			ot.patch_as_text = true;
			struct kilt_k8s_result rt;
			kilt_k8s_result_init(&rt);
			int rr = kilt_k8s_mutate(d, &ns, &ot, &rt, &err);
			if (want &&
			    (rr != 0 || rt.patch || !rt.patch_text ||
			     strcmp(rt.patch_text, want) != 0 || rt.patch_len != strlen(want) ||
			     rt.patch_ops != json_array_size(res.patch)))
				abort();
			if (!want && rr == 0)
				abort(); /* the values cannot be written, but the text was */
			free(want);
			kilt_k8s_result_done(&rt);
			kilt_k8s_result_done(&res);
		}
	}
	json_decref(orig);
	json_decref(docs);
	return 0;
}
