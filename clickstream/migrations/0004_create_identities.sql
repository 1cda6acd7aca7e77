-- visitor id <-> CRM id links; a CRM id may have many visitor ids (devices).
CREATE TABLE IF NOT EXISTS {db}.identities
(
    site LowCardinality(String),
    visitor_id String,
    crm_id String,
    first_ts DateTime64(3, 'UTC'),
    last_ts DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (site, visitor_id, crm_id)
