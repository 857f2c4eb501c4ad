/*
 * config_int: helpers shared by the files of the config module only
 * (config.c, config_url.c, config_json.c, ecr_url.c, proxy_fields.c). Not part of any public header.
 */
#ifndef UPSTREAMFS_CONFIG_INT_H
#define UPSTREAMFS_CONFIG_INT_H

#include "upstreamfs/config.h"

#include <curl/curl.h>

/*
 * Parses s with libcurl's URL API (extra curl_url_set flags in flags) and
 * applies the rules every URL field shares: bounded length, no spaces or
 * control characters, scheme http or https, a host, no user name or
 * password (a secret must never sit in a URL). *out is the handle, freed by
 * the caller with curl_url_cleanup. -EINVAL (err filled) or -ENOMEM.
 */
int config__url_open(const char *field, const char *s, unsigned int flags, CURLU **out,
                     struct config_error *err);

/* Gets a part as a malloc'd string; NULL when absent. -ENOMEM, or -EINVAL on a curl error. */
int config__url_get(CURLU *h, CURLUPart part, unsigned int flags, char **out);

/* Lower-cases s in place (ASCII). */
void config__lower(char *s);

/* Names by enum value (config.c); the field table's enum rows point at them. */
extern const char *const config__type_names[PROXY_TYPE_COUNT];
extern const char *const config__auth_names[3];
extern const char *const config__source_names[3];
extern const char *const config__on_removed_names[3];

/* Non-empty, at most max bytes, no control characters, valid UTF-8; -EINVAL with err. */
int config__check_text(const char *field, const char *s, size_t max, struct config_error *err);

/* The rules that join the TLS fields: a file or PEM, the client pair together and matching
 * (tls_pem.c). -EINVAL with err. */
int config__tls_check(const struct proxy *p, struct config_error *err);

/* The member a field row describes, in a struct proxy (proxy_fields.c, proxy_field_json.c). */
#define SLOT(T, f, p)  ((T *)((char *)(p) + (f)->offset))
#define CSLOT(T, f, p) ((const T *)((const char *)(p) + (f)->offset))
/* A list slot read-only: the vector itself, not its strings, is what is const. */
#define LSLOT(f, p) ((char **const *)((const char *)(p) + (f)->offset))

#endif
