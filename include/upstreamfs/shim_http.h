/*
 * shim_http: the HTTP rules of the shim that need no server, so they can be
 * tested on their own: turning a request target into a safe path, choosing
 * the route, reading a Range header, parsing --listen, and the escaping
 * that index pages and log lines need.
 *
 * The path rule is the shim's containment guarantee: every route works on
 * the output of shim_http_path_normalise, which is a relative path of plain
 * components ("key/a/b") with no ".", "..", empty component, '/' hidden in
 * an escape, NUL or control byte. A request that needs any of those is
 * refused, never repaired, so no spelling of a path reaches a file outside
 * the cache or a proxy outside its own tree.
 */
#ifndef UPSTREAMFS_SHIM_HTTP_H
#define UPSTREAMFS_SHIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SHIM_PATH_MAX      4096 /* decoded path, bytes */
#define SHIM_COMPONENT_MAX 255  /* one component, bytes (NAME_MAX) */

/*
 * Decodes the path of a request target (origin form, without the query:
 * "/key/a%20b/c") into out ("key/a b/c"; "" for "/"). Empty components
 * ("a//b") are dropped; *trailing_slash says whether the target ended with
 * '/' (a directory asked for as one).
 *
 * Returns 0; -EINVAL for a target that is not origin form, a malformed
 * escape, an escaped '/' (%2f), a NUL or control byte (raw or escaped), or
 * a "." or ".." component (raw or escaped); -ENAMETOOLONG for a component
 * longer than SHIM_COMPONENT_MAX or a path longer than SHIM_PATH_MAX (or
 * outlen - 1).
 */
int shim_http_path_normalise(const char *target, char *out, size_t outlen, bool *trailing_slash);

/* The routes of include/upstreamfs/shim.h, chosen by the first component of a normalised path. */
enum shim_route {
    SHIM_ROUTE_ROOT,    /* "/": the index of proxies and registries */
    SHIM_ROUTE_PATH,    /* /<key-or-registry>/<path> */
    SHIM_ROUTE_V2,      /* /v2/... (registry API) */
    SHIM_ROUTE_API,     /* /api/... */
    SHIM_ROUTE_METRICS, /* /metrics */
    SHIM_ROUTE_HEALTHZ, /* /healthz */
    SHIM_ROUTE_OTHER,   /* reserved names without a handler, and refused targets */
    SHIM_ROUTE_COUNT
};

enum shim_route shim_http_route(const char *path);

/*
 * The Host rule (docs/SECURITY.md): whether a Host header names this server
 * as the shim accepts it: an IPv4 literal, a bracketed IPv6 literal,
 * "localhost", or one of names (--public-name; case-insensitive), each with
 * an optional port. Anything else, a missing Host included, is refused: a
 * page on another site that made its name resolve to this address (DNS
 * rebinding) still sends its own name.
 */
bool shim_http_host_allowed(const char *host, const char *const *names, size_t n_names);

/*
 * Turns the leading "//..." of a request target into "/" in place, so
 * "//evil.example/dir" is "/evil.example/dir": a target that starts with
 * "//" would make a Location built from it a network-path reference to
 * another host.
 */
void shim_http_target_collapse(char *target);
/* "root", "path", "v2", "api", "metrics", "healthz", "other": the metrics and log label. */
const char *shim_http_route_name(enum shim_route r);

/*
 * Reads a Range header (RFC 9110 14.2) for a representation of size bytes.
 * Returns 1 with *start and *len set for one satisfiable byte range; 0 when
 * the whole representation is to be sent (no header, another unit, several
 * ranges, a syntax error, or an unknown size < 0: a server may ignore
 * Range); -ERANGE when the range cannot be satisfied (416).
 */
int shim_http_range(const char *header, int64_t size, int64_t *start, int64_t *len);

/*
 * Splits "HOST:PORT" ("127.0.0.1:5000", "[::1]:5000", "localhost:8080")
 * into host and port. -EINVAL with a reason in msg for anything else.
 */
int shim_http_listen_parse(const char *s, char *host, size_t hostlen, unsigned *port, char *msg,
                           size_t msglen);

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into buf (30 bytes are enough). */
void shim_http_date(time_t t, char *buf, size_t len);

/* Appends s percent-encoded for use as one path segment of an href (RFC 3986 unreserved kept). */
int shim_http_href_escape(const char *s, char *out, size_t outlen);
/* Writes s with &, <, >, " and ' replaced by entities; -ENAMETOOLONG if out is too small. */
int shim_http_html_escape(const char *s, char *out, size_t outlen);
/* s for a log line: bytes outside printable ASCII, '"' and '\' as \xNN; cut with "..." at outlen.
 */
void shim_http_log_escape(const char *s, char *out, size_t outlen);

/* A Content-Type for a file name, from its extension; application/octet-stream by default. */
const char *shim_http_content_type(const char *name);

#endif
