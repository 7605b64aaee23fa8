"""Schemathesis hooks for Grantry: every 4xx must be Graph's error envelope, except on the
OAuth 2.0 / OpenID endpoints under /{tenant}/ (token, discovery, keys), whose clients (MSAL,
azure-identity) expect OAuth's error shape (RFC 6749 section 5.2): "error" and
"error_description" strings (refusals made before routing keep Graph's envelope).

Loaded by tests/fuzz/schemathesis.sh through SCHEMATHESIS_HOOKS.
"""

import schemathesis


@schemathesis.check
def graph_error_envelope(ctx, response, case):
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except Exception:
        raise AssertionError(f"{response.status_code} without a JSON body (Graph's error envelope expected)")
    path = getattr(getattr(case, "operation", None), "path", "") or ""
    # Refusals made before the handler runs (405, 413, 408…) keep Graph's envelope there too.
    if path.startswith("/{tenant}/") and not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body.get("error"):
            raise AssertionError(f"{response.status_code} without OAuth's 'error' string: {str(body)[:200]}")
        if not isinstance(body.get("error_description"), str) or not body.get("error_description"):
            raise AssertionError(f"{response.status_code} without 'error_description': {str(body)[:200]}")
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise AssertionError(f"{response.status_code} without an 'error' object: {str(body)[:200]}")
    for key in ("code", "message"):
        if not isinstance(error.get(key), str) or not error.get(key):
            raise AssertionError(f"{response.status_code} error without '{key}': {str(body)[:200]}")
    return None
