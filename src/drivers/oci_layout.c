/*
 * oci_layout: the tree shape of an OCI image layout as the mount shows it
 * (include/upstreamfs/oci_layout.h).
 */
#include "upstreamfs/oci_layout.h"
#include "upstreamfs/hash.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int w = vsnprintf(buf, n, f, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= n) {
        if (n)
            buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int oci_layout_dir(const char *top, const char *repo, const char *ref, char *buf, size_t n)
{
    if (top)
        return fmt(buf, n, "%s/%s/%s", top, repo, ref);
    return fmt(buf, n, "%s/%s", repo, ref);
}

/* The part's own path inside a layout; NULL for none. */
static const char *part_name(enum oci_part part)
{
    switch (part) {
    case OCI_PART_OCI_LAYOUT:
        return OCI_LAYOUT_FILE;
    case OCI_PART_INDEX_JSON:
        return OCI_LAYOUT_INDEX;
    case OCI_PART_BLOBS:
        return OCI_LAYOUT_BLOBS;
    case OCI_PART_BLOBS_SHA256:
    case OCI_PART_BLOB:
        return OCI_LAYOUT_BLOBS_DIR;
    default:
        return NULL;
    }
}

int oci_layout_path(const char *dir, enum oci_part part, const char *hex, char *buf, size_t n)
{
    const char *name = part_name(part);
    if (!name || (part == OCI_PART_BLOB && (!hex || !hash_is_sha256_hex(hex)))) {
        if (n)
            buf[0] = '\0';
        return -EINVAL;
    }
    const char *sep = dir && dir[0] ? "/" : "";
    dir = dir ? dir : "";
    if (part == OCI_PART_BLOB)
        return fmt(buf, n, "%s%s%s/%s", dir, sep, name, hex);
    return fmt(buf, n, "%s%s%s", dir, sep, name);
}

/*
 * Whether the first len bytes of path end with the components tail (whole components);
 * *rest: the length of what comes before it, without the '/'.
 */
static bool ends_with(const char *path, size_t len, const char *tail, size_t *rest)
{
    size_t tl = strlen(tail);
    if (len < tl || memcmp(path + len - tl, tail, tl) != 0)
        return false;
    if (len == tl) {
        *rest = 0;
        return true;
    }
    if (path[len - tl - 1] != '/')
        return false;
    *rest = len - tl - 1;
    return true;
}

int oci_layout_split(const char *path, char *dir, size_t n, enum oci_part *part, char hex[65])
{
    static const struct {
        const char *tail;
        enum oci_part part;
    } names[] = {{OCI_LAYOUT_BLOBS_DIR, OCI_PART_BLOBS_SHA256},
                 {OCI_LAYOUT_FILE, OCI_PART_OCI_LAYOUT},
                 {OCI_LAYOUT_INDEX, OCI_PART_INDEX_JSON},
                 {OCI_LAYOUT_BLOBS, OCI_PART_BLOBS}};
    size_t rest = 0, len = strlen(path);
    const char *last = strrchr(path, '/');
    hex[0] = '\0';
    *part = OCI_PART_NONE;
    /* The most specific reading first: blobs/sha256/<hex>. */
    if (last && hash_is_sha256_hex(last + 1) &&
        ends_with(path, (size_t)(last - path), OCI_LAYOUT_BLOBS_DIR, &rest)) {
        *part = OCI_PART_BLOB;
        memcpy(hex, last + 1, 65);
    }
    for (size_t i = 0; !*part && i < sizeof(names) / sizeof(names[0]); i++)
        if (ends_with(path, len, names[i].tail, &rest))
            *part = names[i].part;
    if (!*part)
        return -ENOENT;
    return fmt(dir, n, "%.*s", (int)rest, path);
}
