-- Grantry schema, part 2: resource role scope ids are `{roleId}_{scopeId}` as in Entra, so
-- two access packages that grant the same role and scope have role scopes with the same
-- id. The id is therefore unique per access package, not across the table.
-- (PostgreSQL version of the SQLite migration with the same number.)

CREATE TABLE role_scopes_v2 (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL,
    access_package_id TEXT NOT NULL,
    role_id           TEXT NOT NULL,
    scope_id          TEXT NOT NULL,
    created_us        BIGINT NOT NULL,
    body              TEXT NOT NULL,
    UNIQUE (access_package_id, id),
    UNIQUE (access_package_id, role_id, scope_id)
);
INSERT INTO role_scopes_v2 (seq, id, access_package_id, role_id, scope_id, created_us, body)
    OVERRIDING SYSTEM VALUE
    SELECT seq, id, access_package_id, role_id, scope_id, created_us, body FROM role_scopes;
SELECT setval(pg_get_serial_sequence('role_scopes_v2', 'seq'), COALESCE(MAX(seq), 0) + 1, false) FROM role_scopes_v2;
DROP TABLE role_scopes;
ALTER TABLE role_scopes_v2 RENAME TO role_scopes;
CREATE INDEX role_scopes_role ON role_scopes (role_id);
CREATE INDEX role_scopes_scope ON role_scopes (scope_id);
