/*
 * sigv4: AWS Signature Version 4 for one HTTP request (AWS's "Signature Version 4 signing process"), and
 * the sending of AWS requests that carry a body.
 *
 * Signing is pure: no I/O, no clock (the caller passes the time), no log
 * line. The canonical request follows AWS's rules for services other than
 * S3 (ECR, ECR Public, STS):
 *   - URI: the URL's path as it goes on the wire, split into segments, "."
 *     and ".." resolved, empty segments dropped (a trailing '/' is kept),
 *     and each segment URI-encoded again (so a '%' already on the wire
 *     becomes "%25": AWS's double encoding for non-S3 services);
 *   - query: each name and value percent-decoded, then re-encoded with the
 *     unreserved set A-Za-z0-9-_.~ (upper-case hex, space as %20), sorted
 *     by name then value, a name without '=' given an empty value;
 *   - headers: names lower-cased, values trimmed with inner runs of spaces
 *     and tabs collapsed to one space, repeated names joined with ',' in the
 *     order given, sorted by name. "host" (from the URL, with a non-default
 *     port), "x-amz-date" and, with a session token, "x-amz-security-token"
 *     are always signed and are added by the signer, never by the caller;
 *   - payload: lower-case hex SHA-256 of the body.
 * The HMAC chain and digests are OpenSSL's; intermediate keys are wiped.
 *
 * The Authorization value holds no secret, but it is a credential for as
 * long as the request time is accepted (5 minutes): callers do not log it.
 *
 * Functions return 0 or a negative errno: -EINVAL for a URL that is not an
 * absolute http(s) URL, a header name that is not a token, a value with CR
 * or LF, or a caller header the signer owns; -E2BIG when the canonical
 * request would exceed SIGV4_CANONICAL_MAX; -ENOMEM; -EIO if OpenSSL fails.
 */
#ifndef UPSTREAMFS_SIGV4_H
#define UPSTREAMFS_SIGV4_H

#include "upstreamfs/fetch.h"

#include <stddef.h>
#include <time.h>

#define SIGV4_CANONICAL_MAX (256 * 1024) /* cap on a canonical request */
#define SIGV4_AMZ_DATE_LEN  16           /* "YYYYMMDDTHHMMSSZ" */

/* One request header to sign and send; name in any case. */
struct sigv4_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method; /* "GET", "POST", ... */
    const char *url;    /* absolute http(s) URL; path and query as sent on the wire */
    const struct sigv4_header *headers; /* besides host, x-amz-date, x-amz-security-token */
    size_t n_headers;
    const void *payload; /* may be NULL when payload_len is 0 */
    size_t payload_len;
    const char *region;  /* e.g. "us-east-1" */
    const char *service; /* signing name, e.g. "ecr" or "ecr-public" */
    time_t when;         /* request time, seconds since the epoch (UTC) */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL without temporary credentials */
};

/* What a signature adds to the request. */
struct sigv4_signature {
    char amz_date[SIGV4_AMZ_DATE_LEN + 1]; /* the X-Amz-Date value */
    char *host;                            /* the Host value that was signed */
    char *signed_headers;                  /* "content-type;host;x-amz-date;..." */
    char *authorization;                   /* "AWS4-HMAC-SHA256 Credential=..., ..." */
};

/* Signs req into *out (cleared first; release with sigv4_signature_clear). */
int sigv4_sign(const struct sigv4_request *req, struct sigv4_signature *out);
void sigv4_signature_clear(struct sigv4_signature *sig);

/*
 * Signs req and appends to *list every header the request must carry: Host,
 * the caller's headers, X-Amz-Date, X-Amz-Security-Token (if any) and
 * Authorization. *list may be NULL on entry; on error it is left as it was
 * (the caller frees it either way with curl_slist_free_all).
 */
int sigv4_sign_headers(const struct sigv4_request *req, struct curl_slist **list);

/*
 * The canonical request and the signed-header list for req at amz_date
 * (both malloc'd). Exposed for tests; the signature itself is not.
 */
int sigv4_canonical_request(const struct sigv4_request *req, const char *amz_date, char **creq,
                            char **signed_headers);

/* Formats when as an X-Amz-Date value into buf (SIGV4_AMZ_DATE_LEN + 1 bytes). */
int sigv4_amz_date(time_t when, char *buf, size_t n);

/*
 * One request with a method and a body, for the AWS calls that fetch_perform
 * cannot make yet (its request has neither a method nor a body): the signed
 * JSON POSTs to ECR and the IMDSv2 token PUT. It keeps fetch's rules: the
 * connect deadline (connect_timeout_ms, else FETCH_CONNECT_TIMEOUT_S), the
 * low-speed limit, the total timeout_ms, a body capped at max_body (0 means
 * 1 MiB; -EFBIG beyond), http and https only, and the same errno mapping.
 * Redirects are never followed: a signed request is meant for its one host.
 * Fills resp like fetch_perform (status, content_type, body); release it
 * with fetch_response_clear. When fetch_request gains a method and a body,
 * this becomes a call to fetch_perform.
 */
struct sigv4_http_request {
    const char *method; /* "POST", "PUT" */
    const char *url;
    const struct fetch_endpoint *ep; /* ca_file and http_proxy are used; may be NULL */
    const struct curl_slist *headers;
    const void *body;
    size_t body_len;
    long timeout_ms;         /* total deadline; 0 means FETCH_META_TIMEOUT_MS */
    long connect_timeout_ms; /* 0 means FETCH_CONNECT_TIMEOUT_S */
    size_t max_body;
};

int sigv4_http_perform(const struct sigv4_http_request *req, struct fetch_response *resp);

#endif
