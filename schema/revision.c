/*
 * revision.c — the one lookup on revision.h's data model that more than one
 * sink needs: a column's new value in an object delta, by name.
 */
#include "schema/revision.h"

#include <string.h>

const Value *revision_delta_new_value(const ObjectDelta *d, const char *name)
{
    for (uint16_t i = 0; i < d->nattrs; i++)
        for (uint16_t c = 0; c < d->relver->ncols; c++)
            if (d->relver->cols[c].col_id == d->attrs[i].col_id && strcmp(d->relver->cols[c].name, name) == 0)
                return d->attrs[i].new_value.data ? &d->attrs[i].new_value : NULL;
    return NULL;
}
