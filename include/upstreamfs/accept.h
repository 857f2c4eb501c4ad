/*
 * accept: the media ranges of an HTTP Accept header (RFC 9110 §12.5.1), one at a time, for
 * the shim protocols that answer one of several representations (npm's abbreviated
 * document, PyPI's JSON or HTML page). Pure.
 */
#ifndef UPSTREAMFS_ACCEPT_H
#define UPSTREAMFS_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>

struct accept_range {
    const char *type; /* the media range, len bytes, without parameters or spaces */
    size_t len;
    double q; /* its q parameter (the last one given), 1.0 without one */
};

/*
 * Reads the next media range of the header at *p (NULL or "" has none) into r and moves *p
 * past it. False when there is none left. A range of parameters only comes with len 0.
 */
bool accept_next(const char **p, struct accept_range *r);

#endif
