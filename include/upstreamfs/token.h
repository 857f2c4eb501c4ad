/*
 * token: the registry token ("Bearer") flow of the Docker Registry v2 auth
 * spec, as used by Docker Hub, distribution's token auth, ECR Public and
 * most cloud registries.
 *
 *   1. a request answered 401 carries WWW-Authenticate: Bearer realm="...",
 *      service="...", scope="..." (RFC 7235 auth-params, quoted strings);
 *   2. GET realm?service=S&scope=A[&scope=B] (Basic credentials when the
 *      proxy has them) answers JSON with "token" or "access_token" and
 *      "expires_in" (60 s when absent);
 *   3. requests carry Authorization: Bearer <token>.
 *
 * A token cache holds tokens per (realm, service, scope) and hands out a
 * token until its refresh point: expiry minus min(5 min, 10 % of its
 * lifetime). Concurrent callers that need the same missing token wait for
 * one fetch instead of each asking the token server. Tokens are secrets:
 * nothing here logs one, and the cache wipes them when it drops them.
 *
 * Every parse is of hostile input: values are capped, quoted strings must
 * be terminated, control characters are refused (a token becomes a header
 * line, a realm a URL).
 */
#ifndef UPSTREAMFS_TOKEN_H
#define UPSTREAMFS_TOKEN_H

#include "upstreamfs/fetch.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_HEADER_MAX     16384        /* a WWW-Authenticate value we are willing to read */
#define TOKEN_PARAM_MAX      4096         /* one auth-param value */
#define TOKEN_MAX            16384        /* one token */
#define TOKEN_BODY_MAX       (256u << 10) /* a token server's answer */
#define TOKEN_DEFAULT_LIFE_S 60
#define TOKEN_MAX_LIFE_S     86400
#define TOKEN_MARGIN_MAX_MS  (5 * 60 * 1000)
#define TOKEN_CACHE_MAX      256

enum token_scheme { TOKEN_SCHEME_NONE, TOKEN_SCHEME_BASIC, TOKEN_SCHEME_BEARER };

/* The challenge chosen from a WWW-Authenticate value: Bearer if offered, else Basic. */
struct token_challenge {
    enum token_scheme scheme;
    char *realm;   /* Bearer: required, an http(s) URL; Basic: optional */
    char *service; /* may be NULL */
    char *scope;   /* may be NULL */
    char *error;   /* e.g. "invalid_token", "insufficient_scope"; may be NULL */
};

/*
 * Parses a WWW-Authenticate value (one or more challenges). Returns 0,
 * -ENOENT when it offers neither Bearer nor Basic, -EINVAL when it is
 * malformed (unterminated quote, a value over TOKEN_PARAM_MAX, control
 * characters, a Bearer challenge without an http(s) realm), -ENOMEM.
 */
int token_challenge_parse(const char *header, struct token_challenge *out);
void token_challenge_clear(struct token_challenge *c);

/*
 * Parses a token server's JSON answer: "token" or "access_token" (the
 * former wins when both are there), "expires_in" (default 60 s, capped at a
 * day). Returns 0 with *token malloc'd, or -EIO with a reason in err.
 */
int token_response_parse(const char *body, size_t len, char **token, int64_t *lifetime_s, char *err,
                         size_t errlen);

/* How long before expiry a token of this lifetime is replaced: min(5 min, 10 %). */
int64_t token_refresh_margin_ms(int64_t lifetime_ms);

/* The token request URL: realm?service=..&scope=.. (one scope parameter per scope). */
char *token_request_url(const char *realm, const char *service, const char *scope);

struct token_cache;

struct token_cache *token_cache_new(void);
void token_cache_free(struct token_cache *c);

/*
 * A token for (realm, service, scope): cached, or fetched with ep's
 * credentials (Basic when set) under the metadata deadline. *token is
 * malloc'd. Returns 0, -EACCES (the server refused the credentials),
 * -EREMOTEIO (the token server failed or timed out), -EIO (a malformed
 * answer), -EINVAL (an unusable realm), -ENOMEM.
 */
int token_get(struct token_cache *c, const struct fetch_endpoint *ep, const char *realm,
              const char *service, const char *scope, char **token);

/* Forgets a token the registry refused (only if it is still the cached one). */
void token_invalidate(struct token_cache *c, const char *realm, const char *service,
                      const char *scope, const char *token);

#endif
