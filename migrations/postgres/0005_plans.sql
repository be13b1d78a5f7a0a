-- Stored household plans (docs/model.md §5), scored by the nightly re-score beside the goals.
-- `request` is the plan request's JSON ({"plan", "market", "options"}); its ages and balances
-- are those of `as_of` (YYYY-MM-DD), and a run as of a later date ages the people by the whole
-- months between.
CREATE TABLE plans (
    id                   BIGSERIAL PRIMARY KEY,
    user_id              TEXT NOT NULL,
    name                 TEXT NOT NULL,
    request              TEXT NOT NULL,
    as_of                TEXT NOT NULL,
    success_probability  DOUBLE PRECISION,
    sustainable_spending DOUBLE PRECISION,
    funding_status       TEXT,
    scored_at            BIGINT,
    engine_version       TEXT,
    last_run_id          BIGINT,
    created_at           BIGINT NOT NULL
);
CREATE INDEX plans_user ON plans (user_id);

-- A run's shards are of goals or of plans (numbered after the goals'); rows before were goals.
ALTER TABLE rescore_shards ADD COLUMN kind TEXT NOT NULL DEFAULT 'goal';
ALTER TABLE rescore_runs ADD COLUMN total_plans BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rescore_runs ADD COLUMN plan_paths BIGINT NOT NULL DEFAULT 1000;

-- Each plan's score in each run, written with its shard's checkpoint.
CREATE TABLE rescore_plan_scores (
    run_id               BIGINT NOT NULL REFERENCES rescore_runs (id) ON DELETE CASCADE,
    plan_id              BIGINT NOT NULL,
    success_probability  DOUBLE PRECISION,
    sustainable_spending DOUBLE PRECISION,
    funding_status       TEXT NOT NULL,
    worker               TEXT NOT NULL,
    PRIMARY KEY (run_id, plan_id)
);
