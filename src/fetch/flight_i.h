/*
 * flight_i.h: a flight's state, shared by src/fetch/flight.c (the table, the
 * whole-body stream, readers' waits) and src/fetch/lazy.c (partial objects:
 * chunks by Range, the fill in order, resumption).
 */
#ifndef UPSTREAMFS_FLIGHT_I_H
#define UPSTREAMFS_FLIGHT_I_H

#include "upstreamfs/chunks.h"
#include "upstreamfs/flight.h"

#include <pthread.h>

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
    int64_t written;  /* bytes in the file in order from 0 (the sink's writer moves it; a partial
                         object's prefix: written and hashed, moved by lazy.c's hash_prefix) */
    int64_t received; /* bytes of this response handed to the sink: the download thread's */
    int64_t replay_end, replayed; /* after a restart on another URL: written then, and how
                                     much of it came again (replay; under mu) */
    int64_t wake_at; /* smallest byte count a reader waits for; INT64_MAX: none */
    int splicing;    /* replies being spliced from fd (flight_read without a buffer) */
    int64_t total;
    int64_t activity; /* bytes written out of order: a sign of life for waiters */
    bool verified;    /* the whole body matched its expectation: its end may be read */
    bool trailed;     /* no digest yet, but the answer sends one after its body (a trailer) */
    char hex[65];

    int fd;
    char *tmp_path;
    bool keep_tmp; /* a partial object kept for resumption: not removed */
    struct hash_ctx *hash; /* until a whole body starts; then the sink's */
    struct sink *sink;     /* a whole body's, from a 2xx response's headers to its end */

    char *url;
    struct fetch_endpoint ep;
    struct curl_slist *headers;
    struct hash_expect expect;
    int64_t expect_size;
    void (*on_done)(void *, const char *, int64_t, const struct fetch_response *);
    void (*on_fail)(void *, int, const struct fetch_response *);
    char *(*next_url)(void *, const char *, int, const struct fetch_response *);
    bool (*recheck)(void *, char *);
    bool (*reauth)(void *, long, struct curl_slist **);
    bool reauthed; /* the first answer refused the credential and reauth was asked (once) */
    void (*on_start)(void *, int64_t);
    bool peer_busy; /* another process is downloading this key; readers keep waiting */
    void (*free_arg)(void *);
    void *arg;

    /* Partial objects (lazy.c); chunks NULL: the body is one stream from byte 0. */
    struct chunks *chunks;
    int64_t lazy_size; /* a partial object of this length is wanted (body_file opens it) */
    enum flight_fill fill;
    bool fill_wanted;   /* a sequential reader, a wait for the whole, or the policy asks */
    int64_t first_offset;
    int64_t first_len; /* the first read's length (0: one byte), told with first_offset */
    bool await_read; /* the opener's first read will tell first_offset (lazy.c's probe waits) */
    int users; /* openers holding a reference (flight_join .. flight_release) */
    int64_t idle_since_ms; /* when users fell to 0 (lazy.c lingers), 0 while used */
    char *etag, *last_modified; /* the validators every ranged answer must repeat */
    bool whole;   /* ranges not honoured: the body streams from byte 0 after all */
    bool changed; /* a ranged answer was of another version of the file: the flight fails */
    char part_key[65]; /* sha256 hex of the key: STATEDIR/partial/<it>, its index row's key */
    int64_t map_saved_ms;
    bool map_dirty; /* a chunk arrived since the map was saved */
    /* The fill's streams (lazy.c): helper threads fetching runs from the prefix on. */
    int streams;
    int64_t streams_min;
    int streams_live; /* helpers running */
    bool streams_stop;
    int stream_err;                  /* the first failure of a stream, and its answer */
    struct fetch_response stream_resp;
    pthread_t stream_th[FLIGHT_STREAMS_MAX];
    int stream_n;
};

struct flight_table {
    struct store *store;
    struct sf_group *calls; /* the flights running, by key */
    /* Where partial objects' maps are kept (flight_table_set_index); NULL: nowhere. */
    struct index *ix;
    pthread_mutex_t *ix_mu;
};

/* flight.c's whole-body stream callbacks (the body written and hashed in order from 0). */
int flight__on_headers(void *arg, const struct fetch_response *r);
int flight__on_data(void *arg, const void *data, size_t len);
bool flight__should_abort(void *arg);
int flight__stated_digest(struct flight *f, const struct fetch_response *r);
void flight__wait_tick(struct flight *f);

/* lazy.c: whether a flight of src becomes a partial object (large, of known size). */
bool lazy__wanted(const struct flight_source *src);
/*
 * Opens (or resumes, from the index's row) the partial file of f's key: sets f->fd,
 * f->tmp_path, f->chunks under f->mu, which the caller does not hold; nothing on failure.
 */
int lazy__open(struct flight *f, int64_t size);
/*
 * Fetches f's body as a partial object: 0 complete (hashed in order), LAZY_PARTIAL (left for
 * a later open), LAZY_WHOLE (ranges not honoured: fetch it whole from 0), or the failure
 * (FLIGHT_ESTOP: a final status, in resp).
 */
#define LAZY_PARTIAL 1
#define LAZY_WHOLE   2
int lazy__run(struct flight *f, struct fetch_response *resp);
/* Removes the partial object's row, and its file (a mismatch, a changed file) unless committed. */
void lazy__drop(struct flight *f, bool data_too);
/* partial.c: takes t's index lock; false (nothing taken) when t keeps no index. */
bool partial__lock(struct flight_table *t);
void partial__unlock(struct flight_table *t);
/*
 * A read of a partial object (f->mu held, also on return): waits until the chunks of
 * [off, off + len) are present, fetching those the fill will not bring soon by Range. 0 when
 * present, -EINPROGRESS when the read waits for the stream in order (flight.c's wait, a
 * sequential reader or a body that is not partial after all), or the failure.
 */
int lazy__wait_range(struct flight *f, int64_t off, int64_t len, long stall_ms,
                     flight_cancel_fn cancel, void *carg);

#endif
