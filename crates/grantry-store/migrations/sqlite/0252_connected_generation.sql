-- Connected organizations and sponsors decide who may request (the connected-organization
-- scopes) and who approves (sponsors), so a change to them changes the evaluation token too.
CREATE TRIGGER connected_organizations_generation_insert AFTER INSERT ON connected_organizations BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER connected_organizations_generation_update AFTER UPDATE ON connected_organizations BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER connected_organizations_generation_delete AFTER DELETE ON connected_organizations BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER connected_organization_keys_generation_insert AFTER INSERT ON connected_organization_keys BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER connected_organization_keys_generation_update AFTER UPDATE ON connected_organization_keys BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER connected_organization_keys_generation_delete AFTER DELETE ON connected_organization_keys BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER sponsors_generation_insert AFTER INSERT ON sponsors BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER sponsors_generation_update AFTER UPDATE ON sponsors BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
CREATE TRIGGER sponsors_generation_delete AFTER DELETE ON sponsors BEGIN
    INSERT INTO eval_generation (id, token) VALUES (1, random()) ON CONFLICT (id) DO UPDATE SET token = excluded.token;
END;
