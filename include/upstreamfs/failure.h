/*
 * failure: the one failure policy of upstreamfs (docs/troubleshooting.md,
 * "Failure policy").
 *
 * Every failure of a request to a remote is classified once, where it
 * happens, into one cause; the cause's name is the word every output uses
 * (log, xattrs, shim bodies, /metrics, health). The cause decides the errno
 * the mount returns and whether the failure counts against the remote for
 * the back-off (src/engine/upstream.c):
 *
 *   cause      what happened                                errno         back-off
 *   dns        the name did not resolve (or timed out)      EHOSTUNREACH  yes
 *   connect    connection refused / host unreachable        ECONNREFUSED  yes
 *                                                           (EHOSTUNREACH when unreachable)
 *   tls        TLS handshake or certificate failed          EIO           yes
 *   timeout    no answer within the deadline                ETIMEDOUT     yes
 *   auth       401/403 from the remote, its token endpoint  EACCES        no
 *              or ECR
 *   http       any other unexpected status (5xx, 429: yes)  EREMOTEIO for yes for 5xx/429
 *                                                           5xx/429, else EIO
 *   digest     the bytes do not match their checksum        EIO           no
 *   too-large  the answer is over its cap                   EFBIG         no
 *   policy     refused by a rule (exclude, allow-host, ..)  EACCES        no
 *   offline    the proxy is offline                         ENETUNREACH   no
 *
 * 404/410 are not failures: they are absence (-ENOENT, remembered for the
 * negative TTL); a failure of the remote is never remembered as absence.
 */
#ifndef UPSTREAMFS_FAILURE_H
#define UPSTREAMFS_FAILURE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

enum failure_cause {
    FAILURE_NONE = 0,
    FAILURE_DNS,
    FAILURE_CONNECT,
    FAILURE_TLS,
    FAILURE_TIMEOUT,
    FAILURE_AUTH,
    FAILURE_HTTP,
    FAILURE_DIGEST,
    FAILURE_TOO_LARGE,
    FAILURE_POLICY,
    FAILURE_OFFLINE,
    FAILURE_CAUSE_COUNT
};

/* One classified failure. */
struct failure {
    enum failure_cause cause;
    long status;   /* the remote's HTTP status, 0 when none came */
    char code[40]; /* a registry's error code (TOOMANYREQUESTS, DENIED, ...) or "" */
};

/* The cause's word ("dns", "too-large", ...); "none" for FAILURE_NONE. */
const char *failure_cause_name(enum failure_cause c);
/* The cause a word names, or -1. */
int failure_cause_parse(const char *name);

/*
 * A libcurl result: its cause and the -errno fetch_perform returns for it.
 * os_errno is CURLINFO_OS_ERRNO; resolved says whether the name lookup had
 * finished (a time-out before it is a dns failure).
 */
enum failure_cause failure_of_curl(CURLcode c, long os_errno, bool resolved, int *err);

/*
 * An HTTP status: 2xx, 3xx and 404/410 are no failure (FAILURE_NONE);
 * 401/403 are auth; anything else http.
 */
enum failure_cause failure_of_status(long status);

/*
 * The status→errno map every driver uses: 2xx → 0, 404/410 → -ENOENT,
 * 401/403 → -EACCES, 429/5xx → -EREMOTEIO, anything else -EIO.
 */
int failure_status_errno(long status);

/* The cause→errno map (the table above); a negative errno, 0 for FAILURE_NONE. */
int failure_errno(const struct failure *f);

/* The cause an errno most likely came from (the reverse of the map; FAILURE_NONE for 0/ENOENT). */
enum failure_cause failure_cause_of_errno(int err);

/*
 * The one rule that feeds the back-off: does this outcome say the remote is
 * unwell? Transport failures (dns, connect, tls, timeout) and 5xx/429 do;
 * an answer the remote gave (auth, other statuses, absence, wrong bytes, too
 * large) says it is alive.
 */
bool failure_is_remote(const struct failure *f);

/*
 * The outcome of one request: rc from fetch_perform (or -errno after it) and
 * the status; cause from the fetch when rc < 0 (resp_cause), else from the
 * status. Returns true when f holds a failure.
 */
bool failure_classify(int rc, long status, enum failure_cause resp_cause, struct failure *f);

/* "cause status|-" (e.g. "auth 401", "dns -") into buf. */
void failure_format(const struct failure *f, char *buf, size_t n);

/* A URL with the user info and the query removed (for logs); into buf. */
void failure_url_redact(const char *url, char *buf, size_t n);

/* RFC 3339 UTC time of a Unix time in seconds, into buf (at least 21 bytes). */
void failure_time_rfc3339(int64_t t, char *buf, size_t n);

/*
 * The HTTP status the shim answers for an engine errno: 404 for absence,
 * 504 for timeout, 502 for every failure of the remote (auth included: a
 * 401 would make clients ask for the shim's credentials), 507 disk full,
 * 503 cancelled, 500 otherwise.
 */
int failure_http_status(int err);

/*
 * The last failure classified on this thread, so the front door that made
 * the request (the mount's xattr, the shim's error body) names the cause a
 * driver found: set where a request is classified, cleared at the start of
 * every engine operation that reads it (engine_file_open, the lookup, a
 * listing), so a note never outlives its operation on a FUSE or shim thread.
 * recorded: the proxy's health already counted it.
 */
struct failure_note {
    struct failure f;
    char proxy[64];
    char url[512]; /* redacted */
    bool recorded;
};
void failure_note_set(const char *proxy, const struct failure *f, const char *url, bool recorded);
/* The note, or false when none was set since the last clear. */
bool failure_note_get(struct failure_note *out);
void failure_note_clear(void);

#endif
