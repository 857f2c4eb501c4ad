/*
 * fuzz_policy: the package rules' own parsers (include/upstreamfs/policy.h): npm semver
 * ranges and versions (src/policy/semver.c), PEP 440 specifiers and versions (pep440.c), a
 * rule in every ecosystem's syntax (rules.c), the package a mount path names (subject.c) and
 * the publish times of documents (filter.c). The input is three lines: a range or rule, a
 * version, a path (the rest).
 *
 * Properties: a result is 1, 0 or -EINVAL, and -EINVAL only for what the validity check
 * refuses; comparison is antisymmetric and a version equals itself; a rule that passes its
 * check is matched without error; the subject's name and version are NUL-terminated within
 * their caps and the version holds no '/'.
 */
#include "fuzz.h"

#include "upstreamfs/policy.h"

#include <errno.h>

static void versions(const char *range, const char *version)
{
    int r = semver_satisfies(range, version);
    FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL);
    int err = 0, e2 = 0;
    int c = semver_compare(version, version, &err);
    FUZZ_CHECK(err || c == 0);
    if (!err) /* a version and a range that both parse always give an answer */
        FUZZ_CHECK(!semver_range_valid(range) || r >= 0);
    int ab = semver_compare(range, version, &err), ba = semver_compare(version, range, &e2);
    FUZZ_CHECK(err != 0 || e2 != 0 || ab == -ba);

    r = pep440_satisfies(range, version);
    FUZZ_CHECK(r == 1 || r == 0 || r == -EINVAL);
    if (r == -EINVAL && pep440_version_valid(version))
        FUZZ_CHECK(!pep440_spec_valid(range));
    c = pep440_compare(version, version, &err);
    FUZZ_CHECK(err || c == 0);
    ab = pep440_compare(range, version, &err);
    ba = pep440_compare(version, range, &e2);
    FUZZ_CHECK(err != 0 || e2 != 0 || ab == -ba);
}

static void rules(const char *rule, const char *name, const char *version)
{
    char msg[256];
    for (int eco = POLICY_ECO_NONE; eco <= POLICY_ECO_IMAGE; eco++) {
        int rc = policy_rule_check((enum policy_eco)eco, rule, msg, sizeof(msg));
        FUZZ_CHECK(rc == 0 || rc == -EINVAL);
        FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) != NULL || rc == 0);
        (void)policy_rule_matches((enum policy_eco)eco, rule, name, version);
        (void)policy_rule_matches((enum policy_eco)eco, rule, name, NULL);
    }
}

static void subjects(const char *path)
{
    char name[POLICY_NAME_MAX + 1], version[POLICY_VERSION_MAX + 1];
    for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
        bool ok =
            policy_subject((enum proxy_type)t, path, name, sizeof(name), version, sizeof(version));
        FUZZ_CHECK(strlen(name) <= POLICY_NAME_MAX && strlen(version) <= POLICY_VERSION_MAX);
        FUZZ_CHECK(ok || (!name[0] && !version[0]));
        FUZZ_CHECK(!strchr(version, '/'));
    }
    if (policy_pypi_file_version(path, version, sizeof(version)))
        FUZZ_CHECK(version[0] && !strchr(version, '/'));
    int64_t t = policy_parse_time(path);
    FUZZ_CHECK(t >= -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    log_set_level(LOG_ERROR);
    char *range = fuzz_take_line(&data, &size);
    char *version = fuzz_take_line(&data, &size);
    char *path = fuzz_cstr(data, size);
    versions(range, version);
    rules(range, path, version);
    subjects(path);
    free(range);
    free(version);
    free(path);
    return 0;
}
