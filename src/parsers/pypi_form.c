/*
 * pypi_form: the canonical form of a PyPI project page (include/upstreamfs/pypi.h; its layout:
 * src/parsers/pypi_form.h): built by the page readers of src/parsers/pypi_index.c, then walked
 * (pypi_index_each), searched (pypi_index_find: a hash table of the filenames), filtered
 * (pypi_index_subset, for src/policy/filter.c) and written as the document the mount keeps
 * (pypi_index_emit, byte for byte what jansson wrote of the tree this form replaced). Pure: no
 * I/O.
 */
#include "pypi_form.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/json_stream.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PYPI_TEXT_MAX 1024             /* requires-python, yanked reasons, upload times */
#define PYPI_HASH_HEX 128              /* sha512's hex */
#define PYPI_BUF_MAX  (UINT32_MAX - 2) /* offsets below the sentinels */

struct pypi_index {
    unsigned refs;
    struct pypi_index *of; /* a subset: the index whose strings it reads (referenced) */
    char *buf;             /* the strings: [0] the empty hash list, then the project name */
    size_t len, cap;
    struct pypi_file *files;
    size_t n, fcap;
    uint32_t *slots; /* by filename, open addressing: file index + 1, 0 free; a power of two */
    size_t nslots;
    uint32_t last_dir, last_rp; /* the reading's last URL directory and requires-python */
    size_t hashes_at;           /* the hash list being written */
    int err;
};

#define NAME_AT 1 /* the project name's offset */

bool pypi_filename_ok(const char *f)
{
    size_t n = strlen(f);
    if (n == 0 || n > 255 || f[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

/* ---- the buffer --------------------------------------------------------------------------- */

/* Appends n bytes; their offset, or PYPI_NONE (ix->err set). */
static uint32_t put(struct pypi_index *ix, const void *s, size_t n)
{
    if (ix->err)
        return PYPI_NONE;
    if (ix->len + n > PYPI_BUF_MAX) {
        ix->err = -EFBIG;
        return PYPI_NONE;
    }
    if (ix->len + n > ix->cap) {
        size_t cap = ix->cap * 2 > ix->len + n ? ix->cap * 2 : ix->len + n + 4096;
        char *nb = realloc(ix->buf, cap);
        if (!nb) {
            ix->err = -ENOMEM;
            return PYPI_NONE;
        }
        ix->buf = nb;
        ix->cap = cap;
    }
    uint32_t at = (uint32_t)ix->len;
    memcpy(ix->buf + at, s, n);
    ix->len += n;
    return at;
}

static uint32_t put_str(struct pypi_index *ix, const char *s, size_t n)
{
    uint32_t at = put(ix, s, n);
    put(ix, "", 1);
    return ix->err ? PYPI_NONE : at;
}

/* s (n bytes) as a string, the one at *last when it is the same. */
static uint32_t put_shared(struct pypi_index *ix, uint32_t *last, const char *s, size_t n)
{
    if (*last != PYPI_NONE && strncmp(ix->buf + *last, s, n) == 0 && ix->buf[*last + n] == '\0')
        return *last;
    uint32_t at = put_str(ix, s, n);
    if (at != PYPI_NONE)
        *last = at;
    return at;
}

static const char *str_at(const struct pypi_index *ix, uint32_t at)
{
    return ix->buf + at;
}

/* ---- the table of filenames ----------------------------------------------------------------- */

static size_t slot_of(const struct pypi_index *ix, const char *name)
{
    size_t mask = ix->nslots - 1, i = (size_t)hash_fnv1a(name, strlen(name)) & mask;
    while (ix->slots[i] && strcmp(str_at(ix, ix->files[ix->slots[i] - 1].filename), name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Makes the table hold files [0, n) in a table of at least 2n slots. */
static int table_build(struct pypi_index *ix, size_t want)
{
    size_t nslots = 64;
    while (nslots < want * 2)
        nslots *= 2;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    free(ix->slots);
    ix->slots = slots;
    ix->nslots = nslots;
    for (size_t i = 0; i < ix->n; i++)
        ix->slots[slot_of(ix, str_at(ix, ix->files[i].filename))] = (uint32_t)i + 1;
    return 0;
}

ptrdiff_t pypi_index_lookup(const struct pypi_index *ix, const char *filename)
{
    if (!ix->nslots)
        return -1;
    uint32_t s = ix->slots[slot_of(ix, filename)];
    return s ? (ptrdiff_t)s - 1 : -1;
}

/* ---- building ------------------------------------------------------------------------------- */

int pypi_form_new(const char *name, size_t hint, struct pypi_index **out)
{
    struct pypi_index *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return -ENOMEM;
    ix->refs = 1;
    /* Room for about the page: what is never written is never resident. */
    ix->cap = hint + 256;
    ix->buf = malloc(ix->cap);
    if (!ix->buf)
        ix->cap = 0;
    put(ix, "", 1); /* the empty hash list */
    put_str(ix, name, strlen(name));
    if (ix->err || table_build(ix, 0) < 0) {
        pypi_index_free(ix);
        return -ENOMEM;
    }
    pypi_form_reset(ix);
    *out = ix;
    return 0;
}

void pypi_form_reset(struct pypi_index *ix)
{
    ix->len = NAME_AT + strlen(ix->buf + NAME_AT) + 1;
    ix->n = 0;
    memset(ix->slots, 0, ix->nslots * sizeof(*ix->slots));
    ix->last_dir = ix->last_rp = PYPI_NONE;
}

void pypi_form_done(struct pypi_index *ix)
{
    char *b = ix->len < ix->cap ? realloc(ix->buf, ix->len) : NULL;
    if (b) {
        ix->buf = b;
        ix->cap = ix->len;
    }
    struct pypi_file *f = ix->n && ix->n < ix->fcap ? realloc(ix->files, ix->n * sizeof(*f)) : NULL;
    if (f) {
        ix->files = f;
        ix->fcap = ix->n;
    }
}

int pypi_form_error(const struct pypi_index *ix)
{
    return ix->err;
}

struct pypi_file *pypi_form_last(struct pypi_index *ix)
{
    return ix->n ? &ix->files[ix->n - 1] : NULL;
}

int pypi_form_add(struct pypi_index *ix, const char *filename, const char *url,
                  struct pypi_file **f)
{
    *f = NULL;
    if (ix->err)
        return ix->err;
    if (!filename || !url || !pypi_filename_ok(filename) ||
        !json_stream_utf8(filename, strlen(filename)) || !json_stream_utf8(url, strlen(url)) ||
        pypi_index_lookup(ix, filename) >= 0)
        return 0;
    if ((ix->n + 1) * 2 > ix->nslots && table_build(ix, ix->n + 1) < 0)
        return -ENOMEM;
    if (ix->n == ix->fcap) {
        size_t cap = ix->fcap ? ix->fcap * 2 : 16;
        struct pypi_file *nf = realloc(ix->files, cap * sizeof(*nf));
        if (!nf)
            return -ENOMEM;
        ix->files = nf;
        ix->fcap = cap;
    }
    const char *slash = strrchr(url, '/'); /* an http(s) URL has one */
    size_t dir = slash ? (size_t)(slash - url) + 1 : 0;
    struct pypi_file nf = {.size = -1,
                           .hashes = PYPI_EMPTY_HASHES,
                           .core_metadata = PYPI_NONE,
                           .requires_python = PYPI_NONE,
                           .yanked = PYPI_NONE,
                           .upload_time = PYPI_NONE};
    nf.filename = put_str(ix, filename, strlen(filename));
    nf.url_dir = put_shared(ix, &ix->last_dir, url, dir);
    nf.url_tail =
        strcmp(url + dir, filename) == 0 ? PYPI_NONE : put_str(ix, url + dir, strlen(url + dir));
    if (ix->err)
        return ix->err;
    ix->files[ix->n] = nf;
    ix->slots[slot_of(ix, filename)] = (uint32_t)++ix->n;
    *f = &ix->files[ix->n - 1];
    return 0;
}

bool pypi_form_text(struct pypi_index *ix, enum pypi_text t, const char *s)
{
    struct pypi_file *f = pypi_form_last(ix);
    size_t n = s ? strlen(s) : 0;
    if (!f || !s || n > PYPI_TEXT_MAX || !json_stream_utf8(s, n))
        return false;
    uint32_t at =
        t == PYPI_REQUIRES_PYTHON ? put_shared(ix, &ix->last_rp, s, n) : put_str(ix, s, n);
    if (at == PYPI_NONE)
        return false;
    if (t == PYPI_REQUIRES_PYTHON)
        f->requires_python = at;
    else if (t == PYPI_YANKED)
        f->yanked = at;
    else
        f->upload_time = at;
    return true;
}

/* ---- hash lists ----------------------------------------------------------------------------- */

static int hex_value(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

void pypi_form_hashes_begin(struct pypi_index *ix)
{
    ix->hashes_at = ix->len;
}

/* The hashes a list names by a code (0x80 | index) when their hex has its usual length. */
static const struct {
    const char *name;
    size_t hex;
} known_algs[] = {{"sha256", 64}, {"sha512", 128}, {"sha1", 40},
                  {"md5", 32},    {"sha384", 96},  {"sha224", 56}};
#define N_KNOWN (sizeof(known_algs) / sizeof(known_algs[0]))

bool pypi_form_hash_add(struct pypi_index *ix, const char *alg, size_t alg_len, const char *value)
{
    size_t n = value ? strlen(value) : 0;
    unsigned char packed[PYPI_HASH_HEX / 2];
    if (alg_len == 0 || alg_len > 16 || n == 0 || n > PYPI_HASH_HEX)
        return false;
    for (size_t i = 0; i < alg_len; i++)
        if (!islower((unsigned char)alg[i]) && !isdigit((unsigned char)alg[i]))
            return false;
    memset(packed, 0, sizeof(packed));
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)value[i]))
            return false;
        int v = hex_value((char)tolower((unsigned char)value[i]));
        packed[i / 2] |= (unsigned char)(i % 2 ? v : v << 4);
    }
    size_t k = 0;
    while (k < N_KNOWN && (strlen(known_algs[k].name) != alg_len ||
                           memcmp(known_algs[k].name, alg, alg_len) != 0 || known_algs[k].hex != n))
        k++;
    unsigned char code = (unsigned char)(0x80 | k), al = (unsigned char)alg_len,
                  hl = (unsigned char)n;
    if (k < N_KNOWN) {
        put(ix, &code, 1);
    } else {
        put(ix, &al, 1);
        put(ix, alg, alg_len);
        put(ix, &hl, 1);
    }
    put(ix, packed, (n + 1) / 2);
    return !ix->err;
}

uint32_t pypi_form_hashes_end(struct pypi_index *ix)
{
    if (ix->len == ix->hashes_at || ix->err)
        return PYPI_EMPTY_HASHES;
    uint32_t at = (uint32_t)ix->hashes_at;
    put(ix, "", 1);
    return at;
}

/* One entry of a hash list: name and hex (decoded); at moves past it. false at the end. */
struct hash_entry {
    char alg[17];
    char hex[PYPI_HASH_HEX + 1];
};

static bool hash_next(const struct pypi_index *ix, uint32_t *at, struct hash_entry *h)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)ix->buf + *at;
    size_t al, hl, head;
    if (!p[0])
        return false;
    if (p[0] & 0x80) { /* a known hash at its usual length */
        snprintf(h->alg, sizeof(h->alg), "%s", known_algs[p[0] & 0x7f].name);
        hl = known_algs[p[0] & 0x7f].hex;
        head = 1;
    } else {
        al = p[0];
        memcpy(h->alg, p + 1, al);
        h->alg[al] = '\0';
        hl = p[1 + al];
        head = 2 + al;
    }
    const unsigned char *nib = p + head;
    for (size_t i = 0; i < hl; i++)
        h->hex[i] = digits[i % 2 ? nib[i / 2] & 15 : nib[i / 2] >> 4];
    h->hex[hl] = '\0';
    *at += (uint32_t)(head + (hl + 1) / 2);
    return true;
}

/* The strongest usable hash of a list as "algo:hex" into out; "" when none. */
static void best_hash(const struct pypi_index *ix, uint32_t list, char *out, size_t len)
{
    struct hash_entry h;
    out[0] = '\0';
    for (size_t i = 0; i < 3; i++) { /* sha256, sha512, sha1: the ones known_algs lists first */
        for (uint32_t at = list; hash_next(ix, &at, &h);) {
            if (strcmp(h.alg, known_algs[i].name) != 0)
                continue;
            if (strlen(h.hex) != known_algs[i].hex)
                break;
            snprintf(out, len, "%s:%s", h.alg, h.hex);
            return;
        }
    }
}

/* ---- reading it ----------------------------------------------------------------------------- */

struct pypi_index *pypi_index_ref(struct pypi_index *ix)
{
    ix->refs++;
    return ix;
}

void pypi_index_free(struct pypi_index *ix)
{
    if (!ix || --ix->refs > 0)
        return;
    if (ix->of)
        pypi_index_free(ix->of);
    else
        free(ix->buf);
    free(ix->files);
    free(ix->slots);
    free(ix);
}

size_t pypi_index_count(const struct pypi_index *ix)
{
    return ix->n;
}

size_t pypi_index_bytes(const struct pypi_index *ix)
{
    return sizeof(*ix) + (ix->of ? 0 : ix->cap) + ix->fcap * sizeof(*ix->files) +
           ix->nslots * sizeof(*ix->slots);
}

const char *pypi_index_filename(const struct pypi_index *ix, size_t i)
{
    return str_at(ix, ix->files[i].filename);
}

const char *pypi_index_upload_time(const struct pypi_index *ix, size_t i)
{
    uint32_t at = ix->files[i].upload_time;
    return at == PYPI_NONE ? NULL : str_at(ix, at);
}

int pypi_index_subset(struct pypi_index *ix, const bool *keep, struct pypi_index **out)
{
    struct pypi_index *s = calloc(1, sizeof(*s));
    size_t kept = 0;
    for (size_t i = 0; i < ix->n; i++)
        kept += keep[i];
    if (s)
        s->files = malloc((kept ? kept : 1) * sizeof(*s->files));
    if (!s || !s->files) {
        free(s);
        return -ENOMEM;
    }
    s->refs = 1;
    s->of = pypi_index_ref(ix->of ? ix->of : ix);
    s->buf = ix->buf;
    s->len = ix->len;
    s->fcap = kept ? kept : 1;
    for (size_t i = 0; i < ix->n; i++)
        if (keep[i])
            s->files[s->n++] = ix->files[i];
    if (table_build(s, s->n) < 0) {
        pypi_index_free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

/* A growable string for the URLs the walk makes. */
struct scratch {
    char *s;
    size_t cap;
};

/* File f's URL, then suffix, into sc; NULL when out of memory. */
static const char *file_url(const struct pypi_index *ix, const struct pypi_file *f,
                            const char *suffix, struct scratch *sc)
{
    const char *dir = str_at(ix, f->url_dir);
    const char *tail = str_at(ix, f->url_tail == PYPI_NONE ? f->filename : f->url_tail);
    size_t dl = strlen(dir), tl = strlen(tail), sl = strlen(suffix);
    if (dl + tl + sl + 1 > sc->cap) {
        char *ns = realloc(sc->s, dl + tl + sl + 64);
        if (!ns)
            return NULL;
        sc->s = ns;
        sc->cap = dl + tl + sl + 64;
    }
    memcpy(sc->s, dir, dl);
    memcpy(sc->s + dl, tail, tl);
    memcpy(sc->s + dl + tl, suffix, sl + 1);
    return sc->s;
}

/* Whether file f has a core-metadata file (PEP 658: at its URL plus ".metadata"). */
static bool has_metadata(const struct pypi_index *ix, const struct pypi_file *f)
{
    uint32_t tail = f->url_tail == PYPI_NONE ? f->filename : f->url_tail;
    return f->core_metadata != PYPI_NONE && !strchr(str_at(ix, f->url_dir), '?') &&
           !strchr(str_at(ix, tail), '?');
}

/* Calls fn for file f (metadata: its core-metadata file). */
static int
call_one(const struct pypi_index *ix, const struct pypi_file *f, bool metadata, struct scratch *sc,
         int (*fn)(void *arg, const char *file, const char *url, const char *expect, int64_t size),
         void *arg)
{
    char expect[200], file[300];
    const char *url = file_url(ix, f, metadata ? ".metadata" : "", sc);
    if (!url)
        return -ENOMEM;
    snprintf(file, sizeof(file), "%s%s", str_at(ix, f->filename), metadata ? ".metadata" : "");
    uint32_t list = !metadata                       ? f->hashes
                    : f->core_metadata == PYPI_TRUE ? PYPI_EMPTY_HASHES
                                                    : f->core_metadata;
    best_hash(ix, list, expect, sizeof(expect));
    return fn(arg, file, url, expect[0] ? expect : NULL, metadata ? -1 : f->size);
}

int pypi_index_each(const struct pypi_index *ix,
                    int (*fn)(void *arg, const char *file, const char *url, const char *expect,
                              int64_t size),
                    void *arg)
{
    struct scratch sc = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ix->n; i++) {
        rc = call_one(ix, &ix->files[i], false, &sc, fn, arg);
        if (rc == 0 && has_metadata(ix, &ix->files[i]))
            rc = call_one(ix, &ix->files[i], true, &sc, fn, arg);
    }
    free(sc.s);
    return rc;
}

struct find_arg {
    char *url, *expect;
    int64_t size;
};

static int find_one(void *arg, const char *file, const char *url, const char *expect, int64_t size)
{
    (void)file;
    struct find_arg *a = arg;
    a->url = strdup(url);
    a->expect = expect ? strdup(expect) : NULL;
    a->size = size;
    return !a->url || (expect && !a->expect) ? -ENOMEM : 0;
}

int pypi_index_find(const struct pypi_index *ix, const char *file, char **url, char **expect,
                    int64_t *size)
{
    static const char suffix[] = ".metadata";
    size_t n = strlen(file), k = sizeof(suffix) - 1;
    ptrdiff_t dist = pypi_index_lookup(ix, file), meta = -1;
    if (n > k && n - k <= PYPI_NAME_MAX && strcmp(file + n - k, suffix) == 0) {
        char name[PYPI_NAME_MAX + 1];
        memcpy(name, file, n - k);
        name[n - k] = '\0';
        meta = pypi_index_lookup(ix, name);
        if (meta >= 0 && !has_metadata(ix, &ix->files[meta]))
            meta = -1;
    }
    /* the first in the walk's order: file i, then its metadata */
    bool is_meta = meta >= 0 && (dist < 0 || meta < dist);
    if (dist < 0 && !is_meta)
        return -ENOENT;
    struct find_arg a = {0};
    struct scratch sc = {0};
    int rc = call_one(ix, &ix->files[is_meta ? meta : dist], is_meta, &sc, find_one, &a);
    free(sc.s);
    if (rc < 0) {
        free(a.url);
        free(a.expect);
        return rc;
    }
    *url = a.url;
    *expect = a.expect;
    *size = a.size;
    return 0;
}

/* ---- the document -----------------------------------------------------------------------------
 */

static void emit_hashes(struct json_out *o, const struct pypi_index *ix, uint32_t list)
{
    struct hash_entry h;
    bool first = true;
    json_out_put(o, "{", 1);
    for (uint32_t at = list; hash_next(ix, &at, &h); first = false) {
        json_out_puts(o, first ? "\"" : ",\"");
        json_out_puts(o, h.alg);
        json_out_puts(o, "\":\"");
        json_out_puts(o, h.hex);
        json_out_put(o, "\"", 1);
    }
    json_out_put(o, "}", 1);
}

/* One file as jansson wrote its object: members in the order the readers set them. */
static void emit_file(struct json_out *o, const struct pypi_index *ix, const struct pypi_file *f,
                      bool absolute, struct scratch *sc)
{
    const char *name = str_at(ix, f->filename);
    char *esc = absolute ? NULL : fetch_url_escape(name);
    const char *url = absolute ? file_url(ix, f, "", sc) : esc;
    if (!url) {
        o->err = -ENOMEM;
        return;
    }
    json_out_puts(o, "{\"filename\":");
    json_out_string(o, name);
    json_out_puts(o, ",\"url\":");
    json_out_string(o, url);
    free(esc);
    json_out_puts(o, ",\"hashes\":");
    emit_hashes(o, ix, f->hashes);
    if (f->requires_python != PYPI_NONE) {
        json_out_puts(o, ",\"requires-python\":");
        json_out_string(o, str_at(ix, f->requires_python));
    }
    if (f->yanked != PYPI_NONE) {
        json_out_puts(o, ",\"yanked\":");
        if (f->yanked == PYPI_TRUE)
            json_out_puts(o, "true");
        else
            json_out_string(o, str_at(ix, f->yanked));
    }
    if (f->core_metadata == PYPI_TRUE) {
        json_out_puts(o, ",\"core-metadata\":true");
    } else if (f->core_metadata != PYPI_NONE) {
        json_out_puts(o, ",\"core-metadata\":");
        emit_hashes(o, ix, f->core_metadata);
    }
    if (f->size >= 0) {
        char num[32];
        snprintf(num, sizeof(num), ",\"size\":%lld", (long long)f->size);
        json_out_puts(o, num);
    }
    if (f->upload_time != PYPI_NONE) {
        json_out_puts(o, ",\"upload-time\":");
        json_out_string(o, str_at(ix, f->upload_time));
    }
    json_out_put(o, "}", 1);
}

int pypi_index_emit(const struct pypi_index *ix, bool absolute_urls, char **out, size_t *out_len)
{
    struct json_out o;
    struct scratch sc = {0};
    json_out_init(&o, ix->len + ix->n * 160);
    json_out_puts(&o, "{\"meta\":{\"api-version\":\"1.0\"},\"name\":");
    json_out_string(&o, str_at(ix, NAME_AT));
    json_out_puts(&o, ",\"files\":[");
    for (size_t i = 0; i < ix->n && !o.err; i++) {
        json_out_puts(&o, i ? "," : "");
        emit_file(&o, ix, &ix->files[i], absolute_urls, &sc);
    }
    json_out_puts(&o, "]}");
    free(sc.s);
    return json_out_finish(&o, out, out_len);
}
