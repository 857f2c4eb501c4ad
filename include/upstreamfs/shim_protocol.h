/*
 * shim_protocol: how the HTTP shim (src/shim/files.c) serves a protocol whose
 * client routes differ from the mount layout (npm, PyPI). Each table is
 * defined next to the driver that owns the protocol (src/drivers/npm.c,
 * src/drivers/pypi.c) and found by proxy type; the protocols whose routes
 * mirror the mount (docker's /v2 aside, which src/shim/v2.c serves from the
 * layout of include/upstreamfs/oci_layout.h) have none. Every hook is pure:
 * no I/O, no engine, no upstream.
 */
#ifndef UPSTREAMFS_SHIM_PROTOCOL_H
#define UPSTREAMFS_SHIM_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

struct drv_local_file;

#define SHIM_PROTOCOL_PATH_MAX 4096

/* How the HTTP shim answers one request of a path route (shim_protocol.route). */
struct shim_protocol_route {
    char
        path[SHIM_PROTOCOL_PATH_MAX]; /* engine path below the proxy or registry, "" for its root */
    bool want_slash; /* a page that lives at a '/'-terminated URL: redirect a target without one */
    bool render;     /* path is a document: the reply is render's rewrite of its bytes */
    int variant;     /* render: which representation the client asked for (protocol-defined) */
    /*
     * render, in a registry: the path of a local file, in the document's directory, that
     * holds the registry's own version of the document (npm: "<package>/package.json" for
     * either variant), or "".
     */
    char local_doc[SHIM_PROTOCOL_PATH_MAX];
};

struct shim_protocol {
    const char *type;
    /*
     * Maps a request to the shim below /<key-or-registry>/ — path normalised ("" for the top
     * itself), slash when the target ended with '/', escaped_slash when the client wrote a
     * '/' as %2f (npm's "@scope%2fname"; path then holds it as a separator), accept the
     * Accept header or NULL — to *out. Returns 0; -ENOTSUP: not a route of the protocol,
     * serve path as the mount shows it (refused with 400 when escaped_slash); -ENOENT: 404;
     * -EINVAL: 400.
     */
    int (*route)(const char *path, bool slash, bool escaped_slash, const char *accept,
                 struct shim_protocol_route *out);
    /*
     * The reply body of a render route: doc (len bytes) is what the engine file at
     * route->path holds; base is the absolute URL the shim serves that engine path at
     * (scheme://host/<key-or-registry>/<path, escaped>), against which the relative URLs the
     * driver stored in doc resolve, so every URL in the reply points back at the shim. Sets
     * a malloc'd *out, *out_len and a static *ctype. -EIO for a document it cannot read.
     * The shim calls it once per source document, variant and base and serves the stored
     * result from then on (src/shim/render.c), so it must depend on nothing else.
     */
    int (*render)(const char *doc, size_t len, const char *base, int variant, char **out,
                  size_t *out_len, const char **ctype);
    /*
     * A registry's render route (route_path as route set it), when the registry has local
     * content for it: the document its first upstream that has one provides (doc, len; NULL
     * when none has it) merged with the registry's own, local first: local_doc (the content
     * of the route's local_doc; NULL when there is none) and the local files of the
     * document's directory. Sets a malloc'd document in the form render reads; -ENOENT when
     * there is nothing to serve. May be NULL: the registry serves the first document found,
     * local content first.
     */
    int (*merge_local)(const char *route_path, const char *doc, size_t len, const char *local_doc,
                       size_t local_len, const struct drv_local_file *files, size_t n, char **out,
                       size_t *out_len);
};

/* The shim protocol of a proxy or registry type (enum proxy_type); NULL: routes as mounted. */
const struct shim_protocol *shim_protocol_for_type(int proxy_type);

extern const struct shim_protocol shim_protocol_npm;
extern const struct shim_protocol shim_protocol_pypi;

#endif
