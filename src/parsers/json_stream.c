/*
 * json_stream: checking and walking JSON text in place (include/upstreamfs/json_stream.h).
 *
 * The check mirrors jansson 2.14's decoder (load.c: lex_scan_string, lex_scan_number,
 * parse_value, and utf.c) for json_loadb with flags 0, so a document the tree-based parsers of
 * src/parsers accept is accepted here and the other way round; tests/unit/test_json_stream.c
 * compares the two.
 */
#include "upstreamfs/json_stream.h"
#include "upstreamfs/hash.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the check ---------------------------------------------------------------------------- */

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The length of the valid UTF-8 sequence at p (avail bytes), or 0 (jansson's utf8_check_*). */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    int32_t v;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    } else if (c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

bool json_stream_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0, u; i < n; i += u)
        if (!p[i] || (u = utf8_len(p + i, n - i)) == 0)
            return false;
    return true;
}

/* The code unit of the \uXXXX escape at p (6 bytes available, checked hex), or -1. */
static int32_t u_escape(const unsigned char *p)
{
    int32_t v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hash_hex_value((char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* A string token at *i (its '"'): checked, *i past its closing quote. */
static int check_string(const unsigned char *p, size_t n, size_t *i)
{
    size_t k = *i + 1;
    while (k < n && p[k] != '"') {
        unsigned char c = p[k];
        if (c < 0x20)
            return -EIO;
        if (c == '\\') {
            if (k + 1 >= n)
                return -EIO;
            c = p[k + 1];
            if (c != 'u') {
                if (!strchr("\"\\/bfnrt", c) || c == '\0')
                    return -EIO;
                k += 2;
                continue;
            }
            int32_t v = k + 6 <= n ? u_escape(p + k) : -1;
            if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
                return -EIO; /* \u0000, a lone low surrogate, a bad escape */
            k += 6;
            if (v >= 0xD800 && v <= 0xDBFF) {
                int32_t lo = k + 6 <= n && p[k] == '\\' && p[k + 1] == 'u' ? u_escape(p + k) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return -EIO;
                k += 6;
            }
            continue;
        }
        size_t u = utf8_len(p + k, n - k);
        if (u == 0)
            return -EIO;
        k += u;
    }
    if (k >= n)
        return -EIO;
    *i = k + 1;
    return 0;
}

/* A number token at *i: checked (grammar, integer range, real overflow), *i past it. */
static int check_number(const unsigned char *p, size_t n, size_t *i)
{
    size_t k = *i;
    bool real = false;
    if (k < n && p[k] == '-')
        k++;
    if (k < n && p[k] == '0') {
        k++;
        if (k < n && is_digit(p[k]))
            return -EIO;
    } else if (k < n && is_digit(p[k])) {
        while (k < n && is_digit(p[k]))
            k++;
    } else {
        return -EIO;
    }
    if (k < n && p[k] == '.') {
        real = true;
        if (++k >= n || !is_digit(p[k]))
            return -EIO;
        while (k < n && is_digit(p[k]))
            k++;
    }
    if (k < n && (p[k] == 'e' || p[k] == 'E')) {
        real = true;
        k++;
        if (k < n && (p[k] == '+' || p[k] == '-'))
            k++;
        if (k >= n || !is_digit(p[k]))
            return -EIO;
        while (k < n && is_digit(p[k]))
            k++;
    }
    size_t tl = k - *i;
    char small[64], *tok = tl < sizeof(small) ? small : malloc(tl + 1);
    if (!tok)
        return -ENOMEM;
    memcpy(tok, p + *i, tl);
    tok[tl] = '\0';
    int rc = 0;
    errno = 0;
    if (!real) {
        (void)strtoll(tok, NULL, 10);
        rc = errno == ERANGE ? -EIO : 0;
    } else {
        double d = strtod(tok, NULL);
        rc = errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL) ? -EIO : 0;
    }
    if (tok != small)
        free(tok);
    *i = k;
    return rc;
}

static int check_literal(const unsigned char *p, size_t n, size_t *i)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (size_t l = 0; l < 3; l++) {
        size_t ll = strlen(lits[l]);
        if (n - *i >= ll && memcmp(p + *i, lits[l], ll) == 0 &&
            !(n - *i > ll && ((p[*i + ll] | 0x20) >= 'a' && (p[*i + ll] | 0x20) <= 'z'))) {
            *i += ll;
            return 0;
        }
    }
    return -EIO;
}

static size_t skip_ws(const unsigned char *p, size_t n, size_t i)
{
    while (i < n && is_ws(p[i]))
        i++;
    return i;
}

int json_stream_check(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    bool in_obj[JSON_PARSER_MAX_DEPTH + 1];
    size_t depth = 0, i = skip_ws(p, len, 0);
    int rc;
    if (i >= len || p[i] != '{')
        return -EIO;
value:
    i = skip_ws(p, len, i);
    if (i >= len || depth + 1 > JSON_PARSER_MAX_DEPTH)
        return -EIO;
    if (p[i] == '{' || p[i] == '[') {
        bool obj = p[i] == '{';
        in_obj[depth++] = obj;
        i = skip_ws(p, len, i + 1);
        if (i < len && p[i] == (obj ? '}' : ']')) {
            i++;
            depth--;
            goto after;
        }
        if (obj)
            goto key;
        goto value;
    }
    if (p[i] == '"')
        rc = check_string(p, len, &i);
    else if (p[i] == '-' || is_digit(p[i]))
        rc = check_number(p, len, &i);
    else
        rc = check_literal(p, len, &i);
    if (rc < 0)
        return rc == -ENOMEM ? rc : -EIO;
    /*
     * jansson reads one byte past a number or a literal and puts it back; a NUL put back is
     * lost (its stream buffer takes NUL for "empty"), so one NUL there is skipped, not refused.
     */
    if (p[i - 1] != '"' && i < len && p[i] == '\0')
        i++;
after:
    i = skip_ws(p, len, i);
    if (depth == 0)
        return i == len ? 0 : -EIO;
    if (i >= len)
        return -EIO;
    if (p[i] == ',') {
        i++;
        if (in_obj[depth - 1])
            goto key;
        goto value;
    }
    if (p[i] == (in_obj[depth - 1] ? '}' : ']')) {
        i++;
        depth--;
        goto after;
    }
    return -EIO;
key:
    i = skip_ws(p, len, i);
    if (i >= len || p[i] != '"' || check_string(p, len, &i) < 0)
        return -EIO;
    i = skip_ws(p, len, i);
    if (i >= len || p[i] != ':')
        return -EIO;
    i++;
    goto value;
}

/* ---- walking checked text ----------------------------------------------------------------- */

/* Whitespace in checked text: the NUL a check let pass after a scalar is skipped like a blank. */
static bool is_blank(unsigned char c)
{
    return is_ws(c) || c == '\0';
}

static size_t skip_blank(const unsigned char *p, size_t n, size_t i)
{
    while (i < n && is_blank(p[i]))
        i++;
    return i;
}

static size_t skip_string(const char *p, size_t i)
{
    for (i++; p[i] != '"'; i++)
        if (p[i] == '\\')
            i++;
    return i + 1;
}

static size_t skip_value(const char *p, size_t n, size_t i)
{
    if (p[i] == '"')
        return skip_string(p, i);
    if (p[i] != '{' && p[i] != '[') {
        while (i < n && !strchr(",}] \t\n\r", p[i]))
            i++;
        return i;
    }
    size_t depth = 0;
    do {
        if (p[i] == '"') {
            i = skip_string(p, i);
            continue;
        }
        if (p[i] == '{' || p[i] == '[')
            depth++;
        else if (p[i] == '}' || p[i] == ']')
            depth--;
        i++;
    } while (depth > 0);
    return i;
}

bool json_stream_member(const char *text, size_t len, size_t *pos, struct json_member *m)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = skip_blank(p, len, *pos);
    if (p[i] == '{' || p[i] == ',')
        i = skip_blank(p, len, i + 1);
    if (p[i] == '}') {
        *pos = i + 1;
        return false;
    }
    m->key = i;
    i = skip_string(text, i);
    m->key_end = i;
    i = skip_blank(p, len, skip_blank(p, len, i) + 1); /* past ':' */
    m->value = i;
    m->value_end = skip_value(text, len, i);
    *pos = m->value_end;
    return true;
}

bool json_stream_element(const char *text, size_t len, size_t *pos, size_t *start, size_t *end)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t i = skip_blank(p, len, *pos);
    if (p[i] == '[' || p[i] == ',')
        i = skip_blank(p, len, i + 1);
    if (p[i] == ']') {
        *pos = i + 1;
        return false;
    }
    *start = i;
    *end = skip_value(text, len, i);
    *pos = *end;
    return true;
}

bool json_stream_find(const char *text, size_t len, size_t obj, const char *key,
                      struct json_member *out)
{
    struct json_member m;
    size_t pos = obj;
    bool found = false;
    if (text[obj] != '{')
        return false;
    while (json_stream_member(text, len, &pos, &m)) {
        if (json_stream_key_is(text, m.key, m.key_end, key)) {
            *out = m;
            found = true;
        }
    }
    return found;
}

int json_stream_dup(const char *text, size_t start, size_t end, char **out)
{
    *out = NULL;
    if (text[start] != '"')
        return 0;
    size_t cap = end - start; /* a decoded string is shorter than its token */
    char *s = malloc(cap);
    if (!s)
        return -ENOMEM;
    if (json_stream_string(text, start, end, s, cap) < 0)
        free(s);
    else
        *out = s;
    return 0;
}

/* Appends code point v as UTF-8 to out (room checked by the caller). */
static size_t put_utf8(int32_t v, char *out)
{
    if (v < 0x80) {
        out[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        out[0] = (char)(0xC0 | (v >> 6));
        out[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        out[0] = (char)(0xE0 | (v >> 12));
        out[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        out[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (v >> 18));
    out[1] = (char)(0x80 | ((v >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((v >> 6) & 0x3F));
    out[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

int json_stream_string(const char *text, size_t start, size_t end, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    for (size_t i = start + 1; i + 1 < end;) {
        char b[4];
        size_t bn = 1;
        if (p[i] != '\\') {
            b[0] = (char)p[i++];
        } else if (p[i + 1] != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            b[0] = to[strchr(from, p[i + 1]) - from];
            i += 2;
        } else {
            int32_t v = u_escape(p + i);
            i += 6;
            if (v >= 0xD800 && v <= 0xDBFF) {
                v = 0x10000 + ((v - 0xD800) << 10) + (u_escape(p + i) - 0xDC00);
                i += 6;
            }
            bn = put_utf8(v, b);
        }
        if (o + bn >= outlen)
            return -ENAMETOOLONG;
        memcpy(out + o, b, bn);
        o += bn;
    }
    out[o] = '\0';
    return 0;
}

bool json_stream_key_is(const char *text, size_t start, size_t end, const char *s)
{
    size_t sl = strlen(s);
    if (end - start == sl + 2 && memcmp(text + start + 1, s, sl) == 0)
        return true; /* the usual case: written without escapes */
    if (!memchr(text + start, '\\', end - start))
        return false;
    char buf[64];
    return sl < sizeof(buf) && json_stream_string(text, start, end, buf, sizeof(buf)) == 0 &&
           strcmp(buf, s) == 0;
}

/* ---- output ------------------------------------------------------------------------------- */

void json_out_init(struct json_out *o, size_t hint)
{
    memset(o, 0, sizeof(*o));
    o->buf = malloc(hint + 1);
    if (o->buf)
        o->cap = hint + 1;
    else
        o->err = -ENOMEM;
}

void json_out_put(struct json_out *o, const char *s, size_t n)
{
    if (o->err)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap + o->cap / 4 + n + 4096; /* a quarter more: little slack at the end */
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->err = -ENOMEM;
            return;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

void json_out_puts(struct json_out *o, const char *s)
{
    json_out_put(o, s, strlen(s));
}

void json_out_value(struct json_out *o, const char *text, size_t start, size_t end)
{
    size_t i = start, run = start;
    while (i < end) {
        if (text[i] == '"') {
            i = skip_string(text, i);
        } else if (is_blank((unsigned char)text[i])) {
            json_out_put(o, text + run, i - run);
            while (i < end && is_blank((unsigned char)text[i]))
                i++;
            run = i;
        } else {
            i++;
        }
    }
    json_out_put(o, text + run, end - run);
}

void json_out_string(struct json_out *o, const char *s)
{
    json_out_put(o, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        json_out_put(o, run, (size_t)(s - run));
        /* as jansson's dump writes them: a short escape where there is one, else \u00XX */
        static const char shorts[] = "\"\\\b\f\n\r\t", letters[] = "\"\\bfnrt";
        static const char hex[] = "0123456789ABCDEF";
        const char *sh = strchr(shorts, c);
        char esc[6] = {'\\', sh ? letters[sh - shorts] : 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        json_out_put(o, esc, sh ? 2 : 6);
        run = s + 1;
    }
    json_out_put(o, run, (size_t)(s - run));
    json_out_put(o, "\"", 1);
}

int json_out_finish(struct json_out *o, char **out, size_t *len)
{
    if (o->err) {
        free(o->buf);
        memset(o, 0, sizeof(*o));
        return -ENOMEM;
    }
    o->buf[o->len] = '\0';
    *out = o->buf;
    *len = o->len;
    memset(o, 0, sizeof(*o));
    return 0;
}
