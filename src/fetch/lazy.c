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
 * status is the flight's answer. Then the thread fills in order while the
 * policy wants it (fill=eager, a sequential reader, a wait for the whole):
 * it hashes the present prefix from the file and fetches each run of missing
 * chunks (at most LAZY_FILL_RUN, all claimed first, so a reader of one waits
 * for it and no byte is asked for twice). With no reader left and no fill wanted it ends, the
 * object kept partial (FLIGHT_PARTIAL).
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

/* One ranged request: the bytes [pos, end) of f, written as they come. */
struct lazy_req {
    struct flight *f;
    int64_t pos, end;
    bool own_thread; /* the flight's thread: bytes at the prefix are hashed on the way */
    bool probe;      /* the first answer: decides the object's mode */
    bool discard;    /* a resumption's probe of one byte: only its headers matter */
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

/* Writes len bytes at off outside the prefix (not hashed: the fill hashes them from the file). */
static int write_at(struct flight *f, const char *p, size_t len, int64_t off)
{
    while (len > 0) {
        ssize_t w = pwrite(f->fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

static int lazy_data(void *arg, const void *data, size_t len)
{
    struct lazy_req *q = arg;
    struct flight *f = q->f;
    const char *p = data;
    if (f->whole) /* the probe's 200: the whole body, in order from 0 */
        return flight__on_data(f, data, len);
    if (q->discard) {
        q->pos += (int64_t)len;
        return q->pos <= q->end ? 0 : -EFBIG;
    }
    if (q->pos + (int64_t)len > q->end)
        return -EFBIG;
    while (len > 0) {
        int64_t i = chunks_index(f->chunks, q->pos), from, to;
        chunks_bounds(f->chunks, i, &from, &to);
        int rc = 0;
        size_t n = (size_t)(to - q->pos) < len ? (size_t)(to - q->pos) : len;
        if (rc == 0 && q->own_thread && q->pos == f->written)
            rc = flight__on_data(f, p, n); /* the prefix grows: written and hashed in order */
        else if (rc == 0 && (rc = write_at(f, p, n, q->pos)) == 0) {
            pthread_mutex_lock(&f->mu);
            f->activity += (int64_t)n;
            pthread_mutex_unlock(&f->mu);
        }
        if (rc < 0)
            return rc;
        q->pos += (int64_t)n;
        p += n;
        len -= n;
        if (q->pos == to) {
            pthread_mutex_lock(&f->mu);
            chunks_set(f->chunks, i, CHUNK_PRESENT);
            f->map_dirty = true;
            pthread_cond_broadcast(&f->cv);
            pthread_mutex_unlock(&f->mu);
        }
    }
    if (q->own_thread && now_ms() - f->map_saved_ms >= LAZY_MAP_SAVE_MS)
        map_save(f);
    return 0;
}

static bool lazy_abort(void *arg)
{
    struct lazy_req *q = arg;
    struct flight *f = q->f;
    pthread_mutex_lock(&f->mu);
    bool stop = f->changed || f->state == FLIGHT_FAILED || f->streams_stop;
    pthread_mutex_unlock(&f->mu);
    return stop || flight__should_abort(f);
}

/* One ranged GET of [q->pos, q->end). 0 when it all came, else the failure. */
static int fetch_range(struct lazy_req *q, struct fetch_response *resp)
{
    char range[64];
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
    struct lazy_req q = {.f = f, .own_thread = true, .probe = true};
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
 * A helper of the parallel fill: claims the first run of absent chunks at or after the prefix
 * (at most LAZY_STREAM_RUN) and fetches it, until none is left, the flight ends or a request
 * fails (the flight's thread then fetches what is left itself).
 */
static void *stream_run(void *arg)
{
    struct flight *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->streams_stop && !f->changed && !flight__should_abort(f)) {
        int64_t i = chunks_index(f->chunks, f->written);
        while (i < f->chunks->n && f->chunks->st[i] != CHUNK_ABSENT)
            i++;
        if (i >= f->chunks->n)
            break;
        int64_t end = chunks_absent_run_end(f->chunks, i), to;
        if (end > i + run_of(f->chunks, LAZY_STREAM_RUN))
            end = i + run_of(f->chunks, LAZY_STREAM_RUN);
        for (int64_t k = i; k < end; k++)
            chunks_set(f->chunks, k, CHUNK_FETCHING);
        struct lazy_req q = {.f = f};
        chunks_bounds(f->chunks, i, &q.pos, &to);
        chunks_bounds(f->chunks, end - 1, &to, &q.end);
        pthread_mutex_unlock(&f->mu);
        struct fetch_response resp;
        int rc = fetch_range(&q, &resp);
        fetch_response_clear(&resp);
        pthread_mutex_lock(&f->mu);
        unclaim(f, i, end - 1);
        if (rc < 0)
            break;
    }
    f->streams_live--;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Starts the helpers of a parallel fill once (f->mu held). */
static void streams_start(struct flight *f)
{
    while (f->stream_n < f->streams) {
        if (pthread_create(&f->stream_th[f->stream_n], NULL, stream_run, f) != 0)
            break;
        f->stream_n++;
        f->streams_live++;
    }
}

/* Stops and joins the helpers (f->mu not held). */
static void streams_join(struct flight *f)
{
    pthread_mutex_lock(&f->mu);
    f->streams_stop = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->stream_n; i++)
        pthread_join(f->stream_th[i], NULL);
    f->stream_n = 0;
}

/*
 * Whether the fill goes in parallel now (f->mu held): a large object, helpers started (or
 * still running). Once they all ended with chunks left, the fill's own stream takes over.
 */
static bool fill_parallel(struct flight *f)
{
    if (f->streams <= 1 || f->chunks->size < f->streams_min)
        return false;
    if (f->stream_n == 0)
        streams_start(f);
    return f->streams_live > 0;
}

/* The fill: the prefix hashed, the missing runs fetched in order, until the whole is here. */
static int fill(struct flight *f, struct fetch_response *resp)
{
    for (;;) {
        int rc = hash_prefix(f);
        if (rc < 0 || f->written >= f->chunks->size)
            return rc;
        pthread_mutex_lock(&f->mu);
        rc = fill_next(f);
        if (rc == FILL_FETCH && fill_parallel(f))
            rc = 0; /* the helpers fetch; this thread hashes what they bring */
        if (rc == 0)
            flight__wait_tick(f);
        /* The run of absent chunks at the prefix, claimed whole: a reader of one waits for it. */
        int64_t first = chunks_index(f->chunks, f->written);
        int64_t run_end = rc == FILL_FETCH ? chunks_absent_run_end(f->chunks, first) : first;
        if (run_end > first + run_of(f->chunks, LAZY_FILL_RUN))
            run_end = first + run_of(f->chunks, LAZY_FILL_RUN);
        for (int64_t i = first; i < run_end; i++)
            chunks_set(f->chunks, i, CHUNK_FETCHING);
        pthread_mutex_unlock(&f->mu);
        if (rc == 0 && now_ms() - f->map_saved_ms >= LAZY_MAP_SAVE_MS)
            map_save(f); /* chunks readers brought */
        if (rc < 0 || rc == LAZY_PARTIAL)
            return rc;
        if (rc == 0)
            continue;
        int64_t from, to;
        chunks_bounds(f->chunks, run_end - 1, &from, &to);
        struct lazy_req q = {.f = f, .pos = f->written, .end = to, .own_thread = true};
        fetch_response_clear(resp);
        rc = fetch_range(&q, resp);
        pthread_mutex_lock(&f->mu);
        unclaim(f, first, run_end - 1);
        bool changed = f->changed;
        pthread_mutex_unlock(&f->mu);
        if (rc < 0)
            return changed ? -EBADMSG : rc;
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
