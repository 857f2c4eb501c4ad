/*
 * doc_memo: the parsed form of the document a driver read last, kept in the driver's state
 * slot (include/upstreamfs/driver.h, drv_doc_memo_use). The bytes come from the shared
 * document cache (upstream_doc_fetch); this keeps only what parsing them made, so a run of
 * lookups in one package or project parses its document once.
 */
#include "upstreamfs/driver.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct doc_memo {
    char *key;
    char sha256[65];
    void *parsed;
    void (*free_fn)(void *);
};

static void memo_free(void *p)
{
    struct doc_memo *m = p;
    if (!m)
        return;
    if (m->free_fn && m->parsed)
        m->free_fn(m->parsed);
    free(m->key);
    free(m);
}

int drv_doc_memo_use(struct upstream *u, const char *key, const char *sha256,
                     int (*parse)(void *parse_arg, void **parsed), void *parse_arg,
                     void (*free_fn)(void *), int (*use)(void *parsed, void *use_arg),
                     void *use_arg)
{
    upstream_state_lock(u);
    struct doc_memo *m = upstream_state(u);
    if (m && strcmp(m->key, key) == 0 && strcmp(m->sha256, sha256) == 0) {
        int rc = use(m->parsed, use_arg);
        upstream_state_unlock(u);
        return rc;
    }
    upstream_state_unlock(u);
    struct doc_memo *nm = calloc(1, sizeof(*nm));
    if (!nm || !(nm->key = strdup(key))) {
        free(nm);
        return -ENOMEM;
    }
    snprintf(nm->sha256, sizeof(nm->sha256), "%s", sha256);
    nm->free_fn = free_fn;
    int rc = parse(parse_arg, &nm->parsed);
    if (rc < 0) {
        memo_free(nm);
        return rc;
    }
    upstream_state_lock(u);
    rc = use(nm->parsed, use_arg);
    upstream_set_state(u, nm, memo_free);
    upstream_state_unlock(u);
    return rc;
}
