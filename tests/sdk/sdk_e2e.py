#!/usr/bin/env python3
"""End-to-end test with the official, unmodified Microsoft Graph Python SDKs.

Starts the grantry binary (GRANTRY_BIN) on a free loopback port with a fresh database and
the development clock, mints tokens with `grantry token`, and drives the v1.0 SDK
(msgraph-sdk) and the beta SDK (msgraph-beta-sdk) through the main flow: directory set-up,
catalog, group resource, access package, policy, an adminAdd request, and reading the
delivered assignment back with $filter/$expand/$select/$orderby/$top/$count; access reviews,
applications, a connected organization with its sponsors, and a guest's subject read by
objectId and patched (v1.0 lifecycle, beta connected organization).

Background work is driven by the development clock (`POST /_grantry/clock/advance` runs all
due work before answering), never by sleeping. The flows run twice, on fresh servers: as the
Python SDK sends requests, then with every request body gzip-compressed the way the Go SDK
sends them (see gzip_request_bodies_handler). Exit code 0 means every check passed.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
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


class Server:
    def __init__(self, binary: str):
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="grantry-sdk-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir.name, "--dev-clock"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir.name, "server.log"), "w"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)  # waiting for the process to start listening, not for work
        raise RuntimeError("grantry did not become ready within 30 s")

    def token(self, *args: str) -> str:
        out = subprocess.run([self.binary, "token", "--data-dir", self.dir.name, *args], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def call(self, method: str, path: str, token: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.base}{path}", method=method, headers={"Authorization": f"Bearer {token}"})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, data=data, timeout=10) as r:
            text = r.read().decode()
            return json.loads(text) if text else {}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


def gzip_request_bodies_handler():
    """The request-compression middleware of the Kiota-based Graph SDKs (kiota-http-go's
    CompressionHandler, on by default in the Go SDK): gzip every request body, send it with
    `Content-Encoding: gzip`, and on 415 send it once more uncompressed. The Python SDK has no
    such handler, so this run brings the same behaviour as a Kiota middleware."""
    import gzip

    import httpx
    from kiota_http.middleware.middleware import BaseMiddleware

    class GzipRequestBodies(BaseMiddleware):
        def __init__(self) -> None:
            super().__init__()
            self.compressed = 0
            self.refused = 0

        async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
            body = request.content
            if not body or "content-range" in request.headers:
                return await super().send(request, transport)
            headers = httpx.Headers(request.headers)
            packed = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
            headers["Content-Length"] = str(len(packed))
            compressed = httpx.Request(request.method, request.url, headers=headers, content=packed, extensions=request.extensions)
            self.compressed += 1
            response = await super().send(compressed, transport)
            if response.status_code == 415:
                self.refused += 1
                await response.aread()
                return await super().send(request, transport)
            return response

    return GzipRequestBodies()


def client_for(sdk: str, base_url: str, token: str, compress_with=None):
    """Recipe 1 of the SDK notes: GraphServiceClient with a static-token credential; with
    `compress_with`, that middleware is added to the SDK's default ones."""
    from azure.core.credentials import AccessToken

    class StaticTokenCredential:
        def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
            return AccessToken(token, int(time.time()) + 3600)

    if sdk == "v1.0":
        from msgraph import GraphRequestAdapter, GraphServiceClient
    else:
        from msgraph_beta import GraphRequestAdapter, GraphServiceClient
    if compress_with is None:
        client = GraphServiceClient(credentials=StaticTokenCredential(), scopes=["api://grantry/.default"])
    else:
        from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from msgraph_core import GraphClientFactory

        middleware = KiotaClientFactory.get_default_middleware(None) + [compress_with]
        http = GraphClientFactory.create_with_custom_middleware(middleware)
        auth = AzureIdentityAuthenticationProvider(StaticTokenCredential(), scopes=["api://grantry/.default"])
        client = GraphServiceClient(request_adapter=GraphRequestAdapter(auth, client=http))
    client.request_adapter.base_url = base_url
    return client


async def flow_v1(server: Server, admin_token: str, compress_with=None) -> None:
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.identity_governance.entitlement_management.assignments.assignments_request_builder import (
        AssignmentsRequestBuilder,
    )
    from msgraph.generated.models.access_package import AccessPackage
    from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
    from msgraph.generated.models.access_package_assignment_approval_settings import AccessPackageAssignmentApprovalSettings
    from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
    from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
    from msgraph.generated.models.access_package_assignment_requestor_settings import AccessPackageAssignmentRequestorSettings
    from msgraph.generated.models.access_package_assignment_state import AccessPackageAssignmentState
    from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
    from msgraph.generated.models.access_package_request_state import AccessPackageRequestState
    from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
    from msgraph.generated.models.access_package_resource import AccessPackageResource
    from msgraph.generated.models.access_package_resource_request import AccessPackageResourceRequest
    from msgraph.generated.models.access_package_resource_role import AccessPackageResourceRole
    from msgraph.generated.models.access_package_resource_role_scope import AccessPackageResourceRoleScope
    from msgraph.generated.models.access_package_resource_scope import AccessPackageResourceScope
    from msgraph.generated.models.access_package_subject import AccessPackageSubject
    from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
    from msgraph.generated.models.expiration_pattern import ExpirationPattern
    from msgraph.generated.models.expiration_pattern_type import ExpirationPatternType
    from msgraph.generated.models.group import Group
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.user import User
    import datetime as dt

    client = client_for("v1.0", f"{server.base}/v1.0", admin_token, compress_with)
    em = client.identity_governance.entitlement_management

    print("v1.0 SDK" + (" with compressed request bodies:" if compress_with else ":"))
    user = await client.users.post(User(display_name="Megan Bowen", user_principal_name="megan@contoso.com", account_enabled=True))
    check(user is not None and user.id, "users.post creates a user")
    group = await client.groups.post(Group(display_name="Marketing", mail_nickname="marketing", security_enabled=True, mail_enabled=False))
    check(group is not None and group.id, "groups.post creates a group")

    catalog = await em.catalogs.post(AccessPackageCatalog(display_name="Marketing", description="Marketing resources"))
    check(catalog.id and catalog.display_name == "Marketing", "catalogs.post creates a catalog")
    rr = await em.resource_requests.post(
        AccessPackageResourceRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            resource=AccessPackageResource(origin_id=group.id, origin_system="AadGroup"),
            catalog=AccessPackageCatalog(id=catalog.id),
        )
    )
    check(rr is not None and rr.state == AccessPackageRequestState.Delivered, "resourceRequests.post adds the group (state delivered)")
    resources = await em.catalogs.by_access_package_catalog_id(catalog.id).resources.get()
    resource = resources.value[0]
    check(resource.origin_id == group.id, "the group is a resource of the catalog")

    package = await em.access_packages.post(
        AccessPackage(display_name="Marketing campaigns", description="Campaign tools", catalog=AccessPackageCatalog(id=catalog.id))
    )
    check(package.id, "accessPackages.post creates a package")
    role_scope = await em.access_packages.by_access_package_id(package.id).resource_role_scopes.post(
        AccessPackageResourceRoleScope(
            role=AccessPackageResourceRole(
                origin_id=f"Member_{group.id}", origin_system="AadGroup", resource=AccessPackageResource(id=resource.id)
            ),
            scope=AccessPackageResourceScope(origin_id=group.id, origin_system="AadGroup"),
        )
    )
    check(role_scope is not None and role_scope.id and "_" in role_scope.id, "resourceRoleScopes.post attaches the Member role")

    policy = await em.assignment_policies.post(
        AccessPackageAssignmentPolicy(
            display_name="Direct assignments",
            description="Administrators assign directly",
            allowed_target_scope=AllowedTargetScope.NotSpecified,
            expiration=ExpirationPattern(type=ExpirationPatternType.AfterDuration, duration=dt.timedelta(days=365)),
            requestor_settings=AccessPackageAssignmentRequestorSettings(enable_targets_to_self_add_access=False),
            request_approval_settings=AccessPackageAssignmentApprovalSettings(
                is_approval_required_for_add=False, is_approval_required_for_update=False
            ),
            access_package=AccessPackage(id=package.id),
        )
    )
    check(policy is not None and policy.id, "assignmentPolicies.post accepts the SDK's str(timedelta) duration")
    check(policy.expiration is not None and policy.expiration.duration == dt.timedelta(days=365), "policy expiration reads back as 365 days")

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
    check(request is not None and request.state == AccessPackageRequestState.Submitted, "adminAdd request is accepted as submitted")
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "PT0S"})  # runs due work

    request = await em.assignment_requests.by_access_package_assignment_request_id(request.id).get()
    check(request.state == AccessPackageRequestState.Delivered, f"the request is delivered (state={request.state})")

    qp = AssignmentsRequestBuilder.AssignmentsRequestBuilderGetQueryParameters(
        filter=f"accessPackage/id eq '{package.id}' and state eq 'delivered'",
        expand=["target", "accessPackage"],
        top=50,
        count=True,
        orderby=["createdDateTime desc"],
    )
    cfg = RequestConfiguration(query_parameters=qp)
    cfg.headers.add("ConsistencyLevel", "eventual")
    page = await em.assignments.get(request_configuration=cfg)
    check(page is not None and len(page.value) == 1, "assignments list with $filter/$expand/$top/$count/$orderby finds it")
    if page and page.value:
        a = page.value[0]
        check(a.state == AccessPackageAssignmentState.Delivered, "assignment state delivered")
        check(a.target is not None and a.target.object_id == user.id, "$expand=target gives the subject with objectId")
        check(a.access_package is not None and a.access_package.display_name == "Marketing campaigns", "$expand=accessPackage")
        check(page.odata_count == 1, "@odata.count is 1")

    members = await client.groups.by_group_id(group.id).members.get()
    check(any(m.id == user.id for m in members.value), "the user is now a member of the group")

    # JSON batching through the SDK's batch request builder, unmodified: it sends absolute
    # item URLs and `depends_on`; Grantry answers each item as its own call.
    from msgraph_core.requests.batch_request_content import BatchRequestContent
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    read_package = BatchRequestItem(em.access_packages.by_access_package_id(package.id).to_get_request_information(), id="package")
    create_catalog = BatchRequestItem(
        em.catalogs.to_post_request_information(AccessPackageCatalog(display_name="Batched", description="made in a batch")),
        id="catalog",
        depends_on=[read_package],
    )
    read_missing = BatchRequestItem(
        em.access_packages.by_access_package_id("00000000-0000-0000-0000-000000000000").to_get_request_information(), id="missing"
    )
    content = BatchRequestContent()
    for batched in (read_package, create_catalog, read_missing):
        content.add_request(batched.id, batched)
    answer = await client.batch.post(batch_request_content=content)
    codes = answer.get_response_status_codes()
    check(codes == {"package": 200, "catalog": 201, "missing": 404}, f"$batch through the SDK's builder answers each item ({codes})")
    types = {i: (r.headers or {}).get("Content-Type", "") for i, r in (answer.responses or {}).items()}
    check(all(t.startswith("application/json") for t in types.values()), f"every batched answer names its Content-Type ({types})")
    batched = server.call("GET", "/v1.0/identityGovernance/entitlementManagement/catalogs?$filter=displayName%20eq%20'Batched'", admin_token)
    check(len(batched["value"]) == 1, "the batched POST created the catalog")

    try:
        await em.access_packages.by_access_package_id("00000000-0000-0000-0000-000000000000").get()
        check(False, "an unknown id raises")
    except ODataError as e:
        check(e.response_status_code == 404 and e.error is not None and e.error.code, "unknown id -> ODataError 404 with a code")


async def flow_beta(server: Server, admin_token: str, compress_with=None) -> None:
    from msgraph_beta.generated.models.access_package_assignment import AccessPackageAssignment
    from msgraph_beta.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest

    client = client_for("beta", f"{server.base}/beta", admin_token, compress_with)
    em = client.identity_governance.entitlement_management
    print("beta SDK" + (" with compressed request bodies:" if compress_with else ":"))
    packages = await em.access_packages.get()
    check(packages is not None and len(packages.value) >= 1, "beta accessPackages.get lists the package")
    package = packages.value[0]
    policies = await em.access_package_assignment_policies.get()
    check(policies is not None and len(policies.value) >= 1, "beta accessPackageAssignmentPolicies.get lists the policy")
    policy = policies.value[0]
    check(policy.access_package_id == package.id, "beta policy carries accessPackageId")
    user = server.call("POST", "/v1.0/users", admin_token, {"displayName": "Lee Gu", "userPrincipalName": "lee@contoso.com"})
    req = await em.access_package_assignment_requests.post(
        AccessPackageAssignmentRequest(
            request_type="AdminAdd",
            access_package_assignment=AccessPackageAssignment(target_id=user["id"], assignment_policy_id=policy.id, access_package_id=package.id),
        )
    )
    check(req is not None and req.request_state == "Submitted" and req.request_status == "Accepted", "beta legacy create: Submitted/Accepted")
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "PT0S"})
    assignments = await em.access_package_assignments.get()
    mine = [a for a in assignments.value if a.target_id == user["id"]]
    check(len(mine) == 1 and mine[0].assignment_state == "Delivered", "beta assignment is Delivered with targetId")


async def flow_reviews(server: Server, admin_token: str) -> None:
    """An access review through the v1.0 SDK: a policy with a quarterly self-review, the run
    it opens on the development clock, the assignee's own decision, and the removal of the
    denied assignment when an administrator stops the run."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.identity_governance.access_reviews.definitions.definitions_request_builder import (
        DefinitionsRequestBuilder,
    )
    from msgraph.generated.models.access_review_instance_decision_item import AccessReviewInstanceDecisionItem
    from msgraph.generated.models.access_review_instance_decision_item_access_package_assignment_policy_resource import (
        AccessReviewInstanceDecisionItemAccessPackageAssignmentPolicyResource,
    )
    from msgraph.generated.models.access_review_query_scope import AccessReviewQueryScope
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    import datetime as dt

    print("v1.0 SDK, access reviews:")
    em = "/v1.0/identityGovernance/entitlementManagement"
    user = server.call("POST", "/v1.0/users", admin_token, {"displayName": "Nestor Wilke", "userPrincipalName": "nestor@contoso.com"})
    catalog = server.call("POST", f"{em}/catalogs", admin_token, {"displayName": "Reviewed"})
    package = server.call("POST", f"{em}/accessPackages", admin_token, {"displayName": "Reviewed access", "catalog": {"id": catalog["id"]}})
    now = dt.datetime.fromisoformat(server.call("GET", "/_grantry/clock", admin_token)["now"].replace("Z", "+00:00"))
    start = (now + dt.timedelta(days=1)).isoformat()
    policy = server.call(
        "POST",
        f"{em}/assignmentPolicies",
        admin_token,
        {
            "displayName": "Reviewed quarterly",
            "allowedTargetScope": "notSpecified",
            "expiration": {"type": "noExpiration"},
            "accessPackage": {"id": package["id"]},
            "reviewSettings": {
                "isEnabled": True,
                "isSelfReview": True,
                "expirationBehavior": "keepAccess",
                "isReviewerJustificationRequired": True,
                "schedule": {
                    "startDateTime": start,
                    "expiration": {"type": "afterDuration", "duration": "P14D"},
                    "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 3}, "range": {"type": "noEnd"}},
                },
            },
        },
    )
    server.call(
        "POST",
        f"{em}/assignmentRequests",
        admin_token,
        {"requestType": "adminAdd", "assignment": {"targetId": user["id"], "assignmentPolicyId": policy["id"], "accessPackageId": package["id"]}},
    )
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "PT0S"})

    admin = client_for("v1.0", f"{server.base}/v1.0", admin_token).identity_governance.access_reviews
    qp = DefinitionsRequestBuilder.DefinitionsRequestBuilderGetQueryParameters(
        filter="contains(scope/microsoft.graph.accessReviewQueryScope/query, 'accessPackageAssignments')"
    )
    defs = await admin.definitions.get(request_configuration=RequestConfiguration(query_parameters=qp))
    check(defs is not None and len(defs.value) == 1, "definitions.get with the documented $filter finds the policy's review")
    d = defs.value[0]
    check(isinstance(d.scope, AccessReviewQueryScope) and policy["id"] in d.scope.query, "its scope is a query scope naming the policy")
    check(d.settings.instance_duration_in_days == 14 and d.settings.recurrence.pattern.interval == 3, "settings: 14 days, every 3 months")

    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "P1D"})
    runs = await admin.definitions.by_access_review_schedule_definition_id(d.id).instances.get()
    check(runs is not None and len(runs.value) == 1 and runs.value[0].status == "InProgress", "a day later one run is in progress")
    run = admin.definitions.by_access_review_schedule_definition_id(d.id).instances.by_access_review_instance_id(runs.value[0].id)

    nestor = server.token("--user", "nestor@contoso.com", "--scopes", "AccessReview.ReadWrite.All")
    mine_ar = client_for("v1.0", f"{server.base}/v1.0", nestor).identity_governance.access_reviews
    my_run = mine_ar.definitions.by_access_review_schedule_definition_id(d.id).instances.by_access_review_instance_id(runs.value[0].id)
    mine = await my_run.decisions.filter_by_current_user_with_on("reviewer").get()
    check(mine is not None and len(mine.value) == 1, "the assignee finds their own item with filterByCurrentUser(on='reviewer')")
    item = mine.value[0]
    check(item.principal.id == user["id"] and item.decision == "NotReviewed", "the item names the assignee, not reviewed yet")
    check(
        isinstance(item.resource, AccessReviewInstanceDecisionItemAccessPackageAssignmentPolicyResource)
        and item.resource.access_package_id == package["id"],
        "its resource is the access package assignment policy",
    )
    try:
        await my_run.decisions.by_access_review_instance_decision_item_id(item.id).patch(AccessReviewInstanceDecisionItem(decision="Approve"))
        check(False, "approving without a justification raises")
    except ODataError as e:
        check(e.response_status_code == 400, "approving without the required justification -> 400")
    await my_run.decisions.by_access_review_instance_decision_item_id(item.id).patch(
        AccessReviewInstanceDecisionItem(decision="Deny", justification="I no longer need it")
    )
    got = await run.decisions.by_access_review_instance_decision_item_id(item.id).get()
    check(got.decision == "Deny" and got.reviewed_by.id == user["id"], "the decision reads back with reviewedBy")

    await run.stop.post()
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "PT0S"})
    ended = await run.get()
    check(ended.status == "Applied", f"stopped and applied (status={ended.status})")
    got = await run.decisions.by_access_review_instance_decision_item_id(item.id).get()
    check(got.apply_result == "AppliedSuccessfully", "the denial was applied")
    assignments = server.call("GET", f"{em}/assignments?$filter=accessPackage/id eq '{package['id']}'".replace(" ", "%20"), admin_token)
    check([a["state"] for a in assignments["value"]] == ["expired"], "the denied assignment has ended")


async def flow_reviews_beta(server: Server, admin_token: str) -> None:
    """An access review through the beta SDK: the definition a policy made, its run, the
    assignee's items across all reviews and recordAllDecisions, then stopping the run and
    the series."""
    from msgraph_beta.generated.identity_governance.access_reviews.decisions.record_all_decisions.record_all_decisions_post_request_body import (
        RecordAllDecisionsPostRequestBody,
    )
    import datetime as dt

    print("beta SDK, access reviews:")
    em = "/v1.0/identityGovernance/entitlementManagement"
    user = server.call("POST", "/v1.0/users", admin_token, {"displayName": "Olga Beta", "userPrincipalName": "olga@contoso.com", "mail": "olga@contoso.com"})
    catalog = server.call("POST", f"{em}/catalogs", admin_token, {"displayName": "Reviewed in beta"})
    package = server.call("POST", f"{em}/accessPackages", admin_token, {"displayName": "Beta reviewed access", "catalog": {"id": catalog["id"]}})
    now = dt.datetime.fromisoformat(server.call("GET", "/_grantry/clock", admin_token)["now"].replace("Z", "+00:00"))
    policy = server.call(
        "POST",
        f"{em}/assignmentPolicies",
        admin_token,
        {
            "displayName": "Reviewed monthly",
            "allowedTargetScope": "notSpecified",
            "expiration": {"type": "noExpiration"},
            "accessPackage": {"id": package["id"]},
            "reviewSettings": {
                "isEnabled": True,
                "isSelfReview": True,
                "expirationBehavior": "keepAccess",
                "isReviewerJustificationRequired": False,
                "schedule": {
                    "startDateTime": (now + dt.timedelta(days=1)).isoformat(),
                    "expiration": {"type": "afterDuration", "duration": "P7D"},
                    "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 1}, "range": {"type": "noEnd"}},
                },
            },
        },
    )
    server.call(
        "POST",
        f"{em}/assignmentRequests",
        admin_token,
        {"requestType": "adminAdd", "assignment": {"targetId": user["id"], "assignmentPolicyId": policy["id"], "accessPackageId": package["id"]}},
    )
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "P1DT1H"})

    admin = client_for("beta", f"{server.base}/beta", admin_token).identity_governance.access_reviews
    defs = await admin.definitions.get()
    mine_def = [d for d in (defs.value if defs else []) if d.scope is not None and policy["id"] in (getattr(d.scope, "query", "") or "")]
    check(len(mine_def) == 1, "beta definitions.get lists the policy's review")
    d = mine_def[0]
    runs = await admin.definitions.by_access_review_schedule_definition_id(d.id).instances.get()
    check(runs is not None and len(runs.value) == 1 and runs.value[0].status == "InProgress", "beta: one run in progress")
    run = admin.definitions.by_access_review_schedule_definition_id(d.id).instances.by_access_review_instance_id(runs.value[0].id)
    stages = await run.stages.get()
    check(stages is not None and len(stages.value) == 0, "beta: a one-stage run lists no stages")

    olga = server.token("--user", "olga@contoso.com", "--scopes", "AccessReview.ReadWrite.All")
    olga_ar = client_for("beta", f"{server.base}/beta", olga).identity_governance.access_reviews
    everywhere = await olga_ar.decisions.filter_by_current_user_with_on("reviewer").get()
    check(everywhere is not None and len(everywhere.value) == 1, "beta decisions/filterByCurrentUser(on='reviewer') finds the assignee's item")
    item = everywhere.value[0]
    check(item.decision == "NotReviewed" and item.principal.id == user["id"], "beta: the item names the assignee, not reviewed")
    check(item.target is not None, "beta: the item carries its target")
    await olga_ar.decisions.record_all_decisions.post(RecordAllDecisionsPostRequestBody(decision="Deny", justification="not needed"))
    got = await run.decisions.by_access_review_instance_decision_item_id(item.id).get()
    check(got.decision == "Deny" and got.reviewed_by.id == user["id"], "beta recordAllDecisions recorded the denial")

    await run.stop.post()
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "PT0S"})
    ended = await run.get()
    check(ended.status == "Applied", f"beta: stopped and applied (status={ended.status})")
    await admin.definitions.by_access_review_schedule_definition_id(d.id).stop.post()
    after = await admin.definitions.by_access_review_schedule_definition_id(d.id).get()
    check(after.status == "Completed", f"beta: the series was stopped (status={after.status})")
    assignments = server.call("GET", f"{em}/assignments?$filter=accessPackage/id eq '{package['id']}'".replace(" ", "%20"), admin_token)
    check([a["state"] for a in assignments["value"]] == ["expired"], "beta: the denied assignment has ended")


async def flow_apps(server: Server, admin_token: str) -> None:
    """An application as an access package resource through the v1.0 SDK: the application
    with an app role, its service principal, the catalog resource whose role is the app
    role, and the appRoleAssignment a delivered assignment writes."""
    from msgraph.generated.models.access_package import AccessPackage
    from msgraph.generated.models.access_package_assignment import AccessPackageAssignment
    from msgraph.generated.models.access_package_assignment_policy import AccessPackageAssignmentPolicy
    from msgraph.generated.models.access_package_assignment_request import AccessPackageAssignmentRequest
    from msgraph.generated.models.access_package_catalog import AccessPackageCatalog
    from msgraph.generated.models.access_package_request_type import AccessPackageRequestType
    from msgraph.generated.models.access_package_resource import AccessPackageResource
    from msgraph.generated.models.access_package_resource_request import AccessPackageResourceRequest
    from msgraph.generated.models.access_package_resource_role import AccessPackageResourceRole
    from msgraph.generated.models.access_package_resource_role_scope import AccessPackageResourceRoleScope
    from msgraph.generated.models.access_package_resource_scope import AccessPackageResourceScope
    from msgraph.generated.models.access_package_subject import AccessPackageSubject
    from msgraph.generated.models.allowed_target_scope import AllowedTargetScope
    from msgraph.generated.models.app_role import AppRole
    from msgraph.generated.models.application import Application
    from msgraph.generated.models.service_principal import ServicePrincipal
    from msgraph.generated.models.user import User
    import uuid

    print("v1.0 SDK, an application as a resource:")
    client = client_for("v1.0", f"{server.base}/v1.0", admin_token)
    em = client.identity_governance.entitlement_management
    role_id = uuid.uuid4()
    application = await client.applications.post(
        Application(
            display_name="Payroll",
            app_roles=[AppRole(id=role_id, display_name="Reader", value="Payroll.Read", allowed_member_types=["User"], is_enabled=True, description="Reads payslips")],
        )
    )
    check(application is not None and application.app_id, "applications.post creates the application")
    check(any(r.id == role_id for r in application.app_roles or []), "the app role reads back with its id")
    sp = await client.service_principals.post(ServicePrincipal(app_id=application.app_id))
    check(sp is not None and sp.id and sp.app_id == application.app_id, "servicePrincipals.post gives its service principal")
    user = await client.users.post(User(display_name="Pradeep Gupta", user_principal_name="pradeep@contoso.com", account_enabled=True))
    catalog = await em.catalogs.post(AccessPackageCatalog(display_name="Applications"))
    await em.resource_requests.post(
        AccessPackageResourceRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            resource=AccessPackageResource(origin_id=sp.id, origin_system="AadApplication"),
            catalog=AccessPackageCatalog(id=catalog.id),
        )
    )
    resources = await em.catalogs.by_access_package_catalog_id(catalog.id).resources.get()
    resource = resources.value[0]
    check(resource.origin_system == "AadApplication" and resource.origin_id == sp.id, "the service principal is a resource of the catalog")
    package = await em.access_packages.post(AccessPackage(display_name="Payroll readers", catalog=AccessPackageCatalog(id=catalog.id)))
    await em.access_packages.by_access_package_id(package.id).resource_role_scopes.post(
        AccessPackageResourceRoleScope(
            role=AccessPackageResourceRole(origin_id=str(role_id), origin_system="AadApplication", resource=AccessPackageResource(id=resource.id)),
            scope=AccessPackageResourceScope(origin_id=sp.id, origin_system="AadApplication"),
        )
    )
    policy = await em.assignment_policies.post(
        AccessPackageAssignmentPolicy(display_name="Direct", allowed_target_scope=AllowedTargetScope.NotSpecified, access_package=AccessPackage(id=package.id))
    )
    await em.assignment_requests.post(
        AccessPackageAssignmentRequest(
            request_type=AccessPackageRequestType.AdminAdd,
            assignment=AccessPackageAssignment(
                target=AccessPackageSubject(object_id=user.id),
                assignment_policy=AccessPackageAssignmentPolicy(id=policy.id),
                access_package=AccessPackage(id=package.id),
            ),
        )
    )
    server.call("POST", "/_grantry/clock/advance", admin_token, {"duration": "PT0S"})
    assigned = await client.service_principals.by_service_principal_id(sp.id).app_role_assigned_to.get()
    check(
        assigned is not None and len(assigned.value) == 1 and assigned.value[0].app_role_id == role_id and str(assigned.value[0].principal_id) == user.id,
        "servicePrincipals/{id}/appRoleAssignedTo lists the delivered app role",
    )
    mine = await client.users.by_user_id(user.id).app_role_assignments.get()
    check(mine is not None and len(mine.value) == 1 and str(mine.value[0].resource_id) == sp.id, "users/{id}/appRoleAssignments lists it too")


async def flow_connected(server: Server, admin_token: str) -> None:
    """A connected organization round trip through both SDKs: create it with a domain
    identity source, read it back, add and list an internal sponsor by $ref, change its
    state, remove the sponsor and delete the organization; then the same organization read
    through the beta SDK."""
    from msgraph.generated.models.connected_organization import ConnectedOrganization
    from msgraph.generated.models.connected_organization_state import ConnectedOrganizationState
    from msgraph.generated.models.domain_identity_source import DomainIdentitySource
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.reference_create import ReferenceCreate
    from msgraph.generated.models.user import User

    client = client_for("v1.0", f"{server.base}/v1.0", admin_token)
    beta = client_for("beta", f"{server.base}/beta", admin_token)
    orgs = client.identity_governance.entitlement_management.connected_organizations
    print("connected organizations (v1.0 and beta SDKs):")
    sponsor = await client.users.post(User(display_name="Sara Sponsor", user_principal_name="sara@contoso.com", account_enabled=True))
    created = await orgs.post(
        ConnectedOrganization(
            display_name="Fabrikam",
            description="Fabrikam partners",
            identity_sources=[DomainIdentitySource(domain_name="fabrikam.com", display_name="Fabrikam")],
            state=ConnectedOrganizationState.Configured,
        )
    )
    check(created is not None and created.id and created.state == ConnectedOrganizationState.Configured, "connectedOrganizations.post creates a configured organization")
    source = (created.identity_sources or [None])[0]
    check(isinstance(source, DomainIdentitySource) and source.domain_name == "fabrikam.com", "its identity source reads back as a domainIdentitySource")
    org = orgs.by_connected_organization_id(created.id)
    await org.internal_sponsors.ref.post(ReferenceCreate(odata_id=f"{server.base}/v1.0/users/{sponsor.id}"))
    sponsors = await org.internal_sponsors.get()
    check(sponsors is not None and [s.id for s in sponsors.value] == [sponsor.id], "internalSponsors/$ref adds the sponsor; internalSponsors lists it as a user")
    check(type(sponsors.value[0]).__name__ == "User", "the sponsor is deserialized as a User")
    await org.patch(ConnectedOrganization(state=ConnectedOrganizationState.Proposed))
    again = await org.get()
    check(again.state == ConnectedOrganizationState.Proposed and again.display_name == "Fabrikam", "patch changes the state and keeps the rest")
    listed = await orgs.get()
    check(listed is not None and [o.id for o in listed.value] == [created.id], "connectedOrganizations.get lists it")
    b = await beta.identity_governance.entitlement_management.connected_organizations.by_connected_organization_id(created.id).get()
    check(b is not None and b.display_name == "Fabrikam" and b.created_by, "the beta SDK reads it with createdBy")
    try:
        await orgs.post(ConnectedOrganization(display_name="Copy", identity_sources=[DomainIdentitySource(domain_name="fabrikam.com")]))
        check(False, "a second organization for the same domain is refused")
    except ODataError as e:
        check(e.response_status_code == 409 and e.error is not None and e.error.code, "a second organization for the same domain -> ODataError 409")
    await org.internal_sponsors.by_directory_object_id(sponsor.id).ref.delete()
    sponsors = await org.internal_sponsors.get()
    check(sponsors is not None and sponsors.value == [], "internalSponsors/{id}/$ref delete removes the sponsor")
    await org.delete()
    try:
        await org.get()
        check(False, "a deleted organization is gone")
    except ODataError as e:
        check(e.response_status_code == 404, "a deleted organization -> ODataError 404")


async def flow_subjects(server: Server, admin_token: str) -> None:
    """A guest's access package subject through both SDKs: read by its objectId (the
    alternate key), taken out of the external user lifecycle with a v1.0 PATCH of
    subjectLifecycle, and given another connected organization with a beta PATCH."""
    from msgraph.generated.models.access_package_subject import AccessPackageSubject
    from msgraph.generated.models.access_package_subject_lifecycle import AccessPackageSubjectLifecycle
    from msgraph_beta.generated.models.access_package_subject import AccessPackageSubject as BetaSubject
    from msgraph_beta.generated.models.access_package_subject_lifecycle import (
        AccessPackageSubjectLifecycle as BetaLifecycle,
    )

    client = client_for("v1.0", f"{server.base}/v1.0", admin_token)
    beta = client_for("beta", f"{server.base}/beta", admin_token)
    em = "/v1.0/identityGovernance/entitlementManagement"
    print("subjects (v1.0 and beta SDKs):")

    def org(name: str, domain: str) -> dict:
        return server.call(
            "POST",
            f"{em}/connectedOrganizations",
            admin_token,
            {"displayName": name, "state": "configured",
             "identitySources": [{"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": domain}]},
        )

    woodgrove, litware = org("Woodgrove", "woodgrove.com"), org("Litware", "litware.com")
    guest = server.call(
        "POST",
        "/v1.0/users",
        admin_token,
        {"displayName": "Gail", "userPrincipalName": "gail_eng.woodgrove.com#EXT#@contoso.onmicrosoft.com",
         "mail": "gail@eng.woodgrove.com", "userType": "Guest"},
    )
    catalog = server.call("POST", f"{em}/catalogs", admin_token, {"displayName": "Partners", "isExternallyVisible": True})
    package = server.call("POST", f"{em}/accessPackages", admin_token, {"displayName": "Partner portal", "catalog": {"id": catalog["id"]}})
    policy = server.call(
        "POST",
        f"{em}/assignmentPolicies",
        admin_token,
        {"displayName": "Partners", "allowedTargetScope": "allExternalUsers", "accessPackage": {"id": package["id"]},
         "expiration": {"type": "noExpiration"}, "requestApprovalSettings": {"isApprovalRequiredForAdd": False}},
    )
    server.call(
        "POST",
        f"{em}/assignmentRequests",
        admin_token,
        {"requestType": "adminAdd",
         "assignment": {"targetId": guest["id"], "assignmentPolicyId": policy["id"], "accessPackageId": package["id"]}},
    )
    subject = client.identity_governance.entitlement_management.subjects_with_object_id(guest["id"])
    got = await subject.get()
    check(got is not None and got.object_id == guest["id"] and got.subject_lifecycle == AccessPackageSubjectLifecycle.Governed, "subjects(objectId=…).get reads the guest's subject, governed")
    await subject.patch(AccessPackageSubject(subject_lifecycle=AccessPackageSubjectLifecycle.NotGoverned))
    got = await subject.get()
    check(got.subject_lifecycle == AccessPackageSubjectLifecycle.NotGoverned, "subjects(objectId=…).patch sets subjectLifecycle")
    b = beta.identity_governance.entitlement_management.subjects_with_object_id(guest["id"])
    bgot = await b.get()
    check(bgot is not None and bgot.connected_organization_id == woodgrove["id"], "the beta SDK reads the organization of the guest's parent domain")
    check(bgot.subject_lifecycle == BetaLifecycle.NotGoverned, "the beta SDK reads subjectLifecycle as its enum")
    await b.patch(BetaSubject(connected_organization_id=litware["id"]))
    bgot = await b.get()
    check(bgot.connected_organization_id == litware["id"], "a beta patch sets the subject's connected organization")


def main() -> int:
    binary = os.environ.get("GRANTRY_BIN")
    if not binary or not os.path.exists(binary):
        print("GRANTRY_BIN must name the grantry binary", file=sys.stderr)
        return 2
    roles = "EntitlementManagement.ReadWrite.All,User.ReadWrite.All,Group.ReadWrite.All,GroupMember.ReadWrite.All,AccessReview.ReadWrite.All,Application.ReadWrite.All"
    # The same flows twice, each on a fresh server: as the Python SDK sends requests, then
    # with every request body gzip-compressed as the Go SDK sends them.
    for compressed in (False, True):
        server = Server(binary)
        try:
            admin = server.token("--app", "sdk-e2e", "--roles", roles)
            handler = gzip_request_bodies_handler() if compressed else None
            asyncio.run(flow_v1(server, admin, handler))
            asyncio.run(flow_beta(server, admin, handler))
            if not compressed:
                asyncio.run(flow_reviews(server, admin))
                asyncio.run(flow_reviews_beta(server, admin))
                asyncio.run(flow_apps(server, admin))
                asyncio.run(flow_connected(server, admin))
                asyncio.run(flow_subjects(server, admin))
            if handler is not None:
                check(handler.compressed >= 8, f"{handler.compressed} request bodies were sent gzip-compressed")
                check(handler.refused == 0, f"no compressed body was refused with 415 ({handler.refused} were)")
        except Exception as e:  # an unexpected exception is a failure, reported with its type
            import traceback

            traceback.print_exc()
            check(False, f"unexpected {type(e).__name__}: {e}")
        finally:
            server.stop()
    failed = [w for ok, w in CHECKS if not ok]
    print(f"sdk: {len(CHECKS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
