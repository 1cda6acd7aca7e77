CREATE DATABASE IF NOT EXISTS clickstream ON CLUSTER analytics;

CREATE TABLE IF NOT EXISTS clickstream.schema_migrations ON CLUSTER analytics
(number UInt32, name String, applied_at DateTime DEFAULT now())
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/clickstream/schema_migrations', '{replica}')
ORDER BY number;

CREATE TABLE IF NOT EXISTS clickstream.hits_local ON CLUSTER analytics
(
    site LowCardinality(String),
    hit_id String,
    ts DateTime64(3, 'UTC'),
    received DateTime64(3, 'UTC'),
    visitor_id String,
    session_id String,
    crm_id String,
    event LowCardinality(String),
    url String,
    host LowCardinality(String),
    path String,
    query_string String,
    page String COMMENT 'path + query without tracking parameters; empty for non-page events',
    referrer String,
    title String,
    search_query String,
    search_results Nullable(Int32),
    is_dead_end_search UInt8,
    is_back_loop UInt8,
    is_quick_back UInt8,
    nav LowCardinality(String),
    seq UInt32 COMMENT 'position in session, from 1',
    prev_page String,
    next_page String,
    browser LowCardinality(String),
    browser_version LowCardinality(String),
    os LowCardinality(String),
    device_type LowCardinality(String),
    is_bot UInt8,
    country LowCardinality(String),
    region LowCardinality(String),
    city LowCardinality(String),
    channel LowCardinality(String),
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_term String,
    utm_content String,
    props Map(String, String),
    ip String COMMENT 'truncated per site policy',
    source LowCardinality(String),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/clickstream/hits_local', '{replica}', version, is_deleted)
PARTITION BY toYYYYMM(ts)
ORDER BY (site, toDate(ts), visitor_id, ts, hit_id);

CREATE TABLE IF NOT EXISTS clickstream.hits ON CLUSTER analytics AS clickstream.hits_local
ENGINE = Distributed(analytics, clickstream, hits_local, cityHash64(visitor_id));

CREATE TABLE IF NOT EXISTS clickstream.sessions_local ON CLUSTER analytics
(
    site LowCardinality(String),
    session_id String,
    visitor_id String,
    crm_id String,
    start_ts DateTime64(3, 'UTC'),
    end_ts DateTime64(3, 'UTC'),
    duration_s UInt32,
    hits UInt32,
    pageviews UInt32,
    events UInt32,
    entry_path String,
    exit_path String,
    paths Array(String),
    referrer String,
    channel LowCardinality(String),
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_term String,
    utm_content String,
    browser LowCardinality(String),
    os LowCardinality(String),
    device_type LowCardinality(String),
    country LowCardinality(String),
    is_bot UInt8,
    is_bounce UInt8,
    session_number UInt32,
    is_returning UInt8,
    searches UInt32,
    dead_end_searches UInt32,
    dead_end_terms Array(String),
    back_loops UInt32,
    quick_backs UInt32,
    back_loop_paths Array(String),
    revenue Float64,
    is_closed UInt8,
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/clickstream/sessions_local', '{replica}', version, is_deleted)
PARTITION BY toYYYYMM(start_ts)
ORDER BY (site, toDate(start_ts), session_id);

CREATE TABLE IF NOT EXISTS clickstream.sessions ON CLUSTER analytics AS clickstream.sessions_local
ENGINE = Distributed(analytics, clickstream, sessions_local, cityHash64(visitor_id));

CREATE TABLE IF NOT EXISTS clickstream.identities_local ON CLUSTER analytics
(
    site LowCardinality(String),
    visitor_id String,
    crm_id String,
    first_ts DateTime64(3, 'UTC'),
    last_ts DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/clickstream/identities_local', '{replica}', version, is_deleted)
ORDER BY (site, visitor_id, crm_id);

CREATE TABLE IF NOT EXISTS clickstream.identities ON CLUSTER analytics AS clickstream.identities_local
ENGINE = Distributed(analytics, clickstream, identities_local, cityHash64(visitor_id));

ALTER TABLE clickstream.hits_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS search_result_opened UInt8 AFTER is_dead_end_search,
    ADD COLUMN IF NOT EXISTS is_pogo_stick UInt8 AFTER search_result_opened;

ALTER TABLE clickstream.hits ON CLUSTER analytics ADD COLUMN IF NOT EXISTS search_result_opened UInt8 AFTER is_dead_end_search,
    ADD COLUMN IF NOT EXISTS is_pogo_stick UInt8 AFTER search_result_opened;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS uid String AFTER crm_id;

ALTER TABLE clickstream.hits ON CLUSTER analytics ADD COLUMN IF NOT EXISTS uid String AFTER crm_id;

ALTER TABLE clickstream.sessions_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS search_results_opened UInt32 AFTER searches,
    ADD COLUMN IF NOT EXISTS pogo_sticks UInt32 AFTER search_results_opened,
    ADD COLUMN IF NOT EXISTS is_back_looping UInt8 AFTER back_loop_paths,
    ADD COLUMN IF NOT EXISTS back_forward_navs UInt32 AFTER is_back_looping;

ALTER TABLE clickstream.sessions ON CLUSTER analytics ADD COLUMN IF NOT EXISTS search_results_opened UInt32 AFTER searches,
    ADD COLUMN IF NOT EXISTS pogo_sticks UInt32 AFTER search_results_opened,
    ADD COLUMN IF NOT EXISTS is_back_looping UInt8 AFTER back_loop_paths,
    ADD COLUMN IF NOT EXISTS back_forward_navs UInt32 AFTER is_back_looping;

CREATE TABLE IF NOT EXISTS clickstream.identity_audit_local ON CLUSTER analytics
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/clickstream/identity_audit_local', '{replica}')
ORDER BY (site, ts, change_id);

CREATE TABLE IF NOT EXISTS clickstream.identity_audit ON CLUSTER analytics AS clickstream.identity_audit_local
ENGINE = Distributed(analytics, clickstream, identity_audit_local, cityHash64(visitor_id));

CREATE TABLE IF NOT EXISTS clickstream.crm_merges_local ON CLUSTER analytics
(
    site LowCardinality(String),
    from_crm String,
    into_crm String,
    merged_at DateTime64(3, 'UTC'),
    version UInt64,
    is_deleted UInt8
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/clickstream/crm_merges_local', '{replica}', version, is_deleted)
ORDER BY (site, from_crm);

CREATE TABLE IF NOT EXISTS clickstream.crm_merges ON CLUSTER analytics AS clickstream.crm_merges_local
ENGINE = Distributed(analytics, clickstream, crm_merges_local, cityHash64(from_crm));

CREATE TABLE IF NOT EXISTS clickstream.erased_local ON CLUSTER analytics
(
    id_hash String,
    kind LowCardinality(String) COMMENT 'visitor or crm',
    erased_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/clickstream/erased_local', '{replica}', erased_at)
ORDER BY id_hash;

CREATE TABLE IF NOT EXISTS clickstream.erased ON CLUSTER analytics AS clickstream.erased_local
ENGINE = Distributed(analytics, clickstream, erased_local, cityHash64(id_hash));

CREATE VIEW IF NOT EXISTS clickstream.resolved_identities ON CLUSTER analytics AS
SELECT
    i.site AS site,
    i.visitor_id AS visitor_id,
    i.crm_id AS linked_crm_id,
    if(m.m_into != '', m.m_into, i.crm_id) AS crm_id
FROM
(
    SELECT site, visitor_id, argMax(crm_id, (last_ts, version)) AS crm_id
    FROM clickstream.identities FINAL
    GROUP BY site, visitor_id
) AS i
GLOBAL LEFT JOIN
(
    SELECT site AS m_site, from_crm AS m_from, into_crm AS m_into FROM clickstream.crm_merges FINAL
) AS m ON i.site = m.m_site AND i.crm_id = m.m_from
SETTINGS join_use_nulls = 0;

CREATE VIEW IF NOT EXISTS clickstream.resolved_sessions ON CLUSTER analytics AS
SELECT
    s.* EXCEPT (crm_id),
    s.crm_id AS session_crm_id,
    multiIf(r.r_crm != '', r.r_crm, m.m_into != '', m.m_into, s.crm_id) AS crm_id
FROM clickstream.sessions AS s FINAL
GLOBAL LEFT JOIN
(
    SELECT site AS r_site, visitor_id AS r_visitor, crm_id AS r_crm FROM clickstream.resolved_identities
) AS r ON s.site = r.r_site AND s.visitor_id = r.r_visitor
GLOBAL LEFT JOIN
(
    SELECT site AS m_site, from_crm AS m_from, into_crm AS m_into FROM clickstream.crm_merges FINAL
) AS m ON s.site = m.m_site AND s.crm_id = m.m_from
SETTINGS join_use_nulls = 0;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics MODIFY COLUMN path LowCardinality(String),
    MODIFY COLUMN page LowCardinality(String) COMMENT 'path + query without tracking parameters; empty for non-page events',
    MODIFY COLUMN prev_page LowCardinality(String),
    MODIFY COLUMN next_page LowCardinality(String);

ALTER TABLE clickstream.hits ON CLUSTER analytics MODIFY COLUMN path LowCardinality(String),
    MODIFY COLUMN page LowCardinality(String) COMMENT 'path + query without tracking parameters; empty for non-page events',
    MODIFY COLUMN prev_page LowCardinality(String),
    MODIFY COLUMN next_page LowCardinality(String);

ALTER TABLE clickstream.sessions_local ON CLUSTER analytics MODIFY COLUMN entry_path LowCardinality(String),
    MODIFY COLUMN exit_path LowCardinality(String),
    MODIFY COLUMN paths Array(LowCardinality(String));

ALTER TABLE clickstream.sessions ON CLUSTER analytics MODIFY COLUMN entry_path LowCardinality(String),
    MODIFY COLUMN exit_path LowCardinality(String),
    MODIFY COLUMN paths Array(LowCardinality(String));

ALTER TABLE clickstream.hits_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id) AFTER visitor_id;

ALTER TABLE clickstream.hits ON CLUSTER analytics ADD COLUMN IF NOT EXISTS visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id) AFTER visitor_id;

ALTER TABLE clickstream.sessions_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id) AFTER visitor_id;

ALTER TABLE clickstream.sessions ON CLUSTER analytics ADD COLUMN IF NOT EXISTS visitor_hash UInt64 MATERIALIZED cityHash64(visitor_id) AFTER visitor_id;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics MATERIALIZE COLUMN visitor_hash;

ALTER TABLE clickstream.sessions_local ON CLUSTER analytics MATERIALIZE COLUMN visitor_hash;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS day Date MATERIALIZED toDate(ts) AFTER ts;

ALTER TABLE clickstream.hits ON CLUSTER analytics ADD COLUMN IF NOT EXISTS day Date MATERIALIZED toDate(ts) AFTER ts;

ALTER TABLE clickstream.sessions_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS day Date MATERIALIZED toDate(start_ts) AFTER start_ts;

ALTER TABLE clickstream.sessions ON CLUSTER analytics ADD COLUMN IF NOT EXISTS day Date MATERIALIZED toDate(start_ts) AFTER start_ts;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics MATERIALIZE COLUMN day;

ALTER TABLE clickstream.sessions_local ON CLUSTER analytics MATERIALIZE COLUMN day;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics ADD COLUMN IF NOT EXISTS session_hash UInt64 MATERIALIZED cityHash64(session_id) AFTER session_id;

ALTER TABLE clickstream.hits ON CLUSTER analytics ADD COLUMN IF NOT EXISTS session_hash UInt64 MATERIALIZED cityHash64(session_id) AFTER session_id;

ALTER TABLE clickstream.hits_local ON CLUSTER analytics MATERIALIZE COLUMN session_hash;

