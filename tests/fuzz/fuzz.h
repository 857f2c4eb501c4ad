/*
 * fuzz: helpers shared by the libFuzzer targets in this directory.
 *
 * Every target follows the same rules: the input is never trusted to be
 * NUL-terminated (a copy is made when the parser wants a C string), every
 * result is released before returning (so LeakSanitizer only reports leaks
 * of the code under test), and properties that must hold for any input are
 * checked with FUZZ_CHECK, which aborts with the failed condition so that
 * libFuzzer saves the input as a crash.
 */
#ifndef UPSTREAMFS_FUZZ_H
#define UPSTREAMFS_FUZZ_H

#include "upstreamfs/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*
 * Whether the property named `what` is switched off for this run: the
 * environment variable UPSTREAMFS_FUZZ_SKIP lists names separated by commas.
 * A long run uses it to look past a bug that is found but not yet fixed (it
 * would otherwise be found again at once, every run); the ctest smoke runs
 * never set it, so the saved reproducer keeps failing until the fix lands.
 */
static inline bool fuzz_skip(const char *what)
{
    const char *list = getenv("UPSTREAMFS_FUZZ_SKIP");
    size_t n = strlen(what);
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, what, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* A malloc'd, NUL-terminated copy of data[0..n) (which may hold NUL bytes). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/*
 * Cuts the first line off *data: returns it as a malloc'd C string (without
 * the '\n') and advances *data and *n past it. Without a '\n' the whole input
 * is the line and nothing is left.
 */
static inline char *fuzz_take_line(const uint8_t **data, size_t *n)
{
    const uint8_t *nl = memchr(*data, '\n', *n);
    size_t len = nl ? (size_t)(nl - *data) : *n;
    char *s = fuzz_cstr(*data, len);
    *data += nl ? len + 1 : len;
    *n -= nl ? len + 1 : len;
    return s;
}

/* Takes one byte off the front (0 when the input is empty). */
static inline uint8_t fuzz_take_byte(const uint8_t **data, size_t *n)
{
    if (*n == 0)
        return 0;
    uint8_t b = **data;
    (*data)++;
    (*n)--;
    return b;
}

/* True when s holds only printable ASCII. */
static inline bool fuzz_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/*
 * The parsers log malformed input at warn level. The lines go to /dev/null
 * rather than being filtered out, so that formatting them (with input in
 * the arguments) is still exercised; UPSTREAMFS_FUZZ_LOG=1 keeps stderr.
 */
static inline void fuzz_quiet(void)
{
    log_set_level(LOG_DEBUG);
    if (!getenv("UPSTREAMFS_FUZZ_LOG") && log_open_file("/dev/null") < 0)
        log_set_level(LOG_ERROR);
}

#endif
