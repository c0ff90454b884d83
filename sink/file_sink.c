/*
 * file_sink.c — writes revisions as a stream of msgpack messages (relation,
 * delta…, revision; docs/file-format.md) to a file or stdout. For a file, a
 * sidecar FILE.ckpt (replaced atomically at each flush) records the byte
 * offset and identity of the last durable revision; open() cuts the file back
 * to it, so a revision half-written before a crash never survives a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "schema/checksum.h"
#include "sink/revision_encoder.h"
#include "sink/sink.h"

#define CKPT_MAGIC "walrev-file-checkpoint 1"
#define FLUSH_BYTES (4u << 20)         /* ask for a flush after this much unflushed data */
#define FLUSH_AFTER_US INT64_C(100000) /* or after this long */

/* Where a revision ended in the file. */
typedef struct {
    uint64_t offset;
    Lsn end_lsn;
    int64_t revision_id;
    uint8_t checksum[WALREV_CHECKSUM_LEN];
} FilePoint;

typedef struct {
    uint32_t relid;
    int32_t version;
} RelKey;

typedef struct {
    char *path; /* NULL for stdout */
    char *ckpt_path;
    bool do_fsync;
    FILE *fp;
    int fd;
    uint64_t offset;     /* bytes in the file, including unflushed ones */
    uint64_t rev_start;  /* offset where the revision in flight began */
    FilePoint committed; /* last revision fully written (maybe not yet synced) */
    FilePoint durable;   /* last revision synced and checkpointed */
    int64_t pending_since_us;
    RevisionEncoder enc; /* the revision being written, the message to write, the sticky failure */
    RelKey *rels;        /* relation versions already in this file since open */
    size_t nrels, caprels;
} FileSink;

/* A failed write or fsync: every later call returns it (the file's end is no longer known). */
static WrStatus fail(FileSink *f, WrError *err, const char *what)
{
    revenc_fail(&f->enc, WR_FATAL, "file sink: %s %s: %s", what, f->path ? f->path : "stdout", strerror(errno));
    return revenc_check(&f->enc, err);
}

/* Append the message just encoded. */
static WrStatus write_msg(FileSink *f, WrError *err)
{
    const StrBuf *m = &f->enc.msg;
    if (m->len && fwrite(m->data, 1, m->len, f->fp) != m->len) return fail(f, err, "could not write to");
    f->offset += m->len;
    metrics_sink_add(METRICS_SINK_FILE, METRICS_SINK_BYTES, m->len);
    return WR_OK;
}

/* ---- the checkpoint file ---- */

static WrStatus fsync_dir(const char *path, WrError *err)
{
    char *copy = xstrdup(path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    WrStatus st = WR_OK;
    if (dfd < 0 || fsync(dfd) != 0)
        st = wr_error_set(err, WR_FATAL, "file sink: could not fsync the directory of %s: %s", path, strerror(errno));
    if (dfd >= 0) close(dfd);
    free(copy);
    return st;
}

static WrStatus ckpt_write(FileSink *f, const FilePoint *p, WrError *err)
{
    char hex[2 * WALREV_CHECKSUM_LEN + 1];
    checksum_to_hex(p->checksum, hex);
    StrBuf tmp;
    strbuf_init(&tmp);
    strbuf_appendf(&tmp, "%s.tmp", f->ckpt_path);
    WrStatus st = WR_OK;
    FILE *fp = fopen(tmp.data, "w");
    if (!fp) {
        st = wr_error_set(err, WR_FATAL, "file sink: could not create %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    fprintf(fp, "%s\noffset %" PRIu64 "\nend_lsn " LSN_FMT "\nrevision_id %" PRId64 "\nchecksum %s\n", CKPT_MAGIC,
            p->offset, LSN_ARGS(p->end_lsn), p->revision_id, hex);
    bool ok = fflush(fp) == 0 && (!f->do_fsync || fsync(fileno(fp)) == 0);
    ok = (fclose(fp) == 0) && ok;
    if (!ok) {
        st = wr_error_set(err, WR_FATAL, "file sink: could not write %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    if (rename(tmp.data, f->ckpt_path) != 0) {
        st = wr_error_set(err, WR_FATAL, "file sink: could not rename %s to %s: %s", tmp.data, f->ckpt_path,
                          strerror(errno));
        goto done;
    }
    if (f->do_fsync) st = fsync_dir(f->ckpt_path, err);
done:
    strbuf_free(&tmp);
    return st;
}

static bool parse_hex32(const char *s, uint8_t out[WALREV_CHECKSUM_LEN])
{
    if (strlen(s) != 2 * WALREV_CHECKSUM_LEN) return false;
    for (int i = 0; i < WALREV_CHECKSUM_LEN; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Read the checkpoint; *exists=false when there is none. */
static WrStatus ckpt_read(FileSink *f, FilePoint *p, bool *exists, WrError *err)
{
    *exists = false;
    memset(p, 0, sizeof *p);
    FILE *fp = fopen(f->ckpt_path, "r");
    if (!fp) {
        if (errno == ENOENT) return WR_OK;
        return wr_error_set(err, WR_FATAL, "file sink: could not open %s: %s", f->ckpt_path, strerror(errno));
    }
    char line[256];
    int lineno = 0, seen = 0;
    WrStatus st = WR_OK;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        char val[160];
        bool ok;
        if (lineno == 1)
            ok = strcmp(line, CKPT_MAGIC) == 0;
        else if (sscanf(line, "offset %" SCNu64, &p->offset) == 1)
            ok = true, seen |= 1;
        else if (sscanf(line, "end_lsn %150s", val) == 1)
            ok = lsn_parse(val, &p->end_lsn), seen |= 2;
        else if (sscanf(line, "revision_id %" SCNd64, &p->revision_id) == 1)
            ok = true, seen |= 4;
        else if (sscanf(line, "checksum %150s", val) == 1)
            ok = parse_hex32(val, p->checksum), seen |= 8;
        else
            ok = false;
        if (!ok) {
            st = wr_error_set(err, WR_FATAL, "file sink: %s:%d: not a walrev checkpoint line: \"%.80s\"", f->ckpt_path,
                              lineno, line);
            goto done;
        }
    }
    if (seen != 15) {
        st = wr_error_set(err, WR_FATAL, "file sink: %s: incomplete checkpoint (%d lines)", f->ckpt_path, lineno);
        goto done;
    }
    *exists = true;
done:
    fclose(fp);
    return st;
}

/* ---- SinkOps ---- */

static WrStatus fs_open(Sink *s, SinkPosition *pos, WrError *err)
{
    FileSink *f = s->impl;
    memset(pos, 0, sizeof *pos);
    if (!f->path) {
        f->fp = stdout;
        f->fd = STDOUT_FILENO;
        pos->known = false;
        log_info("msg=\"file sink opened\" path=-");
        return WR_OK;
    }
    FilePoint cp;
    bool exists;
    if (ckpt_read(f, &cp, &exists, err) != WR_OK) return err->status;
    int fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return wr_error_set(err, WR_FATAL, "file sink: could not open %s: %s", f->path, strerror(errno));
    struct stat stbuf;
    if (fstat(fd, &stbuf) != 0) {
        close(fd);
        return wr_error_set(err, WR_FATAL, "file sink: could not stat %s: %s", f->path, strerror(errno));
    }
    uint64_t size = (uint64_t)stbuf.st_size;
    if (!exists && size > 0) {
        close(fd);
        return wr_error_set(err, WR_FATAL,
                            "file sink: %s has %" PRIu64 " bytes but no checkpoint %s; refusing to overwrite a "
                            "file walrev did not write (move it away or restore its checkpoint)",
                            f->path, size, f->ckpt_path);
    }
    if (exists && size < cp.offset) {
        close(fd);
        return wr_error_set(err, WR_FATAL,
                            "file sink: %s has %" PRIu64 " bytes, fewer than the %" PRIu64
                            " its checkpoint says are durable; the file was truncated or replaced",
                            f->path, size, cp.offset);
    }
    if (size > cp.offset) {
        /* Bytes past the checkpoint were never made durable: a revision cut short by a crash. */
        if (ftruncate(fd, (off_t)cp.offset) != 0 || (f->do_fsync && fsync(fd) != 0)) {
            close(fd);
            return wr_error_set(err, WR_FATAL, "file sink: could not truncate %s to %" PRIu64 " bytes: %s", f->path,
                                cp.offset, strerror(errno));
        }
        log_warn("msg=\"file sink cut back an unfinished tail\" path=%s from=%" PRIu64 " to=%" PRIu64, f->path, size,
                 cp.offset);
    }
    if (lseek(fd, 0, SEEK_END) < 0 || !(f->fp = fdopen(fd, "a"))) {
        close(fd);
        return wr_error_set(err, WR_FATAL, "file sink: could not open %s for appending: %s", f->path, strerror(errno));
    }
    f->fd = fd;
    setvbuf(f->fp, NULL, _IOFBF, 1 << 20);
    f->durable = f->committed = cp;
    f->offset = f->rev_start = cp.offset;
    if (!exists) {
        /* A checkpoint from the first moment marks the file as ours (see the refusal above). */
        if (f->do_fsync && fsync_dir(f->path, err) != WR_OK) return err->status;
        if (ckpt_write(f, &cp, err) != WR_OK) return err->status;
    }
    pos->known = true;
    pos->durable_end_lsn = cp.end_lsn;
    pos->last_revision_id = cp.revision_id;
    memcpy(pos->last_checksum, cp.checksum, WALREV_CHECKSUM_LEN);
    log_info("msg=\"file sink opened\" path=%s offset=%" PRIu64 " end_lsn=" LSN_FMT " revision=%" PRId64, f->path,
             cp.offset, LSN_ARGS(cp.end_lsn), cp.revision_id);
    return WR_OK;
}

static bool rel_known(FileSink *f, const RelationVersion *rv)
{
    for (size_t i = f->nrels; i-- > 0;)
        if (f->rels[i].relid == rv->relid && f->rels[i].version == rv->version) return true;
    return false;
}

static WrStatus put_relation(FileSink *f, const RelationVersion *rv, WrError *err)
{
    revenc_encode_relation(&f->enc, rv);
    if (write_msg(f, err) != WR_OK) return err->status;
    if (f->nrels == f->caprels) {
        f->caprels = f->caprels ? 2 * f->caprels : 16;
        f->rels = xrealloc(f->rels, f->caprels * sizeof *f->rels);
    }
    f->rels[f->nrels++] = (RelKey){rv->relid, rv->version};
    return WR_OK;
}

static WrStatus fs_write_relation(Sink *s, const RelationVersion *rv, WrError *err)
{
    FileSink *f = s->impl;
    if (revenc_check(&f->enc, err) != WR_OK) return err->status;
    if (rel_known(f, rv)) return WR_OK;
    return put_relation(f, rv, err);
}

static WrStatus fs_begin_revision(Sink *s, const Revision *rev, WrError *err)
{
    FileSink *f = s->impl;
    if (revenc_begin(&f->enc, err) != WR_OK) return err->status;
    f->rev_start = f->offset;
    return WR_OK;
}

static WrStatus fs_write_context(Sink *s, const Revision *rev, const RevisionContext *ctx, WrError *err)
{
    FileSink *f = s->impl;
    return revenc_context(&f->enc, ctx, err);
}

static WrStatus fs_write_delta(Sink *s, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    FileSink *f = s->impl;
    if (revenc_check_delta(&f->enc, rev, d, err) != WR_OK) return err->status;
    /* Every delta's relation appears earlier in the file, even after a restart cut the file back. */
    if (!rel_known(f, d->relver) && put_relation(f, d->relver, err) != WR_OK) return err->status;
    revenc_encode_delta(&f->enc, rev, d);
    return write_msg(f, err);
}

static WrStatus fs_commit_revision(Sink *s, const Revision *rev, WrError *err)
{
    FileSink *f = s->impl;
    if (revenc_check(&f->enc, err) != WR_OK) return err->status;
    revenc_encode_revision(&f->enc, rev);
    if (write_msg(f, err) != WR_OK) return err->status;
    f->committed.offset = f->offset;
    f->committed.end_lsn = rev->end_lsn;
    f->committed.revision_id = rev->id;
    memcpy(f->committed.checksum, rev->checksum, WALREV_CHECKSUM_LEN);
    f->rev_start = f->offset;
    return WR_OK;
}

static WrStatus fs_flush(Sink *s, bool caught_up, WrError *err)
{
    (void)caught_up; /* a file is written (and fsynced when configured) the same either way */
    FileSink *f = s->impl;
    if (revenc_check(&f->enc, err) != WR_OK) return err->status;
    if (!f->fp) return wr_error_set(err, WR_FATAL, "file sink: flush before open");
    if (fflush(f->fp) != 0) return fail(f, err, "could not write to");
    if (f->path && f->do_fsync && fsync(f->fd) != 0) return fail(f, err, "could not fsync");
    if (f->path && f->committed.offset != f->durable.offset) {
        if (ckpt_write(f, &f->committed, err) != WR_OK) {
            revenc_fail(&f->enc, err->status, "%s", err->msg);
            return err->status;
        }
    }
    f->durable = f->committed;
    f->pending_since_us = 0;
    return WR_OK;
}

static WrStatus fs_poll(Sink *s, WrError *err)
{
    FileSink *f = s->impl;
    return revenc_check(&f->enc, err);
}

static Lsn fs_durable_lsn(Sink *s) { return ((FileSink *)s->impl)->durable.end_lsn; }

static bool fs_wants_flush(Sink *s, int64_t now_us, bool idle)
{
    (void)idle;
    FileSink *f = s->impl;
    if (f->committed.offset == f->durable.offset && f->committed.end_lsn == f->durable.end_lsn) return false;
    if (f->offset - f->durable.offset >= FLUSH_BYTES) return true;
    if (!f->pending_since_us) f->pending_since_us = now_us;
    return now_us - f->pending_since_us >= FLUSH_AFTER_US;
}

static void fs_abort(Sink *s)
{
    FileSink *f = s->impl;
    if (!f->fp) return;
    /* Drop the revision in flight from the file; committed revisions stay for the next flush. */
    if (f->path && f->offset != f->committed.offset) {
        if (fflush(f->fp) == 0 && ftruncate(f->fd, (off_t)f->committed.offset) == 0) {
            f->offset = f->committed.offset;
        } else {
            revenc_fail(&f->enc, WR_FATAL, "file sink: could not cut back %s after abort: %s", f->path,
                        strerror(errno));
        }
    }
    f->rev_start = f->offset;
}

static void fs_destroy(Sink *s)
{
    FileSink *f = s->impl;
    if (f->fp && f->fp != stdout)
        fclose(f->fp);
    else if (f->fp)
        fflush(f->fp);
    revenc_term(&f->enc);
    free(f->rels);
    free(f->path);
    free(f->ckpt_path);
    free(f);
    free(s);
}

static const SinkOps FILE_SINK_OPS = {
    .name = "file",
    .open = fs_open,
    .write_relation = fs_write_relation,
    .begin_revision = fs_begin_revision,
    .write_context = fs_write_context,
    .write_delta = fs_write_delta,
    .commit_revision = fs_commit_revision,
    .flush = fs_flush,
    .poll = fs_poll,
    .durable_lsn = fs_durable_lsn,
    .wants_flush = fs_wants_flush,
    .abort = fs_abort,
    .destroy = fs_destroy,
};

Sink *sink_file_create(const FileSinkConfig *cfg)
{
    FileSink *f = xcalloc(1, sizeof *f);
    if (cfg->path && strcmp(cfg->path, "-") != 0) {
        f->path = xstrdup(cfg->path);
        StrBuf b;
        strbuf_init(&b);
        strbuf_appendf(&b, "%s.ckpt", cfg->path);
        f->ckpt_path = b.data;
    }
    f->do_fsync = cfg->fsync;
    f->fd = -1;
    revenc_init(&f->enc, "file sink");
    Sink *s = xcalloc(1, sizeof *s);
    s->ops = &FILE_SINK_OPS;
    s->impl = f;
    return s;
}
