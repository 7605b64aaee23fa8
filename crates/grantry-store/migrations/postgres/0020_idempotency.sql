-- Idempotent retries: the response to a successful POST that carried `client-request-id`,
-- remembered for 24 hours per (principal, client-request-id, method, path), so a client
-- that resends the same POST gets the same answer instead of a second entity. Written in
-- the same transaction as the creation where the use case supports it.

CREATE TABLE idempotency_keys (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal_id      TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    body_hash         TEXT NOT NULL,
    status            BIGINT NOT NULL,
    response          TEXT NOT NULL,
    created_us        BIGINT NOT NULL,
    UNIQUE (principal_id, client_request_id, method, path)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
