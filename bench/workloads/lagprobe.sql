-- lagprobe.sql — scenario 3's poller: the newest revision visible (= durable,
-- synchronous_commit = on) in the history store, every 5 ms, with the
-- server's clock. bench/lib/stats.py matches each revision's commit_time to
-- the first poll that saw it.
SELECT extract(epoch FROM clock_timestamp()), coalesce(max(id), 0) FROM walrev.revision \watch 0.005
