#!/usr/bin/env python3
"""End-to-end test of Grantry as a token issuer over HTTPS, with unmodified Microsoft SDKs.

Writes a development certificate with `grantry cert --self-signed`, starts the grantry
binary (GRANTRY_BIN) with it on a free loopback port, registers an application with
`grantry app create`, and then, trusting the development CA only through the usual
CA-bundle variables (REQUESTS_CA_BUNDLE for azure-identity's requests, SSL_CERT_FILE for
msgraph-sdk's httpx):

- azure-identity's ClientSecretCredential, with Grantry's URL as the authority and instance
  discovery off, finds the token endpoint through Grantry's discovery document and obtains a
  token with the client secret;
- msgraph-sdk's GraphServiceClient with that credential lists catalogs and creates an
  adminAdd request, over HTTPS.

Background work is driven by the development clock, never by sleeping. Exit code 0 means
every check passed.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

CHECKS: list[tuple[bool, str]] = []


def check(cond: bool, what: str) -> None:
    CHECKS.append((bool(cond), what))
    print(f"  [{'ok' if cond else 'FAIL'}] {what}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary: str, *args: str) -> str:
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout


def fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


class Server:
    def __init__(self, binary: str):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="grantry-identity-")
        self.tls = os.path.join(self.dir.name, "tls")
        run(binary, "cert", "--self-signed", "--hostname", "127.0.0.1", "--hostname", "localhost", "--out", self.tls)
        self.ca = os.path.join(self.tls, "ca.pem")
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir.name, "--dev-clock",
                "--tls-cert", os.path.join(self.tls, "cert.pem"), "--tls-key", os.path.join(self.tls, "key.pem"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir.name, "server.log"), "w"),
        )
        self.context = ssl.create_default_context(cafile=self.ca)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/ready", timeout=1, context=self.context) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)  # waiting for the process to start listening, not for work
        raise RuntimeError("grantry did not become ready within 30 s")

    def call(self, method: str, path: str, token: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.base}{path}", method=method, headers={"Authorization": f"Bearer {token}"})
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, data=data, timeout=10, context=self.context) as r:
            text = r.read().decode()
            return json.loads(text) if text else {}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


async def flow(server: Server, tenant: str, client_id: str, secret: str) -> None:
    from azure.identity import ClientSecretCredential
    from msgraph import GraphServiceClient
    from msgraph.generated.models.access_package import AccessPackage
    from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
    from msgraph.generated.models.access_package_assignment_approval_settings import AccessPackageAssignmentApprovalSettings
    from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
    from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
    from msgraph.generated.models.access_package_assignment_requestor_settings import AccessPackageAssignmentRequestorSettings
    from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
    from msgraph.generated.models.access_package_request_state import AccessPackageRequestState
    from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
    from msgraph.generated.models.access_package_subject import AccessPackageSubject
    from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
    from msgraph.generated.models.expiration_pattern import ExpirationPattern
    from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
    from msgraph.generated.models.user import User

    scopes = ["https://graph.microsoft.com/.default"]
    credential = ClientSecretCredential(
        tenant, client_id, secret, authority=f"127.0.0.1:{server.port}", disable_instance_discovery=True
    )
    token = credential.get_token(*scopes)
    check(token.token.count(".") == 2 and token.expires_on > time.time() + 3000, "ClientSecretCredential obtains a token from Grantry")

    client = GraphServiceClient(credentials=credential, scopes=scopes)
    client.request_adapter.base_url = f"{server.base}/v1.0"
    em = client.identity_governance.entitlement_management

    catalogs = await em.catalogs.get()
    check(catalogs is not None and any(c.display_name == "General" for c in catalogs.value), "catalogs.get lists the built-in catalog over HTTPS")
    user = await client.users.post(User(display_name="Adele Vance", user_principal_name="adele@contoso.com", account_enabled=True))
    check(user is not None and user.id, "users.post creates a user")
    catalog = await em.catalogs.post(AccessPackageCatalog(display_name="Sales", description="Sales resources"))
    package = await em.access_packages.post(
        AccessPackage(display_name="Sales tools", description="CRM", catalog=AccessPackageCatalog(id=catalog.id))
    )
    import datetime as dt

    policy = await em.assignment_policies.post(
        AccessPackageAssignmentPolicy(
            display_name="Direct assignments",
            description="Administrators assign directly",
            allowed_target_scope=AllowedTargetScope.NotSpecified,
            expiration=ExpirationPattern(type=ExpirationPatternType.AfterDuration, duration=dt.timedelta(days=30)),
            requestor_settings=AccessPackageAssignmentRequestorSettings(enable_targets_to_self_add_access=False),
            request_approval_settings=AccessPackageAssignmentApprovalSettings(
                is_approval_required_for_add=False, is_approval_required_for_update=False
            ),
            access_package=AccessPackage(id=package.id),
        )
    )
    check(package.id and policy.id, "a package and a policy are created")
    request = await em.assignment_requests.post(
        AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            assignment=AccessPackageAssignment(
                target=AccessPackageSubject(object_id=user.id),
                assignment_policy=AccessPackageAssignmentPolicy(id=policy.id),
                access_package=AccessPackage(id=package.id),
            ),
        )
    )
    check(request is not None and request.state == AccessPackageRequestState.Submitted, "an adminAdd request is accepted")
    server.call("POST", "/_grantry/clock/advance", token.token, {"duration": "PT0S"})  # runs due work
    request = await em.assignment_requests.by_access_package_assignment_request_id(request.id).get()
    check(request.state == AccessPackageRequestState.Delivered, f"the request is delivered (state={request.state})")

    # A wrong secret is refused by the token endpoint, and azure-identity says so.
    from azure.core.exceptions import ClientAuthenticationError

    wrong = ClientSecretCredential(tenant, client_id, "not-the-secret", authority=f"127.0.0.1:{server.port}", disable_instance_discovery=True)
    try:
        wrong.get_token(*scopes)
        check(False, "a wrong client secret is refused")
    except ClientAuthenticationError as e:
        check("Client authentication failed" in str(e), "a wrong client secret is refused (invalid_client)")


def main() -> int:
    binary = os.environ.get("GRANTRY_BIN")
    if not binary or not os.path.exists(binary):
        print("GRANTRY_BIN must name the grantry binary", file=sys.stderr)
        return 2
    server = Server(binary)
    try:
        # The development CA is trusted only through the usual variables, as a user would.
        os.environ["REQUESTS_CA_BUNDLE"] = server.ca
        os.environ["SSL_CERT_FILE"] = server.ca
        created = fields(run(
            binary, "app", "create", "sdk-identity", "--data-dir", server.dir.name,
            "--roles", "EntitlementManagement.ReadWrite.All,User.ReadWrite.All",
        ))
        print("azure-identity + msgraph-sdk over HTTPS:")
        asyncio.run(flow(server, created["tenant_id"], created["client_id"], created["client_secret"]))
    except Exception as e:  # an unexpected exception is a failure, reported with its type
        import traceback

        traceback.print_exc()
        check(False, f"unexpected {type(e).__name__}: {e}")
    finally:
        server.stop()
    failed = [w for ok, w in CHECKS if not ok]
    print(f"identity: {len(CHECKS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
