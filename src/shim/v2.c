/*
 * v2: the registry API under /v2/ (DESIGN 2.3), routing and replies.
 *
 * GET /v2/ answers 200 {} with Docker-Distribution-Api-Version: registry/2.0,
 * the version check every client makes first. The other routes are parsed
 * (shim_v2_route_parse) and handed to one function per kind below; until
 * the docker driver provides manifests, blobs, tag lists and referrers
 * through the engine, those functions answer the registry error
 * UNSUPPORTED (404 for reads, 405 for writes, which a pull-through cache
 * never accepts). They are the hooks the driver's work fills in: a blob, for
 * instance, is served with shim__serve_file on the engine node that holds
 * it, which brings Range, ETag and zero-copy along, plus
 * Docker-Content-Digest as an extra header. Blob replies must keep the
 * DESIGN 2.3 rule that a digest is served only to a proxy and repository
 * that referenced it.
 *
 * Every /v2 reply, errors included, carries the API version header, and
 * errors use the registry's JSON form (protocols.md 1.6).
 */
#include "shim_i.h"
#include "upstreamfs/shim_v2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_VERSION_HEADER "Docker-Distribution-Api-Version"
#define API_VERSION        "registry/2.0"

int shim_v2_route_parse(const char *path, const char *default_name,
                        bool (*is_top)(void *arg, const char *name), void *arg,
                        struct shim_v2_route *out)
{
    static const char *const markers[] = {"/manifests/", "/blobs/", "/referrers/"};
    static const enum shim_v2_kind kinds[] = {SHIM_V2_MANIFEST, SHIM_V2_BLOB, SHIM_V2_REFERRERS};
    const char *rest, *cut = NULL, *ref = "";
    char name[SHIM_PATH_MAX + 1];

    memset(out, 0, sizeof(*out));
    if (strncmp(path, "v2", 2) != 0 || (path[2] != '\0' && path[2] != '/'))
        return -ENOENT;
    if (path[2] == '\0') {
        out->kind = SHIM_V2_BASE;
        return 0;
    }
    rest = path + 3;
    if (!strcmp(rest, "_catalog")) {
        out->kind = SHIM_V2_CATALOG;
        return 0;
    }
    size_t rl = strlen(rest), tl = strlen("/tags/list");
    if (rl > tl && !strcmp(rest + rl - tl, "/tags/list")) {
        out->kind = SHIM_V2_TAGS;
        cut = rest + rl - tl;
    } else {
        for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
            /* The last occurrence: a repository may itself contain "blobs" or "manifests". */
            for (const char *m = strstr(rest, markers[i]); m; m = strstr(m + 1, markers[i])) {
                if (!cut || m > cut) {
                    cut = m;
                    out->kind = kinds[i];
                    ref = m + strlen(markers[i]);
                }
            }
        }
        if (!cut || !*ref || strchr(ref, '/') || strlen(ref) > SHIM_COMPONENT_MAX)
            return -ENOENT;
    }
    size_t nl = (size_t)(cut - rest);
    if (nl == 0 || nl > SHIM_PATH_MAX)
        return -ENOENT;
    memcpy(name, rest, nl);
    name[nl] = '\0';
    snprintf(out->reference, sizeof(out->reference), "%s", ref);

    size_t kl = strcspn(name, "/");
    bool known = false;
    if (kl <= CONFIG_KEY_MAX && name[kl] == '/') {
        char key[CONFIG_KEY_MAX + 1];
        memcpy(key, name, kl);
        key[kl] = '\0';
        known = !is_top || is_top(arg, key);
        if (known) {
            snprintf(out->key, sizeof(out->key), "%s", key);
            snprintf(out->repository, sizeof(out->repository), "%s", name + kl + 1);
            return 0;
        }
    }
    if (!default_name)
        return -ENOENT;
    snprintf(out->key, sizeof(out->key), "%s", default_name);
    snprintf(out->repository, sizeof(out->repository), "%s", name);
    return 0;
}

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
    r->bytes += r->head ? 0 : len;
    return shim__reply(r, status, resp);
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

static enum MHD_Result not_yet(struct shim_req *r, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s is not served by this upstreamfs yet", what);
    return v2_error(r, MHD_HTTP_NOT_FOUND, "UNSUPPORTED", msg);
}

/* ---- the hooks the docker driver fills in ----------------------------------------------- */

static enum MHD_Result v2_manifest(struct shim_req *r, const struct shim_v2_route *rt)
{
    (void)rt;
    return not_yet(r, "manifests");
}

static enum MHD_Result v2_blob(struct shim_req *r, const struct shim_v2_route *rt)
{
    (void)rt;
    return not_yet(r, "blobs");
}

static enum MHD_Result v2_tags(struct shim_req *r, const struct shim_v2_route *rt)
{
    (void)rt;
    return not_yet(r, "tags/list");
}

static enum MHD_Result v2_referrers(struct shim_req *r, const struct shim_v2_route *rt)
{
    (void)rt;
    return not_yet(r, "referrers");
}

static enum MHD_Result v2_catalog(struct shim_req *r)
{
    return not_yet(r, "the catalog");
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
    struct shim_v2_route *rt = calloc(1, sizeof(*rt));
    enum MHD_Result ok;
    bool read = !strcmp(r->method, "GET") || r->head;
    if (!rt)
        return MHD_NO;
    if (!read) {
        ok = v2_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED",
                      "this registry is a read-only pull-through cache");
    } else if (shim_v2_route_parse(r->path, r->s->default_name, is_top, r->s->e, rt) < 0) {
        ok = v2_error(r, MHD_HTTP_NOT_FOUND, "NAME_UNKNOWN",
                      "no proxy or registry serves this repository (the path is "
                      "/v2/<key-or-registry>/<repository>/...)");
    } else {
        switch (rt->kind) {
        case SHIM_V2_BASE:
            ok = v2_base(r);
            break;
        case SHIM_V2_CATALOG:
            ok = v2_catalog(r);
            break;
        case SHIM_V2_MANIFEST:
            ok = v2_manifest(r, rt);
            break;
        case SHIM_V2_BLOB:
            ok = v2_blob(r, rt);
            break;
        case SHIM_V2_TAGS:
            ok = v2_tags(r, rt);
            break;
        default:
            ok = v2_referrers(r, rt);
            break;
        }
    }
    free(rt);
    return ok;
}
