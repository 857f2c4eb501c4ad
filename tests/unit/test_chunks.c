/*
 * test_chunks: the chunk map of a partial object (src/fetch/chunks.c): bounds of a short last
 * chunk, present bytes, what a read needs (present, wait for a fetch, or the absent run to
 * fetch, coalesced and capped), how far a reader that reads on asks ahead (capped; a scattered
 * read not at all), the fill's next missing chunk and absent run, and the saved
 * bitmap's round trip (a map of another size refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "upstreamfs/chunks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define C 1000

static void bounds_and_bytes(void **state)
{
    (void)state;
    struct chunks *c = chunks_new(10 * C + 17, C);
    assert_non_null(c);
    assert_int_equal(c->n, 11);
    int64_t from, to;
    chunks_bounds(c, 10, &from, &to);
    assert_int_equal(from, 10 * C);
    assert_int_equal(to, 10 * C + 17);
    assert_int_equal(chunks_present_bytes(c), 0);
    chunks_set(c, 10, CHUNK_PRESENT);
    assert_int_equal(chunks_present_bytes(c), 17);
    chunks_set(c, 0, CHUNK_PRESENT);
    assert_int_equal(chunks_present_bytes(c), C + 17);
    chunks_set(c, 0, CHUNK_PRESENT); /* twice: counted once */
    assert_int_equal(chunks_present_bytes(c), C + 17);
    chunks_set(c, 0, CHUNK_ABSENT);
    assert_int_equal(chunks_present_bytes(c), 17);
    assert_null(chunks_new(0, C));
    assert_null(chunks_new(5, 0));
    chunks_free(c);
}

static void need(void **state)
{
    (void)state;
    struct chunks *c = chunks_new(20 * C, C);
    int64_t a = -1, b = -1;
    /* a read within one absent chunk: that chunk */
    assert_int_equal(chunks_need(c, 5 * C + 10, 100, 16, &a, &b), -1);
    assert_int_equal(a, 5);
    assert_int_equal(b, 5);
    /* a read over chunks 2..6 with 4 present: the first absent run, 2..3 */
    chunks_set(c, 4, CHUNK_PRESENT);
    assert_int_equal(chunks_need(c, 2 * C, 5 * C, 16, &a, &b), -1);
    assert_int_equal(a, 2);
    assert_int_equal(b, 3);
    /* coalesced up to max_run */
    assert_int_equal(chunks_need(c, 5 * C, 10 * C, 3, &a, &b), -1);
    assert_int_equal(a, 5);
    assert_int_equal(b, 7);
    /* one being fetched, the rest present: wait */
    chunks_set(c, 5, CHUNK_FETCHING);
    assert_int_equal(chunks_need(c, 4 * C, 2 * C, 16, &a, &b), 0);
    /* all present; a read past the end needs nothing */
    chunks_set(c, 5, CHUNK_PRESENT);
    assert_int_equal(chunks_need(c, 4 * C, 2 * C, 16, &a, &b), 1);
    assert_int_equal(chunks_need(c, 20 * C, 10, 16, &a, &b), 1);
    /* a read running past the end is clamped to the last chunk */
    assert_int_equal(chunks_need(c, 19 * C + 5, 10 * C, 16, &a, &b), -1);
    assert_int_equal(a, 19);
    assert_int_equal(b, 19);
    chunks_free(c);
}

static void grow(void **state)
{
    (void)state;
    struct chunks *c = chunks_new(40 * C, C);
    /* a scattered read (chunk 9 absent), and one at the start: only its own chunks */
    assert_int_equal(chunks_grow(c, 10, 10, 8), 10);
    assert_int_equal(chunks_grow(c, 0, 1, 8), 1);
    /* reading on past chunk 10 (present) or 11 (being fetched): max_run chunks in all */
    chunks_set(c, 10, CHUNK_PRESENT);
    assert_int_equal(chunks_grow(c, 11, 11, 8), 18);
    chunks_set(c, 11, CHUNK_FETCHING);
    assert_int_equal(chunks_grow(c, 12, 12, 8), 19);
    /* never shorter than the read's own run */
    assert_int_equal(chunks_grow(c, 12, 25, 8), 25);
    /* it stops at a chunk that is not absent, and at the end */
    chunks_set(c, 15, CHUNK_FETCHING);
    assert_int_equal(chunks_grow(c, 12, 12, 8), 14);
    chunks_set(c, 35, CHUNK_PRESENT);
    assert_int_equal(chunks_grow(c, 36, 36, 8), 39);
    chunks_free(c);
}

static void fill_order(void **state)
{
    (void)state;
    struct chunks *c = chunks_new(8 * C, C);
    chunks_set(c, 0, CHUNK_PRESENT);
    chunks_set(c, 1, CHUNK_PRESENT);
    chunks_set(c, 5, CHUNK_PRESENT);
    assert_int_equal(chunks_next_missing(c, 0), 2);
    assert_int_equal(chunks_absent_run_end(c, 2), 5);
    chunks_set(c, 3, CHUNK_FETCHING);
    assert_int_equal(chunks_absent_run_end(c, 2), 3);
    assert_int_equal(chunks_next_missing(c, 5), 6);
    assert_int_equal(chunks_absent_run_end(c, 6), 8);
    chunks_free(c);
}

static void save_load(void **state)
{
    (void)state;
    struct chunks *c = chunks_new(11 * C, C), *d = chunks_new(11 * C, C);
    chunks_set(c, 0, CHUNK_PRESENT);
    chunks_set(c, 9, CHUNK_PRESENT);
    chunks_set(c, 10, CHUNK_PRESENT);
    chunks_set(c, 3, CHUNK_FETCHING); /* not present: not saved */
    size_t len = 0;
    uint8_t *map = chunks_save(c, &len);
    assert_non_null(map);
    assert_int_equal(len, 2);
    assert_int_equal(map[0], 0x01);
    assert_int_equal(map[1], 0x06);
    assert_int_equal(chunks_load(d, map, len), 0);
    assert_int_equal(chunks_present_bytes(d), 3 * C);
    assert_int_equal(d->st[9], CHUNK_PRESENT);
    assert_int_equal(d->st[3], CHUNK_ABSENT);
    /* another object's maps: a different length, a bit past the last chunk */
    const uint8_t short_map[] = {0x01}, past_end[] = {0x01, 0x08};
    assert_int_equal(chunks_load(d, short_map, sizeof(short_map)), -EINVAL);
    assert_int_equal(chunks_load(d, past_end, sizeof(past_end)), -EINVAL);
    free(map);
    chunks_free(c);
    chunks_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bounds_and_bytes),
        cmocka_unit_test(need),
        cmocka_unit_test(grow),
        cmocka_unit_test(fill_order),
        cmocka_unit_test(save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
