/*
 * chunks: the present/fetching map of a partial object (see chunks.h).
 */
#include "upstreamfs/chunks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct chunks *chunks_new(int64_t size, int64_t chunk)
{
    if (size <= 0 || chunk <= 0)
        return NULL;
    struct chunks *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->size = size;
    c->chunk = chunk;
    c->n = (size + chunk - 1) / chunk;
    c->st = calloc((size_t)c->n, 1);
    if (!c->st) {
        free(c);
        return NULL;
    }
    return c;
}

void chunks_free(struct chunks *c)
{
    if (c) {
        free(c->st);
        free(c);
    }
}

void chunks_bounds(const struct chunks *c, int64_t i, int64_t *from, int64_t *to)
{
    *from = i * c->chunk;
    *to = *from + c->chunk < c->size ? *from + c->chunk : c->size;
}

void chunks_set(struct chunks *c, int64_t i, enum chunk_state st)
{
    if (i < 0 || i >= c->n)
        return;
    if (c->st[i] == CHUNK_PRESENT)
        c->present--;
    c->st[i] = (uint8_t)st;
    if (st == CHUNK_PRESENT)
        c->present++;
}

int64_t chunks_present_bytes(const struct chunks *c)
{
    int64_t b = c->present * c->chunk;
    if (c->st[c->n - 1] == CHUNK_PRESENT) /* the last chunk may be short */
        b -= c->n * c->chunk - c->size;
    return b;
}

int chunks_need(const struct chunks *c, int64_t off, int64_t len, int64_t max_run,
                int64_t *first, int64_t *last)
{
    if (off >= c->size || len <= 0)
        return 1;
    int64_t end = off + len < c->size ? off + len : c->size;
    int64_t a = chunks_index(c, off), b = chunks_index(c, end - 1);
    int64_t absent = -1;
    bool fetching = false;
    for (int64_t i = a; i <= b; i++) {
        if (c->st[i] == CHUNK_FETCHING)
            fetching = true;
        else if (c->st[i] == CHUNK_ABSENT && absent < 0)
            absent = i;
    }
    if (absent < 0)
        return fetching ? 0 : 1;
    int64_t i = absent;
    while (i + 1 <= b && c->st[i + 1] == CHUNK_ABSENT && i + 1 - absent < max_run)
        i++;
    *first = absent;
    *last = i;
    return -1;
}

int64_t chunks_grow(const struct chunks *c, int64_t first, int64_t last, int64_t max_run)
{
    if (first == 0 || c->st[first - 1] == CHUNK_ABSENT)
        return last; /* a read at a scattered offset */
    while (last + 1 < first + max_run && last + 1 < c->n && c->st[last + 1] == CHUNK_ABSENT)
        last++;
    return last;
}

int64_t chunks_next_missing(const struct chunks *c, int64_t i)
{
    while (i < c->n && c->st[i] == CHUNK_PRESENT)
        i++;
    return i;
}

int64_t chunks_absent_run_end(const struct chunks *c, int64_t i)
{
    while (i < c->n && c->st[i] == CHUNK_ABSENT)
        i++;
    return i;
}

uint8_t *chunks_save(const struct chunks *c, size_t *len)
{
    size_t bytes = (size_t)(c->n + 7) / 8;
    uint8_t *out = calloc(bytes, 1);
    if (!out)
        return NULL;
    for (int64_t i = 0; i < c->n; i++)
        if (c->st[i] == CHUNK_PRESENT)
            out[i / 8] |= (uint8_t)(1u << (i % 8));
    *len = bytes;
    return out;
}

int chunks_load(struct chunks *c, const uint8_t *map, size_t len)
{
    if (len != (size_t)(c->n + 7) / 8)
        return -EINVAL;
    for (int64_t i = c->n; i < (int64_t)len * 8; i++)
        if (map[i / 8] >> (i % 8) & 1)
            return -EINVAL; /* a bit past the last chunk: another object's map */
    for (int64_t i = 0; i < c->n; i++)
        chunks_set(c, i, map[i / 8] >> (i % 8) & 1 ? CHUNK_PRESENT : CHUNK_ABSENT);
    return 0;
}
