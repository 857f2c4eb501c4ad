/*
 * reload: keeps the engine in step with the config store (engine_reload,
 * engine_on_reload; contracts in include/upstreamfs/engine.h).
 *
 * A reload reads the proxies and registries when the config generation
 * moved, keeps the running upstream of each proxy whose settings and secret
 * did not change (its health and its driver's caches survive), swaps the
 * tables under e->cfg_lock, retires the old upstreams, keeps one top-level
 * node per proxy and registry, and tells the front door which top-level
 * trees changed. The watcher thread (engine.c) calls it every 500 ms.
 */
#include "engine_i.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/log.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * What a proxy's tree was learned from: its type and URL and, for image layouts, the platform
 * filter they were built with. Kept per proxy in the index's settings, across restarts.
 */
static void source_print(const struct engine *e, const struct proxy *p, char *buf, size_t len)
{
    bool images = p->type == PROXY_DOCKER || p->type == PROXY_ECR;
    snprintf(buf, len, "%s %s%s%s", config_type_name(p->type), p->url ? p->url : "",
             images ? " platform=" : "", images && e->platforms ? e->platforms : "");
}

/*
 * Keeps one top-level node per proxy and registry; removes the trees of deleted ones, and of
 * proxies whose source changed since their tree was learned (a new URL, edited while mounted
 * or not; image layouts under another platform filter): what the old one said is wrong now.
 */
static int sync_tops(struct engine *e)
{
    char **tops = NULL;
    size_t ntops = 0;
    int64_t now = engine__now();
    pthread_rwlock_rdlock(&e->cfg_lock);
    pthread_mutex_lock(&e->mu);
    int rc = index_tops(e->ix, &tops, &ntops);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < ntops; i++) {
        bool keep = false;
        for (size_t j = 0; j < e->n_ups && !keep; j++)
            keep = strcmp(e->ups[j]->cfg.key, tops[i]) == 0;
        for (size_t j = 0; j < e->n_regs && !keep; j++)
            keep = strcmp(e->regs[j].name, tops[i]) == 0;
        if (!keep) {
            log_info("%s was deleted; forgetting its tree", tops[i]);
            index_remove_top(e->ix, tops[i], false);
        }
    }
    for (size_t j = 0; j < e->n_ups; j++) {
        const struct proxy *p = &e->ups[j]->cfg;
        char key[CONFIG_KEY_MAX + 16], want[4300], had[4300];
        snprintf(key, sizeof(key), "source:%s", p->key);
        source_print(e, p, want, sizeof(want));
        bool recorded = index_setting_get(e->ix, key, had, sizeof(had)) == 0;
        if (recorded && strcmp(had, want) == 0)
            continue; /* nothing to forget, nothing to write */
        if (recorded) {
            log_info("proxy %s: its source changed (%s, was %s); forgetting what the old one "
                     "listed",
                     p->key, want, had);
            index_remove_top(e->ix, p->key, true);
            struct node top;
            if (index_child(e->ix, INDEX_ROOT_INO, p->key, &top) == 0) {
                top.listed = 0; /* its listing is to be read again, from the new remote */
                top.checked = 0;
                index_put(e->ix, &top);
                node_clear(&top);
            }
        }
        if (index_setting_set(e->ix, key, want) < 0)
            log_warn("proxy %s: could not record its source in the index", p->key);
    }
    size_t total = e->n_ups + e->n_regs;
    for (size_t k = 0; rc == 0 && k < total; k++) {
        const char *name = k < e->n_ups ? e->ups[k]->cfg.key : e->regs[k - e->n_ups].name;
        struct node n = {0};
        if (index_child(e->ix, INDEX_ROOT_INO, name, &n) == 0) {
            node_clear(&n);
            continue;
        }
        n.parent = INDEX_ROOT_INO;
        n.name = (char *)name;
        n.top = (char *)name;
        n.path = (char *)"";
        n.kind = NODE_DIR;
        n.mtime = now;
        rc = index_put(e->ix, &n);
        if (rc < 0)
            break;
    }
out:
    pthread_mutex_unlock(&e->mu);
    pthread_rwlock_unlock(&e->cfg_lock);
    for (size_t i = 0; i < ntops; i++)
        free(tops[i]);
    free(tops);
    return rc;
}

/* The running upstreams, each referenced (NULL when there are none or on ENOMEM). */
static struct upstream **upstreams_snapshot(struct engine *e, size_t *n)
{
    pthread_rwlock_rdlock(&e->cfg_lock);
    struct upstream **cur = e->n_ups ? calloc(e->n_ups, sizeof(*cur)) : NULL;
    *n = cur ? e->n_ups : 0;
    for (size_t i = 0; i < *n; i++) {
        cur[i] = e->ups[i];
        upstream_ref(cur[i]);
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return cur;
}

/*
 * When proxy p's package policy took its form: the running upstream's time when the policy
 * is the same, now when it changed (or is set at the start), 0 for none since the start.
 */
static int64_t policy_since(struct upstream **cur, size_t n, const struct proxy *p)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cur[i]->cfg.key, p->key) == 0)
            return policy_same(&cur[i]->cfg, p) ? cur[i]->policy_since : engine__now();
    return policy_active(p) ? engine__now() : 0;
}

/*
 * The running upstream of a proxy whose config and secret did not change,
 * referenced, or NULL. Keeping it across a reload that changed something
 * else keeps its health and its driver's caches (registry tokens, tag
 * resolutions, parsed indexes), which a new object would have to relearn.
 */
static struct upstream *upstream_unchanged(struct upstream **cur, size_t n, const struct proxy *p,
                                           const char *secret)
{
    json_t *want = config_proxy_to_json(p);
    struct upstream *found = NULL;
    for (size_t i = 0; want && i < n && !found; i++) {
        if (strcmp(cur[i]->cfg.key, p->key) != 0)
            continue;
        json_t *have = config_proxy_to_json(&cur[i]->cfg);
        if (have && json_equal(have, want) &&
            strcmp(cur[i]->secret ? cur[i]->secret : "", secret ? secret : "") == 0) {
            upstream_ref(cur[i]);
            found = cur[i];
        }
        json_decref(have);
    }
    json_decref(want);
    return found;
}

/*
 * The top-level names whose trees a reload changed: each proxy of old that
 * went away or was replaced (its settings changed: include/exclude, URL, ...)
 * and each registry that lists one. NULL-terminated, or NULL when none.
 */
static char **changed_tops(struct engine *e, struct upstream **old, size_t nold)
{
    char **out = NULL;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < nold; i++) {
        bool same = false;
        for (size_t j = 0; j < e->n_ups && !same; j++)
            same = e->ups[j] == old[i];
        if (same)
            continue;
        config_strv_push(&out, old[i]->cfg.key);
        for (size_t r = 0; r < e->n_regs; r++)
            for (char **k = e->regs[r].upstreams; k && *k; k++)
                if (strcmp(*k, old[i]->cfg.key) == 0)
                    config_strv_push(&out, e->regs[r].name);
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return out;
}

/*
 * The secret of proxy KEY, which has one (configdb.c); 0, or the -errno of a
 * secret that could not be read (a missing file is -ENOENT), logged with the
 * proxy's name and the reason (never the secret): its requests then fail
 * with cause auth (upstream_credentials_check) instead of going out without
 * credentials.
 */
static int secret_read(struct engine *e, const char *key, char **secret)
{
    int rc = configdb_secret_read(e->st, key, secret);
    if (rc == 0 && !*secret)
        rc = -ENOENT;
    if (rc < 0)
        log_warn("proxy %s: cannot read its secret (secrets/%s): %s; its requests fail with "
                 "cause auth until it can be read",
                 key, key, strerror(-rc));
    return rc;
}

int engine_reload(struct engine *e)
{
    long long gen = 0;
    struct proxy *plist = NULL;
    struct registry *rlist = NULL;
    size_t np = 0, nr = 0, ncur = 0;
    int rc;
    struct upstream **cur = upstreams_snapshot(e, &ncur);
    pthread_mutex_lock(&e->mu);
    rc = configdb_generation(e->st, &gen);
    if (rc == 0 && gen == e->generation && e->ups) {
        pthread_mutex_unlock(&e->mu);
        for (size_t i = 0; i < ncur; i++)
            upstream_unref(cur[i]);
        free(cur);
        return 0;
    }
    if (rc == 0)
        rc = configdb_proxy_list(e->st, &plist, &np);
    if (rc == 0)
        rc = configdb_registry_list(e->st, &rlist, &nr);
    struct upstream **ups = calloc(np + 1, sizeof(*ups));
    for (size_t i = 0; rc == 0 && ups && i < np; i++) {
        char *secret = NULL;
        /* access-key auth always has a secret (config.c:check_auth): a missing file is a loss */
        bool want = plist[i].secret_set || plist[i].auth == AUTH_ACCESS_KEY;
        int serr = want ? secret_read(e, plist[i].key, &secret) : 0;
        ups[i] = serr ? NULL : upstream_unchanged(cur, ncur, &plist[i], secret);
        if (!ups[i] && (ups[i] = upstream_new(e, &plist[i], secret))) {
            ups[i]->secret_err = serr;
            ups[i]->policy_since = policy_since(cur, ncur, &plist[i]);
        }
        if (secret) {
            secret_wipe(secret, strlen(secret));
            free(secret);
        }
        if (!ups[i])
            rc = -ENOMEM;
    }
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < ncur; i++)
        upstream_unref(cur[i]);
    free(cur);
    if (rc < 0 || !ups) {
        for (size_t i = 0; ups && i < np; i++)
            upstream_unref(ups[i]);
        free(ups);
        configdb_proxy_list_free(plist, np);
        configdb_registry_list_free(rlist, nr);
        return rc < 0 ? rc : -ENOMEM;
    }
    pthread_rwlock_wrlock(&e->cfg_lock);
    struct upstream **old = e->ups;
    size_t nold = e->n_ups;
    struct registry *oldregs = e->regs;
    size_t noldregs = e->n_regs;
    e->ups = ups;
    e->n_ups = np;
    e->regs = rlist;
    e->n_regs = nr;
    e->generation = gen;
    pthread_rwlock_unlock(&e->cfg_lock);
    char **changed = changed_tops(e, old, nold);
    for (size_t i = 0; i < nold; i++) {
        upstream_retire(old[i], ups, np);
        upstream_unref(old[i]);
    }
    free(old);
    configdb_registry_list_free(oldregs, noldregs);
    configdb_proxy_list_free(plist, np);
    rc = sync_tops(e);
    pthread_mutex_lock(&e->reload_mu); /* engine_on_reload waits for the calls to end */
    for (char **c = changed; c && *c && e->reload_cb; c++)
        e->reload_cb(e->reload_arg, *c);
    pthread_mutex_unlock(&e->reload_mu);
    config_strv_free(changed);
    return rc;
}

void engine_on_reload(struct engine *e, void (*cb)(void *arg, const char *name), void *arg)
{
    pthread_mutex_lock(&e->reload_mu);
    e->reload_cb = cb;
    e->reload_arg = arg;
    pthread_mutex_unlock(&e->reload_mu);
}
