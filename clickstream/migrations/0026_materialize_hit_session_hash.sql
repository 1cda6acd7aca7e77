-- Store session_hash in the hits written before 0025 (a background mutation).
ALTER TABLE {db}.hits MATERIALIZE COLUMN session_hash
