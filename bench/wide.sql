-- The wide reference table: one column (at least) of every type the PostgreSQL type mapping lists,
-- so that a slow conversion of any one type shows up in the benchmark.
-- Usage: psql -v rows=1000000 -f wide.sql   (rows defaults to 1,000,000)
-- Deterministic (setseed, values derived from the row number), NULLs in every nullable column,
-- long text partly stored out of line (TOAST). The last query prints the checksums a copy must
-- match: counts, NULL counts, sums of numbers and of epochs, and byte lengths of everything read
-- as text or binary (bench/data_refresh.py computes the same on the Parquet with DuckDB).
\if :{?rows}
\else
  \set rows 1000000
\endif
DROP TABLE IF EXISTS wide;
DROP TYPE IF EXISTS wide_mood;
CREATE TYPE wide_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE wide (
  id bigint PRIMARY KEY,
  small smallint,
  regular int,
  big bigint,
  real4 real,
  real8 double precision,
  price numeric(12,2),
  rate numeric(7,5),
  wide_num numeric(30,6),
  free numeric,
  flag boolean,
  at_tz timestamptz NOT NULL,
  at_naive timestamp,
  day date,
  clock time,
  span interval,
  uid uuid,
  doc jsonb,
  doc_json json,
  tags text[],
  ints int[],
  raw bytea,
  body text,
  status text NOT NULL,
  label varchar(40),
  code char(8),
  mood wide_mood,
  addr inet,
  cash money,
  clock_tz timetz,
  note text,
  ratio real,
  counter smallint
);
SELECT setseed(0.42);
INSERT INTO wide
SELECT g,
       CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 65536 - 32768)::smallint END,
       CASE WHEN g % 13 = 0 THEN NULL ELSE floor(random() * 4e9 - 2e9)::int END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE floor((random() - 0.5) * 9e18)::bigint END,
       CASE WHEN g % 19 = 0 THEN NULL ELSE (random() * 1000)::real END,
       CASE WHEN g % 23 = 0 THEN NULL ELSE random() * 1e6 - 5e5 END,
       CASE WHEN g % 29 = 0 THEN NULL ELSE round((random() * 2e6 - 1e6)::numeric, 2) END,
       CASE WHEN g % 31 = 0 THEN NULL ELSE round((random() * 99 - 49)::numeric, 5) END,
       CASE WHEN g % 37 = 0 THEN NULL
            ELSE round(((random() - 0.5) * 1e23)::numeric, 6) END,
       CASE WHEN g % 41 = 0 THEN NULL
            WHEN g % 3 = 0 THEN round((random() * 1e12)::numeric, 9)
            ELSE round((random() * 1000)::numeric, (g % 10)::int) END,
       CASE WHEN g % 43 = 0 THEN NULL ELSE random() < 0.5 END,
       timestamptz '2020-01-01 00:00:00+00' + random() * interval '1826 days',
       CASE WHEN g % 47 = 0 THEN NULL
            ELSE timestamp '1990-01-01' + random() * interval '20000 days' END,
       CASE WHEN g % 53 = 0 THEN NULL ELSE date '1900-01-01' + (random() * 80000)::int END,
       CASE WHEN g % 59 = 0 THEN NULL ELSE time '00:00' + random() * interval '24 hours' END,
       CASE WHEN g % 61 = 0 THEN NULL
            ELSE make_interval(0, (g % 14)::int, 0, (g % 30)::int, 0, 0, random() * 86400) END,
       CASE WHEN g % 67 = 0 THEN NULL ELSE md5(g::text)::uuid END,
       CASE WHEN g % 71 = 0 THEN NULL
            ELSE jsonb_build_object('id', g, 'name', 'Café "' || substr(md5(g::text), 1, 8) || '"',
                                    'tags', jsonb_build_array(g % 7, g % 5), 'score', random())
       END,
       CASE WHEN g % 73 = 0 THEN NULL
            ELSE json_build_object('k', g % 1000, 'ok', g % 2 = 0) END,
       CASE WHEN g % 79 = 0 THEN NULL
            ELSE ARRAY[substr(md5(g::text), 1, 6), 'a,b', E'q"\\x'] END,
       CASE WHEN g % 83 = 0 THEN NULL ELSE ARRAY[g % 100, g % 7, -(g % 3)] END,
       CASE WHEN g % 89 = 0 THEN NULL ELSE decode(md5(g::text) || md5((g + 1)::text), 'hex') END,
       CASE WHEN g % 97 = 0 THEN NULL
            WHEN g % 500 = 1 THEN repeat(md5(g::text) || E' é\n', 100 + (g % 50)::int)
            ELSE repeat(md5(g::text), 1 + (g % 8)::int) END,
       (ARRAY['new','paid','paid','paid','shipped','shipped','cancelled','refunded'])
           [1 + floor(random() * 8)::int],
       CASE WHEN g % 101 = 0 THEN NULL ELSE 'label ' || (g % 5000) END,
       CASE WHEN g % 103 = 0 THEN NULL ELSE substr(md5(g::text), 1, 1 + (g % 8)::int) END,
       CASE WHEN g % 107 = 0 THEN NULL
            ELSE (ARRAY['sad','ok','happy']::wide_mood[])[1 + (g % 3)::int] END,
       CASE WHEN g % 109 = 0 THEN NULL
            ELSE ('10.' || (g % 256) || '.' || (g / 256 % 256) || '.' || (g / 65536 % 256))::inet
       END,
       CASE WHEN g % 113 = 0 THEN NULL ELSE (round((random() * 1e5)::numeric, 2))::money END,
       CASE WHEN g % 127 = 0 THEN NULL
            ELSE (time '00:00' + random() * interval '24 hours')::timetz END,
       CASE WHEN random() < 0.5 THEN NULL ELSE 'note ' || g END,
       CASE WHEN g % 131 = 0 THEN NULL ELSE (g % 1000) / 8.0 END,
       CASE WHEN g % 137 = 0 THEN NULL ELSE (g % 100)::smallint END
FROM generate_series(1, :rows) g;
VACUUM (ANALYZE, FREEZE) wide;
SELECT count(*) AS rows, sum(small) AS small_sum, sum(regular) AS regular_sum,
       sum(big::numeric) AS big_sum, sum(real4::float8) AS real4_sum,
       sum(real8) AS real8_sum, sum(price) AS price_sum, sum(rate) AS rate_sum,
       sum(wide_num) AS wide_num_sum, sum(free) AS free_sum, count(*) FILTER (WHERE flag) AS flags,
       sum((extract(epoch FROM at_tz) * 1000000)::bigint) AS at_tz_us,
       sum((extract(epoch FROM at_naive) * 1000000)::bigint) AS at_naive_us,
       sum(day - date '1970-01-01') AS day_sum,
       sum((extract(epoch FROM clock) * 1000000)::bigint) AS clock_us,
       sum(octet_length(span::text)) AS span_bytes, sum(octet_length(uid::text)) AS uid_bytes,
       sum(octet_length(doc::text)) AS doc_bytes, sum(octet_length(doc_json::text)) AS json_bytes,
       sum(octet_length(tags::text)) AS tags_bytes, sum(octet_length(ints::text)) AS ints_bytes,
       sum(octet_length(raw)) AS raw_bytes, sum(octet_length(body)) AS body_bytes,
       sum(octet_length(status)) AS status_bytes, sum(octet_length(label)) AS label_bytes,
       sum(octet_length(code::text)) AS code_bytes, sum(octet_length(mood::text)) AS mood_bytes,
       sum(octet_length(addr::text)) AS addr_bytes, sum(octet_length(cash::text)) AS cash_bytes,
       sum(octet_length(clock_tz::text)) AS clock_tz_bytes, count(note) AS notes,
       sum(ratio::float8) AS ratio_sum, sum(counter) AS counter_sum
FROM wide;
