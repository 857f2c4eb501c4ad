/*
 * ecr_auth: registry credentials for an ECR proxy (docs/ecr.md; AWS's
 * GetAuthorizationToken for ECR and ECR Public), cached and refreshed before they expire.
 *
 * Private registries: a SigV4-signed (service "ecr") GetAuthorizationToken
 * POST to the ECR API, in the target's region. The answer's token is used
 * verbatim as "Basic <token>" (it is base64 of "AWS:<password>"), and its
 * proxyEndpoint is where registry traffic goes.
 * Public registries with keys: ecr-public GetAuthorizationToken (service
 * "ecr-public", region us-east-1), used as "Bearer <token>"; the registry is
 * the proxy's own URL (https://public.ecr.aws/), unless the answer carries a
 * proxyEndpoint (AWS sends none; a local mock may). A public console URL names
 * an account, not an alias: ecr_auth_public_alias finds the alias with
 * DescribeRegistries when first asked (never at create).
 * Anonymous proxies get no header: the caller follows the registry's own
 * 401 challenge (the anonymous public token flow).
 *
 * API endpoint, first that is set: the proxy's --aws-endpoint, then the
 * environment's AWS_ENDPOINT_URL_ECR (AWS_ENDPOINT_URL_ECR_PUBLIC for public
 * registries), then AWS_ENDPOINT_URL, then AWS's endpoint from the defaults
 * table. The environment is read once, by ecr_auth_new. API requests use the
 * proxy's --ca-file (else AWS_CA_BUNDLE, as the SDKs do) and --http-proxy;
 * the client certificate is for the registry only. Credentials: the
 * proxy's access key and secret, or with aws-chain the chain of
 * aws_credentials.h, resolved again at every token request.
 *
 * Cache: a token is fetched at first use and refreshed once the clock is
 * within min(5 min, 10 % of the token's lifetime) of its expiresAt. One
 * caller refreshes at a time; others that still hold a valid token keep
 * using it meanwhile, and a failed refresh does not fail a caller while the
 * old token is valid (a warning is logged, and the refresh is retried no
 * sooner than ECR_AUTH_RETRY_S later). Callers without a valid token wait
 * for the refresh in flight and share its outcome. After AWS refused the
 * credentials (-EACCES) and no valid token is left, callers get -EACCES
 * without a new request for ECR_AUTH_RETRY_S, so a wrong secret costs one
 * signed request per interval, not one per read. Thread-safe; no call may
 * be in progress when ecr_auth_free is called.
 *
 * Every request has fetch's deadlines (10 s in total) and a capped answer.
 *
 * Errors (0 or a negative errno):
 *   -EACCES   AWS refused the credentials (UnrecognizedClientException,
 *             InvalidSignatureException, AccessDeniedException, ... or a
 *             401/403), or the chain found none; the AWS message is logged
 *             and kept for ecr_auth_last_error;
 *   -EREMOTEIO the API failed (5xx, 429, throttling);
 *   -EIO      the API answered something that does not parse, or another
 *             4xx error;
 *   -ENOENT   (public alias) no registry of that account is visible;
 *   fetch's transport errors (-ETIMEDOUT, -ECONNREFUSED, ...) as they are.
 * No log line or error text holds a secret or a token.
 */
#ifndef UPSTREAMFS_ECR_AUTH_H
#define UPSTREAMFS_ECR_AUTH_H

#include "upstreamfs/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ECR_AUTH_TOKEN_MAX      (256 * 1024) /* cap on a GetAuthorizationToken answer */
#define ECR_AUTH_DESCRIBE_MAX   (1 << 20)    /* cap on one DescribeRegistries page */
#define ECR_AUTH_DESCRIBE_PAGES 20
#define ECR_AUTH_MARGIN_MAX_MS  (5 * 60 * 1000)
#define ECR_AUTH_RETRY_S        10
#define ECR_AUTH_ERROR_MAX      256

#define ECR_PRIVATE_TARGET  "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
#define ECR_PUBLIC_TARGET   "SpencerFrontendService.GetAuthorizationToken"
#define ECR_DESCRIBE_TARGET "SpencerFrontendService.DescribeRegistries"
#define ECR_PUBLIC_REGION   "us-east-1"

struct ecr_auth;

/* One parsed GetAuthorizationToken answer. */
struct ecr_token {
    char *authorization_token; /* base64 of "AWS:<password>", as received */
    char *username;            /* decoded: "AWS" */
    char *password;            /* decoded */
    int64_t expires_at_ms;     /* epoch milliseconds (expiresAt may be fractional) */
    char *proxy_endpoint;      /* "https://...": private only; NULL if absent */
};

/*
 * Parses a 200 answer. is_public selects the shape: authorizationData is an
 * array (private; its first element is used) or an object (public). The
 * token must be valid base64 (decoded with OpenSSL) of "user:password", and
 * proxyEndpoint, when present, an http(s) URL. -EIO for anything else.
 */
int ecr_token_parse(const char *body, size_t len, bool is_public, struct ecr_token *out);
/* Wipes the token and password, and frees everything. */
void ecr_token_clear(struct ecr_token *t);

/*
 * What an error answer means: the errno above, with "Type: message" (type
 * without its namespace, message sanitised to printable ASCII and cut to
 * fit) written into msg.
 */
int ecr_auth_error_parse(long status, const char *body, size_t len, char *msg, size_t n);

/*
 * The time at which a token issued at issued_ms that expires at expires_ms
 * is refreshed: expires_ms - min(5 min, 10 % of the lifetime); a lifetime of
 * zero or less gives expires_ms.
 */
int64_t ecr_auth_refresh_at(int64_t issued_ms, int64_t expires_ms);

/*
 * The alias of the public registry of account among a DescribeRegistries
 * answer's registries: the ACTIVE primary alias, else the ACTIVE default
 * one, else the first ACTIVE one. -ENOENT if the account is not there, -EIO
 * for a malformed answer. *next_token (malloc'd, may be NULL) is the page
 * token to ask for when the account was not on this page.
 */
int ecr_auth_describe_parse(const char *body, size_t len, const char *account, char **alias,
                            char **next_token);

/*
 * A handle for cfg (an ecr proxy; copied, so cfg may go away) and its
 * secret (for access-key auth; copied and wiped on free). No network.
 * Returns NULL with errno EINVAL (not an ecr proxy, no region for a private
 * registry, access-key auth without both parts) or ENOMEM.
 */
struct ecr_auth *ecr_auth_new(const struct proxy *cfg, const char *secret);
void ecr_auth_free(struct ecr_auth *a);

/*
 * The current credentials: *authorization_header ("Basic ..." or
 * "Bearer ...", or NULL for an anonymous proxy) and *registry_base_url (the
 * proxyEndpoint, or the proxy's URL for public registries, ending with '/').
 * Both malloc'd; the header is a credential: do not log it, free it with
 * ecr_auth_string_free. Either pointer may be NULL when not wanted.
 */
int ecr_auth_get(struct ecr_auth *a, char **authorization_header, char **registry_base_url);

/* Wipes and frees a string returned by ecr_auth_get. */
void ecr_auth_string_free(char *s);

/*
 * The registry refused authorization_header before its expiry (a private
 * registry's 401, ECR Public's 400 DENIED): drop it, so the next
 * ecr_auth_get asks for a new one. Does nothing when the cache already holds
 * another token, so many requests that failed with the same token cause one
 * refresh. Callers retry a refused request once, not in a loop.
 */
void ecr_auth_invalidate(struct ecr_auth *a, const char *authorization_header);

/*
 * A public registry's alias: the proxy's own when its URL names one, else
 * looked up once with DescribeRegistries for the target's account and then
 * remembered. -EINVAL for a private registry, -EACCES for an anonymous one.
 */
int ecr_auth_public_alias(struct ecr_auth *a, char **alias);

/* The last error text from AWS (or the chain), "" if none. Never a secret. */
void ecr_auth_last_error(struct ecr_auth *a, char *buf, size_t n);

/*
 * Replaces the wall clock (epoch milliseconds) that decides expiry and
 * refresh. For tests; signing always uses the real time, as AWS requires.
 */
void ecr_auth_set_clock(struct ecr_auth *a, int64_t (*now_ms)(void *arg), void *arg);

/* The API endpoint a handle uses (for logs and tests); owned by a. */
const char *ecr_auth_endpoint(const struct ecr_auth *a);

#endif
