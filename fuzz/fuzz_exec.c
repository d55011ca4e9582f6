/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: what kilt exec reads from kubectl and from the container (both untrusted): the
 * pod and node JSON, each container planned with both strategies and its steps and script
 * written, the script's report, kubectl's error text and the pod annotation. */
#include <stdint.h>

#include "internal.h"
#include "kilt-exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kilt_recipe *the_recipe(void)
{
	static struct kilt_recipe *r;
	if (!r) {
		static const char text[] =
			"patch { upload: [ { text: ${original.name}, as: /etc/kilt/name }\n"
			"                  { url: \"http://127.0.0.1:9/a\", sha256: "
			"\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", "
			"as: /opt/a } ]\n"
			"  background_exec: [ \"/opt/a -p 1\" ] }\n";
		if (kilt_recipe_load_string(text, sizeof(text) - 1, "fuzz", &r, NULL) < 0)
			abort();
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_t *pods = NULL, *nodes = NULL;
	struct kilt_error err = { 0 };
	if (kilt_exec_pods_parse(text, size, &pods, &nodes, &err) == 0) {
		if (!json_is_array(pods) || !json_is_object(nodes))
			abort();
		json_t *launchers = json_pack("{s:s, s:s}", "amd64", "/a", "arm64", "/b");
		size_t i;
		const json_t *pod;
		json_array_foreach (pods, i, pod) {
			size_t k;
			const json_t *c;
			json_array_foreach (json_object_get(pod, "containers"), k, c) {
				for (int s = 0; s < 2; s++) {
					struct kilt_exec_options o = {
						.strategy = s ? KILT_EXEC_DEBUG : KILT_EXEC_EXEC,
						.launchers = launchers,
						.debug_image = "img",
					};
					json_t *plan = NULL;
					const char *name =
						json_string_value(json_object_get(c, "name"));
					if (kilt_exec_plan(the_recipe(), pod, nodes, name, &o,
							   &plan, &err) < 0)
						continue;
					json_decref(kilt_exec_steps(plan));
					free(kilt_exec_script(plan));
					/* the annotations kilt would write prove the recipe is
					 * there, when the pod names the container's instance */
					char *v = kilt_exec_annotation_value(plan);
					char *a = kilt_exec_annotation(NULL, name, v);
					char d[17] = "";
					bool expect = kilt_exec_instance_digest(pod, plan, d);
					json_t *p2 = json_deep_copy(pod);
					json_t *ann = json_object_get(p2, "annotations");
					json_object_set_new(ann, "kilt.dev/exec", json_string(a));
					json_object_set_new(ann, KILT_EXEC_INSTANCES,
							    json_string(d));
					char dname[32];
					snprintf(dname, sizeof(dname), "kilt-%.10s",
						 json_string_value(json_object_get(
							 json_object_get(plan, "recipe"), "hash")));
					const json_t *e = NULL, *x;
					size_t j;
					json_array_foreach (json_object_get(pod, "ephemeral"), j,
							    x) {
						if (!e && strcmp(json_string_value(json_object_get(
									 x, "name")),
								 dname) == 0)
							e = x;
					}
					if (e && !json_is_true(json_object_get(e, "running")))
						expect = false;
					if (!e && json_is_object(json_object_get(plan, "debug")))
						expect = false;
					if (kilt_exec_annotated(p2, plan) != expect)
						abort();
					(void)kilt_exec_annotated(pod, plan);
					json_decref(p2);
					free(a);
					free(v);
					json_decref(plan);
				}
			}
			const char *ann = json_string_value(json_object_get(
				json_object_get(pod, "annotations"), "kilt.dev/exec"));
			free(kilt_exec_annotation(ann, "app", "r h"));
			free(kilt_exec_annotation_get(ann, "app"));
		}
		json_decref(launchers);
		json_decref(pods);
		json_decref(nodes);
	}
	json_t *res = NULL;
	if (kilt_exec_result_parse(text, size, &res, NULL) < 0 ||
	    !json_is_string(json_object_get(res, "state")))
		abort();
	json_decref(res);
	char buf[256];
	kilt_exec_failure_explain(text, size, "exec", buf, sizeof(buf));
	if (strlen(buf) >= sizeof(buf))
		abort();
	return 0;
}
