/*
 * fuzz_lockfile: lockfile_parse on the lockfiles prefetch --from and export read
 * (package-lock.json, requirements.txt, Chart.lock, image lists, Maven dependency lists).
 * The first byte picks the format (0: detect), the rest is the file.
 *
 * Properties: the result is 0 or an input error; every item has a name and a version; every
 * path an item maps to is relative and has no "." or ".." component (a lockfile cannot
 * name a path outside its key); labels and pip file matching finish.
 */
#include "fuzz.h"

#include "upstreamfs/lockfile.h"

#include <errno.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void check_path(const char *p)
{
    FUZZ_CHECK(p[0] && p[0] != '/');
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        FUZZ_CHECK(n > 0);
        FUZZ_CHECK(!(n == 1 && c[0] == '.') && !(n == 2 && c[0] == '.' && c[1] == '.'));
        c += n + (c[n] == '/');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum lockfile_format f = (enum lockfile_format)(data[0] % 6);
    struct lockfile lf;
    char err[200];
    int rc = lockfile_parse((const char *)data + 1, size - 1, f, &lf, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EFBIG);
    for (size_t i = 0; rc == 0 && i < lf.n; i++) {
        const struct lockfile_item *it = &lf.items[i];
        FUZZ_CHECK(it->name && it->name[0] && it->version && it->version[0]);
        char paths[LOCKFILE_MAX_PATHS][LOCKFILE_PATH_MAX], label[256];
        int n = lockfile_item_paths(lf.format, it, paths, LOCKFILE_MAX_PATHS);
        FUZZ_CHECK(n == -EINVAL || (n >= 1 && n <= LOCKFILE_MAX_PATHS));
        for (int k = 0; k < n; k++)
            check_path(paths[k]);
        lockfile_item_label(lf.format, it, label, sizeof(label));
        (void)lockfile_pip_file_of(it, "demo-1.0.tar.gz");
    }
    if (rc == 0)
        lockfile_free(&lf);
    return 0;
}
