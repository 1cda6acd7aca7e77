-- cityHash64(visitor_id), computed once when the row is written (the cluster's sharding
-- key too): reports count and group visitors on 8 bytes instead of reading and hashing
-- the id string on every query. Not in SELECT *; rows written before this migration get it
-- computed on read until 0019 rewrites them.
ALTER TABLE {db}.hits
    ADD COLUMN IF NOT EXISTS visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id) AFTER visitor_id
