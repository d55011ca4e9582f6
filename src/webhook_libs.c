/* SPDX-License-Identifier: Apache-2.0 */
/* Opens libmicrohttpd and GnuTLS for `kilt webhook serve` (see webhook_libs.h for why). */
#include <dlfcn.h>
#include <string.h>

#include "util.h"
#include "webhook_libs.h"

#define MHD_SONAME "libmicrohttpd.so.12"
#define GNUTLS_SONAME "libgnutls.so.30"

struct webhook_libs wl;

/* dlsym's object pointer into a function pointer, the way POSIX allows (memcpy keeps ISO C
 * quiet). */
static bool bind_symbol(void *handle, const char *name, void *fn, size_t size, const char **missing)
{
	void *sym = dlsym(handle, name);
	if (!sym || size != sizeof(sym)) {
		*missing = name;
		return false;
	}
	memcpy(fn, &sym, size);
	return true;
}

#define BIND(handle, field, name) bind_symbol(handle, name, &wl.field, sizeof(wl.field), &missing)

int webhook_libs_load(struct kilt_error *err)
{
	void *mhd = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!mhd) {
		const char *why = dlerror();
		return kilt_error_setf(err, -ENOENT, "cannot load %s (Debian: libmicrohttpd12): %s",
				       MHD_SONAME, why ? why : "unknown error");
	}
	void *tls = dlopen(GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!tls) {
		const char *why = dlerror();
		return kilt_error_setf(err, -ENOENT, "cannot load %s (Debian: libgnutls30): %s",
				       GNUTLS_SONAME, why ? why : "unknown error");
	}
	const char *missing = NULL;
	bool ok = BIND(mhd, start_daemon, "MHD_start_daemon") &&
		  BIND(mhd, stop_daemon, "MHD_stop_daemon") &&
		  BIND(mhd, add_connection, "MHD_add_connection") &&
		  BIND(mhd, create_response_from_buffer, "MHD_create_response_from_buffer") &&
		  BIND(mhd, add_response_header, "MHD_add_response_header") &&
		  BIND(mhd, queue_response, "MHD_queue_response") &&
		  BIND(mhd, destroy_response, "MHD_destroy_response") &&
		  BIND(mhd, lookup_connection_value, "MHD_lookup_connection_value") &&
		  BIND(tls, pcert_list_import_x509_raw, "gnutls_pcert_list_import_x509_raw") &&
		  BIND(tls, pcert_deinit, "gnutls_pcert_deinit") &&
		  BIND(tls, privkey_init, "gnutls_privkey_init") &&
		  BIND(tls, privkey_import_x509_raw, "gnutls_privkey_import_x509_raw") &&
		  BIND(tls, privkey_deinit, "gnutls_privkey_deinit") &&
		  BIND(tls, pubkey_init, "gnutls_pubkey_init") &&
		  BIND(tls, pubkey_import_privkey, "gnutls_pubkey_import_privkey") &&
		  BIND(tls, pubkey_get_key_id, "gnutls_pubkey_get_key_id") &&
		  BIND(tls, pubkey_deinit, "gnutls_pubkey_deinit") &&
		  BIND(tls, x509_crt_init, "gnutls_x509_crt_init") &&
		  BIND(tls, x509_crt_import, "gnutls_x509_crt_import") &&
		  BIND(tls, x509_crt_get_expiration_time, "gnutls_x509_crt_get_expiration_time") &&
		  BIND(tls, x509_crt_deinit, "gnutls_x509_crt_deinit") &&
		  BIND(tls, strerror, "gnutls_strerror");
	if (!ok)
		return kilt_error_setf(err, -ENOENT, "%s is missing from %s", missing,
				       strncmp(missing, "MHD_", 4) == 0 ? MHD_SONAME
									: GNUTLS_SONAME);
	return 0;
}
