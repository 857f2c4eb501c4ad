/*
 * chunks: which fixed, aligned chunks of a partial object are present
 * (src/fetch/chunks.c). A flight of a large file of known size keeps one
 * (src/fetch/lazy.c): readers fetch the chunks they need by Range, the fill
 * fetches the rest in order, and the map is saved in the index (its table
 * partial: src/index/index_partial.c) so a restart resumes instead of
 * starting again.
 *
 * Each chunk is ABSENT, FETCHING (one request is bringing it: every other
 * reader waits, so each chunk is fetched once) or PRESENT. The last chunk
 * may be short. The functions are pure: the caller holds its own lock.
 */
#ifndef UPSTREAMFS_CHUNKS_H
#define UPSTREAMFS_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The unit of the map: what a cold read at a scattered offset fetches at least (a 4 KiB read
 * costs one ranged GET of 128 KiB). Requests of sequential readers and of the fill span many
 * units (src/fetch/lazy.c), so a small unit costs them no requests.
 */
#define CHUNK_SIZE_DEFAULT (128 * 1024)

enum chunk_state { CHUNK_ABSENT = 0, CHUNK_FETCHING = 1, CHUNK_PRESENT = 2 };

struct chunks {
    int64_t size;  /* the object's length */
    int64_t chunk; /* bytes per chunk */
    int64_t n;     /* number of chunks */
    int64_t present;
    uint8_t *st; /* enum chunk_state per chunk */
};

/* A map of size bytes in chunks of chunk bytes, all absent; NULL on ENOMEM or a bad size. */
struct chunks *chunks_new(int64_t size, int64_t chunk);
void chunks_free(struct chunks *c);

static inline int64_t chunks_index(const struct chunks *c, int64_t off)
{
    return off / c->chunk;
}
/* The byte range [*from, *to) of chunk i. */
void chunks_bounds(const struct chunks *c, int64_t i, int64_t *from, int64_t *to);

void chunks_set(struct chunks *c, int64_t i, enum chunk_state st);
/* Bytes present (the last chunk counted by its real length). */
int64_t chunks_present_bytes(const struct chunks *c);

/*
 * What a read of [off, off + len) needs, len clamped to the object: 1 when every chunk it
 * covers is present, 0 when one is being fetched (wait), or -1 with [*first, *last] the run of
 * absent chunks to fetch in one request: the first absent chunk the read covers and those after
 * it, as long as they are absent and within the read (coalesced; at most max_run chunks).
 */
int chunks_need(const struct chunks *c, int64_t off, int64_t len, int64_t max_run,
                int64_t *first, int64_t *last);

/*
 * How far a reader's request for the absent run [first, last] reaches ahead: a reader that
 * came through the chunk just before first (present or being fetched) reads on, so the run
 * takes the absent chunks after last up to max_run chunks in all; a read at a scattered offset
 * (the chunk before it absent) gets its own run only. Returns the new last.
 */
int64_t chunks_grow(const struct chunks *c, int64_t first, int64_t last, int64_t max_run);

/* The first chunk at or after i that is not present, or c->n. */
int64_t chunks_next_missing(const struct chunks *c, int64_t i);
/* The end (exclusive) of the run of absent chunks starting at i. */
int64_t chunks_absent_run_end(const struct chunks *c, int64_t i);

/*
 * The present chunks as a bitmap (chunk i in bit i % 8 of byte i / 8), *len bytes; malloc'd.
 * chunks_load sets them from such a bitmap: -EINVAL if it does not fit this map.
 */
uint8_t *chunks_save(const struct chunks *c, size_t *len);
int chunks_load(struct chunks *c, const uint8_t *map, size_t len);

#endif
