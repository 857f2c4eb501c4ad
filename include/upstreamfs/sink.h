/*
 * sink: a download's body, as it arrives, written to a file at increasing offsets and hashed in
 * order, with receiving, writing and hashing on threads of their own.
 *
 * libcurl hands a body over in pieces of at most CURL_MAX_WRITE_SIZE (16 KiB) whatever the
 * receive buffer; writing and hashing each piece on the receiving thread made that one thread
 * the whole cold path (pwrite, sha256 and recv one after the other). The sink copies pieces into
 * large buffers (SINK_BUF_SIZE) on the receiving thread; a full buffer, or what one receive
 * brought (sink_flush), goes to a writer thread, which pwrites it in one call and reports the
 * new end (on_written: readers may read up to it), and to a hasher thread, which hashes the
 * same buffer; the buffer is filled again once both are done with it. A body shorter than one
 * buffer never starts the threads: its flushes write and hash on the receiving thread.
 *
 * A ranged sink (sink_new_ranged) has no hash and no hasher: the ranged requests of a partial
 * object (src/fetch/lazy.c) write their bytes through one, at the offsets sink_seek gives, and
 * the object's prefix is hashed in order by the flight's thread. One sink serves the requests
 * of one receiving thread one after the other, so its buffers and writer are made once.
 *
 * Errors: the first failed write (-ENOSPC, -EIO, ...) is kept; every later sink_write,
 * sink_flush and sink_finish returns it, and nothing more is written. The offsets written are
 * always a contiguous prefix of the body: on_written never reports bytes past a failed write.
 */
#ifndef UPSTREAMFS_SINK_H
#define UPSTREAMFS_SINK_H

#include "upstreamfs/hash.h"

#include <stddef.h>
#include <stdint.h>

#define SINK_BUF_SIZE (1u << 20)
#define SINK_BUFS 4
/*
 * A ranged sink's buffers are smaller: several streams each hold theirs (peak RSS, bench row
 * P10), and a stream receives less at once than a whole body's single stream. Their number
 * stays SINK_BUFS: each receive is flushed, so it is the count that lets a stream go on
 * receiving while its writer is not scheduled (two cost ~10 % of a cold read's wall time).
 */
#define SINK_RANGED_BUF_SIZE (512u << 10)
#define SINK_RESERVE_AHEAD (64 << 20)

struct sink;

/*
 * Called on the thread that wrote them (the writer, or the receiving thread while the sink has
 * no threads) each time the bytes up to the offset `written` are in the file (for sink_new, a
 * count from the start of the body). Never called with a sink lock held, never concurrently
 * with itself, with increasing values between two sink_seek.
 */
typedef void (*sink_written_fn)(void *arg, int64_t written);

/*
 * A sink writing to fd from offset 0 (fd stays the caller's) and hashing into hash, which
 * it takes over (hash_end or hash_abort). NULL on allocation failure (hash is then freed).
 * The first `present` bytes of the body are in the file already (a download started again
 * after a part of it was written): they are hashed, not written, and on_written reports only
 * ends past them.
 * length (-1: unknown) is the announced size of the body: the writer reserves disk space
 * for it ahead of its writes (fallocate, keeping the file's size; SINK_RESERVE_AHEAD at a
 * time, so an announced size never holds more disk than that beyond the bytes that came), and
 * the writes skip the file system's per-block allocation. Where that fails (a full disk, a
 * file system without it) the writes go on as they would have, and a full disk is the error
 * of the write that meets it.
 */
struct sink *sink_new(int fd, int64_t present, int64_t length, struct hash_ctx *hash,
                      sink_written_fn on_written, void *arg);

/*
 * A sink without a hash writing to fd at the offsets sink_seek sets (0 until the first). NULL
 * on allocation failure. sink_finish returns 0 or the write error (hex untouched).
 */
struct sink *sink_new_ranged(int fd, sink_written_fn on_written, void *arg);

/*
 * The receiving thread: the next bytes go at off, length (-1: unknown) of them to come (the
 * disk is reserved for them as for sink_new's length). Waits until what came before is
 * written (sink_sync). 0 or the write error.
 */
int sink_seek(struct sink *s, int64_t off, int64_t length);

/*
 * The receiving thread: hands what is buffered on and waits until the writer (and hasher)
 * have caught up: every byte given is in the file, or the error says why not.
 */
int sink_sync(struct sink *s);

/* The receiving thread: appends len bytes. 0, or the error of a failed write. */
int sink_write(struct sink *s, const void *data, size_t len);

/*
 * The receiving thread: hands what is buffered to the writer now (call it after each receive:
 * the bytes a reader may be waiting for go to the file without waiting for more to come).
 * 0 or the write error.
 */
int sink_flush(struct sink *s);

/*
 * Writes the rest, waits for the writer and the hasher, stops the threads and frees s. Returns
 * 0 with the body's sha256 in hex when its expectation (if any) matched, -EBADMSG when not,
 * or the write error.
 */
int sink_finish(struct sink *s, char hex[65]);

/* Stops the threads without writing what is buffered, and frees s (NULL: nothing). */
void sink_abort(struct sink *s);

#endif
