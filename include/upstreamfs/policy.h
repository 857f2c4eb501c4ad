/*
 * policy: what a proxy lets through by package name, version and age (docs/policy.md).
 *
 *  - Package rules, --allow and --deny 'NAME[@RANGE]' in each ecosystem's own syntax:
 *    npm and Helm: a name glob and an npm semver range (src/policy/semver.c); PyPI: a name
 *    glob (PEP 503 normalised) and PEP 440 specifiers (src/policy/pep440.c); Maven:
 *    'group:artifact[:version]' globs; images (docker, ecr): 'repo[:tag]' globs. With any
 *    --allow only what an allow rule matches is served; a deny wins over an allow.
 *  - Cooldown (npm, PyPI): --min-age SECONDS hides versions published less long ago;
 *    --min-age-unknown allow|deny (default deny: a version without a publish time is new);
 *    --min-age-exempt GLOB names packages the cooldown does not hold back.
 *
 * The parsing and matching here is pure (no I/O, every input capped): rules.c, subject.c,
 * semver.c, pep440.c. What a driver hides in its documents is src/policy/filter.c; the
 * engine refuses a path whose name and version the path itself tells before any upstream
 * request (src/engine/lookup.c, policy_path_verdict), and a cached file the cooldown holds back
 * (src/engine/reader.c). A registry's policy (struct registry.policy) is a struct proxy of the
 * registry's name and type, read by the same functions, applied after the upstream's.
 */
#ifndef UPSTREAMFS_POLICY_H
#define UPSTREAMFS_POLICY_H

#include "upstreamfs/config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_NAME_MAX    512 /* a package name (Maven: group:artifact; images: repository) */
#define POLICY_VERSION_MAX 256 /* a version or tag */
#define POLICY_RANGE_MAX   1024
#define POLICY_RULES_MAX   256 /* entries of --allow, --deny, --min-age-exempt */
#define POLICY_MIN_AGE_MAX (3650L * 86400)

enum policy_eco {
    POLICY_ECO_NONE, /* the proxy type takes no package rules (generic) */
    POLICY_ECO_NPM,
    POLICY_ECO_PYPI,
    POLICY_ECO_MAVEN,
    POLICY_ECO_HELM,
    POLICY_ECO_IMAGE,
};

/* The ecosystem of a proxy type. */
enum policy_eco policy_eco_of(enum proxy_type t);

/* ---- versions and ranges (pure; -EINVAL for what does not parse) ---------------------------- */

/* npm semver: a < b: -1, equal 0, 1; -EINVAL (as *err) when either is not a version. */
int semver_compare(const char *a, const char *b, int *err);
/* Whether version satisfies an npm range (^ ~ >= < x-ranges, hyphen, || and space-AND):
 * 1 yes, 0 no, -EINVAL when the range or the version does not parse. A prerelease matches only
 * a comparator of the same major.minor.patch that names a prerelease (node-semver's rule). */
int semver_satisfies(const char *range, const char *version);
/* Whether range parses as an npm range. */
bool semver_range_valid(const char *range);

/* PEP 440: the same for versions and specifier sets ("==, !=, >=, <=, <, >, ~=, ===", comma
 * AND; "==1.2.*"). Pre-releases are matched like any version. */
int pep440_compare(const char *a, const char *b, int *err);
int pep440_satisfies(const char *spec, const char *version);
bool pep440_spec_valid(const char *spec);
bool pep440_version_valid(const char *v);

/* ---- rules ---------------------------------------------------------------------------------- */

/* Checks one --allow/--deny entry for eco: 0, or -EINVAL with a message in msg. */
int policy_rule_check(enum policy_eco eco, const char *rule, char *msg, size_t msglen);

/* Whether rule matches name (and version; NULL: unknown). A rule with a range does not match
 * an unknown version. */
bool policy_rule_matches(enum policy_eco eco, const char *rule, const char *name,
                         const char *version);

enum policy_verdict {
    POLICY_PASS,   /* nothing holds it back */
    POLICY_DENIED, /* a deny rule matches, or no allow rule does */
    POLICY_YOUNG,  /* the cooldown holds it back */
};

/*
 * The package rules of p for a name, and a version when known (NULL: unknown, as for a
 * package's document: a deny with a range, or an allow rule's range, then decides per version).
 * *rule (may be NULL) points at the deny rule that matched, or NULL for "no allow rule".
 */
enum policy_verdict policy_name_verdict(const struct proxy *p, const char *name,
                                        const char *version, const char **rule);

/* Whether the cooldown applies to the name at all (min_age set, not exempt). */
bool policy_cooldown_applies(const struct proxy *p, const char *name);

/*
 * The whole rule for one version: the package rules, then the cooldown. published: Unix
 * time of its publication, -1 unknown; now: the current time. When the version is young,
 * *visible_at (may be NULL) is when it becomes visible (INT64_MAX: never, unknown time).
 */
enum policy_verdict policy_version_verdict(const struct proxy *p, const char *name,
                                           const char *version, int64_t published, int64_t now,
                                           int64_t *visible_at);

/* Whether p has any package rule or cooldown (the drivers' fast path). */
bool policy_active(const struct proxy *p);
/* Whether a and b have the same package rules and cooldown. */
bool policy_same(const struct proxy *a, const struct proxy *b);

/* Checks every rule of p against its type (config_proxy_validate): -EINVAL with err. */
int policy_config_check(const struct proxy *p, struct config_error *err);

/* ---- what a path names ---------------------------------------------------------------------- */

/*
 * The package (and version, "" when the path does not tell) a mount path below a proxy of
 * type t names, without I/O: npm "<name>/-/<unscoped>-<version>.tgz", PyPI "<project>/<file>",
 * Maven "<group path>/<artifact>/<version>/<file>", Helm "charts/<name>-<version>.tgz".
 * false when the path names no package (a directory on the way, an index).
 * Images are matched on the path itself (policy_path_verdict).
 */
bool policy_subject(enum proxy_type t, const char *path, char *name, size_t nlen, char *version,
                    size_t vlen);

/* The version in a PyPI distribution file name ("foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl",
 * and either with ".metadata"); false when it has none. */
bool policy_pypi_file_version(const char *file, char *version, size_t vlen);

/*
 * The engine's check of a mount path, before any request: POLICY_DENIED when the path's
 * package (version) is refused by the rules; *rule as policy_name_verdict's. Directories on
 * the way to an allowed package pass.
 */
enum policy_verdict policy_path_verdict(const struct proxy *p, const char *path, const char **rule);

/* ---- documents (src/policy/filter.c) -------------------------------------------------------- */

/* An RFC 3339 time ("2024-01-01T00:00:00.000Z", "+01:00" offsets) as Unix seconds, or -1. */
int64_t policy_parse_time(const char *s);

/*
 * What the filtering of one document did: versions hidden, and the earliest time one of the
 * hidden becomes visible (INT64_MAX: none will by waiting).
 */
struct policy_filtered {
    size_t hidden;
    int64_t next_visible;
};

/*
 * Hides the versions p does not let through from an npm packument (parsed, changed in place):
 * left out of "versions" and "time"; each dist-tag naming a hidden version is moved back to
 * the newest visible version not above it (a release tag to a release), or removed.
 */
int policy_npm_filter(const struct proxy *p, const char *name, json_t *doc, int64_t now,
                      struct policy_filtered *out);

/*
 * The same for a PyPI project page in the canonical form (include/upstreamfs/pypi.h): a new
 * reference with the files of hidden versions left out (*out, freed with pypi_index_free: a
 * subset sharing index's strings; index itself, referenced, when nothing is hidden).
 */
struct pypi_index;
int policy_pypi_filter(const struct proxy *p, const char *name, struct pypi_index *index,
                       int64_t now, struct pypi_index **out, struct policy_filtered *f);

/*
 * A short fingerprint of what decides a rendered document's visible set: the policy settings
 * and the time bucket next_visible falls in (INT64_MAX: none). Two renders of the same source
 * with the same fingerprint show the same versions, so a render cache keys on it
 * (src/engine/documents.c). "" when p has no policy. buf: at least 17 bytes.
 */
void policy_fingerprint(const struct proxy *p, int64_t next_visible, char *buf, size_t n);

/*
 * Logs a refusal and records it as the failure of this operation (cause policy,
 * include/upstreamfs/failure.h), so the xattr user.upstreamfs.error and the shim's error
 * body name it. Returns -EACCES.
 */
int policy_refuse(const struct proxy *p, const char *name, const char *version,
                  enum policy_verdict why, const char *rule);

#endif
