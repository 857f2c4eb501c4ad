/*
 * httptree: a remote that is a plain HTTP file tree (the generic and Maven
 * drivers). A name is a file or a directory as follows: HEAD
 * name answering 200 with a non-HTML body is a file; a redirect to name/,
 * or HEAD name/ answering 200, is a directory. Directory listings come from
 * the remote's HTML index page, when it has one, read by
 * httptree_parse_index (src/parsers/httptree_index.c, pure).
 */
#ifndef UPSTREAMFS_HTTPTREE_H
#define UPSTREAMFS_HTTPTREE_H

#include "upstreamfs/driver.h"

#include <stddef.h>

int httptree_lookup(struct upstream *u, const char *path, bool is_mutable, struct drv_entry *out);
int httptree_list(struct upstream *u, const char *dir, struct drv_listing *out);

/*
 * Parses an HTML index page (libxml2's HTML parser): every link to a direct
 * child of base_url becomes an entry (a trailing '/' marks a directory).
 * A number right after a link, as nginx and many autoindex pages print, is
 * taken as the file's size.
 */
int httptree_parse_index(const char *html, size_t len, const char *base_url,
                         struct drv_listing *out);

#endif
