/*
 * docker: a Docker/OCI registry (the pull side of the distribution API) as
 * a tree of OCI image layouts (README.md, the mount layout; the names are
 * include/upstreamfs/oci_layout.h's):
 *
 *   <repository>/                      lists tags (tags/list, Link pagination)
 *   <repository>/<tag>/                an OCI image layout of what the tag names now
 *   <repository>/sha256:<hex>/         the same, by digest
 *       oci-layout                     generated, {"imageLayoutVersion":"1.0.0"}
 *       index.json                     generated, one descriptor annotated with the tag
 *       blobs/sha256/<hex>             the manifest or index, each platform's manifest and
 *                                      config, each layer; sizes from descriptors
 *   <namespace>/                       a directory on the way to repositories (catalog)
 *
 * Repository names contain '/', so a path has several readings (oci.h
 * oci_path_parse); the registry decides between them, asked only when a
 * reading needs it: a name inside a layout needs its repository:reference
 * to exist; a directory that may be a namespace is answered without a
 * request unless the registry's catalog says there is no such namespace.
 *
 * Freshness. Tag -> digest is mutable metadata: it is kept in memory per
 * proxy and revalidated after --metadata-ttl with a HEAD on the manifest
 * (free on Docker Hub); when the remote fails (5xx, 429, timeout, refused)
 * the last digest is used and reported stale. Manifests are fetched by
 * digest through upstream_doc_fetch (immutable, verified against the
 * digest), so they are asked for once and survive restarts. Blobs are
 * downloaded by the engine from the URLs given here and verified against
 * their digests; manifests under blobs/ are usually in the store already.
 *
 * Auth. Basic credentials are libcurl's (the proxy's endpoint, sent only to
 * the registry's own host). A Bearer challenge is learned from any 401 (or
 * a /v2/ probe before a download) and tokens come from token.h's cache,
 * one scope per repository. Every request goes through upstream_perform,
 * so the proxy's back-off and a 429's Retry-After hold apply, and cached
 * answers are served meanwhile.
 *
 * Variants (docker_i.h). The ecr driver is this driver with a variant that
 * names the registry's base URL and the Authorization to send (ECR tokens,
 * refreshed by ecr_auth), maps the proxy root to a namespace (ECR Public's
 * alias) and may limit the proxy to one repository. Names inside the
 * driver are the registry's (the variant's prefix is put on when a mount
 * path is parsed), so URLs, token scopes and the tag cache need nothing
 * else; a scoped proxy answers every other name -ENOENT without a request.
 *
 * Locking: per-proxy state is the driver's state slot (upstream_state); its
 * fields are guarded by the slot's lock (upstream_state_lock), which is never
 * held across a request. The token cache has its own lock; probe_mu
 * serialises /v2/ probes so that concurrent first downloads do not race past
 * an unknown auth scheme.
 *
 * Files: this one holds the driver ops, the names and the per-proxy state;
 * docker_auth.c the registry's URLs and the one authorised request,
 * docker_manifest.c tags and manifests, docker_layout.c the layout's blobs
 * and index.json, docker_catalog.c the tags and catalog lists
 * (docker_impl.h).
 */
#include "upstreamfs/config.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/oci_layout.h"
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

static void state_free(void *p)
{
    struct dk_state *s = p;
    if (!s)
        return;
    token_cache_free(s->tokens);
    if (s->var && s->var_st)
        s->var->close(s->var_st);
    free(s->prefix);
    free(s->realm);
    free(s->service);
    for (size_t i = 0; i < s->ntags; i++) {
        free(s->tags[i].repo);
        free(s->tags[i].ref);
    }
    free(s->tags);
    dk_catalog_free(s->catalog, s->ncatalog);
    pthread_mutex_destroy(&s->probe_mu);
    free(s);
}

/* The variant of a proxy's driver, or NULL for a plain Docker/OCI registry. */
static const struct dk_variant *variant_of(const struct upstream *u)
{
    return upstream_driver(u) == &driver_ecr ? &dk_variant_ecr : NULL;
}

/*
 * A variant's fixed catalog: the one repository of a scoped proxy (the
 * root lists the way to it, and nothing else is a namespace), or none.
 */
static int fixed_catalog(struct dk_state *s)
{
    if (s->info.only_repository) {
        if (!(s->catalog = calloc(1, sizeof(*s->catalog))) ||
            !(s->catalog[0] = strdup(s->info.only_repository)))
            return -ENOMEM;
        s->ncatalog = 1;
        s->cat = DK_CAT_HAVE;
        s->cat_fixed = true;
    } else if (s->info.no_catalog) {
        s->cat = DK_CAT_NONE;
        s->cat_fixed = true;
    }
    return 0;
}

struct dk_state *dk_state(struct upstream *u)
{
    upstream_state_lock(u);
    struct dk_state *s = upstream_state(u);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (s) {
            s->tokens = token_cache_new();
            pthread_mutex_init(&s->probe_mu, NULL);
            s->var = variant_of(u);
            if (s->var)
                s->var_st = s->var->open(u, &s->info);
            if (!s->tokens || (s->var && !s->var_st) || fixed_catalog(s) < 0) {
                state_free(s);
                s = NULL;
            }
        }
        if (s)
            upstream_set_state(u, s, state_free);
    }
    upstream_state_unlock(u);
    return s;
}

bool dk_is_hub(const struct upstream *u)
{
    return upstream_config(u)->source == SOURCE_DOCKERHUB;
}

/* Whether dir is name or a directory on the way to it. */
static bool on_the_way(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    return strncmp(name, dir, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

int dk_path_limit(struct oci_path *p, const char *only)
{
    if (!only)
        return p->layout || p->tagdir || p->nsdir ? 0 : -ENOENT;
    if (p->layout && strcmp(p->repo, only) != 0)
        p->layout = false;
    if (p->tagdir && strcmp(p->td_repo, only) != 0)
        p->tagdir = false;
    if (p->nsdir && !on_the_way(p->ns_name, only))
        p->nsdir = false;
    if (p->nsdir)
        p->ns_repo = strcmp(p->ns_name, only) == 0;
    return p->layout || p->tagdir || p->nsdir ? 0 : -ENOENT;
}

/* buf = prefix + buf (size OCI_NAME_MAX + 1); false when it does not fit. */
static bool prefix_name(char *buf, const char *prefix)
{
    size_t pl = strlen(prefix), bl = strlen(buf);
    if (pl + bl > OCI_NAME_MAX)
        return false;
    memmove(buf + pl, buf, bl + 1);
    memcpy(buf, prefix, pl);
    return true;
}

int dk_path_prefix(struct oci_path *p, const char *prefix)
{
    if (prefix && *prefix) {
        if (p->layout && !prefix_name(p->repo, prefix))
            p->layout = false;
        if (p->tagdir && !prefix_name(p->td_repo, prefix))
            p->tagdir = false;
        if (p->nsdir && !prefix_name(p->ns_name, prefix))
            p->nsdir = false;
    }
    return p->layout || p->tagdir || p->nsdir ? 0 : -ENOENT;
}

/* The variant's namespace ("" for none), asked once; copied into buf (OCI_NAME_MAX + 1). */
static int name_prefix(struct upstream *u, struct dk_state *s, char *buf)
{
    buf[0] = '\0';
    if (!s->var || !s->var->prefix)
        return 0;
    upstream_state_lock(u);
    bool have = s->prefix != NULL;
    if (have)
        snprintf(buf, OCI_NAME_MAX + 1, "%s", s->prefix);
    upstream_state_unlock(u);
    if (have)
        return 0;
    char *got = NULL;
    int rc = s->var->prefix(s->var_st, &got);
    if (rc < 0)
        return rc;
    if (got && strlen(got) > OCI_NAME_MAX) {
        free(got);
        return -ENAMETOOLONG;
    }
    snprintf(buf, OCI_NAME_MAX + 1, "%s", got ? got : "");
    upstream_state_lock(u);
    if (!s->prefix) {
        s->prefix = got ? got : strdup("");
        got = NULL;
    }
    upstream_state_unlock(u);
    free(got);
    return 0;
}

void dk_tag_gone(struct upstream *u, const char *repo, const char *ref, bool gone)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 1], path[OCI_NAME_MAX + OCI_REF_MAX + 2];
    if (!s || name_prefix(u, s, prefix) < 0)
        return;
    size_t pl = strlen(prefix);
    if (strncmp(repo, prefix, pl) != 0)
        return;
    /* The mount path of the tag directory: the repository without the variant's namespace. */
    int n = snprintf(path, sizeof(path), "%s/%s", repo + pl, ref);
    if (n > 0 && (size_t)n < sizeof(path))
        upstream_removed_set(u, path, gone);
}

/*
 * The readings of a mount path, in the registry's names: those outside a
 * scoped proxy's repository are dropped (no request), the variant's
 * namespace is put before the rest. -ENOENT when none is left.
 */
static int dk_parse(struct upstream *u, const char *path, struct oci_path *p)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + 1];
    if (!s)
        return -ENOMEM;
    if (oci_path_parse(path, dk_is_hub(u), p) < 0 || dk_path_limit(p, s->info.only_repository) < 0)
        return -ENOENT;
    int rc = name_prefix(u, s, prefix);
    return rc < 0 ? rc : dk_path_prefix(p, prefix);
}

/* ---- driver ops -------------------------------------------------------------------------- */

/* A name inside repo:ref's layout, once the image is known to exist. */
static int layout_entry(struct upstream *u, const struct oci_path *p, const struct dk_resolved *res,
                        struct drv_entry *out)
{
    switch (p->part) {
    case OCI_PART_OCI_LAYOUT:
        out->kind = NODE_FILE;
        out->generated = true;
        out->size = (int64_t)strlen(OCI_LAYOUT_FILE_BODY);
        return 0;
    case OCI_PART_INDEX_JSON: {
        char *body = NULL;
        size_t len = 0;
        bool stale = false;
        int rc = dk_make_index_json(u, p->repo, p->ref, &body, &len, &stale);
        free(body);
        if (rc < 0)
            return rc;
        out->kind = NODE_FILE;
        out->generated = true;
        out->size = (int64_t)len;
        out->is_mutable = !oci_digest_valid(p->ref);
        out->content_type = strdup(OCI_MT_OCI_INDEX);
        return out->content_type ? 0 : -ENOMEM;
    }
    case OCI_PART_BLOBS:
    case OCI_PART_BLOBS_SHA256:
        out->kind = NODE_DIR;
        return 0;
    case OCI_PART_BLOB: {
        struct dk_walk w = {.want = p->hex, .found = out};
        int rc = dk_walk_image(u, p->repo, p->ref, res, &w);
        if (rc == 0 && !out->url)
            rc = -ENOENT; /* not part of this image */
        return rc;
    }
    default:
        return -ENOENT;
    }
}

/*
 * Whether path lies below the blobs/ directory of an image already known to
 * exist (memory only, no request): there only layout names are valid, so
 * any other reading (a repository named .../blobs/sha256) is not looked for.
 */
static bool below_known_layout(struct upstream *u, const char *path)
{
    struct dk_state *s = dk_state(u);
    char prefix[OCI_NAME_MAX + OCI_REF_MAX + 16];
    bool known = false;
    if (!s)
        return false;
    for (const char *b = strstr(path, "/" OCI_LAYOUT_BLOBS "/"); b && !known;
         b = strstr(b + 1, "/" OCI_LAYOUT_BLOBS "/")) {
        struct oci_path p;
        size_t n = (size_t)(b - path) + 6; /* up to and including "/blobs" */
        if (n >= sizeof(prefix))
            break;
        memcpy(prefix, path, n);
        prefix[n] = '\0';
        if (dk_parse(u, prefix, &p) < 0 || !p.layout || p.part != OCI_PART_BLOBS ||
            oci_digest_valid(p.ref))
            continue;
        upstream_state_lock(u);
        struct dk_tag *t = dk_tag_find(s, p.repo, p.ref);
        known = t && !t->absent;
        upstream_state_unlock(u);
    }
    return known;
}

static int dk_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    struct oci_path p;
    struct dk_resolved res;
    int rc;
    if (!path[0]) {
        out->kind = NODE_DIR;
        return 0;
    }
    if ((rc = dk_parse(u, path, &p)) < 0)
        return rc;
    if (p.layout) {
        rc = dk_image_check(u, p.repo, p.ref, &res);
        if (rc == 0)
            return layout_entry(u, &p, &res, out);
        if (rc != -ENOENT)
            return rc;
    }
    if (below_known_layout(u, path))
        return -ENOENT;
    bool ns = false, ns_repo = false;
    if (p.nsdir)
        dk_catalog_knows(u, path, &ns, &ns_repo);
    if (p.tagdir) {
        /*
         * Where a namespace is possible, a plain tag name is answered
         * without asking; a digest, a reserved layout name or a name that
         * can only be a tag directory is checked.
         */
        if (ns && !p.layout && !oci_digest_valid(p.td_ref)) {
            out->kind = NODE_DIR;
            return 0;
        }
        rc = dk_image_check(u, p.td_repo, p.td_ref, &res);
        if (rc == 0 || ns) {
            out->kind = NODE_DIR;
            /* A known image layout is one unit: a registry takes all of it from one upstream. */
            if (rc == 0 && !(out->content_type = strdup(OCI_LAYOUT_DIR_TYPE)))
                return -ENOMEM;
            return 0;
        }
        return rc;
    }
    if (ns) {
        out->kind = NODE_DIR;
        return 0;
    }
    return -ENOENT;
}

static int add_layout_entries(struct upstream *u, const char *repo, const char *ref,
                              struct drv_listing *out)
{
    struct drv_entry e = {
        .kind = NODE_FILE, .generated = true, .size = (int64_t)strlen(OCI_LAYOUT_FILE_BODY)};
    int rc = drv_listing_add(out, OCI_LAYOUT_FILE, &e);
    if (rc < 0)
        return rc;
    char *body = NULL;
    size_t len = 0;
    bool stale = false;
    rc = dk_make_index_json(u, repo, ref, &body, &len, &stale);
    free(body);
    if (rc < 0)
        return rc;
    e.size = (int64_t)len;
    e.is_mutable = !oci_digest_valid(ref);
    e.content_type = (char *)OCI_MT_OCI_INDEX;
    rc = drv_listing_add(out, OCI_LAYOUT_INDEX, &e);
    if (rc < 0)
        return rc;
    struct drv_entry d = {.kind = NODE_DIR};
    return drv_listing_add(out, OCI_LAYOUT_BLOBS, &d);
}

static int dk_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    struct oci_path p;
    struct dk_resolved res;
    bool have = false;
    int rc = 0, err = -ENOTSUP;
    if (!dir[0]) {
        rc = dk_catalog_children(u, "", out, &have);
        return rc < 0 ? rc : have ? 0 : -ENOTSUP;
    }
    if ((rc = dk_parse(u, dir, &p)) < 0)
        return rc;
    if (p.layout && (p.part == OCI_PART_BLOBS || p.part == OCI_PART_BLOBS_SHA256)) {
        rc = dk_image_check(u, p.repo, p.ref, &res);
        if (rc == 0 && p.part == OCI_PART_BLOBS) {
            struct drv_entry d = {.kind = NODE_DIR};
            return drv_listing_add(out, OCI_LAYOUT_ALG, &d);
        }
        if (rc == 0) {
            struct dk_walk w = {.list = out};
            /* The layout of the digest the tag points at now: older blobs are not part of it. */
            out->complete = true;
            return dk_walk_image(u, p.repo, p.ref, &res, &w);
        }
        if (rc != -ENOENT)
            return rc;
    }
    bool is_repo = false;
    if (p.nsdir) {
        bool ns = false, maybe_repo = false;
        dk_catalog_knows(u, dir, &ns, &maybe_repo);
        if (ns) {
            bool cat = false;
            rc = dk_catalog_children(u, dir, out, &cat);
            if (rc < 0)
                return rc;
            have = cat && out->n > 0;
        }
        if (p.ns_repo && maybe_repo) {
            size_t before = out->n;
            bool whole = false;
            rc = dk_list_tags(u, p.ns_name, out, &whole);
            if (rc == 0) {
                is_repo = true;
                have = true;
                if (whole) /* tags gone from tags/list (a capped list tells nothing) */
                    upstream_removals_listed(u, dir, out);
            } else {
                /* Not a repository after all: drop what a partial read added. */
                while (out->n > before)
                    drv_entry_clear(&out->items[--out->n]);
                err = rc == -ENOENT || rc == -EACCES ? err : rc;
            }
        }
    }
    if (p.tagdir && !is_repo) {
        rc = dk_image_check(u, p.td_repo, p.td_ref, &res);
        if (rc == 0) {
            rc = add_layout_entries(u, p.td_repo, p.td_ref, out);
            if (rc < 0)
                return rc;
            have = true;
        } else if (rc != -ENOENT) {
            err = rc;
        }
    }
    return have ? 0 : err;
}

static int dk_generate(struct upstream *u, const char *path, char **body, size_t *len, bool *stale)
{
    struct oci_path p;
    *stale = false;
    int rc = dk_parse(u, path, &p);
    if (rc < 0 || !p.layout)
        return rc < 0 ? rc : -ENOENT;
    if (p.part == OCI_PART_OCI_LAYOUT) {
        *body = strdup(OCI_LAYOUT_FILE_BODY);
        *len = strlen(OCI_LAYOUT_FILE_BODY);
        return *body ? 0 : -ENOMEM;
    }
    if (p.part == OCI_PART_INDEX_JSON)
        return dk_make_index_json(u, p.repo, p.ref, body, len, stale);
    return -ENOENT;
}

/*
 * The repository a registry URL of this proxy names (".../v2/<repo>/manifests|blobs/..."),
 * and whether it is a manifest URL. -ENOENT for any other URL.
 */
static int url_repository(struct upstream *u, struct dk_state *s, const char *url,
                          char repo[OCI_NAME_MAX + 1], bool *manifest)
{
    char base[DK_URL_MAX];
    int rc = dk_repo_root(u, s, base, sizeof(base), false);
    if (rc < 0)
        return rc;
    size_t n = strlen(base);
    if (strncmp(url, base, n) != 0)
        return -ENOENT;
    const char *rest = url + n;
    const char *m = NULL, *b = NULL;
    for (const char *q = strstr(rest, "/manifests/"); q; q = strstr(q + 1, "/manifests/"))
        m = q;
    for (const char *q = strstr(rest, "/blobs/"); q; q = strstr(q + 1, "/blobs/"))
        b = q;
    const char *cut = m && (!b || m > b) ? m : b;
    if (!cut || (size_t)(cut - rest) > OCI_NAME_MAX)
        return -ENOENT;
    memcpy(repo, rest, (size_t)(cut - rest));
    repo[cut - rest] = '\0';
    *manifest = cut == m;
    return oci_name_valid(repo) ? 0 : -ENOENT;
}

/*
 * Headers for downloading a registry URL: Accept for manifests, and a
 * Bearer token for the repository the URL names. Other URLs get nothing.
 */
static int dk_request_headers(struct upstream *u, const char *url, struct curl_slist **headers)
{
    char repo[OCI_NAME_MAX + 1], scope[DK_SCOPE_MAX];
    struct dk_state *s = dk_state(u);
    struct dk_cred used = {0};
    bool manifest = false;
    int rc = url_repository(u, s, url, repo, &manifest);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    if (manifest && (rc = fetch_header_add(headers, OCI_ACCEPT_HEADER)) < 0)
        return rc;
    dk_scope(repo, scope, sizeof(scope));
    rc = dk_auth_add(u, s, scope, headers, &used, true);
    dk_cred_clear(&used);
    return rc;
}

/*
 * A download the engine made with dk_request_headers was refused (401, or
 * ECR Public's 400): forget the credential it carried, so the engine's one
 * retry gets a fresh one. True when a retry may succeed.
 */
static bool dk_auth_rejected(struct upstream *u, const char *url, long status, const char *www)
{
    char repo[OCI_NAME_MAX + 1], scope[DK_SCOPE_MAX];
    struct dk_state *s = dk_state(u);
    struct dk_cred used = {0};
    struct curl_slist *h = NULL;
    bool manifest = false;
    if (url_repository(u, s, url, repo, &manifest) < 0)
        return false;
    dk_scope(repo, scope, sizeof(scope));
    bool again = dk_auth_add(u, s, scope, &h, &used, false) == 0 &&
                 dk_refused(u, s, status, www, scope, &used);
    curl_slist_free_all(h);
    dk_cred_clear(&used);
    return again;
}

/* A blob by digest of a repository, as the mount names the repository (engine_blob). */
static int dk_blob_url(struct upstream *u, const char *repo, const char *digest, char **url)
{
    char path[OCI_NAME_MAX + 80];
    struct oci_path p;
    *url = NULL;
    if (!oci_digest_valid(digest) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", repo, digest) >= sizeof(path))
        return -ENOENT;
    int rc = dk_parse(u, path, &p);
    if (rc < 0)
        return rc;
    if (!p.tagdir)
        return -ENOENT;
    return dk_reg_url(u, url, "%s/blobs/%s", p.td_repo, digest);
}

/* A HEAD on a registry URL of this proxy, with its credentials (the blob scoping rule). */
static int dk_confirm(struct upstream *u, const char *url, int64_t *size)
{
    char repo[OCI_NAME_MAX + 1], scope[DK_SCOPE_MAX];
    struct dk_state *s = dk_state(u);
    struct fetch_response r;
    bool manifest = false;
    if (!s)
        return -ENOMEM;
    int rc = url_repository(u, s, url, repo, &manifest);
    if (rc < 0)
        return rc;
    dk_scope(repo, scope, sizeof(scope));
    rc = dk_reg_request(u, scope, url, true, manifest, 0, &r);
    if (rc == 0 && r.status >= 200 && r.status < 300) {
        if (size)
            *size = r.content_length;
    } else if (rc == 0) {
        /* Refused to this proxy's credentials (after reg_request's one fresh try): the
         * upstream does not confirm the blob for this proxy, as if it had none. */
        bool no = r.status == 404 || r.status == 410 || r.status == 401 || r.status == 403;
        rc = no ? -ENOENT : failure_status_errno(r.status);
    }
    fetch_response_clear(&r);
    return rc;
}

const struct driver_ops driver_docker = {
    .type = "docker",
    .sizes_exact = true,
    .lookup = dk_lookup,
    .list = dk_list,
    .generate = dk_generate,
    .request_headers = dk_request_headers,
    .auth_rejected = dk_auth_rejected,
    .blob_url = dk_blob_url,
    .confirm = dk_confirm,
};

/* AWS ECR, private and public: this driver with the ECR variant of ecr.c. */
const struct driver_ops driver_ecr = {
    .type = "ecr",
    .sizes_exact = true,
    .lookup = dk_lookup,
    .list = dk_list,
    .generate = dk_generate,
    .request_headers = dk_request_headers,
    .auth_rejected = dk_auth_rejected,
    .blob_url = dk_blob_url,
    .confirm = dk_confirm,
};
