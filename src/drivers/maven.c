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
#include "upstreamfs/maven_metadata.h"
#include "upstreamfs/policy.h"
#include "upstreamfs/upstream.h"

#include <errno.h>
#include <openssl/evp.h>
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

/*
 * An artifact's "GROUP/ARTIFACT/maven-metadata.xml" (sidecar: its checksum file's extension
 * after the dot, else "") under package rules: the versions the rules refuse are left out, so
 * the document (and its checksum files) are made here (docs/policy.md). false for any other
 * path, or a proxy without rules. ga: "group:artifact".
 */
static bool filtered_metadata(struct upstream *u, const char *path, char *ga, size_t gn,
                              const char **sidecar)
{
    static const char *const sums[] = {"", "md5", "sha1", "sha256", "sha512"};
    const char *base = strrchr(path, '/');
    if (!policy_active(upstream_config(u)) || !base || strncmp(base + 1, "maven-metadata.xml", 18))
        return false;
    const char *ext = base + 1 + 18;
    size_t i = 0;
    while (i < sizeof(sums) / sizeof(sums[0]) && strcmp(ext[0] ? ext + 1 : "", sums[i]))
        i++;
    if (i == sizeof(sums) / sizeof(sums[0]) || (ext[0] && ext[0] != '.'))
        return false;
    *sidecar = sums[i];
    const char *art = base;
    while (art > path && art[-1] != '/')
        art--;
    if (art == path || (size_t)(base - path) >= gn)
        return false; /* no group: not an artifact's metadata */
    size_t glen = (size_t)(art - 1 - path);
    snprintf(ga, gn, "%.*s:%.*s", (int)glen, path, (int)(base - art), art);
    for (size_t k = 0; k < glen; k++)
        if (ga[k] == '/')
            ga[k] = '.';
    return true;
}

static int maven_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    char ga[POLICY_NAME_MAX + 1];
    const char *sidecar;
    if (filtered_metadata(u, path, ga, sizeof(ga), &sidecar))
        return drv_entry_generated(u, path, sidecar[0] ? "text/plain" : "application/xml", out);
    return httptree_lookup(u, path, maven_mutable(path), out);
}

struct hidden_arg {
    const struct proxy *cfg;
    const char *ga;
};

/* A version the package rules refuse is left out of maven-metadata.xml. */
static bool version_hidden(void *arg, const char *version)
{
    const struct hidden_arg *a = arg;
    return policy_name_verdict(a->cfg, a->ga, version, NULL) == POLICY_DENIED;
}

/* The hex digest (EVP name md) of body, as a checksum file holds it. */
static int digest_file(const char *md, const char *body, size_t len, char **out, size_t *out_len)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const EVP_MD *m = EVP_get_digestbyname(md);
    if (!m || !EVP_Digest(body, len, d, &n, m, NULL) || !(*out = malloc(2 * n + 1)))
        return -ENOMEM;
    hash_hex_encode(d, n, *out);
    *out_len = 2 * n;
    return 0;
}

static int maven_generate(struct upstream *u, const char *path, char **body, size_t *len,
                          bool *stale)
{
    char ga[POLICY_NAME_MAX + 1], url[4200];
    const char *sidecar;
    if (!filtered_metadata(u, path, ga, sizeof(ga), &sidecar))
        return -ENOENT;
    const char *end = strstr(path, "maven-metadata.xml") + 18; /* the document's path */
    snprintf(url, sizeof(url), "%s%.*s", upstream_config(u)->url, (int)(end - path), path);
    char *raw = NULL, *xml = NULL;
    size_t rlen = 0, xlen = 0;
    int rc = upstream_doc_get(u, url, &raw, &rlen, stale);
    struct hidden_arg a = {.cfg = upstream_config(u), .ga = ga};
    if (rc == 0)
        rc = maven_metadata_filter(raw, rlen, version_hidden, &a, &xml, &xlen, NULL);
    free(raw);
    if (rc == 0 && sidecar[0]) {
        rc = digest_file(sidecar, xml, xlen, body, len);
        free(xml);
    } else if (rc == 0) {
        *body = xml;
        *len = xlen;
    }
    return rc;
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
    .generate = maven_generate,
};
