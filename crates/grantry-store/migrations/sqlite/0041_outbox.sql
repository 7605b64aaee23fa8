-- The outbox: effects on other systems (custom extension callouts), each written in the
-- transaction of the change that causes it and delivered by a background sender (see
-- docs/architecture.md). `seq` orders messages with the same ordering key.

CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    ordering_key    TEXT NOT NULL,
    state           TEXT NOT NULL,
    next_attempt_us INTEGER NOT NULL,
    lease_until_us  INTEGER,
    created_us      INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_us);
CREATE INDEX outbox_key ON outbox (ordering_key, seq);
