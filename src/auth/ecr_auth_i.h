/* ecr_auth_i.h: what src/auth/ecr_auth.c (the token cache, the API requests) and
 * src/auth/ecr_parse.c (the API's answers) share. Private to these two files. */
#ifndef UPSTREAMFS_ECR_AUTH_I_H
#define UPSTREAMFS_ECR_AUTH_I_H

#include <stdbool.h>
#include <stddef.h>

#define ECR_ENDPOINT_MAX 2048 /* longest API endpoint or proxyEndpoint URL accepted */

/* An absolute http(s) URL of at most ECR_ENDPOINT_MAX bytes without spaces or control
 * characters. */
bool ecr__http_url_ok(const char *s);

/* Copies s into buf (n bytes) with anything but printable ASCII replaced by '?'. */
void ecr__sanitise(char *buf, size_t n, const char *s);

#endif
