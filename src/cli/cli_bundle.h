/*
 * cli_bundle: the self-describing bundle "upstreamfs export" writes and "registry import"
 * reads (src/cli/cli_export.c, src/cli/cli_bundle.c; docs/airgap.md):
 *
 *   DIR/bundle.json    {"format": 1, "source": {"key": K, "type": T}, "created": TIME,
 *                       "extends": null | {"created": TIME, "files": N, "sha256": HEX},
 *                       "files": [{"path": P, "sha256": HEX, "size": N, "for": [LABEL...]}]}
 *   DIR/<path>         every file bundle.json lists, in the layout the mount shows below K
 *                      (an OCI image layout per image: <repo>/<tag>/{oci-layout,index.json,
 *                      blobs/sha256/...}; npm <name>/-/<file>.tgz; pypi <project>/<file>; ...)
 *
 * "extends" names the earlier bundle a delta (--since) adds to, by the sha256 of its
 * bundle.json.
 */
#ifndef UPSTREAMFS_CLI_BUNDLE_H
#define UPSTREAMFS_CLI_BUNDLE_H

#include "upstreamfs/cli.h"

#include <jansson.h>
#include <stdint.h>

#define BUNDLE_FORMAT    1
#define BUNDLE_JSON      "bundle.json"
#define BUNDLE_JSON_MAX  (64u << 20) /* a bigger bundle.json is refused */
#define BUNDLE_FILES_MAX 1000000

struct bundle_file {
    const char *path; /* in root */
    char sha256[65];
    int64_t size;
};

struct bundle {
    json_t *root;
    const char *key, *type, *created;
    char sha256[65]; /* of bundle.json itself */
    struct bundle_file *files;
    size_t n;
};

/*
 * Reads and checks dir/bundle.json: format 1, a source, every path relative without "." or
 * ".." components (at most once each), every sha256 hex, sizes >= 0. 0, or -errno with a
 * one-line reason in err.
 */
int bundle_load(const char *dir, struct bundle *b, char *err, size_t errlen);
void bundle_free(struct bundle *b);
/*
 * A relative path without empty, "." or ".." components (at most 1024 bytes; a trailing '/' is
 * allowed): a file of a bundle, the PATH of "registry import --as".
 */
bool bundle_path_ok(const char *p);

/* "export KEY [--from FILE] [--since BUNDLE] DIR" (cli_export.c). */
int cli_export_main(struct cli_globals *g, int argc, char **argv);
/* Whether dir holds a bundle.json (then "registry import NAME DIR" imports it as a bundle). */
bool cli_is_bundle(const char *dir);
/* "registry import NAME DIR" of a DIR holding bundle.json (cli_bundle.c). */
int cli_bundle_import(struct cli_globals *g, const char *name, const char *dir);

#endif
