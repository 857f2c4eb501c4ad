/*
 * documents: the cached-document helper drivers use for index pages,
 * manifests and metadata (upstream_doc_fetch, include/upstreamfs/upstream.h).
 *
 * Documents are stored in the content-addressed store like any object and
 * recorded as hidden rows (kind NODE_FILE, parent 0, name "doc:<key> <url>")
 * so they survive restarts and stay readable when the remote is down. One
 * fetch per document runs at a time (the single flight below).
 */
#include "engine_i.h"
#include "upstreamfs/clock.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads a whole stored object into memory (documents are capped at UPSTREAM_DOC_MAX). */
static int read_object(struct engine *e, const char *hex, char **body, size_t *len)
{
    int fd = store_open_blob(&e->store, hex);
    if (fd < 0)
        return fd;
    off_t sz = lseek(fd, 0, SEEK_END);
    if (sz < 0 || sz > (off_t)UPSTREAM_DOC_MAX) {
        close(fd);
        return -EFBIG;
    }
    char *b = malloc((size_t)sz + 1);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t r = pread(fd, b, (size_t)sz, 0);
    close(fd);
    if (r != sz) {
        free(b);
        return -EIO;
    }
    b[sz] = '\0';
    *body = b;
    *len = (size_t)sz;
    atomic_fetch_add(&e->doc_reads, 1);
    return 0;
}

void upstream_doc_clear(struct upstream_doc *d)
{
    free(d->body);
    free(d->content_type);
    free(d->www_authenticate);
    memset(d, 0, sizeof(*d));
}

/* Serves the stored copy of a document row; no_body: without reading its bytes (-ENOENT gone). */
static int doc_from_store(struct engine *e, const struct node *n, bool no_body,
                          struct upstream_doc *out)
{
    int64_t sz = no_body ? store_blob_size(&e->store, n->digest) : 0;
    int rc = no_body ? (sz < 0 ? -ENOENT : 0) : read_object(e, n->digest, &out->body, &out->len);
    if (no_body && rc == 0)
        out->len = (size_t)sz;
    if (rc == 0) {
        snprintf(out->sha256, sizeof(out->sha256), "%s", n->digest);
        out->content_type = n->ctype ? strdup(n->ctype) : NULL;
    }
    return rc;
}

/* The outcome of a fetch of a document by another thread (its single flight). */
struct doc_outcome {
    int rc;
    bool stale; /* it served the stored copy because the remote failed */
};

/* Outcome flag of a document's single flight (sf_finish): the answer was the stale copy. */
#define DOC_STALE 1u

/* The request's headers plus the conditional one of the stored copy n (have: there is one). */
static int doc_headers(const struct upstream_doc_req *dr, const struct node *n, bool have,
                       struct curl_slist **hdrs)
{
    char hb[600];
    int rc = 0;
    for (const struct curl_slist *h = dr->headers; h && rc == 0; h = h->next)
        rc = fetch_header_add(hdrs, h->data);
    if (rc == 0 && have && n->etag) {
        snprintf(hb, sizeof(hb), "If-None-Match: %s", n->etag);
        rc = fetch_header_add(hdrs, hb);
    } else if (rc == 0 && have && n->last_modified) {
        snprintf(hb, sizeof(hb), "If-Modified-Since: %s", n->last_modified);
        rc = fetch_header_add(hdrs, hb);
    }
    return rc;
}

/*
 * Asks the remote for the document with the proxy's policies (back-off,
 * credentials, failure accounting: upstream_perform's, counted as a miss).
 * rc as upstream_perform's; r gets the response.
 */
static int doc_ask(struct upstream *u, const struct upstream_doc_req *dr,
                   const struct curl_slist *hdrs, struct fetch_response *r)
{
    struct fetch_request req = {.url = dr->url,
                                .ep = &u->ep,
                                .headers = hdrs,
                                .timeout_ms = FETCH_META_TIMEOUT_MS,
                                .max_body = dr->max ? dr->max : UPSTREAM_DOC_MAX};
    memset(r, 0, sizeof(*r));
    if (upstream_backing_off(u))
        return -EREMOTEIO;
    int rc = upstream_credentials_check(u);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&u->eng->misses, 1);
    return upstream_perform(u, &req, r); /* the proxy's URLs in order (origins.c) */
}

/* Replaces *dst with a copy of src (NULL stays NULL). */
static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
}

/*
 * A 200 answer: checks it against the expected digest, stores it and its
 * row n (name, validators, checked at now), and hands the body to out.
 */
static int doc_store(struct upstream *u, const struct upstream_doc_req *dr, const char *name,
                     struct node *n, int64_t now, struct fetch_response *r,
                     struct upstream_doc *out)
{
    struct engine *e = u->eng;
    char hex[65], repo[4096];
    struct hash_expect ex;
    hash_sha256_hex(r->body, r->body_len, hex);
    if (dr->expect && hash_expect_parse(dr->expect, &ex) == 0 && ex.algo == HASH_SHA256 &&
        strcmp(ex.hex, hex) != 0) {
        struct failure df = {.cause = FAILURE_DIGEST, .status = r->status};
        log_error("%s: content does not match %s; discarded", dr->url, dr->expect);
        upstream_note_failure(u, &df, dr->url);
        return -EIO;
    }
    int rc = store_put_bytes(&e->store, r->body, r->body_len, hex);
    if (rc < 0)
        return rc;
    out->changed = !n->digest[0] || strcmp(n->digest, hex) != 0;
    engine__object_added(e, hex, (int64_t)r->body_len, false);
    set_str(&n->name, name);
    set_str(&n->top, u->cfg.key);
    set_str(&n->path, "");
    set_str(&n->url, dr->url);
    n->parent = 0;
    n->kind = NODE_FILE;
    n->size = (int64_t)r->body_len;
    snprintf(n->digest, sizeof(n->digest), "%s", hex);
    index_scope_repo(dr->url, repo, sizeof(repo));
    set_str(&n->etag, r->etag);
    set_str(&n->last_modified, r->last_modified);
    set_str(&n->ctype, r->content_type);
    n->checked = now;
    n->is_mutable = !dr->immutable;
    n->stale = false;
    pthread_mutex_lock(&e->mu);
    index_put(e->ix, n);
    index_scope_add(e->ix, hex, u->cfg.key, repo); /* the blob scoping rule */
    pthread_mutex_unlock(&e->mu);
    out->body = r->body;
    out->len = r->body_len;
    out->content_type = r->content_type ? strdup(r->content_type) : NULL;
    memcpy(out->sha256, hex, sizeof(hex));
    r->body = NULL;
    return 0;
}

/*
 * The remote's answer r (rc: doc_ask's) as the document: a 304 renews the
 * stored copy n, a 200 is stored, a 404/410 is -ENOENT, another status its
 * errno; a failure of the remote serves the stored copy, stale (have: there
 * is one).
 */
static int doc_answer(struct upstream *u, const struct upstream_doc_req *dr, const char *name,
                      struct node *n, bool have, int64_t now, int rc, struct fetch_response *r,
                      struct upstream_doc *out)
{
    struct engine *e = u->eng;
    if (rc == 0 && r->status == 304 && have) {
        rc = doc_from_store(e, n, dr->no_body, out);
        if (rc == 0) {
            n->checked = now;
            n->stale = false;
            pthread_mutex_lock(&e->mu);
            index_put(e->ix, n);
            pthread_mutex_unlock(&e->mu);
        }
    } else if (rc == 0 && r->status == 200) {
        rc = doc_store(u, dr, name, n, now, r, out);
    } else if (rc == 0 && (r->status == 404 || r->status == 410)) {
        rc = -ENOENT;
    } else if (rc == 0) {
        if (r->status == 401 || r->status == 403)
            out->www_authenticate = r->www_authenticate ? strdup(r->www_authenticate) : NULL;
        rc = failure_status_errno(r->status);
    }
    if (rc == -EREMOTEIO && have && doc_from_store(e, n, dr->no_body, out) == 0) {
        /* stale-if-error: the last good copy beats no answer. */
        out->stale = true;
        atomic_fetch_add(&e->stale_serves, 1);
        upstream_note_stale(u);
        rc = 0;
    }
    return rc;
}

/*
 * One document: the stored copy while it is fresh, else the remote.
 * leader: a fetch of the same document by another thread that ended while
 * this one waited, or NULL; when it succeeded its stored copy is taken
 * whatever its age (it is newer than this request), stale when it was.
 */
static int doc_fetch(struct upstream *u, const struct upstream_doc_req *dr, const char *name,
                     const struct doc_outcome *leader, struct upstream_doc *out)
{
    struct engine *e = u->eng;
    struct node n = {0};
    bool have = false;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->mu);
    int rc = index_child(e->ix, 0, name, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc == 0 && n.digest[0])
        have = true;
    else if (rc != 0)
        memset(&n, 0, sizeof(n));
    int64_t now = engine__now();
    bool joined = leader && leader->rc == 0;
    if (have &&
        (joined || dr->immutable || u->cfg.offline || now < n.checked + u->cfg.metadata_ttl)) {
        if (doc_from_store(e, &n, dr->no_body, out) == 0) {
            out->stale = joined && leader->stale;
            atomic_fetch_add(out->stale ? &e->stale_serves : &e->hits, 1);
            node_clear(&n);
            return 0;
        }
        have = false;
    }
    if (u->cfg.offline) {
        node_clear(&n);
        return -ENETUNREACH;
    }
    struct curl_slist *hdrs = NULL;
    struct fetch_response r;
    memset(&r, 0, sizeof(r));
    rc = doc_headers(dr, &n, have, &hdrs);
    if (rc == 0) {
        rc = doc_ask(u, dr, hdrs, &r);
        rc = doc_answer(u, dr, name, &n, have, now, rc, &r, out);
    }
    curl_slist_free_all(hdrs);
    fetch_response_clear(&r);
    node_clear(&n);
    return rc;
}

/*
 * Whether the document has a stored copy that is past its TTL (so a caller
 * may be answered with it while the remote is asked: UPSTREAM_STALE_WAIT_MS).
 */
static bool doc_has_stale_copy(struct upstream *u, const struct upstream_doc_req *dr,
                               const char *name)
{
    struct engine *e = u->eng;
    struct node n;
    if (dr->immutable || u->cfg.offline)
        return false;
    pthread_mutex_lock(&e->mu);
    int rc = index_child(e->ix, 0, name, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return false;
    bool stale = n.digest[0] && engine__now() >= n.checked + u->cfg.metadata_ttl &&
                 store_blob_size(&e->store, n.digest) >= 0;
    node_clear(&n);
    return stale;
}

/* A revalidation that outlives the caller which started it (its own copy of the request). */
struct doc_bg {
    struct upstream *u;
    struct sf_call *c; /* the document's flight, which this thread leads */
    struct upstream_doc_req dr;
    char *url, *expect, *lists;
    struct curl_slist *headers;
};

static void doc_bg_free(struct doc_bg *b)
{
    curl_slist_free_all(b->headers);
    free(b->url);
    free(b->expect);
    free(b->lists);
    free(b);
}

/* A fetch that brought new bytes of a document listing a directory: the removals check. */
static void doc_changed(struct upstream *u, const struct upstream_doc_req *dr, int rc, bool changed)
{
    if (rc == 0 && changed && dr->lists)
        engine__removals_check(u, dr->lists);
}

static void *doc_bg_main(void *arg)
{
    struct doc_bg *b = arg;
    struct engine *e = b->u->eng;
    struct upstream_doc d;
    int rc = doc_fetch(b->u, &b->dr, sf_key(b->c), NULL, &d);
    bool stale = rc == 0 && d.stale, changed = rc == 0 && d.changed;
    upstream_doc_clear(&d);
    int64_t key = -(int64_t)(intptr_t)b->c; /* a background job key no inode has */
    sf_finish(e->docs, b->c, rc, stale ? DOC_STALE : 0); /* before bg_end: e->docs is alive */
    sf_release(b->c);
    doc_changed(b->u, &b->dr, rc, changed);
    upstream_unref(b->u);
    doc_bg_free(b);
    engine__bg_end(e, key);
    return NULL;
}

/* Runs flight c's fetch on its own thread, which leads c from now; false when it can't. */
static bool doc_bg_start(struct upstream *u, const struct upstream_doc_req *dr, struct sf_call *c)
{
    struct engine *e = u->eng;
    int64_t key = -(int64_t)(intptr_t)c;
    struct doc_bg *b = calloc(1, sizeof(*b));
    if (!b)
        return false;
    b->url = strdup(dr->url);
    b->expect = dr->expect ? strdup(dr->expect) : NULL;
    b->lists = dr->lists ? strdup(dr->lists) : NULL;
    bool ok = b->url && (!dr->expect || b->expect) && (!dr->lists || b->lists);
    for (const struct curl_slist *h = dr->headers; ok && h; h = h->next) {
        struct curl_slist *nl = curl_slist_append(b->headers, h->data);
        ok = nl != NULL;
        if (nl)
            b->headers = nl;
    }
    b->dr = *dr;
    b->dr.url = b->url;
    b->dr.expect = b->expect;
    b->dr.lists = b->lists;
    b->dr.headers = b->headers;
    b->u = u;
    b->c = c;
    pthread_t th;
    if (!ok || !engine__bg_begin(e, key)) {
        doc_bg_free(b);
        return false;
    }
    upstream_ref(u);
    sf_ref(c);
    if (pthread_create(&th, NULL, doc_bg_main, b) != 0) {
        sf_release(c);
        upstream_unref(u);
        engine__bg_end(e, key);
        doc_bg_free(b);
        return false;
    }
    pthread_detach(th);
    return true;
}

/*
 * A caller that joined the document's flight c (and holds a reference of
 * it, released here): waits for its leader, at most until the stale copy is
 * due (have_stale) or the metadata deadline and a margin, then answers.
 */
static int doc_follow(struct upstream *u, const struct upstream_doc_req *dr, const char *name,
                      struct sf_call *c, bool have_stale, struct upstream_doc *out)
{
    long timeout = u->cfg.metadata_timeout > 0 ? u->cfg.metadata_timeout : FETCH_META_TIMEOUT_MS;
    int64_t deadline = have_stale ? sf_started_ms(c) + UPSTREAM_STALE_WAIT_MS
                                  : clock_mono_ms() + timeout + 5000;
    struct doc_outcome leader = {0};
    unsigned flags = 0;
    bool done = sf_wait(c, deadline, &leader.rc, &flags) == 0;
    leader.stale = (flags & DOC_STALE) != 0;
    sf_release(c);
    if (!done && have_stale) {
        /* The remote is slow: the stored copy now, as a leader's stale answer would be. */
        struct doc_outcome copy = {.rc = 0, .stale = true};
        if (doc_fetch(u, dr, name, &copy, out) == 0)
            return 0;
    }
    if (!done || leader.rc == -EACCES)
        return doc_fetch(u, dr, name, NULL, out);
    if (leader.rc != 0) {
        memset(out, 0, sizeof(*out));
        return leader.rc;
    }
    return doc_fetch(u, dr, name, &leader, out); /* (its copy gone: fetches again) */
}

/*
 * Single flight per document (its row name, src/util/single_flight.c): the
 * first caller fetches, the others wait for it (at most the metadata
 * deadline and a margin) and then take what it stored. Its answer stands for
 * theirs, except a refusal (-EACCES: each caller's credentials and challenge
 * are its own) or a fetch that outlived the wait: those callers ask for
 * themselves.
 *
 * Bounded waits (docs/troubleshooting.md, "Deadlines"): when a copy past its
 * TTL is stored, the fetch runs on a thread of its own and no caller waits
 * for it more than UPSTREAM_STALE_WAIT_MS: then the copy is served, marked
 * stale, and the revalidation goes on, updating the copy when it ends.
 */
int upstream_doc_fetch(struct upstream *u, const struct upstream_doc_req *dr,
                       struct upstream_doc *out)
{
    struct engine *e = u->eng;
    char name[4200];
    snprintf(name, sizeof(name), "doc:%s %s", u->cfg.key, dr->url);
    bool have_stale = doc_has_stale_copy(u, dr, name);
    struct sf_call *c;
    int role = sf_join(e->docs, name, NULL, NULL, NULL, &c);
    if (role < 0) /* no memory (or closing): fetch here, alone */
        return doc_fetch(u, dr, name, NULL, out);
    /* A stale copy: the revalidation runs in the background, this caller is its first waiter. */
    if (role == SF_LEADER && have_stale && doc_bg_start(u, dr, c))
        role = SF_JOINED;
    if (role == SF_JOINED)
        return doc_follow(u, dr, name, c, have_stale, out);
    int rc = doc_fetch(u, dr, name, NULL, out); /* the whole deadline */
    sf_finish(e->docs, c, rc, rc == 0 && out->stale ? DOC_STALE : 0);
    sf_release(c);
    doc_changed(u, dr, rc, rc == 0 && out->changed); /* after the flight: it reads the doc */
    return rc;
}

int upstream_doc_body(struct upstream *u, struct upstream_doc *d)
{
    if (d->body)
        return 0;
    return read_object(u->eng, d->sha256, &d->body, &d->len);
}

int upstream_doc_get(struct upstream *u, const char *url, char **body, size_t *len, bool *stale)
{
    struct upstream_doc d;
    struct upstream_doc_req req = {.url = url};
    int rc = upstream_doc_fetch(u, &req, &d);
    if (rc == 0) {
        *body = d.body;
        *len = d.len;
        *stale = d.stale;
        d.body = NULL;
    }
    upstream_doc_clear(&d);
    return rc;
}
