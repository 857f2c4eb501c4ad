/*
 * filter: the versions a proxy's policy hides, taken out of the documents clients read
 * (include/upstreamfs/policy.h): an npm packument's "versions", "time" and "dist-tags", a
 * PyPI project page's files. The publish times are the documents' own: npm's "time" object
 * (in the full packument only: src/drivers/npm.c asks for it whenever a cooldown is set) and
 * PEP 700's "upload-time" of the JSON simple API.
 */
#include "upstreamfs/policy.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/pypi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t policy_parse_time(const char *s)
{
    struct tm tm;
    int y, mo, d, h, mi, sec;
    int used = 0;
    if (!s || strlen(s) > 64 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + used;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L;
        if (*p == '-')
            off = -off;
        p += 6;
    } else if (*p) {
        return -1;
    }
    if (*p)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t - off;
}

static void note_hidden(struct policy_filtered *f, enum policy_verdict v, int64_t visible_at)
{
    f->hidden++;
    if (v == POLICY_YOUNG && visible_at < f->next_visible)
        f->next_visible = visible_at;
}

/* The newest visible version not above tagged (a release when tagged is one), or NULL. */
static const char *tag_target(json_t *versions, const char *tagged)
{
    const char *best = NULL, *v;
    json_t *x;
    bool release = strchr(tagged, '-') == NULL;
    json_object_foreach(versions, v, x)
    {
        int err = 0;
        if ((release && strchr(v, '-')) || semver_compare(v, tagged, &err) > 0 || err)
            continue;
        if (!best || semver_compare(v, best, &err) > 0)
            best = v;
    }
    return best;
}

int policy_npm_filter(const struct proxy *p, const char *name, json_t *doc, int64_t now,
                      struct policy_filtered *out)
{
    out->hidden = 0;
    out->next_visible = INT64_MAX;
    json_t *versions = json_object_get(doc, "versions");
    json_t *times = json_object_get(doc, "time");
    const char *ver;
    json_t *v, *tmp;
    if (!json_is_object(versions))
        return 0;
    json_object_foreach_safe(versions, tmp, ver, v)
    {
        int64_t at = INT64_MAX;
        int64_t published = policy_parse_time(json_string_value(json_object_get(times, ver)));
        enum policy_verdict verdict = policy_version_verdict(p, name, ver, published, now, &at);
        if (verdict == POLICY_PASS)
            continue;
        note_hidden(out, verdict, at);
        if (json_is_object(times)) /* first: ver is the key versions owns, freed with it */
            json_object_del(times, ver);
        json_object_del(versions, ver);
    }
    json_t *tags = json_object_get(doc, "dist-tags");
    const char *tag;
    json_t *t;
    json_object_foreach_safe(tags, tmp, tag, t)
    {
        const char *tv = json_string_value(t);
        if (tv && json_object_get(versions, tv))
            continue;
        const char *to = tv ? tag_target(versions, tv) : NULL;
        if (to) {
            if (json_object_set_new(tags, tag, json_string(to)) < 0)
                return -ENOMEM;
        } else {
            json_object_del(tags, tag);
        }
    }
    return 0;
}

int policy_pypi_filter(const struct proxy *p, const char *name, struct pypi_index *index,
                       int64_t now, struct pypi_index **out, struct policy_filtered *f)
{
    f->hidden = 0;
    f->next_visible = INT64_MAX;
    size_t n = pypi_index_count(index);
    bool *keep = malloc(n ? n : 1);
    if (!keep)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char version[POLICY_VERSION_MAX + 1];
        bool has =
            policy_pypi_file_version(pypi_index_filename(index, i), version, sizeof(version));
        int64_t at = INT64_MAX;
        int64_t published = policy_parse_time(pypi_index_upload_time(index, i));
        enum policy_verdict v =
            policy_version_verdict(p, name, has ? version : NULL, published, now, &at);
        keep[i] = v == POLICY_PASS;
        if (!keep[i])
            note_hidden(f, v, at);
    }
    int rc = 0;
    if (f->hidden == 0)
        *out = pypi_index_ref(index);
    else
        rc = pypi_index_subset(index, keep, out);
    free(keep);
    return rc;
}

void policy_fingerprint(const struct proxy *p, int64_t next_visible, char *buf, size_t n)
{
    if (!n)
        return;
    buf[0] = '\0';
    if (!policy_active(p) || n < 17)
        return;
    /* the settings, then the time the visible set next changes by waiting */
    char text[16384];
    size_t w = (size_t)snprintf(text, sizeof(text), "min_age=%ld unknown=%d next=%lld", p->min_age,
                                (int)p->min_age_unknown, (long long)next_visible);
    char *const *lists[] = {p->min_age_exempt, p->allow, p->deny};
    for (int l = 0; l < 3; l++)
        for (char *const *r = lists[l]; r && *r && w < sizeof(text); r++)
            w += (size_t)snprintf(text + w, sizeof(text) - w, "\n%d:%s", l, *r);
    char hex[65];
    hash_sha256_hex(text, strlen(text), hex);
    snprintf(buf, n, "%.16s", hex);
}
