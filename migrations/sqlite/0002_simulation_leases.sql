-- Replicas share asynchronous simulations through the database: the replica that runs a job
-- holds a lease on it (its name and an expiry, in ms since the epoch), renewed while it runs;
-- another replica takes over a job whose lease expired. Rows stored before have no lease and
-- are taken by the first replica that looks.
ALTER TABLE simulations ADD COLUMN worker TEXT;
ALTER TABLE simulations ADD COLUMN lease_until BIGINT;
CREATE INDEX simulations_lease ON simulations (status, lease_until);
