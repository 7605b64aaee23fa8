//! HTTPS: the server's rustls configuration (ring provider; HTTP/2 and HTTP/1.1 by ALPN)
//! and `grantry cert --self-signed`, which writes a development CA and a certificate it
//! signed for a host name.

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The rustls server configuration for a PEM certificate chain and private key.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("the TLS certificate {} is not valid PEM", cert.display()))?;
    if certs.is_empty() {
        bail!("the TLS certificate file {} holds no certificate (expected PEM 'BEGIN CERTIFICATE')", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key (PEM, PKCS#8, PKCS#1 or SEC1) from {}", key.display()))?;
    // ring is the one crypto provider of the build (no aws-lc-rs); rustls deprecates it
    // only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and private key do not form a usable pair")?;
    // Without ALPN, clients stay on HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Files written by [`self_signed`].
pub struct SelfSigned {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes `ca.pem` (a development CA to trust), `cert.pem` (a certificate for `hostnames`,
/// signed by that CA, followed by the CA) and `key.pem` (its private key, mode 0600) into
/// `out`. The CA's own key is not kept, so it cannot sign anything else.
pub fn self_signed(hostnames: &[String], out: &Path) -> anyhow::Result<SelfSigned> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    if hostnames.is_empty() {
        bail!("give at least one --hostname");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let ca_key = KeyPair::generate().context("generate the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "Grantry development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).context("sign the CA certificate")?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().context("generate the server key")?;
    let mut leaf = CertificateParams::new(hostnames.to_vec()).context("a host name is not valid")?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, hostnames[0].clone());
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf.signed_by(&key, &issuer).context("sign the server certificate")?;

    let paths = SelfSigned { ca: out.join("ca.pem"), cert: out.join("cert.pem"), key: out.join("key.pem") };
    std::fs::write(&paths.ca, ca_cert.pem()).with_context(|| format!("cannot write {}", paths.ca.display()))?;
    std::fs::write(&paths.cert, format!("{}{}", leaf_cert.pem(), ca_cert.pem()))
        .with_context(|| format!("cannot write {}", paths.cert.display()))?;
    write_private(&paths.key, &key.serialize_pem())?;
    Ok(paths)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
