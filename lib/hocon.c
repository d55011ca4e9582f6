/* SPDX-License-Identifier: Apache-2.0 */
/* HOCON parser and resolver (placeholder until the module lands). */
#include "internal.h"
#include "kilt.h"

void kilt_hocon_limits_default(struct kilt_hocon_limits *ret)
{
	*ret = (struct kilt_hocon_limits){ 8u << 20, 128, 16, 64 };
}
int kilt_hocon_parse_file(const char *path, const struct kilt_hocon_limits *limits,
			  struct kilt_hocon **ret, struct kilt_error *err)
{
	(void)limits;
	(void)ret;
	return kilt_error_setf(err, -ENOSYS, "%s: HOCON not implemented", path);
}
int kilt_hocon_parse_string(const char *text, size_t len, const char *name,
			    const struct kilt_hocon_limits *limits, struct kilt_hocon **ret,
			    struct kilt_error *err)
{
	(void)text, (void)len, (void)limits, (void)ret;
	return kilt_error_setf(err, -ENOSYS, "%s: HOCON not implemented", name);
}
void kilt_hocon_free(struct kilt_hocon *doc)
{
	(void)doc;
}
int kilt_hocon_resolve(const struct kilt_hocon *doc, const json_t *context,
		       struct kilt_hocon_origins **ret_origins, json_t **ret, struct kilt_error *err)
{
	(void)doc, (void)context, (void)ret_origins, (void)ret;
	return kilt_error_setf(err, -ENOSYS, "HOCON not implemented");
}
int kilt_hocon_load_file(const char *path, const struct kilt_hocon_limits *limits, json_t **ret,
			 struct kilt_error *err)
{
	(void)limits, (void)ret;
	return kilt_error_setf(err, -ENOSYS, "%s: HOCON not implemented", path);
}
