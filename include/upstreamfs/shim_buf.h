/*
 * shim_buf: a growable byte buffer with a hard maximum, for everything the
 * HTTP shim assembles in memory (request bodies, index pages, /metrics).
 *
 * Input can never grow a buffer past the maximum it was created with: an
 * append that would is refused with -EFBIG and leaves the buffer as it was.
 * The contents are always NUL-terminated (the NUL is not counted in len),
 * so text can be handed on as a C string.
 */
#ifndef UPSTREAMFS_SHIM_BUF_H
#define UPSTREAMFS_SHIM_BUF_H

#include <stddef.h>

struct shim_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* len never exceeds this */
};

void shim_buf_init(struct shim_buf *b, size_t max);
/* 0, -EFBIG (past max; nothing appended) or -ENOMEM. */
int shim_buf_append(struct shim_buf *b, const void *p, size_t n);
int shim_buf_puts(struct shim_buf *b, const char *s);
int shim_buf_printf(struct shim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes the contents (malloc'd, NUL-terminated, never NULL on success) and empties b. */
char *shim_buf_steal(struct shim_buf *b, size_t *len);
void shim_buf_free(struct shim_buf *b);

#endif
