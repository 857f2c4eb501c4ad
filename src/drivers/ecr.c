/*
 * ecr: AWS ECR, private and public, as the docker driver's ECR variant
 * (docker_i.h); the protocol, the tree and the caching are the docker
 * driver's (README.md: MNT/<key>/<repository>/<tag>/ is an OCI layout).
 *
 * What differs, all from ecr_auth.h (tokens fetched at first use, kept
 * until shortly before expiresAt, refreshed without failing callers that
 * hold a valid one):
 *  - private: every request carries "Basic <token>" and goes to the
 *    proxyEndpoint the token answer named (the registry host in the proxy's
 *    URL is replaced by it at run time); a 401, or the 403 DENIED with which
 *    ECR refuses an expired token, drops the token for a new one (asked once);
 *  - public with keys: the ecr-public token as "Bearer"; anonymous public:
 *    no header, so the docker driver follows the registry's 401 challenge to
 *    its token realm. ECR Public answers 400 DENIED (not 401) to an expired
 *    or invalid token: treated as a refused token (dropped, asked again once);
 *  - names: a public proxy's root is its registry alias (MNT/<key>/<repo> is
 *    "<alias>/<repo>" on the wire; a console URL names the account, and the
 *    alias is looked up with DescribeRegistries at first use); a URL that
 *    names a repository (a console URL, or a registry URL with a path) scopes
 *    the proxy to it: MNT/<key>/<repository>/ as the registry names it, and
 *    every other name is refused without a request;
 *  - ECR Public has no catalog; a private registry's is asked as usual.
 *
 * The proxy's access key and secret are AWS credentials for the ECR API
 * only: the upstream's endpoint must not offer them to the registry as Basic
 * credentials, so open() takes them off it (before any request is made, as
 * every request of this proxy passes through the driver's state first).
 */
#include "docker_i.h"

#include "upstreamfs/ecr_auth.h"
#include "upstreamfs/log.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ecr_var {
    char key[CONFIG_KEY_MAX + 1];
    struct ecr_auth *auth; /* NULL when the settings are unusable (logged at open) */
    bool is_public;
    char *only; /* the repository scope, or NULL */
};

static void ev_close(void *st)
{
    struct ecr_var *v = st;
    if (!v)
        return;
    ecr_auth_free(v->auth);
    free(v->only);
    free(v);
}

static void *ev_open(struct upstream *u, struct dk_variant_info *info)
{
    struct ecr_var *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    snprintf(v->key, sizeof(v->key), "%s", upstream_config(u)->key);
    v->is_public = upstream_config(u)->ecr.is_public;
    if (upstream_config(u)->ecr.repository &&
        !(v->only = strdup(upstream_config(u)->ecr.repository))) {
        ev_close(v);
        return NULL;
    }
    v->auth = ecr_auth_new(upstream_config(u), upstream_secret(u));
    if (!v->auth) {
        if (errno == ENOMEM) {
            ev_close(v);
            return NULL;
        }
        log_error("proxy %s: unusable ECR settings (%s); nothing can be read through it",
                  upstream_config(u)->key,
                  upstream_config(u)->auth == AUTH_ACCESS_KEY && !upstream_secret(u)
                      ? "the secret is missing"
                      : "no region or credentials");
    }
    info->only_repository = v->only;
    info->no_catalog = v->is_public;
    info->deny_status = v->is_public ? 400 : 403;
    return v;
}

static int ev_access(void *st, struct dk_access *out)
{
    struct ecr_var *v = st;
    memset(out, 0, sizeof(*out));
    if (!v->auth)
        return -EACCES;
    int rc = ecr_auth_get(v->auth, &out->authorization, &out->base);
    if (rc < 0)
        dk_access_clear(out);
    return rc;
}

static void ev_refused(void *st, const char *authorization)
{
    struct ecr_var *v = st;
    if (v->auth)
        ecr_auth_invalidate(v->auth, authorization);
}

static int ev_prefix(void *st, char **prefix)
{
    struct ecr_var *v = st;
    char *alias = NULL;
    *prefix = NULL;
    if (!v->is_public)
        return 0;
    if (!v->auth)
        return -EACCES;
    int rc = ecr_auth_public_alias(v->auth, &alias);
    if (rc < 0)
        return rc == -ENOENT || rc == -EINVAL ? -EACCES : rc;
    rc = asprintf(prefix, "%s/", alias) < 0 ? -ENOMEM : 0;
    free(alias);
    if (rc < 0)
        *prefix = NULL;
    return rc;
}

const struct dk_variant dk_variant_ecr = {
    .open = ev_open,
    .close = ev_close,
    .access = ev_access,
    .refused = ev_refused,
    .prefix = ev_prefix,
};
