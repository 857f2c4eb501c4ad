/*
 * docker_i: the docker driver's seam for registry variants.
 *
 * A variant (ECR, ecr.c) speaks the same distribution API as any Docker/OCI
 * registry and differs only in
 *  - where the registry is: a base URL that may change at run time (ECR's
 *    proxyEndpoint, named by each token answer) instead of the proxy's url;
 *  - how requests are authorised: an Authorization value that the variant
 *    obtains and refreshes (ECR's Basic or Bearer token) instead of the
 *    proxy's Basic credentials; without one, the registry's own 401
 *    challenges are followed (the token flow), as for a plain registry;
 *  - which names the proxy shows: a registry namespace the proxy root maps
 *    to (ECR Public's alias: MNT/<key>/<repo> is "<alias>/<repo>" on the
 *    wire), and at most one repository the proxy serves (a scoped proxy
 *    refuses every other name without a request).
 * The docker driver asks the variant for these at each request and keeps
 * everything else (tags, manifests, layouts, listings, freshness) as it is.
 */
#ifndef UPSTREAMFS_DRIVERS_DOCKER_I_H
#define UPSTREAMFS_DRIVERS_DOCKER_I_H

#include "upstreamfs/oci.h"

#include <stdbool.h>

struct upstream;

/* Where the registry is and how to authorise a request to it, now. */
struct dk_access {
    char *base;          /* registry base URL, ends with '/' (malloc'd) */
    char *authorization; /* an Authorization value, or NULL (malloc'd; a credential) */
};

/* Fixed properties of one proxy, filled by open. Strings are owned by the variant's state. */
struct dk_variant_info {
    const char *only_repository; /* the one repository served (a mount name), or NULL */
    bool no_catalog;             /* the registry has no _catalog: do not ask */
    /*
     * Besides 401, the status in which the registry refuses the credential of an authorised
     * request (ECR Public: 400 DENIED; private ECR: 403 "token has expired"), or 0: such an
     * answer drops the credential and the request is asked once more with a fresh one.
     */
    long deny_status;
};

struct dk_variant {
    /*
     * Per-proxy state, made once, on first use, with the state lock held
     * (upstream_state_lock); no network.
     * NULL on failure (out of memory).
     */
    void *(*open)(struct upstream *u, struct dk_variant_info *info);
    void (*close)(void *st);
    /* The current access (may ask a token service). 0 or -errno (-EACCES: refused). */
    int (*access)(void *st, struct dk_access *out);
    /* The registry refused authorization (from access) before its expiry: drop it. */
    void (*refused)(void *st, const char *authorization);
    /*
     * The namespace the proxy root maps to, as "<name>/", or NULL for none;
     * asked once per proxy (it may ask a service). malloc'd. 0 or -errno.
     */
    int (*prefix)(void *st, char **prefix);
};

void dk_access_clear(struct dk_access *a);

extern const struct dk_variant dk_variant_ecr;

/*
 * Pure helpers (unit tested). dk_path_limit drops the readings of p that
 * lie outside only (NULL: keeps all): a layout or tag directory of another
 * repository, a directory that is neither only nor on the way to it.
 * dk_path_prefix puts prefix (NULL or "": nothing) before every repository
 * name of p, dropping readings that would grow too long. Both return 0 when
 * a reading is left, else -ENOENT.
 */
int dk_path_limit(struct oci_path *p, const char *only);
int dk_path_prefix(struct oci_path *p, const char *prefix);

#endif
