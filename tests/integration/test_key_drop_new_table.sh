#!/usr/bin/env bash
# A table created after setup (in a schema of its own made after setup too,
# or in public), written, its key dropped and then ANALYZE or VACUUM, all
# before the worker decoded the table's first change (issue 13, difftest seed
# 13: s_mid.ki_25, made with its schema mid-run, its primary key dropped
# while the worker lagged; the snapshot kept the row an UPDATE before the
# drop changed, next to the changed one). With no index left, VACUUM and
# ANALYZE clear pg_class.relhasindex in place, and the walsender marks no
# key in the table's first Relation message, of a transaction that ran while
# the key was there. The keep-the-key rule (test_key_drop_analyze,
# test_replident_index_drop) holds such a message to the table's version;
# a table the worker has no version of yet has none, and its first version
# was made keyless from the start: its rows keyless, and an UPDATE by key
# before the drop (whose message carries no old key) a second row. The
# CREATE TABLE's (or a later ALTER's) DDL capture row, in WAL order before
# that message, says the key: it stands in for the version.
source "$(dirname "$0")/lib.sh"
source_db key_drop_new_table keydropnew
# replica identity and key of each relation version of table $1, in order
# ("d{t,f} d{f,f}"): a table made after setup has its first at its CREATE
# TABLE, one per DDL capture row of its transaction
shapes() {
  local t=$1
  case $t in *.*) ;; *) t=public.$t ;; esac
  q "$DB" "$H SELECT string_agg(v.replident::text || v.col_is_key::text, ' ' ORDER BY v.version) FROM relation_version v
            WHERE v.relid = '$t'::regclass"
}

q $DB "CREATE TABLE seed (id int PRIMARY KEY); INSERT INTO seed VALUES (1)"
w_setup
points_from s_new.k n u f                                                        # 0
# As difftest seed 13 did: the schema and the table in one transaction, with rows.
q $DB "BEGIN; CREATE SCHEMA s_new;
       CREATE TABLE s_new.k (id int, v text, PRIMARY KEY (id));
       INSERT INTO s_new.k VALUES (1, 'a'), (2, 'b'), (3, 'c'); COMMIT"; point   # 1
q $DB "BEGIN; UPDATE s_new.k SET v = 'b2' WHERE id = 2; DELETE FROM s_new.k WHERE id = 3;
       ALTER TABLE s_new.k DROP CONSTRAINT k_pkey; COMMIT"; point                  # 2
q $DB "VACUUM s_new.k"
q $DB "INSERT INTO s_new.k VALUES (1, 'dup')"; point                            # 3: keyless now: id 1 twice
# In public, created and written in transactions of their own; one under
# USING INDEX (its index dropped: no ALTER TABLE), one under FULL.
q $DB "CREATE TABLE n (id int PRIMARY KEY, v text)"
q $DB "INSERT INTO n VALUES (1, 'a'), (2, 'b')"
q $DB "UPDATE n SET v = 'b2' WHERE id = 2"; point                                # 4
q $DB "BEGIN; UPDATE n SET v = 'a2' WHERE id = 1; ALTER TABLE n DROP CONSTRAINT n_pkey; COMMIT"
q $DB "CREATE TABLE u (id int NOT NULL, v text); CREATE UNIQUE INDEX u_id ON u (id);
       ALTER TABLE u REPLICA IDENTITY USING INDEX u_id"
q $DB "INSERT INTO u VALUES (1, 'a'), (2, 'b')"
q $DB "BEGIN; UPDATE u SET v = 'b2' WHERE id = 2; DROP INDEX u_id; COMMIT"
q $DB "CREATE TABLE f (id int PRIMARY KEY, v text); ALTER TABLE f REPLICA IDENTITY FULL;
       INSERT INTO f VALUES (1, 'a'), (2, 'b')"
q $DB "BEGIN; UPDATE f SET v = 'b2' WHERE id = 2; ALTER TABLE f DROP CONSTRAINT f_pkey; COMMIT"
q $DB "ANALYZE n"; q $DB "VACUUM u"; q $DB "ANALYZE f"
expect_eq "ANALYZE and VACUUM cleared relhasindex in place (what the walsender then reads)" \
  "$(q $DB "SELECT string_agg(relhasindex::text, ' ' ORDER BY relname) FROM pg_class
            WHERE oid IN ('s_new.k'::regclass, 'n'::regclass, 'u'::regclass, 'f'::regclass)")" "false false false false"
q $DB "INSERT INTO n VALUES (1, 'dup'); INSERT INTO u VALUES (2, 'dup'); INSERT INTO f VALUES (1, 'dup')"
point                                                                            # 5
# The worker decodes all of it only now, its walsender after the VACUUM and ANALYZE.
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_points_equal 9
# u is keyless for a moment of its creation's transaction (DEFAULT without a
# primary key), f keyed by its primary key under DEFAULT, then under FULL
expect_eq "n: keyed from its creation, keyless from the drop" "$(shapes n)" "d{t,f} d{f,f}"
expect_eq "u: keyed by its index from its creation, keyless from the index's drop" "$(shapes u)" "d{f,f} i{t,f} i{f,f}"
expect_eq "f: keyed from its creation, keyless from the drop" "$(shapes f)" "d{t,f} f{t,f} f{f,f}"
expect_eq "s_new.k: keyed from its creation, keyless from the drop" "$(shapes s_new.k)" "d{t,f} d{f,f}"
expect_verify "verify passes"
