/*
 * shim: the HTTP daemon, its routing and its access log (see shim.h; how it
 * answers is reply.c).
 *
 * libmicrohttpd runs a thread per connection (poll-based, so no FD_SETSIZE
 * limit). That model lets a handler block in an engine call (a lookup that
 * asks the remote, a read waiting for bytes of a running download) without
 * stalling anyone else, and lets every wait be cut short: the engine polls
 * shim__cancelled, which says yes once the client has hung up or the shim
 * is stopping. The engine takes its locks only inside its calls, so a slow
 * client never holds one; it holds its own thread and nothing more.
 *
 * Request targets reach the handler still escaped: MHD's unescaping is
 * replaced by the identity, so that shim_http_path_normalise sees "%2f" and
 * "%00" as written and can refuse them (MHD would turn them into a
 * separator and a string terminator). Connections are capped in number,
 * per client address, in idle time and in memory (which bounds the request
 * line and headers); request bodies are read only by /api, up to 1 MiB.
 *
 * Authentication (--htpasswd) is checked on the first call for a request,
 * before any body is read, for every route but /healthz. The access log
 * line is written when MHD reports the request complete: client, method,
 * path (escaped, without the query, which may carry tokens), route,
 * status, body bytes, and whether a file came from the cache.
 */
#include "shim_i.h"
#include "ui.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/file_read.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/secret.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_MAX (1024 * 1024)

/* The options, checked and loaded: what shim_start needs to bind and serve. */
struct prep {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[256];
    unsigned port;
    bool loopback;
    char *cert, *key;
    size_t key_len;
    struct shim_htpasswd *auth;
};

static void prep_clear(struct prep *p)
{
    free(p->cert);
    if (p->key) {
        secret_wipe(p->key, p->key_len);
        free(p->key);
    }
    shim_htpasswd_free(p->auth);
    memset(p, 0, sizeof(*p));
}

/* Reads a whole small file, NUL-terminated; 0 or a negative errno (-EFBIG: not a small file). */
static int read_small(const char *path, size_t max, char **out, size_t *len)
{
    int rc = file_read_bounded(path, max, 0, out, len, NULL);
    return rc == -EINVAL ? -EFBIG : rc;
}

static bool is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static int load_pem(const char *field, const char *path, char **out, size_t *len,
                    struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    int rc = read_small(path, PEM_MAX, out, len);
    if (rc == -EFBIG)
        config_error_set(err, field, "%s must be a regular file of at most %d bytes",
                         config_quote(q, sizeof(q), path), PEM_MAX);
    else if (rc < 0)
        config_error_set(err, field, "cannot read %s: %s", config_quote(q, sizeof(q), path),
                         strerror(-rc));
    else if (!strstr(*out, "-----BEGIN "))
        config_error_set(err, field, "%s is not a PEM file", config_quote(q, sizeof(q), path)),
            rc = -EINVAL;
    return rc < 0 ? -EINVAL : 0;
}

/* A --public-name: a DNS name (letters, digits, '-', '.'), not an address. */
static bool public_name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 253 || n[0] == '-' || n[0] == '.' || n[len - 1] == '.' ||
        strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != len)
        return false;
    return strspn(n, "0123456789.") != len; /* IPv4 literals are answered anyway */
}

/* --admin users must be in the htpasswd file; --public-name values must be names. */
static int check_names(const struct shim_opts *o, const struct shim_htpasswd *auth,
                       struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    for (size_t i = 0; i < o->n_admins; i++) {
        if (!auth) {
            config_error_set(err, "admin",
                             "names an htpasswd user: give --htpasswd FILE with it (without "
                             "--htpasswd the admin token is the API's only credential)");
            return -EINVAL;
        }
        if (!shim_htpasswd_has_user(auth, o->admins[i])) {
            config_error_set(err, "admin", "%s is not a user of the htpasswd file",
                             config_quote(q, sizeof(q), o->admins[i]));
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < o->n_public_names; i++)
        if (!public_name_valid(o->public_names[i])) {
            config_error_set(err, "public_name",
                             "must be a DNS name (letters, digits, '-' and '.'; IP addresses "
                             "and localhost are answered anyway), got %s",
                             config_quote(q, sizeof(q), o->public_names[i]));
            return -EINVAL;
        }
    return 0;
}

/* Checks every option and loads the files; -EINVAL with err on the first problem. */
static int prepare(const struct shim_opts *o, struct prep *p, struct config_error *err)
{
    const char *listen = o->listen ? o->listen : SHIM_DEFAULT_LISTEN;
    char q[CONFIG_QUOTE_MAX], why[160], portstr[8];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = -EINVAL;

    memset(p, 0, sizeof(*p));
    if (shim_http_listen_parse(listen, p->host, sizeof(p->host), &p->port, why, sizeof(why)) < 0) {
        config_error_set(err, "listen", "%s (got %s)", why, config_quote(q, sizeof(q), listen));
        goto out;
    }
    snprintf(portstr, sizeof(portstr), "%u", p->port);
    int g = getaddrinfo(p->host, portstr, &hints, &ai);
    if (g != 0 || !ai) {
        config_error_set(err, "listen", "cannot resolve %s: %s",
                         config_quote(q, sizeof(q), p->host), gai_strerror(g));
        goto out;
    }
    memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
    p->addr_len = ai->ai_addrlen;
    p->loopback = is_loopback(ai->ai_addr);
    if (o->default_name && config_key_validate("default", o->default_name, err) < 0)
        goto out;
    if (!o->tls_cert != !o->tls_key) {
        config_error_set(err, o->tls_cert ? "tls_key" : "tls_cert",
                         "give --tls-cert and --tls-key together");
        goto out;
    }
    if (o->htpasswd && o->open) {
        config_error_set(err, "open", "give --htpasswd or --open, not both");
        goto out;
    }
    if (!p->loopback && !o->open && !(o->tls_cert && o->htpasswd)) {
        config_error_set(err, "listen",
                         "%s is not a loopback address: serving it needs TLS and client "
                         "authentication (--tls-cert, --tls-key and --htpasswd), or --open to "
                         "accept an open cache",
                         config_quote(q, sizeof(q), p->host));
        goto out;
    }
    size_t cert_len = 0;
    if (o->tls_cert && ((rc = load_pem("tls_cert", o->tls_cert, &p->cert, &cert_len, err)) < 0 ||
                        (rc = load_pem("tls_key", o->tls_key, &p->key, &p->key_len, err)) < 0))
        goto out;
    if (o->tls_cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        config_error_set(err, "tls_cert", "this libmicrohttpd was built without TLS");
        rc = -EINVAL;
        goto out;
    }
    if (o->htpasswd && shim_htpasswd_load(o->htpasswd, &p->auth, why, sizeof(why)) < 0) {
        config_error_set(err, "htpasswd", "%s: %s", config_quote(q, sizeof(q), o->htpasswd), why);
        rc = -EINVAL;
        goto out;
    }
    if ((rc = check_names(o, p->auth, err)) < 0)
        goto out;
    rc = 0;
out:
    if (ai)
        freeaddrinfo(ai);
    if (rc < 0)
        prep_clear(p);
    return rc;
}

int shim_opts_check(const struct shim_opts *o, struct config_error *err)
{
    struct prep p;
    int rc = prepare(o, &p, err);
    if (rc == 0)
        prep_clear(&p);
    return rc;
}

/* ---- small routes ----------------------------------------------------------------------- */

static enum MHD_Result healthz(struct shim_req *r)
{
    struct engine_stats st;
    if (strcmp(r->method, "GET") && !r->head)
        return shim__reply_method(r, "GET, HEAD");
    if (engine_stats(r->s->e, &st) < 0)
        return shim__reply_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "engine not answering");
    return shim__reply_text(r, MHD_HTTP_OK, "ok");
}

static enum MHD_Result metrics(struct shim_req *r)
{
    struct engine_stats st;
    char *page = NULL;
    size_t len = 0;
    if (strcmp(r->method, "GET") && !r->head)
        return shim__reply_method(r, "GET, HEAD");
    bool up = engine_stats(r->s->e, &st) == 0;
    struct health_snapshot *h = NULL;
    size_t nh = 0;
    if (up && engine_health(r->s->e, &h, &nh) < 0)
        nh = 0;
    int frc = shim_metrics_format_proxies(&r->s->metrics, up ? &st : NULL, h, nh, &page, &len);
    free(h);
    if (frc < 0)
        return shim__reply_errno(r, -ENOMEM, "metrics");
    enum MHD_Result ok = shim__reply_data(r, MHD_HTTP_OK, "text/plain; version=0.0.4", page, len);
    free(page);
    return ok;
}

static enum MHD_Result dispatch(struct shim_req *r)
{
    switch (r->route) {
    case SHIM_ROUTE_ROOT:
        return shim__ui(r); /* the web page (ui.c) */
    case SHIM_ROUTE_PATH:
        return shim__files(r);
    case SHIM_ROUTE_V2:
        return shim__v2(r);
    case SHIM_ROUTE_API:
        /* The page's additions to the API (ui_api.c): /api/v1/cache..., /api/v1/validate/... */
        if (shim__ui_api_owns(r->path))
            return shim__ui_api(r);
        return shim__api(r);
    case SHIM_ROUTE_METRICS:
        return metrics(r);
    case SHIM_ROUTE_HEALTHZ:
        return healthz(r);
    default:
        if (shim__ui_owns(r->path)) /* /ui/... */
            return shim__ui(r);
        return shim__reply_text(r, MHD_HTTP_NOT_FOUND, "not found");
    }
}

/* ---- MHD callbacks ---------------------------------------------------------------------- */

/* Leaves targets escaped, so normalisation sees them as sent (see the file comment). */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("shim: %s", line);
}

static struct shim_req *req_new(struct shim *s, struct MHD_Connection *c, const char *url,
                                const char *method)
{
    struct shim_req *r = calloc(1, sizeof(*r));
    if (!r || !(r->target = strdup(url))) {
        free(r);
        return NULL;
    }
    shim_http_target_collapse(r->target); /* "//host/x" is "/host/x": no redirect leaves */
    r->s = s;
    r->c = c;
    r->method = method;
    r->head = !strcmp(method, "HEAD");
    r->sock = -1;
    r->route = SHIM_ROUTE_OTHER;
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    shim_buf_init(&r->body, SHIM_API_BODY_MAX);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(r->client, sizeof(r->client), "-");
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client,
                      sizeof(r->client));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client,
                      sizeof(r->client));
    }
    ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        r->sock = ci->connect_fd;
    atomic_fetch_add(&s->metrics.active, 1);
    return r;
}

/*
 * Normalises the target into r->path. Some protocols put an escaped '/' in a
 * name (npm's "@scope%2fname"), which the normalisation refuses; such a
 * target is normalised again with each "%2f" as a separator, so every
 * component is still checked, and marked: only a path route whose driver
 * says the protocol has such names serves it (shim__files).
 */
static int normalise(struct shim_req *r)
{
    int rc = shim_http_path_normalise(r->target, r->path, sizeof(r->path), &r->slash);
    if (rc != -EINVAL || !strcasestr(r->target, "%2f"))
        return rc;
    char *t = strdup(r->target);
    if (!t)
        return -ENOMEM;
    char *w = t;
    for (const char *p = r->target; *p;) {
        if (p[0] == '%' && p[1] == '2' && (p[2] == 'f' || p[2] == 'F')) {
            *w++ = '/';
            p += 3;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    rc = shim_http_path_normalise(t, r->path, sizeof(r->path), &r->slash);
    free(t);
    r->escaped_slash = rc == 0;
    return rc;
}

/* The first call for a request: route, authenticate, and answer or wait for the body. */
static enum MHD_Result first_call(struct shim_req *r)
{
    int rc = normalise(r);
    if (rc == 0 && r->escaped_slash && shim_http_route(r->path) != SHIM_ROUTE_PATH)
        rc = -EINVAL;
    if (rc < 0) {
        return shim__reply_text(r,
                                rc == -ENAMETOOLONG ? MHD_HTTP_URI_TOO_LONG : MHD_HTTP_BAD_REQUEST,
                                rc == -ENAMETOOLONG ? "request path too long"
                                                    : "bad request path: escaped '/', NUL or "
                                                      "control byte, '.' or '..' component, or "
                                                      "malformed escape");
    }
    r->route = shim_http_route(r->path);
    enum MHD_Result refused;
    if (r->route != SHIM_ROUTE_HEALTHZ && !shim__admitted(r, &refused))
        return refused;
    const char *cl = shim__header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool has_body =
        (cl && strcmp(cl, "0") != 0) || shim__header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    bool takes_body =
        r->route == SHIM_ROUTE_API && (!strcmp(r->method, "POST") || !strcmp(r->method, "PUT"));
    /*
     * Only /api's POST and PUT read a body. Any other request is answered at
     * once: MHD then never reads its body (and closes the connection after
     * the reply), so nobody can keep a thread busy feeding an endless one.
     */
    if (has_body && !takes_body)
        return dispatch(r);
    if (takes_body) {
        static const char too_big[] =
            "{\"error\":{\"field\":\"body\",\"message\":\"must be at most 1 MiB\"}}\n";
        if (cl && strtoull(cl, NULL, 10) > SHIM_API_BODY_MAX)
            return shim__reply_data(r, MHD_HTTP_CONTENT_TOO_LARGE, "application/json", too_big,
                                    strlen(too_big));
        r->wants_body = true;
    }
    /*
     * Answer on the next call, once MHD has the whole request: a reply queued
     * on the first call counts as early and costs the connection its
     * keep-alive.
     */
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct shim *s = cls;
    struct shim_req *r = *con_cls;
    (void)version;
    if (!r) {
        if (!(r = req_new(s, c, url, method)))
            return MHD_NO;
        *con_cls = r;
        return first_call(r);
    }
    if (*upload_data_size) {
        /* Bodies of requests answered early are dropped; /api's is kept, up to the cap (a
         * chunked one past it drops the connection). first_call refused all others. */
        if (!r->replied &&
            (!r->wants_body || shim_buf_append(&r->body, upload_data, *upload_data_size) < 0))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->replied)
        return MHD_YES;
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct shim *s = cls;
    struct shim_req *r = *con_cls;
    struct timespec now;
    char path[300];
    (void)c;
    if (!r)
        return;
    *con_cls = NULL;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (long)((now.tv_sec - r->started.tv_sec) * 1000 +
                     (now.tv_nsec - r->started.tv_nsec) / 1000000);
    shim_http_log_escape(r->target, path, sizeof(path));
    if (r->status)
        shim_metrics_request(&s->metrics, r->route, r->status, r->bytes, r->cache);
    log_info("http %s \"%s %s\" route=%s status=%d bytes=%llu cache=%s %ldms%s", r->client,
             r->method, path, shim_http_route_name(r->route), r->status,
             (unsigned long long)r->bytes,
             r->cache == SHIM_CACHE_HIT    ? "hit"
             : r->cache == SHIM_CACHE_MISS ? "miss"
                                           : "-",
             ms, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    atomic_fetch_sub(&s->metrics.active, 1);
    engine_file_close(r->file);
    shim_buf_free(&r->body);
    free(r->target);
    free(r);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int strv_copy(const char *const *src, size_t n, char ***out, size_t *nout)
{
    char **v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = strdup(src[i]))) {
            strv_free(v, n);
            return -ENOMEM;
        }
    *out = v;
    *nout = n;
    return 0;
}

/* The listening socket, made here so a failure has an errno to report. */
static int listen_socket(const struct prep *p, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    int one = 1;
    int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&p->addr, p->addr_len) < 0 || listen(fd, 128) < 0) {
        int rc = -errno;
        config_error_set(err, "listen", "cannot listen on %s port %u: %s",
                         config_quote(q, sizeof(q), p->host), p->port, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}

/*
 * Copies into s what it keeps of the options (names, admins, public names, the state dir and
 * its admin token) and takes the TLS pair and the htpasswd table from p. 0, or -ENOMEM or the
 * admin token's failure (err filled).
 */
static int adopt_opts(struct shim *s, const char *state_dir, const struct shim_opts *o,
                      struct prep *p, struct config_error *err)
{
    int rc;
    if (o->default_name && !(s->default_name = strdup(o->default_name)))
        return -ENOMEM;
    if ((rc = shim_admin_token(state_dir, s->admin_token, err)) < 0)
        return rc;
    size_t tp = strlen(state_dir) + sizeof(SHIM_ADMIN_TOKEN_FILE) + 1;
    if (!(s->state_dir = strdup(state_dir)) || !(s->host = strdup(p->host)) ||
        !(s->token_path = malloc(tp)) ||
        snprintf(s->token_path, tp, "%s/%s", state_dir, SHIM_ADMIN_TOKEN_FILE) < 0 ||
        strv_copy(o->admins, o->n_admins, &s->admins, &s->n_admins) < 0 ||
        strv_copy(o->public_names, o->n_public_names, &s->public_names, &s->n_public_names) < 0)
        return -ENOMEM;
    s->auth = p->auth;
    s->cache_public = o->cache_public;
    s->tls_cert = p->cert;
    s->tls_key = p->key;
    s->tls_key_len = p->key_len;
    p->auth = NULL;
    p->cert = p->key = NULL;
    return 0;
}

/*
 * Starts libmicrohttpd on the listening socket fd (of address family family): a thread per
 * connection, the connection caps, the escaped-target callback, TLS when s has a certificate.
 * On success MHD owns fd. 0, or -EINVAL (TLS pair refused) or -EIO, err filled.
 */
static int start_daemon(struct shim *s, int fd, int family, struct config_error *err)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls_cert)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[16];
    size_t n = 0;
    /* The logger first, so MHD reports problems with the options after it through it. */
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)(void *)mhd_log, s};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, SHIM_CONN_LIMIT, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, SHIM_CONN_PER_IP, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, SHIM_IDLE_TIMEOUT, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, SHIM_CONN_MEMORY, NULL};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)(void *)on_completed, s};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)(void *)keep_escaped, s};
    if (s->tls_cert) {
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, ops,
                            MHD_OPTION_END);
    if (s->d)
        return 0;
    config_error_set(err, s->tls_cert ? "tls_cert" : "listen",
                     s->tls_cert ? "cannot start the HTTPS server (do the certificate and "
                                   "the key belong together?)"
                                 : "cannot start the HTTP server");
    return s->tls_cert ? -EINVAL : -EIO;
}

int shim_start(struct engine *e, const char *state_dir, const struct shim_opts *o,
               struct shim **out, struct config_error *err)
{
    struct prep p;
    struct shim *s = NULL;
    int fd = -1, rc;

    *out = NULL;
    if ((rc = prepare(o, &p, err)) < 0)
        return rc;
    if (!(s = calloc(1, sizeof(*s)))) {
        rc = -ENOMEM;
        goto fail;
    }
    s->e = e;
    pthread_mutex_init(&s->st_mu, NULL);
    shim_metrics_init(&s->metrics);
    atomic_init(&s->stopping, false);
    if ((rc = state_open(state_dir, &s->st)) < 0) {
        config_error_set(err, "state", "cannot open the state dir: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = adopt_opts(s, state_dir, o, &p, err)) < 0)
        goto fail;
    if ((fd = listen_socket(&p, err)) < 0) {
        rc = fd;
        goto fail;
    }
    if ((rc = start_daemon(s, fd, p.addr.ss_family, err)) < 0)
        goto fail;
    fd = -1; /* MHD owns the socket now */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di && di->port ? di->port : p.port;
    log_info("shim: listening on %s://%s%s%s:%u/%s%s", s->tls_cert ? "https" : "http",
             p.addr.ss_family == AF_INET6 ? "[" : "", p.host,
             p.addr.ss_family == AF_INET6 ? "]" : "", s->port,
             s->auth ? " (htpasswd authentication)" : "", p.loopback ? "" : " (not loopback)");
    prep_clear(&p);
    *out = s;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    prep_clear(&p);
    shim_stop(s);
    return rc;
}

unsigned shim_port(const struct shim *s)
{
    return s->port;
}

void shim_print_page(const struct shim *s, FILE *f)
{
    shim_admin_print(f, s->host, s->port, s->tls_cert != NULL, s->admin_token, s->state_dir);
}

void shim_stop(struct shim *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    if (s->d)
        MHD_stop_daemon(s->d);
    index_close(s->ix);
    state_close(s->st);
    pthread_mutex_destroy(&s->st_mu);
    shim_htpasswd_free(s->auth);
    free(s->tls_cert);
    if (s->tls_key) {
        secret_wipe(s->tls_key, s->tls_key_len);
        free(s->tls_key);
    }
    free(s->default_name);
    free(s->token_path);
    free(s->state_dir);
    free(s->host);
    strv_free(s->admins, s->n_admins);
    strv_free(s->public_names, s->n_public_names);
    secret_wipe(s->admin_token, sizeof(s->admin_token));
    free(s);
}
