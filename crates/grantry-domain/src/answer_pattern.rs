//! The `regexPattern` of a text question: an answer must match it as a whole.
//!
//! The pattern is parsed once and anchored in its syntax tree, not by wrapping its text in
//! `^(?:…)$` (a `(?x)` comment swallows the closing `)$`, so the wrapped text fails to
//! compile although the pattern alone does). Policies are validated with [`compile`] and
//! answers checked with [`cached`], which is the same compilation: a pattern that is
//! accepted is exactly the pattern that is enforced.

use regex_automata::meta::{Builder, Config, Regex};
use regex_syntax::hir::{Hir, Look};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The longest `regexPattern` accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 1024;
/// The most compiled patterns kept; beyond it the cache starts over.
const CACHE_CAPACITY: usize = 512;
/// Bounds on the compiled program, so that a short pattern with large repetitions
/// (`a{1000}{1000}`) is refused instead of costing memory and time on every answer.
const NFA_SIZE_LIMIT: usize = 2 << 20;
const NEST_LIMIT: u32 = 64;

/// Compiles `pattern` as answers are checked against it: the whole answer must match.
/// The error says why the pattern cannot be enforced.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let chars = pattern.chars().count();
    if chars > MAX_PATTERN_CHARS {
        return Err(format!("it is {chars} characters long; the limit is {MAX_PATTERN_CHARS}"));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .build()
        .parse(pattern)
        .map_err(|e| first_line(&e.to_string()))?;
    let whole = Hir::concat(vec![Hir::look(Look::Start), hir, Hir::look(Look::End)]);
    Builder::new()
        .configure(Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
        .build_from_hir(&whole)
        .map_err(|e| first_line(&e.to_string()))
}

/// The compiled form of `pattern`, compiled at most once per process while it stays in
/// the cache: a policy's patterns do not change until the policy does, and compiling a
/// large pattern costs far more than matching it.
pub fn cached(pattern: &str) -> Result<Arc<Regex>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(pattern) {
        return Ok(re.clone());
    }
    let re = Arc::new(compile(pattern)?);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= CACHE_CAPACITY {
        map.clear();
    }
    map.insert(pattern.to_string(), re.clone());
    Ok(re)
}

/// Whether `answer` matches `pattern` as a whole.
pub fn matches(pattern: &str, answer: &str) -> Result<bool, String> {
    Ok(cached(pattern)?.is_match(answer))
}

fn first_line(s: &str) -> String {
    // regex-syntax's messages draw the pattern over several lines; the last line says
    // what is wrong.
    s.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_answer_must_match() {
        assert!(matches("[0-9]+", "123").unwrap());
        assert!(!matches("[0-9]+", "123x").unwrap());
        assert!(!matches("a|ab", "abc").unwrap());
        assert!(matches("a|ab", "ab").unwrap());
        // `$` inside multi-line mode does not let a trailing line through.
        assert!(!matches("(?m)[a-z]+$", "abc\nDEF").unwrap());
    }

    #[test]
    fn inline_flags_and_comments_are_enforced_not_skipped() {
        let p = "(?x) [A-Z]{3} # three capitals";
        assert!(matches(p, "ABC").unwrap());
        assert!(!matches(p, "anything at all").unwrap());
        assert!(!matches(p, "ABC # three capitals").unwrap());
    }

    #[test]
    fn patterns_that_cannot_be_enforced_are_refused() {
        assert!(compile("([0-9]+").is_err());
        assert!(compile(&"a".repeat(MAX_PATTERN_CHARS + 1)).is_err());
        assert!(compile("(?:a{1000}){1000}").is_err());
        assert!(compile(&format!("{}a{}", "(".repeat(100), ")".repeat(100))).is_err());
    }

    #[test]
    fn a_pattern_is_compiled_once() {
        let a = cached("x[0-9]{2}").unwrap();
        let b = cached("x[0-9]{2}").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }
}
