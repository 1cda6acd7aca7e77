-- One row per session. Open sessions are written provisionally and rewritten with a
-- higher version as they grow and when they close; SELECT ... FROM sessions FINAL
-- returns exactly one row per session.
CREATE TABLE IF NOT EXISTS {db}.sessions
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
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(start_ts)
ORDER BY (site, toDate(start_ts), session_id)
