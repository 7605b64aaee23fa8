-- Applications as catalog resources. `app_roles` is the application's appRoles (a JSON
-- array of {id, value, displayName, description, allowedMemberTypes, isEnabled}), set
-- through POST/PATCH /applications; the Graph permissions of `roles` stay separate.
ALTER TABLE applications ADD COLUMN app_roles TEXT NOT NULL DEFAULT '[]';

-- Graph's appRoleAssignments of users to a service principal's app roles. Access package
-- delivery writes them: `granted` counts the active assignment resource roles that deliver
-- the row, which goes when the count reaches zero (as `group_links.granted`).
CREATE TABLE app_role_assignments (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    principal_id TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    app_role_id  TEXT NOT NULL,
    granted      BIGINT NOT NULL,
    created_us   BIGINT NOT NULL,
    UNIQUE (principal_id, resource_id, app_role_id)
);
CREATE INDEX app_role_assignments_resource ON app_role_assignments (resource_id, seq);
