//! Full bbolt scan benchmark / tool: `bolt_scan FILE [status|cursor|check|verify|rewrite OUT]`.
//! `status` = check + CRC-32C hash in one pass (what `snapshot status` does), printed as
//! etcdctl's JSON; `cursor` = iterate every bucket and key/value with cursors and hash them.
use std::time::Instant;

use etcd_disk::bolt::{self, Edits};
use etcd_disk::snapshot;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: bolt_scan FILE [status|cursor|check|verify|rewrite OUT]")?;
    let mode = args.get(2).map(String::as_str).unwrap_or("status");
    let (db, layout) = snapshot::open_db(path)?;
    let t = Instant::now();
    match mode {
        "status" => {
            let s = snapshot::status(&db)?;
            println!("{}", s.etcdctl.to_json());
            eprintln!("{}", serde_json::to_string(&s)?);
        }
        "cursor" => {
            let mut crc = 0u32;
            let mut n = 0u64;
            let mut bytes = 0u64;
            let mut top = db.buckets();
            while let Some(b) = top.next()? {
                crc = crc32c::crc32c_append(crc, b.key);
                let bref = bolt::BucketRef::from_value(db.path(), b.value, 0)?;
                let mut c = db.cursor(&bref);
                while let Some(it) = c.next()? {
                    crc = crc32c::crc32c_append(crc, it.key);
                    crc = crc32c::crc32c_append(crc, it.value);
                    n += 1;
                    bytes += (it.key.len() + it.value.len()) as u64;
                }
            }
            println!("hash {crc} keys {n} kv_bytes {bytes}");
        }
        "check" => {
            let r = bolt::check(&db)?;
            println!(
                "ok={} problems={} pages={} reachable={} free={}",
                r.is_ok(),
                r.total_problems,
                r.pages,
                r.pages_reachable,
                r.pages_free
            );
            for p in r.problems.iter().take(20) {
                println!("  {p}");
            }
        }
        "verify" => {
            let r = snapshot::verify_trailer(path)?;
            println!("{:?}", r.map(|c| c.matches()));
        }
        "rewrite" => {
            let out = args.get(3).ok_or("rewrite needs OUT")?;
            let st = bolt::rewrite(&db, &Edits::new(), std::path::Path::new(out))?;
            println!("{st:?}");
        }
        m => return Err(format!("unknown mode {m}").into()),
    }
    let dt = t.elapsed().as_secs_f64();
    let mb = layout.image_len as f64 / 1e6;
    eprintln!("{mode}: {mb:.1} MB in {dt:.3} s = {:.0} MB/s", mb / dt);
    Ok(())
}
