/*
 * evict: the cache quota and cache management.
 *
 * The quota counts cached objects and the bytes present of partial objects
 * (src/fetch/lazy.c); local content is outside it. When an object is added
 * and the total passes the quota, partial objects unused for a minute go
 * first, then least recently used objects, until the total is at 90 % of it
 * (a low-water mark, so eviction does not run on every insert). Pinned
 * objects, local objects, objects held open by a reader and partial objects
 * being read or filled are never removed. Rows are deleted before
 * files are unlinked, so the index never points at a missing object.
 */
#include "engine_i.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>

#define GIB (1024LL * 1024 * 1024)

int64_t engine__default_quota(const char *state_dir)
{
    struct statvfs sv;
    int64_t q = 10 * GIB;
    if (statvfs(state_dir, &sv) == 0) {
        int64_t half_free = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize / 2;
        if (half_free < q)
            q = half_free;
    }
    return q;
}

#define ROOM_MARGIN (4LL * 1024 * 1024)

void engine__ensure_room(struct engine *e, int64_t length)
{
    struct statvfs sv;
    if (statvfs(e->state_dir, &sv) < 0)
        return;
    int64_t free_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
    int64_t need = (length > 0 ? length : 0) + ROOM_MARGIN;
    if (free_bytes >= need)
        return;
    int64_t bytes = 0, count = 0;
    pthread_mutex_lock(&e->mu);
    index_object_totals(e->ix, &bytes, &count);
    pthread_mutex_unlock(&e->mu);
    int64_t target = bytes - (need - free_bytes);
    log_info("disk nearly full (%lld bytes free, %lld needed); evicting", (long long)free_bytes,
             (long long)need);
    engine_evict_to(e, target > 0 ? target : 0);
}

void engine__obj_open(struct engine *e, const char *digest)
{
    pthread_mutex_lock(&e->mu);
    struct open_obj *o = e->open_objs;
    while (o && strcmp(o->digest, digest) != 0)
        o = o->next;
    if (!o) {
        o = calloc(1, sizeof(*o));
        if (o) {
            snprintf(o->digest, sizeof(o->digest), "%s", digest);
            o->next = e->open_objs;
            e->open_objs = o;
        }
    }
    if (o)
        o->count++;
    pthread_mutex_unlock(&e->mu);
}

void engine__obj_close(struct engine *e, const char *digest)
{
    pthread_mutex_lock(&e->mu);
    for (struct open_obj **pp = &e->open_objs; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->digest, digest) == 0) {
            if (--(*pp)->count == 0) {
                struct open_obj *o = *pp;
                *pp = o->next;
                free(o);
            }
            break;
        }
    }
    pthread_mutex_unlock(&e->mu);
}

/* Caller holds e->mu. */
static bool obj_is_open_locked(struct engine *e, const char *digest)
{
    for (struct open_obj *o = e->open_objs; o; o = o->next)
        if (strcmp(o->digest, digest) == 0)
            return true;
    return false;
}

bool engine__obj_is_open(struct engine *e, const char *digest)
{
    pthread_mutex_lock(&e->mu);
    bool r = obj_is_open_locked(e, digest);
    pthread_mutex_unlock(&e->mu);
    return r;
}

#define PARTIAL_MIN_AGE_S 60

int engine_evict_to(struct engine *e, int64_t target)
{
    int64_t bytes = 0, count = 0, partial = 0, pcount = 0;
    int evicted = 0;
    struct object_info *lru = NULL;
    size_t n = 0;
    flight_partials(e->flights, &partial, &pcount);
    if (partial > 0) { /* cheaper to fetch again than whole objects: they go first */
        pthread_mutex_lock(&e->mu);
        index_object_totals(e->ix, &bytes, &count);
        pthread_mutex_unlock(&e->mu);
        int64_t freed = flight_partials_evict(e->flights, bytes + partial - target, PARTIAL_MIN_AGE_S);
        if (freed > 0)
            log_info("evicted %lld bytes of partial objects", (long long)freed);
        partial -= freed;
        target -= partial; /* what stays partial counts against the quota */
    }
    pthread_mutex_lock(&e->mu);
    int rc = index_object_totals(e->ix, &bytes, &count);
    if (rc == 0 && bytes > target)
        rc = index_object_lru(e->ix, &lru, &n, 100000);
    char(*gone)[65] = n ? calloc(n, sizeof(*gone)) : NULL;
    for (size_t i = 0; rc == 0 && gone && i < n && bytes > target; i++) {
        if (obj_is_open_locked(e, lru[i].digest))
            continue;
        if (index_object_delete(e->ix, lru[i].digest) == 0) {
            memcpy(gone[evicted++], lru[i].digest, 65);
            bytes -= lru[i].size;
        }
    }
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < evicted; i++)
        store_remove(&e->store, gone[i]);
    if (evicted) {
        atomic_fetch_add(&e->evictions, evicted);
        log_info("evicted %d object(s); cache now %lld bytes of %lld", evicted, (long long)bytes,
                 (long long)e->quota);
    }
    free(gone);
    free(lru);
    return rc < 0 ? rc : evicted;
}

void engine__object_added(struct engine *e, const char *digest, int64_t size, bool local)
{
    int64_t bytes = 0, count = 0;
    pthread_mutex_lock(&e->mu);
    index_object_put(e->ix, digest, size, local);
    index_object_touch(e->ix, digest, engine__now());
    index_object_totals(e->ix, &bytes, &count);
    pthread_mutex_unlock(&e->mu);
    int64_t partial = 0, pcount = 0;
    flight_partials(e->flights, &partial, &pcount);
    if (bytes + partial > e->quota)
        engine_evict_to(e, e->quota / 10 * 9);
}

/* The digests under a mount path: one file, or every file below a directory. */
static int digests_under(struct engine *e, const char *path, char ***out, size_t *n)
{
    struct engine_attr a;
    int rc = engine_resolve(e, path, &a);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&e->mu);
    rc = index_digests_under(e->ix, a.ino, out, n);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* Counts one object that could not be pinned or evicted, keeping the first cause. */
static void count_failure(int *failed, int *first, const char *what, const char *digest, int rc)
{
    (*failed)++;
    if (!*first)
        *first = rc;
    log_error("%s sha256:%s: %s", what, digest, strerror(-rc));
}

int engine_pin(struct engine *e, const char *path, bool pin, int *failed)
{
    char **d = NULL;
    size_t n = 0;
    int rc = digests_under(e, path, &d, &n);
    int done = 0, bad = 0, first = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        pthread_mutex_lock(&e->mu);
        int r = index_object_pin(e->ix, d[i], pin);
        pthread_mutex_unlock(&e->mu);
        if (r == 0)
            done++;
        else if (r != -ENOENT) /* -ENOENT: not cached, nothing to pin */
            count_failure(&bad, &first, pin ? "pin" : "unpin", d[i], r);
    }
    free_list(d, n);
    if (failed)
        *failed = bad;
    if (rc == 0 && done == 0)
        return bad ? first : -ENODATA; /* nothing cached there to pin */
    return rc < 0 ? rc : done;
}

/* Evicts one object unless it is not cached or local content (engine_i.h). */
int engine__evict_object(struct engine *e, const char *digest)
{
    struct object_info o;
    pthread_mutex_lock(&e->mu);
    int rc = index_object_get(e->ix, digest, &o);
    if (rc == -ENOENT || (rc == 0 && o.local))
        rc = 0; /* not cached, or never evicted */
    else if (rc == 0 && obj_is_open_locked(e, digest))
        rc = -EBUSY; /* a reader holds it */
    else if (rc == 0 && (rc = index_object_delete(e->ix, digest)) == 0)
        rc = 1;
    pthread_mutex_unlock(&e->mu);
    if (rc == 1)
        store_remove(&e->store, digest);
    return rc;
}

int engine_evict_path(struct engine *e, const char *path, int *failed)
{
    char **d = NULL;
    size_t n = 0;
    int rc = digests_under(e, path, &d, &n);
    int done = 0, bad = 0, first = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int r = engine__evict_object(e, d[i]);
        if (r > 0)
            done++;
        else if (r < 0)
            count_failure(&bad, &first, "evict", d[i], r);
    }
    free_list(d, n);
    if (done)
        atomic_fetch_add(&e->evictions, done);
    if (failed)
        *failed = bad;
    if (rc == 0 && done == 0 && bad)
        return first;
    return rc < 0 ? rc : done;
}

static int all_objects(struct engine *e, struct object_info **all, size_t *n)
{
    pthread_mutex_lock(&e->mu);
    int rc = index_object_all(e->ix, all, n);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int engine_verify(struct engine *e, int64_t *checked, int64_t *bad)
{
    struct object_info *all = NULL;
    size_t n = 0;
    *checked = *bad = 0;
    int rc = all_objects(e, &all, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int v = store_verify(&e->store, all[i].digest);
        (*checked)++;
        if (v == 0)
            continue;
        (*bad)++;
        log_error("object sha256:%s %s; removing it", all[i].digest,
                  v == -ENOENT ? "is missing" : "does not match its digest");
        pthread_mutex_lock(&e->mu);
        index_object_delete(e->ix, all[i].digest);
        pthread_mutex_unlock(&e->mu);
        store_remove(&e->store, all[i].digest);
    }
    free(all);
    return 0;
}

int engine_gc(struct engine *e, int64_t *removed)
{
    struct object_info *all = NULL;
    size_t n = 0;
    *removed = 0;
    int rc = all_objects(e, &all, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&e->mu);
        bool drop = !all[i].pinned && index_digest_referenced(e->ix, all[i].digest) == 0 &&
                    !obj_is_open_locked(e, all[i].digest) &&
                    index_object_delete(e->ix, all[i].digest) == 0;
        pthread_mutex_unlock(&e->mu);
        if (drop) {
            store_remove(&e->store, all[i].digest);
            (*removed)++;
        }
    }
    free(all);
    /* tmp/ may hold another process's downloads: clear it only when this engine is alone. */
    if (flight_table_active(e->flights) == 0 && e->lock_fd >= 0 &&
        flock(e->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        store_clean_tmp(&e->store);
        flock(e->lock_fd, LOCK_SH);
    }
    return 0;
}
