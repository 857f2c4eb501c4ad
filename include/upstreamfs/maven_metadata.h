/*
 * maven_metadata: a Maven maven-metadata.xml with the versions a proxy's package rules refuse
 * left out (src/parsers/maven_metadata.c; the decision is src/policy's, through the callback).
 * Pure: no I/O, no network entities, the input capped by its caller (the document cache).
 */
#ifndef UPSTREAMFS_MAVEN_METADATA_H
#define UPSTREAMFS_MAVEN_METADATA_H

#include <stdbool.h>
#include <stddef.h>

#define MAVEN_METADATA_MAX (8u << 20) /* bytes of one maven-metadata.xml */

/* Whether version is left out; arg is the caller's. */
typedef bool (*maven_version_hidden_fn)(void *arg, const char *version);

/*
 * Rewrites metadata/versioning: each versions/version hidden(arg, v) says is left out; a
 * latest (release) naming a hidden version becomes the last version left (the last one that is
 * not a -SNAPSHOT), or is removed when there is none. *out (malloc'd, NUL-terminated), *out_len;
 * *hidden (may be NULL): versions left out. A document without versions comes back as it was.
 * -EIO for what is not XML, -ENOMEM, -EFBIG above MAVEN_METADATA_MAX.
 */
int maven_metadata_filter(const char *xml, size_t len, maven_version_hidden_fn hidden, void *arg,
                          char **out, size_t *out_len, size_t *nhidden);

#endif
