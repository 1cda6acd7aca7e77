-- Per session: searches with a result opened, pogo-sticks, back-looping (>= 2 back-loops)
-- and hits reached with the browser's back/forward buttons (nav=back_forward).
ALTER TABLE {db}.sessions
    ADD COLUMN IF NOT EXISTS search_results_opened UInt32 AFTER searches,
    ADD COLUMN IF NOT EXISTS pogo_sticks UInt32 AFTER search_results_opened,
    ADD COLUMN IF NOT EXISTS is_back_looping UInt8 AFTER back_loop_paths,
    ADD COLUMN IF NOT EXISTS back_forward_navs UInt32 AFTER is_back_looping
