/*
 * failed: how an engine operation's failure reaches the front doors — its
 * cause (include/upstreamfs/failure.h), the errno the mount returns, the
 * user.upstreamfs.error xattr of the inode, and each proxy's health.
 */
#include "engine_i.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Results that are no failure of a remote: they pass unchanged. */
static bool passes(int rc)
{
    switch (-rc) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case ENOMEM:
    case ENAMETOOLONG:
    case ENOSPC:
    case EINTR:
    case ECANCELED:
    case ERANGE:
    case EINVAL:
        return true;
    default:
        return false;
    }
}

static void node_error_set(struct engine *e, int64_t ino, const struct failure *f)
{
    pthread_mutex_lock(&e->err_mu);
    struct engine_node_error *slot = NULL;
    for (size_t i = 0; i < ENGINE_NODE_ERRORS && !slot; i++)
        if (e->errs[i].ino == ino)
            slot = &e->errs[i];
    if (!slot && f) {
        slot = &e->errs[e->errs_next];
        e->errs_next = (e->errs_next + 1) % ENGINE_NODE_ERRORS;
    }
    if (slot && f) {
        slot->ino = ino;
        slot->f = *f;
        slot->at = (int64_t)time(NULL);
    } else if (slot) {
        memset(slot, 0, sizeof(*slot));
    }
    pthread_mutex_unlock(&e->err_mu);
}

void engine__path_failed(struct engine *e, const char *top, const char *path,
                         const struct failure *f)
{
    struct node n;
    pthread_mutex_lock(&e->mu);
    int rc = index_find(e->ix, top, path, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return;
    node_error_set(e, n.ino, f);
    node_clear(&n);
}

int engine__failed(struct engine *e, struct upstream *u, int64_t ino, int rc)
{
    if (rc >= 0) {
        node_error_set(e, ino, NULL);
        return rc;
    }
    if (passes(rc))
        return rc;
    struct failure f = {0};
    struct failure_note note;
    /* A note without a proxy came from a token or ECR endpoint this operation asked. */
    if (failure_note_get(&note) && (!note.proxy[0] || strcmp(note.proxy, u->cfg.key) == 0)) {
        f = note.f;
        if (!note.recorded)
            upstream_note_failure(u, &f, note.url[0] ? note.url : u->cfg.url);
    } else if (rc == -ENETUNREACH && u->cfg.offline) {
        f.cause = FAILURE_OFFLINE;
    } else if (!upstream_last_failure(u, &f)) {
        f.cause = failure_cause_of_errno(rc);
        /* A failure no request classified (e.g. a credential that could not be had). */
        if (f.cause == FAILURE_AUTH)
            upstream_note_failure(u, &f, u->cfg.url);
    }
    if (f.cause == FAILURE_NONE)
        return rc == -EACCES || rc == -ENETUNREACH ? rc : -EIO;
    failure_note_set(u->cfg.key, &f, NULL, true);
    node_error_set(e, ino, &f);
    int err = failure_errno(&f);
    return err ? err : -EIO;
}

int engine_node_failure(struct engine *e, int64_t ino, struct failure *f, int64_t *at)
{
    int rc = -ENODATA;
    pthread_mutex_lock(&e->err_mu);
    for (size_t i = 0; i < ENGINE_NODE_ERRORS; i++) {
        if (e->errs[i].ino == ino && e->errs[i].f.cause != FAILURE_NONE) {
            *f = e->errs[i].f;
            if (at)
                *at = e->errs[i].at;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&e->err_mu);
    return rc;
}

int engine_node_error(struct engine *e, int64_t ino, char *buf, size_t n)
{
    struct failure f;
    int64_t at = 0;
    int rc = engine_node_failure(e, ino, &f, &at);
    if (rc == 0) {
        char t[32], fs[64];
        failure_time_rfc3339(at, t, sizeof(t));
        failure_format(&f, fs, sizeof(fs));
        snprintf(buf, n, "%s %s", fs, t);
    }
    return rc;
}

int engine_health(struct engine *e, struct health_snapshot **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&e->cfg_lock);
    size_t count = e->n_ups;
    struct upstream **ups = count ? calloc(count, sizeof(*ups)) : NULL;
    for (size_t i = 0; ups && i < count; i++) {
        ups[i] = e->ups[i];
        upstream_ref(ups[i]);
    }
    pthread_rwlock_unlock(&e->cfg_lock);
    if (count && !ups)
        return -ENOMEM;
    struct health_snapshot *h = count ? calloc(count, sizeof(*h)) : NULL;
    for (size_t i = 0; i < count; i++) {
        if (h)
            upstream_health(ups[i], &h[i]);
        upstream_unref(ups[i]);
    }
    free(ups);
    if (count && !h)
        return -ENOMEM;
    *out = h;
    *n = count;
    return 0;
}

int engine_proxy_health(struct engine *e, const char *key, struct health_snapshot *out)
{
    struct upstream *u = engine__upstream(e, key);
    if (!u)
        return -ENOENT;
    upstream_health(u, out);
    upstream_unref(u);
    return 0;
}
