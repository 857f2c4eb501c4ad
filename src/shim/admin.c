/*
 * admin: the admin token of the state dir (see shim_admin.h).
 *
 * The token is made in a temporary file (O_EXCL, 0600) and linked to its
 * name, which fails if another process made one first: readers never see
 * a half-written token, and both processes end up with the same one.
 */
#include "upstreamfs/shim_admin.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_token(const char *s, size_t n)
{
    if (n != SHIM_ADMIN_TOKEN_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Reads the token file at path; -ENOENT when it does not exist. */
static int read_token(const char *path, char *token, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX], *buf = NULL;
    struct stat st;
    size_t len = 0;
    int rc = file_read_bounded(path, SHIM_ADMIN_TOKEN_HEX + 1, FILE_READ_NOFOLLOW, &buf, &len, &st);
    if (rc == -ENOENT)
        return rc;
    if (rc == -EINVAL) {
        config_error_set(err, "admin_token", "%s must be a regular file",
                         config_quote(q, sizeof(q), path));
    } else if (rc < 0 && rc != -EFBIG) {
        config_error_set(err, "admin_token", "cannot read %s: %s", config_quote(q, sizeof(q), path),
                         strerror(-rc));
    } else if (rc == 0 && (st.st_mode & 077)) {
        config_error_set(err, "admin_token",
                         "%s can be read by others (mode %03o): make it mode 0600 "
                         "(chmod 600), or delete it to have a new token made",
                         config_quote(q, sizeof(q), path), (unsigned)(st.st_mode & 0777));
        rc = -EINVAL;
    } else {
        if (len && buf[len - 1] == '\n')
            len--;
        if (rc < 0 || !is_token(buf, len)) { /* -EFBIG: longer than one token and a newline */
            config_error_set(err, "admin_token",
                             "%s must hold one token of %d lowercase hex digits; delete it to "
                             "have a new one made",
                             config_quote(q, sizeof(q), path), SHIM_ADMIN_TOKEN_HEX);
            rc = -EINVAL;
        } else {
            memcpy(token, buf, SHIM_ADMIN_TOKEN_HEX);
            token[SHIM_ADMIN_TOKEN_HEX] = '\0';
        }
    }
    if (buf) {
        secret_wipe(buf, len + 1); /* the whole file, whether or not len lost its newline */
        free(buf);
    }
    return rc;
}

/* Makes a new token at path unless one appears first; 0 or a negative errno. */
static int make_token(const char *path, struct config_error *err)
{
    char q[CONFIG_QUOTE_MAX], tmp[PATH_MAX], text[SHIM_ADMIN_TOKEN_HEX + 1];
    unsigned char raw[SHIM_ADMIN_TOKEN_HEX / 2];
    static const char hex[] = "0123456789abcdef";
    int rc = 0, fd = -1;
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            config_error_set(err, "admin_token", "the OS random generator failed: %s",
                             strerror(-rc));
            goto out;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        text[2 * i] = hex[raw[i] >> 4];
        text[2 * i + 1] = hex[raw[i] & 15];
    }
    text[SHIM_ADMIN_TOKEN_HEX] = '\n';
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= sizeof(tmp)) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) ||
        fsync(fd) < 0) {
        rc = errno ? -errno : -EIO;
        goto fail;
    }
    if (link(tmp, path) < 0 && errno != EEXIST)
        rc = -errno;
    unlink(tmp);
fail:
    if (rc < 0)
        config_error_set(err, "admin_token", "cannot make %s: %s", config_quote(q, sizeof(q), path),
                         strerror(-rc));
out:
    if (fd >= 0)
        close(fd);
    secret_wipe(raw, sizeof(raw));
    secret_wipe(text, sizeof(text));
    return rc;
}

static const char *token_path(const char *state_dir, char *path, size_t len)
{
    if ((size_t)snprintf(path, len, "%s/%s", state_dir, SHIM_ADMIN_TOKEN_FILE) >= len)
        return NULL;
    return path;
}

int shim_admin_token(const char *state_dir, char token[SHIM_ADMIN_TOKEN_HEX + 1],
                     struct config_error *err)
{
    char path[PATH_MAX];
    if (!token_path(state_dir, path, sizeof(path))) {
        config_error_set(err, "admin_token", "the state dir's path is too long");
        return -ENAMETOOLONG;
    }
    int rc = read_token(path, token, err);
    if (rc != -ENOENT)
        return rc;
    if ((rc = make_token(path, err)) < 0)
        return rc;
    return read_token(path, token, err);
}

bool shim_admin_token_equal(const char *token, const char *presented, size_t presented_len)
{
    /* The length is no secret (it is fixed); the bytes are compared in constant time. */
    return presented_len == SHIM_ADMIN_TOKEN_HEX &&
           CRYPTO_memcmp(token, presented, SHIM_ADMIN_TOKEN_HEX) == 0;
}

int shim_admin_page_url(const char *host, unsigned port, bool tls, const char *token, char *out,
                        size_t outlen)
{
    bool v6 = strchr(host, ':') != NULL;
    if (!strcmp(host, "0.0.0.0"))
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    int n = snprintf(out, outlen, "%s://%s%s%s:%u/ui/#token=%s", tls ? "https" : "http",
                     v6 ? "[" : "", host, v6 ? "]" : "", port, token);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

void shim_admin_print(FILE *f, const char *host, unsigned port, bool tls, const char *token,
                      const char *state_dir)
{
    char url[600], path[PATH_MAX], q[CONFIG_QUOTE_MAX * 4];
    /* Only a terminal sees the token: stdout may be a log file or a journal. */
    if (isatty(fileno(f)) && shim_admin_page_url(host, port, tls, token, url, sizeof(url)) == 0)
        fprintf(f, "upstreamfs: the web page (admin): %s\n", url);
    else if (shim_admin_page_url(host, port, tls, "TOKEN", url, sizeof(url)) == 0)
        fprintf(f, "upstreamfs: the web page (admin): %s with TOKEN from %s\n", url,
                config_quote(q, sizeof(q), token_path(state_dir, path, sizeof(path))));
    fflush(f);
}
