-- Store visitor_hash in the sessions written before 0018 (a background mutation).
ALTER TABLE {db}.sessions MATERIALIZE COLUMN visitor_hash
