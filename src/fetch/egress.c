/*
 * egress: a proxy's configured origins, its allow_host list, and the
 * address rule (see include/upstreamfs/egress.h; the rules and their tests
 * are in docs/SECURITY.md). fetch.c applies them at every hop.
 */
#include "upstreamfs/egress.h"
#include "upstreamfs/fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EGRESS_ORIGINS_MAX 16

struct egress_policy {
    int refs; /* atomic */
    pthread_mutex_t mu;
    char *origins[EGRESS_ORIGINS_MAX]; /* "scheme://host:port", lower case; under mu */
    size_t n_origins;
    char **allow; /* NULL-terminated, fixed after new */
    bool pass;
};

struct egress_policy *egress_policy_new(char *const *allow_host, bool pass_credentials)
{
    struct egress_policy *p = calloc(1, sizeof(*p));
    size_t n = 0;
    if (!p)
        return NULL;
    while (allow_host && allow_host[n])
        n++;
    p->allow = calloc(n + 1, sizeof(char *));
    if (!p->allow) {
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(p->allow[i] = strdup(allow_host[i]))) {
            p->refs = 1;
            egress_policy_unref(p);
            return NULL;
        }
    }
    p->refs = 1;
    p->pass = pass_credentials;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

struct egress_policy *egress_policy_ref(struct egress_policy *p)
{
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

void egress_policy_unref(struct egress_policy *p)
{
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < p->n_origins; i++)
        free(p->origins[i]);
    for (size_t i = 0; p->allow && p->allow[i]; i++)
        free(p->allow[i]);
    free(p->allow);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int egress_policy_trust(struct egress_policy *p, const char *url)
{
    if (!p)
        return 0;
    char *o = fetch_url_origin(url);
    int rc = 0;
    if (!o)
        return -EINVAL;
    pthread_mutex_lock(&p->mu);
    bool have = false;
    for (size_t i = 0; i < p->n_origins && !have; i++)
        have = strcmp(p->origins[i], o) == 0;
    if (!have && p->n_origins == EGRESS_ORIGINS_MAX) {
        /* A variant that keeps naming new endpoints: the oldest learned one goes. */
        free(p->origins[1]);
        memmove(&p->origins[1], &p->origins[2], (EGRESS_ORIGINS_MAX - 2) * sizeof(char *));
        p->n_origins--;
    }
    if (!have) {
        p->origins[p->n_origins++] = o;
        o = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    free(o);
    return rc;
}

bool egress_origin_configured(struct egress_policy *p, const char *url)
{
    char *o = fetch_url_origin(url);
    bool found = false;
    if (!o)
        return false;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_origins && !found; i++)
        found = strcmp(p->origins[i], o) == 0;
    pthread_mutex_unlock(&p->mu);
    free(o);
    return found;
}

/* The host of an origin "scheme://host:port" (IPv6 in brackets), as a length into it. */
static size_t origin_host(const char *origin, const char **host)
{
    const char *h = strstr(origin, "://");
    h = h ? h + 3 : origin;
    const char *colon = strrchr(h, ':');
    *host = h;
    return colon ? (size_t)(colon - h) : strlen(h);
}

bool egress_host_configured(struct egress_policy *p, const char *host)
{
    bool found = false;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_origins && !found; i++) {
        const char *h;
        size_t n = origin_host(p->origins[i], &h);
        found = strlen(host) == n && strncasecmp(h, host, n) == 0;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

bool egress_pass_credentials(const struct egress_policy *p)
{
    return p->pass;
}

/* host without IPv6 brackets and one trailing dot, into buf; false when it does not fit. */
static bool host_bare(const char *host, char *buf, size_t cap)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
        host++, n -= 2;
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0 || n >= cap)
        return false;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return true;
}

bool egress_host_match(const char *pattern, const char *host)
{
    char h[256], pb[256];
    if (!host_bare(host, h, sizeof(h)) || !host_bare(pattern, pb, sizeof(pb)))
        return false;
    if (pb[0] == '*' && pb[1] == '.') {
        size_t hl = strlen(h), sl = strlen(pb + 1); /* ".suffix" */
        return sl > 1 && hl > sl && strcasecmp(h + hl - sl, pb + 1) == 0;
    }
    return strcasecmp(h, pb) == 0;
}

bool egress_host_allowed(const struct egress_policy *p, const char *host)
{
    for (size_t i = 0; p->allow && p->allow[i]; i++)
        if (egress_host_match(p->allow[i], host))
            return true;
    return false;
}

static const char *v4_refusal(uint32_t a)
{
    if ((a >> 24) == 0)
        return "unspecified (0.0.0.0/8)";
    if ((a >> 24) == 127)
        return "loopback (127.0.0.0/8)";
    if ((a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168))
        return "private (RFC 1918)";
    if ((a >> 22) == (100u << 2 | 1))
        return "shared address space (100.64.0.0/10)";
    if ((a >> 16) == (169u << 8 | 254))
        return "link-local (169.254.0.0/16, cloud instance metadata)";
    if ((a >> 28) == 0xe)
        return "multicast (224.0.0.0/4)";
    if ((a >> 28) == 0xf)
        return "reserved or broadcast (240.0.0.0/4)";
    return NULL;
}

static uint32_t v4_at(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static const char *v6_refusal(const uint8_t *b)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[12] = {0};
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_refusal(v4_at(b + 12));
    if (memcmp(b, zero, 12) == 0) {
        uint32_t tail = v4_at(b + 12);
        if (tail == 0)
            return "unspecified (::)";
        if (tail == 1)
            return "loopback (::1)";
        return v4_refusal(tail); /* IPv4-compatible ::a.b.c.d */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local (fe80::/10)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return "site-local (fec0::/10)";
    if ((b[0] & 0xfe) == 0xfc)
        return "unique-local (fc00::/7)";
    if (b[0] == 0xff)
        return "multicast (ff00::/8)";
    if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: 2002:a.b.c.d::/48 */
        return v4_refusal(v4_at(b + 2));
    return NULL;
}

const char *egress_addr_refusal(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return v4_refusal(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return v6_refusal(in6->sin6_addr.s6_addr);
    }
    return "not an IP address";
}

const char *egress_text_refusal(const char *ip, bool *is_ip)
{
    struct in_addr a4;
    struct in6_addr a6;
    char buf[64];
    *is_ip = true;
    if (inet_pton(AF_INET, ip, &a4) == 1)
        return v4_refusal(ntohl(a4.s_addr));
    if (host_bare(ip, buf, sizeof(buf)) && inet_pton(AF_INET6, buf, &a6) == 1)
        return v6_refusal(a6.s6_addr);
    *is_ip = false;
    return NULL;
}
