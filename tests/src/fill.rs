//! A Kubernetes-like dataset: `/registry/pods/ns-<n % 50>/pod-<n>` with deterministic
//! pseudo-random values, written with concurrent puts.

use anyhow::{bail, Context, Result};

const NAMESPACES: usize = 50;

/// The key of object `n`.
pub fn k8s_key(n: usize) -> String {
    format!("/registry/pods/ns-{}/pod-{n}", n % NAMESPACES)
}

/// The value of object `n`: between `min_val` and `max_val` bytes (inclusive), the same for the
/// same arguments in every run. It starts like a Kubernetes protobuf object (`k8s\0`) and is
/// otherwise incompressible.
pub fn k8s_value(n: usize, min_val: usize, max_val: usize) -> Vec<u8> {
    let mut x = splitmix(n as u64 ^ 0x6574_6364_7265_7363);
    let span = max_val.saturating_sub(min_val) as u64 + 1;
    let len = min_val + (x % span) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(b"k8s\0");
    while v.len() < len {
        x = splitmix(x);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Put `keys` objects (keys `k8s_key(0..keys)`, values `k8s_value(n, min_val, max_val)`) with
/// `concurrency` puts in flight. Returns the bytes written (keys + values).
pub async fn fill_k8s_like(
    client: &mut etcd_client::Client,
    keys: usize,
    min_val: usize,
    max_val: usize,
    concurrency: usize,
) -> Result<u64> {
    if min_val > max_val {
        bail!("min_val {min_val} > max_val {max_val}");
    }
    let workers = concurrency.clamp(1, keys.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let mut c = client.clone();
        tasks.spawn(async move {
            let mut bytes = 0u64;
            let mut n = w;
            while n < keys {
                let k = k8s_key(n);
                let v = k8s_value(n, min_val, max_val);
                bytes += (k.len() + v.len()) as u64;
                c.put(k.as_str(), v, None)
                    .await
                    .with_context(|| format!("put {k}"))?;
                n += workers;
            }
            anyhow::Ok(bytes)
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r.context("fill task panicked")??;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_and_sized() {
        for n in 0..200 {
            let v = k8s_value(n, 100, 300);
            assert!((100..=300).contains(&v.len()), "{}", v.len());
            assert_eq!(v, k8s_value(n, 100, 300));
        }
        assert_eq!(k8s_value(7, 5, 5).len(), 5);
        assert_eq!(k8s_key(51), "/registry/pods/ns-1/pod-51");
    }
}
