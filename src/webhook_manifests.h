/* SPDX-License-Identifier: Apache-2.0 */
/* `kilt webhook manifests`: the Kubernetes objects that install the admission webhook
 * (webhook_manifests.c), and the certificates it makes for them (webhook_certs.c). */
#ifndef KILT_WEBHOOK_MANIFESTS_H
#define KILT_WEBHOOK_MANIFESTS_H

#include "kilt.h"

/* argv[0] is "manifests"; returns an exit code. */
int cmd_webhook_manifests(int argc, char **argv);

/* A new CA and a serving certificate it signed, in PEM (each owned). */
struct webhook_certs {
	char *ca_cert;
	char *cert;
	char *key; /* the serving certificate's private key (PKCS#8) */
};

/* Makes an ECDSA P-256 CA (valid `ca_days`, CN `ca_name`) and a serving certificate for the DNS
 * names in `dns_names` (a NULL-terminated list; the first is also the CN), valid `days`, for TLS
 * server authentication only. The CA's key is not kept. */
int webhook_certs_make(const char *ca_name, unsigned ca_days, const char *const *dns_names,
		       unsigned days, struct webhook_certs *ret, struct kilt_error *err);
void webhook_certs_done(struct webhook_certs *c);

/* Lower-case hex SHA-256 of `len` bytes of `data`; owned. */
char *webhook_sha256_hex(const void *data, size_t len);

#endif
