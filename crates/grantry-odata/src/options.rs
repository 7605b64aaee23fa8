//! `$select`, `$orderby`, `$expand`, the scalar options, and the query-string
//! level entry point.

use std::ops::ControlFlow;

use crate::ast::{ExpandItem, OrderBy, QueryOptions};
use crate::error::{ParseError, snippet};
use crate::lexer::is_identifier;
use crate::{MAX_DEPTH, check_length, filter};

/// The system query options this crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionKind {
    Filter,
    Select,
    Expand,
    OrderBy,
    Top,
    Skip,
    SkipToken,
    Count,
    Search,
}

impl OptionKind {
    const ALL: [OptionKind; 9] = [
        OptionKind::Filter,
        OptionKind::Select,
        OptionKind::Expand,
        OptionKind::OrderBy,
        OptionKind::Top,
        OptionKind::Skip,
        OptionKind::SkipToken,
        OptionKind::Count,
        OptionKind::Search,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Filter => "$filter",
            Self::Select => "$select",
            Self::Expand => "$expand",
            Self::OrderBy => "$orderby",
            Self::Top => "$top",
            Self::Skip => "$skip",
            Self::SkipToken => "$skiptoken",
            Self::Count => "$count",
            Self::Search => "$search",
        }
    }

    /// Recognises `$filter`, `$Filter`, `filter`, ….
    fn from_key(key: &str) -> Option<Self> {
        let bare = key.strip_prefix('$').unwrap_or(key);
        Self::ALL
            .into_iter()
            .find(|kind| kind.name().strip_prefix('$').is_some_and(|name| name.eq_ignore_ascii_case(bare)))
    }
}

pub(crate) fn parse_query(pairs: &[(String, String)]) -> Result<QueryOptions, ParseError> {
    let mut builder = Builder::default();
    for (key, value) in pairs {
        match OptionKind::from_key(key) {
            Some(kind) => builder.apply(kind, value, 0)?,
            // Other parameters belong to the caller (e.g. a function's own
            // parameters); only `$` names are reserved for system options.
            None if key.starts_with('$') => {
                return Err(ParseError::new(
                    "query",
                    0,
                    format!("unknown or unsupported query option '{}'", snippet(key)),
                ));
            }
            None => {}
        }
    }
    let options = builder.options;
    if options.count
        && let Some(filter) = &options.filter
    {
        let unindexed = filter::count_unindexed_terms(filter);
        if unindexed > filter::MAX_UNINDEXED_TERMS_WITH_COUNT {
            return Err(ParseError::new(
                "$count",
                0,
                format!(
                    "$count=true counts every row the filter matches, and the filter has {unindexed} 'contains'/'endswith' terms, which no index serves; the limit with $count is {}: drop $count or use fewer such terms",
                    filter::MAX_UNINDEXED_TERMS_WITH_COUNT
                ),
            ));
        }
    }
    Ok(options)
}

/// Collects options, rejecting duplicates.
#[derive(Default)]
struct Builder {
    options: QueryOptions,
    seen: Vec<OptionKind>,
}

impl Builder {
    /// Parses `value` as option `kind`. `expand_depth` is the `$expand`
    /// nesting level the options belong to (0 at the top level).
    fn apply(&mut self, kind: OptionKind, value: &str, expand_depth: usize) -> Result<(), ParseError> {
        let name = kind.name();
        if self.seen.contains(&kind) {
            return Err(ParseError::new(name, 0, format!("the {name} option was given more than once")));
        }
        self.seen.push(kind);
        check_length(value, name)?;
        let options = &mut self.options;
        match kind {
            OptionKind::Filter => {
                let expr = filter::parse(value, name)?;
                filter::check_terms(&expr, name)?;
                options.filter = Some(expr);
            }
            OptionKind::Select => options.select = Some(parse_select(value)?),
            OptionKind::Expand => options.expand = parse_expand(value, expand_depth + 1)?,
            OptionKind::OrderBy => options.orderby = parse_orderby(value)?,
            OptionKind::Top => options.top = Some(parse_count_value(value, name)?),
            OptionKind::Skip => options.skip = Some(parse_count_value(value, name)?),
            OptionKind::SkipToken => options.skiptoken = Some(value.to_owned()),
            OptionKind::Count => options.count = parse_bool(value, name)?,
            OptionKind::Search => {
                let unquoted = value.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')).unwrap_or(value);
                options.search = Some(unquoted.to_owned());
            }
        }
        Ok(())
    }
}

/// A non-negative integer for `$top` / `$skip`.
fn parse_count_value(value: &str, option: &'static str) -> Result<u64, ParseError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(
            option,
            0,
            format!("expected a non-negative integer but found '{}'", snippet(value)),
        ));
    }
    value.parse().map_err(|_| ParseError::new(option, 0, format!("the number {} is too large", snippet(value))))
}

fn parse_bool(value: &str, option: &'static str) -> Result<bool, ParseError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ParseError::new(option, 0, format!("expected 'true' or 'false' but found '{}'", snippet(value))))
    }
}

pub(crate) fn parse_select(input: &str) -> Result<Vec<Vec<String>>, ParseError> {
    const OPTION: &str = "$select";
    check_length(input, OPTION)?;
    split_items(input, b',', OPTION)?
        .into_iter()
        .map(|(offset, item)| if item == "*" { Ok(vec!["*".to_owned()]) } else { parse_path(item, offset, OPTION) })
        .collect()
}

pub(crate) fn parse_orderby(input: &str) -> Result<Vec<OrderBy>, ParseError> {
    const OPTION: &str = "$orderby";
    check_length(input, OPTION)?;
    split_items(input, b',', OPTION)?
        .into_iter()
        .map(|(offset, item)| {
            let mut words = words(item).into_iter();
            // `split_items` never yields an empty item, so there is a word.
            let (path_offset, path) = words.next().unwrap_or((0, item));
            let path = parse_path(path, offset + path_offset, OPTION)?;
            let descending = match words.next() {
                None => false,
                Some((_, direction)) if direction.eq_ignore_ascii_case("asc") => false,
                Some((_, direction)) if direction.eq_ignore_ascii_case("desc") => true,
                Some((at, other)) => {
                    return Err(ParseError::new(
                        OPTION,
                        offset + at,
                        format!("expected 'asc' or 'desc' but found '{}'", snippet(other)),
                    ));
                }
            };
            if let Some((at, extra)) = words.next() {
                return Err(ParseError::new(
                    OPTION,
                    offset + at,
                    format!("unexpected '{}'; separate $orderby items with ','", snippet(extra)),
                ));
            }
            Ok(OrderBy { path, descending })
        })
        .collect()
}

/// Parses a `$expand` value at nesting level `depth` (1 for the top level).
pub(crate) fn parse_expand(input: &str, depth: usize) -> Result<Vec<ExpandItem>, ParseError> {
    const OPTION: &str = "$expand";
    check_length(input, OPTION)?;
    if depth > MAX_DEPTH {
        return Err(ParseError::new(
            OPTION,
            0,
            format!("$expand is nested too deeply (the limit is {MAX_DEPTH} levels)"),
        ));
    }
    split_items(input, b',', OPTION)?.into_iter().map(|(offset, item)| parse_expand_item(item, offset, depth)).collect()
}

/// One `$expand` item, `path` or `path(options)`, found at `offset`.
fn parse_expand_item(item: &str, offset: usize, depth: usize) -> Result<ExpandItem, ParseError> {
    const OPTION: &str = "$expand";
    // Paths contain no quotes, so the first '(' opens the options.
    let Some(open) = item.find('(') else {
        return Ok(ExpandItem { path: parse_expand_path(item, offset)?, options: QueryOptions::default() });
    };
    let path_text = item.get(..open).unwrap_or_default().trim_end();
    let path = parse_expand_path(path_text, offset)?;

    let mut close = None;
    scan(item, OPTION, |index, byte, depth_before| {
        if byte == b')' && depth_before == 1 {
            close = Some(index);
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(|err| shift(err, offset))?;
    // `split_items` checked that the item's parentheses balance.
    let close = close.unwrap_or(item.len());
    if let Some(extra) = item.get(close + 1..).filter(|rest| !rest.trim().is_empty()) {
        return Err(ParseError::new(
            OPTION,
            offset + close + 1,
            format!(
                "unexpected '{}' after the ')' that closes the options of '{}'",
                snippet(extra.trim()),
                path.join("/")
            ),
        ));
    }

    let inner_offset = offset + open + 1;
    let inner = item.get(open + 1..close).unwrap_or_default();
    let options = parse_expand_options(inner, inner_offset, depth, &path.join("/"))?;
    Ok(ExpandItem { path, options })
}

fn parse_expand_path(text: &str, offset: usize) -> Result<Vec<String>, ParseError> {
    if text == "*" { Ok(vec!["*".to_owned()]) } else { parse_path(text, offset, "$expand") }
}

/// The `;`-separated options inside `path( … )`, found at `offset`.
fn parse_expand_options(text: &str, offset: usize, depth: usize, item_path: &str) -> Result<QueryOptions, ParseError> {
    const OPTION: &str = "$expand";
    if text.trim().is_empty() {
        return Err(ParseError::new(
            OPTION,
            offset,
            format!("expected options such as $select=id inside the parentheses after '{item_path}'"),
        ));
    }
    let mut builder = Builder::default();
    for (part_offset, part) in split_items(text, b';', OPTION).map_err(|err| shift(err, offset))? {
        let at = offset + part_offset;
        let Some(equals) = part.find('=') else {
            return Err(ParseError::new(
                OPTION,
                at,
                format!("expected '=' and a value after '{}' in the options of '{item_path}'", snippet(part)),
            ));
        };
        let key = part.get(..equals).unwrap_or_default().trim_end();
        let value = part.get(equals + 1..).unwrap_or_default();
        let kind = OptionKind::from_key(key).filter(|kind| *kind != OptionKind::SkipToken).ok_or_else(|| {
            ParseError::new(
                OPTION,
                at,
                format!("unknown or unsupported option '{}' in the options of '{item_path}'", snippet(key)),
            )
        })?;
        builder.apply(kind, value, depth).map_err(|err| ParseError {
            option: OPTION,
            position: at + equals + 1 + err.position,
            message: format!("in {} of '{item_path}': {}", err.option, err.message),
        })?;
    }
    Ok(builder.options)
}

/// A `/`-separated property path at `offset`, each segment an identifier.
fn parse_path(text: &str, offset: usize, option: &'static str) -> Result<Vec<String>, ParseError> {
    let mut segments = Vec::new();
    let mut segment_offset = offset;
    for segment in text.split('/') {
        if !is_identifier(segment) {
            let message = if segment.is_empty() {
                "expected a property name; the path has an empty segment".to_owned()
            } else {
                format!("'{}' is not a valid property name", snippet(segment))
            };
            return Err(ParseError::new(option, segment_offset, message));
        }
        segments.push(segment.to_owned());
        segment_offset += segment.len() + 1;
    }
    Ok(segments)
}

/// Splits `input` at each `separator` outside quotes and parentheses and
/// trims the items, returning them with their offsets. Empty items are an
/// error (`a,,b`, a trailing comma, or an empty value).
fn split_items<'a>(input: &'a str, separator: u8, option: &'static str) -> Result<Vec<(usize, &'a str)>, ParseError> {
    let mut cuts = Vec::new();
    scan(input, option, |index, byte, depth| {
        if byte == separator && depth == 0 {
            cuts.push(index);
        }
        ControlFlow::Continue(())
    })?;
    cuts.push(input.len());

    let mut items = Vec::with_capacity(cuts.len());
    let mut start = 0;
    for cut in cuts {
        let raw = input.get(start..cut).unwrap_or_default();
        let trimmed = raw.trim_start();
        let item_offset = start + (raw.len() - trimmed.len());
        let item = trimmed.trim_end();
        if item.is_empty() {
            let message = if input.trim().is_empty() {
                format!("the {option} value is empty")
            } else {
                format!(
                    "expected an item before '{}'",
                    if cut == input.len() {
                        "the end of the input".to_owned()
                    } else {
                        char::from(separator).to_string()
                    }
                )
            };
            return Err(ParseError::new(option, item_offset, message));
        }
        items.push((item_offset, item));
        start = cut + 1;
    }
    Ok(items)
}

/// Walks `input`, skipping quoted text (`'…'` with `''` escapes, and `"…"`),
/// and calls `visit(index, byte, depth)` for every other byte, where `depth`
/// is the parenthesis depth before that byte. Reports unbalanced parentheses
/// and unterminated quotes unless `visit` breaks first. All the structural
/// characters are ASCII, so every index is a char boundary.
fn scan(
    input: &str,
    option: &'static str,
    mut visit: impl FnMut(usize, u8, usize) -> ControlFlow<()>,
) -> Result<(), ParseError> {
    let mut quote: Option<(u8, usize)> = None;
    let mut opens: Vec<usize> = Vec::new();
    for (index, &byte) in input.as_bytes().iter().enumerate() {
        if let Some((delimiter, _)) = quote {
            if byte == delimiter {
                quote = None;
            }
            continue;
        }
        if matches!(byte, b'\'' | b'"') {
            quote = Some((byte, index));
            continue;
        }
        if visit(index, byte, opens.len()).is_break() {
            return Ok(());
        }
        match byte {
            b'(' => opens.push(index),
            b')' if opens.pop().is_none() => {
                return Err(ParseError::new(
                    option,
                    index,
                    format!("unbalanced parentheses: the ')' at position {index} has no matching '('"),
                ));
            }
            _ => {}
        }
    }
    if let Some((_, start)) = quote {
        return Err(ParseError::new(
            option,
            start,
            format!("unterminated string literal starting at position {start}"),
        ));
    }
    if let Some(open) = opens.last() {
        return Err(ParseError::new(
            option,
            input.len(),
            format!("expected a closing ')' for the '(' at position {open}"),
        ));
    }
    Ok(())
}

/// Moves an error found in a part of a value to the whole value's offsets.
fn shift(mut err: ParseError, offset: usize) -> ParseError {
    err.position += offset;
    err
}

/// Whitespace-separated words of `text` with their offsets.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (index, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(begin)) => {
                words.push((begin, text.get(begin..index).unwrap_or_default()));
                start = None;
            }
            (false, None) => start = Some(index),
            _ => {}
        }
    }
    if let Some(begin) = start {
        words.push((begin, text.get(begin..).unwrap_or_default()));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_names() {
        assert_eq!(OptionKind::from_key("$filter"), Some(OptionKind::Filter));
        assert_eq!(OptionKind::from_key("$FILTER"), Some(OptionKind::Filter));
        assert_eq!(OptionKind::from_key("orderBy"), Some(OptionKind::OrderBy));
        assert_eq!(OptionKind::from_key("$$filter"), None);
        assert_eq!(OptionKind::from_key("$foo"), None);
    }

    #[test]
    fn split_respects_quotes_and_parentheses() {
        let items = split_items("a($select=x,y), b($filter=n eq ',;(' )", b',', "$expand").expect("splits");
        assert_eq!(items, vec![(0, "a($select=x,y)"), (16, "b($filter=n eq ',;(' )")]);
    }

    #[test]
    fn words_with_offsets() {
        assert_eq!(words("  a  desc "), vec![(2, "a"), (5, "desc")]);
        assert!(words(" ").is_empty());
    }
}
