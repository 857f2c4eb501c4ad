/*
 * flight: single-flight downloads (see flight.h for the contract).
 *
 * Design, after CernVM-FS's fetcher: a table maps keys to running flights
 * (the in-process single flight of src/util/single_flight.c, whose calls
 * carry a struct flight and its references). The first joiner starts a
 * thread that receives the body; its sink (src/fetch/sink.c) writes it into a
 * temp file and hashes it on threads of its own; later joiners take a
 * reference to the same flight. A large file is a partial object instead,
 * fetched by chunk (src/fetch/lazy.c).
 * Readers block on the flight's condition variable until the bytes they want
 * are written, then pread the temp file: its fd stays valid after the commit
 * renames the file into the store. A flight leaves the table when it ends,
 * so the next open after a failure starts a fresh download.
 */
#include "flight_i.h"
#include "upstreamfs/egress.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/log.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/single_flight.h"
#include "upstreamfs/sink.h"

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
    if (f->tmp_path && f->state != FLIGHT_DONE && !f->keep_tmp)
        unlink(f->tmp_path);
    free(f->tmp_path);
    chunks_free(f->chunks);
    free(f->etag);
    free(f->last_modified);
    sink_abort(f->sink);
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
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->users--; /* a partial object's thread ends once no one reads it (lazy.c) */
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
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

/*
 * Content with no digest of its own (a generic file) is checked against the digest the answer
 * states for it (Repr-Digest, e.g. a parent upstreamfs's; docs/SCALE-OUT.md): the same end rule
 * as a digest known before, so no reader reaches the end of bytes that do not match. A
 * malformed statement is a failure (-EBADMSG), not an unchecked body. f->mu held.
 */
int flight__stated_digest(struct flight *f, const struct fetch_response *r)
{
    struct hash_expect stated;
    int drc = f->expect.algo == HASH_NONE && r->repr_digest
                  ? hash_repr_digest_parse(r->repr_digest, &stated)
                  : -ENOENT;
    if (drc == -EINVAL)
        return -EBADMSG;
    if (drc == 0 && hash_expect_late(f->hash, &stated) == 0)
        f->expect = stated;
    return 0;
}

static void on_written(void *arg, int64_t written);

int flight__on_headers(void *arg, const struct fetch_response *r)
{
    struct flight *f = arg;
    if (r->status >= 200 && r->status < 300) {
        pthread_mutex_lock(&f->mu);
        if (flight__stated_digest(f, r) < 0) {
            pthread_mutex_unlock(&f->mu);
            return -EBADMSG;
        }
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
        if (f->sink)
            return -EPROTO; /* one body per flight */
        /* After a restart the bytes up to replay_end are in the file: hashed, not written again. */
        f->sink = sink_new(f->fd, f->replay_end, r->content_length, f->hash, on_written, f);
        f->hash = NULL; /* the sink's now, also when it could not be made */
        return f->sink ? 0 : -ENOMEM;
    }
    return FLIGHT_ESTOP;
}

/* The sink's writer: the bytes up to written are in the temp file. */
static void on_written(void *arg, int64_t written)
{
    struct flight *f = arg;
    pthread_mutex_lock(&f->mu);
    f->written = written;
    /* Wake readers only once the bytes one of them waits for are here (set_state always does). */
    if (f->written >= f->wake_at) {
        f->wake_at = INT64_MAX;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
}

/*
 * After a restart on another URL (restart_on): the bytes it sends again over what was written
 * must be the same (readers may have them). Checks the part of the len bytes at f->received
 * that lies below replay_end; the sink hashes them and does not write them again.
 */
static int replay(struct flight *f, const char *p, size_t len)
{
    char buf[16384];
    int64_t at = f->received;
    while (len && at < f->replay_end) {
        size_t n = len < sizeof(buf) ? len : sizeof(buf);
        if ((int64_t)n > f->replay_end - at)
            n = (size_t)(f->replay_end - at);
        if (pread(f->fd, buf, n, (off_t)at) != (ssize_t)n || memcmp(buf, p, n) != 0) {
            log_error("download %s: its bytes differ from those already read; discarded",
                      f->url);
            return -EBADMSG;
        }
        at += (int64_t)n;
        pthread_mutex_lock(&f->mu); /* progress for readers' stall limit (wait_for) */
        f->replayed = at;
        pthread_mutex_unlock(&f->mu);
        p += n;
        len -= n;
    }
    return 0;
}

/*
 * The digest an answer stated in a trailer (fetch.h, repr_digest), against the body's sha256
 * (hex): only a sha-256 can be checked (the body was hashed with it alone). A trailer that did
 * not come (an intermediary dropped it) leaves the body unchecked, as any generic download is;
 * a malformed or false one is a failure (-EBADMSG).
 */
static int trailer_check(struct flight *f, const struct fetch_response *r, const char *hex)
{
    struct hash_expect stated;
    int drc = r->repr_digest ? hash_repr_digest_parse(r->repr_digest, &stated) : -ENOENT;
    if (drc == -EINVAL)
        return -EBADMSG;
    if (drc < 0 || stated.algo != HASH_SHA256) {
        log_debug("download %s: no sha-256 in a Repr-Digest trailer; unchecked", f->url);
        return 0;
    }
    pthread_mutex_lock(&f->mu);
    f->expect = stated;
    pthread_mutex_unlock(&f->mu);
    return strcmp(hex, stated.hex) == 0 ? 0 : -EBADMSG;
}

int flight__on_data(void *arg, const void *data, size_t len)
{
    struct flight *f = arg;
    if (!f->sink)
        return -EPROTO; /* a body before its headers */
    if (f->expect_size >= 0 && f->received + (int64_t)len > f->expect_size)
        return -EFBIG; /* longer than the index or manifest said: cut, nothing is kept */
    int rc = replay(f, data, len);
    if (rc < 0)
        return rc;
    f->received += (int64_t)len;
    return sink_write(f->sink, data, len);
}

bool flight__should_abort(void *arg)
{
    struct flight *f = arg;
    /*
     * libcurl calls this after each receive has been handed over (and at least once a second
     * when none comes): what it brought goes to the file now, so a reader waiting for it (or
     * arriving later) never waits for the next receive. A write error surfaces at the next
     * sink call.
     */
    if (f->sink)
        (void)sink_flush(f->sink);
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
            if (errno != EWOULDBLOCK || flight__should_abort(f)) {
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
        if (flight__should_abort(f))
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
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp_path && !f->lazy_size) /* a partial object's file is not this flight's yet */
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
        flight__should_abort(f))
        return false;
    char *next = f->next_url(f->arg, f->url, *rc == FLIGHT_ESTOP ? 0 : *rc, resp);
    if (!next)
        return false;
    sink_abort(f->sink); /* its writer ends: what is written stays, the rest comes again */
    f->sink = NULL;
    char was[512], now[512]; /* without query strings: they may carry signatures */
    failure_url_redact(f->url, was, sizeof(was));
    failure_url_redact(next, now, sizeof(now));
    log_info("download %s: failed after %lld bytes; again from %s", was, (long long)f->written,
             now);
    free(f->url);
    f->url = next;
    f->received = 0;
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

/*
 * The whole body in one stream from byte 0 (no Range), on the next URL from its first byte
 * after a failure of the remote: 0 or the failure, as fetch_perform.
 */
static int fetch_whole(struct flight *f, struct fetch_response *resp)
{
    struct fetch_request req = {.url = f->url,
                                .ep = &f->ep,
                                .headers = f->headers,
                                .want_trailers = true,
                                .on_headers = flight__on_headers,
                                .on_data = flight__on_data,
                                .should_abort = flight__should_abort,
                                .arg = f};
    int rc = fetch_perform(&req, resp);
    while (restart_on(f, &rc, resp)) {
        req.url = f->url;
        rc = fetch_perform(&req, resp);
    }
    return rc;
}

/*
 * The file the body goes to, under the key's lock: a large file's partial object (resumed if
 * kept), else (or if that cannot be opened) a temp file. 0 or the failure.
 */
static int body_file(struct flight *f)
{
    if (!f->lazy_size)
        return 0; /* its temp file was made with the flight */
    int rc = lazy__open(f, f->lazy_size); /* without f->mu: it reads the index */
    return rc == 0 ? 0 : store_tmp_create(f->t->store, &f->fd, &f->tmp_path);
}

/* The body, whole or as a partial object (lazy.c): 0 complete, LAZY_PARTIAL, or the failure. */
static int fetch_body_once(struct flight *f, struct fetch_response *resp)
{
    if (!f->chunks)
        return fetch_whole(f, resp);
    int rc = lazy__run(f, resp);
    if (rc == LAZY_WHOLE) { /* lazy__run went back to a whole body from byte 0 */
        fetch_response_clear(resp);
        rc = fetch_whole(f, resp);
    }
    return rc;
}

/*
 * The first answer refused the credential (src->reauth): true with the owner's fresh headers
 * in place, once per flight, to ask again. Nothing of that answer's body was kept.
 */
static bool reauthed(struct flight *f, int rc, const struct fetch_response *resp)
{
    long st = resp->status;
    if (!f->reauth || f->reauthed || (rc != 0 && rc != FLIGHT_ESTOP) ||
        (st != 401 && st != 403 && st != 400) || flight__should_abort(f))
        return false;
    f->reauthed = true;
    pthread_mutex_lock(&f->mu);
    bool answered = f->state != FLIGHT_CONNECTING;
    pthread_mutex_unlock(&f->mu);
    struct curl_slist *h = NULL;
    if (answered || !f->reauth(f->arg, st, &h)) {
        curl_slist_free_all(h);
        return false;
    }
    curl_slist_free_all(f->headers);
    f->headers = h;
    return true;
}

static int fetch_body(struct flight *f, struct fetch_response *resp)
{
    int rc = fetch_body_once(f, resp);
    if (reauthed(f, rc, resp)) {
        fetch_response_clear(resp);
        rc = fetch_body_once(f, resp);
    }
    return rc;
}

/* A complete body: verified, committed, announced. 0, or the failure (-EBADMSG: no match). */
static int finish_body(struct flight *f, const struct fetch_response *resp)
{
    char hex[65];
    int rc;
    if (f->sink) { /* a whole body: the rest written, the hash caught up (or a write error) */
        struct sink *sk = f->sink;
        f->sink = NULL;
        rc = sink_finish(sk, hex);
    } else { /* a partial object's prefix, hashed in order as it grew */
        struct hash_ctx *h = f->hash;
        f->hash = NULL;
        rc = hash_end(h, hex);
    }
    if (rc == 0 && f->trailed)
        rc = trailer_check(f, resp, hex);
    if (rc == -EBADMSG)
        log_error("download %s: content does not match its checksum; discarded", f->url);
    if (rc == 0) {
        /* The verdict: readers held at the end go on now, not after the commit. */
        pthread_mutex_lock(&f->mu);
        f->verified = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        rc = store_commit(f->t->store, f->tmp_path, hex);
    }
    if (rc == 0) {
        lazy__drop(f, false); /* a partial object's map: its data is the stored object now */
        memcpy(f->hex, hex, sizeof(hex));
        if (f->on_done)
            f->on_done(f->arg, hex, f->written, resp);
        set_state(f, FLIGHT_DONE, resp->status, 0);
    }
    return rc;
}

/*
 * A failed download. Readers learn of the failure first; only then is the body given back, so
 * a read that raced with the truncation sees FLIGHT_FAILED when it re-checks (flight_read)
 * instead of a short file. The space matters on a full disk, where the owner's eviction runs
 * next, and a shutdown must not leave the body in tmp/. A partial object that failed on the
 * network (or a shutdown) is kept for the next open to resume; one whose bytes did not verify,
 * or whose file changed, is dropped.
 */
static void finish_failed(struct flight *f, int rc, const struct fetch_response *resp)
{
    /* No write may follow the truncation below: the sink's threads end first. */
    sink_abort(f->sink);
    f->sink = NULL;
    /* -EBADMSG stays the flight's error: the bytes did not verify (cause digest). */
    /* The cause is logged per proxy, once a minute (src/engine/upstream.c). */
    log_debug("download %s failed: %s", f->url, strerror(-rc));
    /* The cause is on record (the proxy's health, the file's error) before any reader reports it. */
    if (rc != -ENOSPC && f->on_fail)
        f->on_fail(f->arg, rc, resp);
    set_state(f, FLIGHT_FAILED, resp->status, rc);
    /* Replies spliced from the file take its pages as they are: they go out before the
     * truncation (no new one starts: the flight has failed). */
    pthread_mutex_lock(&f->mu);
    while (f->splicing > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    if (f->chunks && rc != -EBADMSG && rc != -ENOSPC) {
        f->keep_tmp = true;
    } else {
        if (f->fd >= 0 && ftruncate(f->fd, 0) < 0)
            log_debug("truncating %s: %s", f->tmp_path, strerror(errno));
        if (f->tmp_path)
            unlink(f->tmp_path);
        lazy__drop(f, true);
    }
    if (rc == -ENOSPC && f->on_fail) /* the owner evicts once the body is given back */
        f->on_fail(f->arg, rc, resp);
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
    int rc = body_file(f);
    if (rc == 0)
        rc = fetch_body(f, &resp);
    if (rc == LAZY_PARTIAL) {
        f->keep_tmp = true;
        set_state(f, FLIGHT_PARTIAL, resp.status, 0);
        goto out;
    }
    if (rc == FLIGHT_ESTOP || (rc == 0 && (resp.status < 200 || resp.status >= 300))) {
        sink_abort(f->sink);
        f->sink = NULL;
        enum flight_state st = resp.status == 304 ? FLIGHT_NOT_MODIFIED : FLIGHT_HTTP_ERROR;
        if (!f->chunks || !f->chunks->present) { /* no body of this answer is kept */
            unlink(f->tmp_path);
            lazy__drop(f, true);
        } else
            f->keep_tmp = true; /* a partial object stays: the remote may answer later */
        if (f->on_fail)
            f->on_fail(f->arg, 0, &resp);
        set_state(f, st, resp.status, 0);
        goto out;
    }
    /* The body's length: what the sink was handed, or the partial object's hashed prefix. */
    int64_t got = f->sink ? f->received : f->written;
    if (rc == 0 && ((f->expect_size >= 0 && got != f->expect_size) ||
                    f->replayed < f->replay_end)) /* the next URL's body was shorter */
        rc = -EBADMSG;
    if (rc == 0)
        rc = finish_body(f, &resp);
    if (rc < 0)
        finish_failed(f, rc, &resp);
out:
    peer_unlock(lock_fd, lock_path);
    fetch_response_clear(&resp);
    /* Leave the table so the next opener starts afresh. t may be freed once this lets
     * flight_table_free see no flight running: f's own reference is dropped without it. */
    sf_finish(t->calls, f->call, f->err, 0);
    sf_release(f->call); /* the thread's reference: not a user's (flight_release) */
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
    f->fill = src->fill;
    f->first_offset = src->first_offset > 0 ? src->first_offset : 0;
    f->first_len = src->first_offset >= 0 && src->first_len > 0 ? src->first_len : 0;
    f->streams = src->streams > 0 ? src->streams : FLIGHT_STREAMS;
    if (f->streams > FLIGHT_STREAMS_MAX)
        f->streams = FLIGHT_STREAMS_MAX;
    f->streams_min = src->streams_min > 0 ? src->streams_min : FLIGHT_STREAMS_MIN;
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
    f->recheck = src->recheck;
    f->reauth = src->reauth;
    f->on_start = src->on_start;
    f->next_url = src->next_url;
    f->arg = src->arg;
    f->hash = hash_begin(&f->expect);
    int rc = !f->url || !f->hash || !headers_ok ? -ENOMEM : 0;
    /* A partial object's file is opened by the flight's thread once it holds the key's lock
     * (body_file): another process may be writing it until then. */
    f->lazy_size = lazy__wanted(src) ? src->size_hint : 0;
    f->await_read = f->lazy_size && src->first_offset < 0; /* lazy.c's probe waits for it */
    if (rc == 0 && !f->lazy_size)
        rc = store_tmp_create(f->t->store, &f->fd, &f->tmp_path);
    if (rc < 0) {
        flight_destroy(f); /* free_arg is not set yet: the caller keeps arg */
        return rc;
    }
    f->free_arg = src->free_arg;
    *data = f;
    return 0;
}

/*
 * Joins the call of key as a user: a partial object's flight that is ending for want of users
 * is not joined (its thread leaves the table at once; the next join resumes the object).
 */
static int join_user(struct flight_table *t, const char *key, struct flight_make *m,
                     struct sf_call **c)
{
    for (int tries = 0;; tries++) {
        int role = sf_join(t->calls, key, flight_make, m, flight_destroy, c);
        if (role < 0)
            return role;
        struct flight *f = sf_data(*c);
        pthread_mutex_lock(&f->mu);
        bool ending = f->state == FLIGHT_PARTIAL;
        if (!ending)
            f->users++;
        pthread_mutex_unlock(&f->mu);
        if (!ending || tries >= 200)
            return role;
        sf_release(*c);
        usleep(10 * 1000);
    }
}

int flight_join(struct flight_table *t, const char *key, const struct flight_source *src,
                struct flight **out, bool *started)
{
    struct flight_make m = {.t = t, .src = src};
    struct sf_call *c;
    *started = false;
    int role = join_user(t, key, &m, &c);
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
        f->users--;
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
void flight__wait_tick(struct flight *f)
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

void flight_table_settle(struct flight_table *t, const char *key, long timeout_ms)
{
    struct sf_call *c = sf_find(t->calls, key);
    if (!c)
        return;
    struct flight *f = sf_data(c);
    struct timespec dl;
    deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&f->mu);
    /* the whole body is in (verified, or of its announced length): the commit is under way */
    while (f->state == FLIGHT_STREAMING &&
           (f->verified || (f->total >= 0 && f->written >= f->total)) && ms_until(&dl) > 0)
        flight__wait_tick(f);
    pthread_mutex_unlock(&f->mu);
    sf_release(c);
}

/* Conditions a waiter waits for (f->mu held). */
static bool has_response(struct flight *f, const void *arg)
{
    (void)arg;
    return f->state != FLIGHT_CONNECTING;
}

/* An opener's: the answer, or a flight whose first request waits for the first read. */
static bool has_response_or_awaits_read(struct flight *f, const void *arg)
{
    return f->await_read || has_response(f, arg);
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
    /* bytes written out of order or sent again after a restart are progress too */
    int64_t seen = f->written + f->activity + f->replayed;
    deadline_in(&dl, timeout_ms);
    while (!ready(f, rarg)) {
        if (f->written + f->activity + f->replayed != seen || f->peer_busy) {
            seen = f->written + f->activity + f->replayed;
            deadline_in(&dl, timeout_ms);
        }
        if (ms_until(&dl) <= 0)
            return -ETIMEDOUT;
        if (cancel && cancel(carg))
            return -EINTR;
        if (want < f->wake_at)
            f->wake_at = want; /* the byte count this waiter needs */
        flight__wait_tick(f);
    }
    return 0;
}

int flight_wait_response(struct flight *f, long timeout_ms, flight_cancel_fn cancel, void *carg,
                         long *status, int *err)
{
    pthread_mutex_lock(&f->mu);
    int rc = wait_for(f, has_response_or_awaits_read, NULL, INT64_MAX, timeout_ms, cancel, carg);
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
    if (f->await_read) { /* the first read: the probe asks for its chunk (lazy.c) */
        f->first_offset = (int64_t)off;
        f->first_len = (int64_t)len;
        f->await_read = false;
        pthread_cond_broadcast(&f->cv);
    }
    /* The answer first: whether the body is a partial object decides how this read waits. */
    int rc = wait_for(f, has_response, NULL, INT64_MAX, stall_ms, cancel, carg);
    if (rc < 0) {
        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    /* A partial object: the chunks the range needs, unless the read waits for the stream. */
    rc = f->chunks ? lazy__wait_range(f, off, (int64_t)len, stall_ms, cancel, carg)
                   : -EINPROGRESS;
    int64_t avail = rc == 0 ? f->total - (int64_t)off : 0;
    if (rc == -EINPROGRESS) {
        /* Verified content of unknown length: wake when a byte past the range arrives. */
        int64_t wake =
            (f->expect.algo != HASH_NONE || f->trailed) && known_end(f) <= want ? want + 1 : want;
        rc = wait_for(f, has_range_or_end, &want, wake, stall_ms, cancel, carg);
        if (rc == 0 && f->state != FLIGHT_STREAMING && f->state != FLIGHT_DONE)
            rc = f->state == FLIGHT_FAILED && f->err == -ENOSPC ? -ENOSPC : -EIO;
        avail = f->written - (int64_t)off;
    }
    bool splice = !buf && rc == 0 && avail > 0;
    if (splice)
        f->splicing++; /* its reply is spliced from the file: not truncated until it is sent */
    pthread_mutex_unlock(&f->mu);
    if (splice) /* and f stays until then, though the reader's file be released first */
        sf_ref(f->call);
    if (rc < 0)
        return rc;
    if (avail <= 0)
        return 0;
    size_t n = (size_t)avail < len ? (size_t)avail : len;
    if (!buf)
        return (ssize_t)n; /* the caller splices them from the file */
    ssize_t r = pread(f->fd, buf, n, off);
    if (r < 0)
        return -errno;
    /* The body may have been given back after a failure while we read: never pass that on. */
    pthread_mutex_lock(&f->mu);
    bool failed = f->state == FLIGHT_FAILED;
    int err = f->err;
    pthread_mutex_unlock(&f->mu);
    if (failed && ((size_t)r < n || f->changed))
        return err == -ENOSPC ? -ENOSPC : -EIO;
    return r;
}

int flight_wait_done(struct flight *f, long stall_ms, flight_cancel_fn cancel, void *carg)
{
    pthread_mutex_lock(&f->mu);
    if (stall_ms > 0) { /* whoever waits for the end wants every byte (0: only a look) */
        f->fill_wanted = true;
        pthread_cond_broadcast(&f->cv);
    }
    int rc = wait_for(f, has_ended, NULL, INT64_MAX, stall_ms, cancel, carg);
    int st = rc < 0 ? rc : (int)f->state;
    pthread_mutex_unlock(&f->mu);
    return st;
}

void flight_splice_done(struct flight *f)
{
    pthread_mutex_lock(&f->mu);
    if (--f->splicing == 0)
        pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    sf_release(f->call); /* flight_read's reference */
}

int flight_fd(struct flight *f)
{
    pthread_mutex_lock(&f->mu);
    int fd = f->fd;
    pthread_mutex_unlock(&f->mu);
    return fd;
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
