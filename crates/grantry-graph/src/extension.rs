//! Custom extensions (`customCalloutExtension` and its derived types): parsing a create or
//! update from either dialect, and rendering (the same shape under both roots).

use crate::body::Body;
use crate::render::Dialect;
use crate::wire::Ts;
use grantry_domain::model::{CustomExtension, ExtensionInput, ExtensionKind};
use grantry_domain::{Error, Result};
use serde::Serialize;
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
        m.insert("@odata.type".into(), Value::String(format!("#microsoft.graph.{t}")));
        for k in ["subscriptionId", "resourceGroupName", "logicAppWorkflowName", "url"] {
            m.insert(k.into(), o.str(&[k])?.map(Value::String).unwrap_or(Value::Null));
        }
        Ok(Value::Object(m))
    }
}

fn authentication(o: &Body) -> Result<Value> {
    let t = required_type(o, &["azureAdPopTokenAuthentication", "azureAdTokenAuthentication"])?;
    let mut m = Map::new();
    m.insert("@odata.type".into(), Value::String(format!("#microsoft.graph.{t}")));
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
/// part of it; [`ExtensionView::with_secret`] adds it to the answer to a create.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: String,
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    endpoint_configuration: Option<&'a Value>,
    authentication_configuration: Option<&'a Value>,
    client_configuration: Option<&'a Value>,
    /// Not on the deprecated `customAccessPackageWorkflowExtension`.
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_configuration: Option<Option<CallbackView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified_by: Option<Option<&'a str>>,
    created_date_time: Ts,
    last_modified_date_time: Ts,
    /// [`SECRET_ANNOTATION`].
    #[serde(rename = "@grantry.signingSecret", skip_serializing_if = "Option::is_none")]
    signing_secret: Option<&'a str>,
    /// [`DISABLED_ANNOTATION`]: present while Grantry does not call the extension.
    #[serde(rename = "@grantry.disabled", skip_serializing_if = "Option::is_none")]
    disabled: Option<DisabledView<'a>>,
}

/// The instance annotation that tells administrators Grantry stopped calling an extension
/// (its endpoint answered `410 Gone`) and why; a PATCH of the extension enables it again.
pub const DISABLED_ANNOTATION: &str = "@grantry.disabled";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisabledView<'a> {
    reason: &'a str,
    date_time: Ts,
}

/// `customExtensionCallbackConfiguration`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackView {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    timeout_duration: String,
}

impl<'a> ExtensionView<'a> {
    pub fn new(e: &'a CustomExtension, _d: Dialect) -> Self {
        let current = e.kind != ExtensionKind::CustomAccessPackageWorkflow;
        let callback = e.callback_timeout.map(|t| CallbackView {
            odata_type: "#microsoft.graph.customExtensionCallbackConfiguration",
            timeout_duration: grantry_domain::duration::format(t),
        });
        ExtensionView {
            odata_type: format!("#microsoft.graph.{}", e.kind.type_name()),
            id: &e.id,
            display_name: &e.display_name,
            description: e.description.as_deref(),
            endpoint_configuration: e.endpoint_configuration.as_ref(),
            authentication_configuration: e.authentication_configuration.as_ref(),
            client_configuration: e.client_configuration.as_ref(),
            callback_configuration: current.then_some(callback),
            created_by: current.then_some(e.created_by.as_deref()),
            last_modified_by: current.then_some(e.last_modified_by.as_deref()),
            created_date_time: Ts(e.created_date_time),
            last_modified_date_time: Ts(e.last_modified_date_time),
            signing_secret: None,
            disabled: e.disabled.as_ref().map(|d| DisabledView { reason: &d.reason, date_time: Ts(d.date_time) }),
        }
    }

    /// With the signing secret (the answer to a create: the only time it is shown).
    pub fn with_secret(mut self, e: &'a CustomExtension) -> Self {
        self.signing_secret = Some(&e.signing_secret);
        self
    }
}
