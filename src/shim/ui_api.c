/*
 * ui_api: the API routes the web page needs beyond api.c's proxies and
 * registries (declared in ui.h): the cache report, pin/unpin/evict of a
 * mount path, and a dry run of proxy creation for checking as you type.
 *
 * The report reads the cache's own tables (node, object) through the
 * index's reports (src/index/index_stats.c) on the shim's state connection,
 * under st_mu like api.c's reads, and only reads:
 * per name, the distinct objects its files point at and whether any of its
 * files was last served stale, and how many of its cached entries are marked
 * removed-upstream (src/engine/removals.c); overall, the largest cached objects with one
 * mount path each (the one pin and evict take). Counters (hits, misses, ...)
 * are the serving engine's, since its start. A proxy's state is its health
 * in the engine (include/upstreamfs/health.h, the words of
 * docs/troubleshooting.md): "offline" (set never to contact its remote),
 * "failing", "backing-off", "stale" (failing, and cached copies were served
 * instead), else "online" (health ok); its "health" member is the object
 * /api/v1/proxies carries (cause, status, last_success, ...). A registry is
 * "offline" when all its upstreams are, else the worst of its upstreams'
 * states (failing or backing-off before stale); "stale" on a name's row also
 * counts its files last served stale.
 *
 * The dry run is config_crud's (crud_proxy_dry_run): a body prepared exactly
 * as POST /api/v1/proxies prepares it, then the name's uniqueness, and
 * nothing written; a secret_key in it is only looked at for being given, and
 * wiped.
 *
 * The POST routes change the cache or answer questions about the config,
 * so they refuse what a browser sends cross-site without asking: a body
 * that is not declared application/json (other types need a CORS preflight,
 * which this shim never grants), and an Origin other than this server's.
 */
#include "ui.h"
#include "upstreamfs/config_crud.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Rows of the largest-artifacts table. */
#define UI_ARTIFACTS_MAX 50

bool shim__ui_api_owns(const char *path)
{
    return !strcmp(path, "api/v1/cache") || !strncmp(path, "api/v1/cache/", 13) ||
           !strncmp(path, "api/v1/validate/", 16);
}

/* ---- the cache report ------------------------------------------------------------------- */

/* Use of the top-level names (index_usage), in the order of the proxies, then the registries. */
struct uses {
    struct index_usage *u;
    size_t n;
};


/* The largest objects as the report's JSON array. */
static json_t *artifacts_json(const struct index_artifact *a, size_t n)
{
    json_t *arts = json_array();
    for (size_t i = 0; arts && i < n; i++) {
        char digest[80];
        json_t *jpath = a[i].path ? json_string(a[i].path) : NULL; /* NULL too if not UTF-8 */
        snprintf(digest, sizeof(digest), "sha256:%s", a[i].digest);
        json_array_append_new(arts, json_pack("{s:o, s:s, s:I, s:I, s:b}", "path",
                                              jpath ? jpath : json_null(), "digest", digest,
                                              "size", (json_int_t)a[i].size, "atime",
                                              (json_int_t)a[i].atime, "pinned", a[i].pinned));
    }
    return arts;
}

/* The cache tables on the shim's connection; caller holds st_mu. */
static int shim_index(struct shim *s, struct index **ix)
{
    int rc = s->ix ? 0 : index_open(s->st->db, &s->ix);
    *ix = s->ix;
    return rc;
}

/* The badge's word for a proxy's health: the health's own, "online" for ok. */
static const char *proxy_state(const struct proxy *p, const struct health_snapshot *h)
{
    if (p->offline)
        return "offline";
    return h && h->state != HEALTH_OK ? health_state_name(h->state) : "online";
}

/* A registry: offline if it has upstreams and all are; else its upstreams' worst state. */
static const char *registry_state(const struct registry *g, const struct proxy *px,
                                  const struct health_snapshot *hs, size_t npx)
{
    size_t n = 0, offline = 0;
    bool failing = false, stale = false;
    for (char **k = g->upstreams; k && *k; k++, n++) {
        for (size_t i = 0; i < npx; i++) {
            if (strcmp(px[i].key, *k) != 0)
                continue;
            const char *st = proxy_state(&px[i], hs ? &hs[i] : NULL);
            offline += !strcmp(st, "offline");
            failing = failing || !strcmp(st, "failing") || !strcmp(st, "backing-off");
            stale = stale || !strcmp(st, "stale");
        }
    }
    return n && offline == n ? "offline" : failing ? "failing" : stale ? "stale" : "online";
}

static json_t *use_json(const struct index_usage *u, const char *kind, const char *type,
                        const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "name", u->top, "kind",
                     kind, "type", type, "state", state, "objects", (json_int_t)u->objects,
                     "bytes", (json_int_t)u->bytes, "local_objects", (json_int_t)u->local_objects,
                     "local_bytes", (json_int_t)u->local_bytes, "stale", (json_int_t)u->stale,
                     "removed_upstream", (json_int_t)u->removed);
}

static enum MHD_Result cache_report(struct shim_req *r)
{
    struct engine_stats es;
    struct proxy *px = NULL;
    struct registry *rg = NULL;
    size_t npx = 0, nrg = 0;
    struct uses us = {0};
    int64_t pinned = 0;
    struct index *ix = NULL;
    struct index_artifact *largest = NULL;
    size_t nlargest = 0;
    json_t *arts = NULL, *names = json_array(), *out = NULL;
    enum MHD_Result ok;

    int rc = engine_stats(r->s->e, &es);
    if (rc < 0) {
        ok = shim__api_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "engine", strerror(-rc));
        goto out;
    }
    pthread_mutex_lock(&r->s->st_mu);
    if ((rc = shim_index(r->s, &ix)) == 0 && (rc = configdb_proxy_list(r->s->st, &px, &npx)) == 0 &&
        (rc = configdb_registry_list(r->s->st, &rg, &nrg)) == 0 &&
        !(us.u = calloc(npx + nrg + 1, sizeof(*us.u))))
        rc = -ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < npx; i++)
            us.u[us.n++].top = px[i].key;
        for (size_t i = 0; i < nrg; i++)
            us.u[us.n++].top = rg[i].name;
        if ((rc = index_usage(ix, us.u, us.n)) == 0 &&
            (rc = index_largest(ix, UI_ARTIFACTS_MAX, &largest, &nlargest)) == 0)
            rc = index_pinned_count(ix, &pinned);
    }
    pthread_mutex_unlock(&r->s->st_mu);
    if (rc == 0)
        arts = artifacts_json(largest, nlargest);
    if (rc < 0) {
        ok = shim__api_config_error(r, rc, NULL);
        goto out;
    }
    /* Each proxy's health, in the order of px (the engine's table may differ). */
    struct health_snapshot *hs = npx ? calloc(npx, sizeof(*hs)) : NULL;
    for (size_t i = 0; hs && i < npx; i++)
        if (engine_proxy_health(r->s->e, px[i].key, &hs[i]) < 0)
            hs[i] = (struct health_snapshot){.state = HEALTH_OK, .ratelimit_remaining = -1,
                                             .ratelimit_limit = -1};
    for (size_t i = 0; names && i < npx; i++) {
        json_t *o = use_json(&us.u[i], "proxy", config_type_name(px[i].type),
                             proxy_state(&px[i], hs ? &hs[i] : NULL));
        if (o && hs)
            json_object_set_new(o, "health", health_object(&hs[i]));
        json_array_append_new(names, o);
    }
    for (size_t i = 0; names && i < nrg; i++)
        json_array_append_new(names,
                              use_json(&us.u[npx + i], "registry", config_type_name(rg[i].type),
                                       registry_state(&rg[i], px, hs, npx)));
    free(hs);
    int64_t looked = es.hits + es.misses;
    out = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:i, s:O, "
        "s:O, s:I}",
        "cache_bytes", (json_int_t)es.cache_bytes, "cache_objects", (json_int_t)es.cache_objects,
        "pinned_objects", (json_int_t)pinned, "local_bytes", (json_int_t)es.local_bytes,
        "local_objects", (json_int_t)es.local_objects, "quota_bytes", (json_int_t)es.quota_bytes,
        "hits", (json_int_t)es.hits, "misses", (json_int_t)es.misses, "hit_rate",
        looked ? json_real((double)es.hits / (double)looked) : json_null(), "upstream_requests",
        (json_int_t)es.upstream_requests, "upstream_bytes", (json_int_t)es.upstream_bytes,
        "evictions", (json_int_t)es.evictions, "stale_serves", (json_int_t)es.stale_serves,
        "inflight", es.inflight, "names", names, "artifacts", arts, "removed_upstream",
        (json_int_t)es.removed_upstream);
    ok = shim__api_json(r, MHD_HTTP_OK, out);
out:
    json_decref(arts);
    json_decref(names);
    free(us.u);
    index_largest_free(largest, nlargest);
    configdb_proxy_list_free(px, npx);
    configdb_registry_list_free(rg, nrg);
    return ok;
}

/* ---- pin, unpin, evict ------------------------------------------------------------------ */

/*
 * Copies a mount path ("KEY/a/b", slashes at either end dropped) into out;
 * -EINVAL with why for an empty one, a control byte, or a ".", ".." or
 * empty component: the engine gets plain components only, as from the mount.
 */
static int mount_path(const char *in, char *out, size_t outlen, const char **why)
{
    while (*in == '/')
        in++;
    size_t n = strlen(in);
    while (n && in[n - 1] == '/')
        n--;
    *why = "must be a path as in the mount (KEY/...), without '.', '..', empty components or "
           "control characters";
    if (!n || n >= outlen)
        return -EINVAL;
    memcpy(out, in, n);
    out[n] = '\0';
    for (const unsigned char *p = (const unsigned char *)out; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    for (const char *c = out; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return -EINVAL;
        c += len + (c[len] == '/');
    }
    return 0;
}

static enum MHD_Result cache_action(struct shim_req *r, const char *action)
{
    char path[SHIM_PATH_MAX + 1], q[CONFIG_QUOTE_MAX], msg[CONFIG_QUOTE_MAX + 300];
    const char *why;
    enum MHD_Result ok;
    json_t *obj = shim__api_body(r, &ok);
    if (!obj)
        return ok;
    json_t *v = json_object_get(obj, "path");
    if (!json_is_string(v)) {
        json_decref(obj);
        return shim__api_error(r, MHD_HTTP_BAD_REQUEST, "path", "must be given as a string");
    }
    int rc = mount_path(json_string_value(v), path, sizeof(path), &why);
    json_decref(obj);
    if (rc < 0)
        return shim__api_error(r, MHD_HTTP_BAD_REQUEST, "path", why);
    int failed = 0;
    int n = !strcmp(action, "evict") ? engine_evict_path(r->s->e, path, &failed)
                                     : engine_pin(r->s->e, path, !strcmp(action, "pin"), &failed);
    if (n < 0) {
        /* The shim's one errno→status map; ENODATA (nothing cached) and EINVAL are this route's. */
        int status = n == -ENODATA ? MHD_HTTP_NOT_FOUND
                     : n == -EINVAL ? MHD_HTTP_BAD_REQUEST
                                    : failure_http_status(n);
        config_quote(q, sizeof(q), path);
        if (n == -ENOENT || n == -ENOTDIR)
            snprintf(msg, sizeof(msg), "%s: no such path", q);
        else if (n == -ENODATA)
            snprintf(msg, sizeof(msg), "%s: nothing cached there", q);
        else if (status == MHD_HTTP_BAD_GATEWAY || status == MHD_HTTP_GATEWAY_TIMEOUT) {
            char cause[200];
            shim__failure_text(n, cause, sizeof(cause));
            snprintf(msg, sizeof(msg), "%s: not known here, and the upstream failed (%.200s)", q,
                     cause);
        } else
            snprintf(msg, sizeof(msg), "%s: %s", q, strerror(-n));
        return shim__api_error(r, (unsigned)status, "path", msg);
    }
    log_info("shim: api: cache %s %s: %d object(s), %d failed", action,
             config_quote(q, sizeof(q), path), n, failed);
    json_t *res = json_pack("{s:s, s:s, s:i}", "action", action, "path", path, "objects", n);
    if (res && failed > 0) /* part of it did not happen: say how much */
        json_object_set_new(res, "failed", json_integer(failed));
    return shim__api_json(r, MHD_HTTP_OK, res);
}

/* ---- the dry run ------------------------------------------------------------------------ */

static enum MHD_Result validate_proxy(struct shim_req *r)
{
    struct config_error err = {0};
    struct proxy p = {0};
    enum MHD_Result ok;
    json_t *obj = shim__api_body(r, &ok);
    if (!obj)
        return ok;
    pthread_mutex_lock(&r->s->st_mu);
    int rc = crud_proxy_dry_run(r->s->st, obj, &p, &err);
    pthread_mutex_unlock(&r->s->st_mu);
    json_decref(obj);
    ok = rc < 0 ? shim__api_config_error(r, rc, &err)
                : shim__api_json(r, MHD_HTTP_OK,
                                 json_pack("{s:b, s:s, s:o}", "valid", true, "key", p.key, "url",
                                           p.url ? json_string(p.url) : json_null()));
    config_proxy_clear(&p);
    return ok;
}

/* ---- routing ---------------------------------------------------------------------------- */

enum MHD_Result shim__ui_api(struct shim_req *r)
{
    static const char *const actions[] = {"pin", "unpin", "evict"};
    bool get = !strcmp(r->method, "GET") || r->head, post = !strcmp(r->method, "POST");
    enum MHD_Result ok;
    const char *p = r->path + strlen("api/v1/");

    if (!strcmp(p, "cache"))
        return get ? cache_report(r) : shim__reply_method(r, "GET, HEAD");
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (strncmp(p, "cache/", 6) != 0 || strcmp(p + 6, actions[i]) != 0)
            continue;
        if (!post)
            return shim__reply_method(r, "POST");
        return shim__api_guard(r, true, &ok) ? cache_action(r, actions[i]) : ok;
    }
    if (!strcmp(p, "validate/proxy")) {
        if (!post)
            return shim__reply_method(r, "POST");
        return shim__api_guard(r, true, &ok) ? validate_proxy(r) : ok;
    }
    return shim__api_error(
        r, MHD_HTTP_NOT_FOUND, "path",
        "no such API route (see /api/v1/cache, /api/v1/cache/pin|unpin|evict and "
        "/api/v1/validate/proxy)");
}
