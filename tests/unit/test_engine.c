/*
 * test_engine: the engine's cache policies through its public API
 * (include/upstreamfs/engine.h), on a temporary state dir, with the
 * scriptable driver of tests/unit/test_driver.c (no root, no FUSE; the bytes
 * come from a server on 127.0.0.1). Each case counts what reached the driver
 * and the server:
 *   ttl            a listing and a mutable file are asked again only after --metadata-ttl;
 *                  an immutable file never
 *   negative_cache a "not found" is remembered for --negative-ttl, then asked again; a
 *                  remote failure is never remembered
 *   stale_if_error a failing remote serves the stored copy marked stale; nothing stored: an
 *                  error
 *   backoff        3 failures: requests fail fast without reaching the driver or the
 *                  server; after the back-off they go out again
 *   registry_order a registry of local content and two upstreams: local wins, then the first
 *                  upstream that has the name; a failing first upstream is not skipped
 *   evict_pins     a pinned object survives quota eviction, an unpinned one goes; an evict
 *                  or a pin that could not do everything says how much failed
 *   single_flight  8 threads read one uncached file: one request at the server, every
 *                  reader gets the bytes (sha256)
 *   download_faults a body cut short or with a wrong byte (content named by digest) fails
 *                  the read and stores nothing, the next read gets the true bytes; a reader
 *                  of a hung remote that gives up gets its error at once
 * Run one with `test_engine NAME` (a cmocka test filter) or `ctest -R test_engine.NAME`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_driver.h"

#include "upstreamfs/clock.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TTL     2    /* --metadata-ttl and --negative-ttl of the test proxies, seconds */
#define PAST_MS 2100 /* a sleep that takes any timestamp of whole seconds past TTL */

struct fx {
    char dir[64];
    struct engine *e;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Proxies p, up1 and up2 (generic, TTL), registry reg = [up1, up2]; an engine on them. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct state *st = NULL;
    struct config_error err = {0};
    snprintf(f->dir, sizeof(f->dir), "/tmp/upfs-test-engine.XXXXXX");
    if (!mkdtemp(f->dir) || td_start() < 0 || state_open(f->dir, &st) < 0)
        return -1;
    if (td_proxy_create(st, "p", TTL) < 0 || td_proxy_create(st, "up1", TTL) < 0 ||
        td_proxy_create(st, "up2", TTL) < 0)
        return -1;
    char *ups[] = {"up1", "up2", NULL};
    struct registry r = {.type = PROXY_GENERIC, .upstreams = ups};
    snprintf(r.name, sizeof(r.name), "reg");
    if (configdb_registry_create(st, &r, &err) < 0)
        fail_msg("registry: %s: %s", err.field, err.message);
    state_close(st);
    struct engine_opts o = {.state_dir = f->dir, .driver_override = &td_driver};
    if (engine_open(&o, &f->e) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    td_gate(true);
    engine_close(f->e);
    td_reset();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static int resolve(struct engine *e, const char *path, int64_t *ino)
{
    struct engine_attr a;
    int rc = engine_resolve(e, path, &a);
    if (rc == 0 && ino)
        *ino = a.ino;
    return rc;
}

/* Reads path whole; 0 and its sha256 in hex, or -errno. */
static int read_hex(struct engine *e, const char *path, char hex[65])
{
    int64_t ino = 0;
    char *buf = NULL;
    size_t len = 0;
    int rc = resolve(e, path, &ino);
    if (rc == 0)
        rc = engine_read_all(e, ino, NULL, 1 << 24, &buf, &len);
    if (rc == 0)
        hash_sha256_hex(buf, len, hex);
    free(buf);
    return rc;
}

static void assert_reads(struct engine *e, const char *path, const char *body)
{
    char want[65], got[65];
    hash_sha256_hex(body, strlen(body), want);
    int rc = read_hex(e, path, got);
    if (rc < 0)
        fail_msg("%s: %s", path, strerror(-rc));
    assert_string_equal(got, want);
}

static int xattr_int(struct engine *e, const char *path, const char *name)
{
    int64_t ino = 0;
    char buf[32] = "";
    assert_int_equal(resolve(e, path, &ino), 0);
    int n = engine_getxattr(e, ino, name, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    return atoi(buf);
}

static int list_count(struct engine *e, const char *path)
{
    int64_t ino = 0;
    struct engine_dirent *d = NULL;
    size_t n = 0;
    assert_int_equal(resolve(e, path, &ino), 0);
    assert_int_equal(engine_readdir(e, ino, &d, &n), 0);
    engine_dirents_free(d, n);
    return (int)n;
}

/* Polls up to 5 s for a background call to reach the driver. */
static int wait_calls(enum td_op op, const char *key, const char *path, int want)
{
    for (int i = 0; i < 100 && td_calls(op, key, path) < want; i++)
        sleep_ms(50);
    return td_calls(op, key, path);
}

/* Waits up to 5 s until no download runs (a failed one ends after its reader learned of it). */
static void wait_idle(struct engine *e)
{
    struct engine_stats s;
    for (int i = 0; i < 100 && engine_stats(e, &s) == 0 && s.inflight > 0; i++)
        sleep_ms(50);
    assert_int_equal(engine_stats(e, &s), 0);
    assert_int_equal(s.inflight, 0);
}

static void ttl(void **state)
{
    struct fx *f = *state;
    td_dir("p", "d");
    td_file("p", "d/m.txt", "mutable one", 11, true);
    td_file("p", "d/i.txt", "immutable", 9, false);

    assert_int_equal(list_count(f->e, "p/d"), 2);
    assert_int_equal(list_count(f->e, "p/d"), 2);
    sleep_ms(300); /* time for a background listing to reach the driver, were one started */
    assert_int_equal(td_calls(TD_LIST, "p", "d"), 1); /* within the TTL: the index answers */
    assert_reads(f->e, "p/d/m.txt", "mutable one");
    assert_reads(f->e, "p/d/m.txt", "mutable one");
    assert_reads(f->e, "p/d/i.txt", "immutable");
    assert_int_equal(td_requests("p", "d/m.txt"), 1);
    assert_int_equal(td_requests("p", "d/i.txt"), 1);

    sleep_ms(PAST_MS);
    td_file("p", "d/m.txt", "mutable two", 11, true);
    list_count(f->e, "p/d"); /* past the TTL: listed again (in the background) */
    assert_int_equal(wait_calls(TD_LIST, "p", "d", 2), 2);
    assert_reads(f->e, "p/d/m.txt", "mutable two"); /* revalidated: the new bytes */
    assert_reads(f->e, "p/d/i.txt", "immutable");
    assert_int_equal(td_requests("p", "d/m.txt"), 2);
    assert_int_equal(td_requests("p", "d/i.txt"), 1); /* immutable: never asked again */
}

static void negative_cache(void **state)
{
    struct fx *f = *state;
    assert_int_equal(resolve(f->e, "p/late.txt", NULL), -ENOENT);
    assert_int_equal(resolve(f->e, "p/late.txt", NULL), -ENOENT);
    assert_int_equal(td_calls(TD_LOOKUP, "p", "late.txt"), 1); /* the absence is remembered */
    td_file("p", "late.txt", "here now", 8, false);
    assert_int_equal(resolve(f->e, "p/late.txt", NULL), -ENOENT); /* still within the TTL */
    assert_int_equal(td_calls(TD_LOOKUP, "p", "late.txt"), 1);
    sleep_ms(PAST_MS);
    assert_reads(f->e, "p/late.txt", "here now");
    assert_int_equal(td_calls(TD_LOOKUP, "p", "late.txt"), 2);

    /* A failure is not an absence: the next lookup asks again. */
    td_answer("p", "flaky.txt", -EREMOTEIO);
    int rc = resolve(f->e, "p/flaky.txt", NULL);
    assert_true(rc < 0 && rc != -ENOENT);
    td_file("p", "flaky.txt", "ok", 2, false);
    assert_reads(f->e, "p/flaky.txt", "ok");
    assert_int_equal(td_calls(TD_LOOKUP, "p", "flaky.txt"), 2);
}

static void stale_if_error(void **state)
{
    struct fx *f = *state;
    char hex[65];
    td_file("p", "s.txt", "first copy", 10, true);
    assert_reads(f->e, "p/s.txt", "first copy");
    assert_int_equal(xattr_int(f->e, "p/s.txt", "user.upstreamfs.stale"), 0);

    td_fault("p", "s.txt", TD_500);
    sleep_ms(PAST_MS); /* past the TTL: the open revalidates, and the remote fails */
    assert_reads(f->e, "p/s.txt", "first copy");
    assert_int_equal(td_requests("p", "s.txt"), 2);
    assert_int_equal(xattr_int(f->e, "p/s.txt", "user.upstreamfs.stale"), 1);
    struct engine_stats s;
    assert_int_equal(engine_stats(f->e, &s), 0);
    assert_int_equal(s.stale_serves, 1);

    /* Nothing stored: the failure is the reader's. */
    td_file("p", "none.txt", "never stored", 12, false);
    td_fault("p", "none.txt", TD_500);
    int rc = read_hex(f->e, "p/none.txt", hex);
    assert_true(rc < 0 && rc != -ENOENT);

    /* The remote answers again: fresh bytes, no longer stale. */
    td_file("p", "s.txt", "second copy", 11, true);
    td_fault("p", "s.txt", TD_OK);
    sleep_ms(PAST_MS);
    assert_reads(f->e, "p/s.txt", "second copy");
    assert_int_equal(xattr_int(f->e, "p/s.txt", "user.upstreamfs.stale"), 0);
}

static void backoff(void **state)
{
    struct fx *f = *state;
    char hex[65];
    /* Downloads: three 500s, then the server is not asked. */
    td_file("p", "g.bin", "good bytes", 10, false);
    td_fault("p", "g.bin", TD_500);
    for (int i = 0; i < 3; i++) {
        assert_true(read_hex(f->e, "p/g.bin", hex) < 0);
        wait_idle(f->e); /* the next read starts its own download, not this one's end */
    }
    int reqs = td_requests("p", "g.bin");
    assert_int_equal(reqs, 3);
    assert_true(read_hex(f->e, "p/g.bin", hex) < 0);
    assert_int_equal(td_requests("p", "g.bin"), reqs);
    td_file("p", "other.txt", "other", 5, false);
    assert_true(resolve(f->e, "p/other.txt", NULL) < 0);
    assert_int_equal(td_calls(TD_LOOKUP, "p", "other.txt"), 0); /* nor the driver */

    /* Lookups: three remote failures, then the driver is not asked. */
    td_answer("up1", "x", -EREMOTEIO);
    for (int i = 0; i < 3; i++)
        assert_true(resolve(f->e, "up1/x", NULL) < 0);
    assert_int_equal(td_calls(TD_LOOKUP, "up1", "x"), 3);
    assert_true(resolve(f->e, "up1/x", NULL) < 0);
    assert_int_equal(td_calls(TD_LOOKUP, "up1", "x"), 3);
    /* A refusal of the credentials is no sign of a dead remote: up2 keeps asking. */
    td_answer("up2", "y", -EACCES);
    for (int i = 0; i < 4; i++)
        assert_true(resolve(f->e, "up2/y", NULL) < 0);
    assert_int_equal(td_calls(TD_LOOKUP, "up2", "y"), 4);

    /* After the back-off (1 s at first) both proxies ask again, and recover. */
    sleep_ms(1200);
    td_fault("p", "g.bin", TD_OK);
    assert_reads(f->e, "p/g.bin", "good bytes");
    assert_reads(f->e, "p/other.txt", "other");
    td_file("up1", "x", "x is back", 9, false);
    assert_reads(f->e, "up1/x", "x is back");
    assert_int_equal(td_calls(TD_LOOKUP, "up1", "x"), 4);
}

static void write_local(struct engine *e, const char *dir, const char *name, const char *body)
{
    int64_t parent = 0;
    struct engine_file *wf = NULL;
    struct engine_attr a;
    assert_int_equal(resolve(e, dir, &parent), 0);
    assert_int_equal(engine_create(e, parent, name, &wf, &a), 0);
    assert_int_equal(engine_file_write(wf, body, strlen(body), 0), (ssize_t)strlen(body));
    assert_int_equal(engine_file_close(wf), 0);
}

static void registry_order(void **state)
{
    struct fx *f = *state;
    write_local(f->e, "reg", "a.txt", "local a");
    td_file("up1", "a.txt", "up1 a", 5, false);
    td_file("up2", "a.txt", "up2 a", 5, false);
    td_file("up2", "b.txt", "up2 b", 5, false); /* up1: not found */
    td_file("up1", "c.txt", "up1 c", 5, false);
    td_file("up2", "c.txt", "up2 c", 5, false);

    assert_reads(f->e, "reg/a.txt", "local a");
    assert_int_equal(td_calls(TD_LOOKUP, "up1", "a.txt"), 0); /* local content: no upstream */
    assert_int_equal(td_calls(TD_LOOKUP, "up2", "a.txt"), 0);
    assert_reads(f->e, "reg/b.txt", "up2 b");
    assert_int_equal(td_calls(TD_LOOKUP, "up1", "b.txt"), 1);
    assert_reads(f->e, "reg/c.txt", "up1 c");
    assert_int_equal(td_calls(TD_LOOKUP, "up2", "c.txt"), 0); /* the first that has it */
    assert_int_equal(td_requests("up2", "c.txt"), 0);

    /* A failing first upstream ends the search: a lower one never stands in for it. */
    td_answer("up1", "d.txt", -EREMOTEIO);
    td_file("up2", "d.txt", "up2 d", 5, false);
    int rc = resolve(f->e, "reg/d.txt", NULL);
    assert_true(rc < 0 && rc != -ENOENT);
    assert_int_equal(td_calls(TD_LOOKUP, "up2", "d.txt"), 0);
}

static void evict_pins(void **state)
{
    struct fx *f = *state;
    static char big[3][64 * 1024];
    const char *names[3] = {"a.bin", "b.bin", "c.bin"};
    char path[32], hex[65];
    for (int i = 0; i < 3; i++) {
        memset(big[i], 'a' + i, sizeof(big[i]));
        td_file("p", names[i], big[i], sizeof(big[i]), false);
        snprintf(path, sizeof(path), "p/%s", names[i]);
        assert_int_equal(read_hex(f->e, path, hex), 0);
    }
    int failed = -1;
    assert_int_equal(engine_pin(f->e, "p/a.bin", true, &failed), 1);
    assert_int_equal(failed, 0);
    /* Quota eviction to nothing: everything goes but the pinned object. */
    assert_int_equal(engine_evict_to(f->e, 0), 2);
    char cached[16];
    int64_t ino = 0;
    assert_int_equal(resolve(f->e, "p/a.bin", &ino), 0);
    assert_int_equal(engine_getxattr(f->e, ino, "user.upstreamfs.cached", cached, 8), 8);
    assert_memory_equal(cached, "complete", 8);
    assert_int_equal(resolve(f->e, "p/b.bin", &ino), 0);
    assert_int_equal(engine_getxattr(f->e, ino, "user.upstreamfs.cached", cached, 8), 4);
    assert_memory_equal(cached, "none", 4);
    assert_int_equal(read_hex(f->e, "p/a.bin", hex), 0);
    assert_int_equal(td_requests("p", "a.bin"), 1); /* from the store */
    assert_int_equal(read_hex(f->e, "p/b.bin", hex), 0);
    assert_int_equal(td_requests("p", "b.bin"), 2); /* evicted: asked again */

    /* An explicit evict of p while b is held open: a removed, b not, and it says so. */
    struct engine_file *held = NULL;
    bool keep, changed;
    assert_int_equal(resolve(f->e, "p/b.bin", &ino), 0);
    assert_int_equal(engine_file_open(f->e, ino, NULL, &held, &keep, &changed), 0);
    failed = -1;
    assert_int_equal(engine_evict_path(f->e, "p", &failed), 1);
    assert_int_equal(failed, 1);
    failed = -1;
    assert_int_equal(engine_evict_path(f->e, "p/b.bin", &failed), -EBUSY); /* nothing done */
    assert_int_equal(failed, 1);
    engine_file_close(held);
    assert_int_equal(engine_evict_path(f->e, "p/b.bin", &failed), 1);
    assert_int_equal(failed, 0);

    /* A pin the index refuses for b (a trigger, as tests/integration/cache_partial_test.sh). */
    assert_int_equal(read_hex(f->e, "p/a.bin", hex), 0);
    assert_int_equal(read_hex(f->e, "p/b.bin", hex), 0);
    char sql[300], db[96];
    snprintf(sql, sizeof(sql),
             "CREATE TRIGGER refuse_pin BEFORE UPDATE OF pinned ON object WHEN NEW.digest = '%s' "
             "BEGIN SELECT RAISE(ABORT, 'injected'); END;",
             hex);
    snprintf(db, sizeof(db), "%s/index.db", f->dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
    failed = -1;
    assert_int_equal(engine_pin(f->e, "p", true, &failed), 1); /* a, and not b */
    assert_int_equal(failed, 1);
    failed = -1;
    int rc = engine_pin(f->e, "p/b.bin", true, &failed); /* nothing done: the index's error */
    assert_true(rc < 0 && rc != -ENODATA);
    assert_int_equal(failed, 1);
    assert_int_equal(sqlite3_exec(h, "DROP TRIGGER refuse_pin;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(engine_pin(f->e, "p/b.bin", true, &failed), 1);
    assert_int_equal(failed, 0);
}

#define READERS 8

struct reader {
    struct engine *e;
    int64_t ino;
    int rc;
    char hex[65];
};

static void *read_thread(void *arg)
{
    struct reader *r = arg;
    struct engine_file *ef = NULL;
    bool keep, changed;
    r->rc = engine_file_open(r->e, r->ino, NULL, &ef, &keep, &changed);
    if (r->rc < 0)
        return NULL;
    struct hash_ctx *h = hash_begin(NULL);
    if (!h) {
        r->rc = -ENOMEM;
        engine_file_close(ef);
        return NULL;
    }
    char chunk[16384];
    for (off_t off = 0;;) {
        ssize_t n = engine_file_read(ef, chunk, sizeof(chunk), off, NULL);
        if (n < 0) {
            r->rc = (int)n;
            break;
        }
        if (n == 0)
            break;
        hash_update(h, chunk, (size_t)n);
        off += n;
    }
    hash_end(h, r->hex);
    engine_file_close(ef);
    return NULL;
}

static void single_flight(void **state)
{
    struct fx *f = *state;
    size_t len = 1 << 20;
    unsigned char *body = malloc(len);
    char want[65];
    for (size_t i = 0; i < len; i++)
        body[i] = (unsigned char)((i * 2654435761u) >> 13);
    hash_sha256_hex(body, len, want);
    td_file("p", "big.bin", body, len, false);
    free(body);
    int64_t ino = 0;
    assert_int_equal(resolve(f->e, "p/big.bin", &ino), 0);

    td_gate(false); /* the server holds the body back until every reader waits on it */
    struct reader r[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.e = f->e, .ino = ino};
        assert_int_equal(pthread_create(&th[i], NULL, read_thread, &r[i]), 0);
    }
    for (int i = 0; i < 100 && td_requests("p", "big.bin") == 0; i++)
        sleep_ms(20);
    sleep_ms(500);
    td_gate(true);
    for (int i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_string_equal(r[i].hex, want);
    }
    assert_int_equal(td_requests("p", "big.bin"), 1);
}

static int64_t give_up_at;

static bool give_up(void *arg)
{
    (void)arg;
    return clock_mono_ms() >= give_up_at;
}

static void assert_not_cached(struct engine *e, const char *path)
{
    int64_t ino = 0;
    char v[16] = "";
    assert_int_equal(resolve(e, path, &ino), 0);
    assert_int_equal(engine_getxattr(e, ino, "user.upstreamfs.cached", v, sizeof(v) - 1), 4);
    assert_string_equal(v, "none");
}

static void download_faults(void **state)
{
    struct fx *f = *state;
    static char body[256 * 1024];
    char want[65], hex[65];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)(i * 7);
    hash_sha256_hex(body, sizeof(body), want);

    td_file("p", "cut.bin", body, sizeof(body), false);
    td_fault("p", "cut.bin", TD_CLOSE_EARLY);
    assert_true(read_hex(f->e, "p/cut.bin", hex) < 0);
    wait_idle(f->e);
    assert_not_cached(f->e, "p/cut.bin");
    td_fault("p", "cut.bin", TD_OK);
    assert_int_equal(read_hex(f->e, "p/cut.bin", hex), 0);
    assert_string_equal(hex, want);
    assert_int_equal(td_requests("p", "cut.bin"), 2);

    body[0] ^= 1; /* other content: cut.bin's stored copy does not stand for it */
    hash_sha256_hex(body, sizeof(body), want);
    td_file("p", "bad.bin", body, sizeof(body), false);
    td_expect_digest("p", "bad.bin");
    td_fault("p", "bad.bin", TD_WRONG_BYTES);
    assert_int_equal(read_hex(f->e, "p/bad.bin", hex), -EIO);
    wait_idle(f->e);
    assert_not_cached(f->e, "p/bad.bin");
    td_fault("p", "bad.bin", TD_OK);
    assert_int_equal(read_hex(f->e, "p/bad.bin", hex), 0);
    assert_string_equal(hex, want);
    assert_int_equal(td_requests("p", "bad.bin"), 2);

    td_file("p", "hung.bin", body, sizeof(body), false);
    td_fault("p", "hung.bin", TD_HANG);
    td_gate(false);
    int64_t ino = 0, t0 = clock_mono_ms();
    assert_int_equal(resolve(f->e, "p/hung.bin", &ino), 0);
    give_up_at = t0 + 300;
    struct engine_wait w = {.cancelled = give_up};
    char *buf = NULL;
    size_t len = 0;
    int rc = engine_read_all(f->e, ino, &w, sizeof(body), &buf, &len);
    free(buf);
    assert_true(rc < 0);
    assert_true(clock_mono_ms() - t0 < 5000); /* not the 20 s deadline of a response */
    td_gate(true);
    assert_int_equal(td_requests("p", "hung.bin"), 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(negative_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_if_error, setup, teardown),
        cmocka_unit_test_setup_teardown(backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(registry_order, setup, teardown),
        cmocka_unit_test_setup_teardown(evict_pins, setup, teardown),
        cmocka_unit_test_setup_teardown(single_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(download_faults, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (fetch_global_init() < 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    td_stop();
    fetch_global_cleanup();
    return rc;
}
