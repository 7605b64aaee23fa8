"""Schemathesis hooks for Grantry: every 4xx must be Graph's error envelope.

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
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise AssertionError(f"{response.status_code} without an 'error' object: {str(body)[:200]}")
    for key in ("code", "message"):
        if not isinstance(error.get(key), str) or not error.get(key):
            raise AssertionError(f"{response.status_code} error without '{key}': {str(body)[:200]}")
    return None
