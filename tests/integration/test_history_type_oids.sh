#!/usr/bin/env bash
# A history store in another cluster than the source: the type OIDs a
# relation version records are the source's, and the same number names
# another type there (or none). A snapshot must never read a column as the
# history server's type of that OID: a column of a domain whose OID is an
# array domain on the history server failed every snapshot of its table
# ("malformed array literal"), found by tests/difftest/run --history-faults.
# Built-in types (OIDs below 10000) are the same on every server; others are
# named there by their recorded name, or travel as text.
source "$(dirname "$0")/lib.sh"
source_db typeoids typeoids
history_cluster
W() { "$WALREV_BIN" --source "$SRC" --history "$HIST" --slot "$SLOT" "$@"; }

q "$DB" "CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
         CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE t (id int PRIMARY KEY, p posint, m mood, n numeric(12,3), ts timestamptz)"

# On the history server, make the source's OIDs of posint and mood name
# array domains of its own, of timestamptz (which a snapshot prints again in
# the reader's zone: the value is cast to it): the next OID set just below
# them (pg_resetwal -o), then domains made until both are taken.
PO=$(q "$DB" "SELECT 'posint'::regtype::oid")
MO=$(q "$DB" "SELECT 'mood'::regtype::oid")
LO=$(( PO < MO ? PO : MO ))
HI=$(( PO > MO ? PO : MO ))
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" down "$HC" fast
PGBIN=$(dirname "$(command -v pg_resetwal 2>/dev/null || echo /usr/lib/postgresql/15/bin/pg_resetwal)")
for v in 15 16 17; do [ -x /usr/lib/postgresql/$v/bin/pg_resetwal ] && { PGBIN=/usr/lib/postgresql/$v/bin; break; }; done
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_owner "$PGBIN/pg_resetwal" -o "$LO" "$HC/data" >/dev/null
bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" up "$HC"
HQ "DO \$\$ DECLARE i int := 0; BEGIN
      WHILE (SELECT count(*) FROM pg_type WHERE oid IN ($PO, $MO)) < 2 LOOP
        i := i + 1;
        EXECUTE format('CREATE DOMAIN clash_%s AS timestamptz[]', i);
        EXIT WHEN i > $((HI - LO + 10));
      END LOOP; END \$\$"
expect_eq "the source's OIDs of posint and mood name other types on the history server" \
  "$(HQ "SELECT count(*) FROM pg_type WHERE oid IN ($PO, $MO) AND typname LIKE '%clash%'")" 2
# setup after the clashes: its history schema's own types, made first, could
# take one of those OIDs when the source's cluster is young (few OIDs used)
w_setup

q "$DB" "INSERT INTO t VALUES (1, 263131, 'happy', 1.5, '2024-01-02 03:04:05+00'), (2, 7, 'sad', NULL, NULL)"
NP=0; LSN=(); TABLES=t
point
q "$DB" "UPDATE t SET p = 8, m = 'happy' WHERE id = 2; DELETE FROM t WHERE id = 1"
point
run_to_now "$LOG" --source "$SRC" --history "$HIST" --slot "$SLOT"
expect_points_equal 2
