/*
 * docker_manifest: what a repository:reference names — tags resolved to digests (kept in
 * the proxy's tag cache for --metadata-ttl, revalidated with a HEAD, the last digest served
 * stale when the remote fails) and manifests fetched by digest through the shared document
 * cache (immutable, verified against the digest). See docker.c for the driver's design.
 */
#include "upstreamfs/clock.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/driver.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/log.h"
#include "upstreamfs/oci.h"
#include "upstreamfs/upstream.h"

#include "docker_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A manifest by digest: cached for good, verified against the digest. */
static int fetch_manifest(struct upstream *u, const char *repo, const char *digest,
                          struct upstream_doc *d)
{
    struct dk_state *s = dk_state(u);
    char scope[DK_SCOPE_MAX];
    char *url = NULL;
    memset(d, 0, sizeof(*d));
    int rc = s ? dk_reg_url(u, &url, "%s/manifests/%s", repo, digest) : -ENOMEM;
    if (rc == 0) {
        dk_scope(repo, scope, sizeof(scope));
        struct upstream_doc_req req = {
            .url = url, .immutable = true, .expect = digest, .max = DK_MANIFEST_MAX};
        rc = dk_manifest_fetch(u, s, scope, &req, d);
    }
    free(url);
    return rc;
}

int dk_load_manifest(struct upstream *u, const char *repo, const char *digest, const char *mt_hint,
                     struct oci_manifest *m, int64_t *size)
{
    struct upstream_doc d;
    char err[200];
    memset(m, 0, sizeof(*m));
    int rc = fetch_manifest(u, repo, digest, &d);
    if (rc == 0) {
        rc = oci_manifest_parse(d.body, d.len, d.content_type ? d.content_type : mt_hint, m, err,
                                sizeof(err));
        if (rc == -EIO)
            log_warn("proxy %s: manifest %s@%s: %s", upstream_config(u)->key, repo, digest, err);
        if (size)
            *size = (int64_t)d.len;
    }
    upstream_doc_clear(&d);
    return rc;
}

struct dk_tag *dk_tag_find(struct dk_state *s, const char *repo, const char *ref)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (strcmp(s->tags[i].repo, repo) == 0 && strcmp(s->tags[i].ref, ref) == 0)
            return &s->tags[i];
    return NULL;
}

/* Records what a tag resolved to (under the state lock); the oldest entry makes room. */
static void tag_put(struct dk_state *s, const char *repo, const char *ref, const struct dk_tag *v)
{
    struct dk_tag *t = dk_tag_find(s, repo, ref);
    if (!t && s->ntags == DK_TAG_CACHE_MAX) {
        size_t old = 0;
        for (size_t i = 1; i < s->ntags; i++)
            if (s->tags[i].checked < s->tags[old].checked)
                old = i;
        free(s->tags[old].repo);
        free(s->tags[old].ref);
        s->tags[old] = s->tags[--s->ntags];
    }
    if (!t) {
        if (s->ntags == s->captags) {
            size_t cap = s->captags ? s->captags * 2 : 16;
            struct dk_tag *nt = realloc(s->tags, cap * sizeof(*nt));
            if (!nt)
                return;
            s->tags = nt;
            s->captags = cap;
        }
        t = &s->tags[s->ntags];
        memset(t, 0, sizeof(*t));
        t->repo = strdup(repo);
        t->ref = strdup(ref);
        if (!t->repo || !t->ref) {
            free(t->repo);
            free(t->ref);
            return;
        }
        s->ntags++;
    }
    t->absent = v->absent;
    memcpy(t->digest, v->digest, sizeof(t->digest));
    memcpy(t->mt, v->mt, sizeof(t->mt));
    t->size = v->size;
    t->checked = v->checked;
}

/* A tag whose HEAD gave no usable digest: GET it (a mutable document) and hash the bytes. */
static int resolve_by_get(struct upstream *u, const char *repo, const char *ref, struct dk_tag *v)
{
    struct dk_state *s = dk_state(u);
    char scope[DK_SCOPE_MAX];
    char *url = NULL;
    struct upstream_doc d;
    memset(&d, 0, sizeof(d));
    int rc = s ? dk_reg_url(u, &url, "%s/manifests/%s", repo, ref) : -ENOMEM;
    if (rc == 0) {
        dk_scope(repo, scope, sizeof(scope));
        struct upstream_doc_req req = {.url = url, .max = DK_MANIFEST_MAX};
        rc = dk_manifest_fetch(u, s, scope, &req, &d);
    }
    if (rc == 0) {
        snprintf(v->digest, sizeof(v->digest), "sha256:%s", d.sha256);
        oci_media_type_base(d.content_type, v->mt, sizeof(v->mt));
        v->size = (int64_t)d.len;
    }
    upstream_doc_clear(&d);
    free(url);
    return rc;
}

/*
 * What repo:ref names now. A digest names itself (its existence is checked
 * when the manifest is fetched). A tag is answered from memory within the
 * TTL, else by a HEAD; when the remote fails, the last answer is used and
 * marked stale.
 */
static void resolved_from(struct dk_resolved *out, const struct dk_tag *t, bool stale)
{
    memcpy(out->digest, t->digest, sizeof(out->digest));
    memcpy(out->mt, t->mt, sizeof(out->mt));
    out->size = t->size;
    out->stale = stale;
}

/* Asks the registry what a tag names now (HEAD, or GET where HEAD gives no digest). */
static int ask_tag(struct upstream *u, const char *repo, const char *ref, struct dk_tag *v)
{
    struct fetch_response r;
    char scope[DK_SCOPE_MAX];
    char *url = NULL;
    int rc = dk_reg_url(u, &url, "%s/manifests/%s", repo, ref);
    if (rc < 0)
        return rc;
    dk_scope(repo, scope, sizeof(scope));
    rc = dk_reg_request(u, scope, url, true, true, 0, &r);
    free(url);
    v->size = -1;
    v->checked = clock_mono_ms();
    if (rc == 0 && r.status == 200 && r.docker_digest && oci_digest_valid(r.docker_digest)) {
        snprintf(v->digest, sizeof(v->digest), "%s", r.docker_digest);
        oci_media_type_base(r.content_type, v->mt, sizeof(v->mt));
        v->size = r.content_length;
    } else if (rc == 0 && (r.status == 200 || r.status == 405 || r.status == 501)) {
        rc = resolve_by_get(u, repo, ref, v); /* no digest header, or no HEAD at all */
    } else if (rc == 0) {
        rc = failure_status_errno(r.status);
        if (rc == -EACCES)
            log_warn("proxy %s: %s:%s: access denied (HTTP %ld)", upstream_config(u)->key, repo,
                     ref, r.status);
    }
    fetch_response_clear(&r);
    if (rc == -ENOENT)
        v->absent = true;
    return rc;
}

/*
 * What repo:ref names now. A digest names itself (its existence is checked
 * when the manifest is fetched). A tag is answered from memory within the
 * TTL, else by asking; when the remote fails, the last answer is used and
 * marked stale.
 */
static int resolve(struct upstream *u, const char *repo, const char *ref, struct dk_resolved *out)
{
    struct dk_state *s = dk_state(u);
    struct dk_tag cached = {0}, v = {0};
    bool have = false;
    memset(out, 0, sizeof(*out));
    out->size = -1;
    if (oci_digest_valid(ref)) {
        snprintf(out->digest, sizeof(out->digest), "%s", ref);
        return 0;
    }
    if (!s)
        return -ENOMEM;
    upstream_state_lock(u);
    struct dk_tag *t = dk_tag_find(s, repo, ref);
    if (t) {
        cached = *t;
        cached.repo = cached.ref = NULL;
        have = true;
    }
    upstream_state_unlock(u);
    if (have) {
        int64_t ttl =
            (cached.absent ? upstream_config(u)->negative_ttl : upstream_config(u)->metadata_ttl) *
            1000;
        if (clock_mono_ms() < cached.checked + ttl || upstream_config(u)->offline) {
            if (cached.absent)
                return -ENOENT;
            resolved_from(out, &cached, false);
            return 0;
        }
    }
    int rc = ask_tag(u, repo, ref, &v);
    if (rc == 0 || v.absent) {
        upstream_state_lock(u);
        tag_put(s, repo, ref, &v);
        upstream_state_unlock(u);
        if (!have || cached.absent != v.absent)
            dk_tag_gone(u, repo, ref, v.absent); /* a tag that vanished, or came back */
        if (rc == 0)
            resolved_from(out, &v, false);
        return rc;
    }
    if (rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -ENETUNREACH)
        rc = -EREMOTEIO;
    if (rc == -EREMOTEIO && have && !cached.absent) {
        log_info("proxy %s: %s:%s: the remote failed; using the last digest (stale)",
                 upstream_config(u)->key, repo, ref);
        resolved_from(out, &cached, true);
        return 0;
    }
    return rc;
}

int dk_image_check(struct upstream *u, const char *repo, const char *ref, struct dk_resolved *res)
{
    int rc = resolve(u, repo, ref, res);
    if (rc < 0 || (res->size >= 0 &&
                   (oci_media_type_is_manifest(res->mt) || oci_media_type_is_index(res->mt))))
        return rc;
    struct upstream_doc d;
    char err[200];
    rc = fetch_manifest(u, repo, res->digest, &d);
    if (rc == 0) {
        struct oci_manifest m;
        rc = oci_manifest_parse(d.body, d.len, d.content_type, &m, err, sizeof(err));
        if (rc == 0) {
            snprintf(res->mt, sizeof(res->mt), "%s", m.media_type);
            res->size = (int64_t)d.len;
            oci_manifest_clear(&m);
        } else if (rc == -EIO) {
            log_warn("proxy %s: manifest %s@%s: %s", upstream_config(u)->key, repo, res->digest,
                     err);
        }
    }
    upstream_doc_clear(&d);
    return rc;
}
