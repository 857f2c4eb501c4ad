/*
 * helm_index: a classic Helm repository's index.yaml, read and rewritten with libyaml's event
 * API without I/O (include/upstreamfs/helm.h), so everything but the URLs passes through
 * unchanged. The driver is src/drivers/helm.c.
 */
#include "upstreamfs/fetch.h"
#include "upstreamfs/helm.h"
#include "upstreamfs/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct outbuf {
    char *data;
    size_t len, cap, max;
    bool overflow;
};

static int out_write(void *arg, unsigned char *buf, size_t size)
{
    struct outbuf *o = arg;
    if (o->len + size > o->max) {
        o->overflow = true;
        return 0;
    }
    if (o->len + size + 1 > o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 65536;
        while (nc < o->len + size + 1)
            nc *= 2;
        char *nd = realloc(o->data, nc);
        if (!nd)
            return 0;
        o->data = nd;
        o->cap = nc;
    }
    memcpy(o->data + o->len, buf, size);
    o->len += size;
    o->data[o->len] = '\0';
    return 1;
}

void helm_charts_clear(struct helm_charts *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->charts[i].file);
        free(t->charts[i].url);
        free(t->charts[i].digest);
        free(t->charts[i].name);
        free(t->charts[i].version);
    }
    free(t->charts);
    memset(t, 0, sizeof(*t));
}

/* One chart version being read from the event stream. */
struct version_fields {
    char *name, *version, *digest, *url0;
};

static void fields_clear(struct version_fields *v)
{
    free(v->name);
    free(v->version);
    free(v->digest);
    free(v->url0);
    memset(v, 0, sizeof(*v));
}

/*
 * Adds the version just read. Every version gets a slot (file NULL when it
 * cannot be served), so the emitting pass can find version k's file name.
 */
static int table_add(struct helm_charts *t, const struct version_fields *v, const char *repo_url)
{
    struct helm_chart *nc = realloc(t->charts, (t->n + 1) * sizeof(*nc));
    if (!nc)
        return -ENOMEM;
    t->charts = nc;
    struct helm_chart *c = &t->charts[t->n++];
    memset(c, 0, sizeof(*c));
    if ((v->name && !(c->name = strdup(v->name))) ||
        (v->version && !(c->version = strdup(v->version))))
        return -ENOMEM;
    if (!v->name || !v->version || !v->url0)
        return 0; /* incomplete entries are passed through but not served */
    char file[600];
    snprintf(file, sizeof(file), "%s-%s.tgz", v->name, v->version);
    if (strchr(file, '/') || file[0] == '.' || strlen(file) > 255)
        return 0; /* a name that would escape charts/ */
    c->url = fetch_url_resolve(repo_url, v->url0);
    if (!c->url)
        return 0; /* an unusable URL: not served */
    c->file = strdup(file);
    c->digest = v->digest ? strdup(v->digest) : NULL;
    return c->file ? 0 : -ENOMEM;
}

#define HELM_MAX_DEPTH   32
#define HELM_MAX_ANCHORS 256

/* Scalar anchors seen so far, so an alias in a urls list resolves to its URL. */
struct anchors {
    char *name[HELM_MAX_ANCHORS];
    char *value[HELM_MAX_ANCHORS];
    size_t n;
};

static void anchors_add(struct anchors *a, const char *name, const char *value)
{
    if (a->n < HELM_MAX_ANCHORS) {
        a->name[a->n] = strdup(name);
        a->value[a->n] = strdup(value);
        a->n++;
    }
}

static const char *anchors_find(const struct anchors *a, const char *name)
{
    for (size_t i = a->n; i > 0; i--) /* the latest definition of a name wins */
        if (a->name[i - 1] && a->value[i - 1] && strcmp(a->name[i - 1], name) == 0)
            return a->value[i - 1];
    return NULL;
}

static void anchors_clear(struct anchors *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->name[i]);
        free(a->value[i]);
    }
    a->n = 0;
}

struct frame {
    bool is_map;
    bool want_key; /* maps: the next node is a key */
    char *key;     /* maps: the key whose value is being read */
};

/*
 * Walks the index with libyaml's event parser. Context by depth: 1 the root
 * mapping, 2 the mapping under its "entries" key, 3 one chart's version
 * list, 4 a version mapping, 5 that version's "urls" list.
 * Without out, it fills t (one slot per version, in order). With out, it
 * re-emits every event, replacing each urls item of version k with
 * charts/<t->charts[k].file>, so everything else passes through unchanged.
 */
/* The walk's state between events (helm_walk). */
struct walk {
    struct frame st[HELM_MAX_DEPTH + 1];
    int depth;
    bool entries;   /* depth 2 is the entries mapping */
    size_t version; /* index of the current version mapping, plus one */
    struct version_fields v;
    struct anchors anchors;
    const char *repo_url;
    struct helm_charts *t;
    bool emit;
    int skip;         /* emitting: the depth of a hidden version's mapping being left out */
    bool lost_anchor; /* an anchor was defined inside a left-out version */
};

/* A mapping or sequence starts (is_key: it stands where a key was wanted). */
static int on_open(struct walk *w, yaml_event_type_t type, bool is_key)
{
    if (w->depth >= HELM_MAX_DEPTH)
        return -EIO;
    if (is_key)
        w->st[w->depth].want_key = false; /* a complex key: treat it as consumed */
    struct frame *f = &w->st[++w->depth];
    f->is_map = type == YAML_MAPPING_START_EVENT;
    f->want_key = f->is_map;
    f->key = NULL;
    if (w->depth == 2 && w->st[1].key && strcmp(w->st[1].key, "entries") == 0 && f->is_map)
        w->entries = true;
    if (w->entries && w->depth == 4 && f->is_map) {
        fields_clear(&w->v);
        w->version++;
    }
    return 0;
}

/* A mapping or sequence ends. */
static int on_close(struct walk *w)
{
    int rc = 0;
    if (w->depth == 0)
        return -EIO;
    if (w->entries && w->depth == 4 && w->st[4].is_map && !w->emit)
        rc = table_add(w->t, &w->v, w->repo_url);
    if (w->depth == 2)
        w->entries = false;
    free(w->st[w->depth].key);
    w->st[w->depth].key = NULL;
    w->depth--;
    if (w->depth > 0 && w->st[w->depth].is_map)
        w->st[w->depth].want_key = true; /* the value ended */
    return rc;
}

/*
 * A scalar or alias (is_key, in_urls: where it stands). Returns true when it is a urls item
 * to emit as rep (charts/<file>) instead.
 */
static bool on_scalar(struct walk *w, yaml_event_t *ev, bool is_key, bool in_urls,
                      yaml_event_t *rep)
{
    struct frame *top = w->depth > 0 ? &w->st[w->depth] : NULL;
    bool scalar = ev->type == YAML_SCALAR_EVENT;
    const char *s = scalar ? (const char *)ev->data.scalar.value : "";
    bool replaced = false;
    if (scalar && ev->data.scalar.anchor)
        anchors_add(&w->anchors, (const char *)ev->data.scalar.anchor, s);
    if (!scalar) {
        const char *target = anchors_find(&w->anchors, (const char *)ev->data.alias.anchor);
        s = target ? target : "";
    }
    if (is_key) {
        free(top->key);
        top->key = strdup(s);
        top->want_key = false;
        return false;
    }
    if (in_urls) {
        if (!w->v.url0 && s[0])
            w->v.url0 = strdup(s);
        const struct helm_chart *c =
            w->version && w->version <= w->t->n ? &w->t->charts[w->version - 1] : NULL;
        if (w->emit && c && c->file) {
            /* An anchored URL keeps its anchor (aliases elsewhere still resolve); an
             * alias in urls becomes the rewritten URL itself. */
            char rel[700];
            yaml_char_t *anchor = scalar ? ev->data.scalar.anchor : NULL;
            snprintf(rel, sizeof(rel), "charts/%s", c->file);
            yaml_scalar_event_initialize(rep, anchor, NULL, (yaml_char_t *)rel, (int)strlen(rel), 1,
                                         1, YAML_ANY_SCALAR_STYLE);
            replaced = true;
        }
    } else if (w->entries && w->depth == 4 && w->st[4].key && scalar) {
        const char *k = w->st[4].key;
        char **slot = strcmp(k, "name") == 0      ? &w->v.name
                      : strcmp(k, "version") == 0 ? &w->v.version
                      : strcmp(k, "digest") == 0  ? &w->v.digest
                                                  : NULL;
        if (slot && !*slot)
            *slot = strdup(s);
    }
    if (top && top->is_map)
        top->want_key = true;
    return replaced;
}

/* One event: the walk's state follows it; *replaced and rep when it is emitted rewritten. */
static int on_event(struct walk *w, yaml_event_t *ev, bool *done, bool *replaced, yaml_event_t *rep)
{
    struct frame *top = w->depth > 0 ? &w->st[w->depth] : NULL;
    bool is_key = top && top->is_map && top->want_key;
    bool in_urls = w->entries && w->depth == 5 && !w->st[5].is_map && w->st[4].key &&
                   strcmp(w->st[4].key, "urls") == 0;
    *replaced = false;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        return on_open(w, ev->type, is_key);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        return on_close(w);
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
        *replaced = on_scalar(w, ev, is_key, in_urls, rep);
        return 0;
    default:
        return 0;
    }
}

static int helm_walk(const char *body, size_t len, const char *repo_url, struct helm_charts *t,
                     struct outbuf *out)
{
    yaml_parser_t parser;
    yaml_emitter_t emitter;
    yaml_event_t ev, rep;
    int rc = 0;
    struct walk *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->repo_url = repo_url;
    w->t = t;
    w->emit = out != NULL;
    if (!yaml_parser_initialize(&parser)) {
        free(w);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)body, len);
    if (out) {
        if (!yaml_emitter_initialize(&emitter)) {
            yaml_parser_delete(&parser);
            free(w);
            return -ENOMEM;
        }
        yaml_emitter_set_output(&emitter, out_write, out);
        yaml_emitter_set_unicode(&emitter, 1);
        yaml_emitter_set_width(&emitter, -1);
    }
    for (bool done = false; !done && rc == 0;) {
        bool replaced = false;
        if (!yaml_parser_parse(&parser, &ev)) {
            log_warn("helm index of %s: YAML error: %s", repo_url,
                     parser.problem ? parser.problem : "unknown");
            rc = -EIO;
            break;
        }
        int before = w->depth;
        rc = on_event(w, &ev, &done, &replaced, &rep);
        /* a hidden version's mapping, from its start to its end, is not emitted */
        if (out && rc == 0 && !w->skip && w->depth == 4 && before == 3 && w->entries &&
            w->st[4].is_map && w->version && w->version <= t->n && t->charts[w->version - 1].hidden)
            w->skip = 4;
        bool skipped = w->skip && (w->depth >= w->skip || before >= w->skip);
        if (skipped && ((ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor) ||
                        (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor) ||
                        (ev.type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor)))
            w->lost_anchor = true;
        if (w->skip && w->depth < w->skip)
            w->skip = 0;
        if (skipped) {
            yaml_event_delete(&ev);
            if (replaced)
                yaml_event_delete(&rep);
        } else if (out && rc == 0) {
            if (replaced)
                yaml_event_delete(&ev);
            if (!yaml_emitter_emit(&emitter, replaced ? &rep : &ev))
                rc = out->overflow ? -EFBIG : -EIO;
        } else {
            yaml_event_delete(&ev);
            if (replaced)
                yaml_event_delete(&rep);
        }
    }
    for (int i = 1; i <= HELM_MAX_DEPTH; i++)
        free(w->st[i].key);
    if (out)
        yaml_emitter_delete(&emitter);
    yaml_parser_delete(&parser);
    fields_clear(&w->v);
    anchors_clear(&w->anchors);
    if (rc == 0 && w->lost_anchor)
        rc = -EAGAIN;
    free(w);
    return rc;
}

int helm_rewrite_index_filtered(const char *raw, size_t rlen, const char *repo_url,
                                bool (*hide)(void *arg, const char *name, const char *version),
                                void *arg, char **body, size_t *len)
{
    struct helm_charts tmp = {0};
    struct outbuf o = {.max = HELM_INDEX_OUT_MAX};
    /* Pass 1 learns each version's file name (version may follow urls); pass 2 emits. */
    int rc = helm_walk(raw, rlen, repo_url, &tmp, NULL);
    for (size_t i = 0; rc == 0 && hide && i < tmp.n; i++)
        tmp.charts[i].hidden = tmp.charts[i].name && tmp.charts[i].version &&
                               hide(arg, tmp.charts[i].name, tmp.charts[i].version);
    if (rc == 0)
        rc = helm_walk(raw, rlen, repo_url, &tmp, &o);
    if (rc == -EAGAIN) { /* an anchor in a hidden part: everything, as it is */
        for (size_t i = 0; i < tmp.n; i++)
            tmp.charts[i].hidden = false;
        free(o.data);
        o = (struct outbuf){.max = HELM_INDEX_OUT_MAX};
        rc = helm_walk(raw, rlen, repo_url, &tmp, &o);
    }
    helm_charts_clear(&tmp);
    if (rc < 0) {
        free(o.data);
        return rc;
    }
    *body = o.data ? o.data : strdup("");
    *len = o.len;
    return *body ? 0 : -ENOMEM;
}

int helm_rewrite_index(const char *raw, size_t rlen, const char *repo_url, char **body, size_t *len)
{
    return helm_rewrite_index_filtered(raw, rlen, repo_url, NULL, NULL, body, len);
}

int helm_index_charts(const char *body, size_t len, const char *repo_url, struct helm_charts *out)
{
    memset(out, 0, sizeof(*out));
    int rc = helm_walk(body, len, repo_url, out, NULL);
    if (rc < 0)
        helm_charts_clear(out);
    return rc;
}
