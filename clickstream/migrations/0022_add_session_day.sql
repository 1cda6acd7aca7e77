-- The UTC day the session started (toDate(start_ts), the table's key expression), as hits.day.
ALTER TABLE {db}.sessions
    ADD COLUMN IF NOT EXISTS day Date MATERIALIZED toDate(start_ts) AFTER start_ts
