//! `[zone] file`: static records from an RFC 1035 master file, as BIND, Knot, NSD or a
//! provider's export writes it.
//!
//! hickory-proto's zone parser reads each record; this module only cuts the file into
//! logical records (parentheses, quotes, comments), follows `$ORIGIN`, `$TTL` and
//! `$INCLUDE` itself, and hands hickory one record at a time with its context. That way
//! every record, and every error, keeps its file and line, so that a problem in the zone
//! file is reported where it is, like one in the TOML.

use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

/// Where something in a zone file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// The line as written.
    pub text: String,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// What a zone file held: its records with their places, and its problems.
#[derive(Debug, Default)]
pub struct ZoneFile {
    pub records: Vec<(Record, Place)>,
    pub errors: Vec<(Place, String)>,
}

/// `$INCLUDE` nesting beyond this is an error (a loop, most likely).
const MAX_DEPTH: usize = 8;

/// Reads `path` for the zone `origin`; records without a TTL and without `$TTL` get
/// `default_ttl`.
pub fn read(path: &Path, origin: &Name, default_ttl: u32) -> ZoneFile {
    let mut out = ZoneFile::default();
    let mut cx = Context { origin: origin.clone(), ttl: default_ttl, owner: None };
    read_into(path, &mut cx, 0, None, &mut out);
    out
}

struct Context {
    origin: Name,
    ttl: u32,
    /// The last owner named, for records that start with blanks.
    owner: Option<Name>,
}

fn read_into(path: &Path, cx: &mut Context, depth: usize, from: Option<&Place>, out: &mut ZoneFile) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let place = from.cloned().unwrap_or(Place { file: path.to_owned(), line: 0, text: String::new() });
            out.errors.push((place, format!("cannot read zone file {}: {e}", path.display())));
            return;
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    for (line, record) in logical_records(&text) {
        let place = Place { file: path.to_owned(), line, text: lines.get(line - 1).unwrap_or(&"").to_string() };
        let err = |out: &mut ZoneFile, message: String| out.errors.push((place.clone(), message));
        let trimmed = record.trim_start();
        let mut words = trimmed.split_whitespace();
        match words.next() {
            Some(d) if d.eq_ignore_ascii_case("$ORIGIN") => {
                match words.next().map(|o| Name::parse(o, Some(&cx.origin))) {
                    Some(Ok(o)) => cx.origin = o.to_lowercase(),
                    _ => err(out, "$ORIGIN needs a domain name".into()),
                }
            }
            Some(d) if d.eq_ignore_ascii_case("$TTL") => match words.next().map(parse_ttl) {
                Some(Ok(t)) => cx.ttl = t,
                _ => err(out, "$TTL needs a time such as 3600 or 1h".into()),
            },
            Some(d) if d.eq_ignore_ascii_case("$INCLUDE") => {
                let Some(file) = words.next() else {
                    err(out, "$INCLUDE needs a file name".into());
                    continue;
                };
                if depth + 1 >= MAX_DEPTH {
                    err(out, format!("$INCLUDE nested more than {MAX_DEPTH} deep (a loop?)"));
                    continue;
                }
                let file = path.parent().unwrap_or(Path::new(".")).join(file);
                // An origin given with it applies to the included file only (RFC 1035 5.1).
                let origin = match words.next().map(|o| Name::parse(o, Some(&cx.origin))) {
                    Some(Ok(o)) => o.to_lowercase(),
                    Some(Err(e)) => {
                        err(out, format!("$INCLUDE's origin: {e}"));
                        continue;
                    }
                    None => cx.origin.clone(),
                };
                let mut inner = Context { origin, ttl: cx.ttl, owner: cx.owner.clone() };
                read_into(&file, &mut inner, depth + 1, Some(&place), out);
            }
            Some(d) if d.starts_with('$') => err(out, format!("unknown directive `{d}`")),
            None => {}
            Some(first) => {
                // A record starting with blanks belongs to the last owner named.
                let (owner, rest) = if record.starts_with(|c: char| c.is_whitespace()) {
                    match &cx.owner {
                        Some(o) => (o.clone(), trimmed),
                        None => {
                            err(out, "a record without an owner name before any owner was named".into());
                            continue;
                        }
                    }
                } else {
                    let owner = if first == "@" { Ok(cx.origin.clone()) } else { Name::parse(first, Some(&cx.origin)) };
                    match owner {
                        Ok(o) => (o.to_lowercase(), trimmed[first.len()..].trim_start()),
                        Err(e) => {
                            err(out, format!("`{first}` is not a valid owner name: {e}"));
                            continue;
                        }
                    }
                };
                cx.owner = Some(owner.clone());
                let one = format!("$ORIGIN {}\n$TTL {}\n{} {}\n", cx.origin, cx.ttl, owner, rest);
                match Parser::new(one, None, Some(cx.origin.clone())).parse() {
                    Ok((_, sets)) => {
                        for set in sets.values() {
                            for r in set.records_without_rrsigs() {
                                let mut r = r.clone();
                                r.name = r.name.to_lowercase();
                                out.records.push((r, place.clone()));
                            }
                        }
                    }
                    Err(e) => err(out, format!("{e}")),
                }
            }
        }
    }
}

/// Cuts master-file text into logical records: each with the line it starts on, with
/// comments removed and the lines of a parenthesised record joined.
fn logical_records(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        let mut kept = String::new();
        let (mut quoted, mut escaped) = (false, false);
        for c in line.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if !quoted && c == ';' {
                break;
            } else if !quoted && c == '(' {
                depth += 1;
            } else if !quoted && c == ')' {
                depth = depth.saturating_sub(1);
            }
            kept.push(c);
        }
        if current.is_empty() {
            if kept.trim().is_empty() {
                continue;
            }
            start = i + 1;
            current = kept;
        } else {
            current.push(' ');
            current.push_str(kept.trim());
        }
        if depth == 0 {
            out.push((start, std::mem::take(&mut current)));
        }
    }
    if !current.trim().is_empty() {
        out.push((start, current));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_records_join_parentheses_and_drop_comments() {
        let text = "; a comment\n@ IN SOA ns1 host ( 1 ; serial\n  3600 600\n  86400 60 )\nwww A 192.0.2.1 ; web\n\n  TXT \"a ; not a comment\"\n";
        let got = logical_records(text);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].1, "@ IN SOA ns1 host ( 1  3600 600 86400 60 )");
        assert_eq!(got[1], (5, "www A 192.0.2.1 ".to_owned()));
        assert_eq!(got[2], (7, "  TXT \"a ; not a comment\"".to_owned()));
    }
}
