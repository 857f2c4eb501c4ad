/*
 * docker_catalog: the registry's lists — a repository's tags (tags/list) and the catalog
 * of repositories (_catalog, kept per proxy for --metadata-ttl; a registry without one is
 * remembered as such), read page by page through Link headers on the registry's own origin
 * only, each capped. See docker.c for the driver's design.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/upstream.h"

#include "docker_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void dk_catalog_free(char **cat, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(cat[i]);
    free(cat);
}

/* Follows Link rel="next" from a page, only on the registry's own origin. */
static char *next_page(struct upstream *u, const char *link, const char *url)
{
    char *next = NULL, *base = NULL;
    if (!link || oci_link_next(link, url, &next) < 0)
        return NULL;
    char *a = fetch_url_origin(next);
    char *b = dk_reg_base(u, dk_state(u), &base) == 0 ? fetch_url_origin(base) : NULL;
    bool same = a && b && strcmp(a, b) == 0;
    free(a);
    free(b);
    free(base);
    if (!same) {
        log_warn("proxy %s: ignoring a pagination link to another origin", upstream_config(u)->key);
        free(next);
        return NULL;
    }
    return next;
}

/*
 * Reads every page of a paginated list (tags/list, _catalog), calling add
 * for each string of the array named key. Returns 0 or -errno; *whole (when
 * not NULL): the list ended, rather than stopping at DK_PAGES_MAX or
 * DK_LIST_ENTRIES_MAX.
 */
static int read_pages(struct upstream *u, const char *scope, const char *first, const char *key,
                      int (*add)(void *arg, const char *s), void *arg, bool *whole)
{
    char *url = strdup(first);
    size_t total = 0;
    int rc = url ? 0 : -ENOMEM;
    for (int page = 0; rc == 0 && url && page < DK_PAGES_MAX; page++) {
        struct fetch_response r;
        json_error_t jerr;
        rc = dk_reg_request(u, scope, url, false, false, DK_PAGE_MAX, &r);
        if (rc == 0)
            rc = failure_status_errno(r.status);
        json_t *root = rc == 0 ? json_loadb(r.body, r.body_len, 0, &jerr) : NULL;
        json_t *list = json_object_get(root, key);
        if (rc == 0 &&
            (!json_is_object(root) || (list && !json_is_array(list) && !json_is_null(list)))) {
            log_warn("proxy %s: %s: not a list answer", upstream_config(u)->key, url);
            rc = -EIO;
        }
        size_t i;
        json_t *v;
        json_array_foreach(json_is_array(list) ? list : NULL, i, v)
        {
            if (rc != 0 || total >= DK_LIST_ENTRIES_MAX)
                break;
            if (json_is_string(v)) {
                rc = add(arg, json_string_value(v));
                total++;
            }
        }
        char *next = rc == 0 && total < DK_LIST_ENTRIES_MAX ? next_page(u, r.link, url) : NULL;
        json_decref(root);
        fetch_response_clear(&r);
        free(url);
        url = next;
    }
    if (whole)
        *whole = rc == 0 && !url && total < DK_LIST_ENTRIES_MAX;
    free(url);
    return rc;
}

static int add_tag(void *arg, const char *tag)
{
    struct drv_entry e = {.kind = NODE_DIR, .size = 0};
    return oci_tag_valid(tag) ? drv_listing_add(arg, tag, &e) : 0;
}

int dk_list_tags(struct upstream *u, const char *repo, struct drv_listing *out, bool *whole)
{
    char scope[DK_SCOPE_MAX];
    char *url = NULL;
    int rc = dk_reg_url(u, &url, "%s/tags/list", repo);
    if (rc < 0)
        return rc;
    dk_scope(repo, scope, sizeof(scope));
    rc = read_pages(u, scope, url, "tags", add_tag, out, whole);
    free(url);
    return rc;
}

struct strv {
    char **v;
    size_t n, cap;
};

static int strv_add(void *arg, const char *s)
{
    struct strv *sv = arg;
    if (!oci_name_valid(s))
        return 0;
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        char **nv = realloc(sv->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        sv->v = nv;
        sv->cap = cap;
    }
    sv->v[sv->n] = strdup(s);
    return sv->v[sv->n++] ? 0 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Refreshes the catalog when it is older than the TTL. A registry that
 * does not serve one (Docker Hub, denied scope) is remembered as such for
 * the TTL; a failing one keeps the last answer.
 */
static void catalog_refresh(struct upstream *u, struct dk_state *s)
{
    if (dk_is_hub(u))
        return; /* Docker Hub has no catalog */
    int64_t now = clock_mono_ms();
    upstream_state_lock(u);
    bool fresh = s->cat_fixed || (s->cat != DK_CAT_UNKNOWN &&
                                  now < s->cat_checked + upstream_config(u)->metadata_ttl * 1000);
    upstream_state_unlock(u);
    if (fresh || upstream_config(u)->offline)
        return;
    struct strv sv = {0};
    /* No n=: registry 2.8 refuses one above its maxentries; its own page size and Links do. */
    char *url = NULL;
    int rc = dk_reg_url(u, &url, "_catalog");
    if (rc == 0)
        rc = read_pages(u, "registry:catalog:*", url, "repositories", strv_add, &sv, NULL);
    free(url);
    if (rc == 0 && sv.n > 1)
        qsort(sv.v, sv.n, sizeof(*sv.v), cmp_str);
    upstream_state_lock(u);
    if (rc == 0) {
        dk_catalog_free(s->catalog, s->ncatalog);
        s->catalog = sv.v;
        s->ncatalog = sv.n;
        s->cat = DK_CAT_HAVE;
        s->cat_checked = now;
        sv.v = NULL;
        sv.n = 0;
    } else if (rc == -ENOENT || rc == -EACCES || rc == -EIO) {
        dk_catalog_free(s->catalog, s->ncatalog);
        s->catalog = NULL;
        s->ncatalog = 0;
        s->cat = DK_CAT_NONE;
        s->cat_checked = now;
    }
    upstream_state_unlock(u);
    dk_catalog_free(sv.v, sv.n);
}

/* First index in the sorted catalog not less than key (under the state lock). */
static size_t lower_bound(struct dk_state *s, const char *key)
{
    size_t lo = 0, hi = s->ncatalog;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(s->catalog[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void dk_catalog_knows(struct upstream *u, const char *path, bool *possible, bool *is_repo)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 2];
    *possible = true;
    *is_repo = false;
    if (!s || dk_is_hub(u))
        return;
    catalog_refresh(u, s);
    snprintf(prefix, sizeof(prefix), "%s/", path);
    upstream_state_lock(u);
    if (s->cat == DK_CAT_HAVE) {
        size_t i = lower_bound(s, path);
        *is_repo = i < s->ncatalog && strcmp(s->catalog[i], path) == 0;
        size_t j = lower_bound(s, prefix);
        bool below = j < s->ncatalog && strncmp(s->catalog[j], prefix, strlen(prefix)) == 0;
        *possible = *is_repo || below;
    } else {
        *is_repo = true; /* unknown: worth asking */
    }
    upstream_state_unlock(u);
}

int dk_catalog_children(struct upstream *u, const char *dir, struct drv_listing *out, bool *have)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 2];
    struct strv names = {0};
    int rc = 0;
    *have = false;
    if (!s || dk_is_hub(u))
        return 0;
    catalog_refresh(u, s);
    snprintf(prefix, sizeof(prefix), "%s%s", dir, dir[0] ? "/" : "");
    size_t pl = strlen(prefix);
    upstream_state_lock(u);
    if (s->cat == DK_CAT_HAVE) {
        *have = true;
        for (size_t i = lower_bound(s, prefix);
             rc == 0 && i < s->ncatalog && strncmp(s->catalog[i], prefix, pl) == 0; i++) {
            const char *rest = s->catalog[i] + pl;
            char comp[OCI_NAME_MAX + 1];
            size_t n = strcspn(rest, "/");
            if (n == 0 || n > OCI_NAME_MAX)
                continue;
            memcpy(comp, rest, n);
            comp[n] = '\0';
            if (names.n == 0 || strcmp(names.v[names.n - 1], comp) != 0)
                rc = strv_add(&names, comp);
        }
    }
    upstream_state_unlock(u);
    /* Below one prefix, names sharing a first component are adjacent only after sorting. */
    if (names.n > 1)
        qsort(names.v, names.n, sizeof(*names.v), cmp_str);
    struct drv_entry e = {.kind = NODE_DIR};
    for (size_t i = 0; rc == 0 && i < names.n; i++)
        if (i == 0 || strcmp(names.v[i], names.v[i - 1]) != 0)
            rc = drv_listing_add(out, names.v[i], &e);
    dk_catalog_free(names.v, names.n);
    return rc;
}
