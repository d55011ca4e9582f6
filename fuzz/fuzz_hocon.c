/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the HOCON module: parses the bytes with small limits, resolves them with a
 * small context (asking for origins too), and frees everything. Must never crash or leak. */
#include <stdint.h>
#include <stdlib.h>

#include "kilt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *ctx;
	if (!ctx)
		ctx = json_pack("{s:{s:s,s:[ss],s:{s:s}},s:{s:i}}", "original", "image", "nginx",
				"entrypoint", "/e", "x", "metadata", "k", "v", "config", "n", 1);
	struct kilt_hocon_limits lim = {
		.max_input_bytes = 64 * 1024,
		.max_depth = 32,
		.max_include_depth = 4,
		.max_subst_depth = 16,
	};
	struct kilt_error err = { 0 };
	struct kilt_hocon *doc = NULL;
	if (kilt_hocon_parse_string((const char *)data, size, "fuzz.conf", &lim, &doc, &err) < 0)
		return 0;
	json_t *out = NULL;
	struct kilt_hocon_origins *origins = NULL;
	if (kilt_hocon_resolve(doc, ctx, &origins, &out, &err) == 0) {
		const char *file;
		unsigned line, col;
		kilt_hocon_origins_get(origins, "a", &file, &line, &col);
		char *s = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
		free(s);
		json_decref(out);
		kilt_hocon_origins_free(origins);
	}
	/* a second resolution of the same document gives the same answer */
	if (kilt_hocon_resolve(doc, NULL, NULL, &out, &err) == 0)
		json_decref(out);
	kilt_hocon_free(doc);
	return 0;
}
