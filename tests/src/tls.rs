//! Certificates for TLS clusters, generated with rcgen: a CA, one server certificate per member
//! (SAN = its IP), a client certificate, and an unrelated second CA for negative tests.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The files of a TLS cluster (PEM). Server certificates are per member: [`TlsFiles::server`].
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the servers' and the client's certificates.
    pub ca: PathBuf,
    /// A client certificate (CN `etcd-rescue-client`, EKU clientAuth) signed by `ca`.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing the cluster uses: verifying a member with it must fail.
    pub wrong_ca: PathBuf,
    /// `(cert, key)` of each member, index = member index.
    pub servers: Vec<(PathBuf, PathBuf)>,
    dir: PathBuf,
}

impl TlsFiles {
    /// `(cert, key)` of member `i`.
    pub fn server(&self, i: usize) -> (&Path, &Path) {
        let (c, k) = &self.servers[i];
        (c, k)
    }

    /// The directory holding all the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn generate(dir: &Path, ips: &[String]) -> Result<TlsFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (ca_pem, ca_key, issuer) = new_ca(CA_CN)?;
        let (wrong_pem, _, _) = new_ca("etcd-rescue unrelated CA")?;
        let ca = write(dir, "ca.pem", &ca_pem)?;
        // Kept so members added later can be given certificates.
        write(dir, "ca-key.pem", &ca_key)?;
        let wrong_ca = write(dir, "wrong-ca.pem", &wrong_pem)?;

        let mut servers = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let (cert, key) = leaf(
                &issuer,
                &format!("m{i}"),
                vec![ip.clone(), "localhost".into(), "127.0.0.1".into()],
                &[
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
            )?;
            servers.push((
                write(dir, &format!("m{i}.pem"), &cert)?,
                write(dir, &format!("m{i}-key.pem"), &key)?,
            ));
        }
        let (cert, key) = leaf(
            &issuer,
            "etcd-rescue-client",
            vec![],
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )?;
        Ok(TlsFiles {
            ca,
            client_cert: write(dir, "client.pem", &cert)?,
            client_key: write(dir, "client-key.pem", &key)?,
            wrong_ca,
            servers,
            dir: dir.to_path_buf(),
        })
    }

    /// Add a server certificate for a member added later (index `i`, address `ip`).
    pub(crate) fn add_server(&mut self, i: usize, ip: &str) -> Result<()> {
        // Re-load the CA to sign with it.
        let ca_key = std::fs::read_to_string(self.dir.join("ca-key.pem"))?;
        let issuer = Issuer::new(ca_params(CA_CN)?, KeyPair::from_pem(&ca_key)?);
        let (cert, key) = leaf(
            &issuer,
            &format!("m{i}"),
            vec![ip.to_string(), "localhost".into(), "127.0.0.1".into()],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        let pair = (
            write(&self.dir, &format!("m{i}.pem"), &cert)?,
            write(&self.dir, &format!("m{i}-key.pem"), &key)?,
        );
        while self.servers.len() <= i {
            self.servers.push(pair.clone());
        }
        self.servers[i] = pair;
        Ok(())
    }
}

const CA_CN: &str = "etcd-rescue test CA";

/// The CA's parameters: the same for the same `cn`, so an issuer can be rebuilt from its key.
fn ca_params(cn: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    Ok(params)
}

fn new_ca(cn: &str) -> Result<(String, String, Issuer<'static, KeyPair>)> {
    let params = ca_params(cn)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok((cert.pem(), key_pem, Issuer::new(params, key)))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: Vec<String>,
    ekus: &[ExtendedKeyUsagePurpose],
) -> Result<(String, String)> {
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = ekus.to_vec();
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, pem).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
    Ok(p)
}
