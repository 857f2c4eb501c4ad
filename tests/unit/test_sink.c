/*
 * test_sink: a body handed to a sink in pieces of any size lands in its file byte for byte and
 * is hashed in order (the sha256 of the pieces as sent; a wrong expectation is -EBADMSG), for
 * a body that stays on the caller's thread (under one buffer) and one that goes through the
 * writer and hasher threads; the part of a body already in the file (a restarted download) is
 * hashed, not written again; on_written reports increasing ends of bytes that are in the file;
 * a write that fails (ENOSPC on /dev/full, EFBIG past RLIMIT_FSIZE in the middle of a threaded
 * body) is the error of sink_write / sink_finish, and nothing past it is reported written;
 * sink_abort stops a running sink; a ranged sink (no hash) writes runs at the offsets
 * sink_seek gives, each in the file whole once sink_sync returns, and keeps a write error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/hash.h"
#include "upstreamfs/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct seen {
    int64_t last;
    int calls;
    int fd; /* the file, to check that what is reported is there */
    const unsigned char *body;
    bool in_file;    /* every report's bytes were in the file when reported */
    bool increasing; /* every report was past the one before */
};

static void on_written(void *arg, int64_t written)
{
    struct seen *w = arg;
    /* The writer's thread: no cmocka asserts here, the test checks the flags afterwards. */
    if (written <= w->last)
        w->increasing = false;
    w->last = written;
    w->calls++;
    /* The last 4 KiB reported must be readable from the file now. */
    unsigned char buf[4096];
    int64_t off = written > (int64_t)sizeof(buf) ? written - (int64_t)sizeof(buf) : 0;
    ssize_t n = pread(w->fd, buf, (size_t)(written - off), off);
    if (w->body && (n != written - off || memcmp(buf, w->body + off, (size_t)n) != 0))
        w->in_file = false;
}

static unsigned char *random_body(size_t size)
{
    unsigned char *b = malloc(size);
    assert_non_null(b);
    srand(42);
    for (size_t i = 0; i < size; i++)
        b[i] = (unsigned char)(rand() >> 7);
    return b;
}

static int tmp_file(char *path)
{
    strcpy(path, "/tmp/test_sink.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* Sends body in pieces of varied sizes (16 KiB, as libcurl does, and odd ones), with flushes. */
static int send_body(struct sink *s, const unsigned char *body, size_t size)
{
    static const size_t sizes[] = {16384, 16384, 1, 7000, 16384, 300000, 16384, 65536, 3};
    size_t off = 0;
    for (unsigned i = 0; off < size; i++) {
        size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
        if (n > size - off)
            n = size - off;
        int rc = sink_write(s, body + off, n);
        if (rc < 0)
            return rc;
        off += n;
        if (i % 5 == 4 && (rc = sink_flush(s)) < 0)
            return rc;
    }
    return 0;
}

static void check_body(size_t size)
{
    unsigned char *body = random_body(size), *back = malloc(size + 1);
    char path[64], hex[65], want[65];
    int fd = tmp_file(path);
    struct seen w = {.fd = fd, .body = body, .in_file = true, .increasing = true};
    struct hash_expect e = {.algo = HASH_SHA256};
    hash_sha256_hex(body, size, want);
    memcpy(e.hex, want, sizeof(want));
    struct sink *s = sink_new(fd, 0, (int64_t)size, hash_begin(&e), on_written, &w);
    assert_non_null(s);
    assert_int_equal(send_body(s, body, size), 0);
    assert_int_equal(sink_finish(s, hex), 0);
    assert_string_equal(hex, want); /* hashed in order: the sha256 of the body as sent */
    assert_int_equal(w.last, (int64_t)size);
    assert_true(w.in_file);
    assert_true(w.increasing);
    assert_int_equal(pread(fd, back, size + 1, 0), (ssize_t)size);
    assert_memory_equal(back, body, size);
    close(fd);
    free(body);
    free(back);
}

static void small_body_on_the_callers_thread(void **state)
{
    (void)state;
    check_body(100000);
    check_body(1);
}

static void large_body_through_the_threads(void **state)
{
    (void)state;
    check_body(5 * SINK_BUF_SIZE + 12345);
    check_body(2 * SINK_BUF_SIZE); /* ends on a buffer's end */
}

/* A body started again after a part was written: that part is hashed, not written again. */
static void present_part_is_hashed_not_written(void **state)
{
    (void)state;
    size_t size = 3 * SINK_BUF_SIZE + 777, present = SINK_BUF_SIZE + 4242;
    unsigned char *body = random_body(size), *back = malloc(size);
    unsigned char *zeros = calloc(1, present);
    char path[64], hex[65], want[65];
    int fd = tmp_file(path);
    assert_int_equal(pwrite(fd, zeros, present, 0), (ssize_t)present); /* "written before" */
    struct seen w = {.fd = fd, .increasing = true, .last = (int64_t)present};
    hash_sha256_hex(body, size, want);
    struct sink *s = sink_new(fd, (int64_t)present, (int64_t)size, hash_begin(NULL), on_written, &w);
    assert_non_null(s);
    assert_int_equal(send_body(s, body, size), 0);
    assert_int_equal(sink_finish(s, hex), 0);
    assert_string_equal(hex, want);               /* the whole body, present part included */
    assert_true(w.increasing);                    /* every report past `present` */
    assert_int_equal(w.last, (int64_t)size);
    assert_int_equal(pread(fd, back, size, 0), (ssize_t)size);
    assert_memory_equal(back, zeros, present);    /* not written again */
    assert_memory_equal(back + present, body + present, size - present);
    close(fd);
    free(body);
    free(back);
    free(zeros);
}

static void wrong_expectation_is_ebadmsg(void **state)
{
    (void)state;
    size_t size = 3 * SINK_BUF_SIZE;
    unsigned char *body = random_body(size);
    char path[64], hex[65];
    int fd = tmp_file(path);
    struct seen w = {.fd = fd};
    struct hash_expect e = {.algo = HASH_SHA256};
    memset(e.hex, 'a', 64);
    struct sink *s = sink_new(fd, 0, -1, hash_begin(&e), on_written, &w);
    assert_non_null(s);
    assert_int_equal(send_body(s, body, size), 0);
    assert_int_equal(sink_finish(s, hex), -EBADMSG);
    assert_int_equal(w.last, (int64_t)size); /* written: the verdict is the caller's to act on */
    close(fd);
    free(body);
}

static void full_disk_is_enospc(void **state)
{
    (void)state;
    size_t sizes[] = {50000, 4 * SINK_BUF_SIZE};
    for (unsigned i = 0; i < 2; i++) {
        unsigned char *body = random_body(sizes[i]);
        char hex[65];
        int fd = open("/dev/full", O_WRONLY);
        assert_true(fd >= 0);
        struct seen w = {.fd = -1};
        struct sink *s = sink_new(fd, 0, (int64_t)sizes[i], hash_begin(NULL), on_written, &w);
        assert_non_null(s);
        int rc = send_body(s, body, sizes[i]);
        /* The first write fails: at a flush or a full buffer, or at the end, in sink_finish. */
        assert_true(rc == 0 || rc == -ENOSPC);
        if (rc == 0)
            assert_int_equal(sink_finish(s, hex), -ENOSPC);
        else
            sink_abort(s);
        assert_int_equal(w.calls, 0); /* nothing reported written */
        close(fd);
        free(body);
    }
}

static void failed_write_in_the_middle_stops_everything(void **state)
{
    (void)state;
    size_t size = 8 * SINK_BUF_SIZE, limit = 3 * SINK_BUF_SIZE + 5000;
    unsigned char *body = random_body(size), *back = malloc(size);
    char path[64], hex[65];
    struct rlimit old, lim = {.rlim_cur = limit};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    int fd = tmp_file(path);
    struct seen w = {.fd = fd, .body = body, .in_file = true, .increasing = true};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct sink *s = sink_new(fd, 0, -1, hash_begin(NULL), on_written, &w);
    assert_non_null(s);
    int rc = send_body(s, body, size);
    if (rc == 0)
        rc = sink_finish(s, hex);
    else
        assert_int_equal(sink_finish(s, hex), rc); /* the same error again */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, -EFBIG);
    /* Reported: whole buffers before the failure, never past it; those bytes are right. */
    assert_true(w.last <= (int64_t)limit);
    assert_true(w.last >= (int64_t)SINK_BUF_SIZE);
    assert_true(w.in_file);
    assert_true(pread(fd, back, (size_t)w.last, 0) == (ssize_t)w.last);
    assert_memory_equal(back, body, (size_t)w.last);
    close(fd);
    free(body);
    free(back);
}

static void abort_stops_a_running_sink(void **state)
{
    (void)state;
    size_t size = 6 * SINK_BUF_SIZE;
    unsigned char *body = random_body(size);
    char path[64];
    int fd = tmp_file(path);
    struct seen w = {.fd = fd, .body = body, .in_file = true, .increasing = true};
    struct sink *s = sink_new(fd, 0, (int64_t)size, hash_begin(NULL), on_written, &w);
    assert_non_null(s);
    assert_int_equal(send_body(s, body, size / 2 + 100), 0);
    sink_abort(s);
    assert_true(w.last <= (int64_t)(size / 2 + 100));
    assert_true(w.in_file);
    sink_abort(NULL);
    close(fd);
    free(body);
}

/*
 * A ranged sink (a partial object's stream): runs of a body written at the offsets sink_seek
 * gives, one after the other through one sink, without a hash; every report is an offset
 * inside the run being written, and once sink_sync returns the run is in the file whole.
 */
struct ranged_seen {
    int fd;
    const unsigned char *body;
    int64_t from, last; /* the run being written: its start, the last end reported */
    bool in_run, in_file;
};

static void on_ranged(void *arg, int64_t written)
{
    struct ranged_seen *w = arg;
    unsigned char buf[4096];
    if (written <= w->last || written <= w->from)
        w->in_run = false;
    w->last = written;
    int64_t off = written - (int64_t)sizeof(buf) > w->from ? written - (int64_t)sizeof(buf)
                                                           : w->from;
    ssize_t n = pread(w->fd, buf, (size_t)(written - off), off);
    if (n != written - off || memcmp(buf, w->body + off, (size_t)n) != 0)
        w->in_file = false;
}

static void ranged_runs_at_their_offsets(void **state)
{
    (void)state;
    size_t size = 12 * SINK_BUF_SIZE;
    /* runs out of order, small (one piece, stays on the caller's thread) and large (threads) */
    static const size_t runs[][2] = {{8 * SINK_BUF_SIZE, 4 * SINK_BUF_SIZE},
                                     {0, SINK_BUF_SIZE},
                                     {SINK_BUF_SIZE, 5 * SINK_BUF_SIZE + 17},
                                     {6 * SINK_BUF_SIZE + 17, 2 * SINK_BUF_SIZE - 17}};
    unsigned char *body = random_body(size), *back = malloc(size);
    char path[64], hex[65] = "untouched";
    int fd = tmp_file(path);
    struct ranged_seen w = {.fd = fd, .body = body, .in_run = true, .in_file = true};
    struct sink *s = sink_new_ranged(fd, on_ranged, &w);
    assert_non_null(s);
    for (unsigned i = 0; i < 4; i++) {
        size_t off = runs[i][0], len = runs[i][1];
        assert_int_equal(sink_seek(s, (int64_t)off, (int64_t)len), 0);
        w.from = w.last = (int64_t)off; /* the writer is idle after sink_seek */
        assert_int_equal(send_body(s, body + off, len), 0);
        assert_int_equal(sink_sync(s), 0);
        assert_int_equal(w.last, (int64_t)(off + len)); /* the whole run is reported written */
        assert_int_equal(pread(fd, back + off, len, (off_t)off), (ssize_t)len);
        assert_memory_equal(back + off, body + off, len);
    }
    assert_int_equal(sink_finish(s, hex), 0);
    assert_string_equal(hex, "untouched"); /* no hash */
    assert_true(w.in_run);
    assert_true(w.in_file);
    close(fd);
    free(body);
    free(back);
}

static void ranged_full_disk_is_enospc_at_sync(void **state)
{
    (void)state;
    size_t size = 3 * SINK_BUF_SIZE;
    unsigned char *body = random_body(size);
    int fd = open("/dev/full", O_WRONLY);
    assert_true(fd >= 0);
    struct ranged_seen w = {.fd = -1, .body = body};
    struct sink *s = sink_new_ranged(fd, NULL, &w);
    assert_non_null(s);
    assert_int_equal(sink_seek(s, 5 * SINK_BUF_SIZE, (int64_t)size), 0);
    int rc = send_body(s, body, size);
    assert_true(rc == 0 || rc == -ENOSPC);
    assert_int_equal(sink_sync(s), -ENOSPC);
    assert_int_equal(sink_seek(s, 0, 10), -ENOSPC); /* kept: the next run fails too */
    sink_abort(s);
    close(fd);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_body_on_the_callers_thread),
        cmocka_unit_test(large_body_through_the_threads),
        cmocka_unit_test(present_part_is_hashed_not_written),
        cmocka_unit_test(wrong_expectation_is_ebadmsg),
        cmocka_unit_test(full_disk_is_enospc),
        cmocka_unit_test(failed_write_in_the_middle_stops_everything),
        cmocka_unit_test(abort_stops_a_running_sink),
        cmocka_unit_test(ranged_runs_at_their_offsets),
        cmocka_unit_test(ranged_full_disk_is_enospc_at_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
