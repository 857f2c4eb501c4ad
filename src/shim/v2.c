/*
 * v2: the registry API under /v2/ (the OCI distribution spec), pull side:
 * the HTTP face of the OCI image layouts that docker and ecr proxies, and
 * docker registries, show in the engine's namespace (README.md, the mount layout;
 * its paths are built by include/upstreamfs/oci_layout.h):
 *
 *   KEY/<repository>/<tag>/            and  KEY/<repository>/sha256:<hex>/
 *       index.json                     one descriptor: mediaType, digest, size
 *       blobs/sha256/<hex>             the manifest or index, every manifest, config, layer
 *
 * Every answer is an engine call on those paths; the registry protocol
 * known here is only what maps a route onto them (the route grammar and
 * Accept matching, pure functions, are in v2_route.c).
 *
 * GET|HEAD .../manifests/<ref>: the descriptor in <ref>/index.json names the
 *   manifest; its bytes are blobs/sha256/<hex> of the same layout, read
 *   whole (at most 4 MiB), checked against the digest and sent as they are,
 *   with the descriptor's media type as Content-Type (the type the upstream
 *   gave, which the driver records), Docker-Content-Digest and an ETag. A
 *   digest that no <digest>/index.json describes (a platform's manifest in
 *   a registry's local content, which holds only the tag's layout) is also
 *   found as a manifest blob some layout of the repository lists, and so
 *   is any listed manifest when the remote fails. Reading
 *   the layout's blobs/sha256 directory registers every digest the manifest
 *   references, which is what the blob route's access rule checks. With a
 *   mount's platform filter a tag's index.json may list one platform's
 *   manifest (served for the tag) or several (404: the index itself is
 *   hidden by the filter).
 *   Accept: the request's Accept lines are merged (clients send one type
 *   per line). As docker-registry 2.8 does, a stored type that the client's
 *   list does not include is 404 MANIFEST_UNKNOWN, never converted: a
 *   client that only takes Docker types asking for an OCI manifest, or only
 *   image manifests for an index, learns that the content exists in a form
 *   it cannot read. No Accept, or a wildcard, takes any type.
 * GET|HEAD .../blobs/<digest>: the blobs/sha256/<hex> file a layout of
 *   KEY/<repository>/ lists (engine_find_below, from the index), else a
 *   node of its own that reads the blob from this proxy's upstream
 *   (engine_blob: clients such as oras and crane fetch blobs before, or
 *   without, a manifest). Either is opened once first (blob_confirm): the
 *   store serves it only when this proxy obtained it for that repository
 *   from its own upstream, else the upstream is asked now with this
 *   proxy's credentials (docs/SECURITY.md "Blob and file scoping"), so a
 *   manifest that merely lists another proxy's digest gets BLOB_UNKNOWN
 *   when its own registry has no such blob. The file is served by
 *   shim__serve_file: Range/206, ETag, zero-copy when complete, streamed
 *   from a running download otherwise (one download for every HTTP and
 *   FUSE reader).
 * GET .../tags/list[?n=&last=]: the directory KEY/<repository>/, as the
 *   mount lists it, names that are tags, sorted; n and last paginate with
 *   a Link header. None: 404 NAME_UNKNOWN. The listing is the mount's, so
 *   it also names what the mount shows there: sub-namespaces of a name that
 *   is both (test/ beside test/hello), and on registries without a catalog
 *   names looked up before that the driver took for tags without asking.
 * GET .../referrers/<digest>: an empty OCI index (the upstream's referrers
 *   are not passed through).
 *
 * Docker Hub's implicit library/: for a Docker Hub proxy a one-component
 * repository is library/<name>, both with a key (/v2/hub/alpine/...) and
 * through --default (/v2/alpine/...). Registries keep the name the client
 * sent: their upstreams apply the rule themselves.
 *
 * Errors are the registry's JSON ({"errors":[{"code","message","detail"}]})
 * with the API version header: 404 NAME_UNKNOWN, MANIFEST_UNKNOWN,
 * BLOB_UNKNOWN; 400 NAME_INVALID, DIGEST_INVALID, PAGINATION_NUMBER_INVALID;
 * 401 UNAUTHORIZED (shim.c, with --htpasswd); 403 DENIED (also a package rule's refusal,
 * docs/policy.md); 405 UNSUPPORTED
 * for every write (a pull-through cache takes none); 404 UNSUPPORTED for a
 * key of another type and for _catalog; 429 TOOMANYREQUESTS; 502/503/504
 * UNAVAILABLE when the upstream fails and nothing is cached (the engine
 * reports an upstream's 401, 403 and 429 as EIO, so they arrive as 502
 * too). A blob whose download cannot start gets shim__serve_file's one-line
 * text error with the same status; one failing midway cuts the connection.
 */
#include "shim_i.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/oci_layout.h"
#include "upstreamfs/shim_v2.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_VERSION_HEADER "Docker-Distribution-Api-Version"
#define API_VERSION        "registry/2.0"
#define DIGEST_HEADER      "Docker-Content-Digest"

#define V2_INDEX_MAX    (1u << 20) /* an index.json read whole */
#define V2_MANIFEST_MAX (4u << 20) /* a manifest or index (registries refuse bigger ones too) */
#define V2_ACCEPT_MAX   (16u << 10)
#define V2_PAGE_MAX     10000 /* tags/list n */

/* ---- replies ------------------------------------------------------------------------------ */

/* A registry error reply: {"errors":[{"code":C,"message":M,"detail":null}]}. */
static enum MHD_Result v2_error(struct shim_req *r, unsigned status, const char *code,
                                const char *message)
{
    json_t *j =
        json_pack("{s:[{s:s, s:s, s:n}]}", "errors", "code", code, "message", message, "detail");
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, API_VERSION_HEADER, API_VERSION);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (status == MHD_HTTP_TOO_MANY_REQUESTS)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
    r->bytes += r->head ? 0 : len;
    return shim__reply(r, status, resp);
}

/* An engine error as a registry error; unknown is the code of a 404 (MANIFEST_UNKNOWN, ...). */
static enum MHD_Result v2_errno(struct shim_req *r, int rc, const char *unknown, const char *what)
{
    char msg[300], why[200];
    int status = failure_http_status(rc);
    if (shim__policy_refused(rc)) {
        shim__failure_text(rc, why, sizeof(why));
        snprintf(msg, sizeof(msg), "refused by the proxy's policy (%s)", why);
        return v2_error(r, MHD_HTTP_FORBIDDEN, "DENIED", msg);
    }
    if (status == 502 || status == 504) {
        shim__failure_text(rc, why, sizeof(why));
        snprintf(msg, sizeof(msg), "%s and nothing good is cached (%s)",
                 status == 504 ? "the upstream did not answer in time"
                               : "the upstream failed",
                 why);
    }
    switch (status) {
    case 404:
        return v2_error(r, MHD_HTTP_NOT_FOUND, unknown, what);
    case 414:
        return v2_error(r, MHD_HTTP_BAD_REQUEST, "NAME_INVALID", "name too long");
    case 429:
        return v2_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "TOOMANYREQUESTS",
                        "the upstream is rate-limited and nothing is cached; try again later");
    case 502:
    case 504:
        return v2_error(r, (unsigned)status, "UNAVAILABLE", msg);
    case 507:
        return v2_error(r, MHD_HTTP_INSUFFICIENT_STORAGE, "UNKNOWN", "the cache's disk is full");
    case 503:
        return v2_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", "cancelled");
    default:
        log_warn("shim: /%s: %s", r->path, strerror(rc < 0 ? -rc : rc));
        return v2_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "UNKNOWN", "internal error");
    }
}

static enum MHD_Result v2_base(struct shim_req *r)
{
    static const char body[] = "{}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, API_VERSION_HEADER, API_VERSION);
    }
    r->bytes += r->head ? 0 : strlen(body);
    return shim__reply(r, MHD_HTTP_OK, resp);
}

/* A JSON document (taken) with a type and the API version header. */
static enum MHD_Result v2_json(struct shim_req *r, const char *type, char *text, const char *link)
{
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, API_VERSION_HEADER, API_VERSION);
    if (link)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, link);
    r->bytes += r->head ? 0 : len;
    return shim__reply(r, MHD_HTTP_OK, resp);
}

/* ---- the request's proxy or registry and repository ------------------------------------- */

struct v2_ctx {
    struct shim_req *r;
    const struct shim_v2_route *rt;
    bool hub;                     /* a Docker Hub proxy: one-component names are in library/ */
    char repo[OCI_NAME_MAX + 1];  /* as the engine shows it (library/ added on Docker Hub) */
    char alt[OCI_NAME_MAX + 1];   /* Docker Hub: the other spelling of repo, or "" */
    char dir[1024];               /* KEY/<repo>/<ref> */
    char path[SHIM_PATH_MAX + 1]; /* scratch */
};

/*
 * Checks the route's proxy or registry (it must exist and be of type docker
 * or ecr) and its repository (the OCI name grammar). Returns true to go
 * on; false when *res holds the answer.
 */
static bool v2_name(struct v2_ctx *c, enum MHD_Result *res)
{
    enum proxy_type type = PROXY_GENERIC;
    enum proxy_source source = SOURCE_NONE;
    bool registry;
    bool found = engine_proxy_type(c->r->s->e, c->rt->key, &type, &source, &registry) == 0;
    bool docker = found && (type == PROXY_DOCKER || type == PROXY_ECR);
    c->hub = found && !registry && type == PROXY_DOCKER && source == SOURCE_DOCKERHUB;
    const char *name = c->rt->repository;
    if (!found) {
        *res = v2_error(c->r, MHD_HTTP_NOT_FOUND, "NAME_UNKNOWN",
                        "no proxy or registry serves this repository");
        return false;
    }
    if (!docker) {
        *res = v2_error(c->r, MHD_HTTP_NOT_FOUND, "UNSUPPORTED",
                        "this proxy or registry is not of type docker or ecr; its files are "
                        "served at /<key-or-registry>/<path>");
        return false;
    }
    if (!oci_name_valid(name) ||
        (c->hub ? oci_hub_normalise(name, c->repo, sizeof(c->repo)) < 0 || !oci_name_valid(c->repo)
                : snprintf(c->repo, sizeof(c->repo), "%s", name) < 0)) {
        *res = v2_error(c->r, MHD_HTTP_BAD_REQUEST, "NAME_INVALID",
                        "invalid repository name (lower-case letters, digits and separators, "
                        "at most 255 bytes)");
        return false;
    }
    c->alt[0] = '\0';
    if (c->hub && !strncmp(c->repo, "library/", 8) && !strchr(c->repo + 8, '/'))
        snprintf(c->alt, sizeof(c->alt), "%s", c->repo + 8);
    return true;
}

/* ---- engine files -------------------------------------------------------------------------- */

/* Reads a whole engine file (at most max bytes); the wait ends when the client goes. */
static int read_all(struct shim_req *r, int64_t ino, size_t max, char **out, size_t *len)
{
    struct shim_waiter waiter = {.s = r->s, .sock = r->sock};
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &waiter};
    return engine_read_all(r->s->e, ino, &w, max, out, len);
}

/* Whether the engine holds the content of a file completely (a cache hit). */
static bool is_cached(struct engine *e, int64_t ino)
{
    char v[16];
    int n = engine_getxattr(e, ino, "user.upstreamfs.cached", v, sizeof(v) - 1);
    v[n > 0 ? n : 0] = '\0';
    return !strcmp(v, "complete");
}

/* ---- manifests --------------------------------------------------------------------------- */

struct v2_desc {
    char media_type[OCI_MEDIA_TYPE_MAX + 1]; /* "" when the descriptor names none */
    char digest[OCI_DIGEST_LEN + 1];
    int64_t size;
};

/*
 * Picks the descriptor of index.json that answers the reference: the one
 * with the digest for a digest, the only one for a tag. -ENOENT when there
 * is none (a layout shown through a platform filter), -EIO for a document
 * that is no index.
 */
static int pick_desc(const char *doc, size_t len, const char *digest, struct v2_desc *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(doc, len, 0, &jerr);
    json_t *ms = root ? json_object_get(root, "manifests") : NULL;
    int rc = json_is_array(ms) ? -ENOENT : -EIO;
    size_t n = json_is_array(ms) ? json_array_size(ms) : 0;
    for (size_t i = 0; i < n && rc == -ENOENT; i++) {
        json_t *d = json_array_get(ms, i);
        const char *dg = json_string_value(json_object_get(d, "digest"));
        const char *mt = json_string_value(json_object_get(d, "mediaType"));
        json_t *sz = json_object_get(d, "size");
        if (!dg || !oci_digest_valid(dg) || (digest && strcmp(dg, digest) != 0) ||
            (!digest && n != 1))
            continue;
        snprintf(out->digest, sizeof(out->digest), "%s", dg);
        oci_media_type_base(mt ? mt : "", out->media_type, sizeof(out->media_type));
        out->size = json_is_integer(sz) ? (int64_t)json_integer_value(sz) : -1;
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* The media type a manifest names itself; an index or an image manifest by shape otherwise. */
static void body_type(const char *body, size_t len, char *out, size_t outlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const char *mt = json_string_value(json_object_get(root, "mediaType"));
    if (mt && *mt)
        oci_media_type_base(mt, out, outlen);
    else
        snprintf(out, outlen, "%s",
                 json_object_get(root, "manifests") ? OCI_MT_OCI_INDEX : OCI_MT_OCI_MANIFEST);
    json_decref(root);
}

/* The request's Accept lines, merged with ", " (NULL when there are none); malloc'd. */
struct accept_acc {
    struct shim_buf b;
    bool any, overflow;
};

static enum MHD_Result accept_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct accept_acc *a = cls;
    (void)kind;
    if (!key || !value || strcasecmp(key, MHD_HTTP_HEADER_ACCEPT) != 0)
        return MHD_YES;
    if ((a->any && shim_buf_puts(&a->b, ", ") < 0) || shim_buf_puts(&a->b, value) < 0)
        a->overflow = true;
    a->any = true;
    return a->overflow ? MHD_NO : MHD_YES;
}

static char *merged_accept(struct shim_req *r)
{
    struct accept_acc a = {.any = false, .overflow = false};
    shim_buf_init(&a.b, V2_ACCEPT_MAX);
    MHD_get_connection_values(r->c, MHD_HEADER_KIND, accept_one, &a);
    if (!a.any || a.overflow) { /* an oversized list is taken as no preference */
        shim_buf_free(&a.b);
        return NULL;
    }
    return shim_buf_steal(&a.b, NULL);
}

/* Lists dir's blobs/sha256, so every digest its manifests reference is known (the blob rule). */
static void register_blobs(struct v2_ctx *c, const char *dir)
{
    struct engine_attr a;
    struct engine_dirent *ents = NULL;
    size_t n = 0;
    int rc = oci_layout_path(dir, OCI_PART_BLOBS_SHA256, NULL, c->path, sizeof(c->path));
    if (rc == 0)
        rc = engine_resolve(c->r->s->e, c->path, &a);
    if (rc == 0)
        rc = engine_readdir(c->r->s->e, a.ino, &ents, &n);
    if (rc < 0)
        log_debug("shim: listing %s failed: %s", c->path, strerror(-rc));
    engine_dirents_free(ents, n);
}

/* A manifest blob of the repository that some layout lists (a digest no index.json describes). */
static int find_manifest_blob(struct v2_ctx *c, const char *hex, struct engine_attr *a)
{
    const char *repos[] = {c->repo, c->alt};
    for (size_t i = 0; i < 2; i++) {
        if (!repos[i][0])
            continue;
        snprintf(c->path, sizeof(c->path), "%s/%s", c->rt->key, repos[i]);
        char tail[80];
        int rc = oci_layout_path(NULL, OCI_PART_BLOB, hex, tail, sizeof(tail));
        if (rc == 0)
            rc = engine_find_below(c->r->s->e, c->path, tail, a);
        if (rc != -ENOENT)
            return rc;
    }
    return -ENOENT;
}

/*
 * Finds the manifest ref names: the descriptor in its layout's index.json (*a is that file's
 * attributes) and the blob it names (*m), or for a digest a manifest blob some layout lists.
 * Returns 0, -errno, or -ENOENT with *several set when a tag's index lists several platforms.
 */
static int manifest_locate(struct v2_ctx *c, bool by_digest, struct v2_desc *d,
                           struct engine_attr *a, struct engine_attr *m, bool *several)
{
    struct engine *e = c->r->s->e;
    const char *ref = c->rt->reference;
    char *doc = NULL;
    size_t len = 0;

    /* The layout's index.json names the manifest. */
    int rc = oci_layout_dir(c->rt->key, c->repo, ref, c->dir, sizeof(c->dir));
    if (rc == 0)
        rc = oci_layout_path(c->dir, OCI_PART_INDEX_JSON, NULL, c->path, sizeof(c->path));
    if (rc == 0)
        rc = engine_resolve(e, c->path, a);
    if (rc == 0 && a->kind != NODE_FILE)
        rc = -ENOENT;
    if (rc == 0)
        rc = read_all(c->r, a->ino, V2_INDEX_MAX, &doc, &len);
    if (rc == 0) {
        rc = pick_desc(doc, len, by_digest ? ref : NULL, d);
        if (rc == -ENOENT && !by_digest) {
            free(doc);
            *several = true;
            return rc;
        }
        if (rc == -EIO)
            log_warn("shim: /%s: index.json is not an OCI index", c->path);
    }
    free(doc);
    if (rc == 0) {
        /* Registering the referenced digests (the blob rule) is part of serving a manifest. */
        register_blobs(c, c->dir);
        rc = oci_layout_path(c->dir, OCI_PART_BLOB, d->digest + 7, c->path, sizeof(c->path));
        if (rc == 0)
            rc = engine_resolve(e, c->path, m);
    } else if (by_digest) {
        /* Also when the remote fails: a manifest some layout listed was fetched (and kept). */
        snprintf(d->digest, sizeof(d->digest), "%.*s", OCI_DIGEST_LEN, ref);
        if (find_manifest_blob(c, ref + 7, m) == 0)
            rc = 0;
    }
    if (rc == 0 && m->kind != NODE_FILE)
        rc = -ENOENT;
    return rc;
}

/*
 * Sends the verified manifest body (blen bytes, owned and freed here) as d describes it: 404
 * when the Accept list does not take its media type, 304 on a matching If-None-Match, else
 * 200 with the digest, ETag and Cache-Control (a tag's freshness is its index.json's, *a).
 */
static enum MHD_Result manifest_reply(struct v2_ctx *c, const struct v2_desc *d, bool by_digest,
                                      const struct engine_attr *a, bool hit, char *body,
                                      size_t blen)
{
    struct shim_req *r = c->r;
    char etag[80];
    char *accept = merged_accept(r);
    if (!shim_v2_accepts(accept, d->media_type)) {
        char msg[OCI_MEDIA_TYPE_MAX + 100];
        free(accept);
        free(body);
        snprintf(msg, sizeof(msg),
                 "manifest found, but the Accept header does not include its "
                 "media type %s",
                 d->media_type);
        return v2_error(r, MHD_HTTP_NOT_FOUND, "MANIFEST_UNKNOWN", msg);
    }
    free(accept);

    snprintf(etag, sizeof(etag), "\"%s\"", d->digest);
    const char *inm = shim__header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool not_modified = inm && (strstr(inm, etag) || !strcmp(inm, "*"));
    struct MHD_Response *resp =
        not_modified ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
                     : MHD_create_response_from_buffer(blen, body, MHD_RESPMEM_MUST_FREE);
    if (!resp || not_modified)
        free(body);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, d->media_type);
    MHD_add_response_header(resp, DIGEST_HEADER, d->digest);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, API_VERSION_HEADER, API_VERSION);
    MHD_add_response_header(resp, "X-Upstreamfs-Cache", hit ? "hit" : "miss");
    /* A tag moves (fresh as long as its index.json is); a digest never does. */
    char cc[64];
    shim__cache_control(by_digest, a->fresh_for, cc, sizeof(cc));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
    /* The same reference answers another media type to another Accept. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept");
    r->bytes += r->head || not_modified ? 0 : blen;
    return shim__reply(r, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

/* GET|HEAD .../manifests/<ref>: checks the reference, finds the manifest, reads and verifies
 * its bytes against the digest, and replies (the steps above). */
static enum MHD_Result v2_manifest(struct v2_ctx *c)
{
    struct shim_req *r = c->r;
    const char *ref = c->rt->reference;
    bool by_digest = oci_digest_valid(ref), several = false;
    struct engine_attr a, m;
    struct v2_desc d = {.size = -1};
    char *body = NULL;
    size_t blen = 0;

    if (!by_digest && strchr(ref, ':'))
        return v2_error(r, MHD_HTTP_BAD_REQUEST, "DIGEST_INVALID",
                        "invalid digest (only sha256:<64 lower-case hex digits> is served)");
    if (!by_digest && !oci_tag_valid(ref))
        return v2_error(r, MHD_HTTP_NOT_FOUND, "MANIFEST_UNKNOWN", "manifest unknown (bad tag)");

    int rc = manifest_locate(c, by_digest, &d, &a, &m, &several);
    if (several)
        return v2_error(r, MHD_HTTP_NOT_FOUND, "MANIFEST_UNKNOWN",
                        "manifest unknown: this tag shows several platforms' manifests "
                        "(a platform filter hides its index)");
    if (rc < 0)
        return v2_errno(r, rc, "MANIFEST_UNKNOWN", "manifest unknown");

    bool hit = is_cached(r->s->e, m.ino);
    rc = read_all(r, m.ino, V2_MANIFEST_MAX, &body, &blen);
    if (rc < 0)
        return v2_errno(r, rc, "MANIFEST_UNKNOWN", "manifest unknown");
    char hex[65];
    hash_sha256_hex(body, blen, hex);
    if (strcmp(hex, d.digest + 7) != 0) {
        free(body);
        log_warn("shim: /%s: the manifest's bytes do not match its digest", c->path);
        return v2_error(r, MHD_HTTP_BAD_GATEWAY, "UNAVAILABLE",
                        "the cached manifest does not match its digest");
    }
    if (!oci_media_type_is_manifest(d.media_type) && !oci_media_type_is_index(d.media_type))
        body_type(body, blen, d.media_type, sizeof(d.media_type));
    r->cache = hit ? SHIM_CACHE_HIT : SHIM_CACHE_MISS;
    return manifest_reply(c, &d, by_digest, &a, hit, body, blen);
}

/* ---- blobs -------------------------------------------------------------------------------- */

/*
 * Opens the blob once before answering, so that the scoping rule (download.c:
 * this proxy's own copy, or its upstream's answer now) decides between the
 * content and BLOB_UNKNOWN; a HEAD asks the upstream with a HEAD
 * (engine_blob_confirm). The download goes on for the GET after.
 */
static int blob_confirm(struct shim_req *r, struct engine_attr *a)
{
    struct engine *e = r->s->e;
    struct shim_waiter waiter = {.s = r->s, .sock = r->sock};
    struct engine_wait w = {.cancelled = shim__cancelled, .arg = &waiter};
    struct engine_file *f = NULL;
    bool keep = false, changed = false;
    if (r->head)
        return engine_blob_confirm(e, a->ino, a);
    int rc = engine_file_open(e, a->ino, &w, &f, &keep, &changed);
    if (rc == 0)
        engine_file_close(f);
    return rc;
}

static enum MHD_Result v2_blob(struct v2_ctx *c)
{
    struct shim_req *r = c->r;
    const char *digest = c->rt->reference;
    struct engine_attr a;
    int rc = -ENOENT;
    if (!oci_digest_valid(digest))
        return v2_error(r, MHD_HTTP_BAD_REQUEST, "DIGEST_INVALID",
                        "invalid digest (only sha256:<64 lower-case hex digits> is served)");
    char tail[80];
    if (oci_layout_path(NULL, OCI_PART_BLOB, digest + 7, tail, sizeof(tail)) < 0)
        return v2_error(r, MHD_HTTP_BAD_REQUEST, "DIGEST_INVALID",
                        "invalid digest (only sha256:<64 lower-case hex digits> is served)");
    const char *repos[] = {c->repo, c->alt};
    for (size_t i = 0; i < 2 && rc == -ENOENT; i++) {
        if (!repos[i][0])
            continue;
        snprintf(c->path, sizeof(c->path), "%s/%s", c->rt->key, repos[i]);
        rc = engine_find_below(r->s->e, c->path, tail, &a);
    }
    if (rc == 0 && a.kind != NODE_FILE)
        rc = -ENOENT;
    /* No manifest listed it: ask this proxy's own upstream (oras, crane fetch blobs first). */
    if (rc == -ENOENT)
        rc = engine_blob(r->s->e, c->rt->key, c->repo, digest, &a);
    if (rc == 0)
        rc = blob_confirm(r, &a);
    if (rc < 0)
        return v2_errno(r, rc, "BLOB_UNKNOWN", "blob unknown to this repository");
    /* clang-format off */
    const char *const extra[] = {DIGEST_HEADER, digest,
                                 API_VERSION_HEADER, API_VERSION,
                                 NULL};
    /* clang-format on */
    return shim__serve_file(r, &a, digest + 7, "application/octet-stream", extra);
}

/* ---- tags and referrers ---------------------------------------------------------------- */

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static enum MHD_Result v2_tags(struct v2_ctx *c)
{
    struct shim_req *r = c->r;
    struct engine *e = r->s->e;
    struct engine_attr a;
    struct engine_dirent *ents = NULL;
    size_t n = 0;
    long limit = -1;
    const char *ns = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "n");
    const char *last = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "last");
    if (ns) {
        char *end = NULL;
        limit = strtol(ns, &end, 10);
        if (!*ns || *end || limit < 0 || limit > V2_PAGE_MAX)
            return v2_error(r, MHD_HTTP_BAD_REQUEST, "PAGINATION_NUMBER_INVALID",
                            "n must be a number from 0 to 10000");
    }
    snprintf(c->path, sizeof(c->path), "%s/%s", c->rt->key, c->repo);
    int rc = engine_resolve(e, c->path, &a);
    if (rc == 0 && a.kind != NODE_DIR)
        rc = -ENOENT;
    if (rc == 0)
        rc = engine_readdir(e, a.ino, &ents, &n);
    if (rc < 0)
        return v2_errno(r, rc, "NAME_UNKNOWN", "repository name not known to registry");
    const char **tags = calloc(n + 1, sizeof(*tags));
    size_t nt = 0;
    for (size_t i = 0; tags && i < n; i++)
        if (ents[i].attr.kind == NODE_DIR && oci_tag_valid(ents[i].name))
            tags[nt++] = ents[i].name;
    if (!tags) {
        engine_dirents_free(ents, n);
        return MHD_NO;
    }
    if (nt == 0) {
        free(tags);
        engine_dirents_free(ents, n);
        return v2_error(r, MHD_HTTP_NOT_FOUND, "NAME_UNKNOWN",
                        "repository name not known to registry");
    }
    qsort(tags, nt, sizeof(*tags), cmp_name);
    size_t from = 0;
    while (last && from < nt && strcmp(tags[from], last) <= 0)
        from++;
    size_t to = limit >= 0 && (size_t)limit < nt - from ? from + (size_t)limit : nt;

    /* The name as the client addressed it: the path between "v2/" and "/tags/list". */
    const char *name = r->path + 3;
    int nl = (int)(strlen(name) - strlen("/tags/list"));
    json_t *arr = json_array();
    for (size_t i = from; arr && i < to; i++)
        json_array_append_new(arr, json_string(tags[i]));
    json_t *root =
        arr ? json_pack("{s:o, s:o}", "name", json_stringn(name, (size_t)nl), "tags", arr) : NULL;
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    char *link = NULL;
    if (text && to < nt && to > from &&
        asprintf(&link, "</v2/%.*s/tags/list?n=%ld&last=%s>; rel=\"next\"", nl, name, limit,
                 tags[to - 1]) < 0)
        link = NULL;
    free(tags);
    engine_dirents_free(ents, n);
    if (!text)
        return MHD_NO;
    enum MHD_Result res = v2_json(r, "application/json", text, link);
    free(link);
    return res;
}

static enum MHD_Result v2_referrers(struct v2_ctx *c)
{
    if (!oci_digest_valid(c->rt->reference))
        return v2_error(c->r, MHD_HTTP_BAD_REQUEST, "DIGEST_INVALID",
                        "invalid digest (only sha256:<64 lower-case hex digits> is served)");
    char *text =
        strdup("{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_OCI_INDEX "\",\"manifests\":[]}");
    if (!text)
        return MHD_NO;
    return v2_json(c->r, OCI_MT_OCI_INDEX, text, NULL);
}

/* ---- routing ---------------------------------------------------------------------------- */

/* Whether name is a proxy or registry: a directory at the root of the engine. */
static bool is_top(void *arg, const char *name)
{
    struct engine_attr a;
    return engine_resolve(arg, name, &a) == 0;
}

enum MHD_Result shim__v2(struct shim_req *r)
{
    bool read = !strcmp(r->method, "GET") || r->head;
    if (!read)
        return v2_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED",
                        "this registry is a read-only pull-through cache");
    struct shim_v2_route *rt = calloc(1, sizeof(*rt));
    struct v2_ctx *c = calloc(1, sizeof(*c));
    enum MHD_Result ok;
    if (!rt || !c) {
        free(rt);
        free(c);
        return MHD_NO;
    }
    c->r = r;
    c->rt = rt;
    if (shim_v2_route_parse(r->path, r->s->default_name, is_top, r->s->e, rt) < 0) {
        ok = v2_error(r, MHD_HTTP_NOT_FOUND, "NAME_UNKNOWN",
                      "no proxy or registry serves this repository (the path is "
                      "/v2/<key-or-registry>/<repository>/...)");
    } else if (rt->kind == SHIM_V2_BASE) {
        ok = v2_base(r);
    } else if (rt->kind == SHIM_V2_CATALOG) {
        ok = v2_error(r, MHD_HTTP_NOT_FOUND, "UNSUPPORTED",
                      "the catalog is not served; browse / or the mount instead");
    } else if (v2_name(c, &ok)) {
        switch (rt->kind) {
        case SHIM_V2_MANIFEST:
            ok = v2_manifest(c);
            break;
        case SHIM_V2_BLOB:
            ok = v2_blob(c);
            break;
        case SHIM_V2_TAGS:
            ok = v2_tags(c);
            break;
        default:
            ok = v2_referrers(c);
            break;
        }
    }
    free(rt);
    free(c);
    return ok;
}
