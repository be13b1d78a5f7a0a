-- Histories of monthly returns (docs/model.md §4.3) that bootstrap markets name: each caller's
-- own (`owner` as in 0003_owners), under a name unique to that owner. `document` is the
-- history's JSON ({"assets", "months"}); `assets`, `months` and `has_inflation` describe it
-- for listings without reading it. A stored history is never changed: a request that names it
-- always means the same data, so answers cached under the resolved request stay true.
CREATE TABLE histories (
    owner         TEXT NOT NULL,
    name          TEXT NOT NULL,
    assets        TEXT NOT NULL,
    months        BIGINT NOT NULL,
    has_inflation BIGINT NOT NULL,
    document      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);
