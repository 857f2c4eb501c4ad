/*
 * config_url: the one parser and normaliser of the URLs a proxy is given
 * (contracts in include/upstreamfs/config.h and config_int.h).
 *
 * Every URL field goes through config__url_open (libcurl's URL API plus the
 * rules all URL fields share: bounded, printable, http or https, a host, no
 * credentials); the normalisers then refuse a query or fragment, lower-case
 * the host and, for a directory URL, end the path with '/'. No function here
 * prints a URL that may carry a password.
 */
#include "upstreamfs/config.h"
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int config__url_get(CURLU *h, CURLUPart part, unsigned int flags, char **out)
{
    char *s = NULL;
    *out = NULL;
    CURLUcode uc = curl_url_get(h, part, &s, flags);
    if (uc == CURLUE_OUT_OF_MEMORY)
        return -ENOMEM;
    if (uc != CURLUE_OK)
        return uc == CURLUE_NO_SCHEME || uc == CURLUE_NO_USER || uc == CURLUE_NO_PASSWORD ||
                       uc == CURLUE_NO_OPTIONS || uc == CURLUE_NO_HOST || uc == CURLUE_NO_PORT ||
                       uc == CURLUE_NO_QUERY || uc == CURLUE_NO_FRAGMENT
                   ? 0
                   : -EINVAL;
    /* Hand out memory the caller frees with free(), not curl_free(). */
    *out = strdup(s);
    curl_free(s);
    return *out ? 0 : -ENOMEM;
}

int config__url_open(const char *field, const char *s, unsigned int flags, CURLU **out,
                     struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    char *part = NULL;
    CURLU *h = NULL;
    int rc = -EINVAL;

    *out = NULL;
    if (!s || !*s) {
        config_error_set(err, field, "must not be empty");
        return -EINVAL;
    }
    if (strlen(s) > CONFIG_URL_MAX) {
        config_error_set(err, field, "must be at most %d characters", CONFIG_URL_MAX);
        return -EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            config_error_set(err, field,
                             "must not contain spaces, control or non-ASCII characters "
                             "(percent-encode them) (got %s)",
                             config_quote(q, sizeof(q), s));
            return -EINVAL;
        }
    }
    h = curl_url();
    if (!h)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME | flags);
    if (uc == CURLUE_OUT_OF_MEMORY) {
        rc = -ENOMEM;
        goto out;
    }
    if (uc != CURLUE_OK) {
        if (!strstr(s, "://") && !(flags & CURLU_DEFAULT_SCHEME))
            config_error_set(err, field, "must be an http or https URL with its scheme (got %s)",
                             config_quote(q, sizeof(q), s));
        else
            config_error_set(err, field, "is not a valid URL: %s (got %s)", curl_url_strerror(uc),
                             config_quote(q, sizeof(q), s));
        goto out;
    }
    if ((rc = config__url_get(h, CURLUPART_SCHEME, 0, &part)) < 0)
        goto out;
    if (!part || (strcmp(part, "http") != 0 && strcmp(part, "https") != 0)) {
        config_error_set(err, field, "scheme must be http or https (got %s)",
                         config_quote(q, sizeof(q), s));
        rc = -EINVAL;
        goto out;
    }
    free(part);
    part = NULL;
    static const CURLUPart cred_parts[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
    for (size_t i = 0; i < sizeof(cred_parts) / sizeof(cred_parts[0]); i++) {
        if ((rc = config__url_get(h, cred_parts[i], 0, &part)) < 0)
            goto out;
        if (part) {
            /* Quoting the URL here would print the password it carries. */
            config_error_set(err, field,
                             "must not contain a user name or password (use --access-key and "
                             "--secret-key-file)");
            rc = -EINVAL;
            goto out;
        }
    }
    if ((rc = config__url_get(h, CURLUPART_HOST, 0, &part)) < 0)
        goto out;
    if (!part || !*part) {
        config_error_set(err, field, "has no host (got %s)", config_quote(q, sizeof(q), s));
        rc = -EINVAL;
        goto out;
    }
    *out = h;
    h = NULL;
    rc = 0;
out:
    free(part);
    curl_url_cleanup(h);
    return rc;
}

/*
 * Shared tail of the two normalisers: refuses query and fragment, lower-cases
 * the host, optionally makes the path a directory, and prints the URL back.
 */
static int url_normalise(const char *field, const char *url, bool dir, char **out,
                         struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    CURLU *h = NULL;
    char *part = NULL, *path = NULL, *res = NULL;
    int rc = config__url_open(field, url, 0, &h, err);
    if (rc < 0)
        return rc;
    if ((rc = config__url_get(h, CURLUPART_PORT, 0, &part)) < 0)
        goto out;
    if (part && strtol(part, NULL, 10) == 0) {
        config_error_set(err, field, "port must be from 1 to 65535 (got %s)",
                         config_quote(q, sizeof(q), url));
        rc = -EINVAL;
        goto out;
    }
    free(part);
    part = NULL;
    static const CURLUPart extra[] = {CURLUPART_QUERY, CURLUPART_FRAGMENT};
    for (size_t i = 0; i < 2; i++) {
        if ((rc = config__url_get(h, extra[i], 0, &part)) < 0)
            goto out;
        if (part) {
            config_error_set(err, field, "must not have a query or fragment (got %s)",
                             config_quote(q, sizeof(q), url));
            rc = -EINVAL;
            goto out;
        }
    }
    if ((rc = config__url_get(h, CURLUPART_HOST, 0, &part)) < 0)
        goto out;
    /* The URL API decodes a percent-encoded host ("h%88"): a host must be printable ASCII. */
    for (const unsigned char *c = (const unsigned char *)(part ? part : ""); *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f) {
            config_error_set(err, field, "host must be printable ASCII (got %s)",
                             config_quote(q, sizeof(q), url));
            rc = -EINVAL;
            goto out;
        }
    }
    config__lower(part);
    if (curl_url_set(h, CURLUPART_HOST, part, 0) != CURLUE_OK) {
        rc = -ENOMEM;
        goto out;
    }
    if (dir) {
        if ((rc = config__url_get(h, CURLUPART_PATH, 0, &path)) < 0)
            goto out;
        size_t len = path ? strlen(path) : 0;
        if (len == 0 || path[len - 1] != '/') {
            char *np = malloc(len + 2);
            if (!np) {
                rc = -ENOMEM;
                goto out;
            }
            memcpy(np, path ? path : "", len);
            np[len] = '/';
            np[len + 1] = '\0';
            free(path);
            path = np;
            if (curl_url_set(h, CURLUPART_PATH, path, 0) != CURLUE_OK) {
                rc = -ENOMEM;
                goto out;
            }
        }
    }
    if ((rc = config__url_get(h, CURLUPART_URL, CURLU_NO_DEFAULT_PORT, &res)) < 0)
        goto out;
    if (!res || strlen(res) > CONFIG_URL_MAX) {
        config_error_set(err, field, "must be at most %d characters", CONFIG_URL_MAX);
        rc = -EINVAL;
        goto out;
    }
    *out = res;
    res = NULL;
    rc = 0;
out:
    free(part);
    free(path);
    free(res);
    curl_url_cleanup(h);
    return rc;
}

int config_url_normalise_dir(const char *field, const char *url, char **out,
                             struct config_error *err)
{
    return url_normalise(field, url, true, out, err);
}

int config_url_normalise_endpoint(const char *field, const char *url, char **out,
                                  struct config_error *err)
{
    return url_normalise(field, url, false, out, err);
}

