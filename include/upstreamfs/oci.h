/*
 * oci: the OCI distribution and image-spec vocabulary the docker driver
 * speaks — media types, the name/tag/digest grammars, manifest and index
 * parsing, Link pagination, platform filters, Docker Hub's implicit
 * library/ namespace, and how a mount path maps onto a repository, a
 * reference and a place inside an OCI image layout (whose tree shape is
 * include/upstreamfs/oci_layout.h).
 *
 * Everything here (src/parsers/oci.c) is pure: no I/O, no global state, so each piece is unit
 * tested on hostile input. Parsers never trust their input: every string is
 * checked against its grammar and every count and length is capped; a
 * malformed document is -EIO with a one-line reason, never a crash.
 */
#ifndef UPSTREAMFS_OCI_H
#define UPSTREAMFS_OCI_H

#include "upstreamfs/oci_layout.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"

/* The Accept header sent on every manifest request: registry 2.8 hides OCI manifests otherwise. */
#define OCI_ACCEPT_HEADER                                                                          \
    "Accept: " OCI_MT_OCI_MANIFEST ", " OCI_MT_DOCKER_MANIFEST ", " OCI_MT_DOCKER_LIST             \
    ", " OCI_MT_OCI_INDEX

#define OCI_NAME_MAX       255 /* a repository name, as clients cap it */
#define OCI_TAG_MAX        128
#define OCI_REF_MAX        128 /* a tag or a digest */
#define OCI_DIGEST_LEN     71  /* "sha256:" + 64 hex */
#define OCI_MEDIA_TYPE_MAX 255
#define OCI_DESC_MAX       10000 /* layers or manifests in one document */

/* One component of a repository name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, n bytes of s. */
bool oci_name_component_valid(const char *s, size_t n);
/* A whole repository name (components joined by '/'), at most OCI_NAME_MAX bytes. */
bool oci_name_valid(const char *name);
/* A tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
bool oci_tag_valid(const char *tag);
/* The only digest form served: "sha256:" and 64 lower-case hex digits. */
bool oci_digest_valid(const char *digest);

/* Whether a media type (parameters ignored) is an image manifest or an index/list. */
bool oci_media_type_is_manifest(const char *mt);
bool oci_media_type_is_index(const char *mt);
/* Copies a media type without parameters or surrounding space into buf (size n); "" if none. */
void oci_media_type_base(const char *mt, char *buf, size_t n);

struct oci_platform {
    char *os;
    char *arch;
    char *variant; /* may be NULL */
};

struct oci_desc {
    char *media_type; /* may be NULL when the document names none */
    char digest[OCI_DIGEST_LEN + 1];
    int64_t size;
    bool has_platform;
    struct oci_platform platform; /* index entries only */
};

enum oci_kind { OCI_KIND_MANIFEST = 1, OCI_KIND_INDEX = 2 };

struct oci_manifest {
    enum oci_kind kind;
    char *media_type;       /* the document's own type (mediaType field, else Content-Type) */
    struct oci_desc config; /* manifests */
    struct oci_desc *layers;
    size_t n_layers;
    struct oci_desc *manifests; /* indexes */
    size_t n_manifests;
};

/*
 * Parses an image manifest or index (schemaVersion 2, Docker or OCI).
 * content_type (may be NULL) is used when the body names no mediaType.
 * Returns 0, -EIO (malformed or unsupported; err gets a reason, err may be
 * NULL) or -ENOMEM.
 */
int oci_manifest_parse(const char *body, size_t len, const char *content_type,
                       struct oci_manifest *out, char *err, size_t errlen);
void oci_manifest_clear(struct oci_manifest *m);

/*
 * Whether a platform passes a filter "os/arch[/variant][:os/arch...]".
 * NULL or "" lets everything pass; a filter entry without a variant matches
 * every variant; a descriptor without a platform never matches a filter.
 */
bool oci_platform_match(const char *filter, const struct oci_platform *p);

/*
 * Finds the rel="next" target of a Link header (RFC 8288; several links
 * separated by commas, parameters quoted or not) and resolves it against
 * base_url. Returns 0 with *next malloc'd, -ENOENT when there is none, or
 * -EINVAL when the header is malformed.
 */
int oci_link_next(const char *link, const char *base_url, char **next);

/*
 * Docker Hub names: a repository without '/' lives in library/. Writes the
 * normalised name into buf (size n). Returns 0 or -ENAMETOOLONG.
 */
int oci_hub_normalise(const char *repo, char *buf, size_t n);

/*
 * The readings a mount path (relative to the proxy root) can have; since
 * repository names contain '/', one path may have several, and only the
 * registry can tell which is true:
 *  - layout: something inside the image layout of repo:ref (part, hex);
 *  - tagdir: the layout directory itself, td_repo:td_ref;
 *  - nsdir: a namespace or repository directory, ns_name.
 * Repository names are normalised (library/ on Docker Hub, where a
 * repository also has at most two components and "library" alone is only a
 * namespace). Returns 0 when at least one reading exists, else -ENOENT:
 * "..", empty components, bad grammar and overlong names never reach the
 * network.
 */
struct oci_path {
    bool layout;
    char repo[OCI_NAME_MAX + 1];
    char ref[OCI_REF_MAX + 1];
    enum oci_part part;
    char hex[65];

    bool tagdir;
    char td_repo[OCI_NAME_MAX + 1];
    char td_ref[OCI_REF_MAX + 1];

    bool nsdir;
    bool ns_repo;                   /* the directory may be a repository (worth a tags/list) */
    char ns_name[OCI_NAME_MAX + 1]; /* normalised, for tags/list */
};

int oci_path_parse(const char *path, bool hub, struct oci_path *out);

#endif
