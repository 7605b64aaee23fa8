#!/usr/bin/env python3
"""scim2-tester (PyPI) against a live Grantry's SCIM 2.0 service provider.

Starts the grantry binary (GRANTRY_BIN) on a free loopback port with a fresh database,
creates a SCIM token with `grantry scim token create`, and runs every check of
scim2_tester.check_server (discovery, CRUD, attributes, PATCH add/remove/replace, misc) for
Users and Groups. Each result is printed; the run fails when a check reports ERROR or
CRITICAL, except the ones listed in KNOWN_EXCEPTIONS with the reason Grantry answers
differently. Exit code 0 means every check passed.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

warnings.filterwarnings("ignore")

# (check title, substrings its reason must all contain, why Grantry deliberately answers
# otherwise; see docs/decisions.md).
KNOWN_EXCEPTIONS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "check_remove_attribute",
        ("'displayName'",),
        "a Grantry user always has a displayName (Graph requires one); removing it gives the name "
        "derived from name.givenName/familyName or the userName",
    ),
    (
        "check_remove_attribute",
        ("'active'",),
        "active is Graph's accountEnabled, a boolean that is always returned; removing it leaves the "
        "account enabled (RFC 7643 gives no default, Entra requires the attribute)",
    ),
    (
        "_attribute",
        ("'members'", "display=None"),
        "members.display is readOnly and filled by Grantry with the member's name, as RFC 7643 §4.2 "
        "describes; scim2-tester compares the returned member with the null display it sent",
    ),
    (
        "_attribute",
        ("'emails'", "primary=False", "primary=True"),
        "Grantry keeps one address per user and returns it as the primary one, also when the client "
        "sent its only address with primary false",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    binary = os.environ.get("GRANTRY_BIN", "grantry")
    data = tempfile.TemporaryDirectory(prefix="grantry-scim-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(data.name, "server.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data.name, "--dev-clock"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("grantry did not become ready within 30 s")
                time.sleep(0.05)  # waiting for the process to listen, not for work
        token = subprocess.run(
            [binary, "scim", "token", "create", "--data-dir", data.name, "scim2-tester"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return run_checks(f"{base}/scim/v2", token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        data.cleanup()


def run_checks(url: str, token: str) -> int:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    client = SyncSCIMClient(Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10))
    results = check_server(client, resource_types=["User", "Group"])
    failed = []
    counts: dict[str, int] = {}
    for r in results:
        name = r.status.name
        counts[name] = counts.get(name, 0) + 1
        bad = r.status in (Status.ERROR, Status.CRITICAL)
        excused = next(
            (
                why
                for title, parts, why in KNOWN_EXCEPTIONS
                if title in r.title and all(p in (r.reason or "") for p in parts)
            ),
            None,
        )
        mark = "ok" if not bad else ("excused" if excused else "FAIL")
        where = f" [{r.resource_type}]" if getattr(r, "resource_type", None) else ""
        print(f"  [{mark}] {name:10} {r.title}{where}" + (f": {r.reason}" if r.reason and name != "SUCCESS" else ""))
        if bad and excused:
            print(f"           excused: {excused}")
        if bad and not excused:
            failed.append(r)
    summary = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items()))
    print(f"scim2-tester: {len(results)} checks ({summary})")
    if not results:
        print("scim2-tester ran no check", file=sys.stderr)
        return 1
    if failed:
        print(f"scim2-tester: {len(failed)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
