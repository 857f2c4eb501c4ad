/*
 * rendered: documents rendered once per source and served like stored files
 * (include/upstreamfs/rendered.h).
 *
 * One hidden row per rendered document (path, variant, base, filter): a changed source replaces
 * the row's bytes, so rows do not pile up per source version; the bytes it named before are
 * unreferenced objects that eviction and `cache gc` reclaim like any other.
 */
#include "engine_i.h"
#include "upstreamfs/clock.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/log.h"
#include "upstreamfs/rendered.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_WAIT_MS 60000 /* a joined caller waits this long for the leader's render */

const char *engine_file_digest(const struct engine_file *f)
{
    return f->fd >= 0 ? f->digest : "";
}

/* The row name "render:<top> <sha256 of path, variant, base, filter_key>". */
static int row_name(const struct rendered_key *k, char *name, size_t len)
{
    char variant[24], hex[65];
    snprintf(variant, sizeof(variant), "%d", k->variant);
    const char *parts[] = {k->path, variant, k->base, k->filter_key ? k->filter_key : ""};
    size_t total = 0, at = 0;
    for (size_t i = 0; i < 4; i++)
        total += strlen(parts[i]) + 1;
    char *buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < 4; i++) { /* each part NUL-terminated: no two keys hash alike */
        size_t n = strlen(parts[i]) + 1;
        memcpy(buf + at, parts[i], n);
        at += n;
    }
    hash_sha256_hex(buf, total, hex);
    free(buf);
    int n = snprintf(name, len, "render:%s %s", k->top, hex);
    return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

static void info_from_row(const struct node *n, struct rendered_info *info)
{
    snprintf(info->digest, sizeof(info->digest), "%s", n->digest);
    snprintf(info->ctype, sizeof(info->ctype), "%s", n->ctype ? n->ctype : "");
    info->size = n->size;
    info->rendered = n->checked;
}

/* The stored render of row name when it was made from source: 0 with *out, else -ENOENT. */
static int stored(struct engine *e, const char *name, const char *source, struct engine_file **out,
                  struct rendered_info *info)
{
    struct node n;
    pthread_mutex_lock(&e->mu);
    int rc = index_child(e->ix, 0, name, &n);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return -ENOENT;
    rc = -ENOENT;
    if (n.etag && strcmp(n.etag, source) == 0 && n.digest[0] &&
        engine__open_blob(e, n.digest, out) == 0) {
        info_from_row(&n, info);
        rc = 0;
    }
    node_clear(&n);
    return rc;
}

/* Records the render (hex, len bytes of ctype) of k as row name. */
static int record(struct engine *e, const struct rendered_key *k, const char *name, const char *hex,
                  size_t len, const char *ctype, struct rendered_info *info)
{
    struct node n;
    pthread_mutex_lock(&e->mu);
    if (index_child(e->ix, 0, name, &n) < 0) {
        memset(&n, 0, sizeof(n));
        n.name = strdup(name);
        n.path = strdup("");
    }
    free(n.top);
    free(n.etag);
    free(n.ctype);
    n.top = strdup(k->top);
    n.etag = strdup(k->source);
    n.ctype = strdup(ctype);
    n.parent = 0;
    n.kind = NODE_FILE;
    n.size = (int64_t)len;
    n.checked = engine__now();
    n.is_mutable = true;
    snprintf(n.digest, sizeof(n.digest), "%s", hex);
    int rc = n.name && n.path && n.top && n.etag && n.ctype ? index_put(e->ix, &n) : -ENOMEM;
    pthread_mutex_unlock(&e->mu);
    if (rc == 0)
        info_from_row(&n, info);
    node_clear(&n);
    return rc;
}

/* Renders k now, stores the bytes and the row, and opens them. */
static int render_now(struct engine *e, const struct rendered_key *k, const char *name,
                      rendered_make_fn make, void *arg, struct engine_file **out,
                      struct rendered_info *info)
{
    char *buf = NULL, hex[65];
    size_t len = 0;
    const char *ctype = NULL;
    int64_t t0 = clock_mono_ms();
    int rc = make(arg, &buf, &len, &ctype);
    if (rc < 0)
        return rc;
    rc = store_put_bytes(&e->store, buf, len, hex);
    free(buf);
    if (rc < 0)
        return rc;
    engine__object_added(e, hex, (int64_t)len, false);
    atomic_fetch_add(&e->renders, 1);
    log_info("%s: rendered %s (variant %d, %zu bytes, %lld ms)", k->top, k->path, k->variant, len,
             (long long)(clock_mono_ms() - t0));
    rc = record(e, k, name, hex, len, ctype ? ctype : "application/octet-stream", info);
    if (rc == 0)
        rc = engine__open_blob(e, hex, out);
    info->made = rc == 0;
    return rc;
}

int engine_rendered_open(struct engine *e, const struct rendered_key *k, rendered_make_fn make,
                         void *arg, struct engine_file **out, struct rendered_info *info)
{
    char name[600];
    memset(info, 0, sizeof(*info));
    int rc = row_name(k, name, sizeof(name));
    if (rc < 0)
        return rc;
    if (stored(e, name, k->source, out, info) == 0)
        return 0;
    struct sf_call *c;
    int role = sf_join(e->docs, name, NULL, NULL, NULL, &c);
    if (role < 0) /* no memory, or closing: render here, alone */
        return render_now(e, k, name, make, arg, out, info);
    if (role == SF_JOINED) {
        int lrc = 0;
        bool done = sf_wait(c, clock_mono_ms() + RENDER_WAIT_MS, &lrc, NULL) == 0;
        sf_release(c);
        if (done && lrc == -EIO)
            return lrc; /* a source its protocol cannot read: the same again, not rendered */
        if (stored(e, name, k->source, out, info) == 0)
            return 0;
        return render_now(e, k, name, make, arg, out, info); /* another source meanwhile */
    }
    /* a render that ended between the look above and the join stored it already */
    rc = stored(e, name, k->source, out, info);
    if (rc < 0)
        rc = render_now(e, k, name, make, arg, out, info);
    sf_finish(e->docs, c, rc, 0);
    sf_release(c);
    return rc;
}
