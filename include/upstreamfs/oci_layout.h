/*
 * oci_layout: the tree shape of the OCI image layouts that docker and ecr
 * proxies (and docker registries) show, in one place. The docker driver
 * (src/drivers/docker.c, docker_layout.c) produces it, the shim's /v2 routes
 * (src/shim/v2.c) read it and "registry import" (src/cli/cli_import.c)
 * checks and stores it:
 *
 *   <top>/<repository>/<ref>/          one layout: oci_layout_dir (ref: a tag or sha256:<hex>)
 *       oci-layout                     OCI_PART_OCI_LAYOUT, body OCI_LAYOUT_FILE_BODY
 *       index.json                     OCI_PART_INDEX_JSON, one descriptor
 *       blobs/                         OCI_PART_BLOBS
 *       blobs/sha256/                  OCI_PART_BLOBS_SHA256
 *       blobs/sha256/<hex>             OCI_PART_BLOB
 *
 * <top> is a proxy key or registry name. Pure: no I/O. Builders fail with
 * -ENAMETOOLONG (buf then "") rather than truncate.
 */
#ifndef UPSTREAMFS_OCI_LAYOUT_H
#define UPSTREAMFS_OCI_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#define OCI_LAYOUT_FILE        "oci-layout"
#define OCI_LAYOUT_INDEX       "index.json"
#define OCI_LAYOUT_BLOBS       "blobs"
#define OCI_LAYOUT_ALG         "sha256" /* the only digest algorithm a layout holds */
#define OCI_LAYOUT_BLOBS_DIR   OCI_LAYOUT_BLOBS "/" OCI_LAYOUT_ALG
#define OCI_LAYOUT_VERSION_KEY "imageLayoutVersion"
#define OCI_LAYOUT_FILE_BODY   "{\"" OCI_LAYOUT_VERSION_KEY "\":\"1.0.0\"}"

/* The media type the driver gives a tag or digest directory: one OCI image layout. */
#define OCI_LAYOUT_DIR_TYPE "application/vnd.oci.image.layout.v1+json"

/* Where a path inside a tag or digest directory points. */
enum oci_part {
    OCI_PART_NONE,
    OCI_PART_OCI_LAYOUT,   /* <repo>/<ref>/oci-layout */
    OCI_PART_INDEX_JSON,   /* <repo>/<ref>/index.json */
    OCI_PART_BLOBS,        /* <repo>/<ref>/blobs */
    OCI_PART_BLOBS_SHA256, /* <repo>/<ref>/blobs/sha256 */
    OCI_PART_BLOB          /* <repo>/<ref>/blobs/sha256/<hex> */
};

/* The layout directory of repo at ref below top ("top/repo/ref"; top NULL: "repo/ref"). */
int oci_layout_dir(const char *top, const char *repo, const char *ref, char *buf, size_t n);
/*
 * The path of part inside the layout directory dir ("dir/<part>"; dir NULL or "": the part's
 * path relative to a layout). hex: the blob's sha256 for OCI_PART_BLOB, else ignored.
 * -EINVAL for OCI_PART_NONE or a blob without a valid hex.
 */
int oci_layout_path(const char *dir, enum oci_part part, const char *hex, char *buf, size_t n);
/*
 * The inverse: splits path into its layout directory (into dir, size n; "" when path is
 * only the part) and the part it names (*hex: the blob's sha256 for OCI_PART_BLOB, else "").
 * The most specific reading wins (blobs/sha256/<hex> is a blob). -ENOENT when path names
 * no part of a layout, -ENAMETOOLONG when dir does not fit.
 */
int oci_layout_split(const char *path, char *dir, size_t n, enum oci_part *part, char hex[65]);

#endif
