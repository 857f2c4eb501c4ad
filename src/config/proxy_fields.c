/*
 * proxy_fields: the table of proxy settings and what each kind means (see
 * include/upstreamfs/proxy_fields.h). The rows are in the order "proxy show"
 * prints them and the JSON object carries them.
 */
#include "upstreamfs/proxy_fields.h"
#include "upstreamfs/secret.h"
#include "config_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(f)    offsetof(struct proxy, f)
#define ONLY(t)  FIELD_TYPE(t)
#define NAMES(a) (a), (int)(sizeof(a) / sizeof((a)[0]))

/*
 * An allow_host entry: a host name, an IP literal or "*.suffix", lower-cased in
 * place (what src/fetch/egress.c matches a URL's host against).
 */
static int check_host_pattern(const char *field, char *h, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    const char *c = h[0] == '*' && h[1] == '.' ? h + 2 : h;
    bool ok = *c && strlen(h) <= 253;
    for (; ok && *c; c++)
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
             *c == '.' || *c == '-' || *c == ':';
    if (!ok) {
        config_error_set(err, field, "%s is not a host name, an IP address or *.suffix",
                         config_quote(q, sizeof(q), h));
        return -EINVAL;
    }
    config__lower(h);
    return 0;
}

static const char *const min_age_unknown_names[] = {"deny", "allow"};

/* A package rule's own syntax is checked against the proxy's type in config_proxy_validate
 * (src/policy/rules.c, policy_config_check); here only what every rule needs. */
#define POLICY_TYPES                                                                               \
    (ONLY(PROXY_NPM) | ONLY(PROXY_PYPI) | ONLY(PROXY_MAVEN) | ONLY(PROXY_HELM) |                   \
     ONLY(PROXY_DOCKER) | ONLY(PROXY_ECR))

const struct proxy_field proxy_fields[] = {
    {.name = "key",
     .kind = FIELD_STRING,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_IDENTITY,
     .offset = AT(key),
     .max = CONFIG_KEY_MAX},
    {.name = "type",
     .cli = "type",
     .kind = FIELD_ENUM,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_IDENTITY,
     .offset = AT(type),
     NAMES(config__type_names),
     .help = "create only"},
    {.name = "source",
     .cli = "source",
     .kind = FIELD_ENUM,
     .types = ONLY(PROXY_DOCKER),
     .flags = FIELD_FIRST | FIELD_DESTINATION,
     .offset = AT(source),
     NAMES(config__source_names),
     .help = "default dockerhub (Docker Hub's URL is built in); custom\nneeds --url"},
    {.name = "url",
     .flags = FIELD_DESTINATION,
     .cli = "url",
     .kind = FIELD_URL,
     .types = FIELD_TYPES_ALL,
     .offset = AT(url),
     .max = CONFIG_URL_MAX,
     .help = "the remote, always treated as a directory; http or https;\n"
             "required except for docker with --source dockerhub.\n"
             "ecr takes {ecr_private}[/REPO],\n"
             "{ecr_public}/ALIAS[/REPO] or the AWS console URL\n"
             "https://{region}.{ecr_console}/ecr/repositories/\n"
             "{private|public}/{account}/REPO?region={region};\n"
             "pypi takes the repository root (simple/ is appended).\n"
             "Repeatable: more URLs of the same content (parents, then\n"
             "the origin), tried in order; one that fails (connect,\n"
             "timeout, 5xx, 429) backs off and the next is asked; a 404\n"
             "is an answer. --url on update replaces the whole list\n"
             "(JSON: url is the first, mirrors the others; not ecr)"},
    /* The URLs after the first: the CLI repeats --url (cli_proxy_edit.c), JSON has mirrors. */
    {.name = "mirrors",
     .db = "mirrors_json",
     .flags = FIELD_DESTINATION,
     .kind = FIELD_LIST,
     .types = FIELD_TYPES_ALL, /* not ecr: config_proxy_validate says why */
     .offset = AT(mirrors),
     .max = CONFIG_MIRRORS_MAX,
     .item_max = CONFIG_URL_MAX},
    {.name = "auth",
     .cli = "auth",
     .kind = FIELD_ENUM,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_FIRST,
     .offset = AT(auth),
     NAMES(config__auth_names),
     .help = "default anonymous; aws-chain (ecr only) reads the AWS\n"
             "credential chain; private ECR needs access-key or aws-chain"},
    {.name = "access_key",
     .cli = "access-key",
     .metavar = "ID",
     .kind = FIELD_STRING,
     .types = FIELD_TYPES_ALL,
     .offset = AT(access_key),
     .max = CONFIG_ACCESS_KEY_MAX,
     .help = "user name, or the AWS access key id for ecr"},
    {.name = "secret_key",
     .db = "",
     .cli = "secret-key",
     .kind = FIELD_SECRET,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_SECRET_FILE,
     .offset = AT(secret_set),
     .max = CONFIG_SECRET_MAX,
     .help = "the secret (password, AWS secret key)",
     .read_as = "secret_set"},
    {.name = "aws_endpoint",
     .flags = FIELD_DESTINATION,
     .cli = "aws-endpoint",
     .kind = FIELD_ENDPOINT,
     .types = ONLY(PROXY_ECR),
     .offset = AT(aws_endpoint),
     .max = CONFIG_URL_MAX,
     .help = "the ECR API endpoint"},
    {.name = "ca_file",
     .flags = FIELD_DESTINATION | FIELD_LOCAL,
     .cli = "ca-file",
     .kind = FIELD_PATH,
     .types = FIELD_TYPES_ALL,
     .offset = AT(ca_file),
     .max = CONFIG_URL_MAX,
     .help = "CA bundle to trust for the remote"},
    {.name = "client_cert",
     .flags = FIELD_DESTINATION | FIELD_LOCAL,
     .cli = "client-cert",
     .kind = FIELD_PATH,
     .types = FIELD_TYPES_ALL,
     .offset = AT(client_cert),
     .max = CONFIG_URL_MAX,
     .help = "TLS client certificate (with --client-key)"},
    {.name = "client_key",
     .flags = FIELD_DESTINATION | FIELD_LOCAL,
     .cli = "client-key",
     .kind = FIELD_PATH,
     .types = FIELD_TYPES_ALL,
     .offset = AT(client_key),
     .max = CONFIG_URL_MAX,
     .help = "TLS client key (with --client-cert)"},
    {.name = "ca_pem",
     .db = "",
     .cli = "ca-pem",
     .kind = FIELD_PEM,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_DESTINATION,
     .offset = AT(ca_pem),
     .max = CONFIG_PEM_MAX,
     .item_check = config_pem_check_certs,
     .help = "CA certificates (PEM) to trust for the remote, stored\n"
             "in the state dir (instead of --ca-file)"},
    {.name = "client_cert_pem",
     .db = "",
     .cli = "client-cert-pem",
     .kind = FIELD_PEM,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_DESTINATION,
     .offset = AT(client_cert_pem),
     .max = CONFIG_PEM_MAX,
     .item_check = config_pem_check_cert,
     .help = "TLS client certificate (PEM), stored in the state dir\n"
             "(with --client-key-pem-file)"},
    {.name = "client_key_pem",
     .db = "",
     .cli = "client-key-pem",
     .kind = FIELD_PEM,
     .types = FIELD_TYPES_ALL,
     .flags = FIELD_DESTINATION,
     .offset = AT(client_key_pem),
     .max = CONFIG_PEM_MAX,
     .item_check = config_pem_check_key,
     .help = "TLS client key (PEM), stored in the state dir (0600)"},
    {.name = "http_proxy",
     .flags = FIELD_DESTINATION,
     .cli = "http-proxy",
     .kind = FIELD_ENDPOINT,
     .types = FIELD_TYPES_ALL,
     .offset = AT(http_proxy),
     .max = CONFIG_URL_MAX,
     .help = "HTTP proxy for requests to the remote"},
    {.name = "metadata_ttl",
     .cli = "metadata-ttl",
     .kind = FIELD_SECONDS,
     .types = FIELD_TYPES_ALL,
     .offset = AT(metadata_ttl),
     .def = CONFIG_DEFAULT_META_TTL,
     .max = CONFIG_TTL_MAX,
     .help = "how long tags and indexes stay fresh"},
    {.name = "negative_ttl",
     .cli = "negative-ttl",
     .kind = FIELD_SECONDS,
     .types = FIELD_TYPES_ALL,
     .offset = AT(negative_ttl),
     .def = CONFIG_DEFAULT_NEG_TTL,
     .max = CONFIG_TTL_MAX,
     .help = "how long a \"not found\" is remembered"},
    {.name = "connect_timeout",
     .cli = "connect-timeout",
     .kind = FIELD_MILLIS,
     .types = FIELD_TYPES_ALL,
     .offset = AT(connect_timeout),
     .def = CONFIG_DEFAULT_CONNECT_TIMEOUT_MS,
     .min = FIELD_MILLIS_MIN,
     .max = CONFIG_CONNECT_TIMEOUT_MAX_MS,
     .help = "deadline to connect to the remote (500ms, 5s; JSON: ms)"},
    {.name = "metadata_timeout",
     .cli = "metadata-timeout",
     .kind = FIELD_MILLIS,
     .types = FIELD_TYPES_ALL,
     .offset = AT(metadata_timeout),
     .def = CONFIG_DEFAULT_METADATA_TIMEOUT_MS,
     .min = FIELD_MILLIS_MIN,
     .max = CONFIG_METADATA_TIMEOUT_MAX_MS,
     .help = "deadline of a lookup or index request (JSON: ms);\na cached copy past its TTL "
             "is served within 1.5 s"},
    {.name = "offline",
     .cli = "offline",
     .kind = FIELD_BOOL,
     .types = FIELD_TYPES_ALL,
     .offset = AT(offline),
     .help = "never contact the remote: serve what is cached"},
    {.name = "include",
     .db = "include_json",
     .cli = "include",
     .metavar = "GLOB",
     .kind = FIELD_LIST,
     .types = FIELD_TYPES_ALL,
     .offset = AT(include),
     .max = CONFIG_GLOBS_MAX,
     .item_max = CONFIG_GLOB_MAX,
     .help = "serve only paths matching GLOB"},
    {.name = "exclude",
     .db = "exclude_json",
     .cli = "exclude",
     .metavar = "GLOB",
     .kind = FIELD_LIST,
     .types = FIELD_TYPES_ALL,
     .offset = AT(exclude),
     .max = CONFIG_GLOBS_MAX,
     .item_max = CONFIG_GLOB_MAX,
     .help = "hide paths matching GLOB"},
    {.name = "allow_host",
     .db = "allow_host_json",
     .cli = "allow-host",
     .metavar = "HOST",
     .kind = FIELD_LIST,
     .types = FIELD_TYPES_ALL,
     .offset = AT(allow_host),
     .max = CONFIG_ALLOW_HOST_MAX,
     .item_max = 253,
     .item_check = check_host_pattern,
     .help = "let URLs learned from the remote (index entries, redirects,\n"
             "token realms on another host) reach HOST although it is a\n"
             "loopback, private, link-local... address; *.SUFFIX matches\n"
             "every name under SUFFIX"},
    {.name = "pass_credentials",
     .cli = "pass-credentials",
     .kind = FIELD_BOOL,
     .types = FIELD_TYPES_ALL,
     .offset = AT(pass_credentials),
     .help = "also send the proxy's credentials to other origins an\n"
             "index names (default: only to the proxy's URL and the\n"
             "registry's token realm)"},
    {.name = "max_size",
     .cli = "max-size",
     .kind = FIELD_SIZE,
     .types = FIELD_TYPES_ALL,
     .offset = AT(max_size),
     .def = CONFIG_DEFAULT_MAX_SIZE,
     .min = 1,
     .max = CONFIG_MAX_SIZE_MAX,
     .help = "largest body of unknown length taken from the remote"},
    {.name = "on_removed",
     .cli = "on-removed",
     .kind = FIELD_ENUM,
     .types = ONLY(PROXY_NPM) | ONLY(PROXY_PYPI) | ONLY(PROXY_DOCKER) | ONLY(PROXY_ECR),
     .offset = AT(on_removed),
     NAMES(config__on_removed_names),
     .help = "a cached version the upstream no longer lists\n"
             "(unpublished, deleted, a vanished tag): hidden from\n"
             "listings and refused (cause policy), or kept and\n"
             "marked; default: hide for npm and pypi, keep for\n"
             "docker and ecr (docs/policy.md)"},
    /* ---- package policy (docs/policy.md) ---- */
    {.name = "min_age",
     .cli = "min-age",
     .metavar = "DURATION",
     .kind = FIELD_SECONDS,
     .flags = FIELD_DURATION,
     .types = ONLY(PROXY_NPM) | ONLY(PROXY_PYPI),
     .offset = AT(min_age),
     .max = 3650L * 86400,
     .help = "hide versions published less than DURATION ago\n"
             "(7d, 12h, 3600; JSON: seconds; 0: off)"},
    {.name = "min_age_unknown",
     .cli = "min-age-unknown",
     .kind = FIELD_ENUM,
     .types = ONLY(PROXY_NPM) | ONLY(PROXY_PYPI),
     .offset = AT(min_age_unknown),
     NAMES(min_age_unknown_names),
     .help = "a version the upstream gives no publish time: deny\n"
             "(default: treated as new) or allow"},
    {.name = "min_age_exempt",
     .db = "min_age_exempt_json",
     .cli = "min-age-exempt",
     .metavar = "GLOB",
     .kind = FIELD_LIST,
     .types = ONLY(PROXY_NPM) | ONLY(PROXY_PYPI),
     .offset = AT(min_age_exempt),
     .max = 256,
     .item_max = CONFIG_GLOB_MAX,
     .help = "package names the cooldown does not hold back\n('@myorg/*')"},
    {.name = "allow",
     .db = "allow_json",
     .cli = "allow",
     .metavar = "RULE",
     .kind = FIELD_LIST,
     .types = POLICY_TYPES,
     .offset = AT(allow),
     .max = 256,
     .item_max = CONFIG_GLOB_MAX,
     .help = "serve only packages a rule matches: NAME[@RANGE] (npm,\n"
             "helm: semver; pypi: PEP 440), maven GROUP:ARTIFACT[:VERSION],\n"
             "images REPO[:TAG]; globs in names;\nsee docs/policy.md"},
    {.name = "deny",
     .db = "deny_json",
     .cli = "deny",
     .metavar = "RULE",
     .kind = FIELD_LIST,
     .types = POLICY_TYPES,
     .offset = AT(deny),
     .max = 256,
     .item_max = CONFIG_GLOB_MAX,
     .help = "never serve what RULE matches (as --allow;\nwins over it)"},
};
const size_t proxy_fields_count = sizeof(proxy_fields) / sizeof(proxy_fields[0]);
_Static_assert(sizeof(proxy_fields) / sizeof(proxy_fields[0]) <= PROXY_FIELDS_MAX,
               "raise PROXY_FIELDS_MAX");

/* ---- access ---------------------------------------------------------------------------- */


const struct proxy_field *proxy_field_find(const char *name)
{
    for (size_t i = 0; name && i < proxy_fields_count; i++)
        if (!strcmp(proxy_fields[i].name, name))
            return &proxy_fields[i];
    return NULL;
}

const char *proxy_field_out_name(const struct proxy_field *f, char *buf, size_t len)
{
    if (f->kind != FIELD_SECRET && f->kind != FIELD_PEM)
        return f->name;
    if (f->read_as)
        return f->read_as;
    snprintf(buf, len, "%s_set", f->name);
    return buf;
}

const struct proxy_field *proxy_field_find_set(const char *member)
{
    char buf[64];
    for (size_t i = 0; member && i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        if ((f->kind == FIELD_SECRET || f->kind == FIELD_PEM) &&
            !strcmp(member, proxy_field_out_name(f, buf, sizeof(buf))))
            return f;
    }
    return NULL;
}

const char *proxy_field_column(const struct proxy_field *f)
{
    return f->db ? (*f->db ? f->db : NULL) : f->name;
}

bool proxy_field_applies(const struct proxy_field *f, enum proxy_type t)
{
    return (int)t >= 0 && t < PROXY_TYPE_COUNT && (f->types & FIELD_TYPE(t));
}

bool proxy_field_is_set(const struct proxy_field *f, const struct proxy *p)
{
    switch (f->kind) {
    case FIELD_STRING:
        return f->flags & FIELD_IDENTITY ? p->key[0] != '\0' : *CSLOT(char *, f, p) != NULL;
    case FIELD_PATH:
    case FIELD_URL:
    case FIELD_ENDPOINT:
        return *CSLOT(char *, f, p) != NULL;
    case FIELD_SECRET:
        return f->flags & FIELD_SECRET_FILE ? *CSLOT(bool, f, p) : *CSLOT(char *, f, p) != NULL;
    case FIELD_PEM: {
        const struct proxy_pem *m = CSLOT(struct proxy_pem, f, p);
        return m->text ? *m->text != '\0' : m->path != NULL;
    }
    case FIELD_LIST:
        return config_strv_len(*LSLOT(f, p)) > 0;
    case FIELD_ENUM:
        return *CSLOT(int, f, p) != 0;
    case FIELD_BOOL:
        return *CSLOT(bool, f, p) != (f->def != 0);
    case FIELD_SECONDS:
    case FIELD_MILLIS:
        return *CSLOT(long, f, p) != f->def;
    case FIELD_SIZE:
        return *CSLOT(int64_t, f, p) != f->def;
    }
    return false;
}

const char *proxy_field_metavar(const struct proxy_field *f)
{
    if (f->metavar)
        return f->metavar;
    switch (f->kind) {
    case FIELD_PATH:
    case FIELD_SECRET:
    case FIELD_PEM:
        return "FILE";
    case FIELD_URL:
    case FIELD_ENDPOINT:
        return "URL";
    case FIELD_SECONDS:
        return "SECONDS";
    case FIELD_MILLIS:
        return "TIME";
    case FIELD_SIZE:
        return "SIZE";
    case FIELD_LIST:
        return "VALUE";
    case FIELD_BOOL:
        return "";
    case FIELD_ENUM:
    case FIELD_STRING:
        break;
    }
    return "VALUE";
}

const char *proxy_field_enum_list(const char *const *names, int n, const char *sep, char *buf,
                                  size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (!names[i])
            continue;
        int w = snprintf(buf + o, len - o, "%s%s", o ? sep : "", names[i]);
        if (w < 0 || (size_t)w >= len - o)
            break;
        o += (size_t)w;
    }
    return buf;
}

int config_enum_parse(const char *field, const char *const *names, int n, const char *s, int *out,
                      struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX], list[256];
    for (int i = 0; s && i < n; i++) {
        if (names[i] && !strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    }
    config_error_set(err, field, "must be one of %s (got %s)",
                     proxy_field_enum_list(names, n, ", ", list, sizeof(list)),
                     config_quote(q, sizeof(q), s));
    return -EINVAL;
}

/* ---- checks ---------------------------------------------------------------------------- */

int proxy_field_check(const struct proxy_field *f, const struct proxy *p, char **norm,
                      struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX], list[256];
    *norm = NULL;
    if (f->flags & FIELD_IDENTITY)
        return 0;
    if (!proxy_field_is_set(f, p))
        return 0;
    if (!proxy_field_applies(f, p->type)) {
        unsigned n = 0;
        const char *names[PROXY_TYPE_COUNT];
        for (int t = 0; t < PROXY_TYPE_COUNT; t++)
            names[t] = f->types & FIELD_TYPE(t) ? config__type_names[t] : NULL, n += !!names[t];
        config_error_set(err, f->name, "only %s proxies take --%s",
                         proxy_field_enum_list(names, PROXY_TYPE_COUNT, n > 2 ? ", " : " and ",
                                               list, sizeof(list)),
                         f->cli ? f->cli : f->name);
        return -EINVAL;
    }
    switch (f->kind) {
    case FIELD_STRING:
    case FIELD_PATH:
        return config__check_text(f->name, *CSLOT(char *, f, p), (size_t)f->max, err);
    case FIELD_ENDPOINT:
        return config_url_normalise_endpoint(f->name, *CSLOT(char *, f, p), norm, err);
    case FIELD_SECONDS:
    case FIELD_MILLIS:
    case FIELD_SIZE: {
        long long v = f->kind == FIELD_SIZE ? *CSLOT(int64_t, f, p) : *CSLOT(long, f, p);
        if (v >= f->min && v <= f->max)
            return 0;
        snprintf(q, sizeof(q), "%lld", v);
        if (f->kind == FIELD_MILLIS) {
            config_error_set(err, f->name, "must be a duration from %lldms to %llds (got %sms)",
                             f->min, f->max / 1000, q);
            return -EINVAL;
        }
        config_error_set(err, f->name, "must be a whole number %sfrom %lld to %lld (got %s)",
                         f->kind == FIELD_SECONDS ? "of seconds " : "of bytes ", f->min, f->max, q);
        return -EINVAL;
    }
    case FIELD_LIST: {
        char *const *v = *LSLOT(f, p);
        size_t n = config_strv_len(v);
        if ((long long)n > f->max) {
            config_error_set(err, f->name, "at most %lld entries (got %zu)", f->max, n);
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            int rc = f->item_check ? f->item_check(f->name, v[i], err) : 0;
            if (rc < 0 || (rc = config__check_text(f->name, v[i], f->item_max, err)) < 0)
                return rc;
        }
        return 0;
    }
    case FIELD_PEM: {
        char *t = CSLOT(struct proxy_pem, f, p)->text;
        return t && *t && f->item_check ? f->item_check(f->name, t, err) : 0;
    }
    case FIELD_URL:  /* the cross-field rules of config_proxy_validate own the url */
    case FIELD_ENUM: /* parsed on the way in */
    case FIELD_BOOL:
    case FIELD_SECRET: /* normalised on the way in; auth rules in config_proxy_validate */
        return 0;
    }
    return 0;
}

/* ---- lifetime -------------------------------------------------------------------------- */

void proxy_fields_defaults(struct proxy *p)
{
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        if (f->kind == FIELD_BOOL)
            *SLOT(bool, f, p) = f->def != 0;
        else if (f->kind == FIELD_SECONDS || f->kind == FIELD_MILLIS)
            *SLOT(long, f, p) = (long)f->def;
        else if (f->kind == FIELD_SIZE)
            *SLOT(int64_t, f, p) = (int64_t)f->def;
    }
}

/* Whether the row's value is a heap pointer in the struct. */
static bool owns_heap(const struct proxy_field *f)
{
    if (f->flags & (FIELD_IDENTITY | FIELD_SECRET_FILE))
        return false;
    return f->kind == FIELD_STRING || f->kind == FIELD_PATH || f->kind == FIELD_URL ||
           f->kind == FIELD_ENDPOINT || f->kind == FIELD_SECRET || f->kind == FIELD_LIST ||
           f->kind == FIELD_PEM;
}

void proxy_fields_free(struct proxy *p)
{
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        if (!owns_heap(f))
            continue;
        if (f->kind == FIELD_LIST) {
            config_strv_free(*SLOT(char **, f, p));
            *SLOT(char **, f, p) = NULL;
            continue;
        }
        if (f->kind == FIELD_PEM) {
            struct proxy_pem *m = SLOT(struct proxy_pem, f, p);
            if (m->text)
                secret_wipe(m->text, strlen(m->text));
            free(m->text);
            free(m->path);
            m->text = m->path = NULL;
            continue;
        }
        char **s = SLOT(char *, f, p);
        if (*s && f->kind == FIELD_SECRET)
            secret_wipe(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

int proxy_fields_copy(struct proxy *dst, const struct proxy *src)
{
    for (size_t i = 0; i < proxy_fields_count; i++) {
        const struct proxy_field *f = &proxy_fields[i];
        if (!owns_heap(f))
            continue;
        if (f->kind == FIELD_LIST) {
            *SLOT(char **, f, dst) = NULL;
            if (config_strv_dup(SLOT(char **, f, dst), *LSLOT(f, src)) < 0)
                return -ENOMEM;
            continue;
        }
        if (f->kind == FIELD_PEM) {
            const struct proxy_pem *a = CSLOT(struct proxy_pem, f, src);
            struct proxy_pem *b = SLOT(struct proxy_pem, f, dst);
            b->text = b->path = NULL;
            if ((a->text && !(b->text = strdup(a->text))) ||
                (a->path && !(b->path = strdup(a->path))))
                return -ENOMEM;
            continue;
        }
        const char *s = *CSLOT(char *, f, src);
        *SLOT(char *, f, dst) = NULL;
        if (s && !(*SLOT(char *, f, dst) = strdup(s)))
            return -ENOMEM;
    }
    return 0;
}

int proxy_field_parse_millis(const char *s, long long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 0;
    if (!strcmp(end, "") || !strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60000;
    if (errno || !mul || v > (unsigned long long)LLONG_MAX / mul)
        return -EINVAL;
    *out = (long long)(v * mul);
    return 0;
}

int proxy_field_parse_seconds(const char *s, long long *out)
{
    static const struct {
        char unit;
        unsigned long long mul;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = *end ? 0 : 1;
    for (size_t i = 0; *end && !end[1] && i < sizeof(units) / sizeof(units[0]); i++)
        if (*end == units[i].unit)
            mul = units[i].mul;
    if (errno || !mul || v > (unsigned long long)LLONG_MAX / mul)
        return -EINVAL;
    *out = (long long)(v * mul);
    return 0;
}

int proxy_field_parse_size(const char *s, long long *out)
{
    static const char units[] = "KMGT";
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    int shift = 0;
    if (*end) {
        const char *u =
            *end >= 'a' && *end <= 'z' ? strchr(units, *end - 'a' + 'A') : strchr(units, *end);
        if (!u || !*end)
            return -EINVAL;
        shift = 10 * (int)(u - units + 1);
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "B"))
            end += strlen(end);
    }
    if (*end || v > (unsigned long long)LLONG_MAX >> shift)
        return -EINVAL;
    *out = (long long)(v << shift);
    return 0;
}
