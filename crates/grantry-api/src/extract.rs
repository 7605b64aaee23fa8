//! Extractors that turn bad input into Graph errors rather than axum's plain-text ones.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use grantry_core::PageRequest;
use grantry_core::listing::ListOptions;
use grantry_domain::{Error, ErrorKind};
use grantry_graph::Dialect;
use grantry_odata::QueryOptions;
use grantry_store::Value as SqlValue;
use grantry_store::query::Cursor;
use serde_json::Value;

/// Deepest JSON nesting accepted in a request body.
const MAX_JSON_DEPTH: usize = 64;

/// A JSON request body. The content type must be JSON and the body must parse; otherwise
/// the client gets a 415 or 400 in Graph's envelope. An empty body reads as `{}`.
pub struct GraphJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for GraphJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::new(
                    ErrorKind::PayloadTooLarge,
                    "RequestEntityTooLarge",
                    "The request body is larger than the server accepts; send a smaller body.",
                )
            } else {
                Error::bad_request("InvalidRequestBody", format!("The request body could not be read: {rejection}"))
            }
        })?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(GraphJson(Value::Object(Default::default())));
        }
        match content_type.as_deref() {
            Some("application/json") => {}
            Some(ct) if ct.ends_with("+json") => {}
            other => {
                return Err(Error::new(
                    ErrorKind::UnsupportedMediaType,
                    "UnsupportedMediaType",
                    format!(
                        "The request body must be sent with 'Content-Type: application/json' (got {}).",
                        other.map(|c| format!("'{c}'")).unwrap_or_else(|| "no Content-Type".into())
                    ),
                )
                .into());
            }
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            Error::bad_request(
                "InvalidRequestBody",
                format!("The request body is not valid UTF-8 (at byte {}).", e.valid_up_to()),
            )
        })?;
        check_depth(text)?;
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Error::bad_request(
                "InvalidRequestBody",
                format!("The request body is not valid JSON: {e} (line {}, column {}).", e.line(), e.column()),
            )
        })?;
        if !value.is_object() {
            return Err(Error::bad_request("InvalidRequestBody", "The request body must be a JSON object.").into());
        }
        Ok(GraphJson(value))
    }
}

/// Refuses nesting deeper than [`MAX_JSON_DEPTH`] before parsing, so hostile bodies cannot
/// exhaust the stack.
fn check_depth(text: &str) -> Result<(), ApiError> {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_JSON_DEPTH {
        return Err(Error::bad_request(
            "InvalidRequestBody",
            format!("The request body nests JSON deeper than {MAX_JSON_DEPTH} levels."),
        )
        .into());
    }
    Ok(())
}

/// The dialect of the URL root, put in the request by the router.
pub struct Root(pub Dialect);

impl<S: Send + Sync> FromRequestParts<S> for Root {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Dialect>()
            .copied()
            .map(Root)
            .ok_or_else(|| Error::internal("route registered without a dialect").into())
    }
}

/// The raw query string, decoded into pairs, plus the request path (for nextLinks).
pub struct RawQuery {
    pub pairs: Vec<(String, String)>,
    pub path: String,
    pub method: Method,
}

impl<S: Send + Sync> FromRequestParts<S> for RawQuery {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let mut pairs = Vec::new();
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        let path = parts
            .extensions
            .get::<crate::middleware::OriginalPath>()
            .map(|p| p.0.clone())
            .unwrap_or_else(|| parts.uri.path().to_string());
        Ok(RawQuery { pairs, path, method: parts.method.clone() })
    }
}

/// Decodes a query string component. As in Graph, `+` stands for a space (form encoding,
/// which curl's `--data-urlencode` and many HTTP libraries produce); a literal plus sign
/// is sent as `%2B`.
fn decode(s: &str) -> Result<String, ApiError> {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s).decode_utf8().map(|c| c.into_owned()).map_err(|_| {
        Error::bad_request("BadRequest", "The query string is not valid UTF-8 after percent-decoding.").into()
    })
}

impl RawQuery {
    pub fn get(&self, name: &str) -> Option<&str> {
        let bare = name.trim_start_matches('$');
        self.pairs.iter().find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case(bare)).map(|(_, v)| v.as_str())
    }

    /// `$top` and `$skiptoken` as a page request, for collections that take no other query
    /// option: `$filter`, `$orderby` and `$search` are refused rather than ignored, so a
    /// client never mistakes an unfiltered page for a filtered one. `$top` above the maximum
    /// is capped (the client follows `@odata.nextLink` for the rest).
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        for option in ["$filter", "$orderby", "$search"] {
            if self.get(option).is_some() {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!("{option} is not supported on this collection; only $top, $select and $expand are."),
                )
                .with_target(option)
                .into());
            }
        }
        self.page_with_own_filter()
    }

    /// As [`RawQuery::page`], for handlers that evaluate `$filter` themselves.
    pub fn page_with_own_filter(&self) -> Result<PageRequest, ApiError> {
        let mut page = PageRequest::default();
        if let Some(top) = self.get("$top") {
            let n: u64 = top.trim().parse().map_err(|_| {
                Error::bad_request("BadRequest", format!("$top must be a non-negative whole number; got '{top}'."))
                    .with_target("$top")
            })?;
            page.size = (n as usize).min(grantry_core::page::MAX_PAGE_SIZE);
        }
        if let Some(token) = self.get("$skiptoken") {
            page.after_seq = Some(decode_skiptoken(token)?);
        }
        Ok(page)
    }
}

fn decode_skiptoken(token: &str) -> Result<i64, ApiError> {
    match decode_cursor(token)? {
        Cursor::Seq(seq) => Ok(seq),
        Cursor::Keys(..) => Err(bad_token().into()),
    }
}

fn bad_token() -> Error {
    Error::bad_request(
        "BadRequest",
        "The $skiptoken is not one this server issued for this query; follow @odata.nextLink as given.",
    )
    .with_target("$skiptoken")
}

/// Page tokens are opaque to clients: base64url of `s1:{seq}` (default order) or
/// `k1:{"k":[sort key values],"s":seq}` (with `$orderby`).
pub fn encode_cursor(cursor: &Cursor) -> String {
    use base64::Engine;
    let text = match cursor {
        Cursor::Seq(seq) => format!("s1:{seq}"),
        Cursor::Keys(values, seq) => {
            let keys: Vec<Value> = values
                .iter()
                .map(|v| match v {
                    SqlValue::Null => Value::Null,
                    SqlValue::Int(i) => Value::from(*i),
                    SqlValue::Real(f) => Value::from(*f),
                    SqlValue::Text(t) => Value::from(t.clone()),
                })
                .collect();
            format!("k1:{}", serde_json::json!({ "k": keys, "s": seq }))
        }
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

pub fn decode_cursor(token: &str) -> Result<Cursor, ApiError> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad_token())?;
    let text = String::from_utf8(raw).map_err(|_| bad_token())?;
    if let Some(n) = text.strip_prefix("s1:") {
        return n.parse().map(Cursor::Seq).map_err(|_| bad_token().into());
    }
    let json: Value = text.strip_prefix("k1:").and_then(|j| serde_json::from_str(j).ok()).ok_or_else(bad_token)?;
    let seq = json["s"].as_i64().ok_or_else(bad_token)?;
    let keys = json["k"]
        .as_array()
        .ok_or_else(bad_token)?
        .iter()
        .map(|v| match v {
            Value::Null => Ok(SqlValue::Null),
            Value::String(s) => Ok(SqlValue::Text(s.clone())),
            Value::Number(n) => {
                n.as_i64().map(SqlValue::Int).or_else(|| n.as_f64().map(SqlValue::Real)).ok_or_else(bad_token)
            }
            _ => Err(bad_token()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cursor::Keys(keys, seq))
}

impl RawQuery {
    /// All OData query options, parsed (unknown `$` options and malformed values are 400s).
    pub fn odata(&self) -> Result<QueryOptions, ApiError> {
        grantry_odata::parse_query(&self.pairs).map_err(|e| ApiError(grantry_store::query::parse_error(e)))
    }

    /// The options a collection query uses.
    pub fn list_options(&self) -> Result<ListOptions, ApiError> {
        self.list_options_and_expand().map(|(options, _)| options)
    }

    /// The options a collection query uses and its `$expand` items, from one parse.
    pub fn list_options_and_expand(&self) -> Result<(ListOptions, Vec<grantry_odata::ExpandItem>), ApiError> {
        let o = self.odata()?;
        if o.skip.is_some() {
            return Err(Error::bad_request(
                "BadRequest",
                "$skip is not supported on entitlement management collections; page with $top and follow @odata.nextLink.",
            )
            .with_target("$skip")
            .into());
        }
        let size = o
            .top
            .map(|t| (t.min(usize::MAX as u64) as usize).min(grantry_core::page::MAX_PAGE_SIZE))
            .unwrap_or(grantry_core::page::DEFAULT_PAGE_SIZE);
        let after = o.skiptoken.as_deref().map(decode_cursor).transpose()?;
        let options =
            ListOptions { filter: o.filter, orderby: o.orderby, search: o.search, after, size, count: o.count };
        Ok((options, o.expand))
    }
}
