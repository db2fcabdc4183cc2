#![allow(clippy::unwrap_used)]
//! Property tests: WAL writer → reader and snap writer → reader round trips.
//!
//! WAL: random sequences of `Save` (entries with random payloads, nil and empty data, raft
//! suffix truncation above the last snapshot, HardStates) and `SaveSnapshot`, written with a
//! small segment size so that segments are cut often. The reader must see exactly the model:
//! every record with the CRC chain carried from segment to segment, the last HardState, every
//! snapshot record, and `ReadAll` at {0,0} and at every snapshot record assembling the entries
//! the model holds above that index, byte for byte.
//! snap: random `raftpb.Snapshot`s written and read back; a flipped byte in the payload is an
//! error naming the file.

use etcd_disk::proto::{
    encode, record_type as rt, ConfState, Entry, HardState, Metadata, RaftSnapshot,
    SnapshotMetadata, WalSnapshot,
};
use etcd_disk::wal::{self, RecordReader, WalTail, WalWriter, WriterOptions};
use etcd_disk::{snap, DiskError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// `n` entries starting `back` indexes before the next one (clamped above the last
    /// snapshot), payload sizes from `sizes`; a HardState when `hs`.
    Save {
        n: usize,
        back: u8,
        sizes: Vec<u16>,
        nil_mask: u8,
        etype: u8,
        hs: bool,
    },
    /// A snapshot record at `at` percent of the committed range.
    Snap { at: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..5, 0u8..4, prop::collection::vec(0u16..700, 5), any::<u8>(), 0u8..3, any::<bool>())
            .prop_map(|(n, back, sizes, nil_mask, etype, hs)| Op::Save { n, back, sizes, nil_mask, etype, hs }),
        1 => any::<u8>().prop_map(|at| Op::Snap { at }),
    ]
}

fn payload(index: u64, term: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (index as usize * 31 + term as usize * 7 + i) as u8)
        .collect()
}

/// What the reader must return.
#[derive(Default)]
struct Model {
    /// Entries in log order as the WAL holds them after truncations.
    log: Vec<Entry>,
    /// Every entry ever saved, in write order.
    written: Vec<Entry>,
    hs: HardState,
    snaps: Vec<WalSnapshot>,
    term: u64,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.log.last().map_or(0, |e| e.index)
    }
    /// Nothing at or below the last snapshot or the commit index is ever truncated.
    fn floor(&self) -> u64 {
        self.snaps
            .iter()
            .map(|s| s.index)
            .max()
            .unwrap_or(0)
            .max(self.hs.commit)
    }
    /// `ReadAll` at snapshot index `si`: entries above it, placed by index.
    fn above(&self, si: u64) -> Vec<Entry> {
        let mut v: Vec<Entry> = Vec::new();
        for e in &self.written {
            if e.index > si {
                v.truncate((e.index - si - 1) as usize);
                v.push(e.clone());
            }
        }
        v
    }
}

fn run_wal(ops: &[Op], segment_size: u64) -> Result<(), TestCaseError> {
    let t = tempfile::tempdir().unwrap();
    let md = Metadata {
        node_id: 0x1234,
        cluster_id: 0x5678,
    };
    let opts = WriterOptions {
        segment_size,
        fsync: false,
    };
    let mut w = WalWriter::create_with(&t.path().join("wal"), &encode(&md), opts).unwrap();
    let mut m = Model {
        term: 1,
        snaps: vec![WalSnapshot::default()],
        ..Default::default()
    };
    for op in ops {
        match op {
            Op::Save {
                n,
                back,
                sizes,
                nil_mask,
                etype,
                hs,
            } => {
                let next = m.last_index() + 1;
                // raft never truncates at or below a snapshot (committed) index
                let start = next.saturating_sub(u64::from(*back)).max(m.floor() + 1);
                if start < next {
                    m.term += 1; // a new leader overwrites the suffix
                }
                let es: Vec<Entry> = (0..*n as u64)
                    .map(|k| {
                        let index = start + k;
                        let len = sizes[k as usize % sizes.len()] as usize;
                        let data = if nil_mask & (1 << k) != 0 {
                            None
                        } else {
                            Some(payload(index, m.term, len))
                        };
                        Entry {
                            r#type: i32::from(*etype % 2),
                            term: m.term,
                            index,
                            data,
                        }
                    })
                    .collect();
                for e in &es {
                    m.log.truncate((e.index - 1) as usize);
                    m.log.push(e.clone());
                    m.written.push(e.clone());
                }
                let hs = if *hs {
                    // commit moves toward the last index, never back
                    let last = m.last_index();
                    HardState {
                        term: m.term,
                        vote: 1,
                        commit: last - (last - m.hs.commit.min(last)) / 2,
                    }
                } else {
                    HardState::default()
                };
                if hs != HardState::default() {
                    m.hs = hs;
                }
                w.save(&hs, &es).unwrap();
            }
            Op::Snap { at } => {
                let lo = m.snaps.iter().map(|s| s.index).max().unwrap_or(0);
                let hi = m.hs.commit;
                if hi <= lo {
                    continue;
                }
                let idx = lo + 1 + (hi - lo - 1) * u64::from(*at) / 255;
                let term = m.log[(idx - 1) as usize].term;
                let s = WalSnapshot {
                    index: idx,
                    term,
                    conf_state: Some(ConfState {
                        voters: vec![0x1234],
                        ..Default::default()
                    }),
                };
                w.save_snapshot(&s).unwrap();
                m.snaps.push(s);
            }
        }
    }
    let dir = w.finish().unwrap();

    // Every record, CRC chain carried into each segment.
    let scan = wal::scan(&dir).unwrap();
    prop_assert_eq!(&scan.tail, &WalTail::Clean);
    prop_assert_eq!(scan.hard_state, m.hs);
    prop_assert_eq!(&scan.snapshots, &m.snaps);
    prop_assert_eq!(scan.entries, m.written.len() as u64);
    prop_assert_eq!(scan.metadata.clone(), Some(md.clone()));
    let mut r = RecordReader::new(scan.segments.clone());
    let mut seg = usize::MAX;
    let mut n = 0u64;
    loop {
        let before = r.crc();
        let Some(rec) = r.next_record().unwrap() else {
            break;
        };
        n += 1;
        if rec.segment != seg {
            prop_assert_eq!(rec.rtype, rt::CRC);
            prop_assert_eq!(rec.crc, before);
            seg = rec.segment;
        }
    }
    prop_assert_eq!(n, scan.records);
    prop_assert_eq!(r.crc(), scan.last_crc);
    let total: u64 = scan
        .segments
        .iter()
        .map(|s| std::fs::metadata(&s.path).unwrap().len())
        .sum();
    prop_assert!(scan.segments.len() as u64 >= total / (segment_size + 8 * 1024));

    // ReadAll at {0,0} and at every snapshot record.
    for s in &m.snaps {
        let c = wal::read_at(&dir, s.index, s.term).unwrap();
        prop_assert!(c.snapshot_found, "snapshot {:?}", s);
        prop_assert_eq!(c.hard_state, m.hs);
        prop_assert_eq!(c.last_crc, scan.last_crc);
        prop_assert_eq!(c.metadata.clone(), Some(md.clone()));
        let want = m.above(s.index);
        prop_assert_eq!(c.entries.len(), want.len());
        let mut er = c.entry_reader();
        for (loc, e) in c.entries.iter().zip(&want) {
            prop_assert_eq!(&er.read(loc).unwrap(), e);
        }
    }
    prop_assert_eq!(m.above(0).len() as u64, m.last_index());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn wal_round_trip(ops in prop::collection::vec(op(), 1..80), seg8 in 32u64..512) {
        // Segment sizes are multiples of 8, as the writer requires (frames are 8-byte aligned).
        run_wal(&ops, seg8 * 8)?;
    }

    #[test]
    fn snap_round_trip(
        data in prop::collection::vec(any::<u8>(), 1..3000),
        index in 1u64..u64::MAX,
        term in 1u64..1000,
        voters in prop::collection::vec(any::<u64>(), 0..5),
        learners in prop::collection::vec(any::<u64>(), 0..3),
        flip in any::<prop::sample::Index>(),
        extra in prop::collection::vec((1u64..100, 1u64..100), 0..4),
    ) {
        let t = tempfile::tempdir().unwrap();
        let s = RaftSnapshot {
            data: Some(data.clone()),
            metadata: SnapshotMetadata {
                conf_state: ConfState { voters, learners, ..Default::default() },
                index,
                term,
            },
        };
        let p = snap::write_snap(t.path(), &s).unwrap();
        prop_assert_eq!(p.file_name().unwrap().to_str().unwrap(), snap::snap_name(term, index));
        prop_assert_eq!(&snap::read_snap(&p).unwrap(), &s);
        let bytes = std::fs::read(&p).unwrap();
        prop_assert_eq!(&bytes, &snap::encode_snap(&s));
        prop_assert_eq!(&snap::decode_snap(&p, &bytes).unwrap(), &s);
        // Older snapshots beside it: the newest name is loaded first.
        // (The same name drawn twice is written once: write_snap refuses to overwrite.)
        let extra: std::collections::BTreeSet<(u64, u64)> = extra.into_iter().collect();
        for (tm, ix) in &extra {
            let mut o = s.clone();
            o.metadata.term = *tm;
            o.metadata.index = *ix;
            if snap::snap_name(*tm, *ix) != snap::snap_name(term, index) {
                snap::write_snap(t.path(), &o).unwrap();
            }
        }
        let (info, got) = snap::load_newest(t.path()).unwrap().unwrap();
        let newest = snap::list_snaps(t.path()).unwrap()[0].clone();
        prop_assert_eq!(&info, &newest);
        prop_assert_eq!(got.metadata.index, newest.index);
        // A flipped byte inside the CRC-covered payload (snappb.data, the file's last field)
        // is caught.
        let mut bad = bytes.clone();
        let i = bytes.len() - 1 - flip.index(etcd_disk::proto::encode(&s).len());
        bad[i] ^= 0x5a;
        match snap::decode_snap(&p, &bad) {
            Err(DiskError::Corrupt { path, .. }) => prop_assert_eq!(path, p),
            other => prop_assert!(false, "flip at {} accepted: {:?}", i, other.map(|_| ())),
        }
    }
}

/// A segment size that is not a multiple of 8 would leave a preallocated tail ending in a
/// partial frame length, read back as a torn write (found by the round trip above): refused.
#[test]
fn segment_size_must_be_a_multiple_of_8() {
    let d = tempfile::tempdir().unwrap();
    let opts = WriterOptions {
        segment_size: 3622,
        ..WriterOptions::default()
    };
    let r = WalWriter::create_with(&d.path().join("wal"), &[], opts);
    assert!(matches!(r, Err(DiskError::Invalid(_))));
}
