//! Protobuf messages of etcd's on-disk formats, encoding byte-exactly as etcd (gogoproto) does.
//!
//! Rules (spec §0): proto2 fields declared `nullable=false` are always emitted, even when zero
//! (prost `required`); nullable `bytes`/`string`/`bool` fields are emitted only when set
//! (`Option<_>`); proto3 messages omit zero values; fields ascend by number; the repeated
//! fields of `ConfState` are not packed.
//!
//! Go `string` fields are modelled as `Vec<u8>`: gogoproto never validates UTF-8, so a Go
//! string may hold any bytes and must still decode. Use [`lossy`] to print them.

use prost::Message;

/// Render Go string bytes for humans (invalid UTF-8 replaced).
pub fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

// ------------------------------------------------------------------------------------------
// walpb
// ------------------------------------------------------------------------------------------

/// WAL record types (`walpb.Record.type`).
pub mod record_type {
    pub const METADATA: i64 = 1;
    pub const ENTRY: i64 = 2;
    pub const STATE: i64 = 3;
    pub const CRC: i64 = 4;
    pub const SNAPSHOT: i64 = 5;
}

/// `walpb.Record` (proto2): the payload of one WAL frame.
#[derive(Clone, PartialEq, Message)]
pub struct WalRecord {
    #[prost(int64, required, tag = "1")]
    pub r#type: i64,
    #[prost(uint32, required, tag = "2")]
    pub crc: u32,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub data: Option<Vec<u8>>,
}

/// `walpb.Snapshot`: marks that a raft snapshot at (index, term) exists. `conf_state` is set
/// by 3.5 for every non-initial snapshot record, never by 3.4.
#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct WalSnapshot {
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    #[prost(uint64, required, tag = "2")]
    pub term: u64,
    #[prost(message, optional, tag = "3")]
    pub conf_state: Option<ConfState>,
}

// ------------------------------------------------------------------------------------------
// etcdserverpb
// ------------------------------------------------------------------------------------------

/// `etcdserverpb.Metadata` (proto2): the WAL metadata record's data.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Metadata {
    #[prost(uint64, required, tag = "1")]
    pub node_id: u64,
    #[prost(uint64, required, tag = "2")]
    pub cluster_id: u64,
}

/// Legacy v2 `etcdserverpb.Request` (proto2), all 17 fields.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    #[prost(uint64, required, tag = "1")]
    pub id: u64,
    #[prost(bytes = "vec", required, tag = "2")]
    pub method: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "3")]
    pub path: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "4")]
    pub val: Vec<u8>,
    #[prost(bool, required, tag = "5")]
    pub dir: bool,
    #[prost(bytes = "vec", required, tag = "6")]
    pub prev_value: Vec<u8>,
    #[prost(uint64, required, tag = "7")]
    pub prev_index: u64,
    #[prost(bool, optional, tag = "8")]
    pub prev_exist: Option<bool>,
    #[prost(int64, required, tag = "9")]
    pub expiration: i64,
    #[prost(bool, required, tag = "10")]
    pub wait: bool,
    #[prost(uint64, required, tag = "11")]
    pub since: u64,
    #[prost(bool, required, tag = "12")]
    pub recursive: bool,
    #[prost(bool, required, tag = "13")]
    pub sorted: bool,
    #[prost(bool, required, tag = "14")]
    pub quorum: bool,
    #[prost(int64, required, tag = "15")]
    pub time: i64,
    #[prost(bool, required, tag = "16")]
    pub stream: bool,
    #[prost(bool, optional, tag = "17")]
    pub refresh: Option<bool>,
}

/// `etcdserverpb.RequestHeader` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct RequestHeader {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub username: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// `etcdserverpb.PutRequest` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "3")]
    pub lease: i64,
    #[prost(bool, tag = "4")]
    pub prev_kv: bool,
    #[prost(bool, tag = "5")]
    pub ignore_value: bool,
    #[prost(bool, tag = "6")]
    pub ignore_lease: bool,
}

/// `etcdserverpb.DeleteRangeRequest` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct DeleteRangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    #[prost(bool, tag = "3")]
    pub prev_kv: bool,
}

/// `etcdserverpb.CompactionRequest` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct CompactionRequest {
    #[prost(int64, tag = "1")]
    pub revision: i64,
    #[prost(bool, tag = "2")]
    pub physical: bool,
}

/// `etcdserverpb.LeaseGrantRequest` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct LeaseGrantRequest {
    #[prost(int64, tag = "1")]
    pub ttl: i64,
    #[prost(int64, tag = "2")]
    pub id: i64,
}

/// `etcdserverpb.LeaseRevokeRequest` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct LeaseRevokeRequest {
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// `etcdserverpb.AlarmRequest` (proto3).
#[derive(Clone, PartialEq, Message)]
pub struct AlarmRequest {
    #[prost(int32, tag = "1")]
    pub action: i32,
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    #[prost(int32, tag = "3")]
    pub alarm: i32,
}

/// `membershippb.ClusterVersionSetRequest` (3.5).
#[derive(Clone, PartialEq, Message)]
pub struct ClusterVersionSetRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub ver: Vec<u8>,
}

/// `membershippb.Attributes` (3.5).
#[derive(Clone, PartialEq, Message)]
pub struct MemberAttributes {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub client_urls: Vec<Vec<u8>>,
}

/// `membershippb.ClusterMemberAttrSetRequest` (3.5).
#[derive(Clone, PartialEq, Message)]
pub struct ClusterMemberAttrSetRequest {
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    #[prost(message, optional, tag = "2")]
    pub member_attributes: Option<MemberAttributes>,
}

/// `membershippb.DowngradeInfoSetRequest` (3.5).
#[derive(Clone, PartialEq, Message)]
pub struct DowngradeInfoSetRequest {
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    #[prost(bytes = "vec", tag = "2")]
    pub ver: Vec<u8>,
}

/// `etcdserverpb.InternalRaftRequest` (proto3): the v3 entry payload. Nested messages not
/// needed to classify an entry are kept as raw bytes (their presence is what matters).
#[derive(Clone, PartialEq, Message)]
pub struct InternalRaftRequest {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, optional, tag = "2")]
    pub v2: Option<Request>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub range: Option<Vec<u8>>,
    #[prost(message, optional, tag = "4")]
    pub put: Option<PutRequest>,
    #[prost(message, optional, tag = "5")]
    pub delete_range: Option<DeleteRangeRequest>,
    #[prost(bytes = "vec", optional, tag = "6")]
    pub txn: Option<Vec<u8>>,
    #[prost(message, optional, tag = "7")]
    pub compaction: Option<CompactionRequest>,
    #[prost(message, optional, tag = "8")]
    pub lease_grant: Option<LeaseGrantRequest>,
    #[prost(message, optional, tag = "9")]
    pub lease_revoke: Option<LeaseRevokeRequest>,
    #[prost(message, optional, tag = "10")]
    pub alarm: Option<AlarmRequest>,
    #[prost(bytes = "vec", optional, tag = "11")]
    pub lease_checkpoint: Option<Vec<u8>>,
    #[prost(message, optional, tag = "100")]
    pub header: Option<RequestHeader>,
    #[prost(bytes = "vec", optional, tag = "1000")]
    pub auth_enable: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1011")]
    pub auth_disable: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1012")]
    pub authenticate: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1013")]
    pub auth_status: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1100")]
    pub auth_user_add: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1101")]
    pub auth_user_delete: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1102")]
    pub auth_user_get: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1103")]
    pub auth_user_change_password: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1104")]
    pub auth_user_grant_role: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1105")]
    pub auth_user_revoke_role: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1106")]
    pub auth_user_list: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1107")]
    pub auth_role_list: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1200")]
    pub auth_role_add: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1201")]
    pub auth_role_delete: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1202")]
    pub auth_role_get: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1203")]
    pub auth_role_grant_permission: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "1204")]
    pub auth_role_revoke_permission: Option<Vec<u8>>,
    #[prost(message, optional, tag = "1300")]
    pub cluster_version_set: Option<ClusterVersionSetRequest>,
    #[prost(message, optional, tag = "1301")]
    pub cluster_member_attr_set: Option<ClusterMemberAttrSetRequest>,
    #[prost(message, optional, tag = "1302")]
    pub downgrade_info_set: Option<DowngradeInfoSetRequest>,
}

// ------------------------------------------------------------------------------------------
// raftpb
// ------------------------------------------------------------------------------------------

/// `raftpb.EntryType` values.
pub mod entry_type {
    pub const NORMAL: i32 = 0;
    pub const CONF_CHANGE: i32 = 1;
    pub const CONF_CHANGE_V2: i32 = 2;
}

/// `raftpb.ConfChangeType` values.
pub mod conf_change_type {
    pub const ADD_NODE: i32 = 0;
    pub const REMOVE_NODE: i32 = 1;
    pub const UPDATE_NODE: i32 = 2;
    pub const ADD_LEARNER_NODE: i32 = 3;
}

/// `raftpb.Entry` (proto2).
#[derive(Clone, PartialEq, Message)]
pub struct Entry {
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    #[prost(uint64, required, tag = "2")]
    pub term: u64,
    #[prost(uint64, required, tag = "3")]
    pub index: u64,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub data: Option<Vec<u8>>,
}

/// `raftpb.HardState` (proto2).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct HardState {
    #[prost(uint64, required, tag = "1")]
    pub term: u64,
    #[prost(uint64, required, tag = "2")]
    pub vote: u64,
    #[prost(uint64, required, tag = "3")]
    pub commit: u64,
}

impl HardState {
    /// etcd never writes an all-zero HardState.
    pub fn is_empty(&self) -> bool {
        self.term == 0 && self.vote == 0 && self.commit == 0
    }
}

/// `raftpb.ConfState` (proto2). Repeated fields are not packed; `auto_leave` always emitted.
#[derive(Clone, PartialEq, Eq, Hash, Message)]
pub struct ConfState {
    #[prost(uint64, repeated, packed = "false", tag = "1")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "2")]
    pub learners: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    pub voters_outgoing: Vec<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    pub learners_next: Vec<u64>,
    #[prost(bool, required, tag = "5")]
    pub auto_leave: bool,
}

/// `raftpb.ConfChange` (proto2).
#[derive(Clone, PartialEq, Message)]
pub struct ConfChange {
    #[prost(uint64, required, tag = "1")]
    pub id: u64,
    #[prost(int32, required, tag = "2")]
    pub r#type: i32,
    #[prost(uint64, required, tag = "3")]
    pub node_id: u64,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub context: Option<Vec<u8>>,
}

/// `raftpb.SnapshotMetadata` (proto2).
#[derive(Clone, PartialEq, Message)]
pub struct SnapshotMetadata {
    #[prost(message, required, tag = "1")]
    pub conf_state: ConfState,
    #[prost(uint64, required, tag = "2")]
    pub index: u64,
    #[prost(uint64, required, tag = "3")]
    pub term: u64,
}

/// `raftpb.Snapshot` (proto2): `data` is the v2 store JSON.
#[derive(Clone, PartialEq, Message)]
pub struct RaftSnapshot {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub data: Option<Vec<u8>>,
    #[prost(message, required, tag = "2")]
    pub metadata: SnapshotMetadata,
}

// ------------------------------------------------------------------------------------------
// snappb, mvccpb
// ------------------------------------------------------------------------------------------

/// `snappb.Snapshot` (proto2): the whole content of a `.snap` file.
#[derive(Clone, PartialEq, Message)]
pub struct SnapFile {
    #[prost(uint32, required, tag = "1")]
    pub crc: u32,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub data: Option<Vec<u8>>,
}

/// `mvccpb.KeyValue` (proto3): the value of a revision key in the `key` bucket.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    #[prost(int64, tag = "4")]
    pub version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// Encode any message to a fresh vector.
pub fn encode<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn crc_record() {
        let r = WalRecord {
            r#type: record_type::CRC,
            crc: 0,
            data: None,
        };
        assert_eq!(encode(&r), hex("08041000"));
        let r = WalRecord {
            r#type: record_type::CRC,
            crc: 0x9f420905,
            data: None,
        };
        assert_eq!(encode(&r), hex("0804108592 88fa09"));
    }

    #[test]
    fn metadata_record() {
        let md = Metadata {
            node_id: 0x4f6e8cdffebd6727,
            cluster_id: 0xad420312c65d215c,
        };
        let r = WalRecord {
            r#type: 1,
            crc: 0xda61ab9f,
            data: Some(encode(&md)),
        };
        let want = hex("080110 9fd786d30d 1a15 08a7cef5f5ff9ba3b74f 10dcc2f4b2ace280a1ad01");
        assert_eq!(encode(&r), want);
        let back = WalRecord::decode(&want[..]).unwrap();
        assert_eq!(Metadata::decode(back.data.unwrap().as_slice()).unwrap(), md);
    }

    #[test]
    fn snapshot_record_34_and_35() {
        let s = WalSnapshot {
            index: 0,
            term: 0,
            conf_state: None,
        };
        assert_eq!(encode(&s), hex("08001000"));
        let s = WalSnapshot {
            index: 3,
            term: 1,
            conf_state: Some(ConfState {
                voters: vec![0x4229723f34757929, 0xa000429f37de1964, 0xb5a3487b8a1f7dca],
                ..Default::default()
            }),
        };
        assert_eq!(
            encode(&s),
            hex("0803 1001 1a22 08a9f2d5a3f3c7dc9442 08e4b2f8bef3d39080a001 08cafbfdd0b88fd2d1b501 2800")
        );
    }

    #[test]
    fn conf_change_entry() {
        let ctx = br#"{"id":4767467296337000745,"peerURLs":["http://10.0.0.3:2380"],"name":"c"}"#;
        let cc = ConfChange {
            id: 0,
            r#type: conf_change_type::ADD_NODE,
            node_id: 0x4229723f34757929,
            context: Some(ctx.to_vec()),
        };
        let e = Entry {
            r#type: 1,
            term: 1,
            index: 1,
            data: Some(encode(&cc)),
        };
        let mut want = hex("0801 1001 1801 2259 0800 1000 18a9f2d5a3f3c7dc9442 2249");
        want.extend_from_slice(ctx);
        assert_eq!(encode(&e), want);
    }

    #[test]
    fn hard_state() {
        let hs = HardState {
            term: 1,
            vote: 0x4229723f34757929,
            commit: 3,
        };
        assert_eq!(encode(&hs), hex("0801 10a9f2d5a3f3c7dc9442 1803"));
        assert_eq!(encode(&HardState::default()), hex("080010001800"));
    }

    #[test]
    fn legacy_request() {
        let val = br#"{"name":"n1","clientURLs":[]}"#;
        let r = Request {
            id: 5,
            method: b"PUT".to_vec(),
            path: b"/0/members/4f6e8cdffebd6727/attributes".to_vec(),
            val: val.to_vec(),
            ..Default::default()
        };
        let mut want = hex("0805 1203");
        want.extend_from_slice(b"PUT");
        want.extend_from_slice(&hex("1a26"));
        want.extend_from_slice(b"/0/members/4f6e8cdffebd6727/attributes");
        want.push(0x22);
        want.push(val.len() as u8);
        want.extend_from_slice(val);
        want.extend_from_slice(&hex(
            "2800 3200 3800 4800 5000 5800 6000 6800 7000 7800 800100",
        ));
        assert_eq!(encode(&r), want);
        // mkdir: Dir true, PrevExist false emitted.
        let r2 = Request {
            dir: true,
            prev_exist: Some(false),
            ..r.clone()
        };
        let enc = encode(&r2);
        assert!(enc.windows(4).any(|w| w == hex("28013200").as_slice()));
        assert!(enc.windows(4).any(|w| w == hex("38004000").as_slice()));
        assert_eq!(Request::decode(enc.as_slice()).unwrap(), r2);
        // A legacy request never decodes as an InternalRaftRequest.
        assert!(InternalRaftRequest::decode(encode(&r).as_slice()).is_err());
    }

    #[test]
    fn v3_put() {
        let b = hex("2208 0a026b31 12027631 a206 0208 01");
        let irr = InternalRaftRequest::decode(b.as_slice()).unwrap();
        let put = irr.put.clone().unwrap();
        assert_eq!(put.key, b"k1");
        assert_eq!(put.value, b"v1");
        assert!(irr.header.is_some());
        // proto3 field order: put (4) before header (100).
        let again = InternalRaftRequest {
            put: Some(put),
            header: Some(RequestHeader {
                id: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(encode(&again), hex("2208 0a026b31 12027631 a206 0208 01"));
    }

    #[test]
    fn snapshot_metadata_and_snap_file() {
        let cs = ConfState {
            voters: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(encode(&cs), hex("0801 0802 2800"));
        let md = SnapshotMetadata {
            conf_state: ConfState::default(),
            index: 0,
            term: 0,
        };
        assert_eq!(encode(&md), hex("0a02 2800 1000 1800"));
        let s = RaftSnapshot {
            data: None,
            metadata: md,
        };
        assert_eq!(encode(&s), hex("1208 0a022800 10001800"));
        let f = SnapFile { crc: 0, data: None };
        assert_eq!(encode(&f), hex("0800"));
    }

    #[test]
    fn key_value_tombstone() {
        let kv = KeyValue {
            key: b"k2".to_vec(),
            ..Default::default()
        };
        assert_eq!(encode(&kv), hex("0a026b32"));
    }
}

/// A zero-copy protobuf field scanner with gogoproto's strictness (used on hot paths where
/// prost would copy `bytes` fields): field number 0, a truncated varint/length, a varint over
/// 10 bytes and group wire types are errors; callers reject known fields with a wrong wire type.
pub mod raw {
    /// A field value; `Bytes` carries the offset of the payload within the scanned buffer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Value<'a> {
        Varint(u64),
        Fixed64(u64),
        Bytes(usize, &'a [u8]),
        Fixed32(u32),
    }

    /// Read a varint at `*pos`, advancing it.
    pub fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = buf.get(*pos) else {
                return Err("unexpected end of protobuf varint".into());
            };
            *pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("protobuf varint overflow".into())
    }

    /// Call `f(field_number, value)` for every top-level field of `buf`, in order.
    pub fn scan<'a>(
        buf: &'a [u8],
        mut f: impl FnMut(u32, Value<'a>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut pos = 0usize;
        while pos < buf.len() {
            let key = varint(buf, &mut pos)?;
            let num = key >> 3;
            if num == 0 || num > u64::from(u32::MAX >> 3) {
                return Err(format!("illegal protobuf field number {num}"));
            }
            let num = num as u32;
            let v = match key & 7 {
                0 => Value::Varint(varint(buf, &mut pos)?),
                1 => {
                    let s = buf
                        .get(pos..pos + 8)
                        .ok_or("unexpected end of protobuf fixed64")?;
                    pos += 8;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    Value::Fixed64(u64::from_le_bytes(a))
                }
                2 => {
                    let len = varint(buf, &mut pos)?;
                    let len = usize::try_from(len).map_err(|_| "protobuf length overflow")?;
                    let end = pos.checked_add(len).ok_or("protobuf length overflow")?;
                    let s = buf
                        .get(pos..end)
                        .ok_or("unexpected end of protobuf bytes")?;
                    let v = Value::Bytes(pos, s);
                    pos = end;
                    v
                }
                5 => {
                    let s = buf
                        .get(pos..pos + 4)
                        .ok_or("unexpected end of protobuf fixed32")?;
                    pos += 4;
                    let mut a = [0u8; 4];
                    a.copy_from_slice(s);
                    Value::Fixed32(u32::from_le_bytes(a))
                }
                w => {
                    return Err(format!(
                        "unsupported protobuf wire type {w} for field {num}"
                    ))
                }
            };
            f(num, v)?;
        }
        Ok(())
    }

    pub(crate) fn wrong_type(msg: &str, num: u32) -> String {
        format!("proto: wrong wireType for field {num} of {msg}")
    }
}
