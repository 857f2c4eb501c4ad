/*
 * httptree_index: the links of an HTML directory index (an autoindex page) as a listing
 * (include/upstreamfs/httptree.h). Pure: no I/O; the driver is src/drivers/httptree.c.
 */
#include "upstreamfs/fetch.h"
#include "upstreamfs/httptree.h"
#include "upstreamfs/index.h"

#include <curl/curl.h>
#include <errno.h>
#include <libxml/HTMLparser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int64_t size_after(xmlNode *a)
{
    xmlNode *t = a->next;
    if (!t || t->type != XML_TEXT_NODE || !t->content)
        return -1;
    const char *s = (const char *)t->content;
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '\n' || end[-1] == '\t'))
        end--;
    const char *start = end;
    while (start > s && start[-1] >= '0' && start[-1] <= '9')
        start--;
    if (start == end || (start > s && start[-1] != ' ' && start[-1] != '\t'))
        return -1;
    return strtoll(start, NULL, 10);
}

static void collect(xmlNode *node, const char *base, size_t blen, struct drv_listing *out)
{
    for (xmlNode *n = node; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcasecmp((const char *)n->name, "a") == 0) {
            xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
            char *abs = href ? fetch_url_resolve(base, (const char *)href) : NULL;
            if (abs && strncmp(abs, base, blen) == 0 && abs[blen] && !strchr(abs + blen, '?') &&
                !strchr(abs + blen, '#')) {
                char *rest = abs + blen;
                size_t rl = strlen(rest);
                bool dir = rest[rl - 1] == '/';
                if (dir)
                    rest[--rl] = '\0';
                int dl = 0;
                char *name =
                    rl && !strchr(rest, '/') ? curl_easy_unescape(NULL, rest, 0, &dl) : NULL;
                /* "a%2Fb" decodes to a name no directory entry can have. */
                if (name && dl > 0 && (size_t)dl == strlen(name) && !strchr(name, '/') &&
                    strcmp(name, ".") && strcmp(name, "..")) {
                    struct drv_entry e = {.kind = dir ? NODE_DIR : NODE_FILE,
                                          .size = dir ? 0 : size_after(n),
                                          .url = dir ? NULL : abs};
                    bool dup = false;
                    for (size_t i = 0; i < out->n && !dup; i++)
                        dup = strcmp(out->items[i].name, name) == 0;
                    if (!dup)
                        drv_listing_add(out, name, &e);
                }
                curl_free(name);
            }
            free(abs);
            xmlFree(href);
        }
        collect(n->children, base, blen, out);
    }
}

int httptree_parse_index(const char *html, size_t len, const char *base_url,
                         struct drv_listing *out)
{
    if (len > (size_t)INT32_MAX)
        return -EFBIG;
    htmlDocPtr doc = htmlReadMemory(html, (int)len, base_url, NULL,
                                    HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                        HTML_PARSE_RECOVER);
    if (!doc)
        return -EIO;
    collect(xmlDocGetRootElement(doc), base_url, strlen(base_url), out);
    xmlFreeDoc(doc);
    return 0;
}
