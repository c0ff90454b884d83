-- lagprobe.sql — scenario 3's poller, every 5 ms, with the server's clock:
-- the newest revision visible in the history store, and the server's WAL
-- flush and insert positions (bytes). The history session commits with
-- synchronous_commit = off, so a revision is durable once the flush position
-- passes where the WAL's insert position was when it was first seen
-- (bench/lib/lag.py matches each revision's commit_time to those polls).
SELECT extract(epoch FROM clock_timestamp()), coalesce(max(id), 0),
       pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0'), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')
FROM walrev.revision \watch 0.005
