/* sample_relations.c — see sample_relations.h. */
#include "tests/support/sample_relations.h"

#include "schema/tracking.h"

#include <string.h>

static RelColumn item_cols[] = {
    {.name = "id", .type_oid = 23, .typmod = -1, .is_key = true, .col_id = 1},
    {.name = "name", .type_oid = 25, .typmod = -1, .col_id = 2},
    {.name = "secret", .type_oid = 25, .typmod = -1, .col_id = 3, .track = TRACK_HIDDEN},
};
RelationVersion ts_items = {.relid = 16400,
                            .version = 1,
                            .nspname = "public",
                            .relname = "items",
                            .replident = 'd',
                            .ncols = 3,
                            .cols = item_cols};
static RelColumn order_cols[] = {
    {.name = "no", .type_oid = 20, .typmod = -1, .is_key = true, .col_id = 1},
    {.name = "total", .type_oid = 1700, .typmod = -1, .col_id = 2},
};
RelationVersion ts_orders = {.relid = 16500,
                             .version = 3,
                             .nspname = "sales",
                             .relname = "orders",
                             .replident = 'f',
                             .ncols = 2,
                             .cols = order_cols};

Revision ts_sample_revision(int64_t id)
{
    Revision r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.xid = (uint32_t)(1000 + id);
    r.commit_lsn = (Lsn)(0x1000000 + id * 0x100);
    r.end_lsn = r.commit_lsn + 0x30;
    r.commit_time = 700000000000000 + id;
    memset(r.parent_checksum, (int)((id - 1) & 0xff), WALREV_CHECKSUM_LEN);
    memset(r.checksum, (int)(id & 0xff), WALREV_CHECKSUM_LEN);
    return r;
}
