/*
 * semver: npm's versions and ranges (node-semver's grammar, include/upstreamfs/policy.h),
 * pure. A range is desugared into comparator sets ("||" alternatives of space-separated
 * comparators), each comparator an operator and a full version; x-ranges, ~, ^ and hyphen
 * ranges become a ">=" and a "<" bound. Used by npm and Helm rules (src/policy/rules.c) and
 * the dist-tag move of src/policy/filter.c.
 */
#include "upstreamfs/policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SV_PRE_MAX 128
#define SV_NUM_MAX 999999999999ULL
#define SV_CMP_MAX 32 /* comparators in one set */

struct sv {
    uint64_t v[3];
    char pre[SV_PRE_MAX]; /* "" for a release */
};

enum sv_op { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE, OP_NONE /* matches nothing */ };

struct sv_cmp {
    enum sv_op op;
    struct sv v;
};

/* A partial version: how many of major.minor.patch were numbers (x, X, * and missing stop). */
struct sv_partial {
    struct sv v;
    int given;
};

static bool num(const char **p, uint64_t *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return false;
    uint64_t n = 0;
    size_t digits = 0;
    while (isdigit((unsigned char)*s)) {
        if (++digits > 12)
            return false;
        n = n * 10 + (uint64_t)(*s++ - '0');
    }
    if (n > SV_NUM_MAX)
        return false;
    *out = n;
    *p = s;
    return true;
}

/* Prerelease/build identifiers: [0-9A-Za-z-] separated by '.', none empty. */
static bool idents(const char **p, char *out, size_t n)
{
    const char *s = *p;
    size_t len = 0;
    for (;;) {
        size_t k = 0;
        while (isalnum((unsigned char)s[k]) || s[k] == '-')
            k++;
        if (k == 0)
            return false;
        s += k;
        len += k;
        if (*s != '.')
            break;
        s++;
        len++;
    }
    if (out) {
        if (len >= n)
            return false;
        memcpy(out, *p, len);
        out[len] = '\0';
    }
    *p = s;
    return true;
}

/* A partial (major[.minor[.patch[-pre][+build]]], x, X or * wildcards) at *p. */
static bool partial(const char **p, struct sv_partial *out)
{
    const char *s = *p;
    memset(out, 0, sizeof(*out));
    while (*s == 'v' || *s == '=' || *s == 'V')
        s++;
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != '.')
                break;
            s++;
        }
        if (*s == 'x' || *s == 'X' || *s == '*') {
            s++;
            /* later parts may be wildcards too: 1.x.x */
            for (int j = i + 1; j < 3 && *s == '.' && s[1] && strchr("xX*", s[1]); j++)
                s += 2;
            *p = s;
            return true;
        }
        if (!num(&s, &out->v.v[i]))
            return false;
        out->given = i + 1;
    }
    if (out->given == 3 && *s == '-') {
        s++;
        if (!idents(&s, out->v.pre, sizeof(out->v.pre)))
            return false;
    }
    if (out->given == 3 && *s == '+') {
        s++;
        if (!idents(&s, NULL, 0))
            return false;
    }
    *p = s;
    return true;
}

static bool full(const char *s, struct sv *out)
{
    struct sv_partial pv;
    while (*s == ' ')
        s++;
    if (!partial(&s, &pv) || pv.given != 3)
        return false;
    while (*s == ' ')
        s++;
    if (*s)
        return false;
    *out = pv.v;
    return true;
}

static int ident_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    bool an = al > 0, bn = bl > 0;
    for (size_t i = 0; i < al; i++)
        an = an && isdigit((unsigned char)a[i]);
    for (size_t i = 0; i < bl; i++)
        bn = bn && isdigit((unsigned char)b[i]);
    if (an && bn) {
        if (al != bl)
            return al < bl ? -1 : 1;
        int c = memcmp(a, b, al);
        return c < 0 ? -1 : c > 0;
    }
    if (an != bn)
        return an ? -1 : 1; /* numeric identifiers sort first */
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c < 0 ? -1 : 1;
    return al == bl ? 0 : al < bl ? -1 : 1;
}

static int pre_cmp(const char *a, const char *b)
{
    if (!*a || !*b)
        return !*a && !*b ? 0 : !*a ? 1 : -1; /* a release is above its prereleases */
    while (*a && *b) {
        size_t al = strcspn(a, "."), bl = strcspn(b, ".");
        int c = ident_cmp(a, al, b, bl);
        if (c)
            return c;
        a += al + (a[al] == '.');
        b += bl + (b[bl] == '.');
    }
    return !*a && !*b ? 0 : !*a ? -1 : 1;
}

static int sv_cmp(const struct sv *a, const struct sv *b)
{
    for (int i = 0; i < 3; i++)
        if (a->v[i] != b->v[i])
            return a->v[i] < b->v[i] ? -1 : 1;
    return pre_cmp(a->pre, b->pre);
}

int semver_compare(const char *a, const char *b, int *err)
{
    struct sv x, y;
    if (strlen(a) > POLICY_VERSION_MAX || strlen(b) > POLICY_VERSION_MAX || !full(a, &x) ||
        !full(b, &y)) {
        if (err)
            *err = -EINVAL;
        return 0;
    }
    if (err)
        *err = 0;
    return sv_cmp(&x, &y);
}

/* The version just above the partial's given parts: 1 -> 2.0.0-0, 1.2 -> 1.3.0-0. */
static struct sv bump(const struct sv_partial *pv, int at)
{
    struct sv u = {{0, 0, 0}, "0"};
    for (int i = 0; i <= at; i++)
        u.v[i] = pv->v.v[i];
    u.v[at]++;
    return u;
}

struct sv_set {
    struct sv_cmp c[SV_CMP_MAX];
    int n;
};

static bool add(struct sv_set *set, enum sv_op op, struct sv v)
{
    if (set->n >= SV_CMP_MAX)
        return false;
    set->c[set->n].op = op;
    set->c[set->n].v = v;
    set->n++;
    return true;
}

/* An x-range or "=partial": the versions the given parts allow. */
static bool add_xrange(struct sv_set *set, const struct sv_partial *pv)
{
    struct sv lo = pv->v;
    if (pv->given == 3)
        return add(set, OP_EQ, lo);
    if (pv->given == 0)
        return add(set, OP_GE, (struct sv){{0, 0, 0}, ""});
    return add(set, OP_GE, lo) && add(set, OP_LT, bump(pv, pv->given - 1));
}

static bool add_tilde(struct sv_set *set, const struct sv_partial *pv)
{
    if (pv->given == 0)
        return add_xrange(set, pv);
    return add(set, OP_GE, pv->v) && add(set, OP_LT, bump(pv, pv->given >= 2 ? 1 : 0));
}

static bool add_caret(struct sv_set *set, const struct sv_partial *pv)
{
    if (pv->given == 0)
        return add_xrange(set, pv);
    int at = 0; /* the first non-zero part given is the one that may not change */
    while (at < pv->given - 1 && pv->v.v[at] == 0)
        at++;
    if (pv->v.v[at] == 0 && at == pv->given - 1 && pv->given < 3)
        at = pv->given - 1; /* ^0 and ^0.0: the last part given */
    return add(set, OP_GE, pv->v) && add(set, OP_LT, bump(pv, at));
}

static bool add_primitive(struct sv_set *set, enum sv_op op, const struct sv_partial *pv)
{
    if (pv->given == 3)
        return add(set, op, pv->v);
    if (pv->given == 0) /* >* and <*: nothing; >=* and <=*: anything */
        return op == OP_GE || op == OP_LE || op == OP_EQ ? add_xrange(set, pv)
                                                         : add(set, OP_NONE, pv->v);
    struct sv b = bump(pv, pv->given - 1), lo = pv->v;
    switch (op) {
    case OP_GT: /* >1.2: >=1.3.0 */
        b.pre[0] = '\0';
        return add(set, OP_GE, b);
    case OP_GE: /* >=1.2: >=1.2.0 */
        return add(set, OP_GE, lo);
    case OP_LT: /* <1.2: <1.2.0-0 */
        snprintf(lo.pre, sizeof(lo.pre), "0");
        return add(set, OP_LT, lo);
    case OP_LE: /* <=1.2: <1.3.0-0 */
        return add(set, OP_LT, b);
    default:
        return add_xrange(set, pv);
    }
}

static void skip_sp(const char **p)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
}

/* The operator at *p, or OP_NONE with *kind '~' or '^' (or 0: none). */
static enum sv_op op_at(const char **p, char *kind)
{
    const char *s = *p;
    *kind = 0;
    enum sv_op op = OP_NONE;
    if (s[0] == '<' && s[1] == '=')
        op = OP_LE, s += 2;
    else if (s[0] == '>' && s[1] == '=')
        op = OP_GE, s += 2;
    else if (s[0] == '<')
        op = OP_LT, s++;
    else if (s[0] == '>')
        op = OP_GT, s++;
    else if (s[0] == '=')
        op = OP_EQ, s++;
    else if (s[0] == '~')
        *kind = '~', s += 1 + (s[1] == '>');
    else if (s[0] == '^')
        *kind = '^', s++;
    *p = s;
    return op;
}

/* One comparator set (between "||"s) of [s, end) into set. */
static bool parse_set(const char *s, const char *end, struct sv_set *set)
{
    char buf[POLICY_RANGE_MAX + 1];
    size_t n = (size_t)(end - s);
    if (n > POLICY_RANGE_MAX)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *p = buf;
    set->n = 0;
    skip_sp(&p);
    if (!*p)
        return add_xrange(set, &(struct sv_partial){0});
    while (*p) {
        char kind;
        enum sv_op op = op_at(&p, &kind);
        skip_sp(&p);
        struct sv_partial a;
        if (!partial(&p, &a) || (*p && *p != ' ' && *p != '\t'))
            return false;
        skip_sp(&p);
        bool ok;
        if (op == OP_NONE && !kind && p[0] == '-' && (p[1] == ' ' || p[1] == '\t')) {
            p++;
            skip_sp(&p);
            struct sv_partial b;
            if (!partial(&p, &b) || (*p && *p != ' ' && *p != '\t'))
                return false;
            skip_sp(&p);
            ok = add(set, OP_GE, a.v);
            if (ok && b.given == 3)
                ok = add(set, OP_LE, b.v);
            else if (ok && b.given > 0)
                ok = add(set, OP_LT, bump(&b, b.given - 1));
        } else if (kind == '~') {
            ok = add_tilde(set, &a);
        } else if (kind == '^') {
            ok = add_caret(set, &a);
        } else if (op == OP_NONE) {
            ok = add_xrange(set, &a);
        } else {
            ok = add_primitive(set, op, &a);
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool cmp_test(const struct sv_cmp *c, const struct sv *v)
{
    int r = sv_cmp(v, &c->v);
    switch (c->op) {
    case OP_EQ:
        return r == 0;
    case OP_LT:
        return r < 0;
    case OP_LE:
        return r <= 0;
    case OP_GT:
        return r > 0;
    case OP_GE:
        return r >= 0;
    case OP_NONE:
        return false;
    }
    return false;
}

static bool set_test(const struct sv_set *set, const struct sv *v)
{
    for (int i = 0; i < set->n; i++)
        if (!cmp_test(&set->c[i], v))
            return false;
    if (!v->pre[0])
        return true;
    /* A prerelease only where a comparator of its major.minor.patch names one. */
    for (int i = 0; i < set->n; i++) {
        const struct sv *c = &set->c[i].v;
        if (c->pre[0] && c->v[0] == v->v[0] && c->v[1] == v->v[1] && c->v[2] == v->v[2])
            return true;
    }
    return false;
}

/* Walks the "||" alternatives; version NULL only checks the syntax. 1, 0 or -EINVAL. */
static int range_walk(const char *range, const struct sv *version)
{
    if (strlen(range) > POLICY_RANGE_MAX)
        return -EINVAL;
    int hit = 0;
    const char *s = range;
    for (;;) {
        const char *bar = strstr(s, "||");
        const char *end = bar ? bar : s + strlen(s);
        struct sv_set set;
        if (!parse_set(s, end, &set))
            return -EINVAL;
        if (version && !hit && set_test(&set, version))
            hit = 1;
        if (!bar)
            break;
        s = bar + 2;
    }
    return hit;
}

int semver_satisfies(const char *range, const char *version)
{
    struct sv v;
    if (strlen(version) > POLICY_VERSION_MAX || !full(version, &v))
        return -EINVAL;
    return range_walk(range, &v);
}

bool semver_range_valid(const char *range)
{
    return range_walk(range, NULL) >= 0;
}
