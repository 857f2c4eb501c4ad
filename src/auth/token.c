/*
 * token: WWW-Authenticate parsing, token answers, and the per-proxy token
 * cache (see token.h).
 *
 * The challenge parser is a single forward pass over the value with no
 * recursion and no allocation until a parameter it wants is complete; every
 * value is length-checked against TOKEN_PARAM_MAX before it is copied. A
 * challenge list is "scheme [token68 | param, param...], scheme ...": after
 * a comma, a token followed by '=' continues the current challenge, any
 * other token starts the next one.
 *
 * The cache's invariant: at most one fetch per (realm, service, scope) is in
 * flight (the single flight of src/util/single_flight.c, joined under the
 * cache's lock so no caller misses a token stored meanwhile); others wait
 * for it with a deadline and then look again. Entries are found again by key
 * after every unlock, because the table may have grown (and moved)
 * meanwhile. A token is never logged.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/token.h"
#include "upstreamfs/log.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/single_flight.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- challenges ------------------------------------------------------------------------- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token68_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~+/", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static size_t token_len(const char *p)
{
    size_t n = 0;
    while (is_tchar(p[n]))
        n++;
    return n;
}

/* Reads a quoted-string at p (which is '"') into buf (TOKEN_PARAM_MAX + 1); NULL when malformed. */
static const char *read_quoted(const char *p, char *buf, size_t *len)
{
    size_t o = 0;
    for (p++; *p != '"'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0')
            return NULL; /* unterminated */
        if (c == '\\') {
            p++;
            c = (unsigned char)*p;
            if (c == '\0')
                return NULL;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return NULL;
        if (o == TOKEN_PARAM_MAX)
            return NULL; /* overlong */
        buf[o++] = (char)c;
    }
    buf[o] = '\0';
    *len = o;
    return p + 1;
}

struct params {
    char *realm, *service, *scope, *error;
};

static void params_clear(struct params *pr)
{
    free(pr->realm);
    free(pr->service);
    free(pr->scope);
    free(pr->error);
    memset(pr, 0, sizeof(*pr));
}

/* Keeps a parameter the caller cares about; the first occurrence of a name wins. */
static int params_set(struct params *pr, const char *name, size_t nl, const char *val, size_t vl)
{
    char **slot = NULL;
    if (nl == 5 && strncasecmp(name, "realm", 5) == 0)
        slot = &pr->realm;
    else if (nl == 7 && strncasecmp(name, "service", 7) == 0)
        slot = &pr->service;
    else if (nl == 5 && strncasecmp(name, "scope", 5) == 0)
        slot = &pr->scope;
    else if (nl == 5 && strncasecmp(name, "error", 5) == 0)
        slot = &pr->error;
    if (!slot || *slot)
        return 0;
    *slot = strndup(val, vl);
    return *slot ? 0 : -ENOMEM;
}

static bool realm_usable(const char *realm)
{
    if (!realm || (strncasecmp(realm, "http://", 7) != 0 && strncasecmp(realm, "https://", 8) != 0))
        return false;
    for (const unsigned char *c = (const unsigned char *)realm; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '#')
            return false;
    return true;
}

/*
 * Reads a challenge's auth-params at *pp (name=token or name="quoted", comma-separated) into
 * cur when scheme is one kept, up to a token not followed by '=' (the next challenge's scheme,
 * where *pp is left) or the end. val is scratch of TOKEN_PARAM_MAX + 1. 0, -EINVAL, -ENOMEM.
 */
static int parse_params(const char **pp, enum token_scheme scheme, char *val, struct params *cur)
{
    const char *p = *pp;
    int rc = 0;
    for (;;) {
        p = skip_ows(p);
        while (*p == ',')
            p = skip_ows(p + 1);
        if (!*p)
            break;
        size_t nl = token_len(p);
        if (nl == 0)
            return -EINVAL;
        const char *q = skip_ows(p + nl);
        if (*q != '=')
            break; /* the next challenge's scheme */
        const char *name = p;
        q = skip_ows(q + 1);
        size_t vl;
        if (*q == '"') {
            q = read_quoted(q, val, &vl);
            if (!q)
                return -EINVAL;
        } else {
            vl = token_len(q);
            if (vl == 0 || vl > TOKEN_PARAM_MAX)
                return -EINVAL;
            memcpy(val, q, vl);
            val[vl] = '\0';
            q += vl;
        }
        if (scheme != TOKEN_SCHEME_NONE && (rc = params_set(cur, name, nl, val, vl)) < 0)
            return rc;
        p = skip_ows(q);
        if (*p && *p != ',')
            return -EINVAL;
    }
    *pp = p;
    return 0;
}

/*
 * Reads one challenge at *pp (a scheme, then a token68 or auth-params): *scheme is Bearer,
 * Basic or NONE (another scheme, whose parameters are skipped), its parameters go to cur, and
 * *pp is left after it. 0, -EINVAL, -ENOMEM.
 */
static int parse_challenge(const char **pp, char *val, struct params *cur,
                           enum token_scheme *scheme)
{
    const char *p = *pp;
    size_t sl = token_len(p);
    if (sl == 0)
        return -EINVAL;
    *scheme = TOKEN_SCHEME_NONE;
    if (sl == 6 && strncasecmp(p, "bearer", 6) == 0)
        *scheme = TOKEN_SCHEME_BEARER;
    else if (sl == 5 && strncasecmp(p, "basic", 5) == 0)
        *scheme = TOKEN_SCHEME_BASIC;
    p += sl;
    if (*p && *p != ' ' && *p != '\t' && *p != ',')
        return -EINVAL;
    p = skip_ows(p);
    /* token68 ("Basic dXNlcjpw", "Negotiate abc==") ends the challenge. */
    const char *t = p;
    while (is_token68_char(*t))
        t++;
    while (*t == '=')
        t++;
    if (t > p && (*skip_ows(t) == '\0' || *skip_ows(t) == ',')) {
        *pp = skip_ows(t);
        return 0;
    }
    /* auth-params until a token that is not followed by '=' */
    *pp = p;
    return parse_params(pp, *scheme, val, cur);
}

/*
 * Moves the chosen challenge into out: Bearer (which needs a usable realm) over Basic.
 * What is moved is taken out of *bearer / *basic. 0, -EINVAL, or -ENOENT for neither.
 */
static int challenge_take(struct params *bearer, bool have_bearer, struct params *basic,
                          bool have_basic, struct token_challenge *out)
{
    if (have_bearer) {
        if (!realm_usable(bearer->realm))
            return -EINVAL;
        out->scheme = TOKEN_SCHEME_BEARER;
        out->realm = bearer->realm;
        out->service = bearer->service;
        out->scope = bearer->scope;
        out->error = bearer->error;
        memset(bearer, 0, sizeof(*bearer));
        return 0;
    }
    if (have_basic) {
        out->scheme = TOKEN_SCHEME_BASIC;
        out->realm = basic->realm;
        basic->realm = NULL;
        return 0;
    }
    return -ENOENT;
}

/* The challenges one after the other (parse_challenge), the first of each scheme kept, then
 * the one to use (challenge_take); the contract is in include/upstreamfs/token.h. */
int token_challenge_parse(const char *header, struct token_challenge *out)
{
    struct params bearer = {0}, basic = {0}, cur = {0};
    bool have_bearer = false, have_basic = false;
    char *val = NULL;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (!header || strlen(header) > TOKEN_HEADER_MAX)
        return header ? -EINVAL : -ENOENT;
    val = malloc(TOKEN_PARAM_MAX + 1);
    if (!val)
        return -ENOMEM;
    const char *p = header;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        enum token_scheme scheme;
        if ((rc = parse_challenge(&p, val, &cur, &scheme)) < 0)
            goto out;
        /* The first challenge of each scheme is the one used. */
        if (scheme == TOKEN_SCHEME_BEARER && !have_bearer) {
            bearer = cur;
            have_bearer = true;
        } else if (scheme == TOKEN_SCHEME_BASIC && !have_basic) {
            basic = cur;
            have_basic = true;
        } else {
            params_clear(&cur);
        }
        memset(&cur, 0, sizeof(cur));
    }
    rc = challenge_take(&bearer, have_bearer, &basic, have_basic, out);
out:
    params_clear(&cur);
    params_clear(&bearer);
    params_clear(&basic);
    free(val);
    return rc;
}

void token_challenge_clear(struct token_challenge *c)
{
    free(c->realm);
    free(c->service);
    free(c->scope);
    free(c->error);
    memset(c, 0, sizeof(*c));
}

/* ---- answers ---------------------------------------------------------------------------- */

static bool token_chars_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return false; /* it becomes a header line: no CR, LF, spaces or controls */
    return true;
}

int token_response_parse(const char *body, size_t len, char **token, int64_t *lifetime_s, char *err,
                         size_t errlen)
{
    json_error_t jerr;
    int rc = -EIO;
    *token = NULL;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "not JSON: %s", jerr.text);
        return -EIO;
    }
    json_t *t = json_object_get(root, "token");
    if (!json_is_string(t) || !json_string_value(t)[0])
        t = json_object_get(root, "access_token");
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
    } else if (!json_is_string(t)) {
        snprintf(err, errlen, "no token or access_token");
    } else if (!token_chars_ok(json_string_value(t))) {
        snprintf(err, errlen,
                 "the token is empty, too long or has characters a header cannot carry");
    } else {
        json_t *ex = json_object_get(root, "expires_in");
        int64_t life = TOKEN_DEFAULT_LIFE_S;
        if (json_is_integer(ex) && json_integer_value(ex) > 0)
            life = (int64_t)json_integer_value(ex);
        else if (json_is_real(ex) && json_real_value(ex) >= 1.0)
            life = json_real_value(ex) > TOKEN_MAX_LIFE_S ? TOKEN_MAX_LIFE_S
                                                          : (int64_t)json_real_value(ex);
        if (life > TOKEN_MAX_LIFE_S)
            life = TOKEN_MAX_LIFE_S;
        *token = strdup(json_string_value(t));
        *lifetime_s = life;
        rc = *token ? 0 : -ENOMEM;
    }
    json_decref(root);
    return rc;
}

int64_t token_refresh_margin_ms(int64_t lifetime_ms)
{
    int64_t tenth = lifetime_ms / 10;
    return tenth < TOKEN_MARGIN_MAX_MS ? tenth : TOKEN_MARGIN_MAX_MS;
}

/* Appends "&name=<escaped value>" (or '?' first) to a growing URL; false on ENOMEM. */
static bool url_add(char **url, size_t *len, const char *name, const char *value, size_t vlen)
{
    char *v = strndup(value, vlen);
    char *esc = v ? fetch_url_escape(v) : NULL;
    free(v);
    if (!esc)
        return false;
    size_t add = strlen(name) + strlen(esc) + 3;
    char *n = realloc(*url, *len + add);
    if (!n) {
        free(esc);
        return false;
    }
    *url = n;
    *len += (size_t)sprintf(n + *len, "%c%s=%s", strchr(n, '?') ? '&' : '?', name, esc);
    free(esc);
    return true;
}

char *token_request_url(const char *realm, const char *service, const char *scope)
{
    if (!realm_usable(realm))
        return NULL;
    size_t len = strlen(realm);
    char *url = strdup(realm);
    if (!url)
        return NULL;
    if (service && service[0] && !url_add(&url, &len, "service", service, strlen(service)))
        goto fail;
    /* Several scopes are separated by spaces; each gets its own parameter. */
    for (const char *s = scope ? scope : ""; *s;) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n && !url_add(&url, &len, "scope", s, n))
            goto fail;
        s += n;
    }
    return url;
fail:
    free(url);
    return NULL;
}

/* ---- the cache -------------------------------------------------------------------------- */

#define TOKEN_WAIT_MS (FETCH_META_TIMEOUT_MS + 5000)

struct token_entry {
    char *realm, *service, *scope;
    char *token;
    int64_t refresh_at, expires_at, used; /* monotonic ms */
};

struct token_cache {
    pthread_mutex_t mu; /* e, n, cap; taken before the flights' lock */
    struct sf_group *flights; /* token requests in progress, by flight_key */
    struct token_entry *e;
    size_t n, cap;
};

struct token_cache *token_cache_new(void)
{
    struct token_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->flights = sf_group_new();
    if (!c->flights) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void entry_clear(struct token_entry *e)
{
    free(e->realm);
    free(e->service);
    free(e->scope);
    secret_free(e->token);
    memset(e, 0, sizeof(*e));
}

void token_cache_free(struct token_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_clear(&c->e[i]);
    free(c->e);
    sf_group_free(c->flights);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct token_entry *find(struct token_cache *c, const char *realm, const char *service,
                                const char *scope)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].realm, realm) == 0 && strcmp(c->e[i].service, service) == 0 &&
            strcmp(c->e[i].scope, scope) == 0)
            return &c->e[i];
    return NULL;
}

/* A new entry (evicting the least recently used one when full); NULL on ENOMEM. */
static struct token_entry *add(struct token_cache *c, const char *realm, const char *service,
                               const char *scope)
{
    if (c->n == TOKEN_CACHE_MAX) {
        size_t victim = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[victim].used)
                victim = i;
        entry_clear(&c->e[victim]);
        c->e[victim] = c->e[--c->n];
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct token_entry *ne = realloc(c->e, cap * sizeof(*ne));
        if (!ne)
            return NULL;
        c->e = ne;
        c->cap = cap;
    }
    struct token_entry *e = &c->e[c->n];
    memset(e, 0, sizeof(*e));
    e->realm = strdup(realm);
    e->service = strdup(service);
    e->scope = strdup(scope);
    if (!e->realm || !e->service || !e->scope) {
        entry_clear(e);
        return NULL;
    }
    c->n++;
    return e;
}

/* One request to the token server. */
static int fetch_token(const struct fetch_endpoint *ep, const char *realm, const char *service,
                       const char *scope, char **token, int64_t *life_s)
{
    char *url = token_request_url(realm, service, scope);
    struct fetch_response r;
    struct curl_slist *hdrs = NULL;
    char err[160];
    int rc;
    memset(&r, 0, sizeof(r));
    if (!url)
        return -EINVAL;
    if ((rc = fetch_header_add(&hdrs, "Accept: application/json")) < 0)
        return rc;
    /* The realm came from a challenge of the registry's own origin (fetch.c reports no other):
     * the credentials go to it, but not to where it redirects. */
    struct fetch_request req = {.url = url,
                                .ep = ep,
                                .realm = true,
                                .headers = hdrs,
                                .timeout_ms = FETCH_META_TIMEOUT_MS,
                                .max_body = TOKEN_BODY_MAX};
    rc = fetch_perform(&req, &r);
    if (rc < 0) {
        /* An address-rule refusal (-EPERM) was logged by fetch.c with its rule: cause policy. */
        struct failure f = {.cause = (enum failure_cause)r.cause};
        if (f.cause != FAILURE_NONE)
            failure_note_set(NULL, &f, url, false); /* logged by the proxy's health */
        log_debug("token server %s: %s", realm, strerror(-rc));
        rc = rc == -EPERM ? -EPERM : rc == -EFBIG ? -EIO : -EREMOTEIO;
    } else if (r.status == 200) {
        rc = token_response_parse(r.body, r.body_len, token, life_s, err, sizeof(err));
        if (rc == -EIO)
            log_warn("token server %s: unusable answer: %s", realm, err);
    } else {
        /* The token endpoint's answer is the proxy's failure (auth for 401/403): noted for
         * the front door, logged once per cause by the proxy's health (src/engine/failed.c). */
        struct failure f = {.cause = failure_of_status(r.status), .status = r.status};
        failure_note_set(NULL, &f, url, false);
        log_debug("token server %s answered HTTP %ld", realm, r.status);
        rc = failure_status_errno(r.status);
        if (rc == -ENOENT || rc == 0)
            rc = -EIO; /* a missing token endpoint is no missing file */
    }
    if (r.body)
        secret_wipe(r.body, r.body_len);
    fetch_response_clear(&r);
    curl_slist_free_all(hdrs);
    free(url);
    return rc;
}

/* The single-flight key of (realm, service, scope): header values hold no newline. */
static char *flight_key(const char *realm, const char *service, const char *scope)
{
    char *key = NULL;
    return asprintf(&key, "%s\n%s\n%s", realm, service, scope) < 0 ? NULL : key;
}

/* With c->mu held: a copy of the cached token for the key when it needs no refresh yet. */
static bool cached(struct token_cache *c, const char *realm, const char *service,
                   const char *scope, char **token)
{
    struct token_entry *e = find(c, realm, service, scope);
    int64_t now = clock_mono_ms();
    if (!e || !e->token || now >= e->refresh_at)
        return false;
    e->used = now;
    *token = strdup(e->token);
    return true;
}

/* The leader's work: asks the token server and stores its answer (or keeps a still-valid one). */
static int lead(struct token_cache *c, const struct fetch_endpoint *ep, const char *realm,
                const char *service, const char *scope, char **token)
{
    char *fresh = NULL;
    int64_t life_s = 0;
    int64_t asked = clock_mono_ms();
    int rc = fetch_token(ep, realm, service, scope, &fresh, &life_s);
    pthread_mutex_lock(&c->mu);
    struct token_entry *e = find(c, realm, service, scope);
    if (!e && rc == 0)
        e = add(c, realm, service, scope);
    int64_t now = clock_mono_ms();
    if (e) {
        e->used = now;
        if (rc == 0) {
            /* Lifetimes count from when we asked: the answer may have been slow. */
            int64_t life_ms = life_s * 1000;
            secret_free(e->token);
            e->token = strdup(fresh);
            e->expires_at = asked + life_ms;
            e->refresh_at = e->expires_at - token_refresh_margin_ms(life_ms);
        } else if (e->token && now < e->expires_at) {
            rc = 0; /* the token server failed; the old token is still valid a while */
        }
        if (rc == 0 && e->token)
            *token = strdup(e->token);
    } else if (rc == 0) {
        *token = fresh; /* no room to cache it: this caller's alone */
        fresh = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    secret_free(fresh);
    if (rc == 0 && !*token)
        rc = -ENOMEM;
    return rc;
}

int token_get(struct token_cache *c, const struct fetch_endpoint *ep, const char *realm,
              const char *service, const char *scope, char **token)
{
    int64_t deadline = clock_mono_ms() + TOKEN_WAIT_MS;
    int rc;
    *token = NULL;
    service = service ? service : "";
    scope = scope ? scope : "";
    char *key = flight_key(realm, service, scope);
    if (!key)
        return -ENOMEM;
    for (;;) {
        struct sf_call *call;
        pthread_mutex_lock(&c->mu);
        if (cached(c, realm, service, scope, token)) {
            pthread_mutex_unlock(&c->mu);
            rc = *token ? 0 : -ENOMEM;
            break;
        }
        int role = sf_join(c->flights, key, NULL, NULL, NULL, &call);
        pthread_mutex_unlock(&c->mu);
        if (role == SF_LEADER) {
            rc = lead(c, ep, realm, service, scope, token);
            sf_finish(c->flights, call, rc, 0);
            sf_release(call);
            break;
        }
        /* A fetch in flight: wait for it, then look again (its failure: ask ourselves). */
        rc = role < 0 ? role : sf_wait(call, deadline, NULL, NULL) < 0 ? -EREMOTEIO : 0;
        sf_release(call);
        if (rc < 0)
            break;
    }
    free(key);
    return rc;
}

void token_invalidate(struct token_cache *c, const char *realm, const char *service,
                      const char *scope, const char *token)
{
    pthread_mutex_lock(&c->mu);
    struct token_entry *e = find(c, realm, service ? service : "", scope ? scope : "");
    if (e && e->token && token && strcmp(e->token, token) == 0) {
        secret_free(e->token);
        e->token = NULL;
        e->refresh_at = e->expires_at = 0;
    }
    pthread_mutex_unlock(&c->mu);
}
