/*
 * buf: the shim's bounded growable buffer (see shim_buf.h).
 *
 * Capacity doubles (from 4 KiB) but is clamped to max + 1, so the largest
 * allocation a buffer can make is known when it is created.
 */
#include "upstreamfs/shim_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void shim_buf_init(struct shim_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

static int reserve(struct shim_buf *b, size_t n)
{
    if (n > b->max - b->len)
        return -EFBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int shim_buf_append(struct shim_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int shim_buf_puts(struct shim_buf *b, const char *s)
{
    return shim_buf_append(b, s, strlen(s));
}

int shim_buf_printf(struct shim_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *shim_buf_steal(struct shim_buf *b, size_t *len)
{
    char *p = b->data;
    if (!p && !(p = calloc(1, 1)))
        return NULL;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void shim_buf_free(struct shim_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
