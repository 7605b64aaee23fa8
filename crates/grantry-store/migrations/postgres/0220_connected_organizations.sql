-- Connected organizations: external directories and domains whose users may request
-- access. The identity sources are in the body; `connected_organization_keys` holds the
-- domain names and tenant ids they match (lower case), one organization per key, so a
-- requestor's domain or tenant finds its organization with one indexed read.
CREATE TABLE connected_organizations (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_us   BIGINT NOT NULL,
    modified_us  BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE TABLE connected_organization_keys (
    key_lower       TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL
);
CREATE INDEX connected_organization_keys_org ON connected_organization_keys (organization_id);

-- Internal and external sponsors of a connected organization (users or groups), and the
-- sponsors of users (users or groups), as the $ref links Graph adds and removes.
CREATE TABLE sponsors (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_kind   TEXT NOT NULL,
    owner_id     TEXT NOT NULL,
    sponsor_id   TEXT NOT NULL,
    sponsor_type TEXT NOT NULL,
    UNIQUE (owner_kind, owner_id, sponsor_id)
);
CREATE INDEX sponsors_sponsor ON sponsors (sponsor_id);

-- Guests that entitlement management blocked when their last assignment ended, and when
-- they are due for deletion (NULL: blocked only).
CREATE TABLE guest_lifecycle (
    user_id       TEXT PRIMARY KEY,
    blocked_us    BIGINT NOT NULL,
    delete_due_us BIGINT
);
