/*
 * maven_metadata: the versions of a maven-metadata.xml filtered (include/upstreamfs/
 * maven_metadata.h). Parsed with libxml2 without network access or entity expansion; the
 * document is written back as it came unless a version was left out.
 */
#include "upstreamfs/maven_metadata.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

static xmlNode *child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

static bool is_snapshot(const char *v)
{
    size_t n = strlen(v), s = strlen("-SNAPSHOT");
    return n >= s && strcmp(v + n - s, "-SNAPSHOT") == 0;
}

/* Removes n and the blank text just before it (its indentation). */
static void drop(xmlNode *n)
{
    xmlNode *prev = n->prev;
    if (prev && prev->type == XML_TEXT_NODE && xmlIsBlankNode(prev)) {
        xmlUnlinkNode(prev);
        xmlFreeNode(prev);
    }
    xmlUnlinkNode(n);
    xmlFreeNode(n);
}

/* latest or release: kept when it names a shown version, else the last fitting one left. */
static void repoint(xmlNode *versioning, const char *name, xmlNode *versions, bool release)
{
    xmlNode *el = child(versioning, name);
    if (!el)
        return;
    xmlChar *cur = xmlNodeGetContent(el);
    const char *best = NULL;
    bool shown = false;
    for (xmlNode *v = versions ? versions->children : NULL; v; v = v->next) {
        if (v->type != XML_ELEMENT_NODE || strcmp((const char *)v->name, "version") != 0)
            continue;
        const char *s = v->children && v->children->content ? (const char *)v->children->content
                                                            : "";
        if (cur && strcmp(s, (const char *)cur) == 0)
            shown = true;
        if (s[0] && (!release || !is_snapshot(s)))
            best = s;
    }
    xmlFree(cur);
    if (shown)
        return;
    if (best)
        xmlNodeSetContent(el, (const xmlChar *)best);
    else
        drop(el);
}

int maven_metadata_filter(const char *xml, size_t len, maven_version_hidden_fn hidden, void *arg,
                          char **out, size_t *out_len, size_t *nhidden)
{
    *out = NULL;
    *out_len = 0;
    if (nhidden)
        *nhidden = 0;
    if (len > MAVEN_METADATA_MAX)
        return -EFBIG;
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "maven-metadata.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || strcmp((const char *)root->name, "metadata") != 0) {
        xmlFreeDoc(doc);
        return -EIO;
    }
    xmlNode *versioning = child(root, "versioning");
    xmlNode *versions = child(versioning, "versions");
    size_t n = 0;
    for (xmlNode *v = versions ? versions->children : NULL, *next; v; v = next) {
        next = v->next;
        if (v->type != XML_ELEMENT_NODE || strcmp((const char *)v->name, "version") != 0)
            continue;
        xmlChar *s = xmlNodeGetContent(v);
        bool h = s && hidden(arg, (const char *)s);
        xmlFree(s);
        if (h) {
            drop(v);
            n++;
        }
    }
    if (n == 0) { /* nothing to hide: the upstream's bytes, so its checksums still hold */
        xmlFreeDoc(doc);
        if (!(*out = malloc(len + 1)))
            return -ENOMEM;
        memcpy(*out, xml, len);
        (*out)[len] = '\0';
        *out_len = len;
        return 0;
    }
    repoint(versioning, "latest", versions, false);
    repoint(versioning, "release", versions, true);
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    xmlFreeDoc(doc);
    if (!mem || size < 0) {
        xmlFree(mem);
        return -ENOMEM;
    }
    *out = malloc((size_t)size + 1);
    if (*out) {
        memcpy(*out, mem, (size_t)size);
        (*out)[size] = '\0';
        *out_len = (size_t)size;
    }
    xmlFree(mem);
    if (nhidden)
        *nhidden = n;
    return *out ? 0 : -ENOMEM;
}
