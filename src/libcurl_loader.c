/* SPDX-License-Identifier: Apache-2.0 */
/* libcurl, loaded when first used. The kilt binary does not link libcurl: it defines here the
 * libcurl functions it calls, and each forwards to libcurl.so.4, opened with dlopen the first
 * time a request needs it. Mapping and binding libcurl and the ~30 libraries it pulls in (TLS,
 * HTTP/2, IDN, SSH, LDAP, Kerberos, RTMP...) costs about 3 ms, so a process that never makes an
 * HTTPS request — the Lambda macro's cold start, `kilt hocon`, `kilt recipe` — no longer pays it.
 * Written for the macro's cold start (docs/cloudformation.md), used by the whole binary.
 *
 * Using another libcurl function in src/ means adding its forwarder below (the link fails until
 * then). When libcurl cannot be loaded, curl_easy_init returns NULL after one line on stderr
 * naming the reason, which every caller already reports as "cannot create a handle". */
#define CURL_DISABLE_TYPECHECK /* the real prototypes, not the type-checking macros */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define LIBCURL_SONAME "libcurl.so.4"

static struct {
	bool loaded;
	long init_flags;
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_reset)(CURL *h);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
} lib = { .init_flags = CURL_GLOBAL_DEFAULT };

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

/* dlsym's object pointer into a function pointer, the way POSIX allows (memcpy keeps ISO C
 * quiet). */
static bool bind_symbol(void *handle, const char *name, void *fn, size_t size)
{
	void *sym = dlsym(handle, name);
	if (!sym || size != sizeof(sym))
		return false;
	memcpy(fn, &sym, size);
	return true;
}

#define BIND(handle, field, name) bind_symbol(handle, name, &lib.field, sizeof(lib.field))

static void load(void)
{
	void *h = dlopen(LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		fprintf(stderr, "kilt: cannot load %s (needed for HTTPS): %s\n", LIBCURL_SONAME,
			why ? why : "unknown error");
		return;
	}
	bool ok = BIND(h, global_init, "curl_global_init") &&
		  BIND(h, easy_init, "curl_easy_init") &&
		  BIND(h, easy_setopt, "curl_easy_setopt") &&
		  BIND(h, easy_perform, "curl_easy_perform") &&
		  BIND(h, easy_getinfo, "curl_easy_getinfo") &&
		  BIND(h, easy_reset, "curl_easy_reset") &&
		  BIND(h, easy_cleanup, "curl_easy_cleanup") &&
		  BIND(h, easy_strerror, "curl_easy_strerror") &&
		  BIND(h, slist_append, "curl_slist_append") &&
		  BIND(h, slist_free_all, "curl_slist_free_all");
	if (!ok || lib.global_init(lib.init_flags) != CURLE_OK) {
		fprintf(stderr, "kilt: %s: %s\n", LIBCURL_SONAME,
			ok ? "global initialization failed" : "a libcurl function is missing");
		dlclose(h);
		return;
	}
	lib.loaded = true; /* the library stays loaded for the life of the process */
}

static bool loaded(void)
{
	pthread_once(&load_once, load);
	return lib.loaded;
}

/* libcurl's own rule applies: called before other threads use libcurl. Loading waits for the
 * first handle, which initializes with these flags. */
CURLcode curl_global_init(long flags)
{
	lib.init_flags = flags;
	return CURLE_OK;
}

CURL *curl_easy_init(void)
{
	return loaded() ? lib.easy_init() : NULL;
}

/* The option number says the argument's type (curl.h: CURLOPTTYPE_*), so it is passed on as
 * that type. */
CURLcode curl_easy_setopt(CURL *h, CURLoption option, ...)
{
	if (!h || !loaded())
		return CURLE_BAD_FUNCTION_ARGUMENT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = lib.easy_setopt(h, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = lib.easy_setopt(h, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = lib.easy_setopt(h, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = lib.easy_setopt(h, option, va_arg(ap, curl_off_t));
	else
		rc = lib.easy_setopt(h, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *h)
{
	return h && loaded() ? lib.easy_perform(h) : CURLE_BAD_FUNCTION_ARGUMENT;
}

/* Every CURLINFO takes a pointer to where the value goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	if (!h || !loaded())
		return CURLE_BAD_FUNCTION_ARGUMENT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = lib.easy_getinfo(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

void curl_easy_reset(CURL *h)
{
	if (h && loaded())
		lib.easy_reset(h);
}

void curl_easy_cleanup(CURL *h)
{
	if (h && loaded())
		lib.easy_cleanup(h);
}

const char *curl_easy_strerror(CURLcode code)
{
	return loaded() ? lib.easy_strerror(code) : "libcurl could not be loaded";
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	return loaded() ? lib.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (list && loaded())
		lib.slist_free_all(list);
}
