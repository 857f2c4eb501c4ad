/*
 * shim_htpasswd: Basic-auth users for the shim, from an htpasswd file.
 *
 * The file has one "user:hash" per line (blank lines and '#' comments
 * allowed). Only hashes the system's crypt(3) (libxcrypt) checks and that
 * are fit for passwords are accepted: bcrypt ($2y$, $2b$, $2a$) and
 * SHA-crypt ($5$, $6$); anything else (MD5 $apr1$, {SHA}, plain text, DES)
 * makes loading fail with the line named, so a weak file is never half used.
 *
 * Checking a password runs crypt(3), which for bcrypt takes tens of
 * milliseconds by design. A client such as docker sends the same
 * credentials on every request, so successful checks are remembered for a
 * few minutes under a keyed hash of user and password (never the password
 * itself); failures are never remembered. An unknown user costs as much as
 * a known one, so timing does not reveal which names exist.
 */
#ifndef UPSTREAMFS_SHIM_HTPASSWD_H
#define UPSTREAMFS_SHIM_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

#define SHIM_HTPASSWD_MAX_BYTES (1024 * 1024)
#define SHIM_HTPASSWD_CACHE_TTL 300 /* seconds a successful check is remembered */

struct shim_htpasswd;

/*
 * Loads path. Returns 0; -EINVAL with "line N: reason" in msg for a bad
 * line or an empty file; another negative errno when the file cannot be read
 * (msg says so).
 */
int shim_htpasswd_load(const char *path, struct shim_htpasswd **out, char *msg, size_t msglen);
/* The same from a buffer (tests). */
int shim_htpasswd_parse(const char *text, size_t len, struct shim_htpasswd **out, char *msg,
                        size_t msglen);
void shim_htpasswd_free(struct shim_htpasswd *h);

/* Whether the file names user (for --admin's check at start; not for authentication). */
bool shim_htpasswd_has_user(const struct shim_htpasswd *h, const char *user);

/* Whether user and password match an entry. Thread-safe. */
bool shim_htpasswd_check(struct shim_htpasswd *h, const char *user, const char *password);

#endif
