/*
 * index_scope: which proxy obtained each stored object, and from where
 * (docs/SECURITY.md "Blob and file scoping"). The store is content
 * addressed and shared; this table is what stops a digest that one proxy
 * fetched from a private upstream being served by another proxy whose
 * upstream never served it. A row (digest, top, repo) says: proxy `top`
 * downloaded and verified `digest` itself from the location `repo` at its
 * own upstream (index_scope_repo: the object's URL without its last segment,
 * e.g. https://reg/v2/<repository>/blobs for a docker blob, so every tag of
 * one repository shares the row). The table is created by the migration
 * in src/state/schema.c.
 */
#include "index_i.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void index_scope_repo(const char *url, char *buf, size_t len)
{
    if (!url) {
        snprintf(buf, len, "%s", "");
        return;
    }
    size_t n = strcspn(url, "?#");
    const char *slash = NULL;
    for (const char *p = url; p < url + n; p++)
        if (*p == '/')
            slash = p;
    if (slash)
        n = (size_t)(slash - url);
    snprintf(buf, len, "%.*s", (int)n, url);
}

static sqlite3_stmt *bind3(struct index *ix, enum index_stmt which, const char *digest,
                           const char *top, const char *repo)
{
    sqlite3_stmt *s = index__stmt(ix, which);
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, top, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, repo, -1, SQLITE_STATIC);
    return s;
}

int index_scope_add(struct index *ix, const char *digest, const char *top, const char *repo)
{
    sqlite3_stmt *s = bind3(ix, S_SCOPE_ADD, digest, top, repo);
    return index__done(s, sqlite3_step(s));
}

int index_scope_has(struct index *ix, const char *digest, const char *top, const char *repo)
{
    sqlite3_stmt *s = bind3(ix, S_SCOPE_HAS, digest, top, repo);
    int step = sqlite3_step(s);
    int rc = index__done(s, step);
    return step == SQLITE_ROW ? 1 : rc;
}
