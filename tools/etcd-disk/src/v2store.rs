//! The v2 store JSON carried in `.snap` files (spec §4): a tolerant reader, the
//! `IsMetaStoreOnly` test, and a byte-exact generator of the fresh store written by restore.

/// Quote a string exactly as Go's `encoding/json` (Go ≤ 1.21, HTML-safe) does: `"` and `\`
/// backslash-escaped; `\n`, `\r`, `\t` short forms; other control bytes, `<`, `>`, `&`,
/// U+2028 and U+2029 as `\u00XX`/`\u20XX` (lowercase hex). Rust strings are valid UTF-8, so
/// Go's U+FFFD replacement of invalid bytes does not arise here.
pub fn go_quote(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 15] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("<&>\n\u{1}\u{8}\u{c}"),
            r#""\u003c\u0026\u003e\n\u0001\u0008\u000c""#
        );
        assert_eq!(go_quote("é\u{2028}"), "\"é\\u2028\"");
    }
}
