-- The UTC day of the hit (toDate(ts), the table's key expression), computed once when the
-- row is written: a report's date range then reads 2 bytes a row that compress to almost
-- nothing, instead of the 8-byte ts, and the key condition (indexHint) still skips the
-- granules outside the range. Not in SELECT *; rows written before this migration get it
-- computed on read until 0023 rewrites them.
ALTER TABLE {db}.hits
    ADD COLUMN IF NOT EXISTS day Date MATERIALIZED toDate(ts) AFTER ts
