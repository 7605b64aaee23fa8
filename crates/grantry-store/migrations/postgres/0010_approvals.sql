-- Approvals: one row per request that needs approval (same id), its stages in `body`, and
-- one row per (approval, stage, approver) so "what waits for me" is an indexed lookup.

CREATE TABLE approvals (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    state      TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state, seq);

CREATE TABLE approval_approvers (
    approval_id TEXT NOT NULL,
    stage_index BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    escalation  BIGINT NOT NULL,
    PRIMARY KEY (approval_id, stage_index, user_id, escalation)
);
CREATE INDEX approval_approvers_user ON approval_approvers (user_id);
