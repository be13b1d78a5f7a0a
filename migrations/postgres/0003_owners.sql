-- Callers see only their own objects: the owner of each stored simulation and re-scoring run
-- is its caller's identity (`key:NAME`, `jwt:SUB`, `jwt:TENANT/SUB`, or `anonymous` without
-- authentication; never a secret). Rows stored before have none and are an admin's to read.
ALTER TABLE simulations ADD COLUMN owner TEXT;
ALTER TABLE rescore_runs ADD COLUMN owner TEXT;
CREATE INDEX simulations_owner ON simulations (owner, created_at);
