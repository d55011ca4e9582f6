/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for everything the registry client parses from the network or from users: image
 * manifests, indexes (with platform selection), image configs, registry error bodies,
 * WWW-Authenticate headers, docker configs / pull secrets and image references. The first byte
 * picks the parser; the rest is its input. */
#include <stdint.h>

#include "internal.h"
#include "kilt.h"

static void manifest(const char *s, size_t n, const char *ctype)
{
	struct kilt_manifest *m = NULL;
	struct kilt_error err = { 0 };
	if (kilt_manifest_parse(s, n, ctype, &m, &err) < 0)
		return;
	if (kilt_manifest_kind(m) == KILT_MANIFEST_INDEX) {
		static const char *const plats[] = { "linux/amd64", "linux/arm64/v8",
						     "linux/arm/v7", "windows/amd64" };
		for (size_t i = 0; i < ARRAY_SIZE(plats); i++) {
			struct kilt_platform p;
			const char *d = NULL;
			if (kilt_platform_parse(plats[i], &p, NULL) == 0)
				kilt_manifest_select(m, &p, &d, &err);
		}
		for (size_t i = 0; i < kilt_manifest_count(m); i++)
			kilt_manifest_entry(m, i, NULL, NULL, NULL, NULL);
	} else {
		(void)kilt_manifest_config_digest(m);
	}
	kilt_manifest_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0] % 8;
	/* A NUL-terminated copy: some parsers take C strings. */
	char *s = xstrndup((const char *)data + 1, size - 1);
	size_t n = size - 1;
	struct kilt_error err = { 0 };
	switch (sel) {
	case 0:
		manifest(s, n, NULL);
		break;
	case 1:
		manifest(s, n, KILT_MEDIA_DOCKER_LIST);
		break;
	case 2: {
		json_t *f = NULL;
		if (kilt_image_config_parse(s, n, &f, &err) == 0)
			json_decref(f);
		break;
	}
	case 3: {
		struct kilt_auth_challenge c = { 0 };
		if (kilt_auth_challenge_parse(s, &c, &err) == 0)
			kilt_auth_challenge_done(&c);
		break;
	}
	case 4: {
		json_t *cfg = NULL;
		if (kilt_docker_config_parse(s, n, &cfg, &err) == 0) {
			char *u = NULL, *p = NULL;
			if (kilt_docker_auth_lookup(cfg, "docker.io", &u, &p, &err) == 0) {
				free(u);
				free(p);
			}
			json_decref(cfg);
		}
		break;
	}
	case 5:
		free(kilt_registry_error_message(s, n));
		break;
	case 6: {
		struct kilt_imageref r = { 0 };
		if (kilt_imageref_parse(s, &r, &err) == 0) {
			free(kilt_imageref_format(&r));
			(void)kilt_imageref_api_host(&r);
			char region[64];
			kilt_imageref_ecr_region(r.registry, region, sizeof(region));
			kilt_imageref_done(&r);
		}
		break;
	}
	default: {
		struct kilt_platform p;
		char buf[100];
		if (kilt_platform_parse(s, &p, &err) == 0)
			kilt_platform_format(&p, buf, sizeof(buf));
		char *out = NULL;
		size_t olen = 0;
		if (kilt_base64_decode(s, n, &out, &olen, &err) == 0)
			free(out);
		break;
	}
	}
	free(s);
	return 0;
}
