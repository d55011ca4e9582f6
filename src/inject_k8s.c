/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt inject` on Kubernetes manifests: multi-document YAML or JSON in, the same format out,
 * documents in order, each pod injected by the Kubernetes engine (lib/k8s.c); image facts are
 * listed first and resolved all at once (registry, or an --image-facts file). */
#include <stdio.h>
#include <string.h>

#include "builtin_recipe.h"
#include "cli.h"
#include "fileio.h"
#include "inject_k8s.h"
#include "util.h"

#define MAX_FACTS_BYTES (8u << 20)

int inject_k8s_add_label(json_t *labels, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return -EINVAL;
	_cleanup_free_ char *key = xstrndup(kv, (size_t)(eq - kv));
	json_t *v = json_string(eq + 1);
	if (!v || json_object_set_new(labels, key, v) < 0)
		return -EINVAL;
	return 0;
}

/* Kubernetes objects name their apiVersion and kind; a cheap look before parsing spares the
 * templates of other kinds a second parse. */
static bool may_be_k8s(const char *buf, size_t len)
{
	return memmem(buf, len, "apiVersion", 10) && memmem(buf, len, "kind", 4);
}

bool inject_k8s_parse(const char *buf, size_t len, const char *name, json_t **ret_docs,
		      enum kilt_format *ret_fmt, bool *ret_single)
{
	if (!may_be_k8s(buf, len))
		return false;
	enum kilt_format fmt = kilt_yaml_detect(buf, len);
	json_t *docs = NULL;
	bool single = false;
	if (fmt == KILT_FORMAT_JSON) {
		const char *p = buf;
		size_t n = len;
		if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
			p += 3;
			n -= 3;
		}
		json_error_t jerr;
		json_t *one = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
		if (one) {
			if (!json_is_object(one)) {
				json_decref(one);
				return false;
			}
			docs = json_pack("[o]", one);
			single = true;
		}
	}
	if (!docs) {
		/* YAML, or a stream of JSON texts (which is YAML too once separated) */
		struct kilt_error err = { 0 };
		if (kilt_yaml_load(buf, len, name, KILT_YAML_MULTI, NULL, &docs, &err) < 0)
			return false;
		single = json_array_size(docs) == 1;
	}
	if (!kilt_k8s_detect(docs)) {
		json_decref(docs);
		return false;
	}
	*ret_docs = docs;
	*ret_fmt = fmt;
	*ret_single = single;
	return true;
}

static int load_recipes(const struct inject_k8s_args *a, struct kilt_recipe **recipes,
			struct kilt_k8s_recipe *kr, size_t *ret_n, struct kilt_error *err)
{
	size_t n = a->n_recipes ? a->n_recipes : 1;
	for (size_t i = 0; i < n; i++) {
		int r;
		if (a->n_recipes) {
			r = kilt_recipe_load_file(a->recipe_paths[i], &recipes[i], err);
		} else {
			size_t len = 0;
			const char *text = builtin_recipe("falco", &len);
			if (!text)
				return kilt_error_setf(err, -ENOENT,
						       "this kilt was built without the built-in "
						       "recipe; give one with -r");
			r = kilt_recipe_load_string(text, len, "falco", &recipes[i], err);
		}
		if (r < 0)
			return r;
		kr[i] = (struct kilt_k8s_recipe){ .name = kilt_recipe_name(recipes[i]),
						  .recipe = recipes[i] };
		for (size_t k = 0; k < i; k++)
			if (strcmp(kr[k].name, kr[i].name) == 0)
				return kilt_error_setf(err, -EINVAL,
						       "two recipes are named %s (the name is the "
						       "file name without its extension)",
						       kr[i].name);
	}
	*ret_n = n;
	return 0;
}

int image_facts_file_load(const char *path, json_t **ret_table, struct kilt_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = fileio_read(path, MAX_FACTS_BYTES, &text, &len, err);
	if (r < 0)
		return r;
	json_error_t jerr;
	_cleanup_json_ json_t *table = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(table))
		return kilt_error_set(err, -EINVAL, path, (unsigned)jerr.line,
				      (unsigned)jerr.column, "%s",
				      table ? "expected an object of image -> facts" : jerr.text);
	const char *image;
	json_t *facts;
	json_object_foreach (table, image, facts) {
		if (!json_is_object(facts))
			return kilt_error_set(
				err, -EINVAL, path, 0, 0,
				"%s: expected {\"entrypoint\": [..], \"command\": [..]}", image);
		/* null is how an image's config says it has no Entrypoint or Cmd: the same as [] */
		static const char *const keys[] = { "entrypoint", "command" };
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			json_t *v = json_object_get(facts, keys[k]);
			if (json_is_null(v))
				json_object_set_new(facts, keys[k], json_array());
			else if (v && !json_is_array(v))
				return kilt_error_set(
					err, -EINVAL, path, 0, 0,
					"%s: expected {\"entrypoint\": [..], \"command\": [..]} "
					"(null for none)",
					image);
		}
	}
	/* the needs' entries are keyed by normalized reference (kilt_image_needs_add): so are the
	 * file's, whatever their spelling */
	json_t *by_ref = json_object();
	json_object_foreach (table, image, facts) {
		_cleanup_free_ char *norm = NULL;
		if (kilt_imageref_normalize(image, &norm, NULL) < 0)
			norm = xstrdup(image);
		json_object_set(by_ref, norm, facts);
	}
	*ret_table = by_ref;
	return 0;
}

void image_facts_table_apply(const json_t *table, struct kilt_image_needs *needs)
{
	for (size_t i = 0; i < needs->n; i++) {
		json_t *f = json_object_get(table, needs->v[i].image);
		if (!f || needs->v[i].resolved)
			continue;
		needs->v[i].resolved = true;
		needs->v[i].rc = 0;
		needs->v[i].facts = json_incref(f);
	}
}

/* --image-facts FILE answers the listed lookups of its images for every platform. */
static int facts_from_file(const char *path, struct kilt_image_needs *needs, struct kilt_error *err)
{
	_cleanup_json_ json_t *table = NULL;
	int r = image_facts_file_load(path, &table, err);
	if (r == 0)
		image_facts_table_apply(table, needs);
	return r;
}

static int write_result(const char *out_path, const char *text, size_t len, struct kilt_error *err)
{
	_cleanup_(fileio_out_freep) struct fileio_out *out = NULL;
	int r = fileio_out_open(out_path ? out_path : "-", &out, err);
	if (r < 0)
		return r;
	int fd = fileio_out_fd(out);
	r = 0;
	while (len && r == 0) {
		ssize_t w = write(fd, text, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			r = kilt_error_setf(err, -errno, "cannot write the result: %s",
					    strerror(errno));
		else {
			text += w;
			len -= (size_t)w;
		}
	}
	return fileio_out_commit(out, r, err);
}

struct fd_sink {
	int fd;
	int error; /* the first write error (negative errno), or 0 */
};

/* Writes each piece the YAML emitter hands out (up to 64 KiB) into the descriptor. */
static int fd_write(const char *p, size_t n, void *data)
{
	struct fd_sink *k = data;
	while (n) {
		ssize_t w = write(k->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			k->error = -errno;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A file gets the YAML text in its temporary file as the emitter makes it, instead of the whole
 * text held first (which write_result writes where the output cannot be discarded). */
static int write_yaml_streamed(const char *out_path, const json_t *root, unsigned flags,
			       struct kilt_error *err)
{
	_cleanup_(fileio_out_freep) struct fileio_out *out = NULL;
	int r = fileio_out_open(out_path, &out, err);
	if (r < 0)
		return r;
	struct fd_sink k = { .fd = fileio_out_fd(out) };
	r = kilt_yaml_dump_callback(root, flags, fd_write, &k, err);
	if (k.error) /* the write error first: it is why the emitter stopped */
		r = kilt_error_setf(err, k.error, "cannot write the result: %s",
				    strerror(-k.error));
	return fileio_out_commit(out, r, err);
}

int inject_k8s(const struct inject_k8s_args *a, json_t *docs_in, enum kilt_format fmt, bool single,
	       const char *name)
{
	_cleanup_json_ json_t *docs = docs_in;
	struct kilt_error err = { 0 };
	struct kilt_recipe *recipes[INJECT_K8S_MAX_RECIPES] = { 0 };
	struct kilt_k8s_recipe kr[INJECT_K8S_MAX_RECIPES];
	size_t n_recipes = 0;
	int rc = EXIT_ERROR;
	_cleanup_(kilt_image_needs_done) struct kilt_image_needs needs = { 0 };
	kilt_image_needs_init(&needs);
	_cleanup_(registry_client_freep) struct registry_client *registry = NULL;
	struct kilt_report rep;
	kilt_report_init(&rep);
	_cleanup_json_ json_t *patches = NULL;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	struct kilt_k8s_options o;
	kilt_k8s_options_default(&o);
	o.mode = a->mode;
	o.config = a->config;
	o.pod_security = a->pod_security;
	o.volume_source = a->volume_source;
	o.copy_helper = a->copy_helper;
	o.copy_user = a->copy_user;
	o.strict = !a->fail_open;
	struct kilt_k8s_namespace ns = { .name = a->namespace_name,
					 .labels = json_object_size(a->namespace_labels)
							   ? a->namespace_labels
							   : NULL };
	int r;
	if (a->remove) {
		r = kilt_k8s_remove(docs, &o, &rep, a->json_patch ? &patches : NULL, &err);
	} else {
		r = load_recipes(a, recipes, kr, &n_recipes, &err);
		if (r == 0) {
			o.recipes = kr;
			o.n_recipes = n_recipes;
			/* the engine's dry run over a copy of every document lists what it would look
			 * up; with neither lookups nor a facts file nothing resolves the list, and an
			 * empty list answers the engine as an unresolved one does ("not looked up") */
			if (a->image_lookup || a->image_facts_file)
				kilt_k8s_list_images(docs, &ns, &o, &needs);
			if (needs.n && a->image_facts_file)
				r = facts_from_file(a->image_facts_file, &needs, &err);
			if (r == 0 && needs.n && a->image_lookup) {
				r = registry_client_new(a->ropts, &registry, &err);
				struct registry_table run = { .client = registry,
							      .needs = &needs,
							      .budget_ms = a->image_budget_ms,
							      .budget_source = "--image-budget" };
				if (r == 0)
					registry_table_resolve(&run);
			}
			o.image_facts = kilt_image_needs_facts;
			o.image_facts_userdata = &needs;
		}
		if (r == 0)
			r = kilt_k8s_inject(docs, &ns, &o, &rep, a->json_patch ? &patches : NULL,
					    &err);
	}
	if (r < 0) {
		if (!err.file[0])
			snprintf(err.file, sizeof(err.file), "%s", name);
		cli_report(&err);
		goto out;
	}
	inject_print_report(&rep, a->report_how);
	/* a file gets YAML documents as they are written */
	bool streamed = !a->json_patch && fmt == KILT_FORMAT_YAML && a->out_path &&
			fileio_out_replaces(a->out_path);
	if (a->json_patch) {
		/* JSON unless -o yaml asked (fmt is the input's then, which says nothing of patches) */
		enum kilt_format pfmt = a->patch_yaml ? KILT_FORMAT_YAML : KILT_FORMAT_JSON;
		if (single) /* one patch: the array itself */
			r = kilt_yaml_dump_as(json_array_get(patches, 0), pfmt, 0, &text, &len,
					      &err);
		else
			r = kilt_yaml_dump_as(patches, pfmt, KILT_YAML_MULTI, &text, &len, &err);
	} else if (streamed) {
		r = write_yaml_streamed(a->out_path, single ? json_array_get(docs, 0) : docs,
					single ? 0 : KILT_YAML_MULTI, &err);
	} else if (single) {
		r = kilt_yaml_dump_as(json_array_get(docs, 0), fmt, 0, &text, &len, &err);
	} else {
		r = kilt_yaml_dump_as(docs, fmt, KILT_YAML_MULTI, &text, &len, &err);
	}
	if (r == 0 && !streamed)
		r = write_result(a->out_path, text, len, &err);
	if (r < 0) {
		cli_report(&err);
		goto out;
	}
	rc = EXIT_OK;
out:
	kilt_report_done(&rep);
	for (size_t i = 0; i < INJECT_K8S_MAX_RECIPES; i++)
		kilt_recipe_free(recipes[i]);
	return rc;
}
