-- Provisioning out over SCIM 2.0: a service principal whose app roles access packages
-- deliver may name a SCIM service provider (its base URL and bearer token) to which
-- Grantry pushes the users holding its roles. The token is kept as given, since every
-- push presents it; it is never rendered or logged. `role_delivery` is `groups` (each app
-- role is a group on the target, the user a member) or `roles` (the user's `roles`
-- attribute). `mappings` is a JSON object: SCIM attribute path -> user property.
CREATE TABLE provisioning_targets (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    sp_id         TEXT NOT NULL UNIQUE,
    base_url      TEXT NOT NULL,
    secret_token  TEXT NOT NULL,
    role_delivery TEXT NOT NULL,
    mappings      TEXT NOT NULL,
    created_us    INTEGER NOT NULL,
    updated_us    INTEGER NOT NULL
);
