/*
 * flight: single-flight downloads into the store, readable while they run.
 *
 * A flight downloads one object (one key) into a temp file in its own
 * thread (its sink writes and hashes the body: include/upstreamfs/sink.h). Every opener of the same key while it runs joins the same flight,
 * so N concurrent readers cause one upstream request. Readers read the temp
 * file as bytes arrive: flight_read waits only until the range it wants is
 * written (or the download ends), never for the whole object.
 *
 * When the body is complete it is verified (sha256, and the expectation if
 * any) and committed to the store by the owner's commit callback; only then
 * does the flight count as done. A verification failure, a network error
 * or a short body fails the flight: its readers get -EIO (or the network
 * error), and nothing reaches the store.
 *
 * A reader never reaches the end of unverified content: when the source has
 * an expectation, a read that would include the last byte of the body (or
 * find its end) waits for the verdict and then returns the bytes, or -EIO
 * if they did not match. Reads short of the end stream as bytes arrive, so
 * only the last read request of a reader is held back. Content without an
 * expectation streams to its end as it arrives.
 *
 * Across processes sharing a state dir, a flight holds an flock on
 * STATEDIR/locks/<sha256 of key> while it downloads; a flight in another
 * process that finds the lock taken waits for it, then asks its owner
 * (recheck) whether the object arrived meanwhile, and only downloads if not.
 *
 * A large file of known size (FLIGHT_LAZY_MIN) is a partial object instead
 * (src/fetch/lazy.c): the flight asks for chunks by Range, readers fetch the
 * chunks they read (each chunk once, the single-flight guarantee being about
 * bytes), the fill fetches the rest in order under the fill policy, and the
 * object survives a restart. Its digest is still checked whole before the
 * commit; a random reader may read its end unverified (docs/ARCHITECTURE.md).
 *
 * Invariant: the table lock is never held while waiting on the network; a
 * flight's own lock is held only to update or read its counters.
 */
#ifndef UPSTREAMFS_FLIGHT_H
#define UPSTREAMFS_FLIGHT_H

#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum flight_state {
    FLIGHT_CONNECTING, /* no response yet */
    FLIGHT_STREAMING,  /* 2xx: body arriving */
    FLIGHT_DONE,       /* committed; digest and size set */
    FLIGHT_NOT_MODIFIED,
    FLIGHT_HTTP_ERROR, /* final non-2xx status; status set */
    FLIGHT_FAILED,     /* network or verification error; err set */
    FLIGHT_PARTIAL     /* a partial object left for a later open (no reader, no fill) */
};

/* When a partial object's missing chunks are fetched in order (-o fill=). */
enum flight_fill {
    FLIGHT_FILL_AUTO = 0, /* once a reader reads sequentially, or waits for the whole */
    FLIGHT_FILL_NEVER,    /* only the chunks readers ask for */
    FLIGHT_FILL_EAGER     /* everything, from the open */
};

struct flight;
struct flight_table;
struct index;

/* Files from this length on are fetched as partial objects (chunks by Range). */
#define FLIGHT_LAZY_MIN (16LL * 1024 * 1024)
#define FLIGHT_STREAMS     4
#define FLIGHT_STREAMS_MAX 16
#define FLIGHT_STREAMS_MIN (64LL * 1024 * 1024)

/* What to download. Strings are copied by flight_join. */
struct flight_source {
    const char *url;
    const struct fetch_endpoint *ep; /* copied deeply */
    const struct curl_slist *headers;
    struct hash_expect expect; /* HASH_NONE: only hashed */
    int64_t expect_size;       /* -1 unknown; a different length fails the flight */
    /*
     * The length the listing gave (<= 0 unknown). At or above FLIGHT_LAZY_MIN the object is
     * fetched as a partial object (src/fetch/lazy.c): the open asks for one chunk by Range
     * (the one holding first_offset), readers get the chunks they read, the fill the rest.
     */
    int64_t size_hint;
    int64_t lazy_min; /* 0: FLIGHT_LAZY_MIN; < 0: never a partial object */
    /*
     * < 0: told by the first read (flight_read). A partial object's first request then waits
     * for it (at most 50 ms, src/fetch/lazy.c), and flight_wait_response returns
     * FLIGHT_CONNECTING at once meanwhile: the opener returns and reads.
     */
    int64_t first_offset;
    int64_t first_len; /* with first_offset >= 0: how much the opener reads there (0: unknown) */
    enum flight_fill fill;
    /*
     * The fill of a partial object of streams_min bytes or more uses up to streams concurrent
     * ranged requests (0: FLIGHT_STREAMS, FLIGHT_STREAMS_MIN; streams 1: one sequential stream).
     */
    int streams;
    int64_t streams_min;
    /*
     * Called in the download thread when a 2xx response starts, with its
     * Content-Length (-1 unknown), before any byte is written: the owner can
     * make room on disk. May be NULL.
     */
    void (*on_start)(void *arg, int64_t length);
    /*
     * Called in the download thread once the object is in the store (hex is
     * its sha256), before readers see FLIGHT_DONE. Must not block on the
     * network. The response carries the final headers (etag, ...).
     */
    void (*on_done)(void *arg, const char *hex, int64_t size, const struct fetch_response *resp);
    /*
     * Called after waiting for another process's download of the same key:
     * returns true and fills hex if the object is in the store now. May be NULL.
     */
    bool (*recheck)(void *arg, char hex[65]);
    /*
     * The first answer refused the credential (401, 403 or 400, no byte of a body yet), or a
     * later ranged request of a partial object was (once for every request refused at the same
     * time, src/fetch/lazy.c): returns true with fresh request headers in *headers (the
     * flight's from then on) to ask once more, in the download thread or a ranged request's,
     * or false to let the status stand. Here, not in the opener, because an open may return
     * before the first answer (first_offset < 0). May be NULL.
     */
    bool (*reauth)(void *arg, long status, struct curl_slist **headers);
    /* Called for every other outcome (status or error), same thread. */
    void (*on_fail)(void *arg, int err, const struct fetch_response *resp);
    /*
     * A request that failed (err, or a status that is no 2xx in resp): the URL to start the
     * download again on (malloc'd; the same content, from its first byte), or NULL to end it.
     * The bytes readers may have read already must come again the same, else the flight fails
     * (-EBADMSG): a file is never made of two URLs' bytes. May be NULL.
     */
    char *(*next_url)(void *arg, const char *url, int err, const struct fetch_response *resp);
    void (*free_arg)(void *arg);
    void *arg;
};

struct flight_table *flight_table_new(struct store *store);
/*
 * Keeps partial objects' maps in ix (its table partial, include/upstreamfs/index.h), whose
 * connection mu serialises (taken with no flight's lock held; a leaf under it). Without it
 * partial objects are not resumed nor counted. Call before the first flight_join.
 */
void flight_table_set_index(struct flight_table *t, struct index *ix, pthread_mutex_t *mu);
/* Cancels running flights and waits for their threads. */
void flight_table_free(struct flight_table *t);

/*
 * Joins the flight for key, starting it from src if none runs. *out holds a
 * reference; release it with flight_release. *started says whether this
 * call started it (useful for counting).
 */
int flight_join(struct flight_table *t, const char *key, const struct flight_source *src,
                struct flight **out, bool *started);
void flight_release(struct flight *f);

/* Whether a flight for key is running now. */
bool flight_table_has(struct flight_table *t, const char *key);

/*
 * A flight of key whose whole body is in but whose commit has not recorded it yet (readers may
 * have reached its end already): waits, at most timeout_ms, until the flight has ended, so
 * what the index says of the file (its digest, cached state) is what its readers read.
 */
void flight_table_settle(struct flight_table *t, const char *key, long timeout_ms);

/*
 * The partial object of key (a flight of it running, or one kept for resumption): 0 with the
 * bytes present and its size, or -ENOENT.
 */
int flight_partial(struct flight_table *t, const char *key, int64_t *present, int64_t *size);

/* The partial objects kept (the index's rows): their bytes present and how many. */
void flight_partials(struct flight_table *t, int64_t *bytes, int64_t *count);
/*
 * Removes partial objects no flight holds (in any process) and unused for min_age_s, oldest
 * first, until want bytes are freed; returns the bytes freed. A data file without a row of
 * that age (a crash between the two) goes too, and a row whose file is gone.
 */
int64_t flight_partials_evict(struct flight_table *t, int64_t want, int min_age_s);
/*
 * At an engine's start, alone on the state dir: imports the map files of an older version
 * (partial/<key>.map) into the index, drops rows without a data file and data files without
 * a row. Returns how many files or rows it removed.
 */
int flight_partials_tidy(struct flight_table *t);

/* Number of flights running now. */
int flight_table_active(struct flight_table *t);

/* Callback a waiter polls to stop waiting (an interrupted FUSE request). */
typedef bool (*flight_cancel_fn)(void *arg);

/*
 * Waits until the response status is known (or the flight ended), or returns
 * FLIGHT_CONNECTING while the flight's first request waits for the first read
 * (flight_source.first_offset < 0). Returns the
 * state; *status gets the HTTP status, *err the error of a failed flight
 * (-EBADMSG: the bytes did not match the expected digest or size).
 * Gives up with -ETIMEDOUT after timeout_ms, -EINTR if cancel says so.
 */
int flight_wait_response(struct flight *f, long timeout_ms, flight_cancel_fn cancel, void *carg,
                         long *status, int *err);

/*
 * Reads up to len bytes at off: waits until they are written, the body ends
 * or the flight fails; with an expectation, a range reaching the end of the
 * body (or past it) waits for the verdict. Returns bytes read (0 at the end),
 * -EIO after a failure (a digest mismatch included), -ETIMEDOUT if no byte
 * arrived for stall_ms, -EINTR if cancelled.
 * buf NULL: waits the same way and returns how many bytes at off may be read now (at most
 * len), unread: the caller splices them from flight_fd and then calls flight_splice_done
 * (when it returned more than 0), which also drops the reference this took (the caller's own
 * may be gone by then); a failed flight gives its file back only after that.
 */
ssize_t flight_read(struct flight *f, void *buf, size_t len, off_t off, long stall_ms,
                    flight_cancel_fn cancel, void *carg);
/* The file the body is written to (valid while the flight is held). */
int flight_fd(struct flight *f);
/* The reply of a flight_read without a buffer has been sent: f may be destroyed now. */
void flight_splice_done(struct flight *f);

/* Waits for the end of the flight; returns its final state. */
int flight_wait_done(struct flight *f, long stall_ms, flight_cancel_fn cancel, void *carg);

/* After FLIGHT_DONE: the committed object's sha256 and size. */
const char *flight_digest(const struct flight *f);
int64_t flight_size(const struct flight *f);
/* Bytes received so far and the expected total (-1 unknown). */
void flight_progress(struct flight *f, int64_t *have, int64_t *total);

#endif
