//! Seed inputs for the fuzz targets (`cargo xtask fuzz` runs this first):
//! `fuzz_seeds OUTDIR` writes `OUTDIR/{wal,snap,bolt}/seed-*`, small valid files made by this
//! library's writers, in the input formats of `fuzz/src/lib.rs`.
use etcd_disk::bolt::{self, Edits};
use etcd_disk::membership::{member_id, Member};
use etcd_disk::proto::{
    encode, ConfChange, Entry, HardState, InternalRaftRequest, Metadata, PutRequest, Request,
    RequestHeader, WalSnapshot,
};
use etcd_disk::wal::{self, WalWriter, WriterOptions};
use etcd_disk::{snap, v2store};
use std::error::Error;
use std::path::Path;

type R<T> = Result<T, Box<dyn Error>>;

fn entries(from: u64, n: u64) -> Vec<Entry> {
    (from..from + n)
        .map(|i| {
            let data = match i % 5 {
                0 => None,
                1 => Some(encode(&InternalRaftRequest {
                    header: Some(RequestHeader {
                        id: i,
                        ..Default::default()
                    }),
                    put: Some(PutRequest {
                        key: format!("k{i}").into_bytes(),
                        value: vec![b'v'; (i as usize * 7) % 300],
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                2 => Some(encode(&Request {
                    id: i,
                    method: b"PUT".to_vec(),
                    path: format!("/1/dir/k{i}").into_bytes(),
                    val: b"v2".to_vec(),
                    ..Default::default()
                })),
                3 => Some(encode(&InternalRaftRequest {
                    header: Some(RequestHeader {
                        id: i,
                        ..Default::default()
                    }),
                    txn: Some(vec![0x12, 0x00]),
                    ..Default::default()
                })),
                _ => Some(Vec::new()),
            };
            Entry {
                r#type: 0,
                term: 1 + i / 20,
                index: i,
                data,
            }
        })
        .chain(std::iter::once(Entry {
            r#type: 1,
            term: 1,
            index: from + n,
            data: Some(encode(&ConfChange {
                id: 0,
                r#type: 0,
                node_id: 0x1234,
                context: Some(br#"{"id":4660,"peerURLs":["http://127.0.0.1:2380"]}"#.to_vec()),
            })),
        }))
        .collect()
}

/// A WAL written with `segment_size` and `saves` Saves; returned in the wal target's format.
fn wal_seed(tmp: &Path, name: &str, segment_size: u64, saves: u64) -> R<Vec<u8>> {
    let dir = tmp.join(name);
    let md = Metadata {
        node_id: 1,
        cluster_id: 2,
    };
    let mut w = WalWriter::create_with(
        &dir,
        &encode(&md),
        WriterOptions {
            segment_size,
            fsync: false,
        },
    )?;
    let mut next = 1;
    for s in 0..saves {
        let es = entries(next, 3);
        next += es.len() as u64;
        w.save(
            &HardState {
                term: 1 + s / 4,
                vote: 1,
                commit: next - 2,
            },
            &es,
        )?;
        if s == 2 {
            w.save_snapshot(&WalSnapshot {
                index: next - 3,
                term: 1,
                conf_state: None,
            })?;
        }
    }
    let dir = w.finish()?;
    let segs = wal::list_segments(&dir)?;
    let mut files = Vec::new();
    for s in &segs {
        let mut b = std::fs::read(&s.path)?;
        // Trailing zeros of the preallocated tail add nothing but length.
        while b.len() > 8 && b.ends_with(&[0u8; 8]) {
            b.truncate(b.len() - 8);
        }
        files.push((b, s.index));
    }
    files.truncate(3);
    let mut out = vec![(files.len() - 1) as u8];
    for (i, (b, _)) in files.iter().enumerate().take(files.len() - 1) {
        let next_index = files.get(i + 1).map_or(0, |f| f.1);
        out.extend_from_slice(&u16::try_from(b.len() / 8)?.to_le_bytes());
        out.extend_from_slice(&u16::try_from(next_index)?.to_le_bytes());
    }
    for (b, _) in &files {
        out.extend_from_slice(b);
    }
    Ok(out)
}

fn members() -> Vec<Member> {
    (0..3)
        .map(|i| {
            let peer = format!("http://127.0.0.{}:2380", i + 1);
            Member {
                id: member_id(std::slice::from_ref(&peer), "tok"),
                name: format!("m{i}"),
                peer_urls: vec![peer],
                client_urls: vec![format!("http://127.0.0.{}:2379", i + 1)],
                is_learner: false,
            }
        })
        .collect()
}

fn bolt_seed(path: &Path, page_size: u32, keys: usize) -> R<()> {
    let mut e = Edits::new();
    e.create_bucket(b"key")?;
    for i in 0..keys {
        let mut rev = [0u8; 17];
        rev[..8].copy_from_slice(&(i as u64 + 2).to_be_bytes());
        rev[8] = b'_';
        let kv = etcd_disk::proto::KeyValue {
            key: format!("k{i:04}").into_bytes(),
            create_revision: i as i64 + 2,
            mod_revision: i as i64 + 2,
            version: 1,
            value: vec![b'x'; i % 700],
            lease: 0,
        };
        e.put(b"key", &rev, &encode(&kv))?;
    }
    e.put(b"meta", b"consistent_index", &9u64.to_be_bytes())?;
    e.put(
        b"members",
        b"1234",
        br#"{"id":4660,"peerURLs":["http://a:2380"]}"#,
    )?;
    e.create_bucket(b"lease")?;
    bolt::create(page_size, &e, path)?;
    Ok(())
}

fn main() -> R<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz_seeds OUTDIR")?);
    let tmp = out.join(".work");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    for t in ["wal", "snap", "bolt"] {
        std::fs::create_dir_all(out.join(t))?;
    }
    // WAL: one segment; several small segments (cuts, crc chain).
    std::fs::write(out.join("wal/seed-one"), wal_seed(&tmp, "w1", 1 << 20, 4)?)?;
    std::fs::write(out.join("wal/seed-cut"), wal_seed(&tmp, "w2", 1024, 8)?)?;
    // snap: the restore .snap of 3 members; a store with user keys; the bare JSON.
    let ms = members();
    let s = v2store::restore_snapshot(&ms);
    std::fs::write(out.join("snap/seed-restore"), snap::encode_snap(&s))?;
    let json = r#"{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"0":{"Path":"/0","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"version":{"Path":"/0/version","CreatedIndex":5,"ModifiedIndex":5,"ExpireTime":"0001-01-01T00:00:00Z","Value":"3.5.0","Children":null}}},"1":{"Path":"/1","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"a":{"Path":"/1/a","CreatedIndex":7,"ModifiedIndex":7,"ExpireTime":"2030-01-01T00:00:00Z","Value":"x\"y","Children":null}}}}},"WatcherHub":{"EventHistory":{"Queue":{"Capacity":1000,"Size":0,"Front":0,"Back":0,"Events":[]},"StartIndex":0,"LastIndex":0}},"CurrentIndex":8,"CurrentVersion":2}"#;
    let mut s2 = s.clone();
    s2.data = Some(json.as_bytes().to_vec());
    std::fs::write(out.join("snap/seed-user"), snap::encode_snap(&s2))?;
    std::fs::write(out.join("snap/seed-json"), json)?;
    // bbolt (the writer uses 4096-byte pages): a few keys; a two-level tree.
    bolt_seed(&out.join("bolt/seed-small"), 4096, 6)?;
    bolt_seed(&out.join("bolt/seed-4k"), 4096, 120)?;
    // and as a snapshot file with its sha256 trailer
    {
        use sha2::Digest;
        let mut b = std::fs::read(out.join("bolt/seed-small"))?;
        let h = sha2::Sha256::digest(&b);
        b.extend_from_slice(&h);
        std::fs::write(out.join("bolt/seed-small-trailer"), b)?;
    }
    std::fs::remove_dir_all(&tmp)?;
    eprintln!("fuzz_seeds: wrote seeds into {}", out.display());
    Ok(())
}
