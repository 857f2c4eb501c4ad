/*
 * engine: an engine's life (engine_open, engine_close; contracts in
 * include/upstreamfs/engine.h), the watcher thread that reloads the config
 * every 500 ms (reload.c), the bookkeeping of background work that close
 * waits for, and the statistics.
 *
 * The engine's other parts: lookup.c (names and attributes), registry.c
 * (the config tables and a registry's names), listing.c (readdir), xattr.c
 * (extended attributes), reader.c (open and read), local.c (a registry's
 * local content), evict.c (quota and eviction), upstream.c (the per-proxy
 * runtime); engine_i.h is their shared private header.
 */
#include "engine_i.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    e->fill = opts->fill;
    e->streams = opts->streams;
    e->streams_min = opts->streams_min;
    e->lazy_min = opts->lazy_min;
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
    e->flights = flight_table_new(&e->store);
    e->docs = sf_group_new();
    if (!e->flights || !e->docs) {
        rc = -ENOMEM;
        goto fail;
    }
    flight_table_set_index(e->flights, e->ix, &e->mu); /* partial objects' chunk maps */
    char lockp[4200];
    snprintf(lockp, sizeof(lockp), "%s/engine.lock", opts->state_dir);
    e->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (e->lock_fd >= 0 && flock(e->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        int cleaned = store_clean_tmp(&e->store);
        if (cleaned > 0)
            log_info("removed %d unfinished download(s) left in tmp/", cleaned);
        cleaned = flight_partials_tidy(e->flights);
        if (cleaned > 0)
            log_info("removed %d partial object file(s) or chunk map(s) without the other",
                     cleaned);
    }
    if (e->lock_fd >= 0)
        flock(e->lock_fd, LOCK_SH);
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

int engine_stats(struct engine *e, struct engine_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->mu);
    int rc = index_object_totals(e->ix, &out->cache_bytes, &out->cache_objects);
    if (rc == 0)
        rc = index_local_totals(e->ix, &out->local_bytes, &out->local_objects);
    if (rc == 0)
        rc = index_removed_count(e->ix, &out->removed_upstream);
    pthread_mutex_unlock(&e->mu);
    out->quota_bytes = e->quota;
    out->hits = atomic_load(&e->hits);
    out->misses = atomic_load(&e->misses);
    out->upstream_requests = atomic_load(&e->upstream_requests);
    out->evictions = atomic_load(&e->evictions);
    out->stale_serves = atomic_load(&e->stale_serves);
    out->upstream_bytes = atomic_load(&e->upstream_bytes);
    out->renders = atomic_load(&e->renders);
    out->doc_reads = atomic_load(&e->doc_reads);
    out->inflight = flight_table_active(e->flights);
    flight_partials(e->flights, &out->partial_bytes, &out->partial_objects);
    return rc;
}
