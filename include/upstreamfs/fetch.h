/*
 * fetch: one HTTP request over libcurl, with its deadlines (docs/troubleshooting.md).
 *
 * Connections, DNS answers and TLS sessions are shared between all requests
 * through one CURLSH, so consecutive requests to a remote reuse a connection.
 * Every request has a deadline: connect 5 s (the endpoint's
 * connect_timeout_ms, a proxy's --connect-timeout); a transfer slower than
 * 1 KiB/s for 15 s is abandoned; requests with timeout_ms also end at that
 * total (metadata requests: the proxy's --metadata-timeout, default 10 s).
 * Bodies read into memory are capped by max_body (-EFBIG beyond it); a
 * streamed body by its Content-Length, else by the endpoint's max_size.
 * Redirects are followed here, hop by hop (http/https only, at most 10), so
 * that each hop gets the rules of src/fetch/egress.c:
 *  - credentials (the endpoint's Basic credentials, its client certificate,
 *    and any "Authorization:" header of the request) go to a hop only when
 *    it is allowed to have them: with an egress policy, a configured origin,
 *    the first hop of a token realm request (realm), or the first hop of any
 *    request when the policy passes credentials; without one, the first
 *    hop's origin. Every other hop is fetched anonymously;
 *  - with an egress policy, a hop to an origin that is not configured (and
 *    not a realm on a configured host) must not connect to a loopback,
 *    private, link-local, shared, unique-local or multicast address unless
 *    allow_host names its host. The address is checked when libcurl opens
 *    each socket and again before each request on a (possibly reused)
 *    connection, so what is checked is what is connected to; through an
 *    HTTP proxy, the host's own resolution is checked before the request;
 *  - a 401 challenge from a hop that is not configured is not reported
 *    (www_authenticate NULL): no remote but the registry names a realm.
 * libcurl's standard proxy variables apply unless the endpoint names its
 * own proxy.
 *
 * Returns 0 when an HTTP response arrived (any status), or a negative errno:
 * -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ELOOP (redirect loop), -EFBIG
 * (a body over its cap: nothing of it is to be kept), -EPERM (the address
 * rule refused a hop; logged with the rule — a policy refusal, not a remote
 * failure), -ECANCELED (should_abort said so), -EIO (anything else), or the
 * error an on_data callback returned. On failure resp->cause says which kind
 * of failure it was (include/upstreamfs/failure.h: policy for -EPERM;
 * FAILURE_NONE when the transfer was ended by a callback of ours) and
 * resp->status the last status that came, or 0.
 */
#ifndef UPSTREAMFS_FETCH_H
#define UPSTREAMFS_FETCH_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct egress_policy;

#define FETCH_CONNECT_TIMEOUT_S 5
#define FETCH_LOW_SPEED_BPS     1024
#define FETCH_LOW_SPEED_TIME_S  15
#define FETCH_META_TIMEOUT_MS   10000

/* Per-proxy connection settings; every pointer may be NULL. */
struct fetch_endpoint {
    const char *ca_file; /* files; a PEM field given through the API is STATEDIR/tls/KEY/NAME */
    const char *client_cert;
    const char *client_key;
    const char *http_proxy;
    const char *username; /* Basic credentials, sent only where the rules above allow */
    const char *password;
    struct egress_policy *egress; /* the proxy's rules (egress.h); NULL: configured endpoint */
    int64_t max_size;             /* cap on a streamed body of unknown length; 0: none */
    /* The proxy's deadlines (--connect-timeout, --metadata-timeout), ms; 0: the defaults. */
    long connect_timeout_ms;
    long metadata_timeout_ms;
};

struct fetch_response {
    long status;
    int cause;                /* enum failure_cause of a failed transfer (failure.h), else 0 */
    long ratelimit_remaining; /* Docker Hub's ratelimit-remaining (its first number), -1 absent */
    long ratelimit_limit;     /* ratelimit-limit, -1 absent */
    int64_t content_length; /* -1 unknown */
    /* A 206's Content-Range "bytes FIRST-LAST/TOTAL"; -1 each when absent or unparsable. */
    int64_t range_first, range_last, range_total;
    long retry_after;       /* seconds, 0 if absent */
    char *content_type;
    char *etag;
    char *last_modified;
    char *location;
    char *www_authenticate; /* every challenge, lines joined with ", " (capped) */
    char *docker_digest;
    /*
     * RFC 9530 Repr-Digest (every line joined, capped), or NULL: hash_repr_digest_parse reads
     * it. With want_trailers, a Repr-Digest the answer sent as a trailer (after a chunked body)
     * is put here once the transfer ends, when its headers had none.
     */
    char *repr_digest;
    bool repr_digest_trailer; /* the headers announce a Repr-Digest trailer (Trailer: ...) */
    char *effective_url;
    char *link; /* every Link header of the response, joined with ", " (capped), or NULL */
    char *body; /* memory mode: NUL-terminated */
    size_t body_len;
};

struct fetch_request {
    const char *url;
    const struct fetch_endpoint *ep;
    const char *method;   /* NULL: GET (or HEAD with head); else e.g. "POST", "PUT" */
    const void *body;     /* request body for method; copied by libcurl's POSTFIELDS */
    size_t body_len;
    long connect_timeout_ms; /* 0: FETCH_CONNECT_TIMEOUT_S */
    bool head;
    bool no_redirects; /* report 3xx instead of following it */
    bool realm;        /* url is the token realm the registry named: credentials go there */
    bool want_trailers; /* a GET that accepts trailers (TE: trailers): see repr_digest */
    const struct curl_slist *headers;
    const char *range; /* "FIRST-LAST" or "FIRST-": a Range request (CURLOPT_RANGE), or NULL */
    long timeout_ms; /* 0: only the low-speed deadline; FETCH_META_TIMEOUT_MS: the metadata
                        deadline, the endpoint's metadata_timeout_ms when it sets one */
    size_t max_body; /* memory mode cap; 0 means 1 MiB */
    /*
     * Streaming mode when on_data is set: on_headers runs once the final
     * response's headers are in (before any body), on_data for each chunk.
     * A negative return aborts the transfer with that error.
     */
    int (*on_headers)(void *arg, const struct fetch_response *resp);
    int (*on_data)(void *arg, const void *data, size_t len);
    bool (*should_abort)(void *arg);
    void *arg;
};

int fetch_global_init(void);
void fetch_global_cleanup(void);

int fetch_perform(const struct fetch_request *req, struct fetch_response *resp);

/*
 * Appends header line h to *l: 0, or -ENOMEM with the whole list freed and
 * *l NULL, so a request never goes out with a header (an Authorization)
 * silently missing. The one way headers are added (curl_slist_append).
 */
int fetch_header_add(struct curl_slist **l, const char *h);
void fetch_response_clear(struct fetch_response *r);

/* GET into memory with the metadata deadline. */
int fetch_get(const char *url, const struct fetch_endpoint *ep, const struct curl_slist *headers,
              size_t max_body, struct fetch_response *resp);

/*
 * Resolves ref against base (RFC 3986) with libcurl's URL API; malloc'd, or
 * NULL when either does not parse or the result holds a byte that is not
 * printable ASCII (e.g. a percent-encoded 8-bit host the API decodes).
 */
char *fetch_url_resolve(const char *base, const char *ref);
/* scheme://host[:port] of a URL, lower-case host; malloc'd or NULL. */
char *fetch_url_origin(const char *url);
/* Percent-encodes one path segment (keeps unreserved characters); malloc'd. */
char *fetch_url_escape(const char *s);

#endif
