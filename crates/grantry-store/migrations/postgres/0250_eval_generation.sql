-- A token that changes whenever anything a new request's evaluation reads changes: users,
-- catalogs, access packages, policies, their incompatibilities, subjects (updated or
-- deleted) and webhook subscriptions. A request is evaluated on a read first; when the
-- writer finds the same token, the evaluation still holds and is not repeated. The token is
-- a random number rather than a counter, so a change undone by a rollback can never be
-- mistaken for the state before it. The row is created by the first change.
CREATE TABLE eval_generation (
    id    BIGINT PRIMARY KEY,
    token BIGINT NOT NULL
);
CREATE FUNCTION grantry_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, (random() * 9.2e18)::bigint)
        ON CONFLICT (id) DO UPDATE SET token = excluded.token;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_generation AFTER INSERT OR UPDATE OR DELETE ON users FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER catalogs_generation AFTER INSERT OR UPDATE OR DELETE ON catalogs FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER access_packages_generation AFTER INSERT OR UPDATE OR DELETE ON access_packages FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER policies_generation AFTER INSERT OR UPDATE OR DELETE ON policies FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER incompatible_packages_generation AFTER INSERT OR UPDATE OR DELETE ON incompatible_packages FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER incompatible_groups_generation AFTER INSERT OR UPDATE OR DELETE ON incompatible_groups FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER webhook_subscriptions_generation AFTER INSERT OR UPDATE OR DELETE ON webhook_subscriptions FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
CREATE TRIGGER subjects_generation AFTER UPDATE OR DELETE ON subjects FOR EACH STATEMENT EXECUTE FUNCTION grantry_bump_generation();
