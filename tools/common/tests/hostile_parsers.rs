//! Property tests for the parsers that read what a user or another program hands a tool: the
//! stdin envelope and the env file (issue 11). For arbitrary bytes and for mutations of valid
//! inputs they must return Ok or a one-line bad-input error (exit 3), never panic, and never
//! accept a well-known fact of the wrong type.

use etcd_common::envelope::parse_upstream;
use etcd_common::envfile::EnvFile;
use proptest::prelude::*;

const GOOD: &str = r#"{"v":1,"tool":"etcd-snap","tool_version":"0.1.0","ok":true,"changed":true,"facts":{"endpoints":["http://127.0.0.1:2379"],"cluster_id":"cdf818194e3a8c32","snapshot":{"path":"/b/s.db","size_bytes":20480,"sha256":"ab","revision":7},"members":[{"name":"m0"}],"custom":{"x":[1,2]}},"data":{},"warnings":["w"],"error":null}"#;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("endpoints".to_string()),
                    Just("snapshot".to_string()),
                    Just("members".to_string()),
                    Just("cluster_id".to_string()),
                    Just("path".to_string()),
                    Just("exit_code".to_string()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check_envelope(text: &str) {
    match parse_upstream(text) {
        Ok(Some(env)) => {
            // What was accepted has its well-known facts well typed.
            if let Some(e) = env.facts.get("endpoints") {
                assert!(
                    e.is_null()
                        || e.as_array()
                            .is_some_and(|a| a.iter().all(|x| x.is_string())),
                    "accepted endpoints {e}"
                );
            }
            if let Some(s) = env.facts.get("snapshot") {
                assert!(s.is_null() || s.is_object(), "accepted snapshot {s}");
            }
            // An accepted failure never stands for success.
            if !env.ok {
                assert_ne!(env.exit_code().code(), 0);
            }
        }
        Ok(None) => {}
        Err(e) => {
            assert_eq!(e.exit_code().code(), 3, "{}", e.message);
            assert!(!e.message.contains('\n'), "one line: {}", e.message);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, .. ProptestConfig::default() })]

    #[test]
    fn envelope_from_arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..400)) {
        check_envelope(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn envelope_with_mutated_bytes(at in 0usize..GOOD.len(), byte in any::<u8>(), cut in 0usize..GOOD.len()) {
        let mut b = GOOD.as_bytes().to_vec();
        b[at] = byte;
        check_envelope(&String::from_utf8_lossy(&b));
        check_envelope(&GOOD[..cut]);
    }

    #[test]
    fn envelope_with_arbitrary_facts(facts in json_value(), ok in any::<bool>(), code in any::<i64>()) {
        let env = serde_json::json!({
            "v": 1, "tool": "x", "tool_version": "0", "ok": ok, "changed": false,
            "facts": facts,
            "error": if ok { serde_json::Value::Null } else {
                serde_json::json!({"kind": "k", "message": "m", "exit_code": code})
            },
        });
        check_envelope(&env.to_string());
    }

    #[test]
    fn env_file_from_arbitrary_text(t in "(?s).{0,300}") {
        match EnvFile::parse(&t) {
            Ok(f) => {
                for k in f.vars.keys() {
                    prop_assert!(!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{k:?}");
                }
            }
            Err(e) => {
                prop_assert_eq!(e.exit_code().code(), 3);
                prop_assert!(!e.message.contains('\n'));
            }
        }
    }

    #[test]
    fn env_file_lines(lines in prop::collection::vec(
        ("(export )?", "[A-Z_]{0,6}", "[= ]{0,2}", "[\"' #a-z\\\\]{0,8}"), 0..20))
    {
        let t: String = lines.iter().map(|(x, k, eq, v)| format!("{x}{k}{eq}{v}\n")).collect();
        let _ = EnvFile::parse(&t);
    }
}
