/*
 * shim_v2: routing of the registry API under /v2/ (the OCI distribution spec's
 * endpoints), kept apart from the handlers so it can be tested alone.
 *
 * A repository name may contain '/', so a route is found by its last
 * "/manifests/", "/blobs/" or "/referrers/" segment, or a final
 * "/tags/list". The first component of the name is the proxy or registry;
 * the rest is the repository in it. With --default NAME, a name whose first
 * component is no proxy or registry is taken whole as a repository of NAME,
 * which is what Docker's registry-mirrors and containerd mirrors send.
 */
#ifndef UPSTREAMFS_SHIM_V2_H
#define UPSTREAMFS_SHIM_V2_H

#include "upstreamfs/config.h"
#include "upstreamfs/shim_http.h"

#include <stdbool.h>

enum shim_v2_kind {
    SHIM_V2_BASE,      /* /v2/ */
    SHIM_V2_CATALOG,   /* /v2/_catalog */
    SHIM_V2_MANIFEST,  /* /v2/<name>/manifests/<tag-or-digest> */
    SHIM_V2_BLOB,      /* /v2/<name>/blobs/<digest> */
    SHIM_V2_TAGS,      /* /v2/<name>/tags/list */
    SHIM_V2_REFERRERS, /* /v2/<name>/referrers/<digest> */
};

struct shim_v2_route {
    enum shim_v2_kind kind;
    char key[CONFIG_KEY_MAX + 1];           /* proxy or registry */
    char repository[SHIM_PATH_MAX + 1];     /* within it, e.g. "library/alpine" */
    char reference[SHIM_COMPONENT_MAX + 1]; /* tag or digest; "" for tags/list */
};

/*
 * Parses a normalised path that starts with "v2" ("v2", "v2/a/b/manifests/x").
 * is_top says whether a first component is a proxy or registry (NULL: every
 * one is). Returns 0; -ENOENT when the path is no registry API route, or
 * when its first component is unknown and there is no default_name.
 */
int shim_v2_route_parse(const char *path, const char *default_name,
                        bool (*is_top)(void *arg, const char *name), void *arg,
                        struct shim_v2_route *out);

/*
 * Whether media_type is acceptable to accept, the request's Accept header
 * lines merged with ", " (RFC 9110 12.5.1: a comma-separated list; each
 * entry's parameters are ignored except q=0, which refuses it). NULL or an
 * empty list accepts everything, as does a wildcard entry (any type, or any
 * application type).
 * Media types compare case-insensitively, without their parameters.
 */
bool shim_v2_accepts(const char *accept, const char *media_type);

#endif
