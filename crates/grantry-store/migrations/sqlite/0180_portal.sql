-- The web portal's sign-in sessions. The cookie holds a random 256-bit value; only its
-- SHA-256 is stored, so a copy of the database opens no session. Each session has its own
-- CSRF token (forms echo it) and ends at expires_us (wall-clock microseconds) or at sign-out.
CREATE TABLE portal_sessions (
    id_sha256  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    method     TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL
);
CREATE INDEX portal_sessions_user ON portal_sessions (user_id);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_us);

-- Sign-ins through the OpenID provider under way: the state sent to the provider (as its
-- SHA-256), the PKCE verifier and nonce kept for the callback, and where to go afterwards.
-- A row is used once and is good for ten minutes.
CREATE TABLE portal_logins (
    state_sha256 TEXT PRIMARY KEY,
    verifier     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    expires_us   INTEGER NOT NULL
);
