/*
 * removals: cached versions their upstream no longer lists (issue 17, item 3;
 * docs/policy.md "Upstream removals"). The engine's part is src/engine/removals.c;
 * these are its pure rules, unit-tested on their own (tests/unit/test_removals.c).
 */
#ifndef UPSTREAMFS_REMOVALS_H
#define UPSTREAMFS_REMOVALS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The set comparison of a revalidation: cached[i] (the names of the cached entries of a
 * directory) against listed (what the new document lists there). gone[i] is set for a cached
 * name the document no longer lists (to mark), cleared for one it lists (to unmark: it came
 * back). 0 or -ENOMEM.
 */
int removals_diff(const char *const *cached, size_t n_cached, const char *const *listed,
                  size_t n_listed, bool *gone);

/*
 * Whether a marked entry at path (below its proxy: "lodash/-/lodash-4.0.0.tgz",
 * "pkg/pkg-1.0-py3-none-any.whl", "library/alpine/3.19") is version version of package name
 * ("cache purge KEY/NAME@VERSION"): path is inside name's directory and its last component is
 * the version itself (a tag) or a file name with "-VERSION" followed by the end of the
 * version: '-' (a wheel's tags) or an archive extension (.tgz, .tar.gz, .zip, .whl, .tar.bz2,
 * .egg). version NULL: every marked entry of the package.
 */
bool removals_spec_matches(const char *path, const char *name, const char *version);

/* Splits "KEY/NAME@VERSION" (NAME may be "@scope/name") in place; -EINVAL when malformed. */
int removals_spec_split(char *spec, char **key, char **name, char **version);

#endif
