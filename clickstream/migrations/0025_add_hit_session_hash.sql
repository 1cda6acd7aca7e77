-- cityHash64(session_id) of the hit, computed when the row is written (a rewrite that moves
-- the hit to another session writes a new row, so a new hash): counting or grouping
-- sessions over hits then reads 8 bytes a row instead of copying the id string of every
-- row of the range through FINAL. Not in SELECT *; rows written before this migration get
-- it computed on read until 0026 rewrites them.
ALTER TABLE {db}.hits
    ADD COLUMN IF NOT EXISTS session_hash UInt64 MATERIALIZED cityHash64(session_id) AFTER session_id
