/*
 * htpasswd: Basic-auth users from an htpasswd file (see shim_htpasswd.h).
 *
 * Entries are kept in file order; the first line for a user wins, as in
 * Apache. Each check runs crypt_rn(3) into a heap struct crypt_data (about
 * 32 KiB, too big for a connection thread's stack) and compares the result
 * with CRYPTO_memcmp. The success cache is a small fixed table of HMAC-SHA256
 * values under a key drawn at load time; a hit needs the same user and
 * password, and entries expire after SHIM_HTPASSWD_CACHE_TTL.
 */
#include "upstreamfs/shim_htpasswd.h"
#include "upstreamfs/secret.h"
#include "upstreamfs/file_read.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define MAX_USERS      65536
#define CACHE_SLOTS    64

struct entry {
    char *user;
    char *hash;
};

struct cache_slot {
    unsigned char mac[32];
    time_t until;
};

struct shim_htpasswd {
    struct entry *ents;
    size_t n;
    unsigned char key[32];
    pthread_mutex_t mu;
    struct cache_slot cache[CACHE_SLOTS];
    size_t next_slot;
};

static bool hash_supported(const char *h)
{
    static const char *const prefixes[] = {"$2y$", "$2b$", "$2a$", "$5$", "$6$"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (!strncmp(h, prefixes[i], strlen(prefixes[i])))
            return true;
    return false;
}

void shim_htpasswd_free(struct shim_htpasswd *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->ents[i].user);
        free(h->ents[i].hash);
    }
    free(h->ents);
    pthread_mutex_destroy(&h->mu);
    secret_wipe(h, sizeof(*h));
    free(h);
}

/* Adds one "user:hash" line (already without its line end); 0 or -EINVAL/-ENOMEM. */
static int add_line(struct shim_htpasswd *h, char *line, size_t lineno, size_t *cap, char *msg,
                    size_t msglen)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line) {
        snprintf(msg, msglen, "line %zu: expected USER:HASH", lineno);
        return -EINVAL;
    }
    *colon = '\0';
    const char *hash = colon + 1;
    if (!hash_supported(hash)) {
        snprintf(msg, msglen,
                 "line %zu: the hash of this user is not bcrypt ($2y$, $2b$) or SHA-crypt ($5$, "
                 "$6$); create it with htpasswd -B or mkpasswd -m sha-512",
                 lineno);
        return -EINVAL;
    }
    if (h->n >= MAX_USERS) {
        snprintf(msg, msglen, "line %zu: more than %d users", lineno, MAX_USERS);
        return -EINVAL;
    }
    if (h->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct entry *e = realloc(h->ents, nc * sizeof(*e));
        if (!e)
            return -ENOMEM;
        h->ents = e;
        *cap = nc;
    }
    struct entry *e = &h->ents[h->n];
    e->user = strdup(line);
    e->hash = strdup(hash);
    if (!e->user || !e->hash) {
        free(e->user);
        free(e->hash);
        return -ENOMEM;
    }
    h->n++;
    return 0;
}

int shim_htpasswd_parse(const char *text, size_t len, struct shim_htpasswd **out, char *msg,
                        size_t msglen)
{
    struct shim_htpasswd *h = calloc(1, sizeof(*h));
    char line[LINE_MAX_BYTES + 1];
    size_t cap = 0, lineno = 0;
    int rc = 0;

    *out = NULL;
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    if (RAND_bytes(h->key, sizeof(h->key)) != 1) {
        snprintf(msg, msglen, "no random bytes for the check cache");
        rc = -EIO;
        goto out;
    }
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n > LINE_MAX_BYTES) {
            snprintf(msg, msglen, "line %zu: longer than %d bytes", lineno, LINE_MAX_BYTES);
            rc = -EINVAL;
            goto out;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        if (memchr(line, '\0', n)) {
            snprintf(msg, msglen, "line %zu: contains a NUL byte", lineno);
            rc = -EINVAL;
            goto out;
        }
        const char *s = line + strspn(line, " \t");
        if (!*s || *s == '#')
            continue;
        if ((rc = add_line(h, line, lineno, &cap, msg, msglen)) < 0)
            goto out;
    }
    if (h->n == 0) {
        snprintf(msg, msglen, "no users in the file");
        rc = -EINVAL;
    }
out:
    secret_wipe(line, sizeof(line));
    if (rc < 0)
        shim_htpasswd_free(h);
    else
        *out = h;
    return rc;
}

int shim_htpasswd_load(const char *path, struct shim_htpasswd **out, char *msg, size_t msglen)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = file_read_bounded(path, SHIM_HTPASSWD_MAX_BYTES, 0, &buf, &len, NULL);
    if (rc == -EINVAL || rc == -EFBIG) {
        snprintf(msg, msglen, "must be a regular file of at most %d bytes",
                 SHIM_HTPASSWD_MAX_BYTES);
        return -EINVAL;
    }
    if (rc < 0) {
        snprintf(msg, msglen, "cannot read: %s", strerror(-rc));
        return rc;
    }
    rc = shim_htpasswd_parse(buf, len, out, msg, msglen);
    secret_wipe(buf, len);
    free(buf);
    return rc;
}

static void cache_mac(const struct shim_htpasswd *h, const char *user, const char *password,
                      unsigned char mac[32])
{
    size_t ul = strlen(user), pl = strlen(password);
    unsigned int ml = 32;
    unsigned char *msg = malloc(ul + 1 + pl);
    if (!msg) {
        memset(mac, 0, 32);
        return;
    }
    memcpy(msg, user, ul);
    msg[ul] = '\0'; /* a user name cannot hold NUL, so user/password splits are unambiguous */
    memcpy(msg + ul + 1, password, pl);
    HMAC(EVP_sha256(), h->key, sizeof(h->key), msg, ul + 1 + pl, mac, &ml);
    secret_wipe(msg, ul + 1 + pl);
    free(msg);
}

static bool cache_hit(struct shim_htpasswd *h, const unsigned char mac[32], time_t now)
{
    bool hit = false;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < CACHE_SLOTS && !hit; i++)
        hit = h->cache[i].until > now && CRYPTO_memcmp(h->cache[i].mac, mac, 32) == 0;
    pthread_mutex_unlock(&h->mu);
    return hit;
}

static void cache_put(struct shim_htpasswd *h, const unsigned char mac[32], time_t now)
{
    pthread_mutex_lock(&h->mu);
    struct cache_slot *s = &h->cache[h->next_slot++ % CACHE_SLOTS];
    memcpy(s->mac, mac, 32);
    s->until = now + SHIM_HTPASSWD_CACHE_TTL;
    pthread_mutex_unlock(&h->mu);
}

/* Runs crypt(3) on password with the stored setting; true when it reproduces the hash. */
static bool crypt_matches(const char *password, const char *hash)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    bool ok = false;
    if (!cd)
        return false;
    const char *r = crypt_rn(password, hash, cd, sizeof(*cd));
    /* crypt_rn returns NULL (or a "*" failure token) for a setting it cannot use. */
    if (r && r[0] != '*' && strlen(r) == strlen(hash))
        ok = CRYPTO_memcmp(r, hash, strlen(hash)) == 0;
    secret_wipe(cd, sizeof(*cd));
    free(cd);
    return ok;
}

bool shim_htpasswd_has_user(const struct shim_htpasswd *h, const char *user)
{
    for (size_t i = 0; h && i < h->n; i++)
        if (!strcmp(h->ents[i].user, user))
            return true;
    return false;
}

bool shim_htpasswd_check(struct shim_htpasswd *h, const char *user, const char *password)
{
    unsigned char mac[32];
    time_t now = time(NULL);
    const struct entry *e = NULL;

    if (!h || !user || !password || !h->n)
        return false;
    for (size_t i = 0; i < h->n && !e; i++)
        if (!strcmp(h->ents[i].user, user))
            e = &h->ents[i];
    cache_mac(h, user, password, mac);
    if (e && cache_hit(h, mac, now))
        return true;
    /* An unknown user still pays for one crypt, against the first entry's setting. */
    bool ok = crypt_matches(password, e ? e->hash : h->ents[0].hash) && e;
    if (ok)
        cache_put(h, mac, now);
    secret_wipe(mac, sizeof(mac));
    return ok;
}
