-- A stored job computes a goal (docs/model.md §1) or a household plan (§5). Rows stored before
-- are goals. Each kind is read, listed and followed under its own routes (/v1/simulations,
-- /v1/plans), so one kind's id is never served as the other's.
ALTER TABLE simulations ADD COLUMN kind TEXT NOT NULL DEFAULT 'goal';
CREATE INDEX simulations_kind_owner ON simulations (kind, owner, created_at);
