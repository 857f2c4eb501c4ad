/*
 * flight: single-flight downloads (see flight.h for the contract).
 *
 * Design, after CernVM-FS's fetcher: a table maps keys to running flights
 * (the in-process single flight of src/util/single_flight.c, whose calls
 * carry a struct flight and its references). The first joiner starts a
 * thread that streams the body into a temp file while hashing it; later
 * joiners take a reference to the same flight.
 * Readers block on the flight's condition variable until the bytes they want
 * are written, then pread the temp file: its fd stays valid after the commit
 * renames the file into the store. A flight leaves the table when it ends,
 * so the next open after a failure starts a fresh download.
 */
#include "upstreamfs/flight.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/log.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/single_flight.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Internal sentinel: the response was final and not a body we store. */
#define FLIGHT_ESTOP (-10001)

struct flight {
    struct flight_table *t;
    struct sf_call *call; /* its entry in t->calls: key and references (released without t) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum flight_state state;
    long status;
    int err;
    int64_t written;
    int64_t replay_end, replayed; /* after a restart on another URL: written then, and how
                                     much of it came again (replay; under mu) */
    int64_t wake_at; /* smallest byte count a reader waits for; INT64_MAX: none */
    int64_t total;
    bool verified; /* the whole body matched its expectation: its end may be read */
    bool trailed;  /* no digest yet, but the answer sends one after its body (a trailer) */
    char hex[65];

    int fd;
    char *tmp_path;
    struct hash_ctx *hash;

    char *url;
    struct fetch_endpoint ep;
    struct curl_slist *headers;
    struct hash_expect expect;
    int64_t expect_size;
    void (*on_done)(void *, const char *, int64_t, const struct fetch_response *);
    void (*on_fail)(void *, int, const struct fetch_response *);
    char *(*next_url)(void *, const char *, int, const struct fetch_response *);
    bool (*recheck)(void *, char *);
    void (*on_start)(void *, int64_t);
    bool peer_busy; /* another process is downloading this key; readers keep waiting */
    void (*free_arg)(void *);
    void *arg;
};

struct flight_table {
    struct store *store;
    struct sf_group *calls; /* the flights running, by key */
};

struct flight_table *flight_table_new(struct store *store)
{
    struct flight_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->store = store;
    t->calls = sf_group_new();
    if (!t->calls) {
        free(t);
        return NULL;
    }
    return t;
}

void flight_table_free(struct flight_table *t)
{
    if (!t)
        return;
    sf_group_free(t->calls); /* cancels (should_abort) and waits for the running flights */
    free(t);
}

int flight_table_active(struct flight_table *t)
{
    return sf_group_active(t->calls);
}

bool flight_table_has(struct flight_table *t, const char *key)
{
    struct sf_call *c = sf_find(t->calls, key);
    if (!c)
        return false;
    /* A flight that has ended stays in the table until its thread has cleaned up. */
    struct flight *f = sf_data(c);
    pthread_mutex_lock(&f->mu);
    bool found = f->state == FLIGHT_CONNECTING || f->state == FLIGHT_STREAMING;
    pthread_mutex_unlock(&f->mu);
    sf_release(c);
    return found;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void flight_destroy(void *arg)
{
    struct flight *f = arg;
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp_path && f->state != FLIGHT_DONE)
        unlink(f->tmp_path);
    free(f->tmp_path);
    hash_abort(f->hash);
    free(f->url);
    free((char *)f->ep.ca_file);
    free((char *)f->ep.client_cert);
    free((char *)f->ep.client_key);
    free((char *)f->ep.http_proxy);
    free((char *)f->ep.username);
    egress_policy_unref(f->ep.egress);
    secret_free((char *)f->ep.password);
    curl_slist_free_all(f->headers);
    if (f->free_arg)
        f->free_arg(f->arg);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

void flight_release(struct flight *f)
{
    if (f)
        sf_release(f->call); /* the last reference destroys f (flight_destroy) */
}

static void set_state(struct flight *f, enum flight_state st, long status, int err)
{
    pthread_mutex_lock(&f->mu);
    f->state = st;
    f->status = status;
    f->err = err;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static int on_headers(void *arg, const struct fetch_response *r)
{
    struct flight *f = arg;
    if (r->status >= 200 && r->status < 300) {
        struct hash_expect stated;
        /*
         * Content with no digest of its own (a generic file) is checked against the digest
         * the answer states for it (Repr-Digest, e.g. a parent upstreamfs's; docs/SCALE-OUT.md):
         * the same end rule as a digest known before, so no reader reaches the end of bytes
         * that do not match. A malformed statement is a failure, not an unchecked body.
         */
        int drc = f->expect.algo == HASH_NONE && r->repr_digest
                      ? hash_repr_digest_parse(r->repr_digest, &stated)
                      : -ENOENT;
        if (drc == -EINVAL)
            return -EBADMSG;
        pthread_mutex_lock(&f->mu);
        if (drc == 0 && hash_expect_late(f->hash, &stated) == 0)
            f->expect = stated;
        /* A parent streaming what it does not have yet states the digest after the body. */
        f->trailed = f->expect.algo == HASH_NONE && r->repr_digest_trailer;
        f->state = FLIGHT_STREAMING;
        f->status = r->status;
        f->total = r->content_length;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (f->expect_size >= 0 && r->content_length >= 0 && r->content_length != f->expect_size)
            return -EBADMSG;
        if (f->on_start)
            f->on_start(f->arg, r->content_length);
        return 0;
    }
    return FLIGHT_ESTOP;
}

/*
 * After a restart on another URL (restart_on): the bytes it sends again over what was written
 * must be the same (readers may have them); they are hashed, not written. Consumes them from
 * *p and *len.
 */
static int replay(struct flight *f, const char **p, size_t *len)
{
    char buf[16384];
    while (*len && f->replayed < f->replay_end) {
        size_t n = *len < sizeof(buf) ? *len : sizeof(buf);
        if ((int64_t)n > f->replay_end - f->replayed)
            n = (size_t)(f->replay_end - f->replayed);
        if (pread(f->fd, buf, n, (off_t)f->replayed) != (ssize_t)n || memcmp(buf, *p, n) != 0) {
            log_error("download %s: its bytes differ from those already read; discarded",
                      f->url);
            return -EBADMSG;
        }
        hash_update(f->hash, *p, n);
        pthread_mutex_lock(&f->mu); /* progress for readers' stall limit (wait_for) */
        f->replayed += (int64_t)n;
        pthread_mutex_unlock(&f->mu);
        *p += n;
        *len -= n;
    }
    return 0;
}

/*
 * The digest an answer stated in a trailer (fetch.h, repr_digest), checked by hash_end as one
 * stated before the body: only a sha-256 can be (the body was hashed with it alone). A
 * trailer that did not come (an intermediary dropped it) leaves the body unchecked, as any
 * generic download is; a malformed one is a failure.
 */
static int trailer_expect(struct flight *f, const struct fetch_response *r)
{
    struct hash_expect stated;
    int drc = r->repr_digest ? hash_repr_digest_parse(r->repr_digest, &stated) : -ENOENT;
    if (drc == -EINVAL)
        return -EBADMSG;
    if (drc < 0 || stated.algo != HASH_SHA256) {
        log_debug("download %s: no sha-256 in a Repr-Digest trailer; unchecked", f->url);
        return 0;
    }
    int rc = hash_expect_late(f->hash, &stated);
    if (rc == 0) {
        pthread_mutex_lock(&f->mu);
        f->expect = stated;
        pthread_mutex_unlock(&f->mu);
    }
    return rc == -EEXIST ? 0 : rc;
}

static int on_data(void *arg, const void *data, size_t len)
{
    struct flight *f = arg;
    const char *p = data;
    size_t off = 0;
    int rrc = replay(f, &p, &len);
    if (rrc < 0 || !len)
        return rrc;
    data = p;
    if (f->expect_size >= 0 && f->written + (int64_t)len > f->expect_size)
        return -EFBIG; /* longer than the index or manifest said: cut, nothing is kept */
    while (off < len) {
        ssize_t w = pwrite(f->fd, p + off, len - off, (off_t)(f->written + (int64_t)off));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t)w;
    }
    hash_update(f->hash, data, len);
    pthread_mutex_lock(&f->mu);
    f->written += (int64_t)len;
    /* Wake readers only once the bytes one of them waits for are here (set_state always does). */
    if (f->written >= f->wake_at) {
        f->wake_at = INT64_MAX;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static bool should_abort(void *arg)
{
    struct flight *f = arg;
    return sf_group_closing(f->t->calls);
}

/*
 * Takes the cross-process lock of f's key: STATEDIR/locks/<sha256(key)>,
 * which its owner removes, still holding it, when the flight ends
 * (peer_unlock), so the directory holds only the keys in flight. A process
 * that waited on a file its owner has since removed finds, once it holds
 * the lock, that the path no longer names the inode it locked (fstat vs
 * stat), and opens the path again. Returns the lock fd (or -1 when locking
 * is unavailable: the download then simply goes ahead) with its path in
 * path, and sets *waited when another process held it first.
 */
static int peer_lock(struct flight *f, bool *waited, char *path, size_t size)
{
    char dir[4200], hex[65];
    *waited = false;
    snprintf(dir, sizeof(dir), "%s/locks", f->t->store->dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    const char *key = sf_key(f->call);
    hash_sha256_hex(key, strlen(key), hex);
    snprintf(path, size, "%s/%s", dir, hex);
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno != EWOULDBLOCK || should_abort(f)) {
                close(fd);
                return -1;
            }
            if (!*waited) {
                *waited = true;
                pthread_mutex_lock(&f->mu);
                f->peer_busy = true;
                pthread_mutex_unlock(&f->mu);
            }
            usleep(50 * 1000);
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino)
            return fd;
        close(fd); /* its owner removed it while we waited: the path names another lock now */
        if (should_abort(f))
            return -1;
    }
}

/* Ends the lock peer_lock took: removes its file while still holding it, then releases it. */
static void peer_unlock(int fd, const char *path)
{
    if (fd < 0)
        return;
    if (unlink(path) < 0 && errno != ENOENT)
        log_debug("removing lock %s: %s", path, strerror(errno));
    close(fd); /* releases the flock: a waiting process rechecks now */
}

/* The object arrived through another process: serve it from the store. */
static bool adopt_peer_result(struct flight *f)
{
    char hex[65];
    if (!f->recheck || !f->recheck(f->arg, hex))
        return false;
    int fd = store_open_blob(f->t->store, hex);
    if (fd < 0)
        return false;
    off_t size = lseek(fd, 0, SEEK_END);
    struct fetch_response none;
    memset(&none, 0, sizeof(none));
    none.status = 200;
    pthread_mutex_lock(&f->mu);
    close(f->fd);
    unlink(f->tmp_path);
    f->fd = fd;
    f->written = size;
    f->total = size;
    memcpy(f->hex, hex, sizeof(f->hex));
    pthread_mutex_unlock(&f->mu);
    if (f->on_done)
        f->on_done(f->arg, hex, size, &none);
    set_state(f, FLIGHT_DONE, 200, 0);
    return true;
}

/*
 * A failed request (*rc, resp) with a next URL (src->next_url): the download starts again
 * there from its first byte (replay checks what was written). Returns true with the state
 * reset for it.
 */
static bool restart_on(struct flight *f, int *rc, struct fetch_response *resp)
{
    bool failed = *rc < 0 || resp->status < 200 || resp->status >= 300;
    if (!f->next_url || !failed || *rc == -EBADMSG || *rc == -EFBIG || *rc == -ENOSPC ||
        should_abort(f))
        return false;
    char *next = f->next_url(f->arg, f->url, *rc == FLIGHT_ESTOP ? 0 : *rc, resp);
    if (!next)
        return false;
    char was[512], now[512]; /* without query strings: they may carry signatures */
    failure_url_redact(f->url, was, sizeof(was));
    failure_url_redact(next, now, sizeof(now));
    log_info("download %s: failed after %lld bytes; again from %s", was, (long long)f->written,
             now);
    free(f->url);
    f->url = next;
    hash_abort(f->hash);
    f->hash = hash_begin(&f->expect); /* a digest stated by the first URL still binds */
    pthread_mutex_lock(&f->mu);
    f->replayed = 0;
    f->replay_end = f->written;
    pthread_mutex_unlock(&f->mu);
    fetch_response_clear(resp);
    memset(resp, 0, sizeof(*resp));
    *rc = f->hash ? 0 : -ENOMEM;
    return f->hash != NULL;
}

static void *flight_run(void *arg)
{
    struct flight *f = arg;
    struct flight_table *t = f->t;
    struct fetch_response resp;
    bool waited = false;
    char lock_path[4300];
    int lock_fd = peer_lock(f, &waited, lock_path, sizeof(lock_path));
    memset(&resp, 0, sizeof(resp));
    if (waited && adopt_peer_result(f))
        goto out;
    struct fetch_request req = {.url = f->url,
                                .ep = &f->ep,
                                .headers = f->headers,
                                .want_trailers = true,
                                .on_headers = on_headers,
                                .on_data = on_data,
                                .should_abort = should_abort,
                                .arg = f};
    int rc = fetch_perform(&req, &resp);
    while (restart_on(f, &rc, &resp)) {
        req.url = f->url;
        rc = fetch_perform(&req, &resp);
    }
    if (rc == FLIGHT_ESTOP || (rc == 0 && (resp.status < 200 || resp.status >= 300))) {
        enum flight_state st = resp.status == 304 ? FLIGHT_NOT_MODIFIED : FLIGHT_HTTP_ERROR;
        unlink(f->tmp_path); /* no body of this answer is kept */
        if (f->on_fail)
            f->on_fail(f->arg, 0, &resp);
        set_state(f, st, resp.status, 0);
        goto out;
    }
    if (rc == 0 && ((f->expect_size >= 0 && f->written != f->expect_size) ||
                    f->replayed < f->replay_end)) /* the next URL's body was shorter */
        rc = -EBADMSG;
    if (rc == 0 && f->trailed)
        rc = trailer_expect(f, &resp);
    if (rc == 0) {
        char hex[65];
        struct hash_ctx *h = f->hash;
        f->hash = NULL;
        rc = hash_end(h, hex);
        if (rc == -EBADMSG)
            log_error("download %s: content does not match its checksum; discarded", f->url);
        if (rc == 0) {
            /* The verdict: readers held at the end go on now, not after the commit. */
            pthread_mutex_lock(&f->mu);
            f->verified = true;
            pthread_cond_broadcast(&f->cv);
            pthread_mutex_unlock(&f->mu);
        }
        if (rc == 0)
            rc = store_commit(t->store, f->tmp_path, hex);
        if (rc == 0) {
            memcpy(f->hex, hex, sizeof(hex));
            if (f->on_done)
                f->on_done(f->arg, hex, f->written, &resp);
            set_state(f, FLIGHT_DONE, resp.status, 0);
            goto out;
        }
    }
    /* -EBADMSG stays the flight's error: the bytes did not verify (cause digest). */
    /* The cause is logged per proxy, once a minute (src/engine/upstream.c). */
    log_debug("download %s failed: %s", f->url, strerror(-rc));
    /* The cause is on record (the proxy's health, the file's error) before any reader reports it. */
    if (rc != -ENOSPC && f->on_fail)
        f->on_fail(f->arg, rc, &resp);
    /*
     * Readers learn of the failure first; only then is the body given back,
     * so a read that raced with the truncation sees FLIGHT_FAILED when it
     * re-checks (flight_read) instead of a short file. The space matters on
     * a full disk, where the owner's eviction runs next, and a shutdown must
     * not leave the body in tmp/.
     */
    set_state(f, FLIGHT_FAILED, resp.status, rc);
    if (ftruncate(f->fd, 0) < 0)
        log_debug("truncating %s: %s", f->tmp_path, strerror(errno));
    unlink(f->tmp_path);
    if (rc == -ENOSPC && f->on_fail) /* the owner evicts once the body is given back */
        f->on_fail(f->arg, rc, &resp);
out:
    peer_unlock(lock_fd, lock_path);
    fetch_response_clear(&resp);
    /* Leave the table so the next opener starts afresh. t may be freed once this lets
     * flight_table_free see no flight running: f's own reference is dropped without it. */
    sf_finish(t->calls, f->call, f->err, 0);
    flight_release(f);
    return NULL;
}

struct flight_make {
    struct flight_table *t;
    const struct flight_source *src;
};

/* Copies the endpoint (strings, the egress policy's reference) into f. */
static void copy_endpoint(struct flight *f, const struct fetch_endpoint *ep)
{
    if (!ep)
        return;
    f->ep.ca_file = dup_or_null(ep->ca_file);
    f->ep.client_cert = dup_or_null(ep->client_cert);
    f->ep.client_key = dup_or_null(ep->client_key);
    f->ep.http_proxy = dup_or_null(ep->http_proxy);
    f->ep.username = dup_or_null(ep->username);
    f->ep.password = dup_or_null(ep->password);
    f->ep.egress = egress_policy_ref(ep->egress);
    f->ep.max_size = ep->max_size;
}

/* sf_make_fn of a download: a new flight of call c from the source, with its temp file. */
static int flight_make(void *arg, struct sf_call *c, void **data)
{
    const struct flight_make *m = arg;
    const struct flight_source *src = m->src;
    struct flight *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->t = m->t;
    f->call = c;
    f->fd = -1;
    f->total = -1;
    f->wake_at = INT64_MAX;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->url = strdup(src->url);
    copy_endpoint(f, src->ep);
    bool headers_ok = true;
    for (const struct curl_slist *h = src->headers; h && headers_ok; h = h->next)
        headers_ok = fetch_header_add(&f->headers, h->data) == 0;
    f->expect = src->expect;
    f->expect_size = src->expect_size;
    f->on_done = src->on_done;
    f->on_fail = src->on_fail;
    f->next_url = src->next_url;
    f->recheck = src->recheck;
    f->on_start = src->on_start;
    f->arg = src->arg;
    f->hash = hash_begin(&f->expect);
    int rc = !f->url || !f->hash || !headers_ok ? -ENOMEM : 0;
    if (rc == 0)
        rc = store_tmp_create(f->t->store, &f->fd, &f->tmp_path);
    if (rc < 0) {
        flight_destroy(f); /* free_arg is not set yet: the caller keeps arg */
        return rc;
    }
    f->free_arg = src->free_arg;
    *data = f;
    return 0;
}

int flight_join(struct flight_table *t, const char *key, const struct flight_source *src,
                struct flight **out, bool *started)
{
    struct flight_make m = {.t = t, .src = src};
    struct sf_call *c;
    *started = false;
    int role = sf_join(t->calls, key, flight_make, &m, flight_destroy, &c);
    if (role < 0)
        return role;
    struct flight *f = sf_data(c);
    if (role == SF_JOINED) {
        *out = f;
        return 0;
    }
    sf_ref(c); /* the thread's */
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = -pthread_create(&th, &attr, flight_run, f);
    pthread_attr_destroy(&attr);
    if (rc < 0) {
        /* Whoever joined meanwhile sees a failed flight; the caller keeps ownership of arg. */
        f->free_arg = NULL;
        set_state(f, FLIGHT_FAILED, 0, rc);
        sf_finish(t->calls, c, rc, 0);
        sf_release(c);
        sf_release(c);
        return rc;
    }
    *out = f;
    *started = true;
    return 0;
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static long ms_until(const struct timespec *dl)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (dl->tv_sec - now.tv_sec) * 1000 + (dl->tv_nsec - now.tv_nsec) / 1000000;
}

/* Waits on f->cv (f->mu held) for at most 100 ms, so cancellation is noticed promptly. */
static void wait_tick(struct flight *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

/* Conditions a waiter waits for (f->mu held). */
static bool has_response(struct flight *f, const void *arg)
{
    (void)arg;
    return f->state != FLIGHT_CONNECTING;
}

/*
 * Where the body ends, as far as is known while it streams: the announced
 * length, else the expected size, else only that it is not before the last
 * byte written (so a read of verified content of unknown length goes out only
 * once a byte past it has arrived).
 */
static int64_t known_end(const struct flight *f)
{
    if (f->total >= 0)
        return f->total;
    return f->expect_size >= 0 ? f->expect_size : f->written;
}

/*
 * The bytes up to want may be read: they are written and, for content with
 * an expected digest, do not reach the end of the body, or the body matched.
 * A read that reaches the end of such content waits for the verdict, so no
 * reader ever sees the whole of an object, or its EOF, before it matched.
 */
static bool has_range_or_end(struct flight *f, const void *arg)
{
    int64_t want = *(const int64_t *)arg;
    if (f->state == FLIGHT_CONNECTING)
        return false;
    if (f->state != FLIGHT_STREAMING || f->verified) /* verified: the whole body is in */
        return true;
    return f->written >= want &&
           ((f->expect.algo == HASH_NONE && !f->trailed) || want < known_end(f));
}

static bool has_ended(struct flight *f, const void *arg)
{
    (void)arg;
    return f->state != FLIGHT_CONNECTING && f->state != FLIGHT_STREAMING;
}

/*
 * Waits (f->mu held) until ready(f) holds. The deadline is timeout_ms from
 * the last sign of life: a new byte, or another process working on the
 * same key, moves it. Returns 0, -ETIMEDOUT, or -EINTR when cancel says so.
 */
static int wait_for(struct flight *f, bool (*ready)(struct flight *, const void *),
                    const void *rarg, int64_t want, long timeout_ms, flight_cancel_fn cancel,
                    void *carg)
{
    struct timespec dl;
    int64_t seen = f->written + f->replayed; /* bytes sent again after a restart are progress */
    deadline_in(&dl, timeout_ms);
    while (!ready(f, rarg)) {
        if (f->written + f->replayed != seen || f->peer_busy) {
            seen = f->written + f->replayed;
            deadline_in(&dl, timeout_ms);
        }
        if (ms_until(&dl) <= 0)
            return -ETIMEDOUT;
        if (cancel && cancel(carg))
            return -EINTR;
        if (want < f->wake_at)
            f->wake_at = want; /* the byte count this waiter needs */
        wait_tick(f);
    }
    return 0;
}

int flight_wait_response(struct flight *f, long timeout_ms, flight_cancel_fn cancel, void *carg,
                         long *status, int *err)
{
    pthread_mutex_lock(&f->mu);
    int rc = wait_for(f, has_response, NULL, INT64_MAX, timeout_ms, cancel, carg);
    int st = rc < 0 ? rc : (int)f->state;
    if (rc == 0 && status)
        *status = f->status;
    if (rc == 0 && err)
        *err = f->err;
    pthread_mutex_unlock(&f->mu);
    return st;
}

ssize_t flight_read(struct flight *f, void *buf, size_t len, off_t off, long stall_ms,
                    flight_cancel_fn cancel, void *carg)
{
    int64_t want = (int64_t)off + (int64_t)len;
    pthread_mutex_lock(&f->mu);
    /* Verified content of unknown length: wake when a byte past the range arrives. */
    int64_t wake =
        (f->expect.algo != HASH_NONE || f->trailed) && known_end(f) <= want ? want + 1 : want;
    int rc = wait_for(f, has_range_or_end, &want, wake, stall_ms, cancel, carg);
    if (rc == 0 && f->state != FLIGHT_STREAMING && f->state != FLIGHT_DONE)
        rc = f->state == FLIGHT_FAILED && f->err == -ENOSPC ? -ENOSPC : -EIO;
    int64_t avail = f->written - (int64_t)off;
    pthread_mutex_unlock(&f->mu);
    if (rc < 0)
        return rc;
    if (avail <= 0)
        return 0;
    size_t n = (size_t)avail < len ? (size_t)avail : len;
    ssize_t r = pread(f->fd, buf, n, off);
    if (r < 0)
        return -errno;
    /* The body may have been given back after a failure while we read: never pass that on. */
    pthread_mutex_lock(&f->mu);
    bool failed = f->state == FLIGHT_FAILED;
    int err = f->err;
    pthread_mutex_unlock(&f->mu);
    if (failed && (size_t)r < n)
        return err == -ENOSPC ? -ENOSPC : -EIO;
    return r;
}

int flight_wait_done(struct flight *f, long stall_ms, flight_cancel_fn cancel, void *carg)
{
    pthread_mutex_lock(&f->mu);
    int rc = wait_for(f, has_ended, NULL, INT64_MAX, stall_ms, cancel, carg);
    int st = rc < 0 ? rc : (int)f->state;
    pthread_mutex_unlock(&f->mu);
    return st;
}

const char *flight_digest(const struct flight *f)
{
    return f->hex;
}

int64_t flight_size(const struct flight *f)
{
    return f->written;
}

void flight_progress(struct flight *f, int64_t *have, int64_t *total)
{
    pthread_mutex_lock(&f->mu);
    *have = f->written;
    *total = f->total;
    pthread_mutex_unlock(&f->mu);
}
