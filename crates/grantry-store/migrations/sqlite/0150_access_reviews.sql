-- Access reviews of access package assignments: one series (definition) per policy whose
-- review settings are on, its runs (instances) and their decision items. The entity is in
-- `body`; the columns are what lists, jobs and the reviewer lookups filter on.

CREATE TABLE review_definitions (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    policy_id  TEXT NOT NULL UNIQUE,
    catalog_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX review_definitions_catalog ON review_definitions (catalog_id);

CREATE TABLE review_instances (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    definition_id TEXT NOT NULL,
    catalog_id    TEXT NOT NULL,
    occurrence    INTEGER NOT NULL,
    status        TEXT NOT NULL,
    start_us      INTEGER NOT NULL,
    end_us        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    -- A run opens once, however often its job runs.
    UNIQUE (definition_id, occurrence)
);

CREATE TABLE review_decisions (
    seq           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    instance_id   TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    principal_id  TEXT NOT NULL,
    decision      TEXT NOT NULL,
    apply_result  TEXT NOT NULL,
    body          TEXT NOT NULL,
    UNIQUE (instance_id, assignment_id)
);

-- Who may decide which item, resolved when the run starts (filterByCurrentUser, PATCH).
CREATE TABLE review_decision_reviewers (
    decision_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    reviewer_id TEXT NOT NULL,
    PRIMARY KEY (decision_id, reviewer_id)
);
CREATE INDEX review_decision_reviewers_reviewer ON review_decision_reviewers (reviewer_id, instance_id);
