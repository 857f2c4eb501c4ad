/*
 * test_json_stream: json_stream_check accepts exactly what jansson's json_loadb (flags 0, an
 * object at the top) accepts — on edge cases and on random texts — and the walkers and the
 * output helpers give back what jansson reads.
 */
#include "upstreamfs/json_stream.h"

#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool jansson_ok(const char *s, size_t n)
{
    json_error_t err;
    json_t *j = json_loadb(s, n, 0, &err);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

static void same(const char *s, size_t n)
{
    bool want = jansson_ok(s, n);
    bool got = json_stream_check(s, n) == 0;
    if (want != got)
        fail_msg("json_stream_check %s, jansson %s: %.*s", got ? "accepts" : "refuses",
                 want ? "accepts" : "refuses", (int)(n > 200 ? 200 : n), s);
}

static void edge_cases(void **state)
{
    (void)state;
    static const char *const cases[] = {"{}",
                                        " {} ",
                                        "{}x",
                                        "[]",
                                        "1",
                                        "\"s\"",
                                        "null",
                                        "",
                                        " ",
                                        "{",
                                        "}",
                                        "{\"a\"}",
                                        "{\"a\":}",
                                        "{\"a\":1,}",
                                        "{,}",
                                        "{\"a\":1 \"b\":2}",
                                        "{\"a\":[1,]}",
                                        "{\"a\":[,1]}",
                                        "{\"a\":[]}",
                                        "{\"a\":[[],{}]}",
                                        "{\"a\":-0}",
                                        "{\"a\":-}",
                                        "{\"a\":01}",
                                        "{\"a\":0.}",
                                        "{\"a\":.5}",
                                        "{\"a\":1e}",
                                        "{\"a\":1e+}",
                                        "{\"a\":1E-5}",
                                        "{\"a\":1.5e308}",
                                        "{\"a\":1e309}",
                                        "{\"a\":-1e309}",
                                        "{\"a\":1e-400}",
                                        "{\"a\":9223372036854775807}",
                                        "{\"a\":9223372036854775808}",
                                        "{\"a\":-9223372036854775808}",
                                        "{\"a\":-9223372036854775809}",
                                        "{\"a\":true}",
                                        "{\"a\":truex}",
                                        "{\"a\":true1}",
                                        "{\"a\":tru}",
                                        "{\"a\":nul}",
                                        "{\"a\":False}",
                                        "{\"a\":\"\\u0000\"}",
                                        "{\"\\u0000\":1}",
                                        "{\"a\":\"\\u0041\"}",
                                        "{\"a\":\"\\uD83D\\uDE00\"}",
                                        "{\"a\":\"\\uD83D\"}",
                                        "{\"a\":\"\\uDE00\"}",
                                        "{\"a\":\"\\uD83Dx\"}",
                                        "{\"a\":\"\\uD83D\\u0041\"}",
                                        "{\"a\":\"\\u12\"}",
                                        "{\"a\":\"\\u12G4\"}",
                                        "{\"a\":\"\\x\"}",
                                        "{\"a\":\"\\/\"}",
                                        "{\"a\":\"\t\"}",
                                        "{\"a\":\"\x7f\"}",
                                        "{\"a\":\"\xc3\xa9\"}",
                                        "{\"a\":\"\xc0\x80\"}",
                                        "{\"a\":\"\xe0\x80\x80\"}",
                                        "{\"a\":\"\xed\xa0\x80\"}",
                                        "{\"a\":\"\xf4\x90\x80\x80\"}",
                                        "{\"a\":\"\xf0\x9f\x98\x80\"}",
                                        "{\"a\":\"\xff\"}",
                                        "{\"a\":\"\xc3\"}",
                                        "\xef\xbb\xbf{}",
                                        "{\"a\":1}\n",
                                        "{\"a\":1}\v",
                                        "{\"a\" : [ 1 , 2 ] }",
                                        "{\"a\":\"unterminated}",
                                        "{\"a\":\"x\\\"}",
                                        "{\"a\":\"x\\\\\"}"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        same(cases[i], strlen(cases[i]));
    same("{\"a\":\"x\0y\"}", 11);
    same("{\"a\":1}\0", 8);
    /* a NUL right after a number or a literal: jansson loses it (its stream's empty mark) */
    static const struct {
        const char *s;
        size_t n;
    } nul[] = {{"{\"a\":0\0}", 8},          {"{\"a\":true\0}", 11}, {"{\"a\":-1.5e3\0}", 13},
               {"{\"a\":\"s\"\0}", 10},     {"{\"a\":{}\0}", 9},    {"{\"a\":0 \0}", 9},
               {"{\"a\":0\0,\"b\":1}", 14}, {"{\"a\":1\0\0}", 9},   {"{\"a\":[1\0,2\0]}", 14},
               {"{\"a\":1e\0}", 8},         {"{\"a\":null\0 }", 12}};
    for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++)
        same(nul[i].s, nul[i].n);
    /* and the walkers and the copy skip it */
    const char z[] = "{\"a\":0\0,\"b\":true\0}";
    assert_int_equal(json_stream_check(z, sizeof(z) - 1), 0);
    struct json_out o;
    struct json_member m;
    size_t pos = 0;
    json_out_init(&o, 0);
    while (json_stream_member(z, sizeof(z) - 1, &pos, &m))
        json_out_value(&o, z, m.value, m.value_end);
    char *out;
    size_t len;
    assert_int_equal(json_out_finish(&o, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "0true", 5);
    free(out);
    /* nesting: jansson's limit counts every value, the object at the top included */
    for (size_t depth = JSON_PARSER_MAX_DEPTH - 2; depth <= JSON_PARSER_MAX_DEPTH + 1; depth++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            size_t n = 0;
            char *s = malloc(depth * 2 + 32);
            assert_non_null(s);
            n += (size_t)sprintf(s, "{\"a\":");
            for (size_t i = 0; i < depth - 1; i++)
                s[n++] = '[';
            if (scalar)
                s[n++] = '1';
            for (size_t i = 0; i < depth - 1; i++)
                s[n++] = ']';
            s[n++] = '}';
            same(s, n);
            free(s);
        }
    }
}

/* Random texts from JSON's alphabet and a few mutations of a valid document. */
static void random_texts(void **state)
{
    (void)state;
    static const char *const atoms[] = {
        "{",      "}",     "[",    "]", ",",           ":", "\"a\"", "\"b\\n\"",    "1",
        "-2.5e3", "true",  "null", " ", "\"\\u00e9\"", "0", "01",    "\"\\uD800\"", "\"\xc3\xa9\"",
        "\xc3",   "1e999", "\\",   "\0"};
    char buf[512];
    srand(19);
    for (int round = 0; round < 200000; round++) {
        size_t n = 0;
        if (round % 2)
            n += (size_t)sprintf(buf, "{\"k\":");
        int parts = 1 + rand() % 12;
        for (int p = 0; p < parts && n < 400; p++) {
            const char *a = atoms[rand() % (sizeof(atoms) / sizeof(atoms[0]))];
            if (!a[0]) { /* the "\0" atom: a NUL byte */
                buf[n++] = '\0';
                continue;
            }
            memcpy(buf + n, a, strlen(a));
            n += strlen(a);
        }
        if (round % 2)
            buf[n++] = '}';
        same(buf, n);
    }
    const char doc[] = "{\"name\":\"x\",\"versions\":{\"1.0.0\":{\"dist\":{\"tarball\":\"u\","
                       "\"n\":[1,2.5,true,null]}}},\"s\":\"\\u00e9\\n\"}";
    for (int round = 0; round < 100000; round++) {
        size_t n = sizeof(doc) - 1;
        memcpy(buf, doc, n);
        for (int k = 0; k < 1 + rand() % 3; k++)
            buf[rand() % n] = (char)(rand() % 128);
        same(buf, n);
    }
}

static void walk_and_write(void **state)
{
    (void)state;
    const char doc[] = " { \"a\" : [1, 2] , \"v\\u0065rsions\":{\"1.0\" : \"x y\"}, \"e\":{} } ";
    size_t n = sizeof(doc) - 1, pos;
    assert_int_equal(json_stream_check(doc, n), 0);
    struct json_member m;
    pos = strchr(doc, '{') - doc;
    struct json_out o;
    json_out_init(&o, 4);
    int members = 0;
    while (json_stream_member(doc, n, &pos, &m)) {
        members++;
        json_out_value(&o, doc, m.value, m.value_end);
    }
    assert_int_equal(members, 3);
    assert_true(json_stream_key_is(doc, m.key, m.key_end, "e"));
    char *out;
    size_t len;
    assert_int_equal(json_out_finish(&o, &out, &len), 0);
    assert_string_equal(out, "[1,2]{\"1.0\":\"x y\"}{}");
    free(out);
    /* the escaped key matches its decoded form */
    pos = strchr(doc, '{') - doc;
    assert_true(json_stream_member(doc, n, &pos, &m));
    assert_true(json_stream_member(doc, n, &pos, &m));
    assert_true(json_stream_key_is(doc, m.key, m.key_end, "versions"));
    /* strings out: what jansson reads back */
    const char *nasty = "a\"b\\c\x01\n\xc3\xa9/";
    json_out_init(&o, 0);
    json_out_puts(&o, "{\"s\":");
    json_out_string(&o, nasty);
    json_out_puts(&o, "}");
    assert_int_equal(json_out_finish(&o, &out, &len), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "s")), nasty);
    json_decref(j);
    char dec[32];
    assert_int_equal(json_stream_string(out, 5, len - 1, dec, sizeof(dec)), 0);
    assert_string_equal(dec, nasty);
    assert_int_equal(json_stream_string(out, 5, len - 1, dec, 4), -ENAMETOOLONG);
    free(out);
    /* ... written as jansson writes them, byte for byte (the PyPI document:
     * src/parsers/pypi_form.c) */
    char every[40];
    for (int c = 1; c < 32; c++)
        every[c - 1] = (char)c;
    strcpy(every + 31, "\"\\/\x7f\xc3\xa9");
    json_out_init(&o, 0);
    json_out_string(&o, every);
    assert_int_equal(json_out_finish(&o, &out, &len), 0);
    json_t *js = json_string(every);
    char *want = json_dumps(js, JSON_ENCODE_ANY);
    assert_string_equal(out, want);
    free(want);
    json_decref(js);
    free(out);
    assert_true(json_stream_utf8("a\xc3\xa9", 3));
    assert_false(json_stream_utf8("a\xc3", 2));
    assert_false(json_stream_utf8("\xed\xa0\x80", 3)); /* a surrogate */
    assert_false(json_stream_utf8("a\0b", 3));
}

/* Array elements, a member by key (the last of a repeated one, as jansson keeps) and a string. */
static void elements_find_dup(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"k\":1, \"a\" : [ 1 , \"x,]\" ,{\"b\":[2]},[] ,null ], \"k\":\"t\\u00e9\\n\",\"o\":{}}";
    size_t n = sizeof(doc) - 1;
    assert_int_equal(json_stream_check(doc, n), 0);
    struct json_member m;
    assert_true(json_stream_find(doc, n, 0, "a", &m));
    static const char *const want[] = {"1", "\"x,]\"", "{\"b\":[2]}", "[]", "null"};
    size_t pos = m.value, s, e, i = 0;
    while (json_stream_element(doc, n, &pos, &s, &e)) {
        assert_true(i < 5);
        assert_int_equal(e - s, strlen(want[i]));
        assert_memory_equal(doc + s, want[i], e - s);
        i++;
    }
    assert_int_equal(i, 5);
    assert_int_equal(doc[pos - 1], ']');
    pos = m.value;
    assert_true(json_stream_find(doc, n, 0, "o", &m));
    size_t empty = m.value;
    assert_false(json_stream_element("[]", 2, &(size_t){0}, &s, &e));
    assert_true(json_stream_find(doc, n, 0, "k", &m)); /* the last "k" */
    char *str = NULL;
    assert_int_equal(json_stream_dup(doc, m.value, m.value_end, &str), 0);
    assert_string_equal(str, "t\xc3\xa9\n");
    free(str);
    assert_false(json_stream_find(doc, n, 0, "none", &m));
    assert_false(json_stream_find(doc, n, empty, "k", &m)); /* an empty object */
    assert_false(json_stream_find(doc, n, pos, "b", &m));   /* no object at pos */
    assert_true(json_stream_find(doc, n, 0, "a", &m));
    assert_int_equal(json_stream_dup(doc, m.value, m.value_end, &str), 0); /* no string */
    assert_null(str);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edge_cases),
        cmocka_unit_test(random_texts),
        cmocka_unit_test(walk_and_write),
        cmocka_unit_test(elements_find_dup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
