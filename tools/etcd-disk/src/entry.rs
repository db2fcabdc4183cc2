//! Classify raft entries (spec §3): no-op, conf change, legacy v2 `Request`, v3
//! `InternalRaftRequest` — using etcd's own rule: strict decode as `InternalRaftRequest`,
//! else as legacy `Request`.

use crate::proto::{self, entry_type, ConfChange, InternalRaftRequest, Request};
use prost::Message;

/// What a raft entry is.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// `EntryNormal` with empty data: the no-op a new leader appends.
    NoOp,
    /// `EntryConfChange`.
    ConfChange(ConfChangeInfo),
    /// `EntryConfChangeV2` (never proposed by etcd 3.4/3.5 servers).
    ConfChangeV2,
    /// A legacy v2 request (or an `InternalRaftRequest` carrying `v2`).
    V2(V2Request),
    /// A v3 request.
    V3(V3Request),
    /// An entry type etcd does not know, or data neither message decodes.
    Unknown(String),
}

/// A decoded `ConfChange`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfChangeInfo {
    /// `raftpb.ConfChangeType` (0 add, 1 remove, 2 update, 3 add learner).
    pub change_type: i32,
    pub node_id: u64,
    /// Request ID; 0 for bootstrap/restore entries.
    pub id: u64,
    /// The JSON context (member or ConfigChangeContext), if any.
    pub context: Option<Vec<u8>>,
}

impl ConfChangeInfo {
    pub fn type_name(&self) -> &'static str {
        match self.change_type {
            0 => "AddNode",
            1 => "RemoveNode",
            2 => "UpdateNode",
            3 => "AddLearnerNode",
            _ => "Unknown",
        }
    }
    /// The context parsed as JSON, if it is JSON.
    pub fn context_json(&self) -> Option<serde_json::Value> {
        self.context
            .as_deref()
            .and_then(|c| serde_json::from_slice(c).ok())
    }
}

/// A legacy v2 request.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Request {
    pub method: String,
    pub path: String,
    /// True when carried in an `InternalRaftRequest.v2` rather than as a bare `Request`.
    pub embedded: bool,
    pub request: Request,
}

impl V2Request {
    /// `PUT /0/members/<1-16 hex>/attributes` (member publish).
    pub fn is_member_attributes(&self) -> bool {
        self.method == "PUT" && is_member_attr_path(&self.path)
    }
    /// `PUT /0/version` (cluster version).
    pub fn is_cluster_version(&self) -> bool {
        self.method == "PUT" && self.path == "/0/version"
    }
    /// The two server-generated v2 writes that etcd 3.6 still accepts.
    pub fn is_internal(&self) -> bool {
        self.is_member_attributes() || self.is_cluster_version()
    }
    /// Periodic expiry of TTL keys (only proposed while TTL keys exist).
    pub fn is_sync(&self) -> bool {
        self.method == "SYNC"
    }
    /// Quorum read (no mutation).
    pub fn is_qget(&self) -> bool {
        self.method == "QGET"
    }
    /// A write a v2 client made: PUT/POST/DELETE other than the two internal writes. Not
    /// SYNC (the leader proposes one every 500 ms while TTL keys exist, to expire them) nor
    /// QGET (a quorum read).
    pub fn is_user_write(&self) -> bool {
        match self.method.as_str() {
            "PUT" | "POST" | "DELETE" => !self.is_internal(),
            _ => false,
        }
    }
    /// Whether etcd 3.6 (`--v2-deprecation=write-only`) panics replaying this entry: every v2
    /// request except the two internal PUTs.
    pub fn rejected_by_36(&self) -> bool {
        !self.is_internal()
    }
}

/// `/0/members/[0-9a-fA-F]{1,16}/attributes`, anchored.
pub fn is_member_attr_path(p: &str) -> bool {
    p.strip_prefix("/0/members/")
        .and_then(|r| r.strip_suffix("/attributes"))
        .is_some_and(|h| (1..=16).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a v3 request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V3Kind {
    Put {
        key: Vec<u8>,
    },
    DeleteRange {
        key: Vec<u8>,
        range_end: Vec<u8>,
    },
    Txn,
    Range,
    Compaction {
        revision: i64,
    },
    LeaseGrant {
        id: i64,
        ttl: i64,
    },
    LeaseRevoke {
        id: i64,
    },
    LeaseCheckpoint,
    Alarm,
    /// `auth_*` / `authenticate`; the field name.
    Auth(&'static str),
    ClusterVersionSet {
        version: String,
    },
    ClusterMemberAttrSet {
        member_id: u64,
    },
    DowngradeInfoSet,
    /// No known request field (e.g. an empty `InternalRaftRequest`).
    Empty,
}

impl V3Kind {
    pub fn name(&self) -> &'static str {
        match self {
            V3Kind::Put { .. } => "put",
            V3Kind::DeleteRange { .. } => "delete_range",
            V3Kind::Txn => "txn",
            V3Kind::Range => "range",
            V3Kind::Compaction { .. } => "compaction",
            V3Kind::LeaseGrant { .. } => "lease_grant",
            V3Kind::LeaseRevoke { .. } => "lease_revoke",
            V3Kind::LeaseCheckpoint => "lease_checkpoint",
            V3Kind::Alarm => "alarm",
            V3Kind::Auth(n) => n,
            V3Kind::ClusterVersionSet { .. } => "cluster_version_set",
            V3Kind::ClusterMemberAttrSet { .. } => "cluster_member_attr_set",
            V3Kind::DowngradeInfoSet => "downgrade_info_set",
            V3Kind::Empty => "empty",
        }
    }
}

/// A v3 request.
#[derive(Debug, Clone, PartialEq)]
pub struct V3Request {
    pub kind: V3Kind,
    /// `header` present (etcd's backup treats header-less requests as non-v3).
    pub has_header: bool,
    pub header_id: u64,
}

fn v2_of(r: Request, embedded: bool) -> V2Request {
    V2Request {
        method: proto::lossy(&r.method).into_owned(),
        path: proto::lossy(&r.path).into_owned(),
        embedded,
        request: r,
    }
}

fn v3_kind(r: &InternalRaftRequest) -> V3Kind {
    if let Some(p) = &r.put {
        return V3Kind::Put { key: p.key.clone() };
    }
    if let Some(d) = &r.delete_range {
        return V3Kind::DeleteRange {
            key: d.key.clone(),
            range_end: d.range_end.clone(),
        };
    }
    if r.txn.is_some() {
        return V3Kind::Txn;
    }
    if r.range.is_some() {
        return V3Kind::Range;
    }
    if let Some(c) = &r.compaction {
        return V3Kind::Compaction {
            revision: c.revision,
        };
    }
    if let Some(l) = &r.lease_grant {
        return V3Kind::LeaseGrant {
            id: l.id,
            ttl: l.ttl,
        };
    }
    if let Some(l) = &r.lease_revoke {
        return V3Kind::LeaseRevoke { id: l.id };
    }
    if r.lease_checkpoint.is_some() {
        return V3Kind::LeaseCheckpoint;
    }
    if r.alarm.is_some() {
        return V3Kind::Alarm;
    }
    let auth: [(&Option<Vec<u8>>, &'static str); 18] = [
        (&r.auth_enable, "auth_enable"),
        (&r.auth_disable, "auth_disable"),
        (&r.authenticate, "authenticate"),
        (&r.auth_status, "auth_status"),
        (&r.auth_user_add, "auth_user_add"),
        (&r.auth_user_delete, "auth_user_delete"),
        (&r.auth_user_get, "auth_user_get"),
        (&r.auth_user_change_password, "auth_user_change_password"),
        (&r.auth_user_grant_role, "auth_user_grant_role"),
        (&r.auth_user_revoke_role, "auth_user_revoke_role"),
        (&r.auth_user_list, "auth_user_list"),
        (&r.auth_role_list, "auth_role_list"),
        (&r.auth_role_add, "auth_role_add"),
        (&r.auth_role_delete, "auth_role_delete"),
        (&r.auth_role_get, "auth_role_get"),
        (&r.auth_role_grant_permission, "auth_role_grant_permission"),
        (
            &r.auth_role_revoke_permission,
            "auth_role_revoke_permission",
        ),
        (&None, ""),
    ];
    if let Some((_, n)) = auth.iter().find(|(f, _)| f.is_some()) {
        return V3Kind::Auth(n);
    }
    if let Some(v) = &r.cluster_version_set {
        return V3Kind::ClusterVersionSet {
            version: proto::lossy(&v.ver).into_owned(),
        };
    }
    if let Some(m) = &r.cluster_member_attr_set {
        return V3Kind::ClusterMemberAttrSet {
            member_id: m.member_id,
        };
    }
    if r.downgrade_info_set.is_some() {
        return V3Kind::DowngradeInfoSet;
    }
    V3Kind::Empty
}

/// Classify the payload of an `EntryNormal` the way etcd's `applyEntryNormal` does.
pub fn classify_normal(data: &[u8]) -> EntryKind {
    if data.is_empty() {
        return EntryKind::NoOp;
    }
    match InternalRaftRequest::decode(data) {
        Ok(mut irr) => {
            if let Some(v2) = irr.v2.take() {
                return EntryKind::V2(v2_of(v2, true));
            }
            EntryKind::V3(V3Request {
                kind: v3_kind(&irr),
                has_header: irr.header.is_some(),
                header_id: irr.header.as_ref().map_or(0, |h| h.id),
            })
        }
        Err(_) => match Request::decode(data) {
            Ok(r) => EntryKind::V2(v2_of(r, false)),
            Err(e) => EntryKind::Unknown(format!("neither InternalRaftRequest nor Request: {e}")),
        },
    }
}

/// Classify an entry from its type and payload (`None` = nil data).
pub fn classify(etype: i32, data: Option<&[u8]>) -> EntryKind {
    match etype {
        entry_type::NORMAL => classify_normal(data.unwrap_or(&[])),
        entry_type::CONF_CHANGE => match ConfChange::decode(data.unwrap_or(&[])) {
            Ok(cc) => EntryKind::ConfChange(ConfChangeInfo {
                change_type: cc.r#type,
                node_id: cc.node_id,
                id: cc.id,
                context: cc.context,
            }),
            Err(e) => EntryKind::Unknown(format!("bad ConfChange: {e}")),
        },
        entry_type::CONF_CHANGE_V2 => EntryKind::ConfChangeV2,
        t => EntryKind::Unknown(format!("unknown entry type {t}")),
    }
}

/// The spec's cheap discriminator (§3.2): a top-level field 5 with wire type 0 means legacy
/// `Request`. Provided for cross-checking; [`classify_normal`] uses etcd's rule.
pub fn looks_like_legacy_request(data: &[u8]) -> bool {
    let mut legacy = false;
    let _ = proto::raw::scan(data, |num, v| {
        if num == 5 && matches!(v, proto::raw::Value::Varint(_)) {
            legacy = true;
        }
        Ok(())
    });
    legacy
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::{encode, PutRequest, RequestHeader};

    fn v2(method: &str, path: &str) -> Vec<u8> {
        encode(&Request {
            id: 7,
            method: method.into(),
            path: path.into(),
            ..Default::default()
        })
    }

    #[test]
    fn legacy_requests() {
        for (m, p, user, internal) in [
            ("PUT", "/0/members/4f6e8cdffebd6727/attributes", false, true),
            ("PUT", "/0/version", false, true),
            ("PUT", "/1/v2a", true, false),
            ("POST", "/1/q", true, false),
            ("DELETE", "/1/v2a", true, false),
            ("PUT", "/2/users/root", true, false),
            ("SYNC", "", false, false),
            ("QGET", "/1/x", false, false),
            (
                "PUT",
                "/0/members/12345678901234567/attributes",
                true,
                false,
            ),
            ("PUT", "/0/members/4f6e/raftAttributes", true, false),
        ] {
            let d = v2(m, p);
            assert!(looks_like_legacy_request(&d));
            let EntryKind::V2(r) = classify(0, Some(&d)) else {
                panic!("{m} {p}")
            };
            assert_eq!((r.method.as_str(), r.path.as_str()), (m, p));
            assert_eq!(r.is_user_write(), user, "{m} {p}");
            assert_eq!(r.is_internal(), internal, "{m} {p}");
            assert!(!r.embedded);
        }
    }

    #[test]
    fn v3_requests() {
        let put = encode(&InternalRaftRequest {
            put: Some(PutRequest {
                key: b"k1".to_vec(),
                value: b"v1".to_vec(),
                ..Default::default()
            }),
            header: Some(RequestHeader {
                id: 9,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(!looks_like_legacy_request(&put));
        let EntryKind::V3(r) = classify(0, Some(&put)) else {
            panic!()
        };
        assert_eq!(
            r.kind,
            V3Kind::Put {
                key: b"k1".to_vec()
            }
        );
        assert!(r.has_header);
        assert_eq!(r.header_id, 9);
        // observed delete and lease grant payloads (spec §3.2)
        let del = [
            0x2a, 0x04, 0x0a, 0x02, b'k', b'2', 0xa2, 0x06, 0x02, 0x08, 0x01,
        ];
        let EntryKind::V3(r) = classify(0, Some(&del)) else {
            panic!()
        };
        assert_eq!(r.kind.name(), "delete_range");
        let lease = [
            0x42, 0x05, 0x08, 0xd8, 0x04, 0x10, 0x05, 0xa2, 0x06, 0x02, 0x08, 0x01,
        ];
        let EntryKind::V3(r) = classify(0, Some(&lease[..])) else {
            panic!()
        };
        assert_eq!(r.kind, V3Kind::LeaseGrant { id: 5, ttl: 600 });
        let embedded = encode(&InternalRaftRequest {
            v2: Some(Request {
                method: b"PUT".to_vec(),
                path: b"/1/a".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let EntryKind::V2(r) = classify(0, Some(&embedded)) else {
            panic!()
        };
        assert!(r.embedded && r.is_user_write());
    }

    #[test]
    fn noop_confchange_garbage() {
        assert_eq!(classify(0, None), EntryKind::NoOp);
        assert_eq!(classify(0, Some(&[])), EntryKind::NoOp);
        let cc = encode(&ConfChange {
            id: 0,
            r#type: 0,
            node_id: 5,
            context: Some(b"{\"id\":5}".to_vec()),
        });
        let EntryKind::ConfChange(c) = classify(1, Some(&cc)) else {
            panic!()
        };
        assert_eq!((c.type_name(), c.node_id), ("AddNode", 5));
        assert_eq!(c.context_json().unwrap()["id"], 5);
        assert!(matches!(
            classify(0, Some(&[0xff, 0xff])),
            EntryKind::Unknown(_)
        ));
        assert!(matches!(classify(9, None), EntryKind::Unknown(_)));
    }
}
