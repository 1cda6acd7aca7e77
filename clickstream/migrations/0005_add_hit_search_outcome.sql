-- Per search hit: a result was opened (the next page is not a search), and the visitor
-- came back to the same results page after it (pogo-sticking).
ALTER TABLE {db}.hits
    ADD COLUMN IF NOT EXISTS search_result_opened UInt8 AFTER is_dead_end_search,
    ADD COLUMN IF NOT EXISTS is_pogo_stick UInt8 AFTER search_result_opened
