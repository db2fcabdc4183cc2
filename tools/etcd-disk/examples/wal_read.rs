//! WAL read benchmark / tool: `wal_read WAL_DIR [scan|entries]`.
//! `scan` = every record of every segment with the CRC-32C chain verified (what etcd's
//! `ValidSnapshotEntries` reads); `entries` = `ReadAll` from the first segment plus every entry's
//! payload re-read and classified. Prints what it read on stdout, the time on stderr.
use std::time::Instant;

use etcd_disk::entry;
use etcd_disk::wal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1)
            .ok_or("usage: wal_read WAL_DIR [scan|entries]")?,
    );
    let mode = args.get(2).map(String::as_str).unwrap_or("scan");
    let t = Instant::now();
    let segs = wal::list_segments(&dir)?;
    wal::check_contiguous(&dir, &segs)?;
    let bytes: u64 = segs
        .iter()
        .map(|s| std::fs::metadata(&s.path).map_or(0, |m| m.len()))
        .sum();
    match mode {
        "scan" => {
            let s = wal::scan(&dir)?;
            println!(
                "segments {} records {} entries {} last_crc {:08x} tail {:?}",
                s.segments.len(),
                s.records,
                s.entries,
                s.last_crc,
                s.tail
            );
        }
        "entries" => {
            let first = segs.first().map_or(0, |s| s.index);
            let c = wal::read_at(&dir, first, 0)?;
            let mut er = c.entry_reader();
            let mut buf = Vec::new();
            let mut unknown = 0u64;
            for loc in &c.entries {
                let has = er.read_data(loc, &mut buf)?;
                if let entry::EntryKind::Unknown(_) =
                    entry::classify(loc.etype, has.then_some(buf.as_slice()))
                {
                    unknown += 1;
                }
            }
            println!("entries {} unknown {unknown}", c.entries.len());
        }
        m => return Err(format!("unknown mode {m}").into()),
    }
    let dt = t.elapsed().as_secs_f64();
    eprintln!(
        "{mode}: {:.1} MB of segment files (incl. the preallocated tail) in {dt:.3} s",
        bytes as f64 / 1e6
    );
    Ok(())
}
