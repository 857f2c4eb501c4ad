/*
 * config: the rules for proxies and registries (the JSON schema is in
 * config_json.c, the fields in proxy_fields.c; docs/ARCHITECTURE.md,
 * "Configuration model").
 *
 * Invariants kept here:
 *  - after config_proxy_validate returns 0, url is normalised (http/https,
 *    lower-case host, ends with '/'), every optional field is either NULL or
 *    valid, and for ecr the ecr target is derived from url and url is the
 *    target's canonical "https://{host}/";
 *  - a validation failure changes nothing the caller can observe except err
 *    (normalisation happens into temporaries and is committed at the end);
 *  - no function here formats a secret: the JSON writer never sees one, and
 *    config_secret_normalise reports only lengths.
 * The module does no I/O; checks on files named by a proxy (ca_file and the
 * client pair) are configdb's, since they need the filesystem.
 */
#include "upstreamfs/config.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/ecr_url.h"
#include "upstreamfs/policy.h"
#include "config_int.h"
#include "upstreamfs/proxy_fields.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const config__type_names[PROXY_TYPE_COUNT] = {
    [PROXY_DOCKER] = "docker",   [PROXY_ECR] = "ecr", [PROXY_HELM] = "helm",
    [PROXY_MAVEN] = "maven",     [PROXY_NPM] = "npm", [PROXY_PYPI] = "pypi",
    [PROXY_GENERIC] = "generic",
};

/*
 * The one gate for types whose drivers do not exist yet: the names parse (so
 * messages can say "not supported yet" rather than "unknown"), but no proxy or
 * registry of these types can be created. Enabling a type is deleting its line;
 * every type has its driver today, so the table is empty.
 */
static const bool type_not_yet[PROXY_TYPE_COUNT] = {0};

const char *const config__auth_names[3] = {
    [AUTH_ANONYMOUS] = "anonymous",
    [AUTH_ACCESS_KEY] = "access-key",
    [AUTH_AWS_CHAIN] = "aws-chain",
};

/* SOURCE_NONE has no name: it is what a type other than docker has, never given. */
const char *const config__source_names[3] = {
    [SOURCE_DOCKERHUB] = "dockerhub",
    [SOURCE_CUSTOM] = "custom",
};

/* Names the shim routes itself (include/upstreamfs/shim_http.h); no proxy or registry may take them. */
static const char *const reserved_keys[] = {"v2", "api", "metrics", "healthz", "ui", "static"};

void config_error_set(struct config_error *err, const char *field, const char *fmt, ...)
{
    if (!err)
        return;
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

const char *config_quote(char *buf, size_t n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (n < 8) {
        if (n)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        /* Room for the widest escape, the ellipsis, the closing quote and NUL. */
        if (o + 4 + 3 + 2 > n) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (*p == '"' || *p == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[*p >> 4];
            buf[o++] = hex[*p & 15];
        } else {
            buf[o++] = (char)*p;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void config__lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* ---- names ----------------------------------------------------------------------------- */

const char *config_type_name(enum proxy_type t)
{
    return (int)t >= 0 && t < PROXY_TYPE_COUNT ? config__type_names[t] : "?";
}

const char *config_auth_name(enum proxy_auth a)
{
    return (int)a >= AUTH_ANONYMOUS && a <= AUTH_AWS_CHAIN ? config__auth_names[a] : "?";
}

const char *config_source_name(enum proxy_source s)
{
    return s == SOURCE_NONE                             ? "none"
           : (int)s > SOURCE_NONE && s <= SOURCE_CUSTOM ? config__source_names[s]
                                                        : "?";
}

int config_type_lookup(const char *s, enum proxy_type *out)
{
    for (int i = 0; i < PROXY_TYPE_COUNT; i++) {
        if (s && strcmp(s, config__type_names[i]) == 0) {
            *out = (enum proxy_type)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int type_check_supported(enum proxy_type t, struct config_error *err)
{
    if ((int)t < 0 || t >= PROXY_TYPE_COUNT) {
        config_error_set(err, "type", "unknown type %d", (int)t);
        return -EINVAL;
    }
    if (type_not_yet[t]) {
        config_error_set(err, "type", "%s proxies and registries are not supported yet",
                         config__type_names[t]);
        return -EINVAL;
    }
    return 0;
}

int config_type_parse(const char *s, enum proxy_type *out, struct config_error *err)
{
    int t;
    int rc = config_enum_parse("type", config__type_names, PROXY_TYPE_COUNT, s, &t, err);
    if (rc == 0)
        rc = type_check_supported((enum proxy_type)t, err);
    if (rc == 0)
        *out = (enum proxy_type)t;
    return rc;
}

int config_auth_parse(const char *s, enum proxy_auth *out, struct config_error *err)
{
    int v;
    int rc = config_enum_parse("auth", config__auth_names, 3, s, &v, err);
    if (rc == 0)
        *out = (enum proxy_auth)v;
    return rc;
}

int config_source_parse(const char *s, enum proxy_source *out, struct config_error *err)
{
    int v;
    int rc = config_enum_parse("source", config__source_names, 3, s, &v, err);
    if (rc == 0)
        *out = (enum proxy_source)v;
    return rc;
}

int config_key_validate(const char *field, const char *key, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    if (!key || !*key) {
        config_error_set(err, field, "must not be empty");
        return -EINVAL;
    }
    size_t len = strlen(key);
    if (len > CONFIG_KEY_MAX) {
        config_error_set(err, field, "must be at most %d characters (got %zu)", CONFIG_KEY_MAX,
                         len);
        return -EINVAL;
    }
    if (!isalpha((unsigned char)key[0])) {
        config_error_set(err, field, "must start with a letter (got %s)",
                         config_quote(q, sizeof(q), key));
        return -EINVAL;
    }
    for (const char *p = key; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-')) {
            config_error_set(err, field,
                             "may contain only lowercase letters, digits, '_', '.' and '-' "
                             "(got %s)",
                             config_quote(q, sizeof(q), key));
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++) {
        if (strcmp(key, reserved_keys[i]) == 0) {
            config_error_set(err, field,
                             "%s is reserved (v2, api, metrics, healthz, ui, static are the "
                             "shim's own routes)",
                             config_quote(q, sizeof(q), key));
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- proxies --------------------------------------------------------------------------- */

void config_proxy_init(struct proxy *p, const char *key, enum proxy_type type)
{
    memset(p, 0, sizeof(*p));
    /* Callers validate the key first; an overlong one is cut here, never overrun. */
    snprintf(p->key, sizeof(p->key), "%s", key ? key : "");
    p->type = type;
    p->source = type == PROXY_DOCKER ? SOURCE_DOCKERHUB : SOURCE_NONE;
    p->auth = AUTH_ANONYMOUS;
    proxy_fields_defaults(p);
}

const char *const config__on_removed_names[3] = {
    [ON_REMOVED_DEFAULT] = "default",
    [ON_REMOVED_KEEP] = "keep",
    [ON_REMOVED_HIDE] = "hide",
};

bool config_proxy_hides_removed(const struct proxy *p)
{
    if (p->on_removed != ON_REMOVED_DEFAULT)
        return p->on_removed == ON_REMOVED_HIDE;
    return p->type == PROXY_NPM || p->type == PROXY_PYPI;
}

void config_proxy_set_auth(struct proxy *p, enum proxy_auth a)
{
    if (a != AUTH_ACCESS_KEY) {
        free(p->access_key);
        p->access_key = NULL;
    }
    p->auth = a;
}

void config_proxy_set_source(struct proxy *p, enum proxy_source s)
{
    if (s != p->source) {
        free(p->url);
        p->url = NULL;
        config_strv_free(p->mirrors); /* the URLs go together */
        p->mirrors = NULL;
        ecr_target_clear(&p->ecr);
    }
    p->source = s;
}

int config_proxy_set_url(struct proxy *p, const char *url)
{
    ecr_target_clear(&p->ecr);
    return config_set_string(&p->url, url);
}

/* Whether s is well-formed UTF-8 (no overlong forms or surrogates): JSON carries only that. */
static bool utf8_valid(const unsigned char *s)
{
    while (*s) {
        unsigned int c = *s++;
        int more;
        unsigned int min;
        if (c < 0x80)
            continue;
        if ((c & 0xe0) == 0xc0) {
            more = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        while (more--) {
            if ((*s & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (*s++ & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
    }
    return true;
}

int config__check_text(const char *field, const char *s, size_t max, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    if (!*s) {
        config_error_set(err, field, "must not be empty");
        return -EINVAL;
    }
    if (strlen(s) > max) {
        config_error_set(err, field, "must be at most %zu characters", max);
        return -EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            config_error_set(err, field, "must not contain control characters (got %s)",
                             config_quote(q, sizeof(q), s));
            return -EINVAL;
        }
    }
    if (!utf8_valid((const unsigned char *)s)) {
        config_error_set(err, field, "must be valid UTF-8");
        return -EINVAL;
    }
    return 0;
}

/* The auth rules (README.md, "Using it"), before anything ECR-specific. */
static int check_auth(const struct proxy *p, bool has_secret, struct config_error *err)
{
    switch (p->auth) {
    case AUTH_ANONYMOUS:
        if (p->access_key) {
            config_error_set(err, "access_key", "anonymous auth takes no access key");
            return -EINVAL;
        }
        if (has_secret) {
            config_error_set(err, "secret_key", "anonymous auth takes no secret");
            return -EINVAL;
        }
        return 0;
    case AUTH_ACCESS_KEY:
        if (!p->access_key) {
            config_error_set(err, "access_key", "access-key auth needs --access-key");
            return -EINVAL;
        }
        if (!has_secret) {
            config_error_set(err, "secret_key",
                             "access-key auth needs a secret (--secret-key-file or "
                             "--secret-key-stdin)");
            return -EINVAL;
        }
        /* HTTP Basic joins user and password with ':' (RFC 7617), so a user name cannot hold one.
         */
        if (p->type != PROXY_ECR && strchr(p->access_key, ':')) {
            config_error_set(err, "access_key", "must not contain ':' (HTTP Basic auth)");
            return -EINVAL;
        }
        return config__check_text("access_key", p->access_key, CONFIG_ACCESS_KEY_MAX, err);
    case AUTH_AWS_CHAIN:
        if (p->type != PROXY_ECR) {
            config_error_set(err, "auth", "aws-chain is for ecr proxies only");
            return -EINVAL;
        }
        if (p->access_key) {
            config_error_set(err, "access_key",
                             "aws-chain auth takes no access key (it reads the AWS credential "
                             "chain)");
            return -EINVAL;
        }
        if (has_secret) {
            config_error_set(err, "secret_key", "aws-chain auth takes no secret");
            return -EINVAL;
        }
        return 0;
    }
    config_error_set(err, "auth", "unknown auth %d", (int)p->auth);
    return -EINVAL;
}

/*
 * Works out the ecr target for p into *t and the canonical url into *url.
 * A target that already matches url (read back from storage, or kept by an
 * update that did not touch url) is kept: re-parsing "https://{host}/" would
 * lose the repository scope and alias that the original URL carried.
 */
static int derive_ecr(const struct proxy *p, struct ecr_target *t, char **url,
                      struct config_error *err)
{
    bool keep = false;
    if (p->ecr.host) {
        char *canon = ecr_target_url(&p->ecr);
        if (!canon)
            return -ENOMEM;
        keep = strcmp(canon, p->url) == 0;
        free(canon);
    }
    int rc = keep ? ecr_target_validate(&p->ecr, err) : ecr_url_parse(p->url, t, err);
    if (rc == 0 && keep)
        rc = ecr_target_copy(t, &p->ecr);
    if (rc < 0)
        return rc;
    *url = ecr_target_url(t);
    return *url ? 0 : -ENOMEM;
}

/* The source p resolves to: docker proxies default to dockerhub, other types take none. */
static int resolve_source(const struct proxy *p, enum proxy_source *out, struct config_error *err)
{
    *out = p->source;
    if (p->type == PROXY_DOCKER) {
        if (*out == SOURCE_NONE)
            *out = SOURCE_DOCKERHUB;
        return 0;
    }
    if (*out != SOURCE_NONE) {
        config_error_set(err, "source", "only docker proxies take --source (this is %s)",
                         config__type_names[p->type]);
        return -EINVAL;
    }
    return 0;
}

/* A dockerhub proxy's url: the hub's, and a url given must be that one. */
static int dockerhub_url(const struct proxy *p, char **url, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    const char *hub = upstream_defaults.dockerhub_registry;
    int rc;
    if (!p->url)
        return (*url = strdup(hub)) ? 0 : -ENOMEM;
    if ((rc = config_url_normalise_dir("url", p->url, url, err)) < 0)
        return rc;
    if (strcmp(*url, hub) != 0) {
        config_error_set(err, "url",
                         "not used with --source dockerhub; use --source custom for another "
                         "registry (got %s)",
                         config_quote(q, sizeof(q), p->url));
        return -EINVAL;
    }
    return 0;
}

/* The normalised url of p into *url (malloc'd, also on failure for the caller to free), and for
 * ecr its target into *ecr. */
static int resolve_url(const struct proxy *p, enum proxy_source source, struct ecr_target *ecr,
                       char **url, struct config_error *err)
{
    if (source == SOURCE_DOCKERHUB)
        return dockerhub_url(p, url, err);
    if (!p->url) {
        if (p->type == PROXY_DOCKER)
            config_error_set(err, "url", "--source custom needs --url");
        else
            config_error_set(err, "url", "%s proxies need --url", config__type_names[p->type]);
        return -EINVAL;
    }
    if (p->type == PROXY_ECR)
        return derive_ecr(p, ecr, url, err);
    return config_url_normalise_dir("url", p->url, url, err);
}

/*
 * The mirrors of p normalised into *out (NULL when none; malloc'd, also on failure for the
 * caller to free): each as the url is (config_url_normalise_dir), none twice nor the url itself.
 * A docker proxy with --source dockerhub has the hub's one URL: parents take --source custom.
 */
static int resolve_mirrors(const struct proxy *p, enum proxy_source source, const char *url,
                           char ***out, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    size_t n = config_strv_len(p->mirrors);
    *out = NULL;
    if (n && p->type == PROXY_ECR) {
        config_error_set(err, "mirrors",
                         "an ecr proxy has one registry; the edge of one is a docker proxy whose "
                         "URLs are its parents");
        return -EINVAL;
    }
    if (n && source == SOURCE_DOCKERHUB) {
        config_error_set(err, "mirrors",
                         "--source dockerhub has one URL; list several with --source custom");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char *m = NULL;
        int rc = config_url_normalise_dir("mirrors", p->mirrors[i], &m, err);
        if (rc == 0 && (rc = config_strv_push(out, m)) < 0)
            rc = -ENOMEM;
        free(m);
        if (rc < 0)
            return rc;
        bool twice = strcmp((*out)[i], url) == 0;
        for (size_t j = 0; j < i && !twice; j++)
            twice = strcmp((*out)[i], (*out)[j]) == 0;
        if (twice) {
            config_error_set(err, "mirrors", "%s is listed twice",
                             config_quote(q, sizeof(q), (*out)[i]));
            return -EINVAL;
        }
    }
    return 0;
}

/* An anonymous ecr proxy works only on a public registry named by its alias. */
static int check_ecr_anonymous(const struct proxy *p, const struct ecr_target *ecr,
                               struct config_error *err)
{
    if (p->type != PROXY_ECR || p->auth != AUTH_ANONYMOUS)
        return 0;
    if (!ecr->is_public) {
        config_error_set(err, "auth",
                         "a private ECR registry needs credentials: --auth access-key or "
                         "aws-chain");
        return -EINVAL;
    }
    if (!ecr->alias) {
        config_error_set(err, "url",
                         "a public ECR console URL names the account, not the registry "
                         "alias: use %s/<alias>/<repo>, or give credentials (--auth "
                         "access-key or aws-chain)",
                         upstream_defaults.ecr_public_host);
        return -EINVAL;
    }
    return 0;
}

/* Each field's own rules, from the table (endpoints normalise into norm[]), then the rules that
 * join fields: the client pair together, the TLS files. */
static int check_fields(const struct proxy *p, char **norm, struct config_error *err)
{
    int rc;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        if ((rc = proxy_field_check(&proxy_fields[i], p, &norm[i], err)) < 0)
            return rc;
    }
    if ((rc = policy_config_check(p, err)) < 0) /* each rule in its type's syntax */
        return rc;
    if (!p->client_cert != !p->client_key) {
        config_error_set(err, p->client_cert ? "client_key" : "client_cert",
                         "--client-cert and --client-key go together");
        return -EINVAL;
    }
    return config__tls_check(p, err);
}

/* Everything holds: moves the normalised values into p (the temporaries are left empty). */
static void commit_normalised(struct proxy *p, enum proxy_source source, char **url, char **norm,
                              char ***mirrors, struct ecr_target *ecr)
{
    p->source = source;
    free(p->url);
    p->url = *url;
    *url = NULL;
    config_strv_free(p->mirrors);
    p->mirrors = *mirrors;
    *mirrors = NULL;
    for (size_t i = 0; i < proxy_fields_count; i++) {
        if (norm[i]) {
            char **dst = (char **)((char *)p + proxy_fields[i].offset);
            free(*dst);
            *dst = norm[i];
            norm[i] = NULL;
        }
    }
    ecr_target_clear(&p->ecr);
    p->ecr = *ecr;
    memset(ecr, 0, sizeof(*ecr));
}

int config_proxy_validate(struct proxy *p, bool has_secret, struct config_error *err)
{
    struct ecr_target ecr = {0};
    char *url = NULL, *norm[PROXY_FIELDS_MAX] = {0}, **mirrors = NULL;
    enum proxy_source source;
    int rc;

    if ((rc = config_key_validate("key", p->key, err)) == 0 &&
        (rc = type_check_supported(p->type, err)) == 0 &&
        (rc = resolve_source(p, &source, err)) == 0 &&
        (rc = resolve_url(p, source, &ecr, &url, err)) == 0 &&
        (rc = check_auth(p, has_secret, err)) == 0 &&
        (rc = check_ecr_anonymous(p, &ecr, err)) == 0 && (rc = check_fields(p, norm, err)) == 0 &&
        (rc = resolve_mirrors(p, source, url, &mirrors, err)) == 0)
        commit_normalised(p, source, &url, norm, &mirrors, &ecr);
    free(url);
    config_strv_free(mirrors);
    for (size_t i = 0; i < proxy_fields_count; i++)
        free(norm[i]);
    ecr_target_clear(&ecr);
    return rc;
}

void config_proxy_clear(struct proxy *p)
{
    if (!p)
        return;
    proxy_fields_free(p);
    ecr_target_clear(&p->ecr);
    memset(p, 0, sizeof(*p));
}

int config_proxy_copy(struct proxy *dst, const struct proxy *src)
{
    struct proxy c = *src;
    memset(&c.ecr, 0, sizeof(c.ecr));
    if (proxy_fields_copy(&c, src) < 0 || ecr_target_copy(&c.ecr, &src->ecr) < 0) {
        config_proxy_clear(&c);
        return -ENOMEM;
    }
    *dst = c;
    return 0;
}

/* ---- registries ------------------------------------------------------------------------ */

bool config_registry_accepts(enum proxy_type rt, enum proxy_type pt)
{
    if (rt == PROXY_DOCKER)
        return pt == PROXY_DOCKER || pt == PROXY_ECR;
    /* An ecr registry is not a thing: ECR proxies join docker registries. */
    return rt != PROXY_ECR && rt == pt;
}

int config_registry_validate(const struct registry *r, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    int rc;
    if ((rc = config_key_validate("name", r->name, err)) < 0)
        return rc;
    if ((rc = type_check_supported(r->type, err)) < 0)
        return rc;
    if (r->type == PROXY_ECR) {
        config_error_set(err, "type",
                         "there are no ecr registries; a docker registry takes ecr proxies");
        return -EINVAL;
    }
    size_t n = config_strv_len(r->upstreams);
    if (n > CONFIG_UPSTREAMS_MAX) {
        config_error_set(err, "upstreams", "at most %d upstreams (got %zu)", CONFIG_UPSTREAMS_MAX,
                         n);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = config_key_validate("upstreams", r->upstreams[i], err)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->upstreams[i], r->upstreams[j]) == 0) {
                config_error_set(err, "upstreams", "%s is listed twice",
                                 config_quote(q, sizeof(q), r->upstreams[i]));
                return -EINVAL;
            }
        }
    }
    for (size_t i = 0; r->policy && i < proxy_fields_count; i++) {
        char *norm = NULL;
        if (config_registry_policy_row(proxy_fields[i].name) &&
            (rc = proxy_field_check(&proxy_fields[i], r->policy, &norm, err)) < 0)
            return rc;
        free(norm);
    }
    return r->policy ? policy_config_check(r->policy, err) : 0;
}

void config_registry_clear(struct registry *r)
{
    if (!r)
        return;
    config_strv_free(r->upstreams);
    config_proxy_clear(r->policy);
    free(r->policy);
    memset(r, 0, sizeof(*r));
}

int config_secret_normalise(char *secret, size_t *len, struct config_error *err)
{
    size_t n = *len;
    if (n > 0 && secret[n - 1] == '\n') {
        n--;
        if (n > 0 && secret[n - 1] == '\r')
            n--;
    }
    secret[n] = '\0';
    *len = n;
    if (n == 0) {
        config_error_set(err, "secret_key", "must not be empty");
        return -EINVAL;
    }
    if (n > CONFIG_SECRET_MAX) {
        config_error_set(err, "secret_key", "must be at most %d bytes", CONFIG_SECRET_MAX);
        return -EINVAL;
    }
    if (memchr(secret, '\0', n)) {
        config_error_set(err, "secret_key", "must not contain a NUL byte");
        return -EINVAL;
    }
    return 0;
}
