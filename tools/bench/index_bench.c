/*
 * index_bench: commit and lookup latency of the index against its size
 * (docs/BENCHMARKS.md, row "index accounting").
 *
 *     index_bench [--sizes 10000,100000,1000000] [--rounds 15] [--calls 200] [--dir DIR]
 *
 * For each size N it makes a state dir under DIR (default /var/tmp) and fills
 * its index in one transaction with N objects and N file nodes (synthetic
 * rows, 1000 files per directory). Then, in rounds that visit every size in
 * turn (so machine noise hits all sizes alike), after one untimed warm-up
 * round, it times:
 *   commit  what the engine does when a download is committed
 *           (engine__object_added in src/engine/evict.c): index_object_put,
 *           index_object_touch and index_object_totals of a new object, each
 *           its own transaction as there;
 *   lookup  what a FUSE lookup of a cached file reads: index_child of a
 *           random file node and index_object_get of its digest.
 * It prints the median per call of each size and its ratio against the
 * first size; the target is "flat within 2x". Only the public index API
 * (include/upstreamfs/index.h) is used, so the same file builds against an
 * older tree to measure the before.
 */
#include "upstreamfs/index.h"
#include "upstreamfs/state.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES 8
#define PER_DIR 1000

struct bench {
    long n;
    char dir[512];
    struct state *st;
    struct index *ix;
    int64_t *dirs; /* inode of each directory of PER_DIR files */
    long added;        /* objects committed by the timing loop */
    double *commit, *lookup; /* per-round medians, in microseconds */
};

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void digest_of(long i, char out[65])
{
    snprintf(out, 65, "%016lx%048x", (unsigned long)i * 2654435761UL, 0);
}

static int fill(struct bench *b)
{
    char name[64], path[128], digest[65];
    struct node top = {.parent = INDEX_ROOT_INO, .name = "b", .top = "b", .path = "",
                       .kind = NODE_DIR, .size = -1};
    b->dirs = calloc((size_t)(b->n / PER_DIR + 1), sizeof(*b->dirs));
    if (!b->dirs || state_begin(b->st->db) < 0 || index_put(b->ix, &top) < 0)
        return -1;
    int64_t dir_ino = 0;
    for (long i = 0; i < b->n; i++) {
        if (i % PER_DIR == 0) {
            snprintf(name, sizeof(name), "d%ld", i / PER_DIR);
            struct node d = {.parent = top.ino, .name = name, .top = "b", .path = name,
                             .kind = NODE_DIR, .size = -1};
            if (index_put(b->ix, &d) < 0)
                return -1;
            dir_ino = b->dirs[i / PER_DIR] = d.ino;
        }
        digest_of(i, digest);
        snprintf(name, sizeof(name), "f%ld.bin", i);
        snprintf(path, sizeof(path), "d%ld/f%ld.bin", i / PER_DIR, i);
        struct node f = {.parent = dir_ino, .name = name, .top = "b", .path = path,
                         .kind = NODE_FILE, .size = 1000 + i % 5000};
        memcpy(f.digest, digest, sizeof(f.digest));
        if (index_put(b->ix, &f) < 0 || index_object_put(b->ix, digest, f.size, false) < 0 ||
            index_object_touch(b->ix, digest, i) < 0)
            return -1;
    }
    if (state_commit(b->st->db) < 0)
        return -1;
    /* Start as a state dir in use would: the fill's write-ahead log folded into the database. */
    return sqlite3_wal_checkpoint_v2(b->st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) ==
                   SQLITE_OK
               ? 0
               : -1;
}

static double time_commit(struct bench *b, int calls)
{
    double *v = calloc((size_t)calls, sizeof(*v)), t;
    char digest[65];
    int64_t bytes, count;
    for (int c = 0; c < calls; c++) {
        digest_of(b->n + b->added++, digest);
        t = now_us();
        index_object_put(b->ix, digest, 4096, false);
        index_object_touch(b->ix, digest, time(NULL));
        index_object_totals(b->ix, &bytes, &count);
        v[c] = now_us() - t;
    }
    t = median(v, (size_t)calls);
    free(v);
    return t;
}

static double time_lookup(struct bench *b, int calls, unsigned *seed)
{
    double *v = calloc((size_t)calls, sizeof(*v)), t;
    char name[64];
    struct node n;
    struct object_info o;
    for (int c = 0; c < calls; c++) {
        long i = (long)(rand_r(seed) % (unsigned)b->n);
        snprintf(name, sizeof(name), "f%ld.bin", i);
        t = now_us();
        int rc = index_child(b->ix, b->dirs[i / PER_DIR], name, &n);
        if (rc == 0) {
            rc = index_object_get(b->ix, n.digest, &o);
            node_clear(&n);
        }
        v[c] = now_us() - t;
        if (rc < 0) {
            fprintf(stderr, "index_bench: lookup of %s failed: %s\n", name, strerror(-rc));
            exit(1);
        }
    }
    t = median(v, (size_t)calls);
    free(v);
    return t;
}

static int parse_sizes(const char *s, long *sizes)
{
    int n = 0;
    for (char *end; *s && n < MAX_SIZES; s = *end ? end + 1 : end) {
        sizes[n] = strtol(s, &end, 10);
        if (sizes[n] <= 0 || (*end && *end != ','))
            return -1;
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"sizes", required_argument, NULL, 's'},
                                          {"rounds", required_argument, NULL, 'r'},
                                          {"calls", required_argument, NULL, 'c'},
                                          {"dir", required_argument, NULL, 'd'},
                                          {NULL, 0, NULL, 0}};
    long sizes[MAX_SIZES] = {10000, 100000, 1000000};
    int nsizes = 3, rounds = 15, calls = 200, c;
    const char *base = "/var/tmp";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 's' && (nsizes = parse_sizes(optarg, sizes)) > 0)
            continue;
        if (c == 'r' && (rounds = atoi(optarg)) > 0)
            continue;
        if (c == 'c' && (calls = atoi(optarg)) > 0)
            continue;
        if (c == 'd') {
            base = optarg;
            continue;
        }
        fprintf(stderr, "usage: index_bench [--sizes N,N,...] [--rounds R] [--calls C] "
                        "[--dir DIR]\n");
        return 2;
    }
    struct bench b[MAX_SIZES] = {0};
    int rc = 0;
    for (int i = 0; i < nsizes && rc == 0; i++) {
        b[i].n = sizes[i];
        snprintf(b[i].dir, sizeof(b[i].dir), "%s/index-bench.XXXXXX", base);
        double t = now_us();
        if (!mkdtemp(b[i].dir) || state_open(b[i].dir, &b[i].st) < 0 ||
            index_open(b[i].st->db, &b[i].ix) < 0 || fill(&b[i]) < 0) {
            fprintf(stderr, "index_bench: cannot set up %ld rows in %s\n", b[i].n, b[i].dir);
            rc = 1;
            break;
        }
        b[i].commit = calloc((size_t)rounds, sizeof(double));
        b[i].lookup = calloc((size_t)rounds, sizeof(double));
        fprintf(stderr, "index_bench: %ld objects and nodes in %.1f s\n", b[i].n,
                (now_us() - t) / 1e6);
    }
    unsigned seed = 42;
    for (int i = 0; rc == 0 && i < nsizes; i++) { /* one untimed warm-up round */
        time_commit(&b[i], calls);
        time_lookup(&b[i], calls, &seed);
    }
    for (int r = 0; rc == 0 && r < rounds; r++) {
        for (int i = 0; i < nsizes; i++) {
            b[i].commit[r] = time_commit(&b[i], calls);
            b[i].lookup[r] = time_lookup(&b[i], calls, &seed);
        }
    }
    if (rc == 0) {
        printf("%-10s %14s %8s %14s %8s\n", "objects", "commit us", "ratio", "lookup us", "ratio");
        double c0 = median(b[0].commit, (size_t)rounds), l0 = median(b[0].lookup, (size_t)rounds);
        for (int i = 0; i < nsizes; i++) {
            double cm = median(b[i].commit, (size_t)rounds);
            double lm = median(b[i].lookup, (size_t)rounds);
            printf("%-10ld %14.1f %7.2fx %14.1f %7.2fx\n", b[i].n, cm, cm / c0, lm, lm / l0);
        }
    }
    for (int i = 0; i < nsizes; i++) {
        index_close(b[i].ix);
        if (b[i].st)
            state_close(b[i].st);
        free(b[i].commit);
        free(b[i].lookup);
        free(b[i].dirs);
        char cmd[600];
        if (b[i].dir[0] && strstr(b[i].dir, "index-bench.") &&
            snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b[i].dir) < (int)sizeof(cmd) &&
            system(cmd) != 0)
            fprintf(stderr, "index_bench: could not remove %s\n", b[i].dir);
    }
    return rc;
}
