//! TLS for the API: a private CA, a server and a client certificate (`hostel cert generate`),
//! and an HTTPS server that only talks to clients presenting a certificate from that CA (mutual
//! TLS). A client certificate is an admin credential; the audit names it by its fingerprint.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS set-up that failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Making or writing certificates failed.
    #[error("certificates in {dir}: {message}")]
    Generate {
        /// The folder.
        dir: String,
        /// What failed.
        message: String,
    },
    /// Reading the certificates for the server failed.
    #[error("tls material {path}: {message}")]
    Load {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// The verified client certificate of a connection, by SHA-256 fingerprint (hex).
#[derive(Debug, Clone)]
pub struct ClientCert(pub String);

/// The files `generate` writes, under `<root>/etc/tls/`.
#[derive(Debug, Clone)]
pub struct Files {
    /// The CA certificate (give it to clients, so they trust the server).
    pub ca: PathBuf,
    /// The server certificate and key.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// An admin client certificate.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl Files {
    /// The file names under `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Files {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

fn write(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Makes a CA, a server certificate for `hosts` (names or IPs), and an admin client certificate,
/// in `dir` (keys 0600). Replaces what was there.
pub fn generate(dir: &Path, hosts: &[String]) -> Result<Files, TlsError> {
    let fail = |message: String| TlsError::Generate {
        dir: dir.display().to_string(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let files = Files::in_dir(dir);
    let ca_key = KeyPair::generate().map_err(|e| fail(e.to_string()))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(e.to_string()))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hostel CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| fail(e.to_string()))?;
    let issuer = Issuer::new(ca_params, ca_key);

    // A leaf certificate signed by the CA: a fresh key, a name, what it may be used for.
    let leaf = |cn: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().map_err(|e| fail(e.to_string()))?;
        let mut params = CertificateParams::new(sans).map_err(|e| fail(e.to_string()))?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| fail(e.to_string()))?;
        Ok::<_, TlsError>((cert, key))
    };
    let (server_cert, server_key) = leaf(
        "hostel server",
        hosts.to_vec(),
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_cert, client_key) = leaf(
        "hostel admin",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;

    let w = |p: &Path, t: &str, mode| {
        write(p, t, mode).map_err(|e| fail(format!("{}: {e}", p.display())))
    };
    w(&files.ca, &ca_cert.pem(), 0o644)?;
    w(&files.server_cert, &server_cert.pem(), 0o644)?;
    w(&files.server_key, &server_key.serialize_pem(), 0o600)?;
    w(&files.client_cert, &client_cert.pem(), 0o644)?;
    w(&files.client_key, &client_key.serialize_pem(), 0o600)?;
    Ok(files)
}

/// The server side of mutual TLS from the files in `dir`.
pub fn server_config(dir: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let files = Files::in_dir(dir);
    let load = |p: &Path, e: String| TlsError::Load {
        path: p.display().to_string(),
        message: e,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(&files.ca).map_err(|e| load(&files.ca, e.to_string()))?
    {
        let cert = cert.map_err(|e| load(&files.ca, e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| load(&files.ca, e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .map_err(|e| load(&files.ca, e.to_string()))?;
    let certs = CertificateDer::pem_file_iter(&files.server_cert)
        .map_err(|e| load(&files.server_cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load(&files.server_cert, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&files.server_key)
        .map_err(|e| load(&files.server_key, e.to_string()))?;
    let config = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| load(&files.server_cert, e.to_string()))?;
    Ok(Arc::new(config))
}

/// The server side for the tenants' web gateway: the same server certificate, no client
/// certificate asked (browsers sign in with a password).
pub fn web_server_config(dir: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let files = Files::in_dir(dir);
    let load = |p: &Path, e: String| TlsError::Load {
        path: p.display().to_string(),
        message: e,
    };
    let certs = CertificateDer::pem_file_iter(&files.server_cert)
        .map_err(|e| load(&files.server_cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load(&files.server_cert, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&files.server_key)
        .map_err(|e| load(&files.server_key, e.to_string()))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| load(&files.server_cert, e.to_string()))?;
    Ok(Arc::new(config))
}

/// The client side: trust `ca` (else the system's roots) and, when given, present a client
/// certificate and key (mutual TLS).
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let load = |p: &Path, e: String| TlsError::Load {
        path: p.display().to_string(),
        message: e,
    };
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| load(ca, e.to_string()))? {
                let cert = cert.map_err(|e| load(ca, e.to_string()))?;
                roots.add(cert).map_err(|e| load(ca, e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(load(
                    Path::new("the system's certificate store"),
                    "no trusted certificate found".into(),
                ));
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| load(Path::new("rustls"), e.to_string()))?
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(|e| load(cert, e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| load(cert, e.to_string()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| load(key, e.to_string()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| load(cert, e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Serves `app` over TLS with `config` (mutual for the API, [`web_server_config`] for the
/// tenants' gateway) until `shutdown` completes, with the default connection limits.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: Arc<ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::conn::serve(
        listener,
        app,
        Some(config),
        crate::ConnLimits::default(),
        shutdown,
    )
    .await
}

/// The fingerprint of the client's certificate on `tls` (empty without one).
pub(crate) fn client_cert(
    tls: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> ClientCert {
    ClientCert(
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| hex::encode(Sha256::digest(c.as_ref())))
            .unwrap_or_default(),
    )
}
