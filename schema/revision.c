/*
 * revision.c — what more than one module does with revision.h's data model:
 * a column's new value in an object delta, by name (the sinks), a
 * revision's delta counts (the assembler, the sink tests' hand-made
 * revisions), and freeing a relation version held on the heap.
 */
#include "schema/revision.h"

#include <stdlib.h>
#include <string.h>

const Value *revision_delta_new_value(const ObjectDelta *d, const char *name)
{
    for (uint16_t i = 0; i < d->nattrs; i++)
        for (uint16_t c = 0; c < d->relver->ncols; c++)
            if (d->relver->cols[c].col_id == d->attrs[i].col_id && strcmp(d->relver->cols[c].name, name) == 0)
                return d->attrs[i].new_value.data ? &d->attrs[i].new_value : NULL;
    return NULL;
}

void revision_count_delta(Revision *rev, DeltaOp op)
{
    switch (op) {
    case DELTA_INSERT: rev->n_insert++; break;
    case DELTA_UPDATE: rev->n_update++; break;
    case DELTA_DELETE: rev->n_delete++; break;
    case DELTA_TRUNCATE: rev->n_truncate++; break;
    case DELTA_SNAPSHOT: rev->n_snapshot++; break;
    }
}

void relation_version_term(RelationVersion *rv)
{
    for (uint16_t i = 0; rv->cols && i < rv->ncols; i++) {
        free(rv->cols[i].name);
        free(rv->cols[i].type_name);
    }
    for (uint16_t i = 0; rv->gen && i < rv->ngen; i++) {
        free(rv->gen[i].name);
        free(rv->gen[i].type_name);
        free(rv->gen[i].expr);
    }
    free(rv->cols);
    free(rv->gen);
    free(rv->nspname);
    free(rv->relname);
    memset(rv, 0, sizeof(*rv));
}
