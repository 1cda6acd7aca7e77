-- Pages repeat: a site has thousands of distinct paths, not millions. LowCardinality
-- stores each column as a dictionary plus small indexes, so GROUP BY page, LIKE on path
-- and the transitions (prev_page, next_page) work on the dictionary, not on every row.
ALTER TABLE {db}.hits
    MODIFY COLUMN path LowCardinality(String),
    MODIFY COLUMN page LowCardinality(String) COMMENT 'path + query without tracking parameters; empty for non-page events',
    MODIFY COLUMN prev_page LowCardinality(String),
    MODIFY COLUMN next_page LowCardinality(String)
