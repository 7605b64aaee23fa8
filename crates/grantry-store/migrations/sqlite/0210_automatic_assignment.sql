-- Automatic assignment policies (a membership rule in specificAllowedTargets and
-- automaticRequestSettings.requestAccessForAllowedTargets): one row per such policy, kept
-- in the policy's write transaction, so a change to a user looks at these few policies
-- instead of every policy's body.
CREATE TABLE auto_policies (
    policy_id         TEXT PRIMARY KEY,
    access_package_id TEXT NOT NULL
);
CREATE INDEX auto_policies_package ON auto_policies (access_package_id);
CREATE INDEX jobs_kind_entity ON jobs (kind, entity_id);
