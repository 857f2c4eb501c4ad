/*
 * lockfile: the dependency sets projects already write, as lists of artifacts
 * (src/lockfile/lockfile.c). Pure functions: text in, items out, no I/O.
 *
 *   npm     package-lock.json / npm-shrinkwrap.json v2 and v3 ("packages": name, version,
 *           resolved, integrity); v1 files ("dependencies" only) are refused
 *   pip     requirements.txt: exact "name==version" pins, with or without --hash=ALGO:HEX
 *   helm    Chart.lock: dependencies (name, version, repository)
 *   images  one image reference a line: repo:tag or repo@sha256:<hex> (a registry host in
 *           front is dropped: the proxy names the registry)
 *   maven   "mvn dependency:list" output: group:artifact:type[:classifier]:version:scope
 *
 * Each item maps to the paths below a proxy or registry key that the mount shows it at
 * (lockfile_item_paths); prefetch --from and export (src/cli/cli_from.c) fetch those.
 */
#ifndef UPSTREAMFS_LOCKFILE_H
#define UPSTREAMFS_LOCKFILE_H

#include "upstreamfs/hash.h"

#include <stdbool.h>
#include <stddef.h>

#define LOCKFILE_MAX_BYTES  (32u << 20) /* a bigger lockfile is refused */
#define LOCKFILE_MAX_ITEMS  100000
#define LOCKFILE_MAX_HASHES 16 /* per item; more are refused */
#define LOCKFILE_PATH_MAX   1100
#define LOCKFILE_MAX_PATHS  2 /* paths per item (maven: the artifact and its pom) */

enum lockfile_format {
    LOCKFILE_AUTO,
    LOCKFILE_NPM,
    LOCKFILE_PIP,
    LOCKFILE_HELM,
    LOCKFILE_IMAGES,
    LOCKFILE_MAVEN,
};

struct lockfile_item {
    char *name;    /* npm name, pip project, chart, image repository, maven group:artifact */
    char *version; /* image: the tag, or "sha256:<hex>" */
    char *kind;    /* maven: the type ("jar") and ":classifier" when there is one; else NULL */
    struct hash_expect hashes[LOCKFILE_MAX_HASHES]; /* any one matching is enough */
    size_t nhashes;
};

struct lockfile {
    enum lockfile_format format;
    struct lockfile_item *items;
    size_t n;
};

/* "npm", "pip", "helm", "images", "maven" (also "pypi", "image", "docker"); -EINVAL otherwise. */
int lockfile_format_parse(const char *s, enum lockfile_format *out);
const char *lockfile_format_name(enum lockfile_format f);
/* The format from the file's base name, else from its first bytes (never LOCKFILE_AUTO). */
enum lockfile_format lockfile_detect(const char *filename, const char *buf, size_t len);

/*
 * Parses buf (len bytes, need not be NUL-terminated). fmt LOCKFILE_AUTO detects it from the
 * contents. Returns 0; -EFBIG past LOCKFILE_MAX_BYTES or LOCKFILE_MAX_ITEMS; -EINVAL with a
 * one-line reason in err (naming the line or entry) for input it cannot read. Entries that
 * name nothing to fetch (npm's root, links and file:/git sources; pip options and comments)
 * are skipped. Free with lockfile_free.
 */
int lockfile_parse(const char *buf, size_t len, enum lockfile_format fmt, struct lockfile *out,
                   char *err, size_t errlen);
void lockfile_free(struct lockfile *lf);

/*
 * The paths (below the key, no leading '/') item is shown at in the mount: npm
 * "<name>/-/<base>-<version>.tgz"; helm "charts/<name>-<version>.tgz"; maven
 * "<group/as/dirs>/<artifact>/<version>/<artifact>-<version>[-<classifier>].<type>" and its
 * ".pom"; images "<repo>/<tag>" or "<repo>/sha256:<hex>" (an OCI layout directory); pip
 * "<normalised name>" (the project's directory: lockfile_pip_file_of picks its files).
 * Returns how many (1..LOCKFILE_MAX_PATHS), or -EINVAL for an item whose name or version
 * cannot be a path (a '/' or ".." where none may be).
 */
int lockfile_item_paths(enum lockfile_format fmt, const struct lockfile_item *item,
                        char paths[][LOCKFILE_PATH_MAX], int max);
/* True when file (a distribution's file name) is of the pinned project and version. */
bool lockfile_pip_file_of(const struct lockfile_item *item, const char *file);
/* What the item is, as the lockfile says it: "lodash@4.17.21", "requests==2.31.0", ... */
void lockfile_item_label(enum lockfile_format fmt, const struct lockfile_item *item, char *buf,
                         size_t len);

#endif
