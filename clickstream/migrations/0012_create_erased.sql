-- Erased people, so that a replay (Kafka, spool) does not bring their rows back. Only a
-- hash of site, kind and id is kept: sha256(site || '\x1f' || kind || '\x1f' || id).
CREATE TABLE IF NOT EXISTS {db}.erased
(
    id_hash String,
    kind LowCardinality(String) COMMENT 'visitor or crm',
    erased_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(erased_at)
ORDER BY id_hash
