-- Connected organizations and sponsors decide who may request (the connected-organization
-- scopes) and who approves (sponsors), so a change to them changes the evaluation token too.
CREATE TRIGGER connected_organizations_generation AFTER INSERT OR UPDATE OR DELETE ON connected_organizations FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER connected_organization_keys_generation AFTER INSERT OR UPDATE OR DELETE ON connected_organization_keys FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER sponsors_generation AFTER INSERT OR UPDATE OR DELETE ON sponsors FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
