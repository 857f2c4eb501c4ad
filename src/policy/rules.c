/*
 * rules: the package rules (--allow, --deny) and the cooldown (--min-age, --min-age-unknown,
 * --min-age-exempt) of a proxy, the one entry point every driver and the engine ask
 * (include/upstreamfs/policy.h). Names are matched with fnmatch(3) globs, as the path rules
 * of src/util/match.c; PyPI names are compared in their PEP 503 normalised form.
 */
#include "upstreamfs/policy.h"
#include "upstreamfs/failure.h"
#include "upstreamfs/log.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum policy_eco policy_eco_of(enum proxy_type t)
{
    switch (t) {
    case PROXY_NPM:
        return POLICY_ECO_NPM;
    case PROXY_PYPI:
        return POLICY_ECO_PYPI;
    case PROXY_MAVEN:
        return POLICY_ECO_MAVEN;
    case PROXY_HELM:
        return POLICY_ECO_HELM;
    case PROXY_DOCKER:
    case PROXY_ECR:
        return POLICY_ECO_IMAGE;
    default:
        return POLICY_ECO_NONE;
    }
}

/* A rule split into its name glob and its range ("" when none). */
struct rule_parts {
    char name[POLICY_NAME_MAX + 1];
    char range[POLICY_RANGE_MAX + 1];
};

/* PEP 503's normal form, globs kept: lower case, each run of '-', '_', '.' one '-'. */
static void pypi_fold(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        bool sep = *r == '-' || *r == '_' || *r == '.';
        if (sep && w > s && w[-1] == '-')
            continue;
        *w++ = sep ? '-' : (char)tolower((unsigned char)*r);
    }
    *w = '\0';
}

static bool rule_split(enum policy_eco eco, const char *rule, struct rule_parts *out)
{
    size_t n = strlen(rule), at = n;
    if (n == 0 || n > POLICY_NAME_MAX + POLICY_RANGE_MAX)
        return false;
    switch (eco) {
    case POLICY_ECO_NPM:
    case POLICY_ECO_HELM: {
        const char *a = strchr(rule + 1, '@');
        at = a ? (size_t)(a - rule) : n;
        break;
    }
    case POLICY_ECO_PYPI: {
        const char *a = strchr(rule, '@');
        at = a ? (size_t)(a - rule) : strcspn(rule, "<>=!~ ");
        break;
    }
    case POLICY_ECO_MAVEN: {
        const char *c = strchr(rule, ':');
        const char *c2 = c ? strchr(c + 1, ':') : NULL;
        if (!c || (c2 && strchr(c2 + 1, ':')))
            return false;
        at = c2 ? (size_t)(c2 - rule) : n;
        break;
    }
    case POLICY_ECO_IMAGE: {
        const char *c = strrchr(rule, ':');
        const char *sl = strrchr(rule, '/');
        at = c && (!sl || c > sl) ? (size_t)(c - rule) : n;
        break;
    }
    case POLICY_ECO_NONE:
        return false;
    }
    if (at == 0 || at > POLICY_NAME_MAX || n - at > POLICY_RANGE_MAX + 1)
        return false;
    memcpy(out->name, rule, at);
    out->name[at] = '\0';
    const char *r = rule + at;
    if (*r == '@' || (*r == ':' && eco != POLICY_ECO_PYPI))
        r++;
    snprintf(out->range, sizeof(out->range), "%s", r);
    if (eco == POLICY_ECO_PYPI)
        pypi_fold(out->name);
    return true;
}

/* A PyPI range: specifiers, or a bare version meaning "==". */
static int pypi_range(const char *range, const char *version)
{
    const char *r = range + strspn(range, " ");
    if (isdigit((unsigned char)*r) || *r == 'v') {
        char spec[POLICY_RANGE_MAX + 3];
        snprintf(spec, sizeof(spec), "==%s", r);
        return version ? pep440_satisfies(spec, version) : pep440_spec_valid(spec) ? 1 : -EINVAL;
    }
    return version ? pep440_satisfies(r, version) : pep440_spec_valid(r) ? 1 : -EINVAL;
}

static int fn_flags(enum policy_eco eco)
{
    return eco == POLICY_ECO_IMAGE ? FNM_PATHNAME : 0;
}

int policy_rule_check(enum policy_eco eco, const char *rule, char *msg, size_t msglen)
{
    struct rule_parts rp;
    static const char *const forms[] = {
        [POLICY_ECO_NPM] = "NAME[@RANGE] (an npm semver range)",
        [POLICY_ECO_PYPI] = "NAME[@SPECIFIERS] (PEP 440, e.g. requests@>=2,<3)",
        [POLICY_ECO_MAVEN] = "GROUP:ARTIFACT[:VERSION] (globs)",
        [POLICY_ECO_HELM] = "NAME[@RANGE] (a semver range)",
        [POLICY_ECO_IMAGE] = "REPOSITORY[:TAG] (globs)",
    };
    if (eco == POLICY_ECO_NONE) {
        snprintf(msg, msglen, "this proxy type takes no package rules");
        return -EINVAL;
    }
    for (const char *c = rule; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(msg, msglen, "a rule has no control characters");
            return -EINVAL;
        }
    }
    bool ok = rule_split(eco, rule, &rp);
    if (ok && rp.range[0]) {
        if (eco == POLICY_ECO_NPM || eco == POLICY_ECO_HELM)
            ok = semver_range_valid(rp.range);
        else if (eco == POLICY_ECO_PYPI)
            ok = pypi_range(rp.range, NULL) > 0;
    }
    if (!ok) {
        snprintf(msg, msglen, "%.200s is not %s", rule, forms[eco]);
        return -EINVAL;
    }
    return 0;
}

/* Whether the name part of a split rule matches name. */
static bool name_matches(enum policy_eco eco, const struct rule_parts *rp, const char *name)
{
    char folded[POLICY_NAME_MAX + 1];
    if (eco == POLICY_ECO_PYPI) {
        snprintf(folded, sizeof(folded), "%s", name);
        pypi_fold(folded);
        name = folded;
    }
    return fnmatch(rp->name, name, fn_flags(eco)) == 0;
}

static bool range_matches(enum policy_eco eco, const char *range, const char *version)
{
    switch (eco) {
    case POLICY_ECO_NPM:
    case POLICY_ECO_HELM:
        return semver_satisfies(range, version) == 1;
    case POLICY_ECO_PYPI:
        return pypi_range(range, version) == 1;
    default:
        return fnmatch(range, version, 0) == 0;
    }
}

bool policy_rule_matches(enum policy_eco eco, const char *rule, const char *name,
                         const char *version)
{
    struct rule_parts rp;
    if (!rule_split(eco, rule, &rp) || !name_matches(eco, &rp, name))
        return false;
    if (!rp.range[0])
        return true;
    return version && range_matches(eco, rp.range, version);
}

bool policy_active(const struct proxy *p)
{
    return (p->deny && p->deny[0]) || (p->allow && p->allow[0]) || p->min_age > 0;
}

static bool strv_same(char *const *a, char *const *b)
{
    for (; a && *a && b && *b; a++, b++)
        if (strcmp(*a, *b) != 0)
            return false;
    return !(a && *a) && !(b && *b);
}

bool policy_same(const struct proxy *a, const struct proxy *b)
{
    return a->min_age == b->min_age && a->min_age_unknown == b->min_age_unknown &&
           strv_same(a->min_age_exempt, b->min_age_exempt) && strv_same(a->allow, b->allow) &&
           strv_same(a->deny, b->deny);
}

enum policy_verdict policy_name_verdict(const struct proxy *p, const char *name,
                                        const char *version, const char **rule)
{
    enum policy_eco eco = policy_eco_of(p->type);
    if (rule)
        *rule = NULL;
    if (eco == POLICY_ECO_NONE)
        return POLICY_PASS;
    for (char *const *d = p->deny; d && *d; d++) {
        if (policy_rule_matches(eco, *d, name, version)) {
            if (rule)
                *rule = *d;
            return POLICY_DENIED;
        }
    }
    if (!p->allow || !p->allow[0])
        return POLICY_PASS;
    for (char *const *a = p->allow; *a; a++) {
        struct rule_parts rp;
        if (!rule_split(eco, *a, &rp) || !name_matches(eco, &rp, name))
            continue;
        /* Without a version the package passes; its versions are decided one by one. */
        if (!rp.range[0] || !version || range_matches(eco, rp.range, version))
            return POLICY_PASS;
    }
    return POLICY_DENIED;
}

bool policy_cooldown_applies(const struct proxy *p, const char *name)
{
    enum policy_eco eco = policy_eco_of(p->type);
    if (p->min_age <= 0 || (eco != POLICY_ECO_NPM && eco != POLICY_ECO_PYPI))
        return false;
    for (char *const *x = p->min_age_exempt; x && *x; x++) {
        struct rule_parts rp;
        snprintf(rp.name, sizeof(rp.name), "%s", *x);
        if (eco == POLICY_ECO_PYPI)
            pypi_fold(rp.name);
        if (name_matches(eco, &rp, name))
            return false;
    }
    return true;
}

enum policy_verdict policy_version_verdict(const struct proxy *p, const char *name,
                                           const char *version, int64_t published, int64_t now,
                                           int64_t *visible_at)
{
    if (policy_name_verdict(p, name, version, NULL) == POLICY_DENIED)
        return POLICY_DENIED;
    if (!policy_cooldown_applies(p, name))
        return POLICY_PASS;
    if (published < 0) {
        if (p->min_age_unknown == MIN_AGE_UNKNOWN_ALLOW)
            return POLICY_PASS;
        if (visible_at)
            *visible_at = INT64_MAX;
        return POLICY_YOUNG;
    }
    if (now - published >= p->min_age)
        return POLICY_PASS;
    if (visible_at)
        *visible_at = published + p->min_age;
    return POLICY_YOUNG;
}

int policy_config_check(const struct proxy *p, struct config_error *err)
{
    enum policy_eco eco = policy_eco_of(p->type);
    char msg[256];
    char *const *lists[] = {p->allow, p->deny};
    const char *names[] = {"allow", "deny"};
    for (int l = 0; l < 2; l++) {
        for (char *const *r = lists[l]; r && *r; r++) {
            if (policy_rule_check(eco, *r, msg, sizeof(msg)) < 0) {
                config_error_set(err, names[l], "%s", msg);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* An image path: some prefix of its components is a repository the rule's glob names, and
 * the next component (the tag's directory) its tag glob; on_way: the path may lead to one. */
static bool image_rule_matches(const char *rule, const char *path, bool on_way)
{
    struct rule_parts rp;
    char buf[4096];
    if (!rule_split(POLICY_ECO_IMAGE, rule, &rp) || strlen(path) >= sizeof(buf))
        return false;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *sl = buf;; sl++) {
        sl = strchr(sl, '/');
        if (sl)
            *sl = '\0';
        if (fnmatch(rp.name, buf, FNM_PATHNAME) == 0) {
            const char *tag = sl ? sl + 1 : NULL;
            size_t tl = tag ? strcspn(tag, "/") : 0;
            char t[POLICY_VERSION_MAX + 1];
            if (!rp.range[0] || (!tag && on_way))
                return true;
            if (tag && tl <= POLICY_VERSION_MAX) {
                memcpy(t, tag, tl);
                t[tl] = '\0';
                if (fnmatch(rp.range, t, 0) == 0)
                    return true;
            }
        }
        if (!sl)
            break;
        *sl = '/';
    }
    if (!on_way)
        return false;
    /* a directory on the way: each of its components matches the glob's */
    size_t depth = 1;
    for (const char *c = path; *c; c++)
        depth += *c == '/';
    char pat[POLICY_NAME_MAX + 1];
    size_t k = 0, slashes = 0;
    for (; rp.name[k] && slashes < depth; k++)
        slashes += rp.name[k] == '/';
    if (slashes < depth)
        return false;
    memcpy(pat, rp.name, k - 1);
    pat[k - 1] = '\0';
    return fnmatch(pat, path, FNM_PATHNAME) == 0;
}

enum policy_verdict policy_path_verdict(const struct proxy *p, const char *path, const char **rule)
{
    char name[POLICY_NAME_MAX + 1], version[POLICY_VERSION_MAX + 1];
    if (rule)
        *rule = NULL;
    if (!((p->deny && p->deny[0]) || (p->allow && p->allow[0])) || !path[0])
        return POLICY_PASS;
    if (policy_eco_of(p->type) == POLICY_ECO_IMAGE) {
        for (char *const *d = p->deny; d && *d; d++) {
            if (image_rule_matches(*d, path, false)) {
                if (rule)
                    *rule = *d;
                return POLICY_DENIED;
            }
        }
        if (!p->allow || !p->allow[0])
            return POLICY_PASS;
        for (char *const *a = p->allow; *a; a++)
            if (image_rule_matches(*a, path, true))
                return POLICY_PASS;
        return POLICY_DENIED;
    }
    if (!policy_subject(p->type, path, name, sizeof(name), version, sizeof(version)))
        return POLICY_PASS;
    return policy_name_verdict(p, name, version[0] ? version : NULL, rule);
}

int policy_refuse(const struct proxy *p, const char *name, const char *version,
                  enum policy_verdict why, const char *rule)
{
    struct failure f = {.cause = FAILURE_POLICY};
    if (why == POLICY_YOUNG)
        log_info("%s proxy %s: %s%s%s refused: published less than %lds ago (--min-age)",
                 config_type_name(p->type), p->key, name, version ? "@" : "",
                 version ? version : "", p->min_age);
    else if (rule)
        log_info("%s proxy %s: %s%s%s refused by --deny %s", config_type_name(p->type), p->key,
                 name, version ? "@" : "", version ? version : "", rule);
    else
        log_info("%s proxy %s: %s%s%s refused: no --allow rule matches", config_type_name(p->type),
                 p->key, name, version ? "@" : "", version ? version : "");
    snprintf(f.code, sizeof(f.code), "%s",
             why == POLICY_YOUNG ? "min-age"
             : rule              ? "deny"
                                 : "allow");
    failure_note_set(p->key, &f, NULL, true);
    return -EACCES;
}
