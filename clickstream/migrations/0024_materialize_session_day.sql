-- Store day in the sessions written before 0022 (a background mutation).
ALTER TABLE {db}.sessions MATERIALIZE COLUMN day
