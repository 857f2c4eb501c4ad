/* test_driver: see test_driver.h. */
#include "test_driver.h"
#include "test_httpd.h"

#include "upstreamfs/configdb.h"
#include "upstreamfs/hash.h"
#include "upstreamfs/index.h"
#include "upstreamfs/upstream.h"
/* upstream_outcome: the engine's one outcome rule, which a real driver reaches through its
 * requests (upstream_perform); the scripted answers go through it directly. */
#include "../../src/engine/upstream_i.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TD_MAX     64
#define GATE_BYTES (64 * 1024)

struct td_node {
    char key[64];
    char path[256];
    int rc;   /* 0: kind below; else the errno lookup and list answer */
    int kind; /* NODE_FILE, NODE_DIR */
    bool is_mutable;
    bool expect; /* the entry names the body's sha256 */
    unsigned char *body;
    size_t len;
    enum td_fault fault;
    int calls[TD_OPS];
    int requests;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;
static struct td_node nodes[TD_MAX];
static size_t n_nodes;
static struct MHD_Daemon *httpd;
static char base[64];

/* With mu held: the node of key/path, created (answering -ENOENT) when new. */
static struct td_node *node_at(const char *key, const char *path)
{
    for (size_t i = 0; i < n_nodes; i++)
        if (strcmp(nodes[i].key, key) == 0 && strcmp(nodes[i].path, path) == 0)
            return &nodes[i];
    if (n_nodes == TD_MAX)
        abort(); /* a test scripts more than it should */
    struct td_node *n = &nodes[n_nodes++];
    memset(n, 0, sizeof(*n));
    snprintf(n->key, sizeof(n->key), "%s", key);
    snprintf(n->path, sizeof(n->path), "%s", path);
    n->rc = -ENOENT;
    return n;
}

/* The proxy a driver call is for. */
static const char *key_of(struct upstream *u)
{
    return upstream_config(u)->key;
}

/*
 * What a real driver's request leaves on the proxy (the one outcome rule, upstream_outcome):
 * a scripted answer as the status that means it, so that health and back-off see it.
 */
static void outcome(struct upstream *u, const char *path, int rc)
{
    long status = rc == 0 ? 200 : rc == -EACCES ? 403 : rc == -EREMOTEIO ? 503 : 0;
    if (!status)
        return;
    struct fetch_response r = {
        .status = status, .ratelimit_remaining = -1, .ratelimit_limit = -1, .content_length = -1};
    char url[512];
    snprintf(url, sizeof(url), "%s/%s/%s", base, key_of(u), path);
    upstream_outcome(u, 0, &r, url, true);
}

static void fill_entry(const struct td_node *n, struct drv_entry *out)
{
    char url[512];
    memset(out, 0, sizeof(*out));
    out->kind = n->kind;
    out->size = n->kind == NODE_FILE ? (int64_t)n->len : -1;
    out->is_mutable = n->is_mutable;
    if (n->kind == NODE_FILE) {
        snprintf(url, sizeof(url), "%s/%s/%s", base, n->key, n->path);
        out->url = strdup(url);
    }
    if (n->kind == NODE_FILE && n->expect) {
        char hex[65], ex[80];
        hash_sha256_hex(n->body, n->len, hex);
        snprintf(ex, sizeof(ex), "sha256:%s", hex);
        out->expect = strdup(ex);
    }
}

static int td_lookup(struct upstream *u, const char *path, struct drv_entry *out)
{
    pthread_mutex_lock(&mu);
    struct td_node *n = node_at(key_of(u), path);
    n->calls[TD_LOOKUP]++;
    int rc = n->rc;
    if (rc == 0)
        fill_entry(n, out);
    pthread_mutex_unlock(&mu);
    outcome(u, path, rc);
    return rc == 0 && out->kind == NODE_FILE && !out->url ? -ENOMEM : rc;
}

/* Whether path is a name directly below dir ("" the root). */
static bool child_of(const char *dir, const char *path)
{
    size_t dl = strlen(dir);
    if (dl && (strncmp(path, dir, dl) != 0 || path[dl] != '/'))
        return false;
    const char *name = path + (dl ? dl + 1 : 0);
    return name[0] && !strchr(name, '/');
}

static int td_list(struct upstream *u, const char *dir, struct drv_listing *out)
{
    pthread_mutex_lock(&mu);
    const char *key = key_of(u);
    struct td_node *d = node_at(key, dir);
    d->calls[TD_LIST]++;
    int rc = d->rc == 0 && d->kind != NODE_DIR ? -ENOTDIR : d->rc;
    for (size_t i = 0; rc == 0 && i < n_nodes; i++) {
        struct td_node *c = &nodes[i];
        if (strcmp(c->key, key) != 0 || c->rc != 0 || !child_of(dir, c->path))
            continue;
        struct drv_entry e;
        fill_entry(c, &e);
        rc = drv_listing_add(out, strrchr(c->path, '/') ? strrchr(c->path, '/') + 1 : c->path, &e);
        drv_entry_clear(&e);
    }
    pthread_mutex_unlock(&mu);
    outcome(u, dir, rc);
    return rc;
}

static int td_expectation(struct upstream *u, const char *path, const struct drv_entry *e,
                          char **expect)
{
    (void)e;
    *expect = NULL;
    pthread_mutex_lock(&mu);
    node_at(key_of(u), path)->calls[TD_EXPECTATION]++;
    pthread_mutex_unlock(&mu);
    return -ENOENT; /* no checksum: the bytes are taken as they come */
}

const struct driver_ops td_driver = {
    .type = "test",
    .lookup = td_lookup,
    .list = td_list,
    .expectation = td_expectation,
};

/* ---- the server ---------------------------------------------------------------------- */

struct body {
    unsigned char *data; /* a copy: the script may change while it is sent */
    size_t len;
    enum td_fault fault;
};

static void wait_gate(void)
{
    pthread_mutex_lock(&mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &mu);
    pthread_mutex_unlock(&mu);
}

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct body *b = cls;
    if (b->fault == TD_HANG || pos >= GATE_BYTES)
        wait_gate();
    if (b->fault == TD_HANG)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (b->fault == TD_CLOSE_EARLY && pos >= b->len / 2)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t end = b->fault == TD_CLOSE_EARLY ? b->len / 2 : b->len;
    if (pos < GATE_BYTES && end > GATE_BYTES)
        end = GATE_BYTES; /* the gate is checked again past this */
    size_t n = end - pos < max ? end - pos : max;
    memcpy(buf, b->data + pos, n);
    if (b->fault == TD_WRONG_BYTES && pos <= b->len / 2 && b->len / 2 < pos + n)
        buf[b->len / 2 - pos] ^= 0x5a;
    return (ssize_t)n;
}

static void body_free(void *cls)
{
    struct body *b = cls;
    free(b->data);
    free(b);
}

static enum MHD_Result handler(struct MHD_Connection *c, const char *url, const char *method)
{
    (void)method;
    char key[64] = "";
    const char *path = "";
    const char *slash = url[0] == '/' ? strchr(url + 1, '/') : NULL;
    if (slash && (size_t)(slash - url - 1) < sizeof(key)) {
        memcpy(key, url + 1, (size_t)(slash - url - 1));
        key[slash - url - 1] = '\0';
        path = slash + 1;
    }
    struct body *b = calloc(1, sizeof(*b));
    unsigned status = 404;
    pthread_mutex_lock(&mu);
    struct td_node *n = node_at(key, path);
    n->requests++;
    if (b && n->rc == 0 && n->kind == NODE_FILE && n->fault != TD_500) {
        b->fault = n->fault;
        b->len = n->len;
        b->data = malloc(n->len ? n->len : 1);
        if (b->data) {
            memcpy(b->data, n->body, n->len);
            status = 200;
        }
    } else if (n->fault == TD_500) {
        status = 500;
    }
    pthread_mutex_unlock(&mu);
    struct MHD_Response *r;
    if (status == 200) {
        r = MHD_create_response_from_callback(b->len, 32 * 1024, body_read, b, body_free);
    } else {
        if (b)
            free(b->data);
        free(b);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

int td_start(void)
{
    td_reset();
    if (!httpd)
        httpd = test_httpd_start(handler, base, sizeof(base));
    return httpd ? 0 : -1;
}

void td_stop(void)
{
    td_gate(true);
    if (httpd)
        MHD_stop_daemon(httpd);
    httpd = NULL;
    td_reset();
}

void td_reset(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_nodes; i++)
        free(nodes[i].body);
    n_nodes = 0;
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&mu);
}

const char *td_base(void)
{
    return base;
}

void td_file(const char *key, const char *path, const void *body, size_t len, bool is_mutable)
{
    pthread_mutex_lock(&mu);
    struct td_node *n = node_at(key, path);
    free(n->body);
    n->body = malloc(len ? len : 1);
    if (!n->body)
        abort();
    memcpy(n->body, body, len);
    n->len = len;
    n->rc = 0;
    n->kind = NODE_FILE;
    n->is_mutable = is_mutable;
    pthread_mutex_unlock(&mu);
}

void td_expect_digest(const char *key, const char *path)
{
    pthread_mutex_lock(&mu);
    node_at(key, path)->expect = true;
    pthread_mutex_unlock(&mu);
}

void td_dir(const char *key, const char *path)
{
    pthread_mutex_lock(&mu);
    struct td_node *n = node_at(key, path);
    n->rc = 0;
    n->kind = NODE_DIR;
    pthread_mutex_unlock(&mu);
}

void td_answer(const char *key, const char *path, int rc)
{
    pthread_mutex_lock(&mu);
    node_at(key, path)->rc = rc;
    pthread_mutex_unlock(&mu);
}

void td_fault(const char *key, const char *path, enum td_fault f)
{
    pthread_mutex_lock(&mu);
    node_at(key, path)->fault = f;
    pthread_mutex_unlock(&mu);
}

void td_gate(bool open)
{
    pthread_mutex_lock(&mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&mu);
}

int td_proxy_create(struct state *st, const char *key, long ttl)
{
    struct proxy p;
    struct config_error err = {0};
    char url[128];
    config_proxy_init(&p, key, PROXY_GENERIC);
    snprintf(url, sizeof(url), "%s/%s/", base, key);
    int rc = config_proxy_set_url(&p, url);
    p.metadata_ttl = ttl;
    p.negative_ttl = ttl;
    if (rc == 0)
        rc = configdb_proxy_create(st, &p, NULL, &err);
    config_proxy_clear(&p);
    if (rc < 0)
        fprintf(stderr, "proxy %s: %s: %s\n", key, err.field, err.message);
    return rc;
}

int td_calls(enum td_op op, const char *key, const char *path)
{
    pthread_mutex_lock(&mu);
    int c = node_at(key, path)->calls[op];
    pthread_mutex_unlock(&mu);
    return c;
}

int td_requests(const char *key, const char *path)
{
    pthread_mutex_lock(&mu);
    int c = node_at(key, path)->requests;
    pthread_mutex_unlock(&mu);
    return c;
}
