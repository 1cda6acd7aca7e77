-- The session's pages as LowCardinality, like hits.page: entry and exit pages and the
-- path sequences group on dictionary indexes.
ALTER TABLE {db}.sessions
    MODIFY COLUMN entry_path LowCardinality(String),
    MODIFY COLUMN exit_path LowCardinality(String),
    MODIFY COLUMN paths Array(LowCardinality(String))
