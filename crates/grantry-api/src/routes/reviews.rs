//! Access reviews of access package assignments under `identityGovernance/accessReviews`:
//! definitions (one per policy with reviews on), their instances and decision items.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use grantry_core::listing::Listed;
use grantry_core::reviews;
use grantry_domain::model::{MAX_STAGES, ReviewDefinition, Reviewer, STAGE_DECISIONS, StageSetting};
use grantry_domain::{Error, Result};
use grantry_graph::{Body, Dialect, review as wire};
use serde_json::Value;

pub const AR: &str = "identityGovernance/accessReviews";

pub fn routes() -> Router<AppState> {
    let defs = format!("/{AR}/definitions");
    Router::new()
        .route(&defs, get(list_definitions).post(create_definition))
        .route(&format!("{defs}/filterByCurrentUser/{{args}}"), get(my_definitions))
        .route(&format!("{defs}/{{d}}"), get(get_definition).put(put_definition).delete(delete_definition))
        .route(&format!("{defs}/{{d}}/stop"), post(stop_definition))
        .route(&format!("{defs}/{{d}}/instances"), get(list_instances))
        .route(&format!("{defs}/{{d}}/instances/filterByCurrentUser/{{args}}"), get(my_instances))
        .route(&format!("{defs}/{{d}}/instances/{{i}}"), get(get_instance).put(put_instance))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/stages"), get(list_stages))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/stages/filterByCurrentUser/{{args}}"), get(my_stages))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/stages/{{s}}"), get(get_stage).patch(patch_stage))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/stages/{{s}}/stop"), post(stop_stage))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/stages/{{s}}/decisions"), get(list_stage_decisions))
        .route(
            &format!("{defs}/{{d}}/instances/{{i}}/stages/{{s}}/decisions/filterByCurrentUser/{{args}}"),
            get(my_stage_decisions),
        )
        .route(
            &format!("{defs}/{{d}}/instances/{{i}}/stages/{{s}}/decisions/{{x}}"),
            get(get_stage_decision).patch(patch_stage_decision),
        )
        .route(&format!("{defs}/{{d}}/instances/{{i}}/decisions"), get(list_decisions))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/decisions/filterByCurrentUser/{{args}}"), get(my_decisions))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/decisions/{{x}}"), get(get_decision).patch(patch_decision))
        .route(
            &format!("{defs}/{{d}}/instances/{{i}}/decisions/filterByCurrentUser/{{args}}/recordAllDecisions"),
            post(record_all_in_instance),
        )
        .route(&format!("{defs}/{{d}}/instances/{{i}}/contactedReviewers"), get(list_contacted))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/batchRecordDecisions"), post(batch_record))
        .route(&format!("{defs}/{{d}}/instances/{{i}}/{{action}}"), post(instance_action))
        .route(&format!("/{AR}/decisions/filterByCurrentUser/{{args}}"), get(my_decisions_everywhere))
        .route(&format!("/{AR}/decisions/filterByCurrentUser/{{args}}/recordAllDecisions"), post(record_all))
        // The beta SDK sends it here, bound to the decisions collection.
        .route(&format!("/{AR}/decisions/recordAllDecisions"), post(record_all_bound))
}

/// Graph's access review docs advise `$skip=0` with `$top`; a zero skip changes nothing, so
/// it is accepted here (any other `$skip` is refused as on every collection).
fn options(q: &RawQuery) -> ApiResult<grantry_core::listing::ListOptions> {
    let mut q = RawQuery { pairs: q.pairs.clone(), path: q.path.clone(), method: q.method.clone() };
    q.pairs.retain(|(k, v)| !(k.trim_start_matches('$').eq_ignore_ascii_case("skip") && v.trim() == "0"));
    q.list_options()
}

/// `filterByCurrentUser(on='reviewer')`: the only value for access reviews in v1.0.
fn parse_reviewer(args: &str) -> Result<()> {
    let inner = args.trim().trim_start_matches('(').trim_end_matches(')');
    let value = inner.split_once('=').map(|(_, v)| v).unwrap_or(inner).trim().trim_matches('\'').trim_matches('"');
    if value.eq_ignore_ascii_case("reviewer") {
        Ok(())
    } else {
        Err(Error::bad_request("BadRequest", format!("filterByCurrentUser: 'on' must be 'reviewer'; got '{value}'."))
            .with_target("on"))
    }
}

fn definitions_set() -> String {
    format!("{AR}/definitions")
}

fn instances_set(d: &str) -> String {
    format!("{AR}/definitions('{d}')/instances")
}

fn decisions_set(d: &str, i: &str) -> String {
    format!("{AR}/definitions('{d}')/instances('{i}')/decisions")
}

fn listed<T: serde::Serialize>(s: &AppState, d: Dialect, set: &str, page: Listed<T>, q: &RawQuery) -> Response {
    respond::collection(s, d, set, page, q)
}

async fn list_definitions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = reviews::list_definitions(&s.app, &caller, options(&q)?).await?;
    Ok(listed(&s, d, &definitions_set(), page.map(|x| wire::definition(&x, d)), &q))
}

async fn my_definitions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    let page = reviews::list_my_definitions(&s.app, &caller, options(&q)?).await?;
    let set = "Collection(microsoft.graph.accessReviewScheduleDefinition)";
    Ok(listed(&s, d, set, page.map(|x| wire::definition(&x, d)), &q))
}

/// Access package reviews are created through the policy, as in Entra: a direct create
/// with an access package scope is refused the way Graph refuses it, and Grantry reviews
/// nothing else.
async fn create_definition(Authed(caller): Authed, GraphJson(json): GraphJson) -> ApiResult<Response> {
    caller.require(reviews::REVIEW_WRITE)?;
    let body = Body::root(&json)?;
    let query = body.object(&["scope"])?.and_then(|scope| scope.str(&["query"]).ok().flatten()).unwrap_or_default();
    if query.to_ascii_lowercase().contains("accesspackageassignments") {
        return Err(Error::bad_request(
            "BadRequest",
            format!(
                "Query {query} is not supported. Please pass in one of the following queries : /users/{{userId}}, /groups/{{groupId}}/owners, /groups/{{groupId}}/transitiveMembers, /servicePrincipals/{{servicePrincipalId}}/appRoleAssignedTo. Reviews of access package assignments are created through the assignment policy: set 'reviewSettings' (beta 'accessReviewSettings') on the policy."
            ),
        )
        .with_target("scope")
        .into());
    }
    Err(Error::bad_request(
        "NotSupported",
        "Grantry runs access reviews of access package assignments only, and those are created through the assignment policy's 'reviewSettings' (beta 'accessReviewSettings'); reviews of groups, applications or roles cannot be created here.",
    )
    .with_target("scope")
    .into())
}

async fn get_definition(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let def = reviews::get_definition(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, &definitions_set(), wire::definition(&def, d)))
}

/// Whether everything `sent` says is what `current` already is (annotations aside).
fn agrees(sent: &Value, current: &Value) -> bool {
    match (sent, current) {
        (Value::Object(s), Value::Object(c)) => s
            .iter()
            .filter(|(k, _)| !k.starts_with("@odata"))
            .all(|(k, v)| c.get(k).map_or(v.is_null(), |cv| agrees(v, cv))),
        (Value::Array(s), Value::Array(c)) => s.len() == c.len() && s.iter().zip(c).all(|(a, b)| agrees(a, b)),
        (Value::Null, Value::Array(c)) => c.is_empty(),
        (s, c) => s == c,
    }
}

/// Members of a definition the policy determines; a PUT may send them only unchanged.
const POLICY_OWNED: &[&str] = &[
    "scope",
    "instanceEnumerationScope",
    "reviewers",
    "fallbackReviewers",
    "backupReviewers",
    "additionalNotificationRecipients",
];
/// Settings a PUT may change; the other settings come from the policy.
const WRITABLE_SETTINGS: &[&str] =
    &["autoApplyDecisionsEnabled", "mailNotificationsEnabled", "reminderNotificationsEnabled"];

/// PUT (as Graph updates definitions): names, descriptions, auto-apply, mail and reminders
/// may change; what the policy determines must be sent unchanged (or left out).
async fn put_definition(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    caller.require(reviews::REVIEW_WRITE)?;
    let body = Body::root(&json)?;
    crate::schema::check(&body, d, "accessReviewScheduleDefinition")?;
    let def = reviews::get_definition(&s.app, &caller, &id).await?;
    let current = wire::to_json(&wire::definition(&def, d));
    let owned = |key: &str| {
        Error::bad_request(
            "PolicyOwnedProperty",
            format!(
                "'{key}' of an access package review is set by its assignment policy '{}'; change the policy's reviewSettings (beta accessReviewSettings) instead, or send the value unchanged.",
                def.policy_id
            ),
        )
        .with_target(key)
    };
    for key in POLICY_OWNED {
        if let Some(v) = json.get(*key)
            && !agrees(v, &current[*key])
        {
            return Err(owned(key).into());
        }
    }
    let mut overrides = grantry_domain::model::DefinitionOverrides::default();
    if let Some(settings) = json.get("settings").and_then(Value::as_object) {
        for (k, v) in settings {
            if k.starts_with("@odata") {
                continue;
            }
            if WRITABLE_SETTINGS.contains(&k.as_str()) {
                let Some(b) = v.as_bool() else {
                    return Err(Error::invalid_property(
                        &format!("settings.{k}"),
                        format!("'settings.{k}' must be true or false."),
                    )
                    .into());
                };
                match k.as_str() {
                    "autoApplyDecisionsEnabled" => overrides.auto_apply_decisions_enabled = Some(b),
                    "mailNotificationsEnabled" => overrides.mail_notifications_enabled = Some(b),
                    _ => overrides.reminder_notifications_enabled = Some(b),
                }
            } else if !agrees(v, &current["settings"][k]) {
                return Err(owned(&format!("settings.{k}")).into());
            }
        }
    }
    let text = |key: &str| -> Result<Option<String>> {
        let v = body.str(&[key])?;
        if let Some(t) = &v {
            body.check_length(key, t)?;
        }
        Ok(v)
    };
    if let Some(v) = json.get("stageSettings") {
        overrides.stage_settings = Some(parse_stage_settings(v, &def)?);
    }
    overrides.display_name = text("displayName")?.filter(|n| !n.trim().is_empty());
    overrides.description_for_admins = text("descriptionForAdmins")?;
    overrides.description_for_reviewers = text("descriptionForReviewers")?;
    reviews::replace_definition(&s.app, &caller, &def.id, overrides).await?;
    Ok(respond::no_content())
}

async fn delete_definition(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    reviews::delete_definition(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn instances(
    s: &AppState,
    d: Dialect,
    caller: &grantry_core::Caller,
    def_id: &str,
    q: &RawQuery,
    only_mine: bool,
) -> ApiResult<Response> {
    let def = reviews::get_definition(&s.app, caller, def_id).await?;
    let page = reviews::list_instances(&s.app, caller, &def.id, options(q)?, only_mine).await?;
    Ok(listed(s, d, &instances_set(&def.id), page.map(|x| wire::instance(&x, &def, d)), q))
}

async fn list_instances(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(def_id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    instances(&s, d, &caller, &def_id, &q, false).await
}

async fn my_instances(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, args)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    instances(&s, d, &caller, &def_id, &q, true).await
}

async fn get_instance(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let def = reviews::get_definition(&s.app, &caller, &def_id).await?;
    let inst = reviews::get_instance(&s.app, &caller, &def.id, &inst_id).await?;
    Ok(respond::entity(&s, d, &instances_set(&def.id), wire::instance(&inst, &def, d)))
}

/// The entity set of the items at `place`: a run's decisions or a stage's.
fn items_set(place: &reviews::ItemsPlace) -> String {
    let run = decisions_set(&place.definition_id, &place.instance_id);
    match &place.stage {
        Some((stage, _)) => format!("{}('{stage}')/decisions", stages_set(&place.definition_id, &place.instance_id)),
        None => run,
    }
}

/// The decision items of a run or of one of its stages (`only_mine`: the caller's).
async fn decisions(
    s: &AppState,
    d: Dialect,
    caller: &grantry_core::Caller,
    at: reviews::ItemsAt<'_>,
    q: &RawQuery,
    only_mine: bool,
) -> ApiResult<Response> {
    let (place, page) = reviews::list_decisions(&s.app, caller, at, options(q)?, only_mine).await?;
    let base = &s.config.public_base_url;
    Ok(listed(s, d, &items_set(&place), page.map(|x| wire::decision(&place.show(&x), d, base)), q))
}

/// One decision item of a run or of one of its stages.
async fn decision(
    s: &AppState,
    d: Dialect,
    caller: &grantry_core::Caller,
    at: reviews::ItemsAt<'_>,
    x: &str,
) -> ApiResult<Response> {
    let (place, item) = reviews::get_decision(&s.app, caller, at, x).await?;
    Ok(respond::entity(s, d, &items_set(&place), wire::decision(&place.show(&item), d, &s.config.public_base_url)))
}

/// A reviewer's decision on one item of a run or of the stage under way.
async fn record(
    s: &AppState,
    d: Dialect,
    caller: &grantry_core::Caller,
    at: reviews::ItemsAt<'_>,
    x: &str,
    json: &Value,
) -> ApiResult<Response> {
    let input = parse_record(json, d, "accessReviewInstanceDecisionItem")?;
    reviews::record_decision(&s.app, caller, at, x, input).await?;
    Ok(respond::no_content())
}

async fn list_decisions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    decisions(&s, d, &caller, reviews::ItemsAt::run(&def_id, &inst_id), &q, false).await
}

async fn my_decisions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, args)): Path<(String, String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    decisions(&s, d, &caller, reviews::ItemsAt::run(&def_id, &inst_id), &q, true).await
}

async fn get_decision(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, x)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    decision(&s, d, &caller, reviews::ItemsAt::run(&def_id, &inst_id), &x).await
}

/// Reads `{decision, justification, principalId, resourceId}`.
fn parse_record(json: &Value, d: Dialect, type_name: &str) -> Result<reviews::RecordInput> {
    let body = Body::root(json)?;
    let raw = body.str(&["decision"])?.ok_or_else(|| {
        Error::invalid_property(
            "decision",
            "'decision' is required: send \"Approve\", \"Deny\", \"DontKnow\" or \"NotReviewed\" (with a 'justification' where the review requires one).",
        )
    })?;
    let decision = grantry_domain::model::Decision::parse(&raw).ok_or_else(|| {
        Error::invalid_property(
            "decision",
            format!("'decision' must be one of Approve, Deny, DontKnow, NotReviewed; got '{raw}'."),
        )
    })?;
    let justification = body.str(&["justification"])?;
    if let Some(j) = &justification {
        body.check_length("justification", j)?;
    }
    let principal_id = body.str(&["principalId"])?.filter(|s| !s.trim().is_empty());
    let resource_id = body.str(&["resourceId"])?.filter(|s| !s.trim().is_empty());
    if type_name == "accessReviewInstanceDecisionItem" {
        crate::schema::check(&body, d, type_name)?;
    }
    Ok(reviews::RecordInput { decision, justification, principal_id, resource_id })
}

async fn patch_decision(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, x)): Path<(String, String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    record(&s, d, &caller, reviews::ItemsAt::run(&def_id, &inst_id), &x, &json).await
}

async fn batch_record(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id)): Path<(String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let input = parse_record(&json, d, "batchRecordDecisions")?;
    reviews::batch_record(&s.app, &caller, &def_id, &inst_id, input).await?;
    Ok(respond::no_content())
}

async fn record_all_in_instance(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, args)): Path<(String, String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    let input = parse_record(&json, d, "recordAllDecisions")?;
    reviews::batch_record(&s.app, &caller, &def_id, &inst_id, input).await?;
    Ok(respond::no_content())
}

async fn record_all(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    let input = parse_record(&json, d, "recordAllDecisions")?;
    reviews::record_all(&s.app, &caller, input).await?;
    Ok(respond::no_content())
}

/// Beta `decisions/recordAllDecisions` (as the beta SDK addresses it): the caller's items.
async fn record_all_bound(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let input = parse_record(&json, d, "recordAllDecisions")?;
    reviews::record_all(&s.app, &caller, input).await?;
    Ok(respond::no_content())
}

async fn my_decisions_everywhere(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    let page = reviews::list_my_decisions_everywhere(&s.app, &caller, options(&q)?).await?;
    let base = &s.config.public_base_url;
    let set = "Collection(microsoft.graph.accessReviewInstanceDecisionItem)";
    Ok(listed(&s, d, set, page.map(|x| wire::decision(&x.shown(), d, base)), &q))
}

async fn list_contacted(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    q.page()?;
    let people = reviews::contacted_reviewers(&s.app, &caller, &def_id, &inst_id).await?;
    let items: Vec<_> = people.iter().map(wire::contacted_reviewer).collect();
    let set = format!("{AR}/definitions('{def_id}')/instances('{inst_id}')/contactedReviewers");
    Ok(listed(&s, d, &set, Listed { items, next: None, count: None }, &q))
}

/// The instance actions: `stop`, `applyDecisions`, `resetDecisions`,
/// `acceptRecommendations`, `sendReminder`. They take no parameters.
async fn instance_action(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((def_id, inst_id, action)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let app = &s.app;
    match action.as_str() {
        "stop" => reviews::stop(app, &caller, &def_id, &inst_id).await?,
        "applyDecisions" => reviews::apply_decisions(app, &caller, &def_id, &inst_id).await?,
        "resetDecisions" => reviews::reset_decisions(app, &caller, &def_id, &inst_id).await?,
        "acceptRecommendations" => {
            reviews::accept_recommendations(app, &caller, &def_id, &inst_id).await.map(|_| ())?
        }
        "sendReminder" => reviews::send_reminder(app, &caller, &def_id, &inst_id).await?,
        other => return Err(crate::error::not_found_route("POST", &format!("…/instances/{inst_id}/{other}"))),
    }
    Ok(respond::no_content())
}

/// Reads `accessReviewReviewerScope[]` (`[]`: self-review).
fn parse_reviewers(v: &Value, target: &str) -> Result<Vec<Reviewer>> {
    let Some(items) = v.as_array() else {
        return Err(Error::invalid_property(
            target,
            format!("'{target}' must be an array of accessReviewReviewerScope objects."),
        ));
    };
    items
        .iter()
        .map(|item| {
            let query = item.get("query").and_then(Value::as_str).unwrap_or_default();
            let root = item.get("queryRoot").and_then(Value::as_str);
            Reviewer::from_query(query, root).ok_or_else(|| {
                Error::invalid_property(
                    target,
                    format!(
                        "Reviewer query '{query}' is not supported; use /users/{{id}}, /groups/{{id}}/transitiveMembers, or ./manager with queryRoot 'decisions' ([] for a self-review)."
                    ),
                )
            })
        })
        .collect()
}

/// New `reviewers` and `fallbackReviewers` (`None`: unchanged).
type ReviewerChange = (Option<Vec<Reviewer>>, Option<Vec<Reviewer>>);

/// Reads the reviewers an instance PUT or a stage PATCH sends (absent or null: unchanged).
fn parse_reviewer_change(json: &Value) -> Result<ReviewerChange> {
    let read = |key: &str| json.get(key).filter(|v| !v.is_null()).map(|v| parse_reviewers(v, key)).transpose();
    Ok((read("reviewers")?, read("fallbackReviewers")?))
}

/// Reads `stageSettings` for a definition PUT: at most three stages, each depending on the
/// one before it, durations that fit in one recurrence period.
fn parse_stage_settings(v: &Value, def: &ReviewDefinition) -> Result<Vec<StageSetting>> {
    let Some(items) = v.as_array() else {
        return Err(Error::invalid_property(
            "stageSettings",
            "'stageSettings' must be an array of accessReviewStageSettings.",
        ));
    };
    if items.len() > MAX_STAGES {
        return Err(Error::invalid_property(
            "stageSettings",
            format!("A review has at most {MAX_STAGES} stages; got {}.", items.len()),
        ));
    }
    let mut out: Vec<StageSetting> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let at = |k: &str| format!("stageSettings[{n}].{k}");
        let Some(obj) = item.as_object() else {
            return Err(Error::invalid_property(
                &format!("stageSettings[{n}]"),
                "Each stage setting must be an object.",
            ));
        };
        let stage_id = match obj.get("stageId") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(Value::Number(x)) => x.to_string(),
            _ => return Err(Error::invalid_property(&at("stageId"), "'stageId' is required (e.g. \"1\").")),
        };
        if out.iter().any(|s| s.stage_id == stage_id) {
            return Err(Error::invalid_property(&at("stageId"), format!("Stage id '{stage_id}' is used twice.")));
        }
        let depends_on: Vec<String> = match obj.get("dependsOn") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect()
            }
            Some(_) => {
                return Err(Error::invalid_property(&at("dependsOn"), "'dependsOn' must be an array of stage ids."));
            }
        };
        let expected: Vec<String> = out.last().map(|p| vec![p.stage_id.clone()]).unwrap_or_default();
        if depends_on != expected {
            return Err(Error::invalid_property(
                &at("dependsOn"),
                match expected.first() {
                    Some(prev) => {
                        format!("Stages run one after another: stage '{stage_id}' must have dependsOn [\"{prev}\"].")
                    }
                    None => {
                        format!("The first stage ('{stage_id}') depends on no other stage; leave 'dependsOn' empty.")
                    }
                },
            ));
        }
        let duration =
            obj.get("durationInDays").and_then(Value::as_i64).filter(|d| (1..=3650).contains(d)).ok_or_else(|| {
                Error::invalid_property(
                    &at("durationInDays"),
                    "'durationInDays' is required: a whole number of days, at least 1.",
                )
            })?;
        let moves = match obj.get("decisionsThatWillMoveToNextStage") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => {
                let mut list = Vec::new();
                for x in a {
                    let raw = x.as_str().unwrap_or_default();
                    let known =
                        STAGE_DECISIONS.iter().find(|d| d.eq_ignore_ascii_case(raw.trim())).ok_or_else(|| {
                            Error::invalid_property(
                                &at("decisionsThatWillMoveToNextStage"),
                                format!("'{raw}' is not a decision; use {}.", STAGE_DECISIONS.join(", ")),
                            )
                        })?;
                    list.push(known.to_string());
                }
                Some(list)
            }
            Some(_) => {
                return Err(Error::invalid_property(
                    &at("decisionsThatWillMoveToNextStage"),
                    "'decisionsThatWillMoveToNextStage' must be an array of decisions.",
                ));
            }
        };
        let reviewers = match obj.get("reviewers") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_reviewers(v, &at("reviewers"))?,
        };
        let fallback = match obj.get("fallbackReviewers") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_reviewers(v, &at("fallbackReviewers"))?,
        };
        let recommendations = obj.get("recommendationsEnabled").and_then(Value::as_bool);
        out.push(StageSetting {
            stage_id,
            depends_on,
            duration_in_days: duration as i32,
            decisions_that_will_move_to_next_stage: moves,
            reviewers: if reviewers.is_empty() { vec![Reviewer::SelfReview] } else { reviewers },
            fallback_reviewers: fallback,
            recommendations_enabled: recommendations,
        });
    }
    let total: i64 = out.iter().map(|s| i64::from(s.duration_in_days)).sum();
    let r = &def.settings.recurrence;
    if let (Some(a), Some(b)) = (r.occurrence(0), r.occurrence(1)) {
        let period = (b - a).num_days();
        if total > period {
            return Err(Error::invalid_property(
                "stageSettings",
                format!(
                    "The stages last {total} days in all, longer than one recurrence period ({period} days); shorten them so runs do not overlap."
                ),
            ));
        }
    }
    Ok(out)
}

/// Instance PUT (as Graph updates instances): `reviewers` and `fallbackReviewers` of a run
/// in progress; `scope` may be sent only unchanged. Answers 200 with the run.
async fn put_instance(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id)): Path<(String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    caller.require(reviews::REVIEW_WRITE)?;
    let body = Body::root(&json)?;
    crate::schema::check(&body, d, "accessReviewInstance")?;
    let def = reviews::get_definition(&s.app, &caller, &def_id).await?;
    let current = reviews::get_instance(&s.app, &caller, &def.id, &inst_id).await?;
    let shown = wire::to_json(&wire::instance(&current, &def, d));
    for key in ["scope", "startDateTime", "endDateTime", "status"] {
        if let Some(v) = json.get(key)
            && !agrees(v, &shown[key])
        {
            return Err(Error::bad_request(
                "ReadOnlyProperty",
                format!("'{key}' of an access review instance cannot be changed; send it unchanged or leave it out. Only 'reviewers' and 'fallbackReviewers' can be changed."),
            )
            .with_target(key)
            .into());
        }
    }
    let (reviewers, fallback) = parse_reviewer_change(&json)?;
    let (inst, _) =
        reviews::change_reviewers_at(&s.app, &caller, reviews::ItemsAt::run(&def.id, &current.id), reviewers, fallback)
            .await?;
    Ok(respond::entity(&s, d, &instances_set(&def.id), wire::instance(&inst, &def, d)))
}

async fn stop_definition(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    reviews::stop_definition(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

fn stages_set(d: &str, i: &str) -> String {
    format!("{AR}/definitions('{d}')/instances('{i}')/stages")
}

async fn stages(
    s: &AppState,
    d: Dialect,
    caller: &grantry_core::Caller,
    (def_id, inst_id): (&str, &str),
    q: &RawQuery,
    only_mine: bool,
) -> ApiResult<Response> {
    q.page()?;
    let (inst, stages) = reviews::list_stages(&s.app, caller, (def_id, inst_id), only_mine).await?;
    let items: Vec<_> = stages.iter().map(wire::stage).collect();
    let set = stages_set(&inst.definition_id, &inst.id);
    Ok(listed(s, d, &set, Listed { items, next: None, count: None }, q))
}

async fn list_stages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    stages(&s, d, &caller, (&def_id, &inst_id), &q, false).await
}

async fn my_stages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, args)): Path<(String, String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    stages(&s, d, &caller, (&def_id, &inst_id), &q, true).await
}

async fn get_stage(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (inst, stage) = reviews::get_stage(&s.app, &caller, (&def_id, &inst_id, &stage_id)).await?;
    Ok(respond::entity(&s, d, &stages_set(&inst.definition_id, &inst.id), wire::stage(&stage)))
}

/// Stage PATCH: `reviewers` and `fallbackReviewers` of the stage under way; 200 with the stage.
async fn patch_stage(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id)): Path<(String, String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    caller.require(reviews::REVIEW_WRITE)?;
    let body = Body::root(&json)?;
    crate::schema::check(&body, d, "accessReviewStage")?;
    for key in ["startDateTime", "endDateTime", "status"] {
        if json.get(key).is_some() {
            return Err(Error::bad_request(
                "ReadOnlyProperty",
                format!(
                    "'{key}' of an access review stage cannot be changed; only 'reviewers' and 'fallbackReviewers' can."
                ),
            )
            .with_target(key)
            .into());
        }
    }
    let (reviewers, fallback) = parse_reviewer_change(&json)?;
    let at = reviews::ItemsAt::stage(&def_id, &inst_id, &stage_id);
    let (inst, stage) = reviews::change_reviewers_at(&s.app, &caller, at, reviewers, fallback).await?;
    let stage = stage.ok_or_else(|| Error::internal("a stage PATCH changed no stage"))?;
    Ok(respond::entity(&s, d, &stages_set(&inst.definition_id, &inst.id), wire::stage(&stage)))
}

async fn stop_stage(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    reviews::stop_stage(&s.app, &caller, (&def_id, &inst_id, &stage_id)).await?;
    Ok(respond::no_content())
}

async fn list_stage_decisions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id)): Path<(String, String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    decisions(&s, d, &caller, reviews::ItemsAt::stage(&def_id, &inst_id, &stage_id), &q, false).await
}

async fn my_stage_decisions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id, args)): Path<(String, String, String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    parse_reviewer(&args)?;
    decisions(&s, d, &caller, reviews::ItemsAt::stage(&def_id, &inst_id, &stage_id), &q, true).await
}

async fn get_stage_decision(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id, x)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    decision(&s, d, &caller, reviews::ItemsAt::stage(&def_id, &inst_id, &stage_id), &x).await
}

async fn patch_stage_decision(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((def_id, inst_id, stage_id, x)): Path<(String, String, String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    record(&s, d, &caller, reviews::ItemsAt::stage(&def_id, &inst_id, &stage_id), &x, &json).await
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let b = format!("/{AR}/definitions");
    let i = format!("{b}/{{d}}/instances");
    let x = format!("{i}/{{i}}/decisions");
    vec![
        list(b.clone(), "List access review definitions", "AccessReviewScheduleDefinition"),
        op(
            "post",
            b.clone(),
            "Create a definition: refused for access package scopes (set the policy's reviewSettings)",
            Some("Object"),
            400,
            Some("Object"),
        ),
        list(
            format!("{b}/filterByCurrentUser/{{args}}"),
            "Definitions the caller reviews (on='reviewer')",
            "AccessReviewScheduleDefinition",
        ),
        read(format!("{b}/{{d}}"), "Get an access review definition", "AccessReviewScheduleDefinition"),
        op(
            "put",
            format!("{b}/{{d}}"),
            "Replace a definition: names, descriptions, auto-apply, mail and reminders (the rest comes from the policy)",
            Some("AccessReviewScheduleDefinition"),
            204,
            None,
        ),
        remove(format!("{b}/{{d}}"), "Delete a definition: its runs go and the policy's reviews are turned off"),
        action(format!("{b}/{{d}}/stop"), "Stop a series: its run in progress stops, no further run opens"),
        op(
            "put",
            format!("{i}/{{i}}"),
            "Replace the reviewers and fallback reviewers of an instance in progress",
            Some("AccessReviewInstance"),
            200,
            Some("AccessReviewInstance"),
        ),
        list(format!("{i}/{{i}}/stages"), "List the stages of a multi-stage instance", "AccessReviewStage"),
        list(
            format!("{i}/{{i}}/stages/filterByCurrentUser/{{args}}"),
            "Stages the caller reviews (on='reviewer')",
            "AccessReviewStage",
        ),
        read(format!("{i}/{{i}}/stages/{{s}}"), "Get a stage", "AccessReviewStage"),
        op(
            "patch",
            format!("{i}/{{i}}/stages/{{s}}"),
            "Change the reviewers of the stage under way",
            Some("AccessReviewStage"),
            200,
            Some("AccessReviewStage"),
        ),
        action(format!("{i}/{{i}}/stages/{{s}}/stop"), "Stop the stage under way: the next stage starts"),
        list(
            format!("{i}/{{i}}/stages/{{s}}/decisions"),
            "The decision items that reached a stage, as it decided them",
            "AccessReviewInstanceDecisionItem",
        ),
        list(
            format!("{i}/{{i}}/stages/{{s}}/decisions/filterByCurrentUser/{{args}}"),
            "The caller's decision items in a stage (on='reviewer')",
            "AccessReviewInstanceDecisionItem",
        ),
        read(
            format!("{i}/{{i}}/stages/{{s}}/decisions/{{x}}"),
            "Get a decision item of a stage",
            "AccessReviewInstanceDecisionItem",
        ),
        update(
            format!("{i}/{{i}}/stages/{{s}}/decisions/{{x}}"),
            "Record a decision in the stage under way (reviewers)",
            "AccessReviewInstanceDecisionItem",
        ),
        list(i.clone(), "List the instances of a definition", "AccessReviewInstance"),
        list(
            format!("{i}/filterByCurrentUser/{{args}}"),
            "Instances the caller reviews (on='reviewer')",
            "AccessReviewInstance",
        ),
        read(format!("{i}/{{i}}"), "Get an access review instance", "AccessReviewInstance"),
        list(x.clone(), "List the decision items of an instance", "AccessReviewInstanceDecisionItem"),
        list(
            format!("{x}/filterByCurrentUser/{{args}}"),
            "Decision items the caller reviews (on='reviewer')",
            "AccessReviewInstanceDecisionItem",
        ),
        read(format!("{x}/{{x}}"), "Get a decision item", "AccessReviewInstanceDecisionItem"),
        update(format!("{x}/{{x}}"), "Record a decision (reviewers)", "AccessReviewInstanceDecisionItem"),
        action(
            format!("{x}/filterByCurrentUser/{{args}}/recordAllDecisions"),
            "Record a decision on all of the caller's items of an instance",
        ),
        list(
            format!("{i}/{{i}}/contactedReviewers"),
            "The reviewers contacted for an instance",
            "AccessReviewReviewer",
        ),
        action(
            format!("{i}/{{i}}/batchRecordDecisions"),
            "Record a decision on the caller's items, by principal or resource",
        ),
        action(format!("{i}/{{i}}/stop"), "Stop an instance: it completes, default decisions and auto-apply follow"),
        action(
            format!("{i}/{{i}}/applyDecisions"),
            "Apply the decisions of a completed instance (denied access is removed)",
        ),
        action(format!("{i}/{{i}}/resetDecisions"), "Reset every decision of an instance in progress to NotReviewed"),
        action(format!("{i}/{{i}}/acceptRecommendations"), "The caller's undecided items take their recommendation"),
        action(format!("{i}/{{i}}/sendReminder"), "Remind reviewers with undecided items"),
        list(
            format!("/{AR}/decisions/filterByCurrentUser/{{args}}"),
            "The caller's decision items across all reviews (beta)",
            "AccessReviewInstanceDecisionItem",
        ),
        action(
            format!("/{AR}/decisions/filterByCurrentUser/{{args}}/recordAllDecisions"),
            "Record a decision on all of the caller's items in reviews in progress (beta)",
        ),
        action(
            format!("/{AR}/decisions/recordAllDecisions"),
            "Record a decision on all of the caller's items in reviews in progress (beta, as the beta SDK sends it)",
        ),
    ]
}
