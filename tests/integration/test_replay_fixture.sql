-- test_replay_fixture.sql — a small, hand-computed history written straight
-- into the history tables (schema walrev), so replay and audit can be tested
-- without the capture worker. Nine revisions over three tables: inserts,
-- updates, deletes, a re-insert, a truncate, a NULL, several actors in one
-- revision, keyframes at revision 4, and a relation version change of `note`
-- at revision 7 (body dropped and `content` added as a new col_id 4; flag
-- renamed to done keeping col_id 3). The live tables at the end (created by
-- the test) hold exactly the final state below.
--
-- Expected states (id: values):
--   rev 1  customer 1 Ann ann@x, 2 Bob bob@x      note 1 first t, 2 second f
--   rev 2  + orders 10 (c1 9.99 new), 11 (c2 5.00 new)
--   rev 3  customer 1 email ann@y; orders 10 status paid
--   rev 4  orders 11 amount 6.50 (system:billing); customer 2 name Robert (user:carol)
--          keyframes of all three tables
--   rev 5  orders 11 deleted; customer 3 Cy NULL
--   rev 6  note truncated; note 3 third t
--   rev 7  note v2: note 4 (done f, content fourth); note 3 done f
--          keyframe of note
--   rev 8  customer 1 Anna anna@z; orders 12 (c3 1.00 new); note 4 moved to key 5 (UPDATE of id)
--   rev 9  orders 10 shipped; customer 2 deleted; orders 11 re-inserted (c1 7.00 new);
--          note 4 inserted again (done t, content again)
-- Array conventions as the history sink writes them: old_values NULL for
-- inserts, new_values NULL for deletes, all arrays NULL for a truncate.

INSERT INTO walrev.relation_version
    (relid, version, nspname, relname, replident, valid_from, col_ids, col_names,
     col_type_oids, col_typmods, col_type_names, col_is_key, col_track) VALUES
 (90001, 1, 'public', 'customer', 'd', '0/1000', '{1,2,3}', '{id,name,email}',
  '{23,25,25}', '{-1,-1,-1}', '{NULL,NULL,NULL}', '{t,f,f}', '{f,f,f}'),
 (90002, 1, 'public', 'orders', 'd', '0/1000', '{1,2,3,4}', '{id,customer_id,amount,status}',
  '{23,23,1700,25}', '{-1,-1,655366,-1}', '{NULL,NULL,NULL,NULL}', '{t,f,f,f}', '{f,f,f,f}'),
 (90003, 1, 'public', 'note', 'd', '0/1000', '{1,2,3}', '{id,body,flag}',
  '{23,25,16}', '{-1,-1,-1}', '{NULL,NULL,NULL}', '{t,f,f}', '{f,f,f}'),
 (90003, 2, 'public', 'note', 'd', '0/7000', '{1,3,4}', '{id,done,content}',
  '{23,16,25}', '{-1,-1,-1}', '{NULL,NULL,NULL}', '{t,f,f}', '{f,f,f}');

-- revision i: commit_lsn 0/i000, end_lsn 0/i008, committed at 2026-11-20 10:0i:00+00
INSERT INTO walrev.revision
    (id, xid, commit_lsn, end_lsn, commit_time, actor_type, actor_id, description,
     n_insert, n_update, n_delete, n_truncate, checksum)
SELECT v.id, 700 + v.id, format('0/%s000', v.id)::pg_lsn, format('0/%s008', v.id)::pg_lsn,
       '2026-11-20 10:00:00+00'::timestamptz + v.id * interval '1 minute',
       v.at, v.ai, v.descr, v.ni, v.nu, v.nd, v.nt, '\x00'
FROM (VALUES
 (1, 'user', 'alice', 'seed customers', 4, 0, 0, 0),
 (2, 'user', 'bob', 'orders', 2, 0, 0, 0),
 (3, 'user', 'alice', 'pay order 10', 0, 2, 0, 0),
 (4, 'system', 'billing', 'billing run', 0, 2, 0, 0),
 (5, 'user', 'bob', 'cancel 11', 1, 0, 1, 0),
 (6, 'user', 'alice', 'reset notes', 1, 0, 0, 1),
 (7, 'user', 'dave', 'notes v2', 1, 1, 0, 0),
 (8, 'user', 'alice', 'rename Ann', 1, 2, 0, 0),
 (9, 'user', 'bob', 'ship and tidy', 2, 1, 1, 0)) AS v(id, at, ai, descr, ni, nu, nd, nt);

INSERT INTO walrev.revision_context (revision_id, context_no, lsn, actor_type, actor_id, description, raw)
SELECT r.id, 1, r.commit_lsn, r.actor_type, r.actor_id, r.description, '{}'
FROM walrev.revision r;
INSERT INTO walrev.revision_context (revision_id, context_no, lsn, actor_type, actor_id, description, raw)
VALUES (4, 2, '0/4000', 'user', 'carol', 'fix name', '{}');

INSERT INTO walrev.object_delta
    (revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values) VALUES
 (1, 1, 90001, 1, 'I', '["1"]', 1, '{1,2,3}', NULL, '{1,Ann,ann@x}'),
 (1, 2, 90001, 1, 'I', '["2"]', 1, '{1,2,3}', NULL, '{2,Bob,bob@x}'),
 (1, 3, 90003, 1, 'I', '["1"]', 1, '{1,2,3}', NULL, '{1,first,t}'),
 (1, 4, 90003, 1, 'I', '["2"]', 1, '{1,2,3}', NULL, '{2,second,f}'),
 (2, 1, 90002, 1, 'I', '["10"]', 1, '{1,2,3,4}', NULL, '{10,1,9.99,new}'),
 (2, 2, 90002, 1, 'I', '["11"]', 1, '{1,2,3,4}', NULL, '{11,2,5.00,new}'),
 (3, 1, 90001, 1, 'U', '["1"]', 1, '{3}', '{ann@x}', '{ann@y}'),
 (3, 2, 90002, 1, 'U', '["10"]', 1, '{4}', '{new}', '{paid}'),
 (4, 1, 90002, 1, 'U', '["11"]', 1, '{3}', '{5.00}', '{6.50}'),
 (4, 2, 90001, 1, 'U', '["2"]', 2, '{2}', '{Bob}', '{Robert}'),
 (5, 1, 90002, 1, 'D', '["11"]', 1, '{1,2,3,4}', '{11,2,6.50,new}', NULL),
 (5, 2, 90001, 1, 'I', '["3"]', 1, '{1,2,3}', NULL, '{3,Cy,NULL}'),
 (6, 1, 90003, 1, 'T', NULL, 1, NULL, NULL, NULL),
 (6, 2, 90003, 1, 'I', '["3"]', 1, '{1,2,3}', NULL, '{3,third,t}'),
 (7, 1, 90003, 2, 'I', '["4"]', 1, '{1,3,4}', NULL, '{4,f,fourth}'),
 (7, 2, 90003, 2, 'U', '["3"]', 1, '{3}', '{t}', '{f}'),
 (8, 1, 90001, 1, 'U', '["1"]', 1, '{2,3}', '{Ann,ann@y}', '{Anna,anna@z}'),
 (8, 2, 90002, 1, 'I', '["12"]', 1, '{1,2,3,4}', NULL, '{12,3,1.00,new}'),
 (8, 3, 90003, 2, 'U', '["5"]', 1, '{1}', '{4}', '{5}'),
 (9, 1, 90002, 1, 'U', '["10"]', 1, '{4}', '{paid}', '{shipped}'),
 (9, 2, 90001, 1, 'D', '["2"]', 1, '{1,2,3}', '{2,Robert,bob@x}', NULL),
 (9, 3, 90002, 1, 'I', '["11"]', 1, '{1,2,3,4}', NULL, '{11,1,7.00,new}'),
 (9, 4, 90003, 2, 'I', '["4"]', 1, '{1,3,4}', NULL, '{4,t,again}');

-- keyframes as the history sink takes them: the images after revision 4, and note after 7
INSERT INTO walrev.keyframe (id, relid, revision_id, n_rows) VALUES
 (1, 90001, 4, 2), (2, 90002, 4, 2), (3, 90003, 4, 2), (4, 90003, 7, 2);
INSERT INTO walrev.keyframe_row (keyframe_id, key, relversion, vals) VALUES
 (1, '["1"]', 1, '{1,Ann,ann@y}'), (1, '["2"]', 1, '{2,Robert,bob@x}'),
 (2, '["10"]', 1, '{10,1,9.99,paid}'), (2, '["11"]', 1, '{11,2,6.50,new}'),
 (3, '["1"]', 1, '{1,first,t}'), (3, '["2"]', 1, '{2,second,f}'),
 (4, '["3"]', 2, '{3,third,f,NULL}'), (4, '["4"]', 2, '{4,NULL,f,fourth}');

INSERT INTO walrev.tracked_table (relid, live_rows, deltas_since_keyframe, last_keyframe_id) VALUES
 (90001, 2, 3, 1), (90002, 3, 4, 2), (90003, 3, 2, 4);
INSERT INTO walrev.checkpoint (slot_name, end_lsn, revision_id, checksum) VALUES ('walrev', '0/9008', 9, '\x00');
-- Revision 9's contexts came through walrev.context() on the source: attested, with the session user.
UPDATE walrev.revision SET attested = true, db_session_user = 'app' WHERE id = 9;
UPDATE walrev.revision_context SET attested = true, db_session_user = 'app' WHERE revision_id = 9;
