/*
 * shim_admin: the state dir's admin token, the credential of /api/v1 for a
 * shim without --admin users (docs/SECURITY.md).
 *
 * STATEDIR/admin-token holds the token alone: 64 lowercase hex digits (32
 * bytes from the OS RNG), mode 0600, owned by the state dir's user. The first
 * `serve` or `mount -o listen=` makes it; later ones read it, so the URL an
 * operator bookmarked keeps working across restarts. Deleting the file and
 * restarting makes a new one (and so revokes the old). API clients send
 * "Authorization: Bearer TOKEN"; the web page is opened once at
 * http://HOST:PORT/ui/#token=TOKEN (the fragment never reaches a server or
 * a log) and keeps the token in sessionStorage.
 */
#ifndef UPSTREAMFS_SHIM_ADMIN_H
#define UPSTREAMFS_SHIM_ADMIN_H

#include "upstreamfs/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define SHIM_ADMIN_TOKEN_HEX  64
#define SHIM_ADMIN_TOKEN_FILE "admin-token"

/*
 * Reads STATEDIR/admin-token into token, making it first when it is missing
 * (two processes racing make one token: the file appears whole, by link(2)).
 * Returns 0; -EINVAL (err names the file and the rule) when the file is not
 * a regular file holding one token or can be read by group or others;
 * another negative errno (err filled) when it cannot be read or made.
 */
int shim_admin_token(const char *state_dir, char token[SHIM_ADMIN_TOKEN_HEX + 1],
                     struct config_error *err);

/* Whether a presented token equals the admin token; constant time in the token's bytes. */
bool shim_admin_token_equal(const char *token, const char *presented, size_t presented_len);

/*
 * The web page's address with the token, "http://HOST:PORT/ui/#token=TOKEN"
 * (https with tls; an IPv6 host in brackets; a wildcard address as the
 * matching loopback one, which the browser can reach). Returns 0, or
 * -ENAMETOOLONG.
 */
int shim_admin_page_url(const char *host, unsigned port, bool tls, const char *token, char *out,
                        size_t outlen);

/*
 * Prints the web page's address on f, with the token when f is a terminal
 * (an operator reads it there); otherwise with "TOKEN" and where the token
 * is, so the token never reaches a log that stdout was sent to.
 */
void shim_admin_print(FILE *f, const char *host, unsigned port, bool tls, const char *token,
                      const char *state_dir);

#endif
