/*
 * known_ids.c — the store's ids of revisions by (xid, commit LSN), read in
 * chunks of consecutive ids (known_ids.h).
 */
#include "sink/known_ids.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgio/pgio.h"
#include "schema/store_sql.h"

typedef struct {
    int64_t id;
    uint32_t xid;
    Lsn commit_lsn;
    uint8_t checksum[WALREV_CHECKSUM_LEN];
} KnownRev;

struct KnownIds {
    char *conninfo;
    char *qschema;
    PGconn *conn;
    /* rows[0] is the revision before the chunk (its checksum is the first one's parent) */
    KnownRev *rows;
    int nrows;
};

KnownIds *known_ids_create(const char *conninfo, const char *schema)
{
    KnownIds *k = xcalloc(1, sizeof *k);
    k->conninfo = xstrdup(conninfo);
    k->qschema = store_quote_ident(schema);
    k->rows = xcalloc(KNOWN_IDS_CHUNK + 1, sizeof *k->rows);
    return k;
}

void known_ids_destroy(KnownIds *k)
{
    if (!k) return;
    if (k->conn) PQfinish(k->conn);
    free(k->conninfo);
    free(k->qschema);
    free(k->rows);
    free(k);
}

static bool read_bytea(const char *text, uint8_t out[WALREV_CHECKSUM_LEN])
{
    if (strncmp(text, "\\x", 2) != 0 || strlen(text) != 2 + 2 * WALREV_CHECKSUM_LEN) return false;
    for (int i = 0; i < WALREV_CHECKSUM_LEN; i++)
        if (sscanf(text + 2 + 2 * i, "%2hhx", &out[i]) != 1) return false;
    return true;
}

/* The chunk of revisions from the first whose end LSN passes commit_lsn, and the one before it. */
static WrStatus load_chunk(KnownIds *k, Lsn commit_lsn, WrError *err)
{
    k->nrows = 0;
    if (!k->conn) {
        PgioConnect how = {.what = "history store (revision ids)", .app_name = "walrev", .bounded = true};
        WrStatus st = pgio_connect(k->conninfo, &how, &k->conn, err);
        if (st != WR_OK) return st;
    }
    char lsn[32], lim[16];
    snprintf(lsn, sizeof lsn, LSN_FMT, LSN_ARGS(commit_lsn));
    snprintf(lim, sizeof lim, "%d", KNOWN_IDS_CHUNK + 1);
    StrBuf q;
    strbuf_init(&q);
    /* end_lsn grows with id (BRIN): the first revision ending after the
     * commit is the one or before it; then consecutive ids by the key. */
    strbuf_appendf(&q,
                   "SELECT id, xid, commit_lsn::text, checksum FROM %s.revision WHERE id >= "
                   "(SELECT min(id) - 1 FROM %s.revision WHERE end_lsn > $1::pg_lsn) ORDER BY id LIMIT $2",
                   k->qschema, k->qschema);
    const char *params[2] = {lsn, lim};
    PGresult *r = NULL;
    WrStatus st = pgio_run(k->conn, q.data, 2, params, &r, err, "history store: reading revision ids");
    strbuf_free(&q);
    if (st != WR_OK) {
        if (PQstatus(k->conn) != CONNECTION_OK) {
            PQfinish(k->conn);
            k->conn = NULL;
        }
        return st;
    }
    for (int i = 0; i < PQntuples(r) && st == WR_OK; i++) {
        KnownRev *kr = &k->rows[k->nrows];
        char *end = NULL;
        kr->id = strtoll(PQgetvalue(r, i, 0), &end, 10);
        unsigned long long xid = strtoull(PQgetvalue(r, i, 1), NULL, 10);
        if (!end || *end || xid > UINT32_MAX || !lsn_parse(PQgetvalue(r, i, 2), &kr->commit_lsn) ||
            !read_bytea(PQgetvalue(r, i, 3), kr->checksum))
            st = wr_error_set(err, WR_FATAL,
                              "history store: revision %s does not read back (id, xid, commit_lsn, "
                              "checksum)",
                              PQgetvalue(r, i, 0));
        kr->xid = (uint32_t)xid;
        k->nrows++;
    }
    PQclear(r);
    return st;
}

static const KnownRev *find_in_chunk(const KnownIds *k, uint32_t xid, Lsn commit_lsn, int *at)
{
    for (int i = 0; i < k->nrows; i++)
        if (k->rows[i].xid == xid && k->rows[i].commit_lsn == commit_lsn) {
            *at = i;
            return &k->rows[i];
        }
    return NULL;
}

WrStatus known_ids_find(KnownIds *k, uint32_t xid, Lsn commit_lsn, int64_t *id, uint8_t parent[WALREV_CHECKSUM_LEN],
                        uint8_t checksum[WALREV_CHECKSUM_LEN], bool *found, WrError *err)
{
    *found = false;
    int at = -1;
    /* rows[0] only gives the parent of rows[1]: a match there needs the chunk before it */
    const KnownRev *kr = find_in_chunk(k, xid, commit_lsn, &at);
    if (!kr || at == 0) {
        WrStatus st = load_chunk(k, commit_lsn, err);
        if (st != WR_OK) return st;
        kr = find_in_chunk(k, xid, commit_lsn, &at);
        if (!kr) return WR_OK;
    }
    *id = kr->id;
    memcpy(checksum, kr->checksum, WALREV_CHECKSUM_LEN);
    if (at > 0 && k->rows[at - 1].id == kr->id - 1)
        memcpy(parent, k->rows[at - 1].checksum, WALREV_CHECKSUM_LEN);
    else if (kr->id == 1)
        memset(parent, 0, WALREV_CHECKSUM_LEN);
    else
        return wr_error_set(err, WR_FATAL,
                            "history store: revision %" PRId64 " has no revision %" PRId64
                            " before it: ids are not dense",
                            kr->id, kr->id - 1);
    *found = true;
    return WR_OK;
}
