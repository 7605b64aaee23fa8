-- Grantry schema, part 1: directory, catalogs, packages, policies, requests, assignments,
-- background work and the audit trail.
--
-- Every entity table has the same shape: `seq` (insertion order, used for keyset paging),
-- `id` (the Graph id), the columns that filters, joins and constraints need, and `body`
-- (the entity serialized as JSON). Timestamps in columns are microseconds since the Unix
-- epoch. Booleans are integers. This is the PostgreSQL version of the SQLite migration with
-- the same number: the same tables, columns, constraints and indexes, with `seq` an identity
-- column and every integer column BIGINT.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    upn_lower       TEXT NOT NULL UNIQUE,
    mail_lower      TEXT,
    display_name    TEXT NOT NULL,
    user_type       TEXT NOT NULL,
    account_enabled BIGINT NOT NULL,
    manager_id      TEXT,
    created_us      BIGINT NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX users_manager ON users (manager_id);
CREATE INDEX users_mail ON users (mail_lower);

CREATE TABLE groups (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    body         TEXT NOT NULL
);

-- Memberships and ownerships. `direct` is 1 when the link was made through the groups API
-- (it then survives the end of any assignment); `granted` counts the active assignment
-- resource roles that deliver it. A link exists while direct = 1 or granted > 0.
CREATE TABLE group_links (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id  TEXT NOT NULL,
    relation  TEXT NOT NULL,
    member_id TEXT NOT NULL,
    direct    BIGINT NOT NULL,
    granted   BIGINT NOT NULL,
    UNIQUE (group_id, relation, member_id)
);
CREATE INDEX group_links_member ON group_links (member_id, relation);

CREATE TABLE role_assignments (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 TEXT NOT NULL UNIQUE,
    provider           TEXT NOT NULL,
    principal_id       TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    scope              TEXT NOT NULL,
    created_us         BIGINT NOT NULL,
    body               TEXT NOT NULL,
    UNIQUE (provider, principal_id, role_definition_id, scope)
);
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);

CREATE TABLE catalogs (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    state        TEXT NOT NULL,
    catalog_type TEXT NOT NULL,
    unique_name  TEXT UNIQUE,
    created_us   BIGINT NOT NULL,
    modified_us  BIGINT NOT NULL,
    body         TEXT NOT NULL
);

CREATE TABLE resources (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    catalog_id    TEXT NOT NULL,
    origin_id     TEXT NOT NULL,
    origin_system TEXT NOT NULL,
    display_name  TEXT,
    created_us    BIGINT NOT NULL,
    body          TEXT NOT NULL,
    UNIQUE (catalog_id, origin_system, origin_id)
);
CREATE INDEX resources_origin ON resources (origin_system, origin_id);

CREATE TABLE resource_roles (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    resource_id   TEXT NOT NULL,
    catalog_id    TEXT NOT NULL,
    origin_id     TEXT NOT NULL,
    origin_system TEXT NOT NULL,
    display_name  TEXT,
    body          TEXT NOT NULL,
    UNIQUE (resource_id, origin_id)
);
CREATE INDEX resource_roles_catalog ON resource_roles (catalog_id);

CREATE TABLE resource_scopes (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    resource_id   TEXT NOT NULL,
    catalog_id    TEXT NOT NULL,
    origin_id     TEXT NOT NULL,
    origin_system TEXT NOT NULL,
    body          TEXT NOT NULL
);
CREATE INDEX resource_scopes_resource ON resource_scopes (resource_id);
CREATE INDEX resource_scopes_catalog ON resource_scopes (catalog_id);

CREATE TABLE resource_requests (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    catalog_id   TEXT NOT NULL,
    request_type TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX resource_requests_catalog ON resource_requests (catalog_id);

CREATE TABLE access_packages (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    catalog_id   TEXT NOT NULL,
    display_name TEXT NOT NULL,
    is_hidden    BIGINT NOT NULL,
    unique_name  TEXT UNIQUE,
    created_us   BIGINT NOT NULL,
    modified_us  BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX access_packages_catalog ON access_packages (catalog_id);

CREATE TABLE role_scopes (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    access_package_id TEXT NOT NULL,
    role_id           TEXT NOT NULL,
    scope_id          TEXT NOT NULL,
    created_us        BIGINT NOT NULL,
    body              TEXT NOT NULL,
    UNIQUE (access_package_id, role_id, scope_id)
);
CREATE INDEX role_scopes_role ON role_scopes (role_id);

CREATE TABLE incompatible_packages (
    access_package_id TEXT NOT NULL,
    other_id          TEXT NOT NULL,
    PRIMARY KEY (access_package_id, other_id)
);
CREATE INDEX incompatible_packages_other ON incompatible_packages (other_id);

CREATE TABLE incompatible_groups (
    access_package_id TEXT NOT NULL,
    group_id          TEXT NOT NULL,
    PRIMARY KEY (access_package_id, group_id)
);

CREATE TABLE policies (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    access_package_id    TEXT NOT NULL,
    catalog_id           TEXT NOT NULL,
    display_name         TEXT NOT NULL,
    allowed_target_scope TEXT NOT NULL,
    created_us           BIGINT NOT NULL,
    modified_us          BIGINT NOT NULL,
    body                 TEXT NOT NULL
);
CREATE INDEX policies_package ON policies (access_package_id);

CREATE TABLE subjects (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    object_id   TEXT UNIQUE,
    email_lower TEXT,
    created_us  BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX subjects_email ON subjects (email_lower);

-- `open_kind` is 'add' or 'update' while an add or update request is open, else NULL; the
-- partial unique index makes "one open add (or update) request per target and package" a
-- database rule, so concurrent duplicates cannot both be accepted.
CREATE TABLE requests (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    request_type         TEXT NOT NULL,
    state                TEXT NOT NULL,
    status               TEXT NOT NULL,
    access_package_id    TEXT NOT NULL,
    catalog_id           TEXT NOT NULL,
    policy_id            TEXT,
    assignment_id        TEXT,
    target_subject_id    TEXT NOT NULL,
    requestor_subject_id TEXT,
    created_by           TEXT NOT NULL,
    open_kind            TEXT,
    created_us           BIGINT NOT NULL,
    completed_us         BIGINT,
    body                 TEXT NOT NULL
);
CREATE UNIQUE INDEX requests_one_open ON requests (target_subject_id, access_package_id, open_kind)
    WHERE open_kind IS NOT NULL;
CREATE INDEX requests_package ON requests (access_package_id, seq);
CREATE INDEX requests_target ON requests (target_subject_id);
CREATE INDEX requests_requestor ON requests (requestor_subject_id);
CREATE INDEX requests_assignment ON requests (assignment_id);
CREATE INDEX requests_state ON requests (state, seq);
CREATE INDEX requests_catalog ON requests (catalog_id, seq);

-- `active` is 1 while the assignment grants (or is being delivered) access, else NULL: at
-- most one active assignment per target and package.
CREATE TABLE assignments (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    access_package_id TEXT NOT NULL,
    catalog_id        TEXT NOT NULL,
    policy_id         TEXT NOT NULL,
    target_subject_id TEXT NOT NULL,
    state             TEXT NOT NULL,
    status            TEXT NOT NULL,
    active            BIGINT,
    created_us        BIGINT NOT NULL,
    expired_us        BIGINT,
    body              TEXT NOT NULL
);
CREATE UNIQUE INDEX assignments_one_active ON assignments (target_subject_id, access_package_id)
    WHERE active = 1;
CREATE INDEX assignments_package ON assignments (access_package_id, seq);
CREATE INDEX assignments_target ON assignments (target_subject_id);
CREATE INDEX assignments_policy ON assignments (policy_id);
CREATE INDEX assignments_state ON assignments (state, seq);
CREATE INDEX assignments_catalog ON assignments (catalog_id, seq);

-- One delivered (or to-be-delivered) resource role of one assignment (beta
-- accessPackageAssignmentResourceRoles).
CREATE TABLE assignment_resource_roles (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    assignment_id     TEXT NOT NULL,
    access_package_id TEXT NOT NULL,
    subject_id        TEXT NOT NULL,
    role_id           TEXT NOT NULL,
    scope_id          TEXT NOT NULL,
    origin_system     TEXT NOT NULL,
    origin_id         TEXT NOT NULL,
    status            TEXT NOT NULL,
    body              TEXT NOT NULL
);
CREATE INDEX assignment_resource_roles_assignment ON assignment_resource_roles (assignment_id);
CREATE INDEX assignment_resource_roles_subject ON assignment_resource_roles (subject_id);

-- Durable background work: each row is an action due at `due_us`, written in the same
-- transaction as the change that causes it. See grantry-core's `jobs` module.
CREATE TABLE jobs (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    due_us         BIGINT NOT NULL,
    attempts       BIGINT NOT NULL,
    lease_until_us BIGINT,
    last_error     TEXT,
    payload        TEXT NOT NULL
);
CREATE INDEX jobs_due ON jobs (due_us);
CREATE INDEX jobs_entity ON jobs (entity_id);

CREATE TABLE audit_events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    at_us       BIGINT NOT NULL,
    actor_id    TEXT,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX audit_events_entity ON audit_events (entity_id, seq);

-- SQLite's json_extract(json, '$.a.b') for dotted paths, so portable SQL may read a text
-- property of a JSON body (e.g. a filter on a property that has no column). It returns
-- text: compare it with text only.
CREATE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT
    LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (doc::jsonb) #>> string_to_array(substr(path, 3), '.') $$;
