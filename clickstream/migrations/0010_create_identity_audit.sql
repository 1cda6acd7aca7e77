-- Every change to the identity graph (link, unlink, merge, undo, erase): who, when,
-- what, and the affected rows before and after (JSON). Append-only; undo reads it.
CREATE TABLE IF NOT EXISTS {db}.identity_audit
(
    change_id String,
    ts DateTime64(3, 'UTC'),
    site LowCardinality(String),
    actor String COMMENT 'cli:<user> or api:<token scope>:<token fingerprint>',
    action LowCardinality(String) COMMENT 'link, unlink, merge, undo, erase',
    visitor_id String,
    crm_id String,
    other_crm_id String COMMENT 'merge: the CRM id merged into; undo: empty',
    ref_change_id String COMMENT 'undo: the change it reverts',
    before String COMMENT 'JSON {"links": [[visitor, crm]], "merges": [[from, into]]}',
    after String
)
ENGINE = MergeTree
ORDER BY (site, ts, change_id)
