//! Finds the line of a key path (`catalogs` → `Marketing` → `resources` → item 2) in a
//! block-style YAML file, so a reference that does not resolve is reported where it is
//! written. YAML parsers give positions for syntax and type errors only.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

pub fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

#[derive(Debug)]
enum Tok {
    /// A `- ` sequence item marker at this column.
    Item(usize),
    /// A mapping key at this column.
    Key(usize, String),
}

fn tokenize(text: &str) -> Vec<(usize, Tok)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut col = line.len() - trimmed.len();
        let mut rest = trimmed;
        while rest == "-" || rest.starts_with("- ") {
            out.push((n + 1, Tok::Item(col)));
            let after = rest[1..].trim_start();
            col += rest.len() - after.len();
            rest = after;
        }
        if let Some(k) = key_of(rest) {
            out.push((n + 1, Tok::Key(col, k)));
        }
    }
    out
}

/// The key of `key: value` / `key:` / `'quoted key': …`.
fn key_of(rest: &str) -> Option<String> {
    for quote in ['"', '\''] {
        if let Some(body) = rest.strip_prefix(quote) {
            let end = body.find(quote)?;
            return body[end + 1..].trim_start().starts_with(':').then(|| body[..end].to_string());
        }
    }
    let end = rest.find(": ").or_else(|| rest.strip_suffix(':').map(|k| k.len()))?;
    Some(rest[..end].trim_end().to_string())
}

/// The 1-based line of `path`, or of the deepest part of it found.
pub fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let toks = tokenize(text);
    let mut pos = 0;
    let mut parent: isize = -1;
    let mut line = None;
    for seg in path {
        let mut child: Option<usize> = None;
        let mut count = 0;
        let mut hit = None;
        for (i, (_, tok)) in toks.iter().enumerate().skip(pos) {
            match (seg, tok) {
                (Seg::Key(k), Tok::Key(col, name)) => {
                    if *col as isize <= parent {
                        break;
                    }
                    if *child.get_or_insert(*col) == *col && name == k {
                        hit = Some((i, *col));
                        break;
                    }
                }
                (Seg::Key(_), Tok::Item(col)) => {
                    // Items of a sequence under the parent key may sit at its column.
                    if (*col as isize) < parent {
                        break;
                    }
                }
                (Seg::Index(n), Tok::Item(col)) => {
                    if (*col as isize) < parent {
                        break;
                    }
                    if *child.get_or_insert(*col) == *col {
                        if count == *n {
                            hit = Some((i, *col));
                            break;
                        }
                        count += 1;
                    }
                }
                (Seg::Index(_), Tok::Key(col, _)) => {
                    if *col as isize <= parent {
                        break;
                    }
                }
            }
        }
        let Some((i, col)) = hit else { return line };
        line = Some(toks[i].0);
        parent = col as isize;
        pos = i + 1;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items_in_block_yaml() {
        let text = "\
# header
catalogs:
  Marketing:
    resources:
    - group: Sales
    - group: Support
    accessPackages:
      'Sales: access':
        roleScopes:
        - group: Sales
          role: Member
  Other:
    description: x
";
        let p = |segs: Vec<Seg>| locate(text, &segs);
        assert_eq!(p(vec![key("catalogs"), key("Marketing"), key("resources"), Seg::Index(1), key("group")]), Some(6));
        assert_eq!(
            p(vec![
                key("catalogs"),
                key("Marketing"),
                key("accessPackages"),
                key("Sales: access"),
                key("roleScopes"),
                Seg::Index(0),
                key("role")
            ]),
            Some(11)
        );
        assert_eq!(p(vec![key("catalogs"), key("Other"), key("description")]), Some(13));
        // A key of another block is not found; the deepest found part is.
        assert_eq!(p(vec![key("catalogs"), key("Other"), key("resources")]), Some(12));
    }
}
