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

/* Non-empty, bounded, and only printable ASCII without spaces; -EINVAL with err. */
static int check_url_text(const char *field, const char *s, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
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
    return 0;
}

/* Scheme http or https, no user name, password or options, a host; -EINVAL with err. */
static int check_url_parts(CURLU *h, const char *field, const char *s, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    static const CURLUPart cred_parts[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS};
    char *part = NULL;
    int rc = config__url_get(h, CURLUPART_SCHEME, 0, &part);
    if (rc == 0 && (!part || (strcmp(part, "http") != 0 && strcmp(part, "https") != 0))) {
        config_error_set(err, field, "scheme must be http or https (got %s)",
                         config_quote(q, sizeof(q), s));
        rc = -EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < sizeof(cred_parts) / sizeof(cred_parts[0]); i++) {
        free(part);
        part = NULL;
        if ((rc = config__url_get(h, cred_parts[i], 0, &part)) == 0 && part) {
            /* Quoting the URL here would print the password it carries. */
            config_error_set(err, field,
                             "must not contain a user name or password (use --access-key and "
                             "--secret-key-file)");
            rc = -EINVAL;
        }
    }
    if (rc == 0) {
        free(part);
        part = NULL;
        if ((rc = config__url_get(h, CURLUPART_HOST, 0, &part)) == 0 && (!part || !*part)) {
            config_error_set(err, field, "has no host (got %s)", config_quote(q, sizeof(q), s));
            rc = -EINVAL;
        }
    }
    free(part);
    return rc;
}

int config__url_open(const char *field, const char *s, unsigned int flags, CURLU **out,
                     struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    int rc;

    *out = NULL;
    if ((rc = check_url_text(field, s, err)) < 0)
        return rc;
    CURLU *h = curl_url();
    if (!h)
        return -ENOMEM;
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME | flags);
    if (uc == CURLUE_OUT_OF_MEMORY) {
        rc = -ENOMEM;
    } else if (uc != CURLUE_OK) {
        if (!strstr(s, "://") && !(flags & CURLU_DEFAULT_SCHEME))
            config_error_set(err, field, "must be an http or https URL with its scheme (got %s)",
                             config_quote(q, sizeof(q), s));
        else
            config_error_set(err, field, "is not a valid URL: %s (got %s)", curl_url_strerror(uc),
                             config_quote(q, sizeof(q), s));
        rc = -EINVAL;
    } else {
        rc = check_url_parts(h, field, s, err);
    }
    if (rc < 0) {
        curl_url_cleanup(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* A port, if given, from 1 to 65535; no query and no fragment. -EINVAL with err. */
static int check_port_query(CURLU *h, const char *field, const char *url,
                            struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    static const CURLUPart extra[] = {CURLUPART_QUERY, CURLUPART_FRAGMENT};
    char *part = NULL;
    int rc = config__url_get(h, CURLUPART_PORT, 0, &part);
    if (rc == 0 && part && strtol(part, NULL, 10) == 0) {
        config_error_set(err, field, "port must be from 1 to 65535 (got %s)",
                         config_quote(q, sizeof(q), url));
        rc = -EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        free(part);
        part = NULL;
        if ((rc = config__url_get(h, extra[i], 0, &part)) == 0 && part) {
            config_error_set(err, field, "must not have a query or fragment (got %s)",
                             config_quote(q, sizeof(q), url));
            rc = -EINVAL;
        }
    }
    free(part);
    return rc;
}

/* Lower-cases the host; it must be printable ASCII (the URL API decodes a percent-encoded host
 * such as "h%88"). -EINVAL with err, or -ENOMEM. */
static int lower_host(CURLU *h, const char *field, const char *url, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX];
    char *part = NULL;
    int rc = config__url_get(h, CURLUPART_HOST, 0, &part);
    for (const unsigned char *c = (const unsigned char *)(part ? part : ""); rc == 0 && *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f) {
            config_error_set(err, field, "host must be printable ASCII (got %s)",
                             config_quote(q, sizeof(q), url));
            rc = -EINVAL;
        }
    }
    if (rc == 0) {
        config__lower(part);
        if (curl_url_set(h, CURLUPART_HOST, part, 0) != CURLUE_OK)
            rc = -ENOMEM;
    }
    free(part);
    return rc;
}

/* Ends the URL's path with '/'. */
static int path_as_dir(CURLU *h)
{
    char *path = NULL;
    int rc = config__url_get(h, CURLUPART_PATH, 0, &path);
    size_t len = path ? strlen(path) : 0;
    if (rc == 0 && (len == 0 || path[len - 1] != '/')) {
        char *np = malloc(len + 2);
        if (!np) {
            rc = -ENOMEM;
        } else {
            memcpy(np, path ? path : "", len);
            np[len] = '/';
            np[len + 1] = '\0';
            if (curl_url_set(h, CURLUPART_PATH, np, 0) != CURLUE_OK)
                rc = -ENOMEM;
            free(np);
        }
    }
    free(path);
    return rc;
}

/*
 * Shared tail of the two normalisers: refuses query and fragment, lower-cases
 * the host, optionally makes the path a directory, and prints the URL back.
 */
static int url_normalise(const char *field, const char *url, bool dir, char **out,
                         struct config_error *err)
{
    CURLU *h = NULL;
    char *res = NULL;
    int rc = config__url_open(field, url, 0, &h, err);
    if (rc < 0)
        return rc;
    if ((rc = check_port_query(h, field, url, err)) == 0 &&
        (rc = lower_host(h, field, url, err)) == 0 && (!dir || (rc = path_as_dir(h)) == 0) &&
        (rc = config__url_get(h, CURLUPART_URL, CURLU_NO_DEFAULT_PORT, &res)) == 0) {
        if (!res || strlen(res) > CONFIG_URL_MAX) {
            config_error_set(err, field, "must be at most %d characters", CONFIG_URL_MAX);
            rc = -EINVAL;
        } else {
            *out = res;
            res = NULL;
        }
    }
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

