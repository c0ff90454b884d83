/*
 * props.c — the name=value list of props.h: set-or-replace and free, so the
 * config and the Kafka sink do not each keep their own copy of the loops.
 */
#include "common/props.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"

void props_set(WrProp **props, int *n, const char *name, const char *value)
{
    for (int i = 0; i < *n; i++) {
        if (strcmp((*props)[i].name, name) == 0) {
            free((*props)[i].value);
            (*props)[i].value = xstrdup(value);
            return;
        }
    }
    *props = xrealloc(*props, (size_t)(*n + 1) * sizeof(**props));
    (*props)[*n] = (WrProp){xstrdup(name), xstrdup(value)};
    (*n)++;
}

void props_free(WrProp *props, int n)
{
    for (int i = 0; i < n; i++) {
        free(props[i].name);
        free(props[i].value);
    }
    free(props);
}
