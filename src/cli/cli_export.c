/*
 * cli_export: "upstreamfs export KEY [--from FILE] [--since BUNDLE] DIR" writes a bundle
 * (src/cli/cli_bundle.h): the files of KEY as the mount shows them plus bundle.json.
 * Without --from, every file the cache holds below KEY (the index alone: nothing fetched);
 * with --from, exactly what the lockfile names, prefetched first (cli_from.c) with the
 * documents a registry needs to serve it (npm: each package's package.json; helm: index.yaml).
 * --since writes only what the earlier bundle lacks; an image layout is written whole when
 * any of its files is new, so every layout in a delta is complete.
 * The bundle is written into DIR.partial-XXXXXX and renamed to DIR at the end.
 */
#include "cli_bundle.h"
#include "cli_prefetch.h"
#include "upstreamfs/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char export_usage[] =
    "usage: upstreamfs export KEY [--from FILE [--format F] [--platform P]] [--since BUNDLE] DIR\n"
    "\n"
    "Writes a bundle into DIR (which must not exist): the files of proxy or registry KEY in\n"
    "the layout the mount shows them (an OCI image layout per image, file trees for the\n"
    "other types) and DIR/bundle.json, which lists every file with its sha256, size and what\n"
    "it was fetched for. \"upstreamfs registry import NAME DIR\" verifies and lands it.\n"
    "\n"
    "  --from FILE     exactly what the lockfile FILE names (as prefetch --from; fetched first\n"
    "                  when not cached), with npm's package.json and helm's index.yaml;\n"
    "                  without it, everything cached below KEY (nothing is fetched)\n"
    "  --format F      the lockfile's format (npm, pip, helm, images, maven)\n"
    "  --platform P    images: only these platforms (os/arch[:os/arch...])\n"
    "  --since BUNDLE  a delta: only what the earlier bundle BUNDLE lacks\n"
    "\n"
    "The bundle is written into DIR.partial-XXXXXX and renamed to DIR when complete; on\n"
    "failure nothing is left at DIR. Exit status 1 when an item could not be fetched.\n";

struct out_file {
    char *path; /* below KEY */
    int64_t size;
    char sha256[65];
    json_t *labels; /* array of what it was fetched for */
    bool keep;
};

struct export {
    struct out_file *f;
    size_t n, cap;
};

static struct out_file *out_add(struct export *x, const char *path, int64_t size, const char *sha,
                                const char *label)
{
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->f[i].path, path)) {
            if (label)
                json_array_append_new(x->f[i].labels, json_string(label));
            return &x->f[i];
        }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        struct out_file *nf = realloc(x->f, cap * sizeof(*nf));
        if (!nf)
            return NULL;
        x->f = nf;
        x->cap = cap;
    }
    struct out_file *o = &x->f[x->n];
    memset(o, 0, sizeof(*o));
    o->path = strdup(path);
    o->labels = json_array();
    if (!o->path || !o->labels) {
        free(o->path);
        json_decref(o->labels);
        return NULL;
    }
    if (label)
        json_array_append_new(o->labels, json_string(label));
    o->size = size;
    snprintf(o->sha256, sizeof(o->sha256), "%s", sha ? sha : "");
    x->n++;
    return o;
}

static void export_free(struct export *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->f[i].path);
        json_decref(x->f[i].labels);
    }
    free(x->f);
}

/* The documents a registry serves the set with: npm package.json, helm index.yaml. */
static void collect_documents(struct prefetch *p, const char *key, const struct from_set *s)
{
    char path[2400];
    if (s->lf.format == LOCKFILE_HELM && s->lf.n) {
        snprintf(path, sizeof(path), "%s/index.yaml", key);
        prefetch_collect(p, path, NULL, 0);
    }
    for (size_t i = 0; s->lf.format == LOCKFILE_NPM && i < s->lf.n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(s->lf.items[k].name, s->lf.items[i].name);
        if (seen)
            continue;
        snprintf(path, sizeof(path), "%s/%s/package.json", key, s->lf.items[i].name);
        prefetch_collect(p, path, NULL, 0);
    }
}

/* --from: the set, prefetched; CLI_EXIT_* */
static int from_files(struct prefetch *p, const char *key, struct from_set *s, struct export *x)
{
    from_set_collect(p, key, s);
    collect_documents(p, key, s);
    prefetch_run(p);
    int failed = from_set_summary(p, s, NULL);
    if (failed || p->failed) {
        cli_errorf("export: %d item(s) and %lld file(s) could not be fetched; nothing exported",
                   failed, (long long)p->failed);
        return CLI_EXIT_FAIL;
    }
    size_t kl = strlen(key) + 1;
    for (size_t i = 0; i < p->n; i++) {
        const struct pf_item *it = &p->items[i];
        if (!out_add(x, it->path + kl, it->size, it->sha256[0] ? it->sha256 : NULL,
                     it->want ? it->want->label : NULL))
            return CLI_EXIT_FAIL;
    }
    return 0;
}

/* Without --from: what the index says is cached below key. */
static int cached_files(struct engine *e, const char *key, struct export *x)
{
    struct engine_cached *list = NULL;
    size_t n = 0;
    int rc = engine_cached_files(e, key, &list, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!out_add(x, list[i].path, list[i].size, list[i].sha256, NULL))
            rc = -ENOMEM;
    engine_cached_free(list, n);
    if (rc == 0 && n == 0)
        cli_errorf("export: KEY: nothing of %s is cached (prefetch it, or give --from)", key);
    if (rc < 0)
        cli_errorf("export: %s: %s", key, strerror(-rc));
    return rc < 0 || n == 0 ? CLI_EXIT_FAIL : 0;
}

/* The image layout a path is in ("repo/tag" of "repo/tag/blobs/..."), or 0. */
static size_t layout_root(const struct export *x, const char *path)
{
    size_t best = 0;
    for (size_t i = 0; i < x->n; i++) {
        const char *p = x->f[i].path;
        size_t l = strlen(p);
        if (l > 11 && !strcmp(p + l - 11, "/oci-layout") && !strncmp(path, p, l - 10) &&
            l - 11 > best)
            best = l - 11;
    }
    return best;
}

/* --since: keeps what the earlier bundle lacks, and every file of a layout that has one. */
static void keep_new(struct export *x, const struct bundle *since)
{
    for (size_t i = 0; i < x->n; i++) {
        struct bundle_file key = {.path = x->f[i].path};
        const struct bundle_file *old = NULL;
        for (size_t k = 0; since && k < since->n && !old; k++)
            if (!strcmp(since->files[k].path, key.path))
                old = &since->files[k];
        x->f[i].keep = !old || strcmp(old->sha256, x->f[i].sha256) != 0;
    }
    for (size_t i = 0; since && i < x->n; i++) {
        size_t r = x->f[i].keep ? layout_root(x, x->f[i].path) : 0;
        for (size_t k = 0; r && k < x->n; k++)
            if (!strncmp(x->f[k].path, x->f[i].path, r) && x->f[k].path[r] == '/')
                x->f[k].keep = true;
    }
}

static int mkdirs(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int rc = mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
        *s = '/';
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Copies key/path out of the engine into tmp/path; checks or fills its sha256 and size. */
static int copy_out(struct engine *e, const char *key, const char *tmp, struct out_file *o)
{
    static char buf[1 << 20];
    char src[2400], dst[4400], got[65];
    struct engine_attr a;
    struct engine_file *f = NULL;
    bool keep, changed;
    snprintf(src, sizeof(src), "%s/%s", key, o->path);
    snprintf(dst, sizeof(dst), "%s/%s", tmp, o->path);
    if (!bundle_path_ok(o->path))
        return -EINVAL;
    int rc = mkdirs(dst);
    int fd = rc < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (rc == 0)
        rc = engine_resolve(e, src, &a);
    if (rc == 0)
        rc = engine_file_open(e, a.ino, NULL, &f, &keep, &changed);
    struct hash_ctx *h = rc == 0 ? hash_begin(NULL) : NULL;
    int64_t off = 0;
    if (rc == 0 && !h)
        rc = -ENOMEM;
    for (ssize_t r = 1; rc == 0 && r > 0;) {
        r = engine_file_read(f, buf, sizeof(buf), (off_t)off, NULL);
        if (r < 0)
            rc = (int)r;
        else if (r > 0 && write(fd, buf, (size_t)r) != r)
            rc = -EIO;
        if (r > 0)
            hash_update(h, buf, (size_t)r);
        off += r > 0 ? r : 0;
    }
    if (f)
        engine_file_close(f);
    if (h && rc == 0) {
        hash_end(h, got);
        if (o->sha256[0] && strcmp(o->sha256, got))
            rc = -EBADMSG; /* changed since it was fetched */
        memcpy(o->sha256, got, sizeof(got));
        o->size = off;
    } else if (h)
        hash_abort(h);
    if (fd >= 0 && (fsync(fd) < 0 || close(fd) < 0) && rc == 0)
        rc = -errno;
    if (rc < 0)
        cli_errorf("export: %s: %s", src, strerror(-rc));
    return rc;
}

static int write_manifest(const char *tmp, const char *key, enum proxy_type type,
                          const struct export *x, const struct bundle *since)
{
    char created[32], path[4300];
    failure_time_rfc3339((int64_t)time(NULL), created, sizeof(created));
    json_t *files = json_array();
    for (size_t i = 0; i < x->n; i++)
        if (x->f[i].keep)
            json_array_append_new(files,
                                  json_pack("{s:s, s:s, s:I, s:O}", "path", x->f[i].path, "sha256",
                                            x->f[i].sha256, "size", (json_int_t)x->f[i].size,
                                            "for", x->f[i].labels));
    json_t *ext = since ? json_pack("{s:s?, s:I, s:s}", "created", since->created, "files",
                                    (json_int_t)since->n, "sha256", since->sha256)
                        : json_null();
    json_t *doc = json_pack("{s:i, s:{s:s, s:s}, s:s, s:o, s:o}", "format", BUNDLE_FORMAT,
                            "source", "key", key, "type", config_type_name(type), "created",
                            created, "extends", ext, "files", files);
    snprintf(path, sizeof(path), "%s/" BUNDLE_JSON, tmp);
    int rc = doc && json_dump_file(doc, path, JSON_INDENT(1) | JSON_SORT_KEYS) == 0 ? 0 : -EIO;
    json_decref(doc);
    return rc;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

struct export_opts {
    const char *key, *dir, *from, *format, *platform, *since;
};

static int export_run(struct cli_globals *g, const struct export_opts *o, const char *tmp)
{
    struct prefetch p = {.tty = isatty(STDERR_FILENO), .from = true};
    struct from_set s = {0};
    struct bundle since = {0};
    struct export x = {0};
    enum proxy_type type;
    char err[4400];
    int rc = o->from ? from_set_load(g, "export", o->from, o->format, o->key, &s)
                     : cli_key_type(g, "export", o->key, &type);
    if (rc)
        return rc;
    if (o->from)
        type = s.type;
    if (o->since && bundle_load(o->since, &since, err, sizeof(err)) < 0) {
        cli_errorf("export: since: %s", err);
        rc = CLI_EXIT_USAGE;
    } else if (o->since && strcmp(since.key, o->key)) {
        cli_errorf("export: since: %s is a bundle of %s, not of %s", o->since, since.key, o->key);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == 0)
        rc = prefetch_begin(g, &p, o->platform);
    if (rc == 0)
        rc = o->from ? from_files(&p, o->key, &s, &x) : cached_files(p.e, o->key, &x);
    if (rc == 0)
        keep_new(&x, o->since ? &since : NULL);
    int64_t files = 0, bytes = 0;
    for (size_t i = 0; rc == 0 && i < x.n; i++) {
        if (!x.f[i].keep)
            continue;
        rc = copy_out(p.e, o->key, tmp, &x.f[i]) < 0 ? CLI_EXIT_FAIL : 0;
        files++;
        bytes += x.f[i].size;
    }
    if (rc == 0 && write_manifest(tmp, o->key, type, &x, o->since ? &since : NULL) < 0) {
        cli_errorf("export: %s/" BUNDLE_JSON ": %s", tmp, strerror(EIO));
        rc = CLI_EXIT_FAIL;
    }
    if (rc == 0 && rename(tmp, o->dir) < 0) {
        cli_errorf("export: DIR: cannot rename %s to %s: %s", tmp, o->dir, strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    if (rc == 0)
        printf("exported %lld file(s), %lld bytes of %s into %s%s\n", (long long)files,
               (long long)bytes, o->key, o->dir, o->since ? " (a delta)" : "");
    export_free(&x);
    bundle_free(&since);
    prefetch_end(&p);
    if (o->from)
        from_set_free(&s);
    return rc;
}

int cli_export_main(struct cli_globals *g, int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_PLATFORM, OPT_SINCE };
    static const struct option longopts[] = {{"from", required_argument, NULL, 'f'},
                                             {"format", required_argument, NULL, OPT_FORMAT},
                                             {"platform", required_argument, NULL, OPT_PLATFORM},
                                             {"since", required_argument, NULL, OPT_SINCE},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct export_opts o = {0};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'f')
            o.from = optarg;
        else if (c == OPT_FORMAT)
            o.format = optarg;
        else if (c == OPT_PLATFORM)
            o.platform = optarg;
        else if (c == OPT_SINCE)
            o.since = optarg;
        else if (c == 'h') {
            fputs(export_usage, stdout);
            return CLI_EXIT_OK;
        } else
            return cli_bad_option("export", c, argv);
    }
    if (argc - optind != 2) {
        cli_errorf("export: expects KEY DIR (see export --help)");
        return CLI_EXIT_USAGE;
    }
    o.key = argv[optind];
    o.dir = argv[optind + 1];
    struct stat st;
    if (lstat(o.dir, &st) == 0) {
        cli_errorf("export: DIR: %s exists (a bundle is written into a new directory)", o.dir);
        return CLI_EXIT_USAGE;
    }
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", o.dir);
    if (!mkdtemp(tmp)) {
        cli_errorf("export: DIR: cannot create %s: %s", tmp, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    chmod(tmp, 0755);
    int rc = export_run(g, &o, tmp);
    if (rc != 0)
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
