/*
 * doc_memo: the parsed form of the document a driver read last, kept in the driver's state
 * slot (include/upstreamfs/driver.h, drv_doc_memo_use, drv_doc_use). The bytes come from the
 * shared document cache (upstream_doc_fetch); this keeps only what parsing them made, so a run
 * of lookups in one package or project parses its document once, and (drv_doc_use) reads its
 * bytes from the store only for that parse: while the document is fresh, a lookup costs the
 * index's row of it and the kept form. Parses of one key and sha256 run once at a time
 * (single flight, src/util/single_flight.c): callers that miss together wait for one parse.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/single_flight.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A caller that joined another's parse waits this long for it, then parses alone. */
#define MEMO_WAIT_MS 60000

struct doc_memo {
    char *key;
    char sha256[65];
    void *parsed;
    void (*free_fn)(void *);
};

/* The driver's state slot: the form kept, and the parses in flight. */
struct memo_slot {
    struct doc_memo *cur;
    struct sf_group *parses; /* key "<sha256> <key>" */
};

static void memo_free(struct doc_memo *m)
{
    if (!m)
        return;
    if (m->free_fn && m->parsed)
        m->free_fn(m->parsed);
    free(m->key);
    free(m);
}

static void slot_free(void *p)
{
    struct memo_slot *s = p;
    if (!s)
        return;
    memo_free(s->cur);
    sf_group_free(s->parses);
    free(s);
}

/* Under the state lock: the slot, made on first use; NULL without memory. */
static struct memo_slot *slot_get(struct upstream *u)
{
    struct memo_slot *s = upstream_state(u);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (s && !(s->parses = sf_group_new())) {
        free(s);
        s = NULL;
    }
    if (s)
        upstream_set_state(u, s, slot_free);
    return s;
}

/* What a caller asks of the memo. */
struct memo_req {
    const char *key;
    const char *sha256; /* read again after parse: a parse that fetched anew updates it */
    int (*parse)(void *parse_arg, void **parsed);
    void *parse_arg;
    void (*free_fn)(void *);
    int (*use)(void *parsed, void *use_arg);
    void *use_arg;
};

/* use on the kept form when it is key's at sha256: true with *rc; false, nothing ran. */
static bool memo_try(struct upstream *u, const struct memo_req *q, int *rc)
{
    upstream_state_lock(u);
    struct memo_slot *s = upstream_state(u);
    struct doc_memo *m = s ? s->cur : NULL;
    bool hit = m && strcmp(m->key, q->key) == 0 && strcmp(m->sha256, q->sha256) == 0;
    if (hit)
        *rc = q->use(m->parsed, q->use_arg);
    upstream_state_unlock(u);
    return hit;
}

/*
 * Parses, runs use on the new form and keeps it in place of the one before. Returns parse's
 * error or use's result; *parse_rc (may be NULL): parse's own outcome.
 */
static int memo_parse(struct upstream *u, const struct memo_req *q, int *parse_rc)
{
    struct doc_memo *nm = calloc(1, sizeof(*nm));
    int rc = nm && (nm->key = strdup(q->key)) ? 0 : -ENOMEM;
    if (rc == 0) {
        nm->free_fn = q->free_fn;
        rc = q->parse(q->parse_arg, &nm->parsed);
    }
    if (parse_rc)
        *parse_rc = rc;
    if (rc < 0) {
        memo_free(nm);
        return rc;
    }
    snprintf(nm->sha256, sizeof(nm->sha256), "%s", q->sha256);
    upstream_state_lock(u);
    rc = q->use(nm->parsed, q->use_arg);
    struct memo_slot *s = slot_get(u);
    if (s) {
        memo_free(s->cur);
        s->cur = nm;
        nm = NULL;
    }
    upstream_state_unlock(u);
    memo_free(nm); /* no slot (no memory): used once, not kept */
    return rc;
}

/* The kept form, else one parse per key and sha256 at a time, whose form the others use. */
static int memo_use(struct upstream *u, const struct memo_req *q)
{
    int rc;
    if (memo_try(u, q, &rc))
        return rc;
    upstream_state_lock(u);
    struct memo_slot *s = slot_get(u);
    struct sf_group *g = s ? s->parses : NULL; /* the slot stays while u does */
    upstream_state_unlock(u);
    char *fkey = malloc(strlen(q->key) + 66);
    struct sf_call *c = NULL;
    int role = -ENOMEM;
    if (fkey && g) {
        sprintf(fkey, "%.64s %s", q->sha256, q->key);
        role = sf_join(g, fkey, NULL, NULL, NULL, &c);
    }
    free(fkey);
    if (role == SF_JOINED) {
        int lrc = 0;
        bool done = sf_wait(c, clock_mono_ms() + MEMO_WAIT_MS, &lrc, NULL) == 0;
        sf_release(c);
        if (done && lrc < 0)
            return lrc; /* the document could not be read or parsed: the same again */
        if (memo_try(u, q, &rc))
            return rc;
        return memo_parse(u, q, NULL); /* another document took the slot since, or a wait out */
    }
    /* a parse that ended between the look above and the join kept its form already */
    int prc = 0;
    if (role != SF_LEADER || !memo_try(u, q, &rc))
        rc = memo_parse(u, q, &prc);
    if (role == SF_LEADER) {
        sf_finish(g, c, prc, 0);
        sf_release(c);
    }
    return rc;
}

int drv_doc_memo_use(struct upstream *u, const char *key, const char *sha256,
                     int (*parse)(void *parse_arg, void **parsed), void *parse_arg,
                     void (*free_fn)(void *), int (*use)(void *parsed, void *use_arg),
                     void *use_arg)
{
    struct memo_req q = {.key = key,
                         .sha256 = sha256,
                         .parse = parse,
                         .parse_arg = parse_arg,
                         .free_fn = free_fn,
                         .use = use,
                         .use_arg = use_arg};
    return memo_use(u, &q);
}

/* A parse of a document that was answered without its bytes: reads them first. */
struct doc_load {
    struct upstream *u;
    const struct upstream_doc_req *req;
    struct upstream_doc *d;
    int (*parse)(void *parse_arg, void **parsed);
    void *parse_arg;
};

static int load_parse(void *arg, void **parsed)
{
    struct doc_load *l = arg;
    int rc = upstream_doc_body(l->u, l->d);
    if (rc == -ENOENT) {
        /* evicted since it was answered: the document again, bytes and all (sha256 may move) */
        struct upstream_doc_req again = *l->req;
        again.no_body = false;
        upstream_doc_clear(l->d);
        rc = upstream_doc_fetch(l->u, &again, l->d);
    }
    return rc < 0 ? rc : l->parse(l->parse_arg, parsed);
}

int drv_doc_use(struct upstream *u, const struct upstream_doc_req *req, struct upstream_doc *d,
                const char *key, int (*parse)(void *parse_arg, void **parsed), void *parse_arg,
                void (*free_fn)(void *), int (*use)(void *parsed, void *use_arg), void *use_arg)
{
    struct upstream_doc_req ask = *req;
    ask.no_body = true;
    int rc = upstream_doc_fetch(u, &ask, d);
    if (rc < 0)
        return rc;
    struct doc_load l = {.u = u, .req = req, .d = d, .parse = parse, .parse_arg = parse_arg};
    struct memo_req q = {.key = key,
                         .sha256 = d->sha256,
                         .parse = load_parse,
                         .parse_arg = &l,
                         .free_fn = free_fn,
                         .use = use,
                         .use_arg = use_arg};
    return memo_use(u, &q);
}
