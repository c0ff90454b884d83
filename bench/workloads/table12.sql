-- table12.sql — the 12-column mixed-type table of scenarios 1 and 6, and the
-- procedures that generate their WAL (each scenario has its own database).
-- Every generating statement changes exactly one row, so the number of row
-- changes in the WAL is exactly the number of statements run.
CREATE TABLE bench12 (
    id        bigint PRIMARY KEY,
    c_int     integer,
    c_text    text,
    c_varchar varchar(64),
    c_num     numeric(14,4),
    c_ts      timestamptz,
    c_bool    boolean,
    c_uuid    uuid,
    c_json    jsonb,
    c_date    date,
    c_float   float8,
    c_text2   text
);

-- g numbers the statements across every call, so no UPDATE ever sets the
-- value a row already has (walrev records no delta for an UPDATE that changes
-- nothing, and the scenario counts deltas).
CREATE SEQUENCE IF NOT EXISTS bench_g;

-- bench_mixed(n_tx, tx_size): n_tx transactions of tx_size row changes
-- each on bench12. Of every 5 changes: 2 inserts, 1 single-column update,
-- 1 four-column update (of a random live row), 1 delete (of the oldest row).
-- Live ids are always [lo, nxt), so every statement hits exactly one row.
-- Static SQL (cached plans): the generator must outrun every consumer.
CREATE OR REPLACE PROCEDURE bench_mixed(n_tx int, tx_size int)
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint; nxt bigint; g bigint; tgt bigint; r int;
BEGIN
    SELECT coalesce(min(id), 1), coalesce(max(id) + 1, 1) INTO lo, nxt FROM bench12;
    FOR t IN 1..n_tx LOOP
        FOR k IN 1..tx_size LOOP
            g := nextval('bench_g');
            r := (g % 5)::int;
            IF r < 2 OR nxt - lo < 100 THEN
                INSERT INTO bench12 VALUES (nxt, (nxt % 100000)::int, 'text ' || nxt, 'v' || (nxt % 977),
                    (nxt * 1.25)::numeric(14,4), clock_timestamp(), nxt % 2 = 0, gen_random_uuid(),
                    jsonb_build_object('g', nxt, 'tag', 'x' || (nxt % 13)),
                    DATE '2024-01-01' - (nxt % 3650)::int, nxt / 7.0, repeat('z', 20 + (nxt % 40)::int));
                nxt := nxt + 1;
            ELSIF r = 2 THEN
                tgt := lo + floor(random() * (nxt - lo))::bigint;
                UPDATE bench12 SET c_text = md5(g::text) WHERE id = tgt;
            ELSIF r = 3 THEN
                tgt := lo + floor(random() * (nxt - lo))::bigint;
                UPDATE bench12 SET c_int = c_int + 1, c_num = c_num + 1.5,
                    c_json = jsonb_build_object('g', g, 'k', 'v'), c_ts = clock_timestamp()
                WHERE id = tgt;
            ELSE
                DELETE FROM bench12 WHERE id = lo;
                lo := lo + 1;
            END IF;
        END LOOP;
        COMMIT;
    END LOOP;
END $$;

-- bench_fill(n): rows 1..n in one transaction (scenario 6's starting rows).
CREATE OR REPLACE PROCEDURE bench_fill(n int)
LANGUAGE sql AS $$
    INSERT INTO bench12 SELECT g, (g % 100000)::int, 'text ' || g, 'v' || (g % 977),
        (g * 1.25)::numeric(14,4), now(), g % 2 = 0, gen_random_uuid(),
        jsonb_build_object('g', g, 'tag', 'x' || (g % 13)), DATE '2024-01-01' - (g % 3650)::int,
        g / 7.0, repeat('z', 20 + (g % 40)::int) FROM generate_series(1, n) g;
$$;

-- bench_touch(n_rows, rounds): rounds × n_rows single-column updates (c_int),
-- one per transaction (scenario 6).
CREATE OR REPLACE PROCEDURE bench_touch(n_rows int, rounds int)
LANGUAGE plpgsql AS $$
BEGIN
    FOR r IN 1..rounds LOOP
        FOR i IN 1..n_rows LOOP
            UPDATE bench12 SET c_int = c_int + 1 WHERE id = i;
            COMMIT;
        END LOOP;
    END LOOP;
END $$;

-- bench_touch_tx(n_rows, rounds, per_tx): as bench_touch, per_tx updates per
-- transaction (scenario 6's 100-row transactions).
CREATE OR REPLACE PROCEDURE bench_touch_tx(n_rows int, rounds int, per_tx int)
LANGUAGE plpgsql AS $$
BEGIN
    FOR r IN 1..rounds LOOP
        FOR i IN 1..n_rows LOOP
            UPDATE bench12 SET c_int = c_int + 1 WHERE id = i;
            IF i % per_tx = 0 THEN COMMIT; END IF;
        END LOOP;
        COMMIT;
    END LOOP;
END $$;
