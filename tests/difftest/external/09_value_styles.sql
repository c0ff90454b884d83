-- date/time values in every container, whatever the application's session and
-- walrev's environment (the CTest runs external.py, and so the worker, with
-- PGDATESTYLE='Postgres, MDY': libpq sends it after the options' -c switches)
SHOW IntervalStyle;  -- test_external_sql starts the session with sql_standard
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
CREATE TABLE styled (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz, iv interval,
                     r tsrange, dr daterange, arr timestamp[], ivs interval[]);
INSERT INTO styled VALUES
  (1, '2010-01-02', '2010-01-02 10:00', '2010-01-02 10:00+00', '1 year 2 mons 3 days 04:05:06',
   '[2010-01-02 10:00, 2010-01-02 11:00)', '[2010-01-02,2010-02-01)', '{2010-01-02 10:00,infinity}',
   '{"-1 day 02:00", "3 mons"}'),
  (2, 'infinity', '-infinity', 'infinity', '-178956970 years -8 mons', 'empty', '(,2010-01-02]', '{}', NULL);
SET DateStyle = 'German';
UPDATE styled SET d = d + 1, iv = iv * 2, ts = ts + '1 hour' WHERE id = 1;
CREATE TABLE styled_keyless (d date, r tsrange);
INSERT INTO styled_keyless VALUES ('2010-01-02', '[2010-01-02 10:00, 2010-01-02 11:00)'),
                                  ('2010-01-02', '[2010-01-02 10:00, 2010-01-02 11:00)');
RESET DateStyle;
RESET IntervalStyle;
