-- Sextant's tables (SQLite). Times are milliseconds since the Unix epoch (BIGINT), JSON
-- documents are TEXT, seeds are the u64 seed's bits as BIGINT: the same types as PostgreSQL's, so
-- one set of queries serves both.

-- The product's goals, with the market inputs needed to simulate them and their latest score.
CREATE TABLE goals (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id                  TEXT NOT NULL,
    name                     TEXT NOT NULL,
    category                 TEXT NOT NULL,
    priority                 TEXT NOT NULL,
    target_amount            DOUBLE PRECISION NOT NULL,
    target_date              TEXT NOT NULL,
    current_savings          DOUBLE PRECISION NOT NULL,
    monthly_contribution     DOUBLE PRECISION NOT NULL,
    contribution_growth      DOUBLE PRECISION NOT NULL DEFAULT 0,
    risk_tolerance           TEXT NOT NULL,
    success_threshold        DOUBLE PRECISION NOT NULL,
    expected_return          DOUBLE PRECISION NOT NULL,
    volatility               DOUBLE PRECISION NOT NULL,
    inflation                DOUBLE PRECISION NOT NULL,
    success_probability      DOUBLE PRECISION,
    required_monthly_savings DOUBLE PRECISION,
    funding_status           TEXT,
    scored_at                BIGINT,
    engine_version           TEXT,
    last_run_id              BIGINT,
    created_at               BIGINT NOT NULL
);
CREATE INDEX goals_category ON goals (category);
CREATE INDEX goals_user ON goals (user_id);

-- Simulations kept so they can be followed, served after a restart and replayed.
CREATE TABLE simulations (
    id             TEXT PRIMARY KEY,
    request        TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status         TEXT NOT NULL,
    progress       DOUBLE PRECISION NOT NULL,
    iterations     BIGINT NOT NULL,
    results        TEXT,
    error          TEXT,
    seed           BIGINT NOT NULL,
    backend        TEXT,
    engine_version TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    compute_ms     DOUBLE PRECISION
);
CREATE INDEX simulations_status ON simulations (status);

-- A re-scoring run: one per key, shared by every worker given that key.
CREATE TABLE rescore_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key        TEXT NOT NULL UNIQUE,
    filter         TEXT NOT NULL,
    paths          BIGINT NOT NULL,
    as_of          TEXT NOT NULL,
    status         TEXT NOT NULL,
    total_goals    BIGINT NOT NULL,
    shards         BIGINT NOT NULL,
    engine_version TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    finished_at    BIGINT
);

-- A run's goal-id ranges, leased to workers; `done` is the checkpoint, committed with the
-- shard's scores.
CREATE TABLE rescore_shards (
    run_id      BIGINT NOT NULL REFERENCES rescore_runs (id) ON DELETE CASCADE,
    shard       BIGINT NOT NULL,
    lo          BIGINT NOT NULL,
    hi          BIGINT NOT NULL,
    status      TEXT NOT NULL,
    owner       TEXT,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    goals       BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (run_id, shard)
);
CREATE INDEX rescore_shards_open ON rescore_shards (run_id, status, shard);

-- Each goal's score in each run: written once per (run, goal), with the shard's checkpoint.
CREATE TABLE rescore_scores (
    run_id                   BIGINT NOT NULL REFERENCES rescore_runs (id) ON DELETE CASCADE,
    goal_id                  BIGINT NOT NULL,
    success_probability      DOUBLE PRECISION,
    required_monthly_savings DOUBLE PRECISION,
    funding_status           TEXT NOT NULL,
    worker                   TEXT NOT NULL,
    PRIMARY KEY (run_id, goal_id)
);
