/*
 * v2_route: the pure part of the registry API under /v2/ (contracts in
 * include/upstreamfs/shim_v2.h): a request path to its route (key, repository, kind,
 * reference), and whether a request's Accept list takes a media type. Fuzzed by
 * tests/fuzz/fuzz_shim_path.c, tested by tests/unit/test_shim_v2.c; the routes are served
 * by v2.c.
 */
#include "upstreamfs/oci.h"
#include "upstreamfs/shim_v2.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

bool shim_v2_accepts(const char *accept, const char *media_type)
{
    char want[OCI_MEDIA_TYPE_MAX + 1];
    bool any = false;
    oci_media_type_base(media_type ? media_type : "", want, sizeof(want));
    for (const char *p = accept; p && *p;) {
        const char *end = p + strcspn(p, ",");
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *te = semi ? semi : end;
        while (p < te && (*p == ' ' || *p == '\t'))
            p++;
        while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        size_t n = (size_t)(te - p);
        bool refused = false;
        /* q=0 (0, 0.0, 0.00, 0.000) refuses the entry. */
        for (const char *q = semi; q && q < end; q = memchr(q + 1, ';', (size_t)(end - q - 1))) {
            const char *v = q + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            if (end - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                v += 2;
                bool zero = v < end && *v == '0';
                for (v += zero; zero && v < end && *v != ' ' && *v != '\t' && *v != ';'; v++)
                    zero = *v == '.' || *v == '0';
                refused = zero;
            }
        }
        if (n > 0) {
            any = true;
            bool match = (n == 3 && !strncmp(p, "*/*", 3)) ||
                         (n == 13 && !strncasecmp(p, "application/*", 13)) ||
                         (n == strlen(want) && want[0] && !strncasecmp(p, want, n));
            if (match && !refused)
                return true;
        }
        p = *end ? end + 1 : end;
    }
    return !any;
}
