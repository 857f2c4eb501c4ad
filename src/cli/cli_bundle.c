/*
 * cli_bundle: reading a bundle's bundle.json (src/cli/cli_bundle.h), and "registry import
 * NAME DIR" of a bundle: every file is checked against bundle.json (present, a regular file,
 * its size and sha256) and no other file may be there, all before anything is written; only
 * then does each land as local content of registry NAME at the path it has in the bundle
 * (a delta lands on top of what an earlier import added).
 */
#include "cli_bundle.h"
#include "upstreamfs/configdb.h"
#include "upstreamfs/engine.h"
#include "upstreamfs/fetch.h"
#include "upstreamfs/hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool bundle_path_ok(const char *p)
{
    if (!p || !*p || *p == '/' || strlen(p) > 1024)
        return false;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n + (c[n] == '/');
    }
    return true;
}

bool cli_is_bundle(const char *dir)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/" BUNDLE_JSON, dir);
    return lstat(path, &st) == 0;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct bundle_file *)a)->path, ((const struct bundle_file *)b)->path);
}

/* Reads a file of at most max bytes, hashing it; -EFBIG past max. */
static int read_small(const char *path, size_t max, char **out, size_t *len, char sha[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        int rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
        close(fd);
        return rc;
    }
    char *b = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t r = 1;
    while (b && n < (size_t)st.st_size && (r = read(fd, b + n, (size_t)st.st_size - n)) > 0)
        n += (size_t)r;
    close(fd);
    if (!b || r < 0) {
        free(b);
        return b ? -EIO : -ENOMEM;
    }
    b[n] = '\0';
    hash_sha256_hex(b, n, sha);
    *out = b;
    *len = n;
    return 0;
}

int bundle_load(const char *dir, struct bundle *b, char *err, size_t errlen)
{
    char path[4200], *buf = NULL;
    size_t len = 0;
    json_error_t je;
    memset(b, 0, sizeof(*b));
    snprintf(path, sizeof(path), "%s/" BUNDLE_JSON, dir);
    int rc = read_small(path, BUNDLE_JSON_MAX, &buf, &len, b->sha256);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path,
                 rc == -EFBIG ? "larger than 64 MiB" : rc == -EINVAL ? "not a file" : strerror(-rc));
        return rc;
    }
    b->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    json_t *src = json_object_get(b->root, "source"), *files = json_object_get(b->root, "files");
    b->key = json_string_value(json_object_get(src, "key"));
    b->type = json_string_value(json_object_get(src, "type"));
    b->created = json_string_value(json_object_get(b->root, "created"));
    if (!b->root || json_integer_value(json_object_get(b->root, "format")) != BUNDLE_FORMAT ||
        !b->key || !b->type || !json_is_array(files) ||
        json_array_size(files) > BUNDLE_FILES_MAX) {
        snprintf(err, errlen, "%s: %s", path,
                 !b->root ? je.text : "not a bundle of format 1 (format, source, files)");
        bundle_free(b);
        return -EINVAL;
    }
    b->n = json_array_size(files);
    b->files = calloc(b->n ? b->n : 1, sizeof(*b->files));
    if (!b->files) {
        bundle_free(b);
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        json_t *f = json_array_get(files, i);
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *sha = json_string_value(json_object_get(f, "sha256"));
        json_t *size = json_object_get(f, "size");
        if (!bundle_path_ok(p) || !strcmp(p, BUNDLE_JSON) || !sha || !hash_is_sha256_hex(sha) ||
            !json_is_integer(size) || json_integer_value(size) < 0) {
            snprintf(err, errlen, "%s: files[%zu] needs a relative path, a sha256 and a size",
                     path, i);
            bundle_free(b);
            return -EINVAL;
        }
        b->files[i].path = p;
        memcpy(b->files[i].sha256, sha, 65);
        b->files[i].size = json_integer_value(size);
    }
    qsort(b->files, b->n, sizeof(*b->files), cmp_file);
    for (size_t i = 1; i < b->n; i++)
        if (!strcmp(b->files[i].path, b->files[i - 1].path)) {
            snprintf(err, errlen, "%s: %s is listed twice", path, b->files[i].path);
            bundle_free(b);
            return -EINVAL;
        }
    return 0;
}

void bundle_free(struct bundle *b)
{
    free(b->files);
    json_decref(b->root);
    memset(b, 0, sizeof(*b));
}

/* Checks one listed file; prints why it does not match. */
static int check_file(const char *dir, const struct bundle_file *f)
{
    char path[4200], buf[1 << 16], got[65];
    snprintf(path, sizeof(path), "%s/%s", dir, f->path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cli_errorf("registry import: DIR: %s is %s; nothing imported", f->path,
                   fd < 0 && errno == ENOENT ? "missing" : "not a readable file");
        if (fd >= 0)
            close(fd);
        return -EBADMSG;
    }
    struct hash_ctx *h = hash_begin(NULL);
    ssize_t r = 0;
    while (h && (r = read(fd, buf, sizeof(buf))) > 0)
        hash_update(h, buf, (size_t)r);
    close(fd);
    if (!h)
        return -ENOMEM;
    if (r < 0) {
        hash_abort(h);
        cli_errorf("registry import: DIR: %s: %s; nothing imported", f->path, strerror(errno));
        return -EBADMSG;
    }
    hash_end(h, got);
    if (st.st_size != f->size || strcmp(got, f->sha256)) {
        cli_errorf("registry import: DIR: %s does not match bundle.json (%s); nothing imported",
                   f->path, st.st_size != f->size ? "its size differs" : "its sha256 differs");
        return -EBADMSG;
    }
    return 0;
}

/* Every file below dir/rel must be listed (rel "" at the top, where bundle.json may be too). */
static int check_unlisted(const char *dir, const char *rel, const struct bundle *b, int depth)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = depth > 64 ? NULL : opendir(path);
    if (!d) {
        cli_errorf("registry import: DIR: %s: %s; nothing imported", *rel ? rel : dir,
                   depth > 64 ? "too deep" : strerror(errno));
        return -EBADMSG;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char sub[2100];
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            rc = -errno;
        else if (S_ISDIR(st.st_mode))
            rc = check_unlisted(dir, sub, b, depth + 1);
        else if (!(!*rel && !strcmp(de->d_name, BUNDLE_JSON))) {
            struct bundle_file key = {.path = sub};
            if (!bsearch(&key, b->files, b->n, sizeof(*b->files), cmp_file)) {
                cli_errorf("registry import: DIR: %s is not listed in bundle.json; nothing "
                           "imported",
                           sub);
                rc = -EBADMSG;
            }
        }
    }
    closedir(d);
    return rc;
}

/* Whether a bundle of source type t may land in a registry of type rt. */
static bool type_fits(const char *t, enum proxy_type rt)
{
    enum proxy_type st;
    if (config_type_lookup(t, &st) < 0)
        return false;
    return st == rt || (st == PROXY_ECR && rt == PROXY_DOCKER);
}

static int land(struct cli_globals *g, const char *name, const char *dir, const struct bundle *b,
                int64_t *files, int64_t *bytes)
{
    struct engine *e = NULL;
    struct engine_opts eo = {.state_dir = g->state_dir};
    int rc = fetch_global_init();
    if (rc == 0)
        rc = engine_open(&eo, &e);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        char src[4200], dest[2200];
        const char *p = b->files[i].path, *slash = strrchr(p, '/');
        snprintf(src, sizeof(src), "%s/%s", dir, p);
        if (slash)
            snprintf(dest, sizeof(dest), "%s/%.*s", name, (int)(slash - p), p);
        else
            snprintf(dest, sizeof(dest), "%s", name);
        int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        rc = fd < 0 ? -errno : engine_import_file(e, dest, slash ? slash + 1 : p, fd, bytes);
        if (fd >= 0)
            close(fd);
        if (rc < 0)
            cli_errorf("registry import: %s/%s: %s (%lld of %zu files imported)", name, p,
                       strerror(-rc), (long long)*files, b->n);
        else
            (*files)++;
    }
    if (e)
        engine_close(e);
    fetch_global_cleanup();
    return rc;
}

int cli_bundle_import(struct cli_globals *g, const char *name, const char *dir)
{
    struct state *st;
    struct registry reg;
    struct config_error cerr = {0};
    struct bundle b;
    char err[4400];
    if (cli_open_state(g, &st))
        return CLI_EXIT_FAIL;
    int rc = configdb_registry_get(st, name, &reg, &cerr);
    state_close(st);
    if (rc < 0)
        return cli_report("registry import", rc, &cerr);
    enum proxy_type rtype = reg.type;
    config_registry_clear(&reg);
    if ((rc = bundle_load(dir, &b, err, sizeof(err))) < 0) {
        cli_errorf("registry import: DIR: %s; nothing imported", err);
        return CLI_EXIT_FAIL;
    }
    if (!type_fits(b.type, rtype)) {
        cli_errorf("registry import: NAME: the bundle holds %s content (from %s); %s is a %s "
                   "registry",
                   b.type, b.key, name, config_type_name(rtype));
        bundle_free(&b);
        return CLI_EXIT_USAGE;
    }
    for (size_t i = 0; rc == 0 && i < b.n; i++)
        rc = check_file(dir, &b.files[i]);
    if (rc == 0)
        rc = check_unlisted(dir, "", &b, 0);
    int64_t files = 0, bytes = 0;
    if (rc == 0)
        rc = land(g, name, dir, &b, &files, &bytes);
    if (rc == 0)
        printf("imported %lld file(s), %lld bytes from the bundle of %s (%s) into %s\n",
               (long long)files, (long long)bytes, b.key, b.created ? b.created : "?", name);
    bundle_free(&b);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
