/*
 * config_strings: the string and string-vector helpers of the config module
 * (contracts in include/upstreamfs/config.h). A string vector is a
 * NULL-terminated array of malloc'd strings; NULL is the empty vector.
 */
#include "upstreamfs/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int config_set_string(char **field, const char *value)
{
    char *copy = NULL;
    if (value && *value) {
        copy = strdup(value);
        if (!copy)
            return -ENOMEM;
    }
    free(*field);
    *field = copy;
    return 0;
}

size_t config_strv_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

int config_strv_push(char ***v, const char *s)
{
    size_t n = config_strv_len(*v);
    char *copy = strdup(s);
    if (!copy)
        return -ENOMEM;
    char **nv = realloc(*v, (n + 2) * sizeof(*nv));
    if (!nv) {
        free(copy);
        return -ENOMEM;
    }
    nv[n] = copy;
    nv[n + 1] = NULL;
    *v = nv;
    return 0;
}

void config_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int config_strv_dup(char ***dst, char *const *src)
{
    char **v = NULL;
    for (size_t i = 0; src && src[i]; i++) {
        if (config_strv_push(&v, src[i]) < 0) {
            config_strv_free(v);
            return -ENOMEM;
        }
    }
    *dst = v;
    return 0;
}

json_t *config_strv_to_json(char *const *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && v && v[i]; i++) {
        if (json_array_append_new(arr, json_string(v[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int config_strv_from_json(const char *field, json_t *arr, char ***out, struct config_error *err)
{
    char **v = NULL;
    size_t i;
    json_t *item;
    if (json_is_null(arr)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_array(arr)) {
        config_error_set(err, field, "must be an array of strings");
        return -EINVAL;
    }
    json_array_foreach(arr, i, item)
    {
        if (!json_is_string(item)) {
            config_error_set(err, field, "must be an array of strings");
            config_strv_free(v);
            return -EINVAL;
        }
        if (config_strv_push(&v, json_string_value(item)) < 0) {
            config_strv_free(v);
            return -ENOMEM;
        }
    }
    *out = v;
    return 0;
}

