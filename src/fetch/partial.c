/*
 * partial: the partial objects a state dir keeps between flights (src/fetch/lazy.c makes
 * them): STATEDIR/partial/<key>, a sparse data file per flight key (key: its sha256 hex),
 * and the key's row in the index's table partial (include/upstreamfs/index.h), the map of
 * present chunks. What the xattr user.upstreamfs.cached, `cache stats`, the quota and the
 * eviction know of them is the rows; nothing here scans files but the tidy-ups.
 *
 * A row is saved after its chunks are written and deleted before its file is removed, so a
 * crash leaves at worst a data file without a row (its bytes fetched again, the file removed
 * by the next tidy-up) or a row whose file is gone (dropped likewise): nothing leaks for good.
 * A flight holds its key's lock (STATEDIR/locks/<key>, src/fetch/flight.c) for as long as it
 * runs; removing an object takes the same lock first, so an object in use is never removed.
 */
#include "flight_i.h"
#include "upstreamfs/file_read.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/single_flight.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PARTIAL_LIST_MAX 100000
#define OLD_MAP_MAX      (4u << 20) /* an old map file: a bitmap of 16 Mi chunks, in hex */

void flight_table_set_index(struct flight_table *t, struct index *ix, pthread_mutex_t *mu)
{
    t->ix = ix;
    t->ix_mu = mu;
}

bool partial__lock(struct flight_table *t)
{
    if (!t->ix)
        return false;
    pthread_mutex_lock(t->ix_mu);
    return true;
}

void partial__unlock(struct flight_table *t)
{
    pthread_mutex_unlock(t->ix_mu);
}

int flight_partial(struct flight_table *t, const char *key, int64_t *present, int64_t *size)
{
    struct sf_call *c = sf_find(t->calls, key);
    if (c) {
        struct flight *f = sf_data(c);
        pthread_mutex_lock(&f->mu);
        bool partial = f->chunks && !f->whole && f->state == FLIGHT_STREAMING;
        if (partial) {
            *present = chunks_present_bytes(f->chunks);
            *size = f->chunks->size;
        }
        pthread_mutex_unlock(&f->mu);
        sf_release(c);
        if (partial)
            return 0;
    }
    char hex[65];
    struct index_partial p;
    hash_sha256_hex(key, strlen(key), hex);
    if (!partial__lock(t))
        return -ENOENT;
    int rc = index_partial_get(t->ix, hex, &p);
    partial__unlock(t);
    if (rc < 0)
        return -ENOENT;
    *present = p.present;
    *size = p.size;
    index_partial_clear(&p);
    return 0;
}

void flight_partials(struct flight_table *t, int64_t *bytes, int64_t *count)
{
    *bytes = *count = 0;
    if (partial__lock(t)) {
        index_partial_totals(t->ix, bytes, count);
        partial__unlock(t);
    }
}

/* Whether key has a row: 1, 0, or -errno. */
static int has_row(struct flight_table *t, const char *key, int64_t *updated)
{
    struct index_partial p;
    if (!partial__lock(t))
        return 0;
    int rc = index_partial_get(t->ix, key, &p);
    partial__unlock(t);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (updated)
        *updated = p.updated;
    index_partial_clear(&p);
    return 1;
}

/* The lock file of key (flight.c's peer lock), taken without waiting: its fd, or -1. */
static int take_lock(struct flight_table *t, const char *key, char *path, size_t len)
{
    snprintf(path, len, "%s/locks", t->store->dir);
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    snprintf(path, len, "%s/locks/%s", t->store->dir, key);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Removes key's row and then its data file (the lock held). */
static void remove_object(struct flight_table *t, const char *key)
{
    char data[4300];
    if (partial__lock(t)) {
        index_partial_delete(t->ix, key);
        partial__unlock(t);
    }
    snprintf(data, sizeof(data), "%s/partial/%s", t->store->dir, key);
    if (unlink(data) < 0 && errno != ENOENT)
        log_debug("removing %s: %s", data, strerror(errno));
}

/* Whether name is a data file's: 64 lower-case hex digits. */
static bool data_name(const char *name)
{
    size_t n = strlen(name);
    return n == 64 && strspn(name, "0123456789abcdef") == 64;
}

/*
 * Removes the data files that have no row, unchanged since before (a flight that has just made
 * one holds its lock): a crash between the file and its first row, or an object whose server
 * gave no validator to resume it by. Returns how many.
 */
static int remove_orphans(struct flight_table *t, time_t before)
{
    char dir[4200], path[4500], lock[4400];
    int removed = 0;
    snprintf(dir, sizeof(dir), "%s/partial", t->store->dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!data_name(de->d_name) || stat(path, &st) < 0 || st.st_mtime > before ||
            has_row(t, de->d_name, NULL) != 0)
            continue;
        int fd = take_lock(t, de->d_name, lock, sizeof(lock));
        if (fd < 0)
            continue;
        if (has_row(t, de->d_name, NULL) == 0 && unlink(path) == 0)
            removed++;
        unlink(lock);
        close(fd);
    }
    if (d)
        closedir(d);
    return removed;
}

int64_t flight_partials_evict(struct flight_table *t, int64_t want, int min_age_s)
{
    char lock[4400];
    time_t before = time(NULL) - min_age_s;
    if (want <= 0 || !t->ix)
        return 0;
    int orphans = remove_orphans(t, before);
    if (orphans > 0)
        log_info("removed %d partial file(s) without a chunk map", orphans);
    struct index_partial *list = NULL;
    size_t n = 0;
    int64_t freed = 0;
    partial__lock(t);
    int rc = index_partial_list(t->ix, (int64_t)before, PARTIAL_LIST_MAX, &list, &n);
    partial__unlock(t);
    for (size_t i = 0; rc == 0 && i < n && freed < want; i++) {
        int fd = take_lock(t, list[i].key, lock, sizeof(lock));
        if (fd < 0)
            continue; /* a flight (of any process) holds it */
        int64_t updated = 0;
        /* Saved again meanwhile (a flight came and went): used lately, kept. */
        if (has_row(t, list[i].key, &updated) == 1 && updated <= (int64_t)before) {
            remove_object(t, list[i].key);
            freed += list[i].present;
        }
        unlink(lock);
        close(fd);
    }
    index_partial_list_free(list, n);
    return freed;
}

/*
 * Reads an older version's map file (partial/<key>.map: lines "size N", "chunk N", "etag E",
 * "last-modified L", "map HEX") into p. 0, or -EINVAL when it is not one.
 */
static int old_map_parse(char *text, struct index_partial *p)
{
    char *hex = NULL, *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "size ", 5))
            p->size = strtoll(line + 5, NULL, 10);
        else if (!strncmp(line, "chunk ", 6))
            p->chunk = strtoll(line + 6, NULL, 10);
        else if (!strncmp(line, "etag ", 5))
            p->etag = line + 5;
        else if (!strncmp(line, "last-modified ", 14))
            p->last_modified = line + 14;
        else if (!strncmp(line, "map ", 4))
            hex = line + 4;
    }
    struct chunks *c = chunks_new(p->size, p->chunk);
    size_t len = hex ? strlen(hex) / 2 : 0;
    uint8_t *map = c && hex && strlen(hex) % 2 == 0 ? malloc(len ? len : 1) : NULL;
    int rc = map && (p->etag || p->last_modified) ? 0 : -EINVAL;
    for (size_t k = 0; rc == 0 && k < len; k++) {
        int hi = hash_hex_value(hex[2 * k]), lo = hash_hex_value(hex[2 * k + 1]);
        if (hi < 0 || lo < 0)
            rc = -EINVAL;
        else
            map[k] = (uint8_t)(hi << 4 | lo);
    }
    if (rc == 0)
        rc = chunks_load(c, map, len);
    if (rc == 0) {
        p->present = chunks_present_bytes(c);
        p->map = map;
        p->map_len = len;
    } else {
        free(map);
    }
    chunks_free(c);
    return rc;
}

/*
 * Imports one map file of an older version (its data file beside it) into the index and
 * removes it, imported or not. 0 imported, else why not.
 */
static int old_map_import(struct flight_table *t, const char *dir, const char *name)
{
    char path[4500], data[4300], key[65];
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    struct index_partial p = {.name = "", .url = ""};
    snprintf(key, sizeof(key), "%.64s", name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(data, sizeof(data), "%s/%s", dir, key);
    int rc = file_read_bounded(path, OLD_MAP_MAX, FILE_READ_NOFOLLOW, &text, &len, &st);
    if (rc == 0 && access(data, F_OK) < 0)
        rc = -ENOENT;
    if (rc == 0)
        rc = old_map_parse(text, &p);
    if (rc == 0 && partial__lock(t)) {
        memcpy(p.key, key, sizeof(p.key));
        p.updated = (int64_t)st.st_mtime;
        rc = index_partial_save(t->ix, &p);
        partial__unlock(t);
    }
    free(p.map);
    free(text);
    unlink(path);
    return rc;
}

int flight_partials_tidy(struct flight_table *t)
{
    char dir[4200], data[4500];
    int removed = 0, imported = 0;
    if (!t->ix)
        return 0;
    snprintf(dir, sizeof(dir), "%s/partial", t->store->dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) { /* an older version's maps: partial/<key>.map (and .new) */
        size_t l = strlen(de->d_name);
        if (l < 68 || strncmp(de->d_name + 64, ".map", 4) != 0)
            continue;
        if (l == 68 && old_map_import(t, dir, de->d_name) == 0) {
            imported++;
        } else if (l != 68) {
            snprintf(data, sizeof(data), "%s/%s", dir, de->d_name);
            unlink(data);
        }
    }
    if (d)
        closedir(d);
    if (imported > 0)
        log_info("imported the chunk maps of %d partial object(s) into the index", imported);
    struct index_partial *list = NULL;
    size_t n = 0;
    partial__lock(t);
    int rc = index_partial_list(t->ix, INT64_MAX, PARTIAL_LIST_MAX, &list, &n);
    partial__unlock(t);
    for (size_t i = 0; rc == 0 && i < n; i++) { /* rows whose data file is gone */
        snprintf(data, sizeof(data), "%s/%s", dir, list[i].key);
        if (access(data, F_OK) < 0 && errno == ENOENT) {
            remove_object(t, list[i].key);
            removed++;
        }
    }
    index_partial_list_free(list, n);
    return removed + remove_orphans(t, time(NULL));
}
