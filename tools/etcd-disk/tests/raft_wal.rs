#![allow(clippy::unwrap_used)]
//! WAL reader/writer behaviour: cuts and the CRC chain across segments, torn tails,
//! corruption errors naming file and offset, ignored files.

use etcd_disk::proto::{Entry, HardState, Metadata, WalSnapshot};
use etcd_disk::wal::{self, WalTail, WalWriter, WriterOptions};
use etcd_disk::DiskError;
use std::path::{Path, PathBuf};

fn ent(i: u64, term: u64, len: usize) -> Entry {
    Entry {
        r#type: 0,
        term,
        index: i,
        data: Some(vec![(i % 251) as u8 + 1; len]),
    }
}

fn small() -> WriterOptions {
    WriterOptions {
        segment_size: 4096,
        fsync: false,
    }
}

/// 60 entries of 300 bytes, one Save per entry: several cuts at 4096 bytes.
fn write_multi(dir: &Path) -> PathBuf {
    let md = Metadata {
        node_id: 1,
        cluster_id: 2,
    };
    let mut w =
        WalWriter::create_with(&dir.join("wal"), &etcd_disk::proto::encode(&md), small()).unwrap();
    for i in 1..=60 {
        w.save(
            &HardState {
                term: 1,
                vote: 1,
                commit: i,
            },
            &[ent(i, 1, 300)],
        )
        .unwrap();
        if i == 30 {
            w.save_snapshot(&WalSnapshot {
                index: 30,
                term: 1,
                conf_state: None,
            })
            .unwrap();
        }
    }
    w.finish().unwrap()
}

#[test]
fn cuts_and_crc_chain() {
    let t = tempfile::tempdir().unwrap();
    let d = write_multi(t.path());
    let segs = wal::list_segments(&d).unwrap();
    assert!(segs.len() >= 4, "{segs:?}");
    // Closed segments are truncated at their end; the tail keeps its preallocated size.
    for s in &segs[..segs.len() - 1] {
        let len = std::fs::metadata(&s.path).unwrap().len();
        assert!((4096..4096 + 400).contains(&len), "{len}");
    }
    assert_eq!(
        std::fs::metadata(&segs.last().unwrap().path).unwrap().len(),
        4096
    );
    // Segment names: the first entry index expected in the file.
    for w in segs.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    let scan = wal::scan(&d).unwrap();
    assert_eq!(scan.entries, 60);
    assert_eq!(scan.hard_state.commit, 60);
    assert_eq!(scan.tail, WalTail::Clean);
    assert_eq!(scan.valid_snapshots().len(), 2);
    let c = wal::read_at(&d, 0, 0).unwrap();
    assert_eq!(c.entries.len(), 60);
    let mut r = c.entry_reader();
    for (i, loc) in c.entries.iter().enumerate() {
        assert_eq!(r.read(loc).unwrap(), ent(i as u64 + 1, 1, 300));
    }
    // Reading at snapshot 30 starts at a later segment, seeded by its crc record.
    let c = wal::read_at(&d, 30, 1).unwrap();
    assert!(c.snapshot_found);
    assert_eq!(c.entries.first().unwrap().index, 31);
    assert_eq!(c.entries.len(), 30);
    assert!(c.segments.len() < segs.len());
    // Wrong term for the snapshot index.
    assert!(matches!(
        wal::read_at(&d, 30, 2),
        Err(DiskError::Corrupt { .. })
    ));
    // No record for index 29.
    let c = wal::read_at(&d, 29, 1).unwrap();
    assert!(!c.snapshot_found && c.require_snapshot().is_err());
}

#[test]
fn truncation_overwrites_suffix() {
    let t = tempfile::tempdir().unwrap();
    let md = Metadata {
        node_id: 1,
        cluster_id: 2,
    };
    let mut w = WalWriter::create(&t.path().join("wal"), &md).unwrap();
    let e: Vec<Entry> = (1..=5).map(|i| ent(i, 1, 10)).collect();
    w.save(
        &HardState {
            term: 1,
            vote: 1,
            commit: 2,
        },
        &e,
    )
    .unwrap();
    // a new leader at term 2 overwrites from index 3
    w.save(
        &HardState {
            term: 2,
            vote: 2,
            commit: 3,
        },
        &[ent(3, 2, 11)],
    )
    .unwrap();
    let d = w.finish().unwrap();
    let c = wal::read_at(&d, 0, 0).unwrap();
    let idx: Vec<(u64, u64)> = c.entries.iter().map(|l| (l.index, l.term)).collect();
    assert_eq!(idx, vec![(1, 1), (2, 1), (3, 2)]);
    assert_eq!(
        c.hard_state,
        HardState {
            term: 2,
            vote: 2,
            commit: 3
        }
    );
}

fn first_segment(d: &Path) -> PathBuf {
    wal::list_segments(d).unwrap()[0].path.clone()
}

fn write_single(dir: &Path, n: u64) -> PathBuf {
    let md = Metadata {
        node_id: 1,
        cluster_id: 2,
    };
    let mut w = WalWriter::create_with(
        &dir.join("wal"),
        &etcd_disk::proto::encode(&md),
        WriterOptions {
            segment_size: 1 << 20,
            fsync: false,
        },
    )
    .unwrap();
    for i in 1..=n {
        w.save(
            &HardState {
                term: 1,
                vote: 1,
                commit: i,
            },
            &[ent(i, 1, 1000)],
        )
        .unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn corrupt_byte_is_an_error_naming_file_and_offset() {
    let t = tempfile::tempdir().unwrap();
    let d = write_single(t.path(), 10);
    let p = first_segment(&d);
    let mut b = std::fs::read(&p).unwrap();
    b[3000] ^= 0x55;
    std::fs::write(&p, &b).unwrap();
    match wal::scan(&d) {
        Err(DiskError::Corrupt { path, offset, msg }) => {
            assert_eq!(path, p);
            assert!(offset <= 3000 && offset > 1000, "{offset}");
            assert!(msg.contains("crc mismatch"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn zeroed_sector_in_last_record_is_torn() {
    let t = tempfile::tempdir().unwrap();
    let d = write_single(t.path(), 10);
    let p = first_segment(&d);
    let full = wal::scan(&d).unwrap();
    assert_eq!(full.entries, 10);
    // Find the offset of the last entry record and zero a sector inside it.
    let mut r = wal::RecordReader::new(wal::list_segments(&d).unwrap());
    let mut last_entry = 0;
    while let Some(rec) = r.next_record().unwrap() {
        if rec.rtype == 2 {
            last_entry = rec.offset;
        }
    }
    let mut b = std::fs::read(&p).unwrap();
    let start = ((last_entry + 8) / 512 + 1) * 512;
    for x in &mut b[start as usize..start as usize + 512] {
        *x = 0;
    }
    std::fs::write(&p, &b).unwrap();
    let s = wal::scan(&d).unwrap();
    assert_eq!(s.entries, 9);
    assert!(matches!(s.tail, WalTail::Torn { offset, .. } if offset == last_entry));
}

#[test]
fn cut_short_tail_is_torn_and_small_files_never_panic() {
    let t = tempfile::tempdir().unwrap();
    let d = write_single(t.path(), 3);
    let p = first_segment(&d);
    let b = std::fs::read(&p).unwrap();
    let end = {
        let mut r = wal::RecordReader::new(wal::list_segments(&d).unwrap());
        while r.next_record().unwrap().is_some() {}
        r.last_valid_offset() as usize
    };
    for cut in [end - 1, end - 100, end - 1004, 5, 1, 0] {
        std::fs::write(&p, &b[..cut]).unwrap();
        let s = wal::scan(&d);
        match s {
            Ok(s) => assert!(s.records < 9),
            Err(e) => assert!(e.is_bad_input(), "{e}"),
        }
    }
}

#[test]
fn huge_length_is_rejected_without_allocating() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("wal");
    std::fs::create_dir(&d).unwrap();
    let mut b = vec![0u8; 64];
    b[..8].copy_from_slice(&0x00ff_ffff_ffff_fff0u64.to_le_bytes());
    b[8] = 1;
    std::fs::write(d.join(wal::segment_name(0, 0)), &b).unwrap();
    match wal::scan(&d) {
        Err(DiskError::Corrupt { offset: 0, msg, .. }) => assert!(msg.contains("max entry size")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ignores_tmp_and_broken_files_and_checks_sequence() {
    let t = tempfile::tempdir().unwrap();
    let d = write_multi(t.path());
    std::fs::write(d.join("0.tmp"), vec![0u8; 100]).unwrap();
    std::fs::write(
        d.join("0000000000000000-0000000000000000.wal.broken"),
        b"junk",
    )
    .unwrap();
    std::fs::write(d.join("notes.txt"), b"junk").unwrap();
    assert_eq!(wal::scan(&d).unwrap().entries, 60);
    let segs = wal::list_segments(&d).unwrap();
    std::fs::remove_file(&segs[1].path).unwrap();
    assert!(matches!(wal::scan(&d), Err(DiskError::Layout { .. })));
}
