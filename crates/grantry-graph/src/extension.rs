//! Custom extensions (`customCalloutExtension` and its derived types): parsing a create or
//! update from either dialect, and rendering (the same shape under both roots).

use crate::body::Body;
use crate::render::{Dialect, object, odata_type, opt_str, ts};
use grantry_domain::model::{CustomExtension, ExtensionInput, ExtensionKind};
use grantry_domain::{Error, Result};
use serde_json::{Map, Value, json};

/// The catalog's navigation property for its extensions, by dialect.
pub const SET: (&str, &str) = ("customWorkflowExtensions", "accessPackageCustomWorkflowExtensions");
/// Beta's deprecated collection (type `customAccessPackageWorkflowExtension`).
pub const LEGACY_SET: &str = "customAccessPackageWorkflowExtensions";

/// The instance annotation that carries the signing secret in the answer to a create.
pub const SECRET_ANNOTATION: &str = "@grantry.signingSecret";

/// Bounds for `clientConfiguration` (Entra allows 200–2000 ms and 0–1 retries; Grantry's
/// receivers may be slower, see docs/decisions.md).
pub const TIMEOUT_MS: (i32, i32) = (200, 30_000);
pub const MAX_RETRIES: i32 = 5;

fn nullable_str(b: &Body, key: &str) -> Result<Option<Option<String>>> {
    match b.map().get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(_) => Ok(Some(b.str(&[key])?)),
    }
}

/// A present-but-null property clears; absent leaves as is; an object is parsed by `parse`.
fn nullable_object(b: &Body, key: &str, parse: impl Fn(&Body) -> Result<Value>) -> Result<Option<Option<Value>>> {
    match b.map().get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(_) => match b.object(&[key])? {
            Some(o) => Ok(Some(Some(parse(&o)?))),
            None => Ok(Some(None)),
        },
    }
}

fn required_type(o: &Body, allowed: &[&str]) -> Result<String> {
    let p = o.path_of("@odata.type");
    let t = o
        .odata_type()
        .ok_or_else(|| Error::invalid_property(&p, format!("'{p}' is required; one of: {}.", allowed.join(", "))))?;
    allowed.iter().find(|a| a.eq_ignore_ascii_case(&t)).map(|a| a.to_string()).ok_or_else(|| {
        Error::invalid_property(&p, format!("'{p}' is '{t}', which is not one of: {}.", allowed.join(", ")))
    })
}

/// Checks an absolute http(s) URL without credentials or fragment. Which hosts may be
/// called is decided when calling (the outbound allow-list), not here.
pub fn check_target_url(url: &str, property: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid_property(property, format!("'{property}' ({url}) {why}"));
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else {
        return Err(bad("must be an absolute http:// or https:// URL."));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters."));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(bad("must not carry credentials; Grantry signs each call instead (see the signing secret)."));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Err(bad("has no host."));
    }
    if url.contains('#') {
        return Err(bad("must not have a fragment."));
    }
    if url.len() > 2048 {
        return Err(bad("is longer than 2048 characters."));
    }
    Ok(())
}

fn endpoint(o: &Body) -> Result<Value> {
    let t = required_type(o, &["httpRequestEndpoint", "logicAppTriggerEndpointConfiguration"])?;
    if t == "httpRequestEndpoint" {
        let url = o.required_str(&["targetUrl"])?;
        check_target_url(&url, &o.path_of("targetUrl"))?;
        Ok(json!({ "@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": url }))
    } else {
        let mut m = Map::new();
        m.insert("@odata.type".into(), odata_type(&t));
        for k in ["subscriptionId", "resourceGroupName", "logicAppWorkflowName", "url"] {
            m.insert(k.into(), o.str(&[k])?.map(Value::String).unwrap_or(Value::Null));
        }
        Ok(Value::Object(m))
    }
}

fn authentication(o: &Body) -> Result<Value> {
    let t = required_type(o, &["azureAdPopTokenAuthentication", "azureAdTokenAuthentication"])?;
    let mut m = Map::new();
    m.insert("@odata.type".into(), odata_type(&t));
    if t == "azureAdTokenAuthentication" {
        m.insert("resourceId".into(), o.str(&["resourceId"])?.map(Value::String).unwrap_or(Value::Null));
    }
    Ok(Value::Object(m))
}

fn client(o: &Body) -> Result<Value> {
    let timeout = o.i32(&["timeoutInMilliseconds"])?;
    if let Some(t) = timeout
        && !(TIMEOUT_MS.0..=TIMEOUT_MS.1).contains(&t)
    {
        let p = o.path_of("timeoutInMilliseconds");
        return Err(Error::invalid_property(
            &p,
            format!("'{p}' is {t}; it must lie between {} and {}.", TIMEOUT_MS.0, TIMEOUT_MS.1),
        ));
    }
    let retries = o.i32(&["maximumRetries"])?;
    if let Some(r) = retries
        && !(0..=MAX_RETRIES).contains(&r)
    {
        let p = o.path_of("maximumRetries");
        return Err(Error::invalid_property(&p, format!("'{p}' is {r}; it must lie between 0 and {MAX_RETRIES}.")));
    }
    Ok(json!({ "timeoutInMilliseconds": timeout, "maximumRetries": retries }))
}

/// Parses a create or update body. Unknown `@odata.type` values are refused.
pub fn extension_input(b: &Body) -> Result<ExtensionInput> {
    let kind = match b.odata_type() {
        None => None,
        Some(t) => Some(ExtensionKind::parse(&t).ok_or_else(|| {
            Error::invalid_property(
                "@odata.type",
                format!(
                    "'@odata.type' is '{t}', which is not a custom extension type; one of: {}.",
                    ExtensionKind::ALL.iter().map(|k| k.type_name()).collect::<Vec<_>>().join(", ")
                ),
            )
        })?),
    };
    let display_name = if b.has("displayName") { Some(b.required_str(&["displayName"])?) } else { None };
    let callback_timeout = match b.map().get("callbackConfiguration") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => {
            let o = b.object(&["callbackConfiguration"])?;
            match o {
                None => Some(None),
                Some(o) => {
                    let d = o.duration(&["timeoutDuration", "durationBeforeTimeout"])?;
                    if d.is_none() {
                        let p = o.path_of("timeoutDuration");
                        return Err(Error::invalid_property(
                            &p,
                            format!(
                                "'{p}' is required in a callbackConfiguration (an ISO-8601 duration from PT5M to P14D)."
                            ),
                        ));
                    }
                    Some(d)
                }
            }
        }
    };
    Ok(ExtensionInput {
        kind,
        display_name,
        description: nullable_str(b, "description")?,
        endpoint_configuration: nullable_object(b, "endpointConfiguration", endpoint)?,
        authentication_configuration: nullable_object(b, "authenticationConfiguration", authentication)?,
        client_configuration: nullable_object(b, "clientConfiguration", client)?,
        callback_timeout,
    })
}

/// An extension in either dialect (the shapes are the same). The signing secret is never
/// part of it; [`with_secret`] adds it to the answer to a create.
pub fn extension(e: &CustomExtension, _d: Dialect) -> Value {
    let callback = match (e.kind, e.callback_timeout) {
        (_, Some(t)) => json!({
            "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration",
            "timeoutDuration": grantry_domain::duration::format(t),
        }),
        _ => Value::Null,
    };
    let mut v = object([
        ("@odata.type", odata_type(e.kind.type_name())),
        ("id", json!(e.id)),
        ("displayName", json!(e.display_name)),
        ("description", opt_str(&e.description)),
        ("endpointConfiguration", e.endpoint_configuration.clone().unwrap_or(Value::Null)),
        ("authenticationConfiguration", e.authentication_configuration.clone().unwrap_or(Value::Null)),
        ("clientConfiguration", e.client_configuration.clone().unwrap_or(Value::Null)),
    ]);
    if let Value::Object(m) = &mut v {
        if e.kind != ExtensionKind::CustomAccessPackageWorkflow {
            m.insert("callbackConfiguration".into(), callback);
            m.insert("createdBy".into(), opt_str(&e.created_by));
            m.insert("lastModifiedBy".into(), opt_str(&e.last_modified_by));
        }
        m.insert("createdDateTime".into(), ts(e.created_date_time));
        m.insert("lastModifiedDateTime".into(), ts(e.last_modified_date_time));
    }
    v
}

/// The rendering of a newly created extension, with its signing secret: the only time the
/// secret is shown.
pub fn with_secret(mut v: Value, e: &CustomExtension) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert(SECRET_ANNOTATION.into(), json!(e.signing_secret));
    }
    v
}
