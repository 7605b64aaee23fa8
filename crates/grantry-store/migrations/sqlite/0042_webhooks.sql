-- Event webhook subscriptions (beyond Entra): where lifecycle events are delivered through
-- the outbox. The signing secret lives in the body; it is shown once, at creation.

CREATE TABLE webhook_subscriptions (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    url        TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    body       TEXT NOT NULL
);
