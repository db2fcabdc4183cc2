//! Member and cluster IDs. etcd prints them as uint64 JSON numbers, which jq rounds above 2^53;
//! we always print 16-digit lowercase hex strings and accept hex (with or without `0x`).

/// `0x8e9e05c52164694d` → `"8e9e05c52164694d"`; always 16 digits.
pub fn hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Parse a member/cluster ID given as hex (etcdctl's `member update/remove` take hex too).
pub fn parse_hex(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() || t.len() > 16 {
        return None;
    }
    u64::from_str_radix(t, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(0x8e9e05c52164694d), "8e9e05c52164694d");
        assert_eq!(hex(1), "0000000000000001");
        assert_eq!(parse_hex("8e9e05c52164694d"), Some(0x8e9e05c52164694d));
        assert_eq!(parse_hex("0x1"), Some(1));
        assert_eq!(parse_hex("g"), None);
        assert_eq!(parse_hex("11111111111111111"), None);
        assert_eq!(parse_hex(""), None);
    }
}
