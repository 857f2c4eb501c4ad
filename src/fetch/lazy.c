/*
 * lazy: a flight of a large file of known size as a partial object
 * (flight.h, FLIGHT_LAZY_MIN; the chunk map is include/upstreamfs/chunks.h).
 *
 * The body lives in STATEDIR/partial/<sha256 of the key>, a sparse file, and
 * its map of present chunks in the index's row of that name (with the
 * validators of the answer the chunks came from; include/upstreamfs/index.h,
 * index_partial), saved at most every LAZY_MAP_SAVE_MS and when the flight
 * ends, so a restart resumes it: only the missing chunks are fetched again.
 * The listing, quota and eviction of the objects kept are src/fetch/partial.c.
 *
 * The flight's thread first asks for the chunks of one read by Range (the
 * probe: those the open's first read covers, else the first missing one; a FUSE
 * open's first read is told by the read itself, which the probe waits for,
 * briefly). Its answer
 * decides: a 206 whose Content-Range names the whole length makes the object
 * partial; a 200 is the whole body, streamed from byte 0 as flight.c always
 * did; a 416 falls back to that whole body with a new request; any other
 * status is the flight's answer. Then the object fills in order while the
 * policy wants it (fill=eager, a sequential reader, a wait for the whole):
 * streams (helper threads: one, or `streams` from `streams_min` on) fetch the
 * runs of missing chunks from the prefix on (each run claimed first, so a
 * reader of one waits for it and no byte is asked for twice), and the flight's
 * thread hashes the present prefix in order from the file (page cache) as its
 * chunks arrive, moving `written`: receiving (a stream), writing (its sink's
 * writer) and hashing never share a thread. With no reader left and no fill
 * wanted it ends, the object kept partial (FLIGHT_PARTIAL).
 *
 * A reader whose range is not present and not next for the fill claims the
 * absent chunks it covers (coalesced into one request) and fetches them in
 * its own thread; every other reader of those chunks waits for them, so each
 * chunk is fetched once. Chunks are small (128 KiB, chunks.h), so a read at a
 * scattered offset costs little; a reader that reads on past chunks already
 * here asks for up to LAZY_GROW_MAX ahead of it (chunks_grow). A reader at the
 * prefix (sequential) waits for the fill instead, with flight.c's end rule: it
 * never reaches the end of content with an expected digest before the whole
 * matched.
 *
 * Every ranged answer must be a 206 of the asked range and the same total,
 * with the validators (ETag, else Last-Modified) of the first: otherwise the
 * file changed under us and the flight fails with -EBADMSG (cause digest),
 * dropping every chunk, so bytes of two versions are never mixed. The digest
 * is computed over the file in order, once the whole is present; only a match
 * is committed (flight.c).
 */
#include "flight_i.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/single_flight.h"
#include "upstreamfs/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LAZY_EWHOLE      (-10003) /* the probe's answer asks for the whole body, new request */
/* Request sizes in bytes (whole chunks, at least one): small chunks (chunks.h), not requests. */
#define LAZY_READ_MAX    (16LL << 20) /* one reader's request coalesces the chunks its read covers */
#define LAZY_GROW_MAX    (1LL << 20)  /* a reader that reads on asks for this much at once */
#define LAZY_SEQ_AHEAD   (1LL << 20)  /* a read this close past the prefix waits for the fill */
#define LAZY_FILL_RUN    (32LL << 20) /* one request of the fill claims */
#define LAZY_STREAM_RUN  (8LL << 20)  /* one request of a parallel fill's helper claims */
#define LAZY_MAP_SAVE_MS 200
#define FILL_FETCH       3 /* fill_next: fetch the run at the prefix */
#define LAZY_LINGER_MS   3000 /* a flight with no reader waits this long for the next open */
#define LAZY_PROBE_WAIT  50 /* the probe waits this long for an opener's first read */

/*
 * One ranged request: the bytes [pos, end) of f, written as they come through a ranged sink
 * (include/upstreamfs/sink.h): copied into large buffers on the receiving thread, written by
 * the sink's writer, whose reports (lazy_written) mark the chunks present. A helper of the
 * parallel fill keeps one lazy_req and its sink for all its requests.
 */
struct lazy_req {
    struct flight *f;
    int64_t pos, end;  /* the receiving thread's */
    struct sink *sink; /* a helper's own, else made for the request (fetch_range) */
    int64_t wrote_to;  /* the writer's: the request's bytes are in the file up to here */
    int64_t mark;      /* the writer's: the chunk starting here is the next to mark present */
    bool probe;        /* the first answer: decides the object's mode */
    bool discard;      /* a resumption's probe of one byte: only its headers matter */
};

/* The chunks of c that bytes spans (at least one). */
static int64_t run_of(const struct chunks *c, int64_t bytes)
{
    return bytes / c->chunk > 0 ? bytes / c->chunk : 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool lazy__wanted(const struct flight_source *src)
{
    int64_t min = src->lazy_min > 0 ? src->lazy_min : FLIGHT_LAZY_MIN;
    return src->lazy_min >= 0 && src->size_hint >= min;
}

/*
 * The chunks of key's row in the index (and its validators), if it fits size and has a
 * validator to check a resumption against; else all absent. NULL on ENOMEM.
 */
static struct chunks *map_load(struct flight *f, const char *key, int64_t size, char **etag,
                               char **last_modified)
{
    struct index_partial p;
    struct chunks *c = chunks_new(size, CHUNK_SIZE_DEFAULT);
    if (!c || !partial__lock(f->t))
        return c;
    int rc = index_partial_get(f->t->ix, key, &p);
    partial__unlock(f->t);
    if (rc < 0)
        return c;
    if (p.size == size && p.chunk == c->chunk && (p.etag || p.last_modified) &&
        chunks_load(c, p.map, p.map_len) == 0) {
        *etag = p.etag;
        *last_modified = p.last_modified;
        p.etag = p.last_modified = NULL;
        log_debug("resuming %s: %lld of %lld bytes present", f->url,
                  (long long)chunks_present_bytes(c), (long long)size);
    } else { /* another object's map: chunks_load may have set some */
        chunks_free(c);
        c = chunks_new(size, CHUNK_SIZE_DEFAULT);
    }
    index_partial_clear(&p);
    return c;
}

int lazy__open(struct flight *f, int64_t size)
{
    char dir[4200], key[65], *path = NULL, *etag = NULL, *lm = NULL;
    snprintf(dir, sizeof(dir), "%s/partial", f->t->store->dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    const char *name = sf_key(f->call);
    hash_sha256_hex(name, strlen(name), key);
    if (asprintf(&path, "%s/%s", dir, key) < 0)
        return -ENOMEM;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int rc = -errno;
        free(path);
        return rc;
    }
    struct chunks *c = map_load(f, key, size, &etag, &lm);
    if (!c) {
        close(fd);
        free(path);
        return -ENOMEM;
    }
    pthread_mutex_lock(&f->mu); /* readers look at the chunks from now on */
    memcpy(f->part_key, key, sizeof(key));
    f->tmp_path = path;
    f->fd = fd;
    f->chunks = c;
    f->etag = etag;
    f->last_modified = lm;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/*
 * Saves f's map in the index (one UPSERT under the index's lock, taken without f->mu). Only
 * the flight's own thread saves or forgets a map, so the two never race.
 */
static void map_save(struct flight *f)
{
    struct index_partial p = {.etag = f->etag, .last_modified = f->last_modified};
    pthread_mutex_lock(&f->mu);
    p.map = f->chunks && f->map_dirty ? chunks_save(f->chunks, &p.map_len) : NULL;
    f->map_dirty = false;
    if (p.map) {
        p.size = f->chunks->size;
        p.chunk = f->chunks->chunk;
        p.present = chunks_present_bytes(f->chunks);
    }
    pthread_mutex_unlock(&f->mu);
    if (!p.map || (!f->etag && !f->last_modified)) { /* nothing to check a resumption against */
        free(p.map);
        return;
    }
    char url[1024];
    failure_url_redact(f->url, url, sizeof(url)); /* a query may carry a signature */
    memcpy(p.key, f->part_key, sizeof(p.key));
    p.name = (char *)sf_key(f->call);
    p.url = url;
    p.updated = (int64_t)time(NULL);
    if (partial__lock(f->t)) {
        int rc = index_partial_save(f->t->ix, &p);
        partial__unlock(f->t);
        if (rc < 0)
            log_debug("saving the chunk map of %s: %s", url, strerror(-rc));
    }
    f->map_saved_ms = now_ms();
    free(p.map);
}

/* Deletes f's row (f->mu not held): the chunks it lists are not to be resumed. */
static void map_forget(struct flight *f)
{
    if (!f->part_key[0] || !partial__lock(f->t))
        return;
    int rc = index_partial_delete(f->t->ix, f->part_key);
    partial__unlock(f->t);
    if (rc < 0)
        log_debug("dropping the chunk map of %s: %s", f->url, strerror(-rc));
}

void lazy__drop(struct flight *f, bool data_too)
{
    map_forget(f);
    if (data_too && f->part_key[0] && f->tmp_path)
        unlink(f->tmp_path);
}

/* Whether v, a validator of a later answer, is the first answer's (NULL both: equal). */
static bool same_validator(const char *first, const char *v)
{
    return (!first && !v) || (first && v && strcmp(first, v) == 0);
}

/*
 * Every chunk absent again, the validators forgotten: the file is not the one the map saw
 * (f->mu held; the caller has forgotten the map first: map_forget).
 */
static void reset_chunks(struct flight *f)
{
    for (int64_t i = 0; i < f->chunks->n; i++)
        chunks_set(f->chunks, i, CHUNK_ABSENT);
    free(f->etag);
    free(f->last_modified);
    f->etag = f->last_modified = NULL;
    if (ftruncate(f->fd, 0) < 0)
        log_debug("truncating %s: %s", f->tmp_path, strerror(errno));
}

/* The probe's answer is not a 206: a 200 is the whole body (Range not honoured), else final. */
static int probe_whole(struct lazy_req *q, const struct fetch_response *r)
{
    struct flight *f = q->f;
    if (r->status >= 200 && r->status < 300) {
        map_forget(f);
        pthread_mutex_lock(&f->mu);
        reset_chunks(f);
        f->whole = true;
        pthread_mutex_unlock(&f->mu);
    }
    return flight__on_headers(f, r); /* FLIGHT_ESTOP for a final status */
}

/* The probe's 206 of the asked range of the listed length: the object is partial. */
static int probe_partial(struct lazy_req *q, const struct fetch_response *r)
{
    struct flight *f = q->f;
    int64_t size = f->chunks->size;
    /* The validators change only here, in the flight's thread: read without f->mu. */
    bool changed = (f->etag || f->last_modified) &&
                   !(f->etag ? same_validator(f->etag, r->etag)
                             : same_validator(f->last_modified, r->last_modified));
    if (changed)
        map_forget(f);
    pthread_mutex_lock(&f->mu);
    if (changed) {
        log_info("%s changed since its partial copy was fetched; starting again", f->url);
        reset_chunks(f);
        for (int64_t i = chunks_index(f->chunks, q->pos);
             !q->discard && i * f->chunks->chunk < q->end; i++)
            chunks_set(f->chunks, i, CHUNK_FETCHING);
    }
    if (flight__stated_digest(f, r) < 0) { /* a 206 states the whole representation's */
        pthread_mutex_unlock(&f->mu);
        return -EBADMSG;
    }
    if (!f->etag && !f->last_modified) {
        f->etag = r->etag ? strdup(r->etag) : NULL;
        f->last_modified = r->last_modified ? strdup(r->last_modified) : NULL;
    }
    f->state = FLIGHT_STREAMING;
    f->status = 200; /* to its readers, the body of the whole file */
    f->total = size;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->on_start)
        f->on_start(f->arg, size);
    return 0;
}

/* The probe's answer (the flight's first): decides how the body comes. */
static int probe_headers(struct lazy_req *q, const struct fetch_response *r)
{
    bool asked = r->range_first == q->pos && r->range_last == q->end - 1 &&
                 r->range_total == q->f->chunks->size;
    if (r->status == 206 && asked)
        return probe_partial(q, r);
    /* 416, or a 206 of another range or length (the listing's size is stale): the whole body */
    if (r->status == 416 || r->status == 206)
        return LAZY_EWHOLE;
    return probe_whole(q, r);
}

/* The headers of a ranged answer: a 206 of exactly [pos, end) of the first answer's file. */
static int lazy_headers(void *arg, const struct fetch_response *r)
{
    struct lazy_req *q = arg;
    struct flight *f = q->f;
    if (q->probe)
        return probe_headers(q, r);
    bool ok = r->status == 206 && r->range_first == q->pos && r->range_last == q->end - 1 &&
              r->range_total == f->chunks->size &&
              (f->etag ? same_validator(f->etag, r->etag)
                       : same_validator(f->last_modified, r->last_modified));
    if (ok)
        return 0;
    log_error("download %s: a ranged answer (status %ld) is not of the file the first one was "
              "(Content-Range, ETag or Last-Modified differ); discarded",
              f->url, r->status);
    pthread_mutex_lock(&f->mu);
    f->changed = true;
    f->err = -EBADMSG; /* what a reader failing now reports (engine__download_failed): digest */
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return -EBADMSG;
}

/*
 * The sink's writer: a request's bytes are in the file up to `written`. The chunks they cover
 * whole are present now (not hashed: the fill hashes the prefix from the file, in order).
 */
static void lazy_written(void *arg, int64_t written)
{
    struct lazy_req *q = arg;
    struct flight *f = q->f;
    bool marked = false;
    pthread_mutex_lock(&f->mu);
    f->activity += written - q->wrote_to; /* a sign of life for waiters */
    q->wrote_to = written;
    while (q->mark < f->chunks->size) {
        int64_t i = chunks_index(f->chunks, q->mark), from, to;
        chunks_bounds(f->chunks, i, &from, &to);
        if (to > written)
            break;
        chunks_set(f->chunks, i, CHUNK_PRESENT);
        q->mark = to;
        marked = true;
    }
    if (marked) {
        f->map_dirty = true;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
}

static int lazy_data(void *arg, const void *data, size_t len)
{
    struct lazy_req *q = arg;
    struct flight *f = q->f;
    if (f->whole) /* the probe's 200: the whole body, in order from 0 */
        return flight__on_data(f, data, len);
    if (q->discard) {
        q->pos += (int64_t)len;
        return q->pos <= q->end ? 0 : -EFBIG;
    }
    if (q->pos + (int64_t)len > q->end)
        return -EFBIG;
    q->pos += (int64_t)len;
    return sink_write(q->sink, data, len);
}

static bool lazy_abort(void *arg)
{
    struct lazy_req *q = arg;
    struct flight *f = q->f;
    /* libcurl's progress callback follows every receive: what it brought goes to the file now,
     * so a reader of those chunks never waits for the next receive (a write error surfaces at
     * the next sink call) */
    if (q->sink && !q->discard && !f->whole)
        (void)sink_flush(q->sink);
    pthread_mutex_lock(&f->mu);
    bool stop = f->changed || f->state == FLIGHT_FAILED || f->streams_stop;
    pthread_mutex_unlock(&f->mu);
    return stop || flight__should_abort(f);
}

/*
 * One ranged GET of [q->pos, q->end), its bytes written (and their chunks marked) before it
 * returns. 0 when it all came, else the failure (a write error first: -ENOSPC).
 */
static int fetch_range(struct lazy_req *q, struct fetch_response *resp)
{
    char range[64];
    bool own_sink = !q->sink && !q->discard;
    memset(resp, 0, sizeof(*resp));
    if (own_sink && !(q->sink = sink_new_ranged(q->f->fd, lazy_written, q)))
        return -ENOMEM;
    int wrc = q->discard ? 0 : sink_seek(q->sink, q->pos, q->end - q->pos);
    if (wrc < 0) {
        sink_abort(own_sink ? q->sink : NULL);
        return wrc;
    }
    q->wrote_to = q->mark = q->pos; /* the writer waits (sink_seek): these are its now */
    snprintf(range, sizeof(range), "%lld-%lld", (long long)q->pos, (long long)q->end - 1);
    struct fetch_request req = {.url = q->f->url,
                                .ep = &q->f->ep,
                                .headers = q->f->headers,
                                .range = range,
                                .on_headers = lazy_headers,
                                .on_data = lazy_data,
                                .should_abort = lazy_abort,
                                .arg = q};
    int rc = fetch_perform(&req, resp);
    if (!q->discard) { /* what came is in the file now, or the write's error says why not */
        char hex[65];
        wrc = own_sink ? sink_finish(q->sink, hex) : sink_sync(q->sink);
        if (own_sink)
            q->sink = NULL;
    }
    if (wrc < 0)
        return wrc;
    if (rc == 0 && !q->f->whole && q->pos != q->end)
        rc = resp->status >= 200 && resp->status < 300 ? -EIO : FLIGHT_ESTOP;
    return rc;
}

/* Chunks [a, b] that are still FETCHING go back to ABSENT (a request that failed). */
static void unclaim(struct flight *f, int64_t a, int64_t b)
{
    for (int64_t i = a; i <= b && i < f->chunks->n; i++)
        if (f->chunks->st[i] == CHUNK_FETCHING)
            chunks_set(f->chunks, i, CHUNK_ABSENT);
    pthread_cond_broadcast(&f->cv);
}

/*
 * An open that does not know where its reader starts (a FUSE open, flight.h first_offset < 0)
 * lets the probe wait for the first read's offset (flight_read sets it), at most
 * LAZY_PROBE_WAIT: a read of the end then costs one ranged GET, not the first chunk's too.
 */
static void await_first_read(struct flight *f)
{
    pthread_mutex_lock(&f->mu);
    int64_t until = now_ms() + LAZY_PROBE_WAIT;
    while (f->await_read) {
        int64_t left = until - now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)left * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    f->await_read = false; /* openers from now on wait for the answer */
    pthread_mutex_unlock(&f->mu);
}

/*
 * The probe: the chunks of the first read when the one at its offset is missing (the absent
 * run from there, as a reader's request), else a resumed object's first byte (only to check
 * its validators: the reader's chunks come next), else the first missing chunk.
 */
static int probe(struct flight *f, struct fetch_response *resp)
{
    struct chunks *c = f->chunks;
    await_first_read(f);
    int64_t r = f->first_offset < c->size ? chunks_index(c, f->first_offset) : c->n;
    bool at_read = r < c->n && c->st[r] != CHUNK_PRESENT;
    int64_t i = at_read ? r : chunks_next_missing(c, 0);
    if (i >= c->n)
        i = c->n - 1; /* all present but not committed: the last is asked again */
    struct lazy_req q = {.f = f, .probe = true};
    if (!at_read && c->present > 0 && c->st[i] != CHUNK_PRESENT) {
        q.discard = true;
        q.end = 1;
        return fetch_range(&q, resp);
    }
    int64_t j = i, from;
    if (at_read) { /* a read across a chunk's end: the next ones too, in the same request */
        int64_t a, b, len = f->first_len > 0 ? f->first_len : 1;
        if (chunks_need(c, f->first_offset, len, run_of(c, LAZY_READ_MAX), &a, &b) < 0 && a == i)
            j = b;
    }
    chunks_bounds(c, i, &q.pos, &q.end);
    chunks_bounds(c, j, &from, &q.end);
    pthread_mutex_lock(&f->mu);
    for (int64_t k = i; k <= j; k++)
        chunks_set(c, k, CHUNK_FETCHING);
    pthread_mutex_unlock(&f->mu);
    int rc = fetch_range(&q, resp);
    pthread_mutex_lock(&f->mu);
    if (!f->whole)
        unclaim(f, i, j);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

#define LAZY_HASH_BUF (1 << 20)

/* Hashes the present chunks at the prefix from the file. 0, or an I/O error. */
static int hash_prefix(struct flight *f)
{
    char *buf = NULL;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int64_t i = chunks_index(f->chunks, f->written), from, to;
        bool present = f->written < f->chunks->size && f->chunks->st[i] == CHUNK_PRESENT;
        chunks_bounds(f->chunks, i, &from, &to);
        /* the present chunks after it, up to a buffer's worth: one pread, not one per chunk */
        while (present && ++i < f->chunks->n && f->chunks->st[i] == CHUNK_PRESENT &&
               to - f->written < LAZY_HASH_BUF)
            chunks_bounds(f->chunks, i, &from, &to);
        pthread_mutex_unlock(&f->mu);
        if (!present || (!buf && !(buf = malloc(LAZY_HASH_BUF)))) {
            rc = present ? -ENOMEM : 0;
            break;
        }
        while (rc == 0 && f->written < to) {
            size_t n = to - f->written < LAZY_HASH_BUF ? (size_t)(to - f->written) : LAZY_HASH_BUF;
            ssize_t r = pread(f->fd, buf, n, (off_t)f->written);
            if (r <= 0) {
                rc = r < 0 ? -errno : -EIO;
                break;
            }
            hash_update(f->hash, buf, (size_t)r);
            pthread_mutex_lock(&f->mu);
            f->written += r;
            if (f->written >= f->wake_at) {
                f->wake_at = INT64_MAX;
                pthread_cond_broadcast(&f->cv);
            }
            pthread_mutex_unlock(&f->mu);
        }
        if (rc < 0)
            break;
    }
    free(buf);
    return rc;
}

/*
 * What the fill does next (f->mu held): FILL_FETCH from the prefix, 0 wait, LAZY_PARTIAL stop
 * (no reader, no fill wanted), or a failure.
 */
static int fill_next(struct flight *f)
{
    if (f->changed)
        return -EBADMSG;
    if (flight__should_abort(f))
        return -ECANCELED;
    int64_t i = chunks_index(f->chunks, f->written);
    if (f->chunks->st[i] != CHUNK_ABSENT)
        return 0; /* a reader is bringing it */
    if (f->fill == FLIGHT_FILL_EAGER || f->fill_wanted)
        return FILL_FETCH;
    if (f->users > 0) {
        f->idle_since_ms = 0;
        return 0;
    }
    if (!f->idle_since_ms)
        f->idle_since_ms = now_ms();
    if (now_ms() - f->idle_since_ms < LAZY_LINGER_MS)
        return 0; /* a tool that opens the file once per read finds the flight still here */
    /* Decided under the lock a joiner takes: it sees the flight ending and starts anew. */
    f->state = FLIGHT_PARTIAL;
    pthread_cond_broadcast(&f->cv);
    return LAZY_PARTIAL;
}

/*
 * A stream of the fill (a helper thread; one, or f->streams for a large object): claims the
 * first run of absent chunks at or after the prefix (at most LAZY_FILL_RUN alone,
 * LAZY_STREAM_RUN among several) and fetches it through its own ranged sink, until none is
 * left, the flight ends or a request fails (its failure is kept for the fill: stream_err).
 * Receiving is this thread's, writing the sink's writer's, hashing the flight's thread's.
 */
static void *stream_run(void *arg)
{
    struct flight *f = arg;
    struct lazy_req q = {.f = f};
    q.sink = sink_new_ranged(f->fd, lazy_written, &q); /* NULL: one per request (fetch_range) */
    pthread_mutex_lock(&f->mu);
    int64_t run = f->stream_n > 1 ? LAZY_STREAM_RUN : LAZY_FILL_RUN;
    while (!f->streams_stop && !f->changed && !flight__should_abort(f)) {
        int64_t i = chunks_index(f->chunks, f->written);
        while (i < f->chunks->n && f->chunks->st[i] != CHUNK_ABSENT)
            i++;
        if (i >= f->chunks->n)
            break;
        int64_t end = chunks_absent_run_end(f->chunks, i), to;
        if (end > i + run_of(f->chunks, run))
            end = i + run_of(f->chunks, run);
        for (int64_t k = i; k < end; k++)
            chunks_set(f->chunks, k, CHUNK_FETCHING);
        chunks_bounds(f->chunks, i, &q.pos, &to);
        chunks_bounds(f->chunks, end - 1, &to, &q.end);
        pthread_mutex_unlock(&f->mu);
        struct fetch_response resp;
        int rc = fetch_range(&q, &resp);
        pthread_mutex_lock(&f->mu);
        unclaim(f, i, end - 1);
        if (rc < 0 && !f->stream_err) { /* the first failure, with its answer: the fill's */
            f->stream_err = rc;
            f->stream_resp = resp;
            break;
        }
        fetch_response_clear(&resp);
        if (rc < 0)
            break;
    }
    pthread_mutex_unlock(&f->mu);
    sink_abort(q.sink); /* every request synced it: nothing is left unwritten */
    pthread_mutex_lock(&f->mu);
    f->streams_live--;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Stops and joins the streams (f->mu not held). */
static void streams_join(struct flight *f)
{
    pthread_mutex_lock(&f->mu);
    f->streams_stop = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->stream_n; i++)
        pthread_join(f->stream_th[i], NULL);
    f->stream_n = 0;
    fetch_response_clear(&f->stream_resp);
}

/*
 * The fill fetches (f->mu held): the streams run (started here when none does: several for an
 * object of streams_min or more). 0 while they do, or the failure that ended them, its
 * answer moved into resp. A full disk ends the fill at once.
 */
static int fill_streams(struct flight *f, struct fetch_response *resp)
{
    int err = f->stream_err;
    if (err < 0 && (f->streams_live == 0 || err == -ENOSPC)) {
        fetch_response_clear(resp);
        *resp = f->stream_resp;
        memset(&f->stream_resp, 0, sizeof(f->stream_resp));
        return err;
    }
    if (f->streams_live > 0)
        return 0;
    for (int i = 0; i < f->stream_n; i++) /* ended with nothing left to claim then */
        pthread_join(f->stream_th[i], NULL);
    f->stream_n = 0;
    int n = f->streams > 1 && f->chunks->size >= f->streams_min ? f->streams : 1;
    while (f->stream_n < n) {
        if (pthread_create(&f->stream_th[f->stream_n], NULL, stream_run, f) != 0)
            break;
        f->stream_n++;
        f->streams_live++;
    }
    return f->stream_n > 0 ? 0 : -EAGAIN;
}

/*
 * The fill: the streams fetch the missing runs from the prefix on, and this thread hashes the
 * prefix in order as its chunks arrive, until the whole is here.
 */
static int fill(struct flight *f, struct fetch_response *resp)
{
    for (;;) {
        int rc = hash_prefix(f);
        if (rc < 0 || f->written >= f->chunks->size)
            return rc;
        pthread_mutex_lock(&f->mu);
        rc = fill_next(f);
        if (rc == FILL_FETCH || (rc == 0 && f->stream_err == -ENOSPC))
            rc = fill_streams(f, resp);
        if (rc == 0)
            flight__wait_tick(f);
        pthread_mutex_unlock(&f->mu);
        if (rc == 0 && now_ms() - f->map_saved_ms >= LAZY_MAP_SAVE_MS)
            map_save(f);
        if (rc != 0)
            return rc;
    }
}

int lazy__run(struct flight *f, struct fetch_response *resp)
{
    int rc = probe(f, resp);
    if (rc == LAZY_EWHOLE) { /* no ranges here: the whole body from byte 0, one stream */
        map_forget(f);
        pthread_mutex_lock(&f->mu);
        reset_chunks(f);
        f->whole = true;
        pthread_mutex_unlock(&f->mu);
        return LAZY_WHOLE;
    }
    pthread_mutex_lock(&f->mu);
    bool changed = f->changed;
    pthread_mutex_unlock(&f->mu);
    if (changed) /* a reader's ranged answer was of another version (it may have cut the probe) */
        return -EBADMSG;
    if (rc < 0 || f->whole || resp->status < 200 || resp->status >= 300)
        return rc;
    rc = fill(f, resp);
    streams_join(f);
    if (rc == LAZY_PARTIAL || (rc < 0 && rc != -EBADMSG && rc != -ENOSPC)) {
        f->keep_tmp = true;
        map_save(f);
    }
    if (rc == 0 && resp->status == 206)
        resp->status = 200;
    return rc;
}

/*
 * Waits (f->mu held) until the chunks of [off, off + len) are present, fetching the absent
 * ones a fill will not bring soon. 0 when they are, -EINPROGRESS when the read is one for the
 * prefix (flight.c waits for the fill, with its end rule), or the failure.
 */
int lazy__wait_range(struct flight *f, int64_t off, int64_t len, long stall_ms,
                     flight_cancel_fn cancel, void *carg)
{
    int64_t seen = -1, deadline = 0;
    for (;;) {
        if (f->whole || (f->state != FLIGHT_STREAMING && f->state != FLIGHT_DONE))
            return -EINPROGRESS; /* flight.c tells what the end was */
        if (f->changed)
            return -EIO;
        if (f->state == FLIGHT_DONE || f->verified)
            return 0;
        if (f->fill != FLIGHT_FILL_NEVER && off <= f->written + LAZY_SEQ_AHEAD) {
            f->fill_wanted = true; /* a sequential reader: the fill brings it, in order */
            pthread_cond_broadcast(&f->cv);
            return -EINPROGRESS;
        }
        int64_t a, b;
        int need = chunks_need(f->chunks, off, len, run_of(f->chunks, LAZY_READ_MAX), &a, &b);
        if (need == 1)
            return 0;
        if (need < 0) {
            /* a scattered read gets its chunks; one that reads on, a run ahead of it too */
            b = chunks_grow(f->chunks, a, b, run_of(f->chunks, LAZY_GROW_MAX));
            for (int64_t i = a; i <= b; i++)
                chunks_set(f->chunks, i, CHUNK_FETCHING);
            struct lazy_req q = {.f = f};
            int64_t to;
            chunks_bounds(f->chunks, a, &q.pos, &to);
            chunks_bounds(f->chunks, b, &to, &q.end);
            struct fetch_response resp;
            pthread_mutex_unlock(&f->mu);
            int rc = fetch_range(&q, &resp);
            fetch_response_clear(&resp);
            pthread_mutex_lock(&f->mu);
            unclaim(f, a, b);
            if (rc < 0)
                return rc == -ECANCELED || rc == FLIGHT_ESTOP || rc == -EBADMSG ? -EIO : rc;
            continue;
        }
        if (f->written + f->activity != seen) {
            seen = f->written + f->activity;
            deadline = now_ms() + stall_ms;
        }
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        if (cancel && cancel(carg))
            return -EINTR;
        flight__wait_tick(f);
    }
}
