/*
 * defaults: the table of product hosts (see defaults.h). Keeping every such
 * literal here is what lets a reviewer check in one place which hosts the
 * program may contact on its own initiative.
 */
#include "upstreamfs/defaults.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct upstream_defaults upstream_defaults = {
    .dockerhub_registry = "https://registry-1.docker.io/",
    .dockerhub_token = "https://auth.docker.io/token",
    .ecr_api = "https://api.ecr.{region}.amazonaws.com",
    .ecr_public_api = "https://api.ecr-public.us-east-1.amazonaws.com",
    .ecr_public_host = "public.ecr.aws",
    .ecr_gallery_host = "gallery.ecr.aws",
    .ecr_private_host = "{account}.dkr.ecr.{region}.amazonaws.com",
    .ecr_console_host = "console.aws.amazon.com",
    .imds_endpoint = "http://169.254.169.254",
};

/* Length of the placeholder that starts at p ("{region}" or "{account}"), or 0. */
static size_t placeholder_len(const char *p)
{
    if (strncmp(p, "{region}", 8) == 0)
        return 8;
    if (strncmp(p, "{account}", 9) == 0)
        return 9;
    return 0;
}

int defaults_expand(const char *pattern, const char *region, const char *account, char *buf,
                    size_t n)
{
    size_t len = 0;
    const char *p = pattern;
    while (*p) {
        size_t skip = placeholder_len(p), vlen = 1;
        const char *val = p;
        if (skip) {
            val = p[1] == 'r' ? region : account;
            if (!val)
                return -EINVAL;
            vlen = strlen(val);
        } else {
            skip = 1;
        }
        if (len + vlen >= n)
            return -ENAMETOOLONG;
        memcpy(buf + len, val, vlen);
        len += vlen;
        p += skip;
    }
    if (len >= n)
        return -ENAMETOOLONG;
    buf[len] = '\0';
    return 0;
}

int defaults_match(const char *pattern, const char *s, char **region, char **account)
{
    char *got_region = NULL, *got_account = NULL;
    const char *p = pattern;
    int rc = -ENOENT;

    while (*p) {
        size_t ph = placeholder_len(p);
        if (!ph) {
            if (*s != *p)
                goto out;
            p++, s++;
            continue;
        }
        char **dst = p[1] == 'r' ? &got_region : &got_account;
        p += ph;
        /* The literal that ends this capture runs to the next placeholder or the end. */
        size_t lit = 0;
        while (p[lit] && !placeholder_len(p + lit))
            lit++;
        const char *end;
        if (!p[lit]) {
            size_t slen = strlen(s);
            if (slen <= lit || strcmp(s + slen - lit, p) != 0)
                goto out;
            end = s + slen - lit;
        } else {
            end = s;
            while (*end && strncmp(end, p, lit) != 0)
                end++;
            if (!*end)
                goto out;
        }
        if (end == s || *dst)
            goto out;
        if (!(*dst = strndup(s, (size_t)(end - s)))) {
            rc = -ENOMEM;
            goto out;
        }
        s = end;
    }
    if (*s)
        goto out;
    if (region) {
        *region = got_region;
        got_region = NULL;
    }
    if (account) {
        *account = got_account;
        got_account = NULL;
    }
    rc = 0;
out:
    free(got_region);
    free(got_account);
    return rc;
}
