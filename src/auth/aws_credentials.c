/*
 * aws_credentials: the SDKs' default chain (see aws_credentials.h).
 *
 * Invariants kept here:
 *  - every credential string enters a struct aws_credentials through
 *    aws_credentials_set, which checks it, so no source can smuggle a CR or
 *    LF into a signed header;
 *  - every buffer that held a secret (the credentials file, the IMDS answer,
 *    the IMDS session token header) is wiped with secret_wipe (src/util/secret.c) before it
 *    is freed. jansson's own copies of the IMDS document are freed by jansson
 *    without wiping; they live for one parse;
 *  - IMDS is asked only with IMDSv2 (a session token), never v1, and never
 *    follows a redirect.
 * The chain reads the environment on each call, so rotated keys in the
 * environment or the file are picked up at the next token refresh.
 */
#include "upstreamfs/failure.h"
#include "upstreamfs/aws_credentials.h"
#include "upstreamfs/defaults.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/log.h"
#include "upstreamfs/sigv4.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define IMDS_TOKEN_MAX 4096
#define IMDS_DOC_MAX   (64 * 1024)
#define STR_(x)        #x
#define STR(x)         STR_(x)

const char *aws_credentials_source_name(enum aws_credentials_source s)
{
    switch (s) {
    case AWS_CREDS_STATIC:
        return "static";
    case AWS_CREDS_ENV:
        return "environment";
    case AWS_CREDS_FILE:
        return "shared credentials file";
    case AWS_CREDS_IMDS:
        return "instance metadata";
    default:
        return "none";
    }
}

void aws_credentials_clear(struct aws_credentials *c)
{
    free(c->access_key_id);
    secret_free(c->secret_access_key);
    secret_free(c->session_token);
    memset(c, 0, sizeof(*c));
}

/* Printable ASCII, no spaces, not empty, not oversized. */
static bool credential_ok(const char *s, size_t n)
{
    if (n == 0 || n > AWS_CREDENTIALS_VALUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* aws_credentials_set with lengths, for values that are slices of a buffer. */
static int set_n(struct aws_credentials *out, const char *id, size_t idn, const char *secret,
                 size_t sn, const char *token, size_t tn, int64_t expires_at,
                 enum aws_credentials_source source)
{
    aws_credentials_clear(out);
    if (!credential_ok(id, idn) || !credential_ok(secret, sn) ||
        (token && !credential_ok(token, tn)))
        return -EINVAL;
    out->access_key_id = strndup(id, idn);
    out->secret_access_key = strndup(secret, sn);
    out->session_token = token ? strndup(token, tn) : NULL;
    if (!out->access_key_id || !out->secret_access_key || (token && !out->session_token)) {
        aws_credentials_clear(out);
        return -ENOMEM;
    }
    out->expires_at = expires_at;
    out->source = source;
    return 0;
}

int aws_credentials_set(struct aws_credentials *out, const char *access_key_id,
                        const char *secret_access_key, const char *session_token,
                        int64_t expires_at, enum aws_credentials_source source)
{
    if (!access_key_id || !secret_access_key) {
        aws_credentials_clear(out);
        return -EINVAL;
    }
    return set_n(out, access_key_id, strlen(access_key_id), secret_access_key,
                 strlen(secret_access_key), session_token,
                 session_token ? strlen(session_token) : 0, expires_at, source);
}

/* An environment variable, with "" counted as unset (as the SDKs do). */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int aws_credentials_from_env(struct aws_credentials *out)
{
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");
    const char *token = env("AWS_SESSION_TOKEN");
    aws_credentials_clear(out);
    if (!id && !secret)
        return -ENOENT;
    if (!id || !secret)
        return -EINVAL;
    if (!token)
        token = env("AWS_SECURITY_TOKEN"); /* the older name botocore still reads */
    return aws_credentials_set(out, id, secret, token, 0, AWS_CREDS_ENV);
}

/* A slice of the credentials file. */
struct slice {
    const char *p;
    size_t n;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static struct slice trim(const char *p, size_t n)
{
    while (n && is_blank(*p))
        p++, n--;
    while (n && is_blank(p[n - 1]))
        n--;
    return (struct slice){p, n};
}

static bool slice_eq(struct slice s, const char *word, bool nocase)
{
    size_t wl = strlen(word);
    if (s.n != wl)
        return false;
    return nocase ? strncasecmp(s.p, word, wl) == 0 : memcmp(s.p, word, wl) == 0;
}

int aws_credentials_parse_ini(const char *text, size_t len, const char *profile,
                              struct aws_credentials *out)
{
    struct slice id = {0}, secret = {0}, token = {0}, legacy_token = {0};
    bool in_profile = false, seen = false, have_key = false;
    size_t key_indent = 0;
    aws_credentials_clear(out);
    if (!profile || !*profile)
        return -EINVAL;
    if (memchr(text, '\0', len))
        return -EINVAL;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        text += 3, len -= 3;

    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        size_t indent = 0;
        while (indent < llen && is_blank(line[indent]))
            indent++;
        struct slice t = trim(line, llen);
        if (t.n == 0 || t.p[0] == '#' || t.p[0] == ';')
            continue;
        /* A line indented past the key before it continues that key's value. */
        if (have_key && indent > key_indent)
            continue;
        have_key = false;
        if (t.p[0] == '[') {
            if (t.n < 3 || t.p[t.n - 1] != ']') {
                in_profile = false; /* malformed: what follows belongs nowhere */
                continue;
            }
            struct slice name = trim(t.p + 1, t.n - 2);
            in_profile = name.n > 0 && slice_eq(name, profile, false);
            seen = seen || in_profile;
            continue;
        }
        /* The text need not end in a NUL: look for the delimiter within the line only. */
        size_t d = 0;
        while (d < t.n && t.p[d] != '=' && t.p[d] != ':')
            d++;
        if (d >= t.n)
            continue; /* no delimiter: not a setting */
        struct slice key = trim(t.p, d), val = trim(t.p + d + 1, t.n - d - 1);
        if (key.n == 0)
            continue;
        have_key = true;
        key_indent = indent;
        if (!in_profile)
            continue;
        if (slice_eq(key, "aws_access_key_id", true))
            id = val;
        else if (slice_eq(key, "aws_secret_access_key", true))
            secret = val;
        else if (slice_eq(key, "aws_session_token", true))
            token = val;
        else if (slice_eq(key, "aws_security_token", true))
            legacy_token = val;
    }
    if (!seen || (id.n == 0 && secret.n == 0))
        return -ENOENT;
    if (id.n == 0 || secret.n == 0)
        return -EINVAL;
    if (token.n == 0)
        token = legacy_token;
    return set_n(out, id.p, id.n, secret.p, secret.n, token.n ? token.p : NULL, token.n, 0,
                 AWS_CREDS_FILE);
}

int aws_credentials_from_file(const char *path, const char *profile, struct aws_credentials *out)
{
    char *buf;
    size_t len = 0;
    aws_credentials_clear(out);
    int rc = file_read_bounded(path, AWS_CREDENTIALS_FILE_MAX, 0, &buf, &len, NULL);
    if (rc < 0)
        return rc;
    rc = aws_credentials_parse_ini(buf, len, profile, out);
    secret_wipe(buf, len);
    free(buf);
    return rc;
}

static char *home_dir(void)
{
    const char *h = env("HOME");
    if (h)
        return strdup(h);
    struct passwd pw, *res = NULL;
    char tmp[4096];
    if (getpwuid_r(getuid(), &pw, tmp, sizeof(tmp), &res) == 0 && res && res->pw_dir)
        return strdup(res->pw_dir);
    return NULL;
}

int aws_credentials_file_location(char **path, const char **profile)
{
    const char *f = env("AWS_SHARED_CREDENTIALS_FILE");
    char *home = NULL;
    int n;
    *path = NULL;
    *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    if (f && strncmp(f, "~/", 2) != 0)
        return (*path = strdup(f)) ? 0 : -ENOMEM;
    if (!(home = home_dir()))
        return -ENOENT;
    n = f ? asprintf(path, "%s/%s", home, f + 2) : asprintf(path, "%s/.aws/credentials", home);
    free(home);
    if (n < 0) {
        *path = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* "2026-11-27T13:00:00Z" (fractional seconds allowed) to epoch seconds. */
static int parse_iso8601(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return -EINVAL;
    s += used;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (strcmp(s, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -EINVAL;
    *out = (int64_t)t;
    return 0;
}

int aws_credentials_parse_imds(const char *body, size_t len, struct aws_credentials *out)
{
    json_error_t jerr;
    int64_t expires = 0;
    int rc = -EIO;
    aws_credentials_clear(out);
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc))
        goto out;
    json_t *code = json_object_get(doc, "Code");
    json_t *id = json_object_get(doc, "AccessKeyId");
    json_t *secret = json_object_get(doc, "SecretAccessKey");
    json_t *token = json_object_get(doc, "Token");
    json_t *exp = json_object_get(doc, "Expiration");
    if (code && (!json_is_string(code) || strcmp(json_string_value(code), "Success") != 0))
        goto out;
    if (!json_is_string(id) || !json_is_string(secret) || (token && !json_is_string(token)) ||
        (exp && !json_is_string(exp)))
        goto out;
    if (exp && parse_iso8601(json_string_value(exp), &expires) < 0)
        goto out;
    rc = aws_credentials_set(out, json_string_value(id), json_string_value(secret),
                             token ? json_string_value(token) : NULL, expires, AWS_CREDS_IMDS);
    if (rc == -EINVAL)
        rc = -EIO;
out:
    json_decref(doc);
    return rc;
}

/* What an IMDS status means; 0 for 200. */
static int imds_status(long status)
{
    if (status == 200)
        return 0;
    return status == 410 || (status > 200 && status < 300) ? -EIO : failure_status_errno(status);
}

static void clear_secret_response(struct fetch_response *r)
{
    if (r->body)
        secret_wipe(r->body, r->body_len);
    fetch_response_clear(r);
}

/* GET path from IMDS with the session token header. */
static int imds_get(const char *endpoint, const char *path, const char *token, size_t cap,
                    struct fetch_response *resp)
{
    char *url = NULL, *hdr = NULL;
    struct curl_slist *hdrs = NULL;
    int rc;
    memset(resp, 0, sizeof(*resp));
    if (asprintf(&url, "%s%s", endpoint, path) < 0) {
        url = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if (asprintf(&hdr, "X-aws-ec2-metadata-token: %s", token) < 0) {
        hdr = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = fetch_header_add(&hdrs, hdr)) < 0)
        goto out;
    struct fetch_request req = {.url = url,
                                .headers = hdrs,
                                .no_redirects = true,
                                .timeout_ms = AWS_IMDS_TIMEOUT_MS,
                                .max_body = cap};
    rc = fetch_perform(&req, resp);
    if (rc == 0 && (rc = imds_status(resp->status)) < 0)
        clear_secret_response(resp);
out:
    free(url);
    secret_free(hdr);
    curl_slist_free_all(hdrs);
    return rc;
}

int aws_credentials_from_imds(const char *endpoint, struct aws_credentials *out)
{
    struct fetch_response resp = {0};
    struct curl_slist *hdrs = NULL;
    char *url = NULL, *token = NULL, *role = NULL, *path = NULL, *escaped = NULL;
    int rc;
    aws_credentials_clear(out);
    if (asprintf(&url, "%s/latest/api/token", endpoint) < 0) {
        url = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = fetch_header_add(&hdrs, "X-aws-ec2-metadata-token-ttl-seconds: " STR(
                                              AWS_IMDS_TOKEN_TTL_S))) < 0)
        goto out;
    struct sigv4_http_request put = {.method = "PUT",
                                     .url = url,
                                     .headers = hdrs,
                                     .timeout_ms = AWS_IMDS_TIMEOUT_MS,
                                     .connect_timeout_ms = AWS_IMDS_CONNECT_MS,
                                     .max_body = IMDS_TOKEN_MAX};
    if ((rc = sigv4_http_perform(&put, &resp)) < 0)
        goto out;
    if ((rc = imds_status(resp.status)) < 0)
        goto out;
    struct slice t = trim(resp.body, resp.body_len);
    if (!credential_ok(t.p, t.n)) {
        rc = -EIO;
        goto out;
    }
    if (!(token = strndup(t.p, t.n))) {
        rc = -ENOMEM;
        goto out;
    }
    clear_secret_response(&resp);

    rc = imds_get(endpoint, "/latest/meta-data/iam/security-credentials/", token, IMDS_TOKEN_MAX,
                  &resp);
    if (rc < 0)
        goto out;
    struct slice r = trim(resp.body, strcspn(resp.body, "\n"));
    if (r.n == 0) {
        rc = -ENOENT; /* no role attached to the instance */
        goto out;
    }
    if (!(role = strndup(r.p, r.n)) || !(escaped = fetch_url_escape(role))) {
        rc = -ENOMEM;
        goto out;
    }
    fetch_response_clear(&resp);
    if (asprintf(&path, "/latest/meta-data/iam/security-credentials/%s", escaped) < 0) {
        path = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = imds_get(endpoint, path, token, IMDS_DOC_MAX, &resp)) < 0)
        goto out;
    rc = aws_credentials_parse_imds(resp.body, resp.body_len, out);
out:
    clear_secret_response(&resp);
    curl_slist_free_all(hdrs);
    free(url);
    secret_free(token);
    free(role);
    free(escaped);
    free(path);
    return rc;
}

/* Appends a formatted note to why (bounded; silently cut). */
static void note(char *why, size_t n, const char *fmt, const char *a, const char *b)
{
    if (!why || n == 0)
        return;
    size_t used = strnlen(why, n);
    if (used + 1 >= n)
        return;
    snprintf(why + used, n - used, fmt, a, b);
}

static const char *err_text(int rc, char *buf, size_t n)
{
    return strerror_r(-rc, buf, n);
}

int aws_credentials_resolve(struct aws_credentials *out, char *why, size_t why_len)
{
    char *path = NULL, *endpoint = NULL, ebuf[128];
    const char *profile = "default";
    int rc;
    if (why && why_len)
        why[0] = '\0';
    aws_credentials_clear(out);

    rc = aws_credentials_from_env(out);
    if (rc == -EINVAL)
        note(why, why_len, "%s%s", "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ",
             "must be set together (or be valid)");
    if (rc != -ENOENT)
        goto out;
    note(why, why_len, "%s%s", "environment: not set", "");

    rc = aws_credentials_file_location(&path, &profile);
    if (rc == 0)
        rc = aws_credentials_from_file(path, profile, out);
    if (rc == -ENOENT && path && access(path, F_OK) == 0)
        note(why, why_len, "; %s: no credentials for profile %s", path, profile);
    else if (rc == -ENOENT)
        note(why, why_len, "; %s: %s", path ? path : "~/.aws/credentials", "not found");
    else if (rc < 0)
        note(why, why_len, "; %s: %s", path ? path : "?",
             rc == -EINVAL ? "malformed or partial credentials" : err_text(rc, ebuf, sizeof(ebuf)));
    if (rc != -ENOENT)
        goto out;

    const char *disabled = env("AWS_EC2_METADATA_DISABLED");
    if (disabled && strcasecmp(disabled, "true") == 0) {
        note(why, why_len, "; %s%s", "instance metadata: disabled", "");
        rc = -ENOENT;
        goto out;
    }
    const char *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!ep)
        ep = upstream_defaults.imds_endpoint;
    if (!(endpoint = strdup(ep))) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t n = strlen(endpoint); n > 0 && endpoint[n - 1] == '/'; n--)
        endpoint[n - 1] = '\0';
    rc = aws_credentials_from_imds(endpoint, out);
    if (rc < 0) {
        note(why, why_len, "; instance metadata %s: %s", endpoint,
             rc == -ENOENT ? "no role" : err_text(rc, ebuf, sizeof(ebuf)));
        rc = -ENOENT;
    }
out:
    if (rc == 0)
        log_debug("aws credentials from the %s", aws_credentials_source_name(out->source));
    else
        aws_credentials_clear(out);
    free(path);
    free(endpoint);
    return rc;
}
