/*
 * secret: wiping secrets (passwords, tokens, keys, request bodies that held
 * them) before their memory is given back, in a way the compiler may not
 * drop (explicit_bzero). The one way to do it in the tree.
 */
#ifndef UPSTREAMFS_SECRET_H
#define UPSTREAMFS_SECRET_H

#include <stddef.h>

/* Overwrites len bytes at p with zeros. p NULL is ignored. */
void secret_wipe(void *p, size_t len);

/* Wipes the NUL-terminated string s (up to its terminator) and frees it. NULL is ignored. */
void secret_free(char *s);

#endif
