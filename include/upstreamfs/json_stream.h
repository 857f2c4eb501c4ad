/*
 * json_stream: rewriting large JSON documents without building a tree (src/parsers/json_stream.c).
 *
 * A tree of a package document (jansson's) costs several times the document's size; these
 * helpers walk the text in place instead, so a rewrite holds the input and its output and
 * nothing else (npm's packuments: src/parsers/npm_doc.c). The input is first checked whole with
 * json_stream_check, which accepts exactly what jansson's json_loadb (flags 0) accepts with an
 * object at the top: after it, the walkers below assume valid JSON and never fail.
 */
#ifndef UPSTREAMFS_JSON_STREAM_H
#define UPSTREAMFS_JSON_STREAM_H

#include <stdbool.h>
#include <stddef.h>

/*
 * 0 when text is one JSON object that jansson would load (UTF-8, no \u0000, integers within
 * 64 bits, no real overflow, nesting up to JSON_PARSER_MAX_DEPTH), else -EIO.
 */
int json_stream_check(const char *text, size_t len);

/* Whether s (n bytes) is UTF-8 as jansson takes it for a string (json_string). */
bool json_stream_utf8(const char *s, size_t n);

/* A member of an object being walked: its key (the token, quotes included) and its value. */
struct json_member {
    size_t key, key_end; /* [key, key_end) of the key's string token */
    size_t value, value_end;
};

/*
 * Walks the members of the object whose '{' is at *pos of text (len bytes, checked): call with
 * *pos at the '{', then each call fills *m with the next member and returns true, or returns
 * false at the end (with *pos past the '}').
 */
bool json_stream_member(const char *text, size_t len, size_t *pos, struct json_member *m);

/*
 * Walks the elements of the array whose '[' is at *pos (checked text), as json_stream_member
 * walks an object: each call sets [*start, *end) to the next element and returns true, or
 * returns false at the end (with *pos past the ']').
 */
bool json_stream_element(const char *text, size_t len, size_t *pos, size_t *start, size_t *end);

/*
 * The member named key of the object at obj (checked text; false when obj is no object or has
 * none): the last one when the key repeats, the one jansson keeps.
 */
bool json_stream_find(const char *text, size_t len, size_t obj, const char *key,
                      struct json_member *out);

/* The string value [start, end) decoded into a malloc'd *out (NULL: not a string); -ENOMEM. */
int json_stream_dup(const char *text, size_t start, size_t end, char **out);

/* Whether the string token [start, end) decodes to exactly s. */
bool json_stream_key_is(const char *text, size_t start, size_t end, const char *s);

/*
 * Decodes the string token [start, end) into out (NUL-terminated); -ENAMETOOLONG when it needs
 * more than outlen bytes.
 */
int json_stream_string(const char *text, size_t start, size_t end, char *out, size_t outlen);

/* An output buffer that grows; err is set (-ENOMEM) on the first failure and kept. */
struct json_out {
    char *buf;
    size_t len, cap;
    int err;
};

/* Starts out with room for about hint bytes. */
void json_out_init(struct json_out *o, size_t hint);
void json_out_put(struct json_out *o, const char *s, size_t n);
void json_out_puts(struct json_out *o, const char *s);
/* The value [start, end) of a checked text, with the whitespace outside its strings left out. */
void json_out_value(struct json_out *o, const char *text, size_t start, size_t end);
/* s as a JSON string token, escaped as jansson's json_dumps escapes it. */
void json_out_string(struct json_out *o, const char *s);
/* Hands the buffer (NUL-terminated) to *out, *len: 0, or the first error (buffer freed). */
int json_out_finish(struct json_out *o, char **out, size_t *len);

#endif
