/*
 * rendered: documents rewritten for a client (the shim's npm and PyPI renders), made once per
 * source and served like any stored file (src/engine/rendered.c).
 *
 * A rendered document is stored in the content-addressed store and recorded as a hidden index
 * row (kind NODE_FILE, parent 0, name "render:<top> <sha256 of path, variant, base and
 * filter_key>", etag: the source document's sha256, digest: the rendered bytes' sha256), so a
 * request whose source did not change opens the stored bytes (zero-copy, Range, a strong ETag
 * that is their digest) and never parses the source again. A changed source is rendered again
 * once: renders of one row run under single flight (src/util/single_flight.c, the engine's
 * document group), the others wait for the leader and open what it stored.
 */
#ifndef UPSTREAMFS_RENDERED_H
#define UPSTREAMFS_RENDERED_H

#include "upstreamfs/engine.h"

#include <stddef.h>
#include <stdint.h>

/* What a rendered document is made from and for. */
struct rendered_key {
    const char *top;        /* the proxy or registry serving it */
    const char *path;       /* the engine path of its source document, below the mount root */
    const char *source;     /* the source's identity: the sha256 (hex) of its bytes */
    int variant;            /* the representation (protocol-defined, e.g. npm abbreviated) */
    const char *base;       /* the absolute URL relative URLs are resolved against */
    const char *filter_key; /* fingerprint of the rules that filter the source; "" for none */
};

/*
 * Makes the rendered bytes: a malloc'd *out of *len bytes and a static *ctype. 0 or -errno
 * (-EIO: the source cannot be read as its protocol's document).
 */
typedef int (*rendered_make_fn)(void *arg, char **out, size_t *len, const char **ctype);

/* What the reply needs besides the bytes. */
struct rendered_info {
    char digest[65]; /* sha256 hex of the rendered bytes: the strong ETag */
    char ctype[128]; /* the media type make named */
    int64_t size;
    int64_t rendered; /* when these bytes were made (Unix seconds): Last-Modified */
    bool made;        /* this call rendered them (false: a stored or a joined render) */
};

/*
 * Opens the rendered document of k: the stored one when its row names k->source and its bytes
 * are in the store, else made by make(arg) (under single flight), stored and recorded. *out is
 * complete content (engine_file_fd, engine_file_blob). 0 or -errno (make's, or the store's).
 */
int engine_rendered_open(struct engine *e, const struct rendered_key *k, rendered_make_fn make,
                         void *arg, struct engine_file **out, struct rendered_info *info);

/* The sha256 hex of an open file's content, "" while a download still arrives. */
const char *engine_file_digest(const struct engine_file *f);

#endif
