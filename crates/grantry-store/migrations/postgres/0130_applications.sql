-- Applications registered with Grantry's token issuer (`grantry app create`): each has an
-- application object id, an appId (the OAuth client_id) and a service principal id, as in
-- Entra, and the Graph application permissions its tokens carry.
CREATE TABLE applications (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    app_id       TEXT NOT NULL UNIQUE,
    sp_id        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    -- JSON array of permission names.
    roles        TEXT NOT NULL,
    created_us   BIGINT NOT NULL
);

-- Client secrets, stored only as the SHA-256 of the secret (secrets are 256-bit random
-- values, so a slow password hash would add nothing).
CREATE TABLE application_secrets (
    key_id         TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    secret_sha256  TEXT NOT NULL,
    hint           TEXT NOT NULL,
    display_name   TEXT,
    created_us     BIGINT NOT NULL,
    expires_us     BIGINT
);
CREATE INDEX application_secrets_app ON application_secrets (application_id);
