-- A token that changes whenever anything a new request's evaluation reads changes: users,
-- catalogs, access packages, policies, their incompatibilities, subjects (updated or
-- deleted) and webhook subscriptions. A request is evaluated on a read first; when the
-- writer finds the same token, the evaluation still holds and is not repeated. The token is
-- a random number rather than a counter, so a change undone by a rollback can never be
-- mistaken for the state before it. The row is created by the first change.
CREATE TABLE eval_generation (
    id    INTEGER PRIMARY KEY,
    token INTEGER NOT NULL
);
CREATE TRIGGER users_generation_insert AFTER INSERT ON users BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER users_generation_update AFTER UPDATE ON users BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER users_generation_delete AFTER DELETE ON users BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER catalogs_generation_insert AFTER INSERT ON catalogs BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER catalogs_generation_update AFTER UPDATE ON catalogs BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER catalogs_generation_delete AFTER DELETE ON catalogs BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER access_packages_generation_insert AFTER INSERT ON access_packages BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER access_packages_generation_update AFTER UPDATE ON access_packages BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER access_packages_generation_delete AFTER DELETE ON access_packages BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER policies_generation_insert AFTER INSERT ON policies BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER policies_generation_update AFTER UPDATE ON policies BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER policies_generation_delete AFTER DELETE ON policies BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER incompatible_packages_generation_insert AFTER INSERT ON incompatible_packages BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER incompatible_packages_generation_update AFTER UPDATE ON incompatible_packages BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER incompatible_packages_generation_delete AFTER DELETE ON incompatible_packages BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER incompatible_groups_generation_insert AFTER INSERT ON incompatible_groups BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER incompatible_groups_generation_update AFTER UPDATE ON incompatible_groups BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER incompatible_groups_generation_delete AFTER DELETE ON incompatible_groups BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER webhook_subscriptions_generation_insert AFTER INSERT ON webhook_subscriptions BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER webhook_subscriptions_generation_update AFTER UPDATE ON webhook_subscriptions BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER webhook_subscriptions_generation_delete AFTER DELETE ON webhook_subscriptions BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER subjects_generation_update AFTER UPDATE ON subjects BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER subjects_generation_delete AFTER DELETE ON subjects BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
