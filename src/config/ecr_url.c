/*
 * ecr_url: from what a user pastes (a console link, a registry host with or
 * without a repository) to one struct ecr_target. See ecr_url.h for the
 * forms; docs/ecr.md shows each form with an example.
 *
 * The URL is taken apart by libcurl's URL API only; this file then reads the
 * decoded path as '/'-separated names. Decoding the whole path first is
 * correct here because in every form the segments before the repository are
 * fixed words or ids that cannot contain '/', and inside a repository name
 * "%2F" and '/' mean the same thing.
 *
 * Host names come from the defaults table (defaults.h), never from literals.
 */
#include "upstreamfs/ecr_url.h"
#include "upstreamfs/defaults.h"
#include "config_int.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Repository names (ECR CreateRepository's pattern) and public registry aliases (ECR Public). */
#define REPO_RE    "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$"
#define REPO_MIN   2
#define REPO_MAX   256
#define ALIAS_RE   "^[a-z][a-z0-9]+([._-][a-z0-9]+)*$"
#define ALIAS_MIN  2
#define ALIAS_MAX  50
#define ACCOUNT_RE "^[0-9]{12}$"
#define REGION_RE  "^[a-z]{2}(-[a-z]+)+-[0-9]+$"
#define REGION_MAX 32

static bool matches(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static int check_account(const char *s, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    if (matches(ACCOUNT_RE, s))
        return 0;
    config_error_set(err, "url", "an AWS account id is 12 digits (got %s)",
                     config_quote(q, sizeof(q), s));
    return -EINVAL;
}

static int check_region(const char *s, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    if (strlen(s) <= REGION_MAX && matches(REGION_RE, s))
        return 0;
    config_error_set(err, "url", "not an AWS region such as us-east-1 (got %s)",
                     config_quote(q, sizeof(q), s));
    return -EINVAL;
}

static int check_repository(const char *s, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    size_t n = strlen(s);
    if (n >= REPO_MIN && n <= REPO_MAX && matches(REPO_RE, s))
        return 0;
    config_error_set(err, "url",
                     "an ECR repository name is 2-256 lowercase letters, digits and . _ - / "
                     "between name parts (got %s)",
                     config_quote(q, sizeof(q), s));
    return -EINVAL;
}

static int check_alias(const char *s, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    size_t n = strlen(s);
    if (n >= ALIAS_MIN && n <= ALIAS_MAX && matches(ALIAS_RE, s))
        return 0;
    config_error_set(err, "url",
                     "an ECR Public alias is 2-50 lowercase letters, digits and . _ - starting "
                     "with a letter (got %s)",
                     config_quote(q, sizeof(q), s));
    return -EINVAL;
}

void ecr_target_clear(struct ecr_target *t)
{
    if (!t)
        return;
    free(t->host);
    free(t->region);
    free(t->account);
    free(t->alias);
    free(t->repository);
    memset(t, 0, sizeof(*t));
}

int ecr_target_copy(struct ecr_target *dst, const struct ecr_target *src)
{
    struct ecr_target c = {.is_public = src->is_public};
    const char *from[] = {src->host, src->region, src->account, src->alias, src->repository};
    char **to[] = {&c.host, &c.region, &c.account, &c.alias, &c.repository};
    for (size_t i = 0; i < 5; i++) {
        if (from[i] && !(*to[i] = strdup(from[i]))) {
            ecr_target_clear(&c);
            return -ENOMEM;
        }
    }
    *dst = c;
    return 0;
}

char *ecr_target_url(const struct ecr_target *t)
{
    char *s = NULL;
    if (!t->host || asprintf(&s, "https://%s/", t->host) < 0)
        return NULL;
    return s;
}

/* The private registry host of account and region, from the defaults pattern. */
static int private_host(const char *account, const char *region, char **out)
{
    char buf[256];
    int rc = defaults_expand(upstream_defaults.ecr_private_host, region, account, buf, sizeof(buf));
    if (rc < 0)
        return rc;
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}

int ecr_target_validate(const struct ecr_target *t, struct config_error *err)
{
    int rc;
    if (!t->host) {
        config_error_set(err, "url", "an ECR target needs a host");
        return -EINVAL;
    }
    if (t->repository && (rc = check_repository(t->repository, err)) < 0)
        return rc;
    if (t->account && (rc = check_account(t->account, err)) < 0)
        return rc;
    if (t->is_public) {
        if (strcmp(t->host, upstream_defaults.ecr_public_host) != 0 || t->region) {
            config_error_set(err, "url", "a public ECR target lives on %s, in no region",
                             upstream_defaults.ecr_public_host);
            return -EINVAL;
        }
        if (!t->alias && !t->account) {
            config_error_set(err, "url", "a public ECR target needs an alias or an account");
            return -EINVAL;
        }
        return t->alias ? check_alias(t->alias, err) : 0;
    }
    if (!t->account || !t->region || t->alias) {
        config_error_set(err, "url", "a private ECR target needs an account and a region");
        return -EINVAL;
    }
    if ((rc = check_region(t->region, err)) < 0)
        return rc;
    char *host = NULL;
    if ((rc = private_host(t->account, t->region, &host)) < 0)
        return rc;
    bool same = strcmp(host, t->host) == 0;
    free(host);
    if (!same) {
        config_error_set(err, "url", "the ECR host does not match account and region");
        return -EINVAL;
    }
    return 0;
}

/*
 * Splits the decoded path into its first `fixed` segments (copied into seg[];
 * those missing stay NULL) and the rest, which becomes a repository name
 * (NULL if empty). One trailing '/' is allowed; empty segments are not.
 */
static int split_path(const char *path, size_t fixed, char **seg, char **rest, const char *url,
                      struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    const char *p = path;
    int rc = -EINVAL;

    *rest = NULL;
    if (*p == '/')
        p++;
    for (size_t i = 0; i < fixed; i++) {
        if (!*p)
            return 0; /* fewer segments than the form has: the caller names the form */
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            goto bad;
        if (!(seg[i] = strndup(p, len)))
            return -ENOMEM;
        p += len;
        if (*p == '/')
            p++;
    }
    size_t len = strlen(p);
    if (len && p[len - 1] == '/')
        len--;
    if (len == 0)
        return 0;
    if (!(*rest = strndup(p, len)))
        return -ENOMEM;
    return 0;
bad:
    config_error_set(err, "url", "has an empty path segment (got %s)",
                     config_quote(q, sizeof(q), url));
    return rc;
}

/* The value of region= in a raw query string, decoded; NULL if absent. */
static int query_region(const char *query, char **out)
{
    *out = NULL;
    for (const char *p = query; p && *p;) {
        const char *e = strchr(p, '&');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 7 && strncmp(p, "region=", 7) == 0) {
            int n = 0;
            char *raw = strndup(p + 7, len - 7);
            if (!raw)
                return -ENOMEM;
            char *dec = curl_easy_unescape(NULL, raw, (int)(len - 7), &n);
            free(raw);
            if (!dec)
                return -ENOMEM;
            free(*out);
            *out = strndup(dec, (size_t)n);
            curl_free(dec);
            if (!*out)
                return -ENOMEM;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

static int parse_console(const char *url, const char *host, const char *path, const char *query,
                         struct ecr_target *t, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    const char *console = upstream_defaults.ecr_console_host;
    size_t hl = strlen(host), cl = strlen(console);
    char *seg[4] = {0}, *repo = NULL, *qregion = NULL, *hregion = NULL;
    int rc;

    if (hl > cl + 1 && host[hl - cl - 1] == '.' && !(hregion = strndup(host, hl - cl - 1))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = query_region(query, &qregion)) < 0)
        goto out;
    if ((rc = split_path(path, 4, seg, &repo, url, err)) < 0)
        goto out;
    rc = -EINVAL;
    if (!seg[3] || strcmp(seg[0], "ecr") != 0 || strcmp(seg[1], "repositories") != 0 ||
        (strcmp(seg[2], "private") != 0 && strcmp(seg[2], "public") != 0)) {
        config_error_set(err, "url",
                         "an ECR console URL looks like https://{region}.%s/ecr/repositories/"
                         "{private|public}/{account}/{repo} (got %s)",
                         console, config_quote(q, sizeof(q), url));
        goto out;
    }
    if (!repo) {
        config_error_set(err, "url", "the console URL names no repository (got %s)",
                         config_quote(q, sizeof(q), url));
        goto out;
    }
    if ((rc = check_account(seg[3], err)) < 0 || (rc = check_repository(repo, err)) < 0)
        goto out;
    rc = -EINVAL;
    if (hregion && qregion && strcmp(hregion, qregion) != 0) {
        config_error_set(err, "url", "the console URL names two regions, %s and %s", hregion,
                         qregion);
        goto out;
    }
    t->is_public = strcmp(seg[2], "public") == 0;
    t->account = seg[3];
    seg[3] = NULL;
    t->repository = repo;
    repo = NULL;
    if (t->is_public) {
        /* The console region of a public repository is arbitrary: ECR Public has one. */
        t->host = strdup(upstream_defaults.ecr_public_host);
        rc = t->host ? 0 : -ENOMEM;
        goto out;
    }
    const char *region = qregion ? qregion : hregion;
    if (!region) {
        config_error_set(err, "url", "the console URL names no region (add ?region=...)");
        goto out;
    }
    if ((rc = check_region(region, err)) < 0)
        goto out;
    if (!(t->region = strdup(region))) {
        rc = -ENOMEM;
        goto out;
    }
    rc = private_host(t->account, t->region, &t->host);
out:
    for (int i = 0; i < 4; i++)
        free(seg[i]);
    free(repo);
    free(qregion);
    free(hregion);
    return rc;
}

static int parse_public(const char *url, const char *path, struct ecr_target *t,
                        struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    char *alias = NULL, *repo = NULL;
    int rc = split_path(path, 0, NULL, &alias, url, err);
    if (rc < 0)
        return rc;
    if (!alias) {
        config_error_set(err, "url", "an ECR Public URL names the alias: %s/<alias>[/<repo>]",
                         upstream_defaults.ecr_public_host);
        return -EINVAL;
    }
    char *slash = strchr(alias, '/');
    if (slash) {
        *slash = '\0';
        if (!(repo = strdup(slash + 1))) {
            rc = -ENOMEM;
            goto out;
        }
    }
    if (!*alias) {
        config_error_set(err, "url", "has an empty path segment (got %s)",
                         config_quote(q, sizeof(q), url));
        rc = -EINVAL;
        goto out;
    }
    if ((rc = check_alias(alias, err)) < 0 || (repo && (rc = check_repository(repo, err)) < 0))
        goto out;
    if (!(t->host = strdup(upstream_defaults.ecr_public_host))) {
        rc = -ENOMEM;
        goto out;
    }
    t->is_public = true;
    t->alias = alias;
    t->repository = repo;
    return 0;
out:
    free(alias);
    free(repo);
    return rc;
}

static int parse_private(const char *url, const char *host, const char *path, struct ecr_target *t,
                         struct config_error *err)
{
    char *region = NULL, *account = NULL, *repo = NULL;
    int rc = defaults_match(upstream_defaults.ecr_private_host, host, &region, &account);
    if (rc < 0)
        return rc;
    if ((rc = check_account(account, err)) < 0 || (rc = check_region(region, err)) < 0)
        goto out;
    if ((rc = split_path(path, 0, NULL, &repo, url, err)) < 0)
        goto out;
    if (repo && (rc = check_repository(repo, err)) < 0)
        goto out;
    if (!(t->host = strdup(host))) {
        rc = -ENOMEM;
        goto out;
    }
    t->account = account;
    t->region = region;
    t->repository = repo;
    return 0;
out:
    free(region);
    free(account);
    free(repo);
    return rc;
}

int ecr_url_parse(const char *url, struct ecr_target *out, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    struct ecr_target t = {0};
    CURLU *h = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *frag = NULL;
    int rc;

    /* Registry forms are usually pasted without a scheme, as docker prints them. */
    if ((rc = config__url_open("url", url, CURLU_DEFAULT_SCHEME, &h, err)) < 0)
        return rc;
    if ((rc = config__url_get(h, CURLUPART_SCHEME, 0, &scheme)) < 0 ||
        (rc = config__url_get(h, CURLUPART_HOST, 0, &host)) < 0 ||
        (rc = config__url_get(h, CURLUPART_PORT, CURLU_NO_DEFAULT_PORT, &port)) < 0 ||
        (rc = config__url_get(h, CURLUPART_QUERY, 0, &query)) < 0 ||
        (rc = config__url_get(h, CURLUPART_FRAGMENT, 0, &frag)) < 0)
        goto out;
    if ((rc = config__url_get(h, CURLUPART_PATH, CURLU_URLDECODE, &path)) < 0) {
        config_error_set(err, "url", "has a path that does not decode (got %s)",
                         config_quote(q, sizeof(q), url));
        goto out;
    }
    config__lower(host);
    rc = -EINVAL;
    if (strcmp(scheme, "https") != 0) {
        config_error_set(err, "url", "ECR is reached over https only (got %s)",
                         config_quote(q, sizeof(q), url));
        goto out;
    }
    if (port || frag) {
        config_error_set(err, "url", "an ECR URL has no port or fragment (got %s)",
                         config_quote(q, sizeof(q), url));
        goto out;
    }
    const char *console = upstream_defaults.ecr_console_host;
    size_t hl = strlen(host), cl = strlen(console);
    if (strcmp(host, console) == 0 ||
        (hl > cl && host[hl - cl - 1] == '.' && strcmp(host + hl - cl, console) == 0)) {
        rc = parse_console(url, host, path ? path : "", query, &t, err);
        goto out;
    }
    if (query) {
        config_error_set(err, "url", "an ECR registry URL has no query (got %s)",
                         config_quote(q, sizeof(q), url));
        goto out;
    }
    if (strcmp(host, upstream_defaults.ecr_public_host) == 0 ||
        strcmp(host, upstream_defaults.ecr_gallery_host) == 0) {
        rc = parse_public(url, path ? path : "", &t, err);
        goto out;
    }
    rc = parse_private(url, host, path ? path : "", &t, err);
    if (rc == -ENOENT) {
        config_error_set(err, "url",
                         "not an ECR URL: use %s[/repo], %s/{alias}[/repo] or the "
                         "console URL (got %s)",
                         upstream_defaults.ecr_private_host, upstream_defaults.ecr_public_host,
                         config_quote(q, sizeof(q), url));
        rc = -EINVAL;
    }
out:
    if (rc == 0) {
        ecr_target_clear(out);
        *out = t;
    } else {
        ecr_target_clear(&t);
    }
    free(scheme);
    free(host);
    free(port);
    free(path);
    free(query);
    free(frag);
    curl_url_cleanup(h);
    return rc;
}
