-- CRM id merges: from_crm now belongs to into_crm (always the final target: chains are
-- flattened when written). Removed by writing is_deleted = 1 with a higher version.
CREATE TABLE IF NOT EXISTS {db}.crm_merges
(
    site LowCardinality(String),
    from_crm String,
    into_crm String,
    merged_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (site, from_crm)
