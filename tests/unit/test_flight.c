/*
 * test_flight: single-flight downloads against an in-process HTTP server
 * (libmicrohttpd on 127.0.0.1): many joiners make one request; a reader gets
 * the first bytes while the rest is still held back by the server, also when
 * it asks only after they came; a body
 * that does not match its expected digest fails every reader and leaves
 * nothing in the store; a read reaching the end of a body with an expected
 * digest waits for the verdict; a 404 is reported as such; a flight's lock
 * file (STATEDIR/locks) is gone when it ends, and a flight that waited on a
 * lock file its owner removed takes the lock of the file now at that path.
 * A partial object (ranged GETs, /ranged) read in order is filled by one or several streams
 * and committed with the right digest; a digest mismatch commits nothing; a write that fails
 * mid-fill (EFBIG past RLIMIT_FSIZE) fails the flight with that error as its cause.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/fetch.h"
#include "upstreamfs/flight.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/store.h"
#include "test_httpd.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define BODY_SIZE (1 << 20)
#define FIRST_PART (64 << 10)

static unsigned char body[BODY_SIZE];
static char body_hex[65];
static atomic_int requests;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static struct MHD_Daemon *httpd;
static char base[64];
static char dir[64];
static struct store st;

/* /ranged: a larger body, served by Range (206, Content-Range, an ETag) */
#define BIG_SIZE ((24 << 20) + 12345)
static unsigned char *big;
static char big_hex[65];

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= FIRST_PART) {
        /* Hold the rest back until the test opens the gate. */
        pthread_mutex_lock(&gate_mu);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    size_t limit = pos < FIRST_PART ? FIRST_PART : BODY_SIZE;
    size_t n = limit - pos < max ? limit - pos : max;
    memcpy(buf, body + pos, n);
    return (ssize_t)n;
}

/* /chunked: the whole body at once, without a length; the end of the stream waits for the gate. */
static ssize_t chunked_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= BODY_SIZE) {
        pthread_mutex_lock(&gate_mu);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = BODY_SIZE - pos < max ? BODY_SIZE - pos : max;
    memcpy(buf, body + pos, n);
    return (ssize_t)n;
}

/* /cut: the first FIRST_PART bytes of a BODY_SIZE answer, then the connection drops. */
static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= FIRST_PART)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = FIRST_PART - pos < max ? FIRST_PART - pos : max;
    memcpy(buf, body + pos, n);
    return (ssize_t)n;
}

/* /whole: the body at once; /other: the same with one byte of the first part changed. */
static ssize_t whole_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    size_t n = BODY_SIZE - pos < max ? BODY_SIZE - pos : max;
    memcpy(buf, body + pos, n);
    if (cls && pos <= 100 && pos + n > 100)
        buf[100 - pos] ^= 0x5a;
    return (ssize_t)n;
}

/* /ranged's answer: 206 of the asked range "bytes=A-B" of big, else 200 of the whole. */
static struct MHD_Response *ranged(struct MHD_Connection *c, unsigned *status)
{
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    long long a = 0, b = BIG_SIZE - 1;
    if (range && (sscanf(range, "bytes=%lld-%lld", &a, &b) != 2 || a < 0 || b < a ||
                  b >= BIG_SIZE))
        return NULL;
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)(b - a + 1), big + a, MHD_RESPMEM_PERSISTENT);
    char cr[96];
    snprintf(cr, sizeof(cr), "bytes %lld-%lld/%d", a, b, BIG_SIZE);
    if (range)
        MHD_add_response_header(r, "Content-Range", cr);
    MHD_add_response_header(r, "ETag", "\"v1\"");
    *status = range ? 206 : 200;
    return r;
}

static enum MHD_Result handler(struct MHD_Connection *c, const char *url, const char *method)
{
    (void)method;
    atomic_fetch_add(&requests, 1);
    struct MHD_Response *r = NULL;
    unsigned status = 200;
    if (strcmp(url, "/ranged") == 0 && (r = ranged(c, &status))) {
    } else if (strcmp(url, "/blob") == 0) {
        r = MHD_create_response_from_callback(BODY_SIZE, 32 * 1024, reader, NULL, NULL);
    } else if (strcmp(url, "/cut") == 0) {
        r = MHD_create_response_from_callback(BODY_SIZE, 32 * 1024, cut_reader, NULL, NULL);
    } else if (strcmp(url, "/whole") == 0 || strcmp(url, "/other") == 0) {
        r = MHD_create_response_from_callback(BODY_SIZE, 32 * 1024, whole_reader,
                                              url[1] == 'o' ? (void *)url : NULL, NULL);
    } else if (strcmp(url, "/chunked") == 0) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, chunked_reader, NULL,
                                              NULL);
    } else {
        status = 404;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void open_gate(bool open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static int count_blobs(void)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "find %s/blobs -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < BODY_SIZE; i++)
        body[i] = (unsigned char)((i * 2654435761u) >> 13);
    hash_sha256_hex(body, BODY_SIZE, body_hex);
    if (!(big = malloc(BIG_SIZE)))
        return -1;
    for (size_t i = 0; i < BIG_SIZE; i++)
        big[i] = (unsigned char)((i * 2246822519u) >> 11);
    hash_sha256_hex(big, BIG_SIZE, big_hex);
    snprintf(dir, sizeof(dir), "/tmp/upfs-test-flight.XXXXXX");
    if (!mkdtemp(dir) || store_init(&st, dir) < 0 || fetch_global_init() < 0)
        return -1;
    httpd = test_httpd_start(handler, base, sizeof(base));
    return httpd ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    open_gate(true);
    MHD_stop_daemon(httpd);
    free(big);
    fetch_global_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

struct reader_arg {
    struct flight_table *t;
    const char *url;
    struct hash_expect expect;
    int result; /* 0 all bytes matched; negative errno */
};

static void *read_all(void *p)
{
    struct reader_arg *a = p;
    struct flight *f;
    bool started;
    struct flight_source src = {.url = a->url, .expect = a->expect, .expect_size = -1};
    a->result = flight_join(a->t, "key", &src, &f, &started);
    if (a->result < 0)
        return NULL;
    static __thread unsigned char buf[BODY_SIZE];
    off_t off = 0;
    for (;;) {
        ssize_t n = flight_read(f, buf + off, 65536, off, 10000, NULL, NULL);
        if (n < 0) {
            a->result = (int)n;
            break;
        }
        if (n == 0) {
            a->result = off == BODY_SIZE && memcmp(buf, body, BODY_SIZE) == 0 ? 0 : -EBADMSG;
            break;
        }
        off += n;
    }
    flight_release(f);
    return NULL;
}

static void one_request_for_many_readers(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/blob", base);
    struct flight_table *t = flight_table_new(&st);
    atomic_store(&requests, 0);
    open_gate(false);
    pthread_t th[16];
    struct reader_arg args[16];
    for (int i = 0; i < 16; i++) {
        args[i] = (struct reader_arg){.t = t, .url = url};
        hash_expect_parse(body_hex, &args[i].expect);
        pthread_create(&th[i], NULL, read_all, &args[i]);
    }
    usleep(300 * 1000);
    open_gate(true);
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].result, 0);
    }
    assert_int_equal(atomic_load(&requests), 1);
    flight_table_free(t);
    assert_int_equal(store_blob_size(&st, body_hex), BODY_SIZE);
    store_remove(&st, body_hex);
}

static void first_bytes_before_the_rest(void **state)
{
    (void)state;
    char url[128];
    unsigned char buf[FIRST_PART];
    snprintf(url, sizeof(url), "%s/blob", base);
    struct flight_table *t = flight_table_new(&st);
    open_gate(false);
    struct flight *f;
    bool started;
    struct flight_source src = {.url = url, .expect_size = -1};
    assert_int_equal(flight_join(t, "first", &src, &f, &started), 0);
    assert_true(started);
    long status;
    int err;
    assert_int_equal(flight_wait_response(f, 5000, NULL, NULL, &status, &err), FLIGHT_STREAMING);
    /* The server holds everything past 64 KiB, yet the first 64 KiB read completes. */
    assert_int_equal(flight_read(f, buf, sizeof(buf), 0, 5000, NULL, NULL), FIRST_PART);
    assert_memory_equal(buf, body, FIRST_PART);
    open_gate(true);
    assert_int_equal(flight_wait_done(f, 10000, NULL, NULL), FLIGHT_DONE);
    assert_string_equal(flight_digest(f), body_hex);
    flight_release(f);
    flight_table_free(t);
    store_remove(&st, body_hex);
}

/* on_done of settle_waits_for_the_commit: a slow commit (the index's write, on a busy disk). */
static atomic_int commits_done;
static void slow_done(void *arg, const char *hex, int64_t size, const struct fetch_response *r)
{
    (void)arg, (void)hex, (void)size, (void)r;
    usleep(400 * 1000);
    atomic_store(&commits_done, 1);
}

/*
 * A reader can reach the end of a body with no expected digest before its commit has recorded
 * it; flight_table_settle (what user.upstreamfs.digest and .cached ask, src/engine/xattr.c)
 * waits for that commit, so the answer is what the reader read.
 */
static void settle_waits_for_the_commit(void **state)
{
    (void)state;
    char url[128];
    static unsigned char buf[BODY_SIZE];
    snprintf(url, sizeof(url), "%s/blob", base);
    struct flight_table *t = flight_table_new(&st);
    open_gate(true);
    atomic_store(&commits_done, 0);
    struct flight *f;
    bool started;
    struct flight_source src = {.url = url, .expect_size = -1, .on_done = slow_done};
    assert_int_equal(flight_join(t, "settle", &src, &f, &started), 0);
    size_t got = 0;
    ssize_t r;
    while ((r = flight_read(f, buf + got, BODY_SIZE - got, (off_t)got, 5000, NULL, NULL)) > 0)
        got += (size_t)r;
    assert_int_equal(got, BODY_SIZE);
    assert_int_equal(atomic_load(&commits_done), 0); /* the reader is at the end before it */
    flight_table_settle(t, "settle", 5000);
    assert_int_equal(atomic_load(&commits_done), 1);
    assert_int_equal(flight_wait_done(f, 10000, NULL, NULL), FLIGHT_DONE);
    flight_release(f);
    flight_table_free(t);
    store_remove(&st, body_hex);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Bytes that came before a pause reach a reader who asks only after they came, at once: the
 * download does not keep them buffered until more arrive (src/fetch/sink.c flushes what each
 * receive brought; libcurl's next call, with the server silent, is a second later).
 */
static void bytes_before_a_pause_reach_a_late_reader(void **state)
{
    (void)state;
    char url[128];
    unsigned char buf[FIRST_PART];
    snprintf(url, sizeof(url), "%s/blob", base);
    struct flight_table *t = flight_table_new(&st);
    open_gate(false);
    struct flight *f;
    bool started;
    struct flight_source src = {.url = url, .expect_size = -1};
    assert_int_equal(flight_join(t, "late", &src, &f, &started), 0);
    long status;
    int err;
    assert_int_equal(flight_wait_response(f, 5000, NULL, NULL, &status, &err), FLIGHT_STREAMING);
    usleep(100 * 1000); /* the first 64 KiB came; the server holds the rest */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(flight_read(f, buf, sizeof(buf), 0, 5000, NULL, NULL), FIRST_PART);
    long ms = ms_since(&t0);
    assert_true(ms < 500);
    assert_memory_equal(buf, body, FIRST_PART);
    open_gate(true);
    assert_int_equal(flight_wait_done(f, 10000, NULL, NULL), FLIGHT_DONE);
    flight_release(f);
    flight_table_free(t);
    store_remove(&st, body_hex);
}

static void wrong_digest_fails_and_stores_nothing(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/blob", base);
    struct flight_table *t = flight_table_new(&st);
    open_gate(true);
    struct reader_arg a = {.t = t, .url = url};
    hash_expect_parse("sha256:0000000000000000000000000000000000000000000000000000000000000000",
                      &a.expect);
    read_all(&a);
    assert_int_equal(a.result, -EIO);
    flight_table_free(t);
    assert_int_equal(count_blobs(), 0);
    assert_int_equal(store_clean_tmp(&st), 0); /* the failed download left no temp file */
}

struct tail_arg {
    struct flight *f;
    atomic_int done;
    ssize_t n;
};

static void *read_to_end(void *p)
{
    struct tail_arg *a = p;
    static unsigned char buf[BODY_SIZE];
    a->n = flight_read(a->f, buf, BODY_SIZE, 0, 10000, NULL, NULL);
    atomic_store(&a->done, 1);
    return NULL;
}

/* What the owner's on_fail saw: its error, and whether the reader had already been answered. */
struct fail_seen {
    struct tail_arg *reader;
    int calls, err, reader_done;
};

static void note_fail(void *arg, int err, const struct fetch_response *resp)
{
    (void)resp;
    struct fail_seen *s = arg;
    s->calls++;
    s->err = err;
    s->reader_done = atomic_load(&s->reader->done);
}

/*
 * Every byte of a body of unknown length is in, but the response has not ended: a read of
 * all of it with an expected digest waits for the verdict (here a mismatch: -EIO); without
 * an expectation the same read is answered at once.
 */
static void end_waits_for_the_verdict(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/chunked", base);
    for (int verified = 1; verified >= 0; verified--) {
        struct flight_table *t = flight_table_new(&st);
        open_gate(false);
        struct tail_arg a = {0};
        struct fail_seen seen = {.reader = &a};
        struct flight_source src = {
            .url = url, .expect_size = -1, .on_fail = note_fail, .arg = &seen};
        if (verified)
            hash_expect_parse("sha256:00000000000000000000000000000000000000000000000000000000"
                              "00000000",
                              &src.expect);
        bool started;
        assert_int_equal(flight_join(t, verified ? "tail-v" : "tail", &src, &a.f, &started), 0);
        int64_t have = 0, total = 0;
        for (int i = 0; i < 500 && have < BODY_SIZE; i++) {
            usleep(10 * 1000);
            flight_progress(a.f, &have, &total);
        }
        assert_int_equal(have, BODY_SIZE);
        assert_int_equal(total, -1);
        pthread_t th;
        pthread_create(&th, NULL, read_to_end, &a);
        usleep(300 * 1000);
        assert_int_equal(atomic_load(&a.done), !verified);
        open_gate(true);
        pthread_join(th, NULL);
        assert_int_equal(a.n, verified ? -EIO : BODY_SIZE);
        assert_int_equal(flight_wait_done(a.f, 10000, NULL, NULL),
                         verified ? FLIGHT_FAILED : FLIGHT_DONE);
        /* A failed verification is the flight's -EBADMSG (cause digest) for every reader, and
         * the owner recorded it before any reader was answered (src/engine/reader.c). */
        long status = 0;
        int err = 0;
        flight_wait_response(a.f, 0, NULL, NULL, &status, &err);
        assert_int_equal(err, verified ? -EBADMSG : 0);
        assert_int_equal(seen.calls, verified);
        if (verified) {
            assert_int_equal(seen.err, -EBADMSG);
            assert_int_equal(seen.reader_done, 0);
        }
        flight_release(a.f);
        flight_table_free(t);
        store_remove(&st, body_hex);
    }
    assert_int_equal(count_blobs(), 0);
}

static void not_found_is_reported(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/missing", base);
    struct flight_table *t = flight_table_new(&st);
    struct flight *f;
    bool started;
    struct flight_source src = {.url = url, .expect_size = -1};
    assert_int_equal(flight_join(t, "missing", &src, &f, &started), 0);
    long status = 0;
    int err = 0;
    assert_int_equal(flight_wait_response(f, 5000, NULL, NULL, &status, &err), FLIGHT_HTTP_ERROR);
    assert_int_equal(status, 404);
    flight_release(f);
    flight_table_free(t);
}

static void refused_connection_fails_fast(void **state)
{
    (void)state;
    struct flight_table *t = flight_table_new(&st);
    struct flight *f;
    bool started;
    /* Port 1 on loopback: nothing listens there. */
    struct flight_source src = {.url = "http://127.0.0.1:1/x", .expect_size = -1};
    assert_int_equal(flight_join(t, "refused", &src, &f, &started), 0);
    long status = 0;
    int err = 0;
    assert_int_equal(flight_wait_response(f, 5000, NULL, NULL, &status, &err), FLIGHT_FAILED);
    assert_int_equal(err, -ECONNREFUSED);
    flight_release(f);
    flight_table_free(t);
}

/*
 * A flight that has failed stays in the table for a moment while its thread cleans up; readers
 * are told before that. Asked right then, the table must not call it running (that is what
 * user.upstreamfs.cached asks: an ended download is not "partial"). Many rounds, because the
 * moment is short.
 */
static void ended_flight_is_not_running(void **state)
{
    (void)state;
    struct flight_table *t = flight_table_new(&st);
    int running = 0;
    for (int i = 0; i < 300; i++) {
        struct flight *f;
        bool started;
        struct flight_source src = {.url = "http://127.0.0.1:1/x", .expect_size = -1};
        assert_int_equal(flight_join(t, "ended", &src, &f, &started), 0);
        long status = 0;
        int err = 0;
        assert_int_equal(flight_wait_response(f, 5000, NULL, NULL, &status, &err),
                         FLIGHT_FAILED);
        running += flight_table_has(t, "ended");
        flight_release(f);
        while (flight_table_active(t) > 0)
            usleep(1000);
    }
    flight_table_free(t);
    assert_int_equal(running, 0);
}

/* The number of entries in STATEDIR/locks (0 when it does not exist). */
static int count_locks(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/locks", dir);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d));)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Runs one flight of key to its end; its final state. */
static enum flight_state run_flight(struct flight_table *t, const char *key, const char *url)
{
    struct flight *f;
    bool started;
    struct flight_source src = {.url = url, .expect_size = -1};
    assert_int_equal(flight_join(t, key, &src, &f, &started), 0);
    enum flight_state s = flight_wait_done(f, 10000, NULL, NULL);
    flight_release(f);
    return s;
}

static void lock_files_go_with_their_flights(void **state)
{
    (void)state;
    char blob[128], missing[128], key[32];
    snprintf(blob, sizeof(blob), "%s/blob", base);
    snprintf(missing, sizeof(missing), "%s/missing", base);
    struct flight_table *t = flight_table_new(&st);
    open_gate(true);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "many-%d", i);
        enum flight_state s = run_flight(t, key, i % 2 ? missing : blob);
        assert_int_equal(s, i % 2 ? FLIGHT_HTTP_ERROR : FLIGHT_DONE);
    }
    flight_table_free(t);
    assert_int_equal(count_locks(), 0);
    store_remove(&st, body_hex);
}

/* Opens and locks path as another process would (a separate open file description). */
static int hold_lock(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    return fd;
}

static void waiter_relocks_a_replaced_lock_file(void **state)
{
    (void)state;
    char url[128], path[200], hex[65];
    snprintf(url, sizeof(url), "%s/blob", base);
    hash_sha256_hex("peer", 4, hex);
    snprintf(path, sizeof(path), "%s/locks", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/locks/%s", dir, hex);
    open_gate(true);
    atomic_store(&requests, 0);
    int first = hold_lock(path); /* a peer's flight of the same key */
    struct flight_table *t = flight_table_new(&st);
    struct flight *f;
    bool started;
    struct flight_source src = {.url = url, .expect_size = -1};
    assert_int_equal(flight_join(t, "peer", &src, &f, &started), 0);
    usleep(150 * 1000);
    /* The peer ends (removes its file, holding it); a third process starts a flight of the key. */
    assert_int_equal(unlink(path), 0);
    int second = hold_lock(path);
    close(first);
    usleep(300 * 1000);
    /* The waiter holds the old file's lock now, but the path names the third one's: it waits. */
    assert_int_equal(atomic_load(&requests), 0);
    assert_int_equal(unlink(path), 0);
    close(second);
    assert_int_equal(flight_wait_done(f, 10000, NULL, NULL), FLIGHT_DONE);
    assert_int_equal(atomic_load(&requests), 1);
    flight_release(f);
    flight_table_free(t);
    assert_int_equal(count_locks(), 0);
    store_remove(&st, body_hex);
}

/* The next URL a cut download starts again on (flight_source.next_url): once, then none. */
struct next_arg {
    const char *next;
    int calls, err;
};

static char *next_once(void *arg, const char *url, int err, const struct fetch_response *resp)
{
    struct next_arg *a = arg;
    (void)url;
    (void)resp;
    a->err = err;
    return a->calls++ ? NULL : strdup(a->next);
}

/* Reads a flight of src to its end or failure: 0 when the bytes are the body, else the error. */
static int read_flight(struct flight_table *t, const char *key, struct flight_source *src)
{
    struct flight *f;
    bool started;
    static unsigned char buf[BODY_SIZE];
    int rc = flight_join(t, key, src, &f, &started);
    off_t off = 0;
    while (rc == 0) {
        ssize_t n = flight_read(f, buf + off, 65536, off, 10000, NULL, NULL);
        if (n <= 0) {
            rc = n < 0 ? (int)n : off == BODY_SIZE && !memcmp(buf, body, BODY_SIZE) ? 1 : -EBADMSG;
            break;
        }
        off += n;
    }
    if (rc == 1) {
        rc = 0;
        assert_int_equal(flight_wait_done(f, 10000, NULL, NULL), FLIGHT_DONE);
    }
    flight_release(f);
    return rc;
}

/*
 * A download cut mid-body starts again on the next URL from its first byte: a reader that had
 * the first part reads on to the end, and the stored object is the body.
 */
static void cut_download_starts_again_on_the_next_url(void **state)
{
    (void)state;
    char cut[128], whole[128];
    snprintf(cut, sizeof(cut), "%s/cut", base);
    snprintf(whole, sizeof(whole), "%s/whole", base);
    struct next_arg na = {.next = whole};
    struct flight_table *t = flight_table_new(&st);
    struct flight_source src = {.url = cut, .expect_size = -1, .next_url = next_once, .arg = &na};
    assert_int_equal(read_flight(t, "again", &src), 0);
    assert_int_equal(na.calls, 1);
    assert_true(na.err < 0);
    assert_int_equal(store_blob_size(&st, body_hex), BODY_SIZE);
    flight_table_free(t);
    store_remove(&st, body_hex);
}

/* The next URL sends other bytes over what readers may have read: the download fails. */
static void next_url_with_other_bytes_fails(void **state)
{
    (void)state;
    char cut[128], other[128];
    snprintf(cut, sizeof(cut), "%s/cut", base);
    snprintf(other, sizeof(other), "%s/other", base);
    struct next_arg na = {.next = other};
    struct flight_table *t = flight_table_new(&st);
    int before = count_blobs();
    struct flight_source src = {.url = cut, .expect_size = -1, .next_url = next_once, .arg = &na};
    assert_int_equal(read_flight(t, "spliced", &src), -EIO);
    assert_int_equal(na.calls, 1);
    assert_int_equal(count_blobs(), before);
    flight_table_free(t);
}

/*
 * Reads a partial object of /ranged in order (64 KiB reads): 0 when every byte is big's, else
 * the read's error. The flight's state at its end and its error go to *state and *err.
 */
static int read_partial(struct flight_table *t, const char *key, int streams, const char *hex,
                        int *state, int *err)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/ranged", base);
    struct flight_source src = {.url = url,
                                .expect_size = -1,
                                .size_hint = BIG_SIZE,
                                .lazy_min = 1 << 20,
                                .first_offset = 0,
                                .streams = streams,
                                .streams_min = 1 << 20};
    src.expect.algo = HASH_SHA256;
    memcpy(src.expect.hex, hex, 65);
    struct flight *f;
    bool started;
    int rc = flight_join(t, key, &src, &f, &started);
    unsigned char *buf = malloc(65536);
    off_t off = 0;
    while (rc == 0) {
        ssize_t n = flight_read(f, buf, 65536, off, 10000, NULL, NULL);
        if (n <= 0) {
            rc = n < 0 ? (int)n : off == BIG_SIZE ? 0 : -EBADMSG;
            break;
        }
        if (memcmp(buf, big + off, (size_t)n) != 0)
            rc = -EBADMSG;
        off += n;
    }
    free(buf);
    *state = flight_wait_done(f, 10000, NULL, NULL);
    long status;
    flight_wait_response(f, 1000, NULL, NULL, &status, err);
    flight_release(f);
    return rc;
}

/*
 * A partial object read in order: its streams (4 in parallel, or 1) fetch it in ranged GETs,
 * each byte once; the prefix is hashed in order and the object committed with its digest.
 */
static void partial_object_filled_by_streams(void **state)
{
    (void)state;
    static const int streams[] = {4, 1};
    for (unsigned i = 0; i < 2; i++) {
        struct flight_table *t = flight_table_new(&st);
        int before = count_blobs(), fstate, err;
        atomic_store(&requests, 0);
        assert_int_equal(read_partial(t, i ? "ranged1" : "ranged4", streams[i], big_hex, &fstate,
                                      &err),
                         0);
        assert_int_equal(fstate, FLIGHT_DONE);
        assert_int_equal(store_blob_size(&st, big_hex), BIG_SIZE);
        assert_int_equal(count_blobs(), before + 1);
        /* the probe's chunk, then runs of 8 chunks (4 streams) or 32 (one): 25 chunks */
        assert_int_equal(atomic_load(&requests), i ? 2 : 1 + 3);
        flight_table_free(t);
        store_remove(&st, big_hex);
    }
}

/* A partial object whose bytes do not match: the end is never read, nothing is committed. */
static void partial_object_mismatch_commits_nothing(void **state)
{
    (void)state;
    char wrong[65];
    memset(wrong, 'b', 64);
    wrong[64] = '\0';
    struct flight_table *t = flight_table_new(&st);
    int before = count_blobs(), fstate, err;
    assert_int_equal(read_partial(t, "rangedbad", 4, wrong, &fstate, &err), -EIO);
    assert_int_equal(fstate, FLIGHT_FAILED);
    assert_int_equal(err, -EBADMSG);
    assert_int_equal(count_blobs(), before);
    flight_table_free(t);
}

/* A write that fails mid-fill (the file size limit: EFBIG) fails the flight with that error. */
static void partial_object_write_error_is_the_cause(void **state)
{
    (void)state;
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_cur = 10 << 20;
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    struct flight_table *t = flight_table_new(&st);
    int before = count_blobs(), fstate, err;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = read_partial(t, "rangedfull", 4, big_hex, &fstate, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, -EIO);
    assert_int_equal(fstate, FLIGHT_FAILED);
    assert_int_equal(err, -EFBIG);
    assert_int_equal(count_blobs(), before);
    flight_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_request_for_many_readers),
        cmocka_unit_test(first_bytes_before_the_rest),
        cmocka_unit_test(settle_waits_for_the_commit),
        cmocka_unit_test(bytes_before_a_pause_reach_a_late_reader),
        cmocka_unit_test(wrong_digest_fails_and_stores_nothing),
        cmocka_unit_test(end_waits_for_the_verdict),
        cmocka_unit_test(not_found_is_reported),
        cmocka_unit_test(refused_connection_fails_fast),
        cmocka_unit_test(ended_flight_is_not_running),
        cmocka_unit_test(lock_files_go_with_their_flights),
        cmocka_unit_test(waiter_relocks_a_replaced_lock_file),
        cmocka_unit_test(cut_download_starts_again_on_the_next_url),
        cmocka_unit_test(next_url_with_other_bytes_fails),
        cmocka_unit_test(partial_object_filled_by_streams),
        cmocka_unit_test(partial_object_mismatch_commits_nothing),
        cmocka_unit_test(partial_object_write_error_is_the_cause),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
