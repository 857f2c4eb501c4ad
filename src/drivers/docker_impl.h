/*
 * docker_impl: what the files of the docker driver share (docker.c the driver ops, names
 * and per-proxy state; docker_auth.c the registry's URLs and the one authorised request;
 * docker_manifest.c tags and manifests; docker_layout.c the image layout's blobs and
 * index.json; docker_catalog.c tags/list and _catalog). Private to src/drivers/docker*.c.
 *
 * Locking: a struct dk_state is the driver's state slot (upstream_state); the fields marked
 * so are guarded by the slot's lock (upstream_state_lock), which is never held across a
 * request. The token cache has its own lock; probe_mu serialises /v2/ probes.
 */
#ifndef UPSTREAMFS_DRIVERS_DOCKER_IMPL_H
#define UPSTREAMFS_DRIVERS_DOCKER_IMPL_H

#include "upstreamfs/driver.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/token.h"
#include "upstreamfs/upstream.h"

#include "docker_i.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct curl_slist;
struct fetch_response;

#define DK_MANIFEST_MAX     (4u << 20) /* registries refuse bigger manifests too */
#define DK_PAGE_MAX         (4u << 20) /* one tags/list or _catalog page */
#define DK_PAGES_MAX        200
#define DK_LIST_ENTRIES_MAX 100000
#define DK_TAG_CACHE_MAX    2048
#define DK_URL_MAX          4096
#define DK_SCOPE_MAX        (OCI_NAME_MAX + 32)

enum dk_auth { DK_AUTH_UNKNOWN, DK_AUTH_NONE, DK_AUTH_BASIC, DK_AUTH_BEARER };
enum dk_catalog { DK_CAT_UNKNOWN, DK_CAT_HAVE, DK_CAT_NONE };

/* What a repository:tag resolved to, or that it does not exist. */
struct dk_tag {
    char *repo, *ref;
    bool absent;
    char digest[OCI_DIGEST_LEN + 1];
    char mt[OCI_MEDIA_TYPE_MAX + 1]; /* "" unknown */
    int64_t size;                    /* -1 unknown */
    int64_t checked;                 /* monotonic ms */
};

struct dk_state {
    pthread_mutex_t probe_mu;
    struct token_cache *tokens;
    const struct dk_variant *var; /* NULL for a plain registry */
    void *var_st;
    struct dk_variant_info info;
    bool cat_fixed; /* the catalog is decided (one scoped repository, or none): never asked */
    /* under the state lock: */
    enum dk_auth auth;
    char *realm, *service;
    struct dk_tag *tags;
    size_t ntags, captags;
    enum dk_catalog cat;
    char **catalog; /* sorted */
    size_t ncatalog;
    int64_t cat_checked;
    char *prefix; /* the variant's namespace, "" for none; NULL until asked */
};

/* A reference resolved to a manifest. */
struct dk_resolved {
    char digest[OCI_DIGEST_LEN + 1];
    char mt[OCI_MEDIA_TYPE_MAX + 1];
    int64_t size;
    bool stale;
};

/* The credential a request carried, to forget it if the registry refuses it. */
struct dk_cred {
    char *token; /* a Bearer token of the registry's token flow */
    char *authz; /* the variant's Authorization value */
};

/* docker.c: the proxy's state, created on first use (NULL: out of memory); it lives as long as u.
 */
struct dk_state *dk_state(struct upstream *u);
bool dk_is_hub(const struct upstream *u);

/* docker_auth.c */
/* The registry's base URL (ends with '/'): the variant's, else the proxy's url. malloc'd. */
int dk_reg_base(struct upstream *u, struct dk_state *s, char **base);
/*
 * The root of the registry's repository URLs in out: <origin>/v2/ for a registry URL without a
 * path, <origin>/v2/<path>/ for one with a path (a repository prefix: another upstreamfs's
 * /v2/<key>/, a registry's namespace); with api, always <origin>/v2/ (the API's own root).
 * 0, -EINVAL (no origin), -ENAMETOOLONG, -ENOMEM or the variant's error.
 */
int dk_repo_root(struct upstream *u, struct dk_state *s, char *out, size_t len, bool api);
/*
 * *out = the repositories' root (dk_repo_root) + <formatted>; an empty format is the API's
 * root, <origin>/v2/. 0, -ENAMETOOLONG, -ENOMEM or the variant's error.
 */
int dk_reg_url(struct upstream *u, char **out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The token scope of pulling repo ("repository:<repo>:pull") into buf (DK_SCOPE_MAX). */
void dk_scope(const char *repo, char *buf, size_t n);
void dk_cred_clear(struct dk_cred *c);
/*
 * Adds the Authorization a request in scope needs: the variant's, else Bearer when the
 * registry asked for tokens (found out first with a /v2/ probe when probe is set and nothing
 * is known yet). used receives what was sent.
 */
int dk_auth_add(struct upstream *u, struct dk_state *s, const char *scope, struct curl_slist **hdrs,
                struct dk_cred *used, bool probe);
/*
 * A request that carried used was answered status (www: its challenge). True when asking
 * once more may succeed: the credential was refused and is forgotten now.
 */
bool dk_refused(struct upstream *u, struct dk_state *s, long status, const char *www,
                const char *scope, const struct dk_cred *used);
/*
 * A metadata request (HEAD or GET into memory, at most max bytes) in a scope, with Accept
 * for manifests when manifest is set, through the one authorised request (a refused
 * credential is renewed once). Returns upstream_perform's code; r holds the response.
 */
int dk_reg_request(struct upstream *u, const char *scope, const char *url, bool head, bool manifest,
                   size_t max, struct fetch_response *r);
/*
 * A manifest document (req: url, immutable, expect, max) through the shared document cache
 * (upstream_doc_fetch), with Accept for manifests, through the one authorised request.
 */
int dk_manifest_fetch(struct upstream *u, struct dk_state *s, const char *scope,
                      const struct upstream_doc_req *req, struct upstream_doc *d);

/* docker_manifest.c */
/* Under the state lock: the tag cache's entry of repo:ref, or NULL. */
struct dk_tag *dk_tag_find(struct dk_state *s, const char *repo, const char *ref);
/* Fetches and parses a manifest or index by digest; *size (when not NULL) gets its length. */
int dk_load_manifest(struct upstream *u, const char *repo, const char *digest, const char *mt_hint,
                     struct oci_manifest *m, int64_t *size);
/*
 * Whether repo:ref exists; fills res. A digest reference is checked by fetching its
 * manifest (needed next anyway, and cached for good), and so is a tag whose HEAD did not
 * name a manifest type and size.
 */
int dk_image_check(struct upstream *u, const char *repo, const char *ref, struct dk_resolved *res);

/* docker_layout.c */
/* Either finds one blob (want: its hex, into found) or collects all of them (list). */
struct dk_walk {
    const char *want;
    struct drv_entry *found;
    struct drv_listing *list;
};
/*
 * Visits every blob of repo:ref's layout (res: what dk_image_check found), fetching
 * manifests only as far as the search needs. 0 (found or all visited) or -errno.
 */
int dk_walk_image(struct upstream *u, const char *repo, const char *ref,
                  const struct dk_resolved *res, struct dk_walk *w);
/*
 * The layout's index.json: the tag's manifest or index, or, with a platform filter and an
 * index upstream, the matching platforms' manifests.
 */
int dk_make_index_json(struct upstream *u, const char *repo, const char *ref, char **body,
                       size_t *len, bool *stale);

/* docker_catalog.c */
void dk_catalog_free(char **cat, size_t n);
/* The tags of repo, as directories (tags/list, every page). */
/* A repository's tags into out; *whole (may be NULL): every tag, not a capped part. */
int dk_list_tags(struct upstream *u, const char *repo, struct drv_listing *out, bool *whole);
/* repo:ref was asked for: gone (404) or there; marks or unmarks its cached tag directory
 * removed-upstream (upstream_removed_set). */
void dk_tag_gone(struct upstream *u, const char *repo, const char *ref, bool gone);
/*
 * What the catalog says about a directory path: whether it may be a namespace or
 * repository (true when there is no catalog), and whether it is exactly a repository.
 */
void dk_catalog_knows(struct upstream *u, const char *path, bool *possible, bool *is_repo);
/* The catalog's next components below dir ("" for the root), as directories. */
int dk_catalog_children(struct upstream *u, const char *dir, struct drv_listing *out, bool *have);

#endif
