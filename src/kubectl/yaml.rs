//! `-o yaml` as kubectl prints it. kubectl marshals JSON to YAML with sigs.k8s.io/yaml,
//! whose encoder is go-yaml v2: a string that would read back as something else (a bool,
//! null, a number, a timestamp, a base-60 float) is double-quoted (`status: "True"`,
//! `creationTimestamp: "2025-01-01T00:00:20Z"`, `resourceVersion: "148"`), any other
//! string is plain unless the emitter cannot write it plain (then single-quoted, as
//! libyaml decides), and a string with a newline is a literal block.
//!
//! serde_yaml's emitter is the same libyaml (same layout, indentation and folding at 80
//! columns) but decides quoting by YAML 1.2's rules and single-quotes: it writes
//! `status: 'True'` and leaves timestamps plain. [`to_string`] takes its output and
//! rewrites those scalars as go-yaml writes them; everything else is left as emitted.

/// go-yaml v2 `resolve`'s fixed table: the plain scalars that are not strings.
const NON_STRING_WORDS: [&str; 39] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
    "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN",
    ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
];

/// Would go-yaml v2 read `s`, written plain, as something other than a string? (`resolve`
/// plus the encoder's `isBase60Float` check.)
pub fn resolves_to_non_string(s: &str) -> bool {
    if s.is_empty() || NON_STRING_WORDS.contains(&s) {
        return true;
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return false;
    }
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    is_go_int(s) || is_yaml_float(&plain) || is_timestamp(s) || is_base60_float(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)` (or ParseUint) after go-yaml drops underscores, and
/// go-yaml's `0b` binary form: a sign, then decimal, `0x`, `0o`, `0b` or legacy octal.
fn is_go_int(s: &str) -> bool {
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    let digits = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let lower = digits.to_ascii_lowercase();
    let (body, radix) = if let Some(b) = lower.strip_prefix("0x") {
        (b, 16)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (b, 8)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (b, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    !body.is_empty()
        && body.chars().all(|c| c.is_digit(radix))
        && u128::from_str_radix(body, radix).is_ok_and(|v| v <= u64::MAX as u128)
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let digits = |b: &[u8], i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = 0;
    if b.first() == Some(&b'.') {
        let n = digits(b, 1);
        if n == 0 {
            return false;
        }
        i = 1 + n;
    } else {
        let n = digits(b, 0);
        if n == 0 {
            return false;
        }
        i += n;
        if b.get(i) == Some(&b'.') {
            i += 1 + digits(b, i + 1);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(b, i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

/// go-yaml's `parseTimestamp`: four digits and a dash, then one of its formats
/// (`2006-1-2T15:4:5.999999999Z07:00`, the same with `t` or a space and no zone, or a
/// date alone).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    // Numbers of 1 or 2 digits separated as the layouts say.
    let mut rest = &s[5..];
    let num = |rest: &mut &str, max: usize| -> bool {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        let ok = (1..=max).contains(&n);
        *rest = &rest[n..];
        ok
    };
    if !num(&mut rest, 2) || !rest.starts_with('-') {
        return false;
    }
    rest = &rest[1..];
    if !num(&mut rest, 2) {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let zoned = rest.starts_with(['T', 't']);
    if !(zoned || rest.starts_with(' ')) {
        return false;
    }
    rest = &rest[1..];
    // Hours and minutes, each followed by ':'.
    for _ in 0..2 {
        if !num(&mut rest, 2) || !rest.starts_with(':') {
            return false;
        }
        rest = &rest[1..];
    }
    if !num(&mut rest, 2) {
        return false;
    }
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if !zoned {
        return rest.is_empty();
    }
    if rest == "Z" {
        return true;
    }
    let b = rest.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..].iter().all(u8::is_ascii_digit)
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')) {
        return false;
    }
    let mut parts = whole.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && head.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let mut sexagesimal = 0;
    for p in parts {
        let b = p.as_bytes();
        let ok = match b {
            [d] => d.is_ascii_digit(),
            [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
        sexagesimal += 1;
    }
    head_ok && sexagesimal > 0
}

/// Go's `%q`-like double quoting as libyaml writes a double-quoted scalar (the strings
/// rewritten here are short and printable: only `"` and `\` need escaping).
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A scalar token at the start of `t`: its text, and how many bytes it spans, if it is
/// complete on this line (a single-quoted one closed, or a plain one).
fn scalar(t: &str) -> Option<(String, usize, bool)> {
    if let Some(body) = t.strip_prefix('\'') {
        let mut text = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|(_, c)| *c) == Some('\'') {
                    chars.next();
                    text.push('\'');
                    continue;
                }
                return Some((text, i + 2, true));
            }
            text.push(c);
        }
        return None;
    }
    if t.starts_with(['"', '|', '>', '{', '[', '&', '*', '!']) {
        return None;
    }
    let end = t.find(": ").unwrap_or(if t.ends_with(':') { t.len() - 1 } else { t.len() });
    Some((t[..end].to_string(), end, false))
}

/// Rewrites one scalar as go-yaml writes it, or `None` to keep it as emitted. A quoted
/// scalar is a string: double-quoted when go-yaml would not read it back as one. A plain
/// scalar is a string too unless YAML 1.2 reads it as a bool, null or number (serde_yaml
/// quotes strings that would), which must stay plain.
fn rewrite(text: &str, quoted: bool) -> Option<String> {
    if !resolves_to_non_string(text) {
        return None;
    }
    let plain_is_string =
        || matches!(serde_yaml::from_str::<serde_yaml::Value>(text), Ok(serde_yaml::Value::String(_)));
    (quoted || plain_is_string()).then(|| double_quoted(text))
}

/// Does a scalar starting with `t` go on over the following lines (a block scalar, or a
/// quoted one not closed on this line)?
fn continues(t: &str) -> bool {
    t.starts_with(['|', '>', '\'', '"'])
}

/// libyaml's best width, which go-yaml v2 (as sigs.k8s.io/yaml vendors it) keeps:
/// scalars are folded at a space once a line is past 80 columns.
const BEST_WIDTH: usize = 80;

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// Writes a scalar value as libyaml's `yaml_emitter_write_{plain,single_quoted,
/// double_quoted}` do with breaks allowed: starting at column `col`, a single space (not
/// the first or last character, for quoted ones) becomes a line break to `indent` once
/// the line is past [`BEST_WIDTH`]. `written` is the scalar as serde_yaml (which never
/// folds) or [`rewrite`] wrote it.
fn fold(written: &str, mut col: usize, indent: usize, out: &mut String) {
    let (style, content): (Style, String) = if let Some(b) = written.strip_prefix('\'') {
        (Style::Single, b.strip_suffix('\'').unwrap_or(b).replace("''", "'"))
    } else if let Some(b) = written.strip_prefix('"') {
        (Style::Double, b.strip_suffix('"').unwrap_or(b).replace("\\\"", "\"").replace("\\\\", "\\"))
    } else {
        (Style::Plain, written.to_string())
    };
    let quote = match style {
        Style::Plain => None,
        Style::Single => Some('\''),
        Style::Double => Some('"'),
    };
    if let Some(q) = quote {
        out.push(q);
        col += 1;
    }
    let chars: Vec<char> = content.chars().collect();
    let mut spaces = false;
    for (i, &ch) in chars.iter().enumerate() {
        if ch == ' ' {
            let next_space = chars.get(i + 1) == Some(&' ');
            let inner = i != 0 && i + 1 != chars.len();
            let breaks = !spaces
                && col > BEST_WIDTH
                && match style {
                    Style::Plain => !next_space,
                    Style::Single => inner && !next_space,
                    Style::Double => inner,
                };
            if breaks {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                col = indent;
                if style == Style::Double && next_space {
                    out.push('\\');
                    col += 1;
                }
            } else {
                out.push(' ');
                col += 1;
            }
            spaces = true;
            continue;
        }
        match (style, ch) {
            (Style::Single, '\'') => {
                out.push_str("''");
                col += 1;
            }
            (Style::Double, '"' | '\\') => {
                out.push('\\');
                out.push(ch);
                col += 1;
            }
            _ => out.push(ch),
        }
        col += 1;
        spaces = false;
    }
    if let Some(q) = quote {
        out.push(q);
    }
}

/// kubectl's `-o yaml` text of a JSON value.
pub fn to_string(value: &serde_json::Value) -> Result<String, String> {
    let emitted = serde_yaml::to_string(value).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(emitted.len() + 64);
    // Lines indented deeper than this belong to a scalar that goes on: left as emitted.
    let mut verbatim_deeper_than: Option<usize> = None;
    for line in emitted.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(d) = verbatim_deeper_than {
            if indent > d || line.trim().is_empty() {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            verbatim_deeper_than = None;
        }
        let mut rebuilt = String::from(&line[..indent]);
        let mut rest = &line[indent..];
        let mut dash = None;
        while let Some(r) = rest.strip_prefix("- ") {
            dash = Some(rebuilt.len());
            rebuilt.push_str("- ");
            rest = r;
        }
        // A sequence item's scalar goes on two columns right of its dash; a key's value
        // two right of the key.
        let item_col = dash.unwrap_or(indent);
        let key_col = rebuilt.len();
        // A value: rewritten as go-yaml quotes it, folded as libyaml folds it.
        let value = |v: &str, rebuilt: &mut String, cont: usize| -> bool {
            match scalar(v) {
                Some((text, len, quoted)) if len == v.len() => {
                    let written = rewrite(&text, quoted).unwrap_or_else(|| v.to_string());
                    let col = rebuilt.chars().count();
                    fold(&written, col, cont, rebuilt);
                    false
                }
                _ => {
                    rebuilt.push_str(v);
                    continues(v)
                }
            }
        };
        match scalar(rest) {
            Some((text, len, quoted)) if rest[len..] == *":" || rest[len..].starts_with(": ") => {
                // A key, then its value if on this line.
                rebuilt.push_str(&rewrite(&text, quoted).unwrap_or_else(|| rest[..len].to_string()));
                match rest[len..].strip_prefix(": ") {
                    Some(v) => {
                        rebuilt.push_str(": ");
                        if value(v, &mut rebuilt, key_col + 2) {
                            verbatim_deeper_than = Some(key_col);
                        }
                    }
                    None => rebuilt.push(':'),
                }
            }
            _ => {
                if value(rest, &mut rebuilt, item_col + 2) {
                    verbatim_deeper_than = Some(item_col);
                }
            }
        }
        out.push_str(&rebuilt);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_yaml_resolves_what_it_would_not_read_back_as_a_string() {
        for s in [
            "",
            "True",
            "true",
            "yes",
            "on",
            "N",
            "~",
            "null",
            "148",
            "-3",
            "0x1f",
            "0o17",
            "017",
            "1_000",
            "1.5",
            ".5",
            "1e3",
            "-1.2E-3",
            ".inf",
            "2025-01-01T00:00:20Z",
            "2025-01-01",
            "2025-1-2 3:04:05",
            "2025-01-01T00:00:20.5+01:00",
            "1:20",
            "190:20:30.15",
            "12345678901234567890123",
        ] {
            assert!(resolves_to_non_string(s), "{s:?} is not a string to go-yaml");
        }
        for s in [
            "web",
            "True1",
            "1.2.3",
            "10.244.0.0/24",
            "2025-01-01T00:00:20",
            "v1.33.0",
            "1Gi",
            "100m",
            "-",
            "+",
            "1:60",
            "0x",
            "e3",
        ] {
            assert!(!resolves_to_non_string(s), "{s:?} is a string to go-yaml");
        }
    }

    /// The quoting kubectl prints (checked against kubectl 1.33's `annotate --local -o
    /// yaml` of the same JSON).
    #[test]
    fn quotes_as_kubectl() {
        let v = json!({
            "metadata": {"creationTimestamp": "2025-01-01T00:00:20Z", "resourceVersion": "148", "name": "web", "labels": {"on": "yes", "x": ""}},
            "status": {"conditions": [{"status": "True", "type": "Ready", "message": "a: b", "lastTransitionTime": "2025-01-01T00:00:21Z"}], "phase": "Running"},
            "data": {"script": "line one\nline two: 'True'\n"},
            "list": ["True", "-", "plain", 3, true, null],
        });
        let y = to_string(&v).unwrap();
        assert!(y.contains("creationTimestamp: \"2025-01-01T00:00:20Z\"\n"), "{y}");
        assert!(y.contains("resourceVersion: \"148\"\n"), "{y}");
        assert!(y.contains("- lastTransitionTime: \"2025-01-01T00:00:21Z\"\n"), "{y}");
        assert!(y.contains("status: \"True\"\n"), "{y}");
        assert!(y.contains("message: 'a: b'\n"), "{y}");
        assert!(y.contains("\"on\": \"yes\"\n"), "{y}");
        assert!(y.contains("x: \"\"\n"), "{y}");
        assert!(
            y.contains("  script: |\n    line one\n    line two: 'True'\n"),
            "block scalars untouched: {y}"
        );
        assert!(y.contains("- \"True\"\n- '-'\n- plain\n- 3\n- true\n- null\n"), "{y}");
    }

    /// Long strings folded at a space past column 80, plain, single-quoted, as mapping
    /// values and sequence items (kubectl 1.33's `annotate --local -o yaml` of this JSON).
    #[test]
    fn folds_long_strings_as_kubectl() {
        let v: serde_json::Value = serde_json::from_str(r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"a": "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega", "q": "x: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega", "d": "True alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega"}}, "spec": {"containers": [{"name": "c", "image": "i", "args": ["alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega", "k: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega"], "command": ["sh"]}]}, "status": {"message": "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega"}}"#).unwrap();
        let want = r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    a: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron
      pi rho sigma tau upsilon phi chi psi omega
    d: True alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu
      xi omicron pi rho sigma tau upsilon phi chi psi omega
    q: 'x: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi
      omicron pi rho sigma tau upsilon phi chi psi omega'
  name: p
spec:
  containers:
  - args:
    - alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron
      pi rho sigma tau upsilon phi chi psi omega
    - 'k: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi
      omicron pi rho sigma tau upsilon phi chi psi omega'
    command:
    - sh
    image: i
    name: c
status:
  message: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi
    omicron pi rho sigma tau upsilon phi chi psi omega
"#;
        assert_eq!(to_string(&v).unwrap(), want);
    }
}
