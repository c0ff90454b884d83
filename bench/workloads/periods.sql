-- periods.sql — SQL:2011 SYSTEM VERSIONING with the periods extension
-- (Debian's postgresql-15-periods): a history table per versioned table,
-- filled by triggers. psql variable :tbls is a comma-separated table list.
CREATE EXTENSION IF NOT EXISTS periods CASCADE;
SELECT periods.add_system_time_period(t::regclass) FROM unnest(string_to_array(:'tbls', ',')) t;
SELECT periods.add_system_versioning(t::regclass) FROM unnest(string_to_array(:'tbls', ',')) t;
