/*
 * http: request-target normalisation, routing, Range, --listen parsing and
 * escaping for the shim (see shim_http.h).
 *
 * Normalisation decodes each component on its own and checks the decoded
 * bytes, so an escape can never smuggle a separator or a dot-segment past
 * the check: "%2e%2e" is "..", refused like "..", and "%2f" is refused
 * outright because an escaped slash would make one component name two
 * levels. Nothing here repairs a path; it accepts it as written or not.
 */
#include "upstreamfs/hash.h"
#include "upstreamfs/shim_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decodes raw[0..n) (one component) into comp; the decoded length or a negative errno. */
static int decode_component(const char *raw, size_t n, char *comp)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -EINVAL;
            if ((hi = hash_hex_value(raw[i + 1])) < 0 || (lo = hash_hex_value(raw[i + 2])) < 0)
                return -EINVAL;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            if (c == '/')
                return -EINVAL;
        }
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
        if (len >= SHIM_COMPONENT_MAX)
            return -ENAMETOOLONG;
        comp[len++] = (char)c;
    }
    comp[len] = '\0';
    return (int)len;
}

int shim_http_path_normalise(const char *target, char *out, size_t outlen, bool *trailing_slash)
{
    char comp[SHIM_COMPONENT_MAX + 1];
    size_t limit = outlen - 1 < SHIM_PATH_MAX ? outlen - 1 : SHIM_PATH_MAX;
    size_t used = 0;

    if (!outlen)
        return -ENAMETOOLONG;
    out[0] = '\0';
    *trailing_slash = false;
    if (!target || target[0] != '/')
        return -EINVAL;
    const char *p = target;
    while (*p) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0)
            break;
        int len = decode_component(p, n, comp);
        if (len < 0)
            return len;
        if (!strcmp(comp, ".") || !strcmp(comp, ".."))
            return -EINVAL;
        size_t need = (size_t)len + (used ? 1 : 0);
        if (need > limit - used)
            return -ENAMETOOLONG;
        if (used)
            out[used++] = '/';
        memcpy(out + used, comp, (size_t)len);
        used += (size_t)len;
        out[used] = '\0';
        p += n;
    }
    *trailing_slash = target[strlen(target) - 1] == '/';
    return 0;
}

enum shim_route shim_http_route(const char *path)
{
    size_t n = strcspn(path, "/");
    bool only = path[n] == '\0';
    if (n == 0)
        return SHIM_ROUTE_ROOT;
    if (n == 2 && !strncmp(path, "v2", 2))
        return SHIM_ROUTE_V2;
    if (n == 3 && !strncmp(path, "api", 3))
        return SHIM_ROUTE_API;
    if (n == 7 && !strncmp(path, "metrics", 7))
        return only ? SHIM_ROUTE_METRICS : SHIM_ROUTE_OTHER;
    if (n == 7 && !strncmp(path, "healthz", 7))
        return only ? SHIM_ROUTE_HEALTHZ : SHIM_ROUTE_OTHER;
    /* Reserved for the web page: never a proxy key, so never a path route. */
    if ((n == 2 && !strncmp(path, "ui", 2)) || (n == 6 && !strncmp(path, "static", 6)))
        return SHIM_ROUTE_OTHER;
    return SHIM_ROUTE_PATH;
}

bool shim_http_host_allowed(const char *host, const char *const *names, size_t n_names)
{
    char name[256];
    unsigned char addr[16];
    const char *end;
    if (!host || !*host)
        return false;
    if (host[0] == '[') { /* an IPv6 literal, "[::1]" or "[::1]:5000" */
        if (!(end = strchr(host, ']')) || (size_t)(end - host - 1) >= sizeof(name))
            return false;
        memcpy(name, host + 1, (size_t)(end - host - 1));
        name[end - host - 1] = '\0';
        if (inet_pton(AF_INET6, name, addr) != 1)
            return false;
        end++;
    } else {
        size_t n = strcspn(host, ":");
        if (n >= sizeof(name))
            return false;
        memcpy(name, host, n);
        name[n] = '\0';
        end = host + n;
    }
    if (*end == ':') { /* a port: 1 to 5 digits and nothing after */
        size_t d = strspn(end + 1, "0123456789");
        if (d < 1 || d > 5 || end[1 + d])
            return false;
    } else if (*end) {
        return false;
    }
    if (host[0] == '[' || inet_pton(AF_INET, name, addr) == 1 || !strcasecmp(name, "localhost"))
        return true;
    if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
        strlen(name))
        return false; /* no DNS name: whatever the names given say */
    for (size_t i = 0; i < n_names; i++)
        if (names[i] && !strcasecmp(name, names[i]))
            return true;
    return false;
}

void shim_http_target_collapse(char *target)
{
    size_t n = strspn(target, "/");
    if (n > 1)
        memmove(target + 1, target + n, strlen(target + n) + 1);
}

const char *shim_http_route_name(enum shim_route r)
{
    static const char *const names[SHIM_ROUTE_COUNT] = {
        [SHIM_ROUTE_ROOT] = "root",       [SHIM_ROUTE_PATH] = "path",
        [SHIM_ROUTE_V2] = "v2",           [SHIM_ROUTE_API] = "api",
        [SHIM_ROUTE_METRICS] = "metrics", [SHIM_ROUTE_HEALTHZ] = "healthz",
        [SHIM_ROUTE_OTHER] = "other",
    };
    return (unsigned)r < SHIM_ROUTE_COUNT ? names[r] : "other";
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads digits at *p into *v, saturating at INT64_MAX; false if there is none. */
static bool read_num(const char **p, int64_t *v)
{
    const char *s = *p;
    int64_t x = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        x = x > (INT64_MAX - d) / 10 ? INT64_MAX : x * 10 + d;
    }
    *p = s;
    *v = x;
    return true;
}

int shim_http_range(const char *header, int64_t size, int64_t *start, int64_t *len)
{
    int64_t first = -1, last = -1, suffix = -1;
    if (!header || size < 0)
        return 0;
    const char *p = skip_ows(header);
    if (strncasecmp(p, "bytes", 5) != 0)
        return 0;
    p = skip_ows(p + 5);
    if (*p++ != '=')
        return 0;
    if (strchr(p, ','))
        return 0; /* several ranges: the whole representation answers them all */
    p = skip_ows(p);
    if (*p == '-') {
        p++;
        if (!read_num(&p, &suffix))
            return 0;
    } else {
        if (!read_num(&p, &first) || *p++ != '-')
            return 0;
        if (isdigit((unsigned char)*p) && !read_num(&p, &last))
            return 0;
    }
    if (*skip_ows(p) != '\0')
        return 0;
    if (suffix >= 0) {
        if (suffix == 0 || size == 0)
            return -ERANGE;
        *start = size - (suffix < size ? suffix : size);
        *len = size - *start;
        return 1;
    }
    if (last >= 0 && last < first)
        return 0; /* invalid: ignored, as RFC 9110 allows */
    if (first >= size)
        return -ERANGE;
    if (last < 0 || last >= size)
        last = size - 1;
    *start = first;
    *len = last - first + 1;
    return 1;
}

int shim_http_listen_parse(const char *s, char *host, size_t hostlen, unsigned *port, char *msg,
                           size_t msglen)
{
    const char *h = s, *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(msg, msglen, "must be HOST:PORT or [IPV6]:PORT");
            return -EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(msg, msglen, "must be HOST:PORT (for example 127.0.0.1:5000)");
            return -EINVAL;
        }
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl)) {
            snprintf(msg, msglen, "an IPv6 address must be in brackets: [ADDR]:PORT");
            return -EINVAL;
        }
    }
    if (hl == 0 || hl >= hostlen) {
        snprintf(msg, msglen, "must name a host (for example 127.0.0.1:5000)");
        return -EINVAL;
    }
    const char *ps = colon + 1;
    unsigned long v = 0;
    if (!*ps || strlen(ps) > 5)
        goto bad_port;
    for (const char *q = ps; *q; q++) {
        if (!isdigit((unsigned char)*q))
            goto bad_port;
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535)
        goto bad_port;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned)v;
    return 0;
bad_port:
    snprintf(msg, msglen, "the port must be a number from 0 to 65535");
    return -EINVAL;
}

void shim_http_date(time_t t, char *buf, size_t len)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Spelled out rather than strftime'd, so no locale can change the names. */
    snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int shim_http_href_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = keep ? 1 : 3;
        if (o + need >= outlen)
            return -ENAMETOOLONG;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= outlen)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return 0;
}

int shim_http_html_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        }
        size_t n = rep ? strlen(rep) : 1;
        if (o + n >= outlen)
            return -ENAMETOOLONG;
        if (rep)
            memcpy(out + o, rep, n);
        else
            out[o] = *s;
        o += n;
    }
    if (o >= outlen)
        return -ENAMETOOLONG;
    out[o] = '\0';
    return 0;
}

void shim_http_log_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    if (!outlen)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[5];
        size_t n;
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", *p);
        else
            tmp[0] = (char)*p, tmp[1] = '\0', n = 1;
        if (o + n + 4 > outlen) {
            if (o + 4 <= outlen) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
}

/* .svg is shown by a browser (a chart's icon), inert like every served file (SHIM_CONTENT_CSP). */
const char *shim_http_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".yaml", "text/yaml"},        {".yml", "text/yaml"},
        {".json", "application/json"}, {".xml", "text/xml"},
        {".pom", "text/xml"},          {".html", "text/html; charset=utf-8"},
        {".txt", "text/plain"},        {".sha1", "text/plain"},
        {".sha256", "text/plain"},     {".sha512", "text/plain"},
        {".md5", "text/plain"},        {".asc", "text/plain"},
        {".prov", "text/plain"},       {".tgz", "application/gzip"},
        {".gz", "application/gzip"},   {".jar", "application/java-archive"},
        {".zip", "application/zip"},   {".whl", "application/zip"},
        {".svg", "image/svg+xml"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcasecmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}
