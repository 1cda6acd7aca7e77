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

