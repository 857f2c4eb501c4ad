/*
 * removals: cached versions their upstream no longer lists (docs/policy.md, "Upstream
 * removals"; include/upstreamfs/removals.h).
 *
 * When a fetch stores new bytes of a document that lists a directory's files (an npm
 * packument: <name>/-; a PyPI project page: <name>) -- a revalidation that changed, or a
 * first copy (the other variant of a packument may have brought the files) -- documents.c
 * calls engine__removals_check with that directory (upstream_doc_req.lists) once the copy is
 * stored. The driver's listing of the directory, now made from the new document, is
 * compared with the entries the index holds cached there: a cached entry the listing lacks
 * is marked removed-upstream, a marked one it lists again is unmarked, in one transaction
 * (index_removed_sync). Nothing is compared on reads that bring no new document.
 *
 * A mark shows in the user.upstreamfs.removed xattr, cache stats, /metrics and the web
 * page. Under the proxy's on_removed hide (config_proxy_hides_removed) a marked entry is
 * left out of listings and refused by path with cause policy; under keep it stays served.
 * engine_purge deletes marked entries for good ("upstreamfs cache purge").
 */
#include "engine_i.h"
#include "upstreamfs/log.h"
#include "upstreamfs/removals.h"
#include "upstreamfs/strset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int removals_diff(const char *const *cached, size_t n_cached, const char *const *listed,
                  size_t n_listed, bool *gone)
{
    struct strset set = {0};
    int rc = 0;
    for (size_t i = 0; i < n_listed && rc >= 0; i++)
        rc = strset_add(&set, listed[i]);
    for (size_t i = 0; i < n_cached && rc >= 0; i++)
        gone[i] = !strset_has(&set, cached[i]);
    strset_free(&set);
    return rc < 0 ? -ENOMEM : 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * Whether s, in file name base, starts with the end of a version: an archive extension, or
 * '-' in a wheel or egg (their tags follow; in an npm tarball '-' continues a prerelease).
 */
static bool version_end(const char *base, const char *s)
{
    static const char *const ext[] = {".tgz", ".tar.gz", ".zip", ".whl", ".tar.bz2", ".egg"};
    if (s[0] == '-')
        return ends_with(base, ".whl") || ends_with(base, ".egg");
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
        if (!strcmp(s, ext[i]))
            return true;
    return false;
}

bool removals_spec_matches(const char *path, const char *name, const char *version)
{
    size_t nl = strlen(name);
    if (strncmp(path, name, nl) != 0 || path[nl] != '/')
        return false;
    if (!version)
        return true;
    const char *base = strrchr(path, '/') + 1;
    if (!strcmp(base, version))
        return true; /* a tag */
    size_t vl = strlen(version);
    for (const char *d = strchr(base, '-'); d; d = strchr(d + 1, '-'))
        if (!strncmp(d + 1, version, vl) && version_end(base, d + 1 + vl))
            return true;
    return false;
}

int removals_spec_split(char *spec, char **key, char **name, char **version)
{
    char *slash = strchr(spec, '/');
    if (!slash || slash == spec || !slash[1])
        return -EINVAL;
    *slash = '\0';
    *key = spec;
    *name = slash + 1;
    /* The version follows the last '@' that is not the first character (npm's "@scope/"). */
    char *at = strrchr(*name + 1, '@');
    *version = NULL;
    if (at) {
        *at = '\0';
        *version = at + 1;
        if (!**version)
            return -EINVAL;
    }
    size_t nl = strlen(*name);
    while (nl > 0 && (*name)[nl - 1] == '/')
        (*name)[--nl] = '\0';
    return nl ? 0 : -EINVAL;
}

/*
 * Whether directory node k is a version with something cached below it (a docker tag's image
 * layout). A name with ':' is a digest ("sha256:..."): content by its own name, never a
 * version an upstream removes.
 */
static bool cached_unit(struct engine *e, const struct node *k)
{
    char **d = NULL;
    size_t nd = 0;
    if (k->kind != NODE_DIR || k->local || strchr(k->name, ':'))
        return false;
    pthread_mutex_lock(&e->mu);
    int rc = index_digests_under(e->ix, k->ino, &d, &nd);
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < nd; i++)
        free(d[i]);
    free(d);
    return rc == 0 && nd > 0;
}

/*
 * The cached entries of dir (node d): files with content that never changes (a document the
 * driver generates is mutable), not local content, not the driver's own dot names; and
 * directories that are one unit with content below (cached_unit).
 */
static int cached_children(struct engine *e, const struct node *d, char ***names, size_t *n)
{
    struct node *kids = NULL;
    size_t nk = 0, cnt = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_children(e->ix, d->ino, &kids, &nk);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc;
    char **out = nk ? calloc(nk, sizeof(*out)) : NULL;
    for (size_t i = 0; out && i < nk; i++)
        if ((kids[i].kind == NODE_FILE && kids[i].digest[0] && !kids[i].local &&
             !kids[i].is_mutable && kids[i].name[0] != '.') ||
            cached_unit(e, &kids[i]))
            if ((out[cnt] = strdup(kids[i].name)) != NULL)
                cnt++;
    index_nodes_free(kids, nk);
    if (nk && !out)
        return -ENOMEM;
    *names = out;
    *n = cnt;
    return 0;
}

static void free_names(char **l, size_t n)
{
    for (size_t i = 0; l && i < n; i++)
        free(l[i]);
    free(l);
}

/* Marks the cached names of dir the listing l lacks, unmarks the ones it has. */
static int sync_marks(struct engine *e, struct upstream *u, const char *dir, char **cached,
                      size_t nc, const struct drv_listing *l)
{
    const char **listed = l->n ? calloc(l->n, sizeof(*listed)) : NULL;
    bool *gone = calloc(nc, sizeof(*gone));
    char **mark = calloc(nc, sizeof(*mark)), **unmark = calloc(nc, sizeof(*unmark));
    size_t nm = 0, nu = 0;
    int rc = gone && mark && unmark && (listed || !l->n) ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        listed[i] = l->items[i].name;
    if (rc == 0)
        rc = removals_diff((const char *const *)cached, nc, listed, l->n, gone);
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        char *path = engine__join(dir, cached[i]);
        if (!path) {
            rc = -ENOMEM;
            continue;
        }
        pthread_mutex_lock(&e->mu);
        bool was = index_removed_get(e->ix, u->cfg.key, path, NULL) == 1;
        pthread_mutex_unlock(&e->mu);
        if (gone[i]) {
            mark[nm++] = path;
            if (!was)
                log_warn("%s proxy %s: %s is no longer listed upstream: marked removed-upstream%s",
                         u->drv->type, u->cfg.key, path,
                         config_proxy_hides_removed(&u->cfg) ? " (hidden)" : "");
        } else {
            unmark[nu++] = path;
            if (was)
                log_info("%s proxy %s: %s is listed upstream again: unmarked", u->drv->type,
                         u->cfg.key, path);
        }
    }
    if (rc == 0) {
        pthread_mutex_lock(&e->mu);
        rc = index_removed_sync(e->ix, u->cfg.key, mark, nm, unmark, nu, engine__now());
        pthread_mutex_unlock(&e->mu);
    }
    free_names(mark, nm);
    free_names(unmark, nu);
    free(gone);
    free(listed);
    return rc;
}

/* The cached entries of dir in *cached (none: 0 and nothing), or -errno. */
static int cached_in(struct engine *e, struct upstream *u, const char *dir, char ***cached,
                     size_t *nc)
{
    struct node d;
    *cached = NULL;
    *nc = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_find(e->ix, u->cfg.key, dir, &d);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc; /* never looked at: nothing cached there */
    rc = cached_children(e, &d, cached, nc);
    node_clear(&d);
    return rc;
}

void upstream_removals_listed(struct upstream *u, const char *dir, const struct drv_listing *l)
{
    char **cached = NULL;
    size_t nc = 0;
    int rc = cached_in(u->eng, u, dir, &cached, &nc);
    if (rc == 0 && nc > 0)
        rc = sync_marks(u->eng, u, dir, cached, nc, l);
    if (rc < 0)
        log_warn("%s proxy %s: %s: removals not checked: %s", u->drv->type, u->cfg.key, dir,
                 strerror(-rc));
    free_names(cached, nc);
}

void upstream_removed_set(struct upstream *u, const char *path, bool removed)
{
    struct engine *e = u->eng;
    struct node n;
    char *p = (char *)path;
    pthread_mutex_lock(&e->mu);
    int have = index_find(e->ix, u->cfg.key, path, &n);
    int marked = have == 0 ? index_removed_get(e->ix, u->cfg.key, path, NULL) : 0;
    pthread_mutex_unlock(&e->mu);
    if (have < 0)
        return; /* not in the index: nothing cached to mark */
    bool cached = (n.kind == NODE_FILE && n.digest[0] && !n.local) || cached_unit(e, &n);
    node_clear(&n);
    int rc = 0;
    /* Only a change is written. */
    if (removed && cached && marked == 0) {
        log_warn("%s proxy %s: %s is gone upstream: marked removed-upstream%s", u->drv->type,
                 u->cfg.key, path, config_proxy_hides_removed(&u->cfg) ? " (hidden)" : "");
        pthread_mutex_lock(&e->mu);
        rc = index_removed_sync(e->ix, u->cfg.key, &p, 1, NULL, 0, engine__now());
        pthread_mutex_unlock(&e->mu);
    } else if (!removed && marked == 1) {
        pthread_mutex_lock(&e->mu);
        rc = index_removed_sync(e->ix, u->cfg.key, NULL, 0, &p, 1, engine__now());
        pthread_mutex_unlock(&e->mu);
    }
    if (rc < 0)
        log_warn("%s proxy %s: %s: removal not recorded: %s", u->drv->type, u->cfg.key, path,
                 strerror(-rc));
}

void engine__removals_check(struct upstream *u, const char *dir)
{
    char **cached = NULL;
    size_t nc = 0;
    struct drv_listing l = {0};
    if (!u->drv->list)
        return;
    int rc = cached_in(u->eng, u, dir, &cached, &nc);
    if (rc == 0 && nc > 0) {           /* no request for a directory with nothing cached */
        rc = u->drv->list(u, dir, &l); /* from the document just stored */
        if (rc == 0)
            rc = sync_marks(u->eng, u, dir, cached, nc, &l);
    }
    if (rc < 0 && rc != -ENOENT)
        log_warn("%s proxy %s: %s: removals not checked: %s", u->drv->type, u->cfg.key, dir,
                 strerror(-rc));
    drv_listing_clear(&l);
    free_names(cached, nc);
}

/* Whether n is marked removed-upstream (*since when not NULL). */
static bool node_marked(struct engine *e, const struct node *n, int64_t *since)
{
    if (n->local || !n->top || !n->top[0] || !n->path || !n->path[0] || n->kind == NODE_ABSENT)
        return false;
    pthread_mutex_lock(&e->mu);
    int rc = index_removed_get(e->ix, n->top, n->path, since);
    pthread_mutex_unlock(&e->mu);
    return rc == 1;
}

bool engine__removed_hidden(struct engine *e, const struct node *n)
{
    /* Versions are files with content (tarballs, distributions) and directories (tags). */
    if (n->local || n->via || !n->top || !n->path || !n->path[0] ||
        (n->kind == NODE_FILE ? !n->digest[0] : n->kind != NODE_DIR))
        return false;
    struct upstream *u = engine__upstream(e, n->top);
    bool hide = u && config_proxy_hides_removed(&u->cfg);
    upstream_unref(u);
    return hide && node_marked(e, n, NULL);
}

int engine__removed_refused(struct engine *e, const struct node *n)
{
    if (!engine__removed_hidden(e, n))
        return 0;
    struct upstream *u = engine__upstream(e, n->top);
    if (!u)
        return -ENOENT;
    struct failure f = {.cause = FAILURE_POLICY};
    failure_note_set(u->cfg.key, &f, "", true);
    int rc = engine__failed(e, u, n->ino, -EACCES);
    upstream_unref(u);
    return rc;
}

int engine__removed_names(struct engine *e, const struct node *dir, char ***names, size_t *count)
{
    char **out = NULL;
    size_t cnt = 0;
    *names = NULL;
    *count = 0;
    struct index_removed *marks = NULL;
    size_t n = 0;
    if (dir->local || !dir->top || !dir->top[0])
        return 0;
    struct upstream *u = engine__upstream(e, dir->top);
    bool hide = u && config_proxy_hides_removed(&u->cfg);
    upstream_unref(u);
    if (!hide)
        return 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_removed_list(e->ix, dir->top, &marks, &n);
    pthread_mutex_unlock(&e->mu);
    size_t dl = strlen(dir->path);
    if (rc == 0 && n && !(out = calloc(n, sizeof(*out))))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *p = marks[i].path;
        if (dl && (strncmp(p, dir->path, dl) != 0 || p[dl] != '/'))
            continue;
        const char *name = dl ? p + dl + 1 : p;
        if (!strchr(name, '/') && !(out[cnt++] = strdup(name)))
            rc = -ENOMEM;
    }
    index_removed_free(marks, n);
    if (rc < 0) {
        free_names(out, cnt);
        return rc;
    }
    *names = out;
    *count = cnt;
    return 0;
}

int engine__removed_xattr(struct engine *e, int64_t ino, char *buf, size_t len)
{
    struct node n;
    int64_t since = 0;
    int rc = engine__node_get(e, ino, &n);
    if (rc < 0)
        return rc;
    bool marked = node_marked(e, &n, &since);
    node_clear(&n);
    if (!marked)
        return -ENODATA;
    char t[32];
    failure_time_rfc3339(since, t, sizeof(t));
    snprintf(buf, len, "removed-upstream %s", t);
    return 0;
}

/* Deletes one marked entry for good: its node (and what is below it), then its objects that
 * no other node names. The objects that could not be removed count into *failed. */
static int purge_entry(struct engine *e, const struct index_removed *m, int *failed)
{
    struct node n;
    char **d = NULL;
    size_t nd = 0;
    pthread_mutex_lock(&e->mu);
    int rc = index_find(e->ix, m->top, m->path, &n);
    if (rc == 0) {
        rc = index_digests_under(e->ix, n.ino, &d, &nd);
        if (rc == 0)
            rc = index_remove(e->ix, n.ino);
        node_clear(&n);
    }
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; rc == 0 && i < nd; i++) {
        pthread_mutex_lock(&e->mu);
        int ref = index_digest_referenced(e->ix, d[i]);
        pthread_mutex_unlock(&e->mu);
        int r = ref == 0 ? engine__evict_object(e, d[i]) : ref;
        if (r < 0) {
            (*failed)++;
            log_error("purge %s/%s: sha256:%s: %s", m->top, m->path, d[i], strerror(-r));
        }
    }
    free_names(d, nd);
    return rc;
}

int engine_purge(struct engine *e, const char *spec, char ***paths, size_t *n, int *failed)
{
    char *copy = strdup(spec), *key, *name, *version;
    struct index_removed *marks = NULL;
    size_t nm = 0, cnt = 0;
    *paths = NULL;
    *n = 0;
    *failed = 0;
    if (!copy)
        return -ENOMEM;
    int rc = removals_spec_split(copy, &key, &name, &version);
    if (rc == 0) {
        pthread_mutex_lock(&e->mu);
        rc = index_removed_list(e->ix, key, &marks, &nm);
        pthread_mutex_unlock(&e->mu);
    }
    char **out = rc == 0 && nm ? calloc(nm, sizeof(*out)) : NULL;
    for (size_t i = 0; rc == 0 && out && i < nm; i++) {
        if (!removals_spec_matches(marks[i].path, name, version))
            continue;
        int r = purge_entry(e, &marks[i], failed);
        if (r < 0) {
            (*failed)++;
            log_error("purge %s/%s: %s", marks[i].top, marks[i].path, strerror(-r));
        } else if (asprintf(&out[cnt], "%s/%s", marks[i].top, marks[i].path) >= 0) {
            cnt++;
        }
    }
    index_removed_free(marks, nm);
    free(copy);
    if (rc < 0 || cnt == 0) {
        free_names(out, cnt);
        return rc < 0 ? rc : *failed ? -EIO : -ENODATA;
    }
    *paths = out;
    *n = cnt;
    return (int)cnt;
}
