/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd and GnuTLS for the webhook server, opened with dlopen when `kilt webhook serve`
 * starts. The kilt binary does not link them: every other command (the Lambda macro's cold start
 * above all, docs/cloudformation.md) would map and bind GnuTLS and its libraries at each start
 * for nothing. webhook.c calls them through `wl`. */
#ifndef KILT_WEBHOOK_LIBS_H
#define KILT_WEBHOOK_LIBS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "kilt.h"

struct webhook_libs {
	struct MHD_Daemon *(*start_daemon)(unsigned flags, uint16_t port,
					   MHD_AcceptPolicyCallback apc, void *apc_cls,
					   MHD_AccessHandlerCallback dh, void *dh_cls, ...);
	void (*stop_daemon)(struct MHD_Daemon *d);
	enum MHD_Result (*add_connection)(struct MHD_Daemon *d, MHD_socket s,
					  const struct sockaddr *addr, socklen_t addrlen);
	struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
							    enum MHD_ResponseMemoryMode mode);
	enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *header,
					       const char *content);
	enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned status_code,
					  struct MHD_Response *r);
	void (*destroy_response)(struct MHD_Response *r);
	const char *(*lookup_connection_value)(struct MHD_Connection *c, enum MHD_ValueKind kind,
					       const char *key);

	int (*pcert_list_import_x509_raw)(gnutls_pcert_st *pcert_list,
					  unsigned int *pcert_list_size, const gnutls_datum_t *data,
					  gnutls_x509_crt_fmt_t format, unsigned int flags);
	void (*pcert_deinit)(gnutls_pcert_st *pcert);
	int (*privkey_init)(gnutls_privkey_t *key);
	int (*privkey_import_x509_raw)(gnutls_privkey_t pkey, const gnutls_datum_t *data,
				       gnutls_x509_crt_fmt_t format, const char *password,
				       unsigned int flags);
	void (*privkey_deinit)(gnutls_privkey_t key);
	int (*pubkey_init)(gnutls_pubkey_t *key);
	int (*pubkey_import_privkey)(gnutls_pubkey_t key, gnutls_privkey_t pkey, unsigned int usage,
				     unsigned int flags);
	int (*pubkey_get_key_id)(gnutls_pubkey_t key, unsigned int flags,
				 unsigned char *output_data, size_t *output_data_size);
	void (*pubkey_deinit)(gnutls_pubkey_t key);
	int (*x509_crt_init)(gnutls_x509_crt_t *cert);
	int (*x509_crt_import)(gnutls_x509_crt_t cert, const gnutls_datum_t *data,
			       gnutls_x509_crt_fmt_t format);
	time_t (*x509_crt_get_expiration_time)(gnutls_x509_crt_t cert);
	void (*x509_crt_deinit)(gnutls_x509_crt_t cert);
	const char *(*strerror)(int error);
};

extern struct webhook_libs wl;

/* Opens both libraries and binds `wl`; the libraries stay loaded. Fails with the reason (the
 * library or function that is missing). Call once, before any thread uses `wl`. */
int webhook_libs_load(struct kilt_error *err);

#endif
