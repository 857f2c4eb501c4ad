/*
 * engine: names, attributes and listings (see engine.h).
 *
 * Lookups are answered from the index whenever it knows the name: a file or
 * directory once seen, or a 404 remembered until its negative TTL. Only an
 * unknown name (or an expired absence) asks the driver, which may contact
 * the remote; the answer is written back so the next lookup is local. The
 * root holds one directory per proxy and per registry, kept in step with the
 * config by a watcher thread that polls the config generation every 500 ms.
 */
#include "engine_i.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

int64_t engine__now(void)
{
    return (int64_t)time(NULL);
}

char *engine__join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", dir, dir[0] ? "/" : "", name);
    return p;
}

struct upstream *engine__upstream(struct engine *e, const char *key)
{
    struct upstream *u = NULL;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_ups; i++) {
        if (strcmp(e->ups[i]->cfg.key, key) == 0) {
            u = e->ups[i];
            upstream_ref(u);
            break;
        }
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return u;
}

int engine__registry(struct engine *e, const char *name, struct registry *out)
{
    int rc = -ENOENT;
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_regs; i++) {
        const struct registry *r = &e->regs[i];
        if (strcmp(r->name, name) != 0)
            continue;
        snprintf(out->name, sizeof(out->name), "%s", r->name);
        out->type = r->type;
        size_t n = 0;
        while (r->upstreams && r->upstreams[n])
            n++;
        out->upstreams = calloc(n + 1, sizeof(char *));
        for (size_t j = 0; out->upstreams && j < n; j++)
            out->upstreams[j] = strdup(r->upstreams[j]);
        rc = out->upstreams ? 0 : -ENOMEM;
        break;
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    return rc;
}

bool engine__is_registry(struct engine *e, const char *name)
{
    bool found = false;
    pthread_rwlock_rdlock(&e->cfg_lock);
    for (size_t i = 0; i < e->n_regs && !found; i++)
        found = strcmp(e->regs[i].name, name) == 0;
    pthread_rwlock_unlock(&e->cfg_lock);
    return found;
}

/* Matches path against a glob component by component, so a directory on the way to an include
 * passes. "**" matches any number of components. */
static bool glob_prefix_match(const char *pattern, const char *path)
{
    char pat[4096], pth[4096];
    snprintf(pat, sizeof(pat), "%s", pattern);
    snprintf(pth, sizeof(pth), "%s", path);
    char *ps = NULL, *qs = NULL;
    char *pc = strtok_r(pat, "/", &ps);
    char *qc = strtok_r(pth, "/", &qs);
    while (pc && qc) {
        if (strcmp(pc, "**") == 0)
            return true;
        if (fnmatch(pc, qc, 0) != 0)
            return false;
        pc = strtok_r(NULL, "/", &ps);
        qc = strtok_r(NULL, "/", &qs);
    }
    return qc == NULL; /* path exhausted: it is the pattern or a directory leading to it */
}

bool engine__path_allowed(const struct proxy *p, const char *path)
{
    if (!path[0])
        return true;
    for (char **x = p->exclude; x && *x; x++)
        if (fnmatch(*x, path, 0) == 0)
            return false;
    if (!p->include || !p->include[0])
        return true;
    for (char **x = p->include; *x; x++)
        if (fnmatch(*x, path, 0) == 0 || glob_prefix_match(*x, path))
            return true;
    return false;
}

bool engine__node_hidden(struct engine *e, const struct node *n)
{
    if (n->local || !n->path || !n->path[0] || !n->top[0])
        return false;
    /* A registry's entry follows the rules of the proxy that provides it. */
    struct upstream *u = engine__upstream(e, n->via ? n->via : n->top);
    bool hidden = u && !engine__path_allowed(&u->cfg, n->path);
    /* A hidden directory hides what is below it (reached by an inode the kernel kept). */
    char prefix[4096];
    for (const char *sl = strchr(n->path, '/'); u && !hidden && sl; sl = strchr(sl + 1, '/')) {
        size_t len = (size_t)(sl - n->path);
        if (len >= sizeof(prefix))
            break;
        memcpy(prefix, n->path, len);
        prefix[len] = '\0';
        hidden = !engine__path_allowed(&u->cfg, prefix);
    }
    upstream_unref(u);
    return hidden;
}

void engine__attr_from_node(struct engine *e, const struct node *n, struct engine_attr *a)
{
    memset(a, 0, sizeof(*a));
    a->ino = n->ino;
    a->kind = n->kind;
    a->size = n->kind == NODE_FILE ? (n->size < 0 ? 0 : n->size) : 0;
    a->mtime = n->mtime ? n->mtime : e->started;
    a->writable = n->local || (n->kind == NODE_DIR && n->path && !n->path[0] && n->top[0] &&
                               engine__is_registry(e, n->top));
    a->is_mutable = n->is_mutable || n->local;
    if (n->kind == NODE_DIR) {
        a->timeout = ENGINE_DIR_TIMEOUT;
    } else if (n->size < 0 && !n->local) {
        a->timeout = 0.0; /* not known yet: the kernel must ask again */
    } else if (a->is_mutable) {
        double ttl = CONFIG_DEFAULT_META_TTL;
        struct upstream *u = n->top ? engine__upstream(e, n->top) : NULL;
        if (u) {
            ttl = (double)u->cfg.metadata_ttl;
            upstream_unref(u);
        }
        a->timeout = n->local ? 0.0 : (ttl < 60.0 ? ttl : 60.0);
        /* never fetched yet: what a reader gets now is fetched now, fresh for the whole TTL */
        int64_t left = (int64_t)ttl - (n->checked ? (int64_t)time(NULL) - n->checked : 0);
        a->fresh_for = n->local || n->stale || left < 0 ? 0 : left;
    } else {
        a->timeout = ENGINE_IMMUTABLE_TIMEOUT;
    }
    /* A registry entry may be re-bound to another upstream when the order changes. */
    if (n->via && !n->local && a->timeout > ENGINE_DIR_TIMEOUT)
        a->timeout = ENGINE_DIR_TIMEOUT;
}

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
        if (!ups[i] && (ups[i] = upstream_new(e, &plist[i], secret)))
            ups[i]->secret_err = serr;
        if (secret) {
            explicit_bzero(secret, strlen(secret));
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

bool engine__bg_begin(struct engine *e, int64_t ino)
{
    bool ok = true;
    pthread_mutex_lock(&e->stop_mu);
    for (size_t i = 0; i < e->n_bg && ok; i++)
        ok = e->bg[i] != ino;
    if (ok && (e->stopping || e->n_bg == sizeof(e->bg) / sizeof(e->bg[0])))
        ok = false;
    if (ok)
        e->bg[e->n_bg++] = ino;
    pthread_mutex_unlock(&e->stop_mu);
    return ok;
}

void engine__bg_end(struct engine *e, int64_t ino)
{
    pthread_mutex_lock(&e->stop_mu);
    for (size_t i = 0; i < e->n_bg; i++) {
        if (e->bg[i] == ino) {
            e->bg[i] = e->bg[--e->n_bg];
            break;
        }
    }
    pthread_cond_broadcast(&e->stop_cv);
    pthread_mutex_unlock(&e->stop_mu);
}

static void *watcher_main(void *arg)
{
    struct engine *e = arg;
    pthread_mutex_lock(&e->stop_mu);
    while (!e->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->stop_cv, &e->stop_mu, &ts);
        if (e->stopping)
            break;
        pthread_mutex_unlock(&e->stop_mu);
        int rc = engine_reload(e);
        if (rc < 0)
            log_warn("reloading the config failed: %s", strerror(-rc));
        engine__counters_publish(e);
        pthread_mutex_lock(&e->stop_mu);
    }
    pthread_mutex_unlock(&e->stop_mu);
    return NULL;
}

int engine_open(const struct engine_opts *opts, struct engine **out)
{
    struct engine *e = calloc(1, sizeof(*e));
    int rc;
    if (!e)
        return -ENOMEM;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->files_mu, NULL);
    pthread_mutex_init(&e->err_mu, NULL);
    pthread_rwlock_init(&e->cfg_lock, NULL);
    pthread_mutex_init(&e->stop_mu, NULL);
    pthread_mutex_init(&e->reload_mu, NULL);
    pthread_cond_init(&e->stop_cv, NULL);
    e->generation = -1;
    e->started = engine__now();
    e->state_dir = strdup(opts->state_dir);
    e->publish_health = opts->publish_health;
    e->driver_override = opts->driver_override;
    e->platforms = opts->platforms ? strdup(opts->platforms) : NULL;
    rc = state_open(opts->state_dir, &e->st);
    if (rc < 0)
        goto fail;
    rc = index_open(e->st->db, &e->ix);
    if (rc < 0)
        goto fail;
    rc = store_init(&e->store, opts->state_dir);
    if (rc < 0)
        goto fail;
    /*
     * Every engine on this state dir holds a shared lock; only one that finds
     * itself alone may clear tmp/, where another's downloads could be running.
     */
    char lockp[4200];
    snprintf(lockp, sizeof(lockp), "%s/engine.lock", opts->state_dir);
    e->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (e->lock_fd >= 0 && flock(e->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        int cleaned = store_clean_tmp(&e->store);
        if (cleaned > 0)
            log_info("removed %d unfinished download(s) left in tmp/", cleaned);
    }
    if (e->lock_fd >= 0)
        flock(e->lock_fd, LOCK_SH);
    e->flights = flight_table_new(&e->store);
    e->docs = sf_group_new();
    if (!e->flights || !e->docs) {
        rc = -ENOMEM;
        goto fail;
    }
    e->quota = opts->quota_bytes > 0 ? opts->quota_bytes : engine__default_quota(opts->state_dir);
    char qbuf[32];
    if (opts->owns_quota) {
        snprintf(qbuf, sizeof(qbuf), "%lld", (long long)e->quota);
        index_setting_set(e->ix, "quota", qbuf);
    } else if (opts->quota_bytes <= 0 &&
               index_setting_get(e->ix, "quota", qbuf, sizeof(qbuf)) == 0 && atoll(qbuf) > 0) {
        e->quota = atoll(qbuf);
    }
    /* The platform filter too: prefetch and cache commands build the layouts the mount shows. */
    char pbuf[1024];
    if (opts->owns_quota) {
        index_setting_set(e->ix, "platforms", e->platforms ? e->platforms : "");
    } else if (!opts->platforms && index_setting_get(e->ix, "platforms", pbuf, sizeof(pbuf)) == 0 &&
               pbuf[0]) {
        e->platforms = strdup(pbuf);
        if (!e->platforms) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    rc = engine_reload(e);
    if (rc < 0)
        goto fail;
    if (pthread_create(&e->watcher, NULL, watcher_main, e) == 0)
        e->watcher_running = true;
    *out = e;
    return 0;
fail:
    engine_close(e);
    return rc;
}

void engine_close(struct engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->stop_mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->stop_cv);
    pthread_mutex_unlock(&e->stop_mu);
    if (e->watcher_running)
        pthread_join(e->watcher, NULL);
    if (e->watcher_running)
        engine__counters_unpublish(e);
    engine__close_all_files(e);
    pthread_mutex_lock(&e->stop_mu);
    while (e->n_bg > 0) /* background listings hold upstreams and the index */
        pthread_cond_wait(&e->stop_cv, &e->stop_mu);
    pthread_mutex_unlock(&e->stop_mu);
    flight_table_free(e->flights);
    sf_group_free(e->docs);
    for (size_t i = 0; i < e->n_ups; i++)
        upstream_unref(e->ups[i]);
    free(e->ups);
    configdb_registry_list_free(e->regs, e->n_regs);
    index_close(e->ix);
    if (e->st)
        state_close(e->st);
    store_fini(&e->store);
    while (e->open_objs) {
        struct open_obj *o = e->open_objs;
        e->open_objs = o->next;
        free(o);
    }
    if (e->lock_fd > 0)
        close(e->lock_fd);
    free(e->state_dir);
    free(e->platforms);
    free(e);
}

const char *engine_platform_filter(const struct engine *e)
{
    return e->platforms;
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n <= 255 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
           !strchr(name, '/');
}

/* Records what the remote said about a name below parent. */
static int remember(struct engine *e, const struct node *parent, const char *name, const char *path,
                    const struct drv_entry *de, int64_t neg_until, struct node *out)
{
    struct node n = {0};
    int64_t now = engine__now();
    int rc;
    pthread_mutex_lock(&e->mu);
    if (index_child(e->ix, parent->ino, name, &n) < 0)
        memset(&n, 0, sizeof(n));
    free(n.name);
    n.name = strdup(name);
    free(n.top);
    n.top = strdup(parent->top);
    free(n.path);
    n.path = strdup(path);
    n.parent = parent->ino;
    if (!de) {
        n.kind = NODE_ABSENT;
        n.neg_until = neg_until;
        n.digest[0] = '\0';
    } else {
        bool same_content = n.kind == NODE_FILE && de->kind == NODE_FILE && n.url && de->url &&
                            strcmp(n.url, de->url) == 0 &&
                            (!de->expect || (n.expect && strcmp(n.expect, de->expect) == 0));
        if (!same_content)
            n.digest[0] = '\0';
        n.kind = de->kind;
        n.size = de->size;
        n.mtime = de->mtime > 0 ? de->mtime : (n.mtime ? n.mtime : now);
        free(n.url);
        n.url = de->url ? strdup(de->url) : NULL;
        free(n.expect);
        n.expect = de->expect ? strdup(de->expect) : NULL;
        n.is_mutable = de->is_mutable;
        free(n.ctype);
        n.ctype = de->content_type ? strdup(de->content_type) : NULL;
        n.neg_until = 0;
        if (!same_content)
            n.checked = 0;
    }
    rc = index_put(e->ix, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0 && out) {
        *out = n;
        return 0;
    }
    node_clear(&n);
    return rc;
}

static int proxy_lookup(struct engine *e, const struct node *parent, const char *name,
                        struct node *out)
{
    char *path = engine__join(parent->path, name);
    struct upstream *u = engine__upstream(e, parent->top);
    struct drv_entry de = {0};
    int rc;
    failure_note_clear(); /* this lookup's failure only (src/engine/failed.c) */
    if (!path || !u) {
        rc = path ? -ENOENT : -ENOMEM;
        goto out;
    }
    if (strlen(path) > 4000) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    if (u->cfg.offline) {
        rc = -ENOENT;
        goto out;
    }
    if (upstream_backing_off(u)) {
        rc = engine__failed(e, u, parent->ino, -EREMOTEIO);
        goto out;
    }
    rc = u->drv->lookup(u, path, &de);
    if (rc == -ENOENT) {
        remember(e, parent, name, path, NULL, engine__now() + u->cfg.negative_ttl, NULL);
    } else if (rc == 0) {
        rc = remember(e, parent, name, path, &de, 0, out);
    } else {
        rc = engine__failed(e, u, parent->ino, rc); /* the name is unknown: its directory */
    }
out:
    drv_entry_clear(&de);
    upstream_unref(u);
    free(path);
    return rc;
}

/*
 * A directory a driver gave a media type (an OCI image layout) is one unit:
 * inside a registry, everything below it comes from the upstream that
 * provided it, so a layout never mixes two images that share a name. Walks
 * up from dir; returns that upstream (malloc'd) or NULL when any upstream may
 * provide the name (merged trees: Maven groups, file trees, namespaces).
 */
static char *registry_pinned_upstream(struct engine *e, const struct node *dir)
{
    char *via = NULL;
    struct node cur;
    if (dir->local || !dir->via)
        return NULL;
    pthread_mutex_lock(&e->mu);
    int rc = node_copy(&cur, dir);
    for (int depth = 0; rc == 0 && depth < 64 && cur.parent != INDEX_ROOT_INO; depth++) {
        if (cur.kind == NODE_DIR && cur.ctype && cur.via && !cur.local) {
            via = strdup(cur.via);
            break;
        }
        int64_t parent = cur.parent;
        node_clear(&cur);
        rc = index_get(e->ix, parent, &cur);
    }
    if (rc == 0)
        node_clear(&cur);
    pthread_mutex_unlock(&e->mu);
    return via;
}

/*
 * A registry name: its local content is in the index already; otherwise each
 * upstream in order. 404 moves on; any other failure ends the search, so a
 * lower upstream never silently stands in for a failing higher one.
 */
static int registry_lookup(struct engine *e, const struct node *parent, const char *name,
                           struct node *out)
{
    struct registry r;
    char *path = engine__join(parent->path, name);
    int rc = engine__registry(e, parent->top, &r);
    if (rc < 0 || !path) {
        free(path);
        return rc < 0 ? rc : -ENOMEM;
    }
    rc = -ENOENT;
    char *pinned = registry_pinned_upstream(e, parent);
    for (char **k = r.upstreams; k && *k; k++) {
        struct node un;
        if (pinned && strcmp(*k, pinned) != 0)
            continue;
        rc = engine__resolve_node(e, *k, path, &un);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            break;
        struct drv_entry de = {.kind = un.kind,
                               .size = un.size,
                               .mtime = un.mtime,
                               .url = un.url,
                               .expect = un.expect,
                               .is_mutable = un.is_mutable,
                               .content_type = un.ctype};
        rc = remember(e, parent, name, path, &de, 0, out);
        if (rc == 0) {
            pthread_mutex_lock(&e->mu);
            free(out->via);
            out->via = strdup(*k);
            index_put(e->ix, out);
            pthread_mutex_unlock(&e->mu);
        }
        node_clear(&un);
        break;
    }
    if (rc == -ENOENT)
        remember(e, parent, name, path, NULL, engine__now() + CONFIG_DEFAULT_NEG_TTL / 10, NULL);
    free(pinned);
    config_registry_clear(&r);
    free(path);
    return rc;
}

/* Whether a proxy's include/exclude let name below dir show (names in registries: always). */
static bool name_allowed(struct engine *e, const struct node *dir, const char *name)
{
    if (dir->local || engine__is_registry(e, dir->top))
        return true;
    struct upstream *u = engine__upstream(e, dir->top);
    char *path = u ? engine__join(dir->path, name) : NULL;
    bool ok = !u || (path && engine__path_allowed(&u->cfg, path));
    free(path);
    upstream_unref(u);
    return ok;
}

/* Resolves one name under a known parent node into *out. */
static int lookup_node(struct engine *e, int64_t parent_ino, const char *name, struct node *out)
{
    struct node p, c;
    int rc;
    if (!name_ok(name))
        return strlen(name) > 255 ? -ENAMETOOLONG : -ENOENT;
    pthread_mutex_lock(&e->mu);
    rc = index_get(e->ix, parent_ino, &p);
    if (rc == 0 && p.kind != NODE_DIR)
        rc = -ENOTDIR;
    int crc = rc == 0 ? index_child(e->ix, parent_ino, name, &c) : -ENOENT;
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    /* The rules hold for names the index knows too: a rule added later hides them. */
    if (parent_ino != INDEX_ROOT_INO && !name_allowed(e, &p, name)) {
        if (crc == 0)
            node_clear(&c);
        node_clear(&p);
        return -ENOENT;
    }
    if (crc == 0) {
        /* A file known only from a listing has no size yet: ask the remote, so ls -l is true. */
        bool sizeless = c.kind == NODE_FILE && c.size < 0 && !c.local && !c.via;
        if (c.via && !c.local && c.kind != NODE_ABSENT) {
            /*
             * A registry name is bound to the upstream that provided it; the order
             * may have changed since, so resolve it again (from the upstreams'
             * index entries: no network for names they know).
             */
            node_clear(&c);
            rc = registry_lookup(e, &p, name, out);
            node_clear(&p);
            return rc;
        }
        if (c.kind != NODE_ABSENT && !sizeless) {
            *out = c;
            node_clear(&p);
            return 0;
        }
        if (sizeless) {
            rc = proxy_lookup(e, &p, name, out);
            if (rc == 0 || rc == -ENOENT) {
                node_clear(&c);
            } else {
                *out = c; /* the remote failed: what the listing said is all we know */
                rc = 0;
            }
            node_clear(&p);
            return rc;
        }
        bool still_absent = c.neg_until > engine__now();
        node_clear(&c);
        if (still_absent || parent_ino == INDEX_ROOT_INO) {
            node_clear(&p);
            return -ENOENT;
        }
    }
    if (parent_ino == INDEX_ROOT_INO) {
        node_clear(&p);
        return -ENOENT;
    }
    if (engine__is_registry(e, p.top))
        rc = registry_lookup(e, &p, name, out);
    else
        rc = proxy_lookup(e, &p, name, out);
    node_clear(&p);
    return rc;
}

int engine__resolve_node(struct engine *e, const char *top, const char *path, struct node *out)
{
    struct node cur;
    int rc = lookup_node(e, INDEX_ROOT_INO, top, &cur);
    if (rc < 0)
        return rc;
    char buf[4096];
    if (strlen(path) >= sizeof(buf)) {
        node_clear(&cur);
        return -ENAMETOOLONG;
    }
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        struct node next;
        rc = lookup_node(e, cur.ino, c, &next);
        node_clear(&cur);
        if (rc < 0)
            return rc;
        cur = next;
    }
    *out = cur;
    return 0;
}

int engine_resolve(struct engine *e, const char *path, struct engine_attr *out)
{
    while (*path == '/')
        path++;
    char top[CONFIG_KEY_MAX + 2];
    size_t n = strcspn(path, "/");
    if (n == 0) {
        return engine_getattr(e, INDEX_ROOT_INO, out);
    }
    if (n > CONFIG_KEY_MAX)
        return -ENOENT;
    memcpy(top, path, n);
    top[n] = '\0';
    const char *rest = path[n] ? path + n + 1 : "";
    struct node node;
    int rc = engine__resolve_node(e, top, rest, &node);
    if (rc < 0)
        return rc;
    engine__attr_from_node(e, &node, out);
    node_clear(&node);
    return 0;
}

int engine_find_below(struct engine *e, const char *dir, const char *tail, struct engine_attr *out)
{
    size_t kl = strcspn(dir, "/");
    if (kl == 0 || kl > CONFIG_KEY_MAX || !dir[kl] || !dir[kl + 1] || !tail[0] || tail[0] == '/')
        return -EINVAL;
    char top[CONFIG_KEY_MAX + 1];
    memcpy(top, dir, kl);
    top[kl] = '\0';
    int64_t ino = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_find_below(e->ix, top, dir + kl + 1, tail, &ino);
    pthread_mutex_unlock(&e->mu);
    return rc == 0 ? engine_getattr(e, ino, out) : rc;
}

/* A registry's non-local node shows what its upstream's node shows now. */
static void follow_via(struct engine *e, struct node *n)
{
    if (!n->via || n->local)
        return;
    struct node un;
    pthread_mutex_lock(&e->mu);
    int rc = index_find(e->ix, n->via, n->path, &un);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0) {
        n->size = un.size;
        n->mtime = un.mtime;
        n->is_mutable = un.is_mutable;
        memcpy(n->digest, un.digest, sizeof(n->digest));
        n->stale = un.stale;
        node_clear(&un);
    }
}

int engine_lookup(struct engine *e, int64_t parent, const char *name, struct engine_attr *out)
{
    struct node n;
    int rc = lookup_node(e, parent, name, &n);
    if (rc < 0)
        return rc;
    follow_via(e, &n);
    engine__attr_from_node(e, &n, out);
    node_clear(&n);
    return 0;
}

int engine_getattr(struct engine *e, int64_t ino, struct engine_attr *out)
{
    struct node n;
    pthread_mutex_lock(&e->mu);
    int rc = index_get(e->ix, ino, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    if (n.kind == NODE_ABSENT || engine__node_hidden(e, &n)) {
        node_clear(&n);
        return -ENOENT;
    }
    follow_via(e, &n);
    engine__attr_from_node(e, &n, out);
    node_clear(&n);
    return 0;
}

/*
 * Drops the names of dir that the remote's listing no longer has: all of
 * them when the listing is complete, else only those never cached (what was
 * read stays readable, as the mount promises).
 */
static void forget_unlisted(struct engine *e, const struct node *dir, const struct drv_listing *l)
{
    struct node *kids = NULL;
    size_t nk = 0;
    pthread_mutex_lock(&e->mu);
    if (index_children(e->ix, dir->ino, &kids, &nk) == 0) {
        for (size_t i = 0; i < nk; i++) {
            bool listed = false;
            for (size_t j = 0; j < l->n && !listed; j++)
                listed = strcmp(kids[i].name, l->items[j].name) == 0;
            if (listed || kids[i].local || (!l->complete && kids[i].digest[0]) ||
                (!l->complete && kids[i].kind == NODE_DIR))
                continue;
            index_remove(e->ix, kids[i].ino);
        }
        index_nodes_free(kids, nk);
    }
    pthread_mutex_unlock(&e->mu);
}

/* A listing the remote has not (-ENOENT) or the driver does not make (the npm/pypi roots). */
static bool listing_declined(int rc)
{
    return rc == -ENOENT || rc == -ENOTSUP || rc == -EOPNOTSUPP;
}

/*
 * Merges the remote's listing of a proxy directory into the index. Returns
 * 0, or the errno of the failure (its cause's, engine__failed); a declined
 * listing's own errno (listing_declined).
 */
static int merge_listing(struct engine *e, struct upstream *u, struct node *dir)
{
    int64_t now = engine__now();
    struct drv_listing l = {0};
    failure_note_clear();
    int rc = u->drv->list(u, dir->path, &l);
    int err = listing_declined(rc) ? rc : engine__failed(e, u, dir->ino, rc);
    if (rc == 0) {
        for (size_t i = 0; i < l.n; i++) {
            struct node c;
            char *path = engine__join(dir->path, l.items[i].name);
            if (!path || !name_ok(l.items[i].name) || !engine__path_allowed(&u->cfg, path)) {
                free(path);
                continue;
            }
            pthread_mutex_lock(&e->mu);
            int have = index_child(e->ix, dir->ino, l.items[i].name, &c);
            pthread_mutex_unlock(&e->mu);
            /* A name the index knows keeps what it learned (its digest, its exact size). */
            if (have == 0 && c.kind != NODE_ABSENT) {
                node_clear(&c);
                free(path);
                continue;
            }
            if (have == 0)
                node_clear(&c);
            remember(e, dir, l.items[i].name, path, &l.items[i], 0, NULL);
            free(path);
        }
        forget_unlisted(e, dir, &l);
    }
    /*
     * Tried, whatever the outcome: the next attempt waits for the TTL (or the back-off). A
     * directory never listed stays so after a failure: it has no listing to serve.
     */
    pthread_mutex_lock(&e->mu);
    struct node d;
    if (index_get(e->ix, dir->ino, &d) == 0) {
        if (rc == 0 || listing_declined(rc) || d.listed != 0) {
            d.listed = rc == 0 ? now : now - u->cfg.metadata_ttl + 5;
            index_put(e->ix, &d);
        }
        node_clear(&d);
    }
    pthread_mutex_unlock(&e->mu);
    drv_listing_clear(&l);
    return rc == 0 ? 0 : err;
}

struct relist {
    struct engine *e;
    struct upstream *u;
    struct node dir;
};

static void *relist_main(void *arg)
{
    struct relist *r = arg;
    int rc = merge_listing(r->e, r->u, &r->dir);
    if (rc < 0 && !listing_declined(rc))
        upstream_note_stale(r->u); /* the last listing is what ls shows: stale */
    engine__bg_end(r->e, r->dir.ino);
    upstream_unref(r->u);
    node_clear(&r->dir);
    free(r);
    return NULL;
}

/*
 * Keeps a directory's listing fresh, at most once per TTL. A directory
 * never listed is listed now (there is nothing else to show), and its
 * failure is ls's error (failing is not empty: docs/troubleshooting.md);
 * one listed before is answered from the index while a background thread
 * asks the remote, so ls never waits on the network for what is already
 * known (and a failure there serves the last listing, stale).
 */
static int refresh_listing(struct engine *e, struct node *dir)
{
    struct upstream *u = engine__upstream(e, dir->top);
    if (!u)
        return 0;
    int64_t now = engine__now();
    int rc = 0;
    if (u->cfg.offline || !u->drv->list || now < dir->listed + u->cfg.metadata_ttl) {
        upstream_unref(u);
        return 0;
    }
    if (dir->listed == 0) {
        /* (While the proxy backs off, a driver listing from cached documents still can.) */
        rc = merge_listing(e, u, dir);
        upstream_unref(u);
        return listing_declined(rc) ? 0 : rc;
    }
    if (upstream_backing_off(u)) {
        upstream_note_stale(u);
        upstream_unref(u);
        return 0;
    }
    struct relist *r = calloc(1, sizeof(*r));
    pthread_t th;
    if (!r || !engine__bg_begin(e, dir->ino)) {
        free(r);
        upstream_unref(u);
        return 0;
    }
    r->e = e;
    r->u = u;
    node_copy(&r->dir, dir);
    if (pthread_create(&th, NULL, relist_main, r) == 0) {
        pthread_detach(th);
        return 0;
    }
    engine__bg_end(e, dir->ino);
    upstream_unref(u);
    node_clear(&r->dir);
    free(r);
    return 0;
}

/*
 * A directory listing being built. Registries merge several sources, where
 * the first source of a name wins (local, then upstreams in order): they set
 * dedupe, and names are checked against a hash set of the entries so far.
 * A proxy directory's names are unique already (one index row per name).
 */
struct dirlist {
    struct engine_dirent *items;
    size_t n, cap;
    bool dedupe;
    size_t *slots; /* hash set: index + 1 into items, 0 free */
    size_t nslots;
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Finds name's slot: the one holding it, or the free one where it goes. */
static size_t *dl_slot(struct dirlist *l, const char *name)
{
    size_t i = (size_t)name_hash(name) & (l->nslots - 1);
    while (l->slots[i] && strcmp(l->items[l->slots[i] - 1].name, name) != 0)
        i = (i + 1) & (l->nslots - 1);
    return &l->slots[i];
}

static int dl_rehash(struct dirlist *l, size_t nslots)
{
    size_t *old = l->slots, oldn = l->nslots;
    l->slots = calloc(nslots, sizeof(*l->slots));
    if (!l->slots) {
        l->slots = old;
        return -ENOMEM;
    }
    l->nslots = nslots;
    for (size_t i = 0; i < oldn; i++)
        if (old[i])
            *dl_slot(l, l->items[old[i] - 1].name) = old[i];
    free(old);
    return 0;
}

static int add_dirent(struct dirlist *l, const char *name, const struct engine_attr *a)
{
    size_t *slot = NULL;
    if (l->dedupe) {
        if ((l->n + 1) * 2 > l->nslots && dl_rehash(l, l->nslots ? l->nslots * 2 : 64) < 0)
            return -ENOMEM;
        slot = dl_slot(l, name);
        if (*slot)
            return 0; /* an earlier source has the name */
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct engine_dirent *nl = realloc(l->items, cap * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        l->items = nl;
        l->cap = cap;
    }
    l->items[l->n].name = strdup(name);
    if (!l->items[l->n].name)
        return -ENOMEM;
    l->items[l->n].attr = *a;
    l->n++;
    if (slot)
        *slot = l->n;
    return 0;
}

/* Adds ino's children; rules, when not NULL, are the proxy's include/exclude. */
static int list_children(struct engine *e, int64_t ino, struct dirlist *l, bool local_only,
                         const struct proxy *rules)
{
    struct node *kids = NULL;
    size_t nk = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_children(e->ix, ino, &kids, &nk);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nk && rc == 0; i++) {
        if ((local_only && !kids[i].local) || (rules && !engine__path_allowed(rules, kids[i].path)))
            continue;
        struct engine_attr a;
        if (kids[i].kind == NODE_FILE && kids[i].size < 0 && !kids[i].local && !kids[i].via) {
            struct node fresh;
            if (lookup_node(e, ino, kids[i].name, &fresh) == 0) {
                node_clear(&kids[i]);
                kids[i] = fresh;
            }
        }
        follow_via(e, &kids[i]);
        engine__attr_from_node(e, &kids[i], &a);
        rc = add_dirent(l, kids[i].name, &a);
    }
    index_nodes_free(kids, nk);
    return rc;
}

int engine_readdir(struct engine *e, int64_t ino, struct engine_dirent **out, size_t *n)
{
    struct node d;
    struct dirlist dl = {0};
    pthread_mutex_lock(&e->mu);
    int rc = index_get(e->ix, ino, &d);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    if (d.kind != NODE_DIR || engine__node_hidden(e, &d)) {
        rc = d.kind != NODE_DIR ? -ENOTDIR : -ENOENT;
        node_clear(&d);
        return rc;
    }
    if (ino != INDEX_ROOT_INO && engine__is_registry(e, d.top)) {
        struct registry r;
        dl.dedupe = true;
        rc = list_children(e, ino, &dl, true, NULL);
        /* An upstream that fails leaves its names out; all failing and nothing local: its error. */
        int failed = 0, listed = 0;
        if (rc == 0 && engine__registry(e, d.top, &r) == 0) {
            char *pinned = registry_pinned_upstream(e, &d);
            for (char **k = r.upstreams; k && *k && rc == 0; k++) {
                struct node un;
                if (pinned && strcmp(*k, pinned) != 0)
                    continue;
                int urc = engine__resolve_node(e, *k, d.path, &un);
                if (urc < 0) {
                    if (urc != -ENOENT && !failed)
                        failed = urc;
                    continue;
                }
                struct engine_dirent *ul = NULL;
                size_t un_n = 0;
                urc = un.kind == NODE_DIR ? engine_readdir(e, un.ino, &ul, &un_n) : -ENOTDIR;
                if (urc < 0 && urc != -ENOTDIR && urc != -ENOENT && !failed)
                    failed = urc;
                listed += urc == 0;
                if (urc == 0) {
                    for (size_t i = 0; i < un_n && rc == 0; i++) {
                        /*
                         * Give the registry its own inode for the name, resolved lazily. A
                         * name a failing earlier upstream hides is listed without an inode
                         * (ino 0: no entry for the kernel); opening it gives that failure.
                         */
                        struct engine_attr a;
                        int lrc = engine_lookup(e, ino, ul[i].name, &a);
                        if (lrc < 0 && lrc != -ENOENT) {
                            a = ul[i].attr;
                            a.ino = 0;
                            a.timeout = 0;
                        }
                        if (lrc == 0 || lrc != -ENOENT)
                            rc = add_dirent(&dl, ul[i].name, &a);
                    }
                    engine_dirents_free(ul, un_n);
                }
                node_clear(&un);
            }
            free(pinned);
            config_registry_clear(&r);
        }
        if (rc == 0 && failed && !listed && dl.n == 0)
            rc = failed;
    } else {
        struct upstream *u = ino != INDEX_ROOT_INO ? engine__upstream(e, d.top) : NULL;
        if (ino != INDEX_ROOT_INO)
            rc = refresh_listing(e, &d);
        if (rc == 0)
            rc = list_children(e, ino, &dl, false, u ? &u->cfg : NULL);
        upstream_unref(u);
    }
    node_clear(&d);
    if (rc < 0) {
        free(dl.slots);
        engine_dirents_free(dl.items, dl.n);
        return rc;
    }
    free(dl.slots);
    *out = dl.items;
    *n = dl.n;
    return 0;
}

void engine_dirents_free(struct engine_dirent *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

/* An xattr value (or list) of vl bytes into buf (len 0: its size only). */
static int xattr_copy(const char *val, size_t vl, char *buf, size_t len)
{
    if (len == 0)
        return (int)vl;
    if (len < vl)
        return -ERANGE;
    memcpy(buf, val, vl);
    return (int)vl;
}

/*
 * A registry's health: ok while its upstreams are; else the first one that
 * is not, named ("failing: upstream hubproxy: auth").
 */
static int registry_health(struct engine *e, const char *key, char *val, size_t len)
{
    struct registry r;
    if (engine__registry(e, key, &r) < 0)
        return -ENODATA;
    snprintf(val, len, "ok");
    for (char **k = r.upstreams; k && *k; k++) {
        struct health_snapshot h;
        char d[200];
        if (engine_proxy_health(e, *k, &h) < 0 || h.state == HEALTH_OK)
            continue;
        if (h.cause != FAILURE_NONE && h.state != HEALTH_OFFLINE)
            snprintf(d, sizeof(d), "%s", failure_cause_name(h.cause));
        else
            health_describe(&h, d, sizeof(d));
        snprintf(val, len, "failing: upstream %s: %s", *k, d);
        break;
    }
    config_registry_clear(&r);
    return 0;
}

/*
 * user.upstreamfs.error of any node whose last fetch failed, and
 * user.upstreamfs.health of a proxy's or a registry's top directory.
 */
static int failure_xattr(struct engine *e, const struct node *n, const char *name, char *val,
                         size_t len)
{
    if (strcmp(name, "user.upstreamfs.error") == 0)
        return engine_node_error(e, n->ino, val, len);
    if (n->kind != NODE_DIR || n->parent != INDEX_ROOT_INO || !n->top)
        return -ENODATA;
    struct health_snapshot h;
    if (engine__is_registry(e, n->top))
        return registry_health(e, n->top, val, len);
    if (engine_proxy_health(e, n->top, &h) < 0)
        return -ENODATA;
    health_describe(&h, val, len);
    return 0;
}

int engine_getxattr(struct engine *e, int64_t ino, const char *name, char *buf, size_t len)
{
    struct node n;
    char val[4200];
    /*
     * Only user.* attributes exist here: security.*, system.* (ACLs) and trusted.* are not
     * supported, which tools take to heart per file system (ls -l stops asking every file for
     * its ACL and security label after the first: two round trips per listing, not two per file).
     */
    if (strncmp(name, "user.", 5) != 0)
        return -EOPNOTSUPP;
    if (strncmp(name, "user.upstreamfs.", 16) != 0)
        return -ENODATA;
    pthread_mutex_lock(&e->mu);
    int rc = index_get(e->ix, ino, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    if (strcmp(name, "user.upstreamfs.error") == 0 || strcmp(name, "user.upstreamfs.health") == 0) {
        rc = failure_xattr(e, &n, name, val, sizeof(val));
        node_clear(&n);
        return rc < 0 ? rc : xattr_copy(val, strlen(val), buf, len);
    }
    if (n.kind != NODE_FILE) {
        node_clear(&n);
        return -ENODATA;
    }
    if (n.via && !n.local) {
        struct node un;
        pthread_mutex_lock(&e->mu);
        rc = index_find(e->ix, n.via, n.path, &un);
        pthread_mutex_unlock(&e->mu);
        if (rc == 0) {
            node_clear(&n);
            n = un;
        }
    }
    rc = 0;
    if (strcmp(name, "user.upstreamfs.digest") == 0) {
        if (!n.digest[0])
            rc = -ENODATA;
        else
            snprintf(val, sizeof(val), "sha256:%s", n.digest);
    } else if (strcmp(name, "user.upstreamfs.source") == 0) {
        snprintf(val, sizeof(val), "%s", n.local ? "local" : n.url ? n.url : "");
    } else if (strcmp(name, "user.upstreamfs.cached") == 0) {
        const char *st = "none";
        if (n.digest[0] && store_blob_size(&e->store, n.digest) >= 0)
            st = "complete";
        else if (n.url && !n.local) {
            /* A download of this file under way counts as partial. */
            char key[4400];
            engine__flight_key(n.top, n.path, n.expect, key, sizeof(key));
            if (flight_table_has(e->flights, key))
                st = "partial";
        }
        snprintf(val, sizeof(val), "%s", st);
    } else if (strcmp(name, "user.upstreamfs.stale") == 0) {
        snprintf(val, sizeof(val), "%d", n.stale ? 1 : 0);
    } else {
        rc = -ENODATA;
    }
    node_clear(&n);
    return rc < 0 ? rc : xattr_copy(val, strlen(val), buf, len);
}

int engine_listxattr(struct engine *e, int64_t ino, char *buf, size_t len)
{
    /* Only names that can be read: the digest once known, error and health where they apply. */
    static const char *const names[] = {"user.upstreamfs.digest", "user.upstreamfs.source",
                                        "user.upstreamfs.cached", "user.upstreamfs.stale",
                                        "user.upstreamfs.error",  "user.upstreamfs.health"};
    char list[256];
    size_t n = 0;
    struct engine_attr a;
    int rc = engine_getattr(e, ino, &a);
    if (rc < 0)
        return rc;
    for (size_t i = a.kind == NODE_FILE ? 0 : 4; i < sizeof(names) / sizeof(names[0]); i++) {
        rc = engine_getxattr(e, ino, names[i], NULL, 0);
        if (rc < 0 && rc != -ENODATA)
            return rc;
        if (rc >= 0) {
            memcpy(list + n, names[i], strlen(names[i]) + 1);
            n += strlen(names[i]) + 1;
        }
    }
    return xattr_copy(list, n, buf, len);
}

int engine_stats(struct engine *e, struct engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->mu);
    int rc = index_object_totals(e->ix, &out->cache_bytes, &out->cache_objects);
    if (rc == 0)
        rc = index_local_totals(e->ix, &out->local_bytes, &out->local_objects);
    pthread_mutex_unlock(&e->mu);
    out->quota_bytes = e->quota;
    out->hits = atomic_load(&e->hits);
    out->misses = atomic_load(&e->misses);
    out->upstream_requests = atomic_load(&e->upstream_requests);
    out->evictions = atomic_load(&e->evictions);
    out->stale_serves = atomic_load(&e->stale_serves);
    out->upstream_bytes = atomic_load(&e->upstream_bytes);
    out->inflight = flight_table_active(e->flights);
    return rc;
}
