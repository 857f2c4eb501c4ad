/*
 * httptree: plain HTTP file trees (see httptree.h).
 */
#include "upstreamfs/failure.h"
#include "upstreamfs/httptree.h"
#include "upstreamfs/index.h"
#include "upstreamfs/log.h"
#include "upstreamfs/upstream.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool is_html(const struct fetch_response *r)
{
    return r->content_type && strncasecmp(r->content_type, "text/html", 9) == 0;
}

/* HEAD without following redirects: a redirect to name/ is how servers say "directory". */
static int head(struct upstream *u, const char *url, bool follow, struct fetch_response *r)
{
    struct fetch_request req = {
        .url = url, .head = true, .no_redirects = !follow, .timeout_ms = FETCH_META_TIMEOUT_MS};
    int rc = upstream_perform(u, &req, r);
    return rc == -ELOOP ? -EIO : rc;
}


int httptree_lookup(struct upstream *u, const char *path, bool is_mutable, struct drv_entry *out)
{
    struct fetch_response r, rd;
    char *url = upstream_url(u, path);
    char *durl = NULL;
    int rc;
    memset(&rd, 0, sizeof(rd));
    if (!url)
        return -ENOMEM;
    rc = head(u, url, false, &r);
    if (rc < 0)
        goto out;
    bool redirect = r.status >= 300 && r.status < 400 && r.location;
    if (redirect) {
        char *target = fetch_url_resolve(url, r.location);
        size_t ul = strlen(url);
        bool to_dir = target && strncmp(target, url, ul) == 0 && strcmp(target + ul, "/") == 0;
        free(target);
        if (to_dir) {
            out->kind = NODE_DIR;
            goto out;
        }
        /* Any other redirect: follow it and describe the file at its end. */
        fetch_response_clear(&r);
        rc = head(u, url, true, &r);
        if (rc < 0)
            goto out;
    }
    if (r.status == 200 && !is_html(&r)) {
        out->kind = NODE_FILE;
        out->size = r.content_length;
        out->url = url;
        url = NULL;
        out->is_mutable = is_mutable;
        if (r.last_modified)
            out->mtime = (int64_t)curl_getdate(r.last_modified, NULL);
        if (out->mtime < 0)
            out->mtime = 0;
        goto out;
    }
    if (r.status != 200 && r.status != 404 && r.status != 410) {
        rc = failure_status_errno(r.status);
        rc = rc == 0 ? -EIO : rc; /* a 2xx that is not 200 says nothing usable */
        goto out;
    }
    /* An HTML answer or a 404: a directory shows itself at name/. */
    durl = malloc(strlen(url) + 2);
    if (!durl) {
        rc = -ENOMEM;
        goto out;
    }
    sprintf(durl, "%s/", url);
    rc = head(u, durl, true, &rd);
    if (rc < 0)
        goto out;
    if (rd.status == 200) {
        out->kind = NODE_DIR;
    } else if (r.status == 200) {
        out->kind = NODE_FILE; /* an HTML file that is not a directory */
        out->size = r.content_length;
        out->url = url;
        url = NULL;
        out->is_mutable = is_mutable;
    } else {
        rc = failure_status_errno(r.status);
    }
out:
    fetch_response_clear(&r);
    fetch_response_clear(&rd);
    free(url);
    free(durl);
    return rc;
}

int httptree_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    char *base = upstream_url(u, dir);
    char *body = NULL;
    size_t len = 0;
    bool stale = false;
    int rc;
    if (!base)
        return -ENOMEM;
    if (dir[0]) {
        char *b2 = realloc(base, strlen(base) + 2);
        if (!b2) {
            free(base);
            return -ENOMEM;
        }
        base = b2;
        strcat(base, "/");
    }
    rc = upstream_doc_get(u, base, &body, &len, &stale);
    if (rc == -ENOENT || rc == -EACCES)
        rc = -ENOTSUP; /* no index page: the directory shows what is cached */
    if (rc == 0)
        rc = httptree_parse_index(body, len, base, out);
    for (size_t i = 0; rc == 0 && i < out->n; i++)
        out->items[i].is_mutable = upstream_config(u)->type == PROXY_GENERIC;
    free(body);
    free(base);
    return rc;
}
