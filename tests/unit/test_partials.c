/*
 * test_partials: partial objects kept in the index (src/index/index_partial.c) and what the
 * fetch layer does with them (src/fetch/partial.c): rows saved, replaced, read back with their
 * map (one of a 64 GiB file too, which the old map file's line could not hold), totalled,
 * listed oldest first and deleted; the xattr's share and `cache stats` from the rows; eviction
 * of the old ones only, never of one whose lock a flight holds, with its data file; a data
 * file without a row and a row without a file cleaned up; an older version's map file
 * imported once at a start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/flight.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"
#include "upstreamfs/state.h"
#include "upstreamfs/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/upfs-test-partials.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

/* A row of key for an object of size bytes in 1 MiB chunks, the first `present` chunks in. */
static struct index_partial row(const char *key, int64_t size, int64_t present, int64_t updated)
{
    struct index_partial p = {.name = "url:gen/x.bin",
                              .url = "http://127.0.0.1/x.bin",
                              .size = size,
                              .chunk = MIB,
                              .etag = "\"e1\"",
                              .updated = updated};
    snprintf(p.key, sizeof(p.key), "%s", key);
    p.map_len = (size_t)((size + MIB - 1) / MIB + 7) / 8;
    p.map = calloc(p.map_len, 1);
    for (int64_t i = 0; i < present; i++)
        p.map[i / 8] |= (uint8_t)(1u << (i % 8));
    p.present = present * MIB;
    return p;
}

static void index_rows(void **state)
{
    (void)state;
    struct state *st;
    struct index *ix;
    struct index_partial got, *list = NULL;
    size_t n = 0;
    int64_t bytes = -1, count = -1;
    assert_int_equal(state_open(dir, &st), 0);
    assert_int_equal(index_open(st->db, &ix), 0);
    assert_int_equal(index_partial_get(ix, "aa", &got), -ENOENT);
    assert_int_equal(index_partial_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(count, 0);

    /* 64 GiB in 1 MiB chunks: a map of 8 KiB, which the old map file's line could not hold */
    struct index_partial a = row("aa", 64LL << 30, 3, 100), b = row("bb", 20 * MIB, 1, 50);
    a.map[8191] = 0x80; /* the last chunk too */
    a.present += MIB;
    b.etag = NULL;
    b.last_modified = "Mon, 07 Dec 2026 10:00:00 GMT";
    assert_int_equal(index_partial_save(ix, &a), 0);
    assert_int_equal(index_partial_save(ix, &b), 0);
    assert_int_equal(index_partial_get(ix, "aa", &got), 0);
    assert_string_equal(got.key, "aa");
    assert_string_equal(got.name, "url:gen/x.bin");
    assert_int_equal(got.size, 64LL << 30);
    assert_int_equal(got.chunk, MIB);
    assert_string_equal(got.etag, "\"e1\"");
    assert_null(got.last_modified);
    assert_int_equal(got.map_len, 8192);
    assert_memory_equal(got.map, a.map, 8192);
    assert_int_equal(got.present, 4 * MIB);
    assert_int_equal(got.updated, 100);
    index_partial_clear(&got);
    assert_int_equal(index_partial_get(ix, "bb", &got), 0);
    assert_null(got.etag);
    assert_string_equal(got.last_modified, "Mon, 07 Dec 2026 10:00:00 GMT");
    index_partial_clear(&got);

    assert_int_equal(index_partial_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 5 * MIB);
    assert_int_equal(count, 2);

    /* a save replaces the row: more chunks, a later time */
    free(b.map);
    b = row("bb", 20 * MIB, 7, 200);
    assert_int_equal(index_partial_save(ix, &b), 0);
    assert_int_equal(index_partial_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 11 * MIB);
    assert_int_equal(count, 2);

    /* listed oldest first, up to a time, without maps */
    assert_int_equal(index_partial_list(ix, 150, 10, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].key, "aa");
    assert_null(list[0].map);
    assert_int_equal(list[0].present, 4 * MIB);
    index_partial_list_free(list, n);
    assert_int_equal(index_partial_list(ix, INT64_MAX, 10, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].key, "aa");
    assert_string_equal(list[1].key, "bb");
    index_partial_list_free(list, n);
    assert_int_equal(index_partial_list(ix, INT64_MAX, 1, &list, &n), 0);
    assert_int_equal(n, 1);
    index_partial_list_free(list, n);

    assert_int_equal(index_partial_delete(ix, "aa"), 0);
    assert_int_equal(index_partial_get(ix, "aa", &got), -ENOENT);
    assert_int_equal(index_partial_totals(ix, &bytes, &count), 0);
    assert_int_equal(bytes, 7 * MIB);
    assert_int_equal(count, 1);
    free(a.map);
    free(b.map);
    index_close(ix);
    state_close(st);
}

/* The sha256 hex of a flight key: the name of its data file and row. */
static void key_hex(const char *key, char hex[65])
{
    hash_sha256_hex(key, strlen(key), hex);
}

static void make_file(const char *rel, time_t mtime)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("bytes", fp);
    fclose(fp);
    struct timeval tv[2] = {{mtime, 0}, {mtime, 0}};
    assert_int_equal(utimes(p, tv), 0);
}

static bool exists(const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

struct env {
    struct state *st;
    struct index *ix;
    pthread_mutex_t mu;
    struct store store;
    struct flight_table *t;
};

static void env_open(struct env *v)
{
    char p[512];
    assert_int_equal(state_open(dir, &v->st), 0);
    assert_int_equal(index_open(v->st->db, &v->ix), 0);
    pthread_mutex_init(&v->mu, NULL);
    assert_int_equal(store_init(&v->store, dir), 0);
    v->t = flight_table_new(&v->store);
    assert_non_null(v->t);
    flight_table_set_index(v->t, v->ix, &v->mu);
    snprintf(p, sizeof(p), "%s/partial", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/locks", dir);
    mkdir(p, 0700);
}

static void env_close(struct env *v)
{
    flight_table_free(v->t);
    store_fini(&v->store);
    index_close(v->ix);
    state_close(v->st);
    pthread_mutex_destroy(&v->mu);
}

/* Saves a row for flight key `key` and makes its data file; the hex in hex. */
static void kept(struct env *v, const char *key, int64_t present, time_t updated, char hex[65])
{
    char rel[128];
    key_hex(key, hex);
    struct index_partial p = row(hex, 64 * MIB, present, updated);
    assert_int_equal(index_partial_save(v->ix, &p), 0);
    free(p.map);
    snprintf(rel, sizeof(rel), "partial/%s", hex);
    make_file(rel, updated);
}

static void listing_and_eviction(void **state)
{
    (void)state;
    struct env v;
    char old[65], recent[65], held[65], orphan[65], gone[65], rel[256], lock[512];
    time_t now = time(NULL);
    int64_t bytes, count, present, size;
    env_open(&v);
    kept(&v, "url:gen/old.bin", 2, now - 300, old);
    kept(&v, "url:gen/recent.bin", 3, now - 5, recent);
    kept(&v, "url:gen/held.bin", 4, now - 300, held);
    /* a data file without a row (a crash before its first save), a row without its file */
    key_hex("url:gen/orphan.bin", orphan);
    snprintf(rel, sizeof(rel), "partial/%s", orphan);
    make_file(rel, now - 300);
    kept(&v, "url:gen/gone.bin", 1, now - 400, gone);
    snprintf(rel, sizeof(rel), "%s/partial/%s", dir, gone);
    unlink(rel);

    flight_partials(v.t, &bytes, &count);
    assert_int_equal(bytes, 10 * MIB);
    assert_int_equal(count, 4);
    assert_int_equal(flight_partial(v.t, "url:gen/recent.bin", &present, &size), 0);
    assert_int_equal(present, 3 * MIB);
    assert_int_equal(size, 64 * MIB);
    assert_int_equal(flight_partial(v.t, "url:gen/none.bin", &present, &size), -ENOENT);

    /* a flight (of another process) holds held.bin's lock */
    snprintf(lock, sizeof(lock), "%s/locks/%s", dir, held);
    int fd = open(lock, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);

    /* at most one object: the oldest row (gone.bin's, its file missing) */
    assert_int_equal(flight_partials_evict(v.t, 1, 60), MIB);
    flight_partials(v.t, &bytes, &count);
    assert_int_equal(count, 3);
    snprintf(rel, sizeof(rel), "partial/%s", orphan);
    assert_false(exists(rel)); /* no row, unchanged for a minute, no lock held */

    assert_int_equal(flight_partials_evict(v.t, 100 * MIB, 60), 2 * MIB);
    snprintf(rel, sizeof(rel), "partial/%s", old);
    assert_false(exists(rel));
    assert_int_equal(flight_partial(v.t, "url:gen/old.bin", &present, &size), -ENOENT);
    snprintf(rel, sizeof(rel), "partial/%s", held);
    assert_true(exists(rel));
    snprintf(rel, sizeof(rel), "partial/%s", recent);
    assert_true(exists(rel));
    flight_partials(v.t, &bytes, &count);
    assert_int_equal(bytes, 7 * MIB);
    assert_int_equal(count, 2);

    /* released, held.bin goes too; recent.bin, used within the minute, stays */
    close(fd);
    assert_int_equal(flight_partials_evict(v.t, 100 * MIB, 60), 4 * MIB);
    flight_partials(v.t, &bytes, &count);
    assert_int_equal(bytes, 3 * MIB);
    assert_int_equal(count, 1);
    env_close(&v);
}

/* An older version's map file, as src/fetch/lazy.c wrote it before the index kept maps. */
static void old_map(const char *hex, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/partial/%s.map", dir, hex);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void tidy_imports_and_cleans(void **state)
{
    (void)state;
    struct env v;
    char a[65], b[65], c[65], d[65], rel[256];
    int64_t present, size;
    struct index_partial got;
    time_t now = time(NULL);
    env_open(&v);
    /* a: an old map with its data file (20 MiB, chunks 0, 9 and 10 present) */
    key_hex("url:gen/a.bin", a);
    snprintf(rel, sizeof(rel), "partial/%s", a);
    make_file(rel, now);
    old_map(a, "upstreamfs-partial 1\nsize 20971520\nchunk 1048576\netag \"v1\"\n"
               "last-modified Mon, 07 Dec 2026 10:00:00 GMT\nmap 010600\n");
    snprintf(rel, sizeof(rel), "partial/%s.map.new", a);
    make_file(rel, now);
    /* b: an old map without its data file; c: a row without its file; d: a file, no row */
    key_hex("url:gen/b.bin", b);
    old_map(b, "upstreamfs-partial 1\nsize 20971520\nchunk 1048576\netag \"v1\"\nmap 010000\n");
    kept(&v, "url:gen/c.bin", 1, now, c);
    snprintf(rel, sizeof(rel), "%s/partial/%s", dir, c);
    unlink(rel);
    key_hex("url:gen/d.bin", d);
    snprintf(rel, sizeof(rel), "partial/%s", d);
    make_file(rel, now);

    assert_int_equal(flight_partials_tidy(v.t), 2); /* c's row, d's file */

    assert_int_equal(flight_partial(v.t, "url:gen/a.bin", &present, &size), 0);
    assert_int_equal(present, 3 * MIB);
    assert_int_equal(size, 20 * MIB);
    assert_int_equal(index_partial_get(v.ix, a, &got), 0);
    assert_string_equal(got.etag, "\"v1\"");
    assert_string_equal(got.last_modified, "Mon, 07 Dec 2026 10:00:00 GMT");
    assert_int_equal(got.map_len, 3);
    assert_int_equal(got.map[1], 0x06);
    index_partial_clear(&got);
    snprintf(rel, sizeof(rel), "partial/%s.map", a);
    assert_false(exists(rel));
    snprintf(rel, sizeof(rel), "partial/%s.map.new", a);
    assert_false(exists(rel));
    snprintf(rel, sizeof(rel), "partial/%s", a);
    assert_true(exists(rel));
    assert_int_equal(flight_partial(v.t, "url:gen/b.bin", &present, &size), -ENOENT);
    snprintf(rel, sizeof(rel), "partial/%s.map", b);
    assert_false(exists(rel));
    assert_int_equal(index_partial_get(v.ix, c, &got), -ENOENT);
    snprintf(rel, sizeof(rel), "partial/%s", d);
    assert_false(exists(rel));
    /* once only: nothing left to do */
    assert_int_equal(flight_partials_tidy(v.t), 0);
    assert_int_equal(flight_partial(v.t, "url:gen/a.bin", &present, &size), 0);
    env_close(&v);
}

/* Without an index nothing is kept or counted (the flight module's unit tests run so). */
static void no_index(void **state)
{
    (void)state;
    struct store s;
    int64_t bytes = -1, count = -1, present, size;
    assert_int_equal(store_init(&s, dir), 0);
    struct flight_table *t = flight_table_new(&s);
    flight_partials(t, &bytes, &count);
    assert_int_equal(bytes, 0);
    assert_int_equal(count, 0);
    assert_int_equal(flight_partial(t, "url:gen/a.bin", &present, &size), -ENOENT);
    assert_int_equal(flight_partials_evict(t, 100, 0), 0);
    assert_int_equal(flight_partials_tidy(t), 0);
    flight_table_free(t);
    store_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(index_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(listing_and_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(tidy_imports_and_cleans, setup, teardown),
        cmocka_unit_test_setup_teardown(no_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
