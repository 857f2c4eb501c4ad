/*
 * subject: which package (and version) a mount path names, from the path alone, so the
 * rules of src/policy/rules.c refuse it before any request (include/upstreamfs/policy.h,
 * policy_subject). Pure; every input capped.
 */
#include "upstreamfs/policy.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncmp(s + n - k, suffix, k) == 0;
}

static bool put(char *dst, size_t len, const char *s, size_t n)
{
    if (n >= len)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

bool policy_pypi_file_version(const char *file, char *version, size_t vlen)
{
    static const char *const sdist[] = {".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"};
    size_t n = strlen(file);
    if (n > 512 || strchr(file, '/'))
        return false; /* a file name, not a path */
    if (ends_with(file, n, ".metadata"))
        n -= strlen(".metadata");
    if (ends_with(file, n, ".whl") || ends_with(file, n, ".egg")) {
        /* name-version(-build)?-python-abi-platform.whl: the second '-' field */
        const char *d = memchr(file, '-', n);
        if (!d)
            return false;
        size_t vl = strcspn(d + 1, "-");
        if (d + 1 + vl > file + n)
            vl = (size_t)(file + n - d - 1);
        if (ends_with(d + 1, vl, ".whl") || ends_with(d + 1, vl, ".egg"))
            vl -= 4;
        return vl > 0 && put(version, vlen, d + 1, vl);
    }
    for (size_t i = 0; i < sizeof(sdist) / sizeof(sdist[0]); i++) {
        if (!ends_with(file, n, sdist[i]))
            continue;
        n -= strlen(sdist[i]);
        /* name-version: the version starts after the last '-' before a digit run */
        for (size_t j = n; j-- > 0;) {
            if (file[j] == '-' && j + 1 < n && isdigit((unsigned char)file[j + 1]))
                return put(version, vlen, file + j + 1, n - j - 1);
        }
        return false;
    }
    return false;
}

/* npm: "<name>" or "@scope/name", then "-/<unscoped>-<version>.tgz" for a tarball. */
static bool npm_subject(const char *path, char *name, size_t nlen, char *version, size_t vlen)
{
    size_t n = strcspn(path, "/");
    if (path[0] == '@') {
        if (!path[n])
            return false; /* a scope */
        n += 1 + strcspn(path + n + 1, "/");
    }
    if (n == 0 || n > POLICY_NAME_MAX || !put(name, nlen, path, n))
        return false;
    const char *rest = path[n] ? path + n + 1 : "";
    const char *unscoped = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    size_t ul = strlen(unscoped), rl = strlen(rest);
    if (strncmp(rest, "-/", 2) == 0 && !strchr(rest + 2, '/') && ends_with(rest, rl, ".tgz") &&
        rl > 2 + ul + 1 + 4 && strncmp(rest + 2, unscoped, ul) == 0 && rest[2 + ul] == '-')
        return put(version, vlen, rest + 3 + ul, rl - (3 + ul) - 4);
    return true;
}

/* PyPI: "<project>[/<file>]". */
static bool pypi_subject(const char *path, char *name, size_t nlen, char *version, size_t vlen)
{
    size_t n = strcspn(path, "/");
    if (n == 0 || !put(name, nlen, path, n))
        return false;
    const char *file = path[n] ? path + n + 1 : "";
    if (*file && *file != '.' && !strchr(file, '/') &&
        !policy_pypi_file_version(file, version, vlen))
        version[0] = '\0';
    return true;
}

/* Maven: "<g1>/.../<artifact>/<version>/<artifact>-<version>[-classifier].<ext>" or
 * "<g...>/<artifact>/maven-metadata.xml[.sha1]". */
static bool maven_subject(const char *path, char *name, size_t nlen, char *version, size_t vlen)
{
    const char *c[64];
    size_t len[64], k = 0;
    for (const char *s = path; k < 64;) {
        c[k] = s;
        len[k] = strcspn(s, "/");
        k++;
        if (!s[len[k - 1]])
            break;
        s += len[k - 1] + 1;
    }
    if (k < 3 || k >= 64)
        return false;
    const char *file = c[k - 1];
    size_t gend, art;
    if (strncmp(file, "maven-metadata.xml", 18) == 0) {
        art = k - 2;
        gend = k - 2;
    } else {
        if (k < 4)
            return false;
        art = k - 3;
        gend = k - 3;
        /* the file starts with "<artifact>-<version>" */
        if (len[k - 1] < len[art] + len[k - 2] + 1 || strncmp(file, c[art], len[art]) != 0 ||
            file[len[art]] != '-' || strncmp(file + len[art] + 1, c[k - 2], len[k - 2]) != 0)
            return false;
        if (!put(version, vlen, c[k - 2], len[k - 2]))
            return false;
    }
    char buf[POLICY_NAME_MAX + 1];
    size_t w = 0;
    for (size_t i = 0; i < gend; i++) {
        if (w + len[i] + 2 >= sizeof(buf))
            return false;
        if (i)
            buf[w++] = '.';
        memcpy(buf + w, c[i], len[i]);
        w += len[i];
    }
    if (w + len[art] + 2 >= sizeof(buf))
        return false;
    buf[w++] = ':';
    memcpy(buf + w, c[art], len[art]);
    w += len[art];
    return put(name, nlen, buf, w);
}

/* Helm: "charts/<name>-<version>.tgz", the version the first '-' followed by a digit. */
static bool helm_subject(const char *path, char *name, size_t nlen, char *version, size_t vlen)
{
    if (strncmp(path, "charts/", 7) != 0 || strchr(path + 7, '/'))
        return false;
    const char *f = path + 7;
    size_t n = strlen(f);
    if (!ends_with(f, n, ".tgz") || n > POLICY_NAME_MAX)
        return false;
    n -= 4;
    for (size_t i = 1; i + 1 < n; i++) {
        if (f[i] == '-' && isdigit((unsigned char)f[i + 1]))
            return put(name, nlen, f, i) && put(version, vlen, f + i + 1, n - i - 1);
    }
    return false;
}

bool policy_subject(enum proxy_type t, const char *path, char *name, size_t nlen, char *version,
                    size_t vlen)
{
    if (!nlen || !vlen || strlen(path) > 4096)
        return false;
    name[0] = version[0] = '\0';
    bool ok = false;
    switch (t) {
    case PROXY_NPM:
        ok = npm_subject(path, name, nlen, version, vlen);
        break;
    case PROXY_PYPI:
        ok = pypi_subject(path, name, nlen, version, vlen);
        break;
    case PROXY_MAVEN:
        ok = maven_subject(path, name, nlen, version, vlen);
        break;
    case PROXY_HELM:
        ok = helm_subject(path, name, nlen, version, vlen);
        break;
    default:
        break;
    }
    if (!ok)
        name[0] = version[0] = '\0';
    return ok;
}
