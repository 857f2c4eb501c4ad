/*
 * maven: a Maven 2 layout repository. Release artifacts never change, so
 * they are immutable; maven-metadata.xml (and its checksums) and everything
 * under a *-SNAPSHOT/ directory are mutable. Before an artifact is
 * downloaded its .sha256 sidecar (else .sha1) is read, and the download
 * must match it: a mismatch is an error, never a cached file.
 */
#include "upstreamfs/failure.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/httptree.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDECAR_MAX 4096

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool is_checksum(const char *path)
{
    static const char *const sfx[] = {".md5", ".sha1", ".sha256", ".sha512", ".asc"};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (ends_with(path, sfx[i]))
            return true;
    return false;
}

static bool maven_mutable(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strncmp(base, "maven-metadata.xml", 18) == 0 || strstr(path, "-SNAPSHOT/") != NULL;
}

static int maven_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    return httptree_lookup(u, path, maven_mutable(path), out);
}

static int maven_expectation(struct upstream *u, const char *path, const struct drv_entry *e,
                             char **expect)
{
    static const char *const sidecars[] = {".sha256", ".sha1"};
    *expect = NULL;
    if (is_checksum(path) || !e->url)
        return -ENOENT;
    for (size_t i = 0; i < sizeof(sidecars) / sizeof(sidecars[0]); i++) {
        char url[4200];
        struct fetch_response r;
        snprintf(url, sizeof(url), "%s%s", e->url, sidecars[i]);
        int rc = upstream_request(u, url, false, SIDECAR_MAX, &r);
        if (rc < 0) {
            fetch_response_clear(&r);
            return rc == -EFBIG ? -EIO : rc;
        }
        if (r.status == 200) {
            struct hash_expect he;
            char buf[200];
            rc = hash_expect_parse(r.body, &he);
            fetch_response_clear(&r);
            if (rc < 0 || he.algo != (i == 0 ? HASH_SHA256 : HASH_SHA1))
                return -EIO; /* a sidecar we cannot read must not be ignored */
            hash_expect_format(&he, buf, sizeof(buf));
            *expect = strdup(buf);
            return *expect ? 0 : -ENOMEM;
        }
        long status = r.status;
        fetch_response_clear(&r);
        if (status != 404 && status != 410)
            return failure_status_errno(status);
    }
    return -ENOENT;
}

const struct driver_ops driver_maven = {
    .type = "maven",
    .lookup = maven_lookup,
    .list = httptree_list,
    .expectation = maven_expectation,
};
