-- One row per accepted hit. Rows are rewritten (higher version) as the session around
-- them grows: seq, prev_page/next_page and the search/back-loop flags need the neighbours.
-- Query with FINAL for exact counts.
CREATE TABLE IF NOT EXISTS {db}.hits
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
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(ts)
ORDER BY (site, toDate(ts), visitor_id, ts, hit_id)
