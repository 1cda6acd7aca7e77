-- cityHash64(visitor_id) of the session, as hits.visitor_hash.
ALTER TABLE {db}.sessions
    ADD COLUMN IF NOT EXISTS visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id) AFTER visitor_id
