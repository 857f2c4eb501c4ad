/*
 * pep440: Python versions and specifier sets (PEP 440), pure (include/upstreamfs/policy.h).
 * A version is read into epoch, release, pre-release, post-release, dev-release and local
 * label, in the normalisations PEP 440 allows (case, 'v', separators, "alpha"/"c"/"rev"...);
 * comparison follows PEP 440's order. Specifiers: ==, !=, <=, >=, <, >, ~=, ===, comma-AND,
 * "==1.2.*" and "!=1.2.*" prefix matches. Used by the PyPI rules of src/policy/rules.c.
 */
#include "upstreamfs/policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PV_PARTS 16
#define PV_NONE  INT64_MIN
#define PV_LOCAL 128

struct pv {
    int64_t epoch;
    int64_t rel[PV_PARTS];
    int nrel;
    int pre_kind;           /* 0 a, 1 b, 2 rc; -1 none */
    int64_t pre, post, dev; /* PV_NONE: none */
    char local[PV_LOCAL];
};

static bool num(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t n = 0;
    size_t d = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    while (isdigit((unsigned char)*s)) {
        if (++d > 15)
            return false;
        n = n * 10 + (*s++ - '0');
    }
    *out = n;
    *p = s;
    return true;
}

static bool sep(const char **p)
{
    if (**p == '.' || **p == '-' || **p == '_') {
        (*p)++;
        return true;
    }
    return false;
}

/* The word at *p (case-insensitive) among words; its index, advancing *p; -1 if none. */
static int word(const char **p, const char *const *words, int n)
{
    int best = -1;
    size_t bl = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(words[i]);
        if (l > bl && strncasecmp(*p, words[i], l) == 0)
            best = i, bl = l;
    }
    if (best >= 0)
        *p += bl;
    return best;
}

/* An optional [sep] number after a pre/post/dev word (an implicit 0). */
static int64_t opt_num(const char **p)
{
    const char *s = *p;
    int64_t n = 0;
    sep(&s);
    if (num(&s, &n)) {
        *p = s;
        return n;
    }
    return 0;
}

static bool parse(const char *in, struct pv *v)
{
    static const char *const pre_words[] = {"alpha", "a", "beta", "b", "preview", "pre", "c", "rc"};
    static const int pre_kinds[] = {0, 0, 1, 1, 2, 2, 2, 2};
    static const char *const post_words[] = {"post", "rev", "r"};
    const char *s = in;
    memset(v, 0, sizeof(*v));
    v->pre_kind = -1;
    v->pre = v->post = v->dev = PV_NONE;
    if (strlen(in) > POLICY_VERSION_MAX)
        return false;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == 'v' || *s == 'V')
        s++;
    int64_t n;
    if (!num(&s, &n))
        return false;
    if (*s == '!') {
        v->epoch = n;
        s++;
        if (!num(&s, &n))
            return false;
    }
    v->rel[v->nrel++] = n;
    while (*s == '.' && isdigit((unsigned char)s[1])) {
        s++;
        if (v->nrel >= PV_PARTS || !num(&s, &n))
            return false;
        v->rel[v->nrel++] = n;
    }
    const char *t = s;
    sep(&t);
    int w = word(&t, pre_words, 8);
    if (w >= 0) {
        v->pre_kind = pre_kinds[w];
        v->pre = opt_num(&t);
        s = t;
    }
    t = s;
    if (*t == '-' && isdigit((unsigned char)t[1])) {
        t++;
        num(&t, &v->post);
        s = t;
    } else {
        sep(&t);
        if (word(&t, post_words, 3) >= 0) {
            v->post = opt_num(&t);
            s = t;
        }
    }
    t = s;
    sep(&t);
    if (strncasecmp(t, "dev", 3) == 0) {
        t += 3;
        v->dev = opt_num(&t);
        s = t;
    }
    if (*s == '+') {
        s++;
        size_t l = 0;
        while (isalnum((unsigned char)s[l]) || s[l] == '.' || s[l] == '-' || s[l] == '_')
            l++;
        if (l == 0 || l >= PV_LOCAL)
            return false;
        for (size_t i = 0; i < l; i++)
            v->local[i] = (char)tolower((unsigned char)s[i]);
        s += l;
    }
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

static int cmp64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int rel_cmp(const struct pv *a, const struct pv *b, int parts)
{
    for (int i = 0; i < parts; i++) {
        int64_t x = i < a->nrel ? a->rel[i] : 0, y = i < b->nrel ? b->rel[i] : 0;
        if (x != y)
            return cmp64(x, y);
    }
    return 0;
}

/* PEP 440's order without the local label. */
static int pv_cmp_public(const struct pv *a, const struct pv *b)
{
    int c = cmp64(a->epoch, b->epoch);
    if (c)
        return c;
    if ((c = rel_cmp(a, b, a->nrel > b->nrel ? a->nrel : b->nrel)))
        return c;
    /* a dev release of a release with neither pre nor post sorts before its pre-releases */
    int64_t ak = a->pre_kind >= 0 ? a->pre_kind * 1000000000000000LL + a->pre
                 : a->post == PV_NONE && a->dev != PV_NONE ? PV_NONE
                                                           : INT64_MAX;
    int64_t bk = b->pre_kind >= 0 ? b->pre_kind * 1000000000000000LL + b->pre
                 : b->post == PV_NONE && b->dev != PV_NONE ? PV_NONE
                                                           : INT64_MAX;
    if ((c = cmp64(ak, bk)))
        return c;
    if ((c = cmp64(a->post, b->post)))
        return c;
    return cmp64(a->dev == PV_NONE ? INT64_MAX : a->dev, b->dev == PV_NONE ? INT64_MAX : b->dev);
}

static int pv_cmp(const struct pv *a, const struct pv *b)
{
    int c = pv_cmp_public(a, b);
    return c ? c : (strcmp(a->local, b->local) > 0) - (strcmp(a->local, b->local) < 0);
}

int pep440_compare(const char *a, const char *b, int *err)
{
    struct pv x, y;
    if (!parse(a, &x) || !parse(b, &y)) {
        if (err)
            *err = -EINVAL;
        return 0;
    }
    if (err)
        *err = 0;
    return pv_cmp(&x, &y);
}

bool pep440_version_valid(const char *v)
{
    struct pv x;
    return parse(v, &x);
}

/* A pre-release in PEP 440's sense: a, b, rc or a dev release. */
static bool is_pre(const struct pv *v)
{
    return v->pre_kind >= 0 || v->dev != PV_NONE;
}

/* "==1.2.*": the release prefix 1.2 (epoch too). */
static bool prefix_match(const char *prefix, const struct pv *v)
{
    struct pv p;
    if (!parse(prefix, &p) || p.pre_kind >= 0 || p.post != PV_NONE || p.dev != PV_NONE ||
        p.local[0])
        return false;
    return p.epoch == v->epoch && rel_cmp(&p, v, p.nrel) == 0;
}

/* One specifier "<op><version>" (spaces allowed around); 1, 0 or -EINVAL. v NULL: syntax. */
static int spec_one(const char *s, size_t n, const struct pv *v)
{
    static const char *const ops[] = {"===", "==", "!=", "<=", ">=", "~=", "<", ">"};
    char buf[POLICY_VERSION_MAX + 8];
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    int op = -1;
    for (int i = 0; i < 8 && op < 0; i++)
        if (n >= strlen(ops[i]) && strncmp(s, ops[i], strlen(ops[i])) == 0)
            op = i;
    if (op < 0)
        return -EINVAL;
    s += strlen(ops[op]);
    n -= strlen(ops[op]);
    while (n && isspace((unsigned char)*s))
        s++, n--;
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (op == 0) /* ===: compared as text by spec_walk (arbitrary) */
        return -EINVAL;
    bool star = n >= 2 && buf[n - 1] == '*' && buf[n - 2] == '.';
    if (star && op != 1 && op != 2)
        return -EINVAL;
    if (star)
        buf[n - 2] = '\0';
    struct pv w;
    if (!parse(buf, &w))
        return -EINVAL;
    if (op == 5 && w.nrel < 2)
        return -EINVAL; /* ~=1 is not a specifier */
    if (!v)
        return 1;
    if (star)
        return prefix_match(buf, v) == (op == 1);
    int c = w.local[0] ? pv_cmp(v, &w) : pv_cmp_public(v, &w);
    switch (op) {
    case 1:
        return c == 0;
    case 2:
        return c != 0;
    case 3:
        return c <= 0;
    case 4:
        return c >= 0;
    case 5: { /* ~=X.Y.Z: >=X.Y.Z, ==X.Y.* */
        struct pv pre = w;
        pre.nrel--;
        return c >= 0 && pre.epoch == v->epoch && rel_cmp(&pre, v, pre.nrel) == 0;
    }
    case 6: /* <V: not a pre-release of V itself unless V is one */
        return c < 0 &&
               !(!is_pre(&w) && is_pre(v) && rel_cmp(v, &w, PV_PARTS) == 0 && v->epoch == w.epoch);
    case 7: /* >V: not a post-release of V unless V is one */
        return c > 0 && !(w.post == PV_NONE && v->post != PV_NONE && v->pre_kind < 0 &&
                          rel_cmp(v, &w, PV_PARTS) == 0 && v->epoch == w.epoch);
    }
    return -EINVAL;
}

/* An "===" specifier (arbitrary equality, on the text): 1 when raw is its text, 0 when not
 * (or raw is NULL), -1 when the specifier is another operator, -EINVAL when it has no text. */
static int arbitrary(const char *s, size_t n, const char *raw)
{
    const char *t = s + strspn(s, " \t");
    if ((size_t)(t - s) + 3 > n || strncmp(t, "===", 3) != 0)
        return -1;
    t += 3;
    t += strspn(t, " \t");
    size_t l = n > (size_t)(t - s) ? n - (size_t)(t - s) : 0;
    while (l && isspace((unsigned char)t[l - 1]))
        l--;
    if (l == 0)
        return -EINVAL;
    return raw && strlen(raw) == l && strncasecmp(raw, t, l) == 0;
}

/*
 * The specifiers of spec, comma-AND: raw NULL only checks their syntax (1 or -EINVAL); else
 * whether the version raw (v: its parse, NULL when it is no version) satisfies all of them.
 */
static int spec_walk(const char *spec, const char *raw, const struct pv *v)
{
    if (strlen(spec) > POLICY_RANGE_MAX)
        return -EINVAL;
    int all = 1;
    for (const char *s = spec;;) {
        size_t n = strcspn(s, ",");
        int a = arbitrary(s, n, raw);
        if (a == -EINVAL)
            return a;
        if (a == 0 && raw)
            all = 0;
        if (a < 0) {
            int r = spec_one(s, n, v);
            if (r < 0)
                return r;
            if (raw && (!v || r == 0))
                all = 0; /* a text that is no version matches "===" only */
        }
        if (!s[n])
            break;
        s += n + 1;
    }
    return all;
}

int pep440_satisfies(const char *spec, const char *version)
{
    struct pv v;
    if (strlen(version) > POLICY_VERSION_MAX)
        return -EINVAL;
    return spec_walk(spec, version, parse(version, &v) ? &v : NULL);
}

bool pep440_spec_valid(const char *spec)
{
    return spec_walk(spec, NULL, NULL) >= 0;
}
