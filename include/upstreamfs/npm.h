/*
 * npm: the npm registry's document handling (src/parsers/npm_doc.c, pure),
 * used by the driver, the shim protocol, tests and fuzzing. The driver itself
 * is driver_npm (driver.h); its design is described at the top of
 * src/drivers/npm.c.
 *
 * A package is named "name" or "@scope/name"; its tarballs are files named
 * "<name>-<version>.tgz" (the scope is not part of the file name, as on the
 * registry) in the package's "-/" directory.
 */
#ifndef UPSTREAMFS_NPM_H
#define UPSTREAMFS_NPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NPM_NAME_MAX 214 /* the registry's limit on a whole package name */

/* One tarball a package document names. */
struct npm_tarball {
    char *file;        /* "<name>-<version>.tgz" */
    char *url;         /* absolute http(s) URL on the upstream */
    char *expect;      /* "sha512:<hex>", "sha256:<hex>" or "sha1:<hex>", or NULL */
    char *version;     /* the version it is the tarball of */
    int64_t published; /* Unix time from the document's "time" object, -1 when not given */
};

struct npm_tarballs {
    struct npm_tarball *items;
    size_t n;
    size_t *slots; /* the files' hash (npm_tarballs_find): item index + 1, 0 empty */
    size_t nslots; /* 0 or a power of two, at least twice n */
};

/*
 * Whether s is a valid package name, "name" or "@scope/name": each part 1 to
 * 214 bytes of [A-Za-z0-9-._~!*'()], not starting with '.' or '_', not "-".
 */
bool npm_name_valid(const char *s);
/* Whether the n bytes at s are one valid part of a name (a scope or a bare name). */
bool npm_name_part_valid(const char *s, size_t n);

/*
 * The tarballs of a package document (full or abbreviated), one per version
 * whose file name is usable and whose dist.tarball resolves (against
 * doc_url) to an http(s) URL; the first version wins a file name. The
 * expectation is dist.integrity's strongest usable SRI hash, else
 * dist.shasum. name is the package ("@scope/name" or "name"). Returns 0,
 * -EIO for a document that is not a JSON object, -ENOMEM.
 */
int npm_packument_tarballs(const char *body, size_t len, const char *name, const char *doc_url,
                           struct npm_tarballs *out);
void npm_tarballs_clear(struct npm_tarballs *t);
/* The tarball of t named file, or NULL; by a hash of the names, whatever the table's size. */
const struct npm_tarball *npm_tarballs_find(const struct npm_tarballs *t, const char *file);

/*
 * The document as the mount shows it: every version's dist.tarball is
 * "-/<name>-<version>.tgz", relative to the document's own place in the
 * package directory; a tarball whose file name would be unusable is removed.
 * Everything else passes through. Returns 0 with a malloc'd body, -EIO.
 */
int npm_packument_rewrite(const char *body, size_t len, const char *name, char **out,
                          size_t *out_len);
/*
 * npm_packument_rewrite of the abbreviated ("corgi") document npm installs from, made from
 * whichever form the registry answered: top-level name, modified and dist-tags, and per version
 * only what an install reads (name, version, deprecated, the dependency maps, bin, directories,
 * dist, engines, cpu, os, libc, _hasShrinkwrap, hasInstallScript).
 */
int npm_packument_rewrite_abbreviated(const char *body, size_t len, const char *name, char **out,
                                      size_t *out_len);

/*
 * A registry's document: up (the first upstream's, in the mount's form; NULL when none has
 * the package) with the registry's own local (NULL: none) laid over it: its versions, dist-tags
 * and time entries replace those of the same name, its other members replace the upstream's;
 * everything else of up stays. Either alone passes through. Returns 0 with a malloc'd body,
 * -ENOENT when both are NULL, -EIO when one is not a JSON object.
 */
int npm_packument_merge(const char *up, size_t up_len, const char *local, size_t local_len,
                        char **out, size_t *out_len);

/*
 * The rewritten document for a client: every dist.tarball resolved against
 * base, the absolute URL of the document as the shim serves its engine path.
 * Returns 0 with a malloc'd body, -EIO.
 */
int npm_packument_render(const char *doc, size_t len, const char *base, char **out,
                         size_t *out_len);

/* Whether an Accept header asks for the abbreviated ("corgi") document. */
bool npm_accept_abbreviated(const char *accept);

#endif
