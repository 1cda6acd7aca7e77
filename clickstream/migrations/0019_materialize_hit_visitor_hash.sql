-- Store visitor_hash in the hits written before 0017 (a background mutation).
ALTER TABLE {db}.hits MATERIALIZE COLUMN visitor_hash
