-- Store day in the hits written before 0021 (a background mutation).
ALTER TABLE {db}.hits MATERIALIZE COLUMN day
