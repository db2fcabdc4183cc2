//! Which member a data dir belongs to, and where it serves clients, read from its files: the
//! WAL's metadata (node and cluster ID) and the client URLs it last published. Used by the
//! tools that work on a running member's host (etcd-wal-backup, etcd-snap save --data-dir).

use crate::{ids, Error, Result};
use etcd_disk::bolt::BoltDb;
use etcd_disk::datadir;
use etcd_disk::entry::{self, EntryKind, V3Kind};
use etcd_disk::proto::{entry_type, Metadata};
use etcd_disk::{snap, wal};
use serde_json::Value;
use std::path::Path;

/// The WAL metadata (node and cluster ID), from the first records of the newest segment
/// (every segment starts with crc, metadata).
pub fn wal_metadata(dir: &Path) -> Result<Metadata> {
    let segs = wal::list_segments(dir)?;
    let Some(last) = segs.last() else {
        return Err(Error::bad_input(format!(
            "{}: no .wal files",
            dir.display()
        )));
    };
    let mut r = wal::RecordReader::new(vec![last.clone()]);
    while let Some(rec) = r.next_record()? {
        if rec.rtype == etcd_disk::proto::record_type::METADATA {
            return <Metadata as prost::Message>::decode(rec.data.unwrap_or(&[])).map_err(|e| {
                Error::bad_input(format!(
                    "{}: offset {}: metadata: {e}",
                    last.path.display(),
                    rec.offset
                ))
            });
        }
    }
    Err(Error::bad_input(format!(
        "{}: no metadata record",
        last.path.display()
    )))
}

/// The client URLs in one member-attributes publish of `node_id`, if `data` is one: a v2
/// `PUT /0/members/<id>/attributes` (3.4, 3.5.1) or a v3 `cluster_member_attr_set` (later 3.5).
pub fn published_client_urls(data: &[u8], node_id: u64) -> Option<Vec<String>> {
    match entry::classify_normal(data) {
        EntryKind::V2(r) if r.is_member_attributes() => {
            let hex = r
                .path
                .strip_prefix("/0/members/")
                .and_then(|p| p.strip_suffix("/attributes"))?;
            if u64::from_str_radix(hex, 16).ok()? != node_id {
                return None;
            }
            let v: Value = serde_json::from_slice(&r.request.val).ok()?;
            Some(
                v.get("clientURLs")?
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            )
        }
        EntryKind::V3(r) if matches!(r.kind, V3Kind::ClusterMemberAttrSet { member_id } if member_id == node_id) =>
        {
            let irr =
                <etcd_disk::proto::InternalRaftRequest as prost::Message>::decode(data).ok()?;
            let attrs = irr.cluster_member_attr_set?.member_attributes?;
            Some(
                attrs
                    .client_urls
                    .iter()
                    .map(|u| String::from_utf8_lossy(u).into_owned())
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The client URLs the data dir records for its own member `node_id` (what it advertised
/// when it last started): the last publish of its attributes in the WAL (newest segment
/// first; etcd publishes at every start), else its attributes in the newest `.snap`'s v2
/// store, else its `clientURLs` in the db's `members` bucket. Empty when none is found or
/// anything cannot be read (the caller falls back to the default endpoint).
pub fn recorded_client_urls(ins: &datadir::Inspection, node_id: u64) -> Vec<String> {
    let from_wal = || -> Option<Vec<String>> {
        let segs = wal::list_segments(&ins.layout.wal_dir).ok()?;
        for seg in segs.iter().rev() {
            let mut r = wal::RecordReader::new(vec![seg.clone()]);
            let mut found = None;
            while let Ok(Some(rec)) = r.next_record() {
                if rec.rtype != etcd_disk::proto::record_type::ENTRY {
                    continue;
                }
                let Ok(e) = wal::decode_entry(rec.data.unwrap_or(&[])) else {
                    continue;
                };
                if e.etype != entry_type::NORMAL {
                    continue;
                }
                if let Some(u) = published_client_urls(e.data.unwrap_or(&[]), node_id) {
                    found = Some(u);
                }
            }
            if found.as_ref().is_some_and(|u| !u.is_empty()) {
                return found;
            }
        }
        None
    };
    let from_snap = || -> Option<Vec<String>> {
        let newest = snap::list_snaps(&ins.layout.snap_dir)
            .ok()?
            .into_iter()
            .next()?;
        let s = snap::read_snap(&newest.path).ok()?;
        let store = etcd_disk::v2store::parse_store_of(&newest.path, s.data.as_deref()?).ok()?;
        let m = store.members().into_iter().find(|m| m.id == node_id)?;
        (!m.client_urls.is_empty()).then_some(m.client_urls)
    };
    let from_db = || -> Option<Vec<String>> {
        let db = BoltDb::open(&ins.layout.db).ok()?;
        let st = etcd_disk::snapshot::status(&db).ok()?;
        let m = st.members.into_iter().find(|m| m.id == ids::hex(node_id))?;
        (!m.client_urls.is_empty()).then_some(m.client_urls)
    };
    from_wal()
        .or_else(from_snap)
        .or_else(from_db)
        .unwrap_or_default()
}
