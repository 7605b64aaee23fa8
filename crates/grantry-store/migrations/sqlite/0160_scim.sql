-- SCIM 2.0 inbound provisioning. SCIM users and groups are the directory's own users and
-- groups; this table keeps what SCIM adds to them: the client's `externalId` and the time
-- of the last change made through SCIM (`meta.lastModified`). Rows go with their object.
CREATE TABLE scim_resources (
    id            TEXT PRIMARY KEY,
    resource_type TEXT NOT NULL,
    external_id   TEXT,
    modified_us   INTEGER NOT NULL
);
CREATE INDEX scim_resources_external ON scim_resources (resource_type, external_id);

-- Bearer tokens of SCIM clients (`grantry scim token create`), stored only as the SHA-256
-- of the token (256-bit random values, so a slow hash would add nothing).
CREATE TABLE scim_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    hint         TEXT NOT NULL,
    created_us   INTEGER NOT NULL
);
