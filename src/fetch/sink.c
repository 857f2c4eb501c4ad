/*
 * sink: a body written at increasing offsets and hashed in order, off the receiving thread
 * (see sink.h for the contract).
 *
 * Threads and what each owns:
 *   - the receiving thread (the caller of sink_write / sink_flush / sink_finish / sink_abort):
 *     the buffer being filled (bufs[produced % SINK_BUFS]), next_off, threaded.
 *     It publishes a buffer by incrementing `produced` under mu.
 *   - the writer thread: pwrites published buffers in order, owns `written` and calls
 *     on_written; increments `wrote` under mu when done with a buffer.
 *   - the hasher thread (none when the sink has no hash): hash_update of published buffers in
 *     order, owns `hash` until it is joined; increments `hashed` under mu.
 *   A buffer's bytes, length and offset are set by the receiving thread before `produced`
 *   moves past it and read by the workers only after they saw that under mu; the receiver
 *   fills it again only after both `wrote` and `hashed` moved past it (seen under mu).
 *   `produced`, `wrote`, `hashed` and `stop` are under mu; `err` is atomic (the receiver
 *   checks it on every piece without the lock).
 * Until SINK_BUF_SIZE bytes went through the sink, and more are to come, there are no threads:
 * the receiving thread writes and hashes each flushed buffer itself (`threaded` false), so small
 * bodies (a reader's one chunk) cost no thread start.
 * sink_seek moves the offset of the next bytes once the workers caught up (sink_sync), so the
 * fields the writer reads (length, reserved) change only while it waits under mu.
 */
#include "upstreamfs/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct sink_buf {
    char *data;
    size_t len;
    int64_t off;
};

struct sink {
    int fd;
    struct hash_ctx *hash;
    sink_written_fn on_written;
    void *arg;

    /* the receiving thread's */
    int64_t next_off; /* offset of the buffer being filled */
    int64_t fed;      /* bytes handed over (submitted) since the sink began */
    bool threaded;

    /* the writer's (the receiver's while not threaded) */
    int64_t written;
    int64_t present;  /* the body's bytes in the file before it began: not written again */
    int64_t length;   /* where the bytes announced end (an offset in the file), -1 unknown */
    int64_t reserved; /* disk reserved up to here (fallocate) */

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* writer, hasher: produced moved, or stop */
    pthread_cond_t free_cv; /* receiver: wrote or hashed moved, or err */
    uint64_t produced, wrote, hashed;
    bool stop;  /* finish: the workers end once they caught up */
    bool abort; /* abort: the workers end now */
    atomic_int err;
    pthread_t writer_th, hasher_th;

    size_t bufsize; /* SINK_BUF_SIZE, or SINK_RANGED_BUF_SIZE for a ranged sink */
    struct sink_buf bufs[SINK_BUFS];
};

struct sink *sink_new(int fd, int64_t present, int64_t length, struct hash_ctx *hash,
                      sink_written_fn on_written, void *arg)
{
    struct sink *s = calloc(1, sizeof(*s));
    if (!s) {
        hash_abort(hash);
        return NULL;
    }
    s->fd = fd;
    s->hash = hash;
    s->on_written = on_written;
    s->arg = arg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->free_cv, NULL);
    atomic_init(&s->err, 0);
    s->length = length;
    s->present = s->written = s->reserved = present > 0 ? present : 0;
    s->bufsize = SINK_BUF_SIZE;
    return s;
}

struct sink *sink_new_ranged(int fd, sink_written_fn on_written, void *arg)
{
    struct sink *s = sink_new(fd, 0, -1, NULL, on_written, arg);
    if (s)
        s->bufsize = SINK_RANGED_BUF_SIZE;
    return s;
}

static void set_err(struct sink *s, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&s->err, &none, err);
}

/*
 * Reserves the disk for the announced body SINK_RESERVE_AHEAD at a time, ahead of the write
 * ending at end. Only worth it past one buffer; a failure changes nothing but the writes' cost.
 */
static void reserve(struct sink *s, int64_t end)
{
    if (s->length < (int64_t)SINK_BUF_SIZE || end <= s->reserved || s->reserved >= s->length)
        return;
    int64_t n = s->length - s->reserved < SINK_RESERVE_AHEAD ? s->length - s->reserved
                                                              : SINK_RESERVE_AHEAD;
    if (n < end - s->reserved)
        n = end - s->reserved;
    (void)fallocate(s->fd, FALLOC_FL_KEEP_SIZE, (off_t)s->reserved, (off_t)n);
    s->reserved += n;
}

/* Writes b at its offset, less what was present; on success reports the new end. */
static void write_buf(struct sink *s, const struct sink_buf *b)
{
    int64_t end = b->off + (int64_t)b->len;
    size_t done = b->off < s->present ? (size_t)(s->present - b->off) : 0;
    if (atomic_load(&s->err) || end <= s->present)
        return; /* nothing after a failed write: the written bytes stay a prefix */
    reserve(s, end);
    while (done < b->len) {
        ssize_t w = pwrite(s->fd, b->data + done, b->len - done, (off_t)(b->off + (int64_t)done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            set_err(s, w < 0 ? -errno : -EIO);
            return;
        }
        done += (size_t)w;
    }
    s->written = end;
    if (s->on_written)
        s->on_written(s->arg, s->written);
}

/* The body of the writer (hashing false) and hasher (true) threads. */
static void work(struct sink *s, bool hashing)
{
    uint64_t *done = hashing ? &s->hashed : &s->wrote;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (*done == s->produced && !s->stop && !s->abort)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (s->abort || *done == s->produced)
            break;
        const struct sink_buf *b = &s->bufs[*done % SINK_BUFS];
        pthread_mutex_unlock(&s->mu);
        if (hashing)
            hash_update(s->hash, b->data, b->len);
        else
            write_buf(s, b);
        pthread_mutex_lock(&s->mu);
        (*done)++;
        pthread_cond_signal(&s->free_cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *writer_main(void *arg)
{
    work(arg, false);
    return NULL;
}

static void *hasher_main(void *arg)
{
    work(arg, true);
    return NULL;
}

static bool start_threads(struct sink *s)
{
    if (pthread_create(&s->writer_th, NULL, writer_main, s) != 0)
        return false;
    if (s->hash && pthread_create(&s->hasher_th, NULL, hasher_main, s) != 0) {
        pthread_mutex_lock(&s->mu);
        s->abort = true;
        pthread_cond_broadcast(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer_th, NULL);
        s->abort = false; /* the writer is gone: nothing reads it any more */
        return false;
    }
    return true;
}

/* Buffers the workers are not done with yet (mu held); without a hash, the writer's alone. */
static uint64_t busy(const struct sink *s)
{
    uint64_t done = s->hash && s->hashed < s->wrote ? s->hashed : s->wrote;
    return s->produced - done;
}

/* Hands the buffer being filled (non-empty) on and makes the next one ready. 0 or the error. */
static int submit(struct sink *s)
{
    struct sink_buf *b = &s->bufs[s->produced % SINK_BUFS];
    int64_t end = b->off + (int64_t)b->len;
    s->fed += (int64_t)b->len;
    if (!s->threaded && s->fed >= (int64_t)SINK_BUF_SIZE && (s->length < 0 || end < s->length))
        s->threaded = start_threads(s); /* a large body: stays inline when threads fail */
    if (!s->threaded) {
        write_buf(s, b);
        if (s->hash)
            hash_update(s->hash, b->data, b->len);
        b->len = 0;
        b->off = end;
        s->next_off = end;
        return atomic_load(&s->err);
    }
    pthread_mutex_lock(&s->mu);
    s->produced++;
    pthread_cond_broadcast(&s->work_cv);
    while (busy(s) >= SINK_BUFS && !atomic_load(&s->err))
        pthread_cond_wait(&s->free_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    int err = atomic_load(&s->err);
    if (err)
        return err; /* the next buffer may still be the workers': leave it */
    s->next_off = end;
    b = &s->bufs[s->produced % SINK_BUFS];
    b->len = 0;
    b->off = end;
    return 0;
}

int sink_write(struct sink *s, const void *data, size_t len)
{
    const char *p = data;
    int err = atomic_load(&s->err);
    while (len > 0 && err == 0) {
        struct sink_buf *b = &s->bufs[s->produced % SINK_BUFS];
        if (!b->data) {
            /* Mapped, not malloc'd: given back whole at the end, never left in a thread's arena. */
            void *m = mmap(NULL, s->bufsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
            if (m == MAP_FAILED)
                return -ENOMEM;
            b->data = m;
        }
        if (b->len == 0)
            b->off = s->next_off;
        size_t n = s->bufsize - b->len < len ? s->bufsize - b->len : len;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        p += n;
        len -= n;
        err = b->len == s->bufsize ? submit(s) : atomic_load(&s->err);
    }
    return err;
}

int sink_flush(struct sink *s)
{
    const struct sink_buf *b = &s->bufs[s->produced % SINK_BUFS];
    int err = atomic_load(&s->err);
    if (err)
        return err;
    return b->len > 0 ? submit(s) : 0;
}

int sink_sync(struct sink *s)
{
    int rc = sink_flush(s);
    if (rc < 0 || !s->threaded)
        return rc;
    pthread_mutex_lock(&s->mu);
    /* after a failed write the writer still moves past every buffer (without writing it) */
    while (busy(s) > 0)
        pthread_cond_wait(&s->free_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->err);
}

int sink_seek(struct sink *s, int64_t off, int64_t length)
{
    int rc = sink_sync(s);
    if (rc < 0)
        return rc;
    /* The workers wait for `produced` to move (under mu): these are theirs to read after. */
    pthread_mutex_lock(&s->mu);
    s->next_off = s->reserved = off;
    s->length = length >= 0 ? off + length : -1;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Ends the threads (after they caught up, or at once when aborting); returns the write error. */
static int stop_threads(struct sink *s, bool abort)
{
    if (s->threaded) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        s->abort = abort;
        pthread_cond_broadcast(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer_th, NULL);
        if (s->hash)
            pthread_join(s->hasher_th, NULL);
        s->threaded = false;
    }
    return atomic_load(&s->err);
}

static void sink_free(struct sink *s)
{
    for (int i = 0; i < SINK_BUFS; i++)
        if (s->bufs[i].data)
            munmap(s->bufs[i].data, s->bufsize);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->free_cv);
    free(s);
}

int sink_finish(struct sink *s, char hex[65])
{
    int rc = sink_flush(s);
    int err = stop_threads(s, rc < 0);
    struct hash_ctx *h = s->hash;
    sink_free(s);
    if (rc == 0)
        rc = err;
    if (rc < 0 || !h) {
        hash_abort(h);
        return rc;
    }
    return hash_end(h, hex);
}

void sink_abort(struct sink *s)
{
    if (!s)
        return;
    stop_threads(s, true);
    hash_abort(s->hash);
    sink_free(s);
}
