//! TLS for the guest's sockets, run by the host.
//!
//! The sandbox's CPython has no OpenSSL; its `_ssl` module (eryx's, in
//! `xtask/stdlib/_ssl.py`) keeps the `ssl` API and hands the protocol to
//! the host through a reserved host call ([`TLS_CALL`]). The host keeps one
//! rustls client connection per guest TLS object and works it as a state
//! machine: the guest moves the ciphertext between its socket (or memory
//! BIOs, for asyncio) and the host, and reads and writes plaintext. The
//! guest never holds key material; certificates are verified here against
//! the roots the guest's context loaded (its `cafile`/`cadata`, or
//! Mozilla's, the `webpki-roots` crate, for `load_default_certs`).
//!
//! The call's arguments are `OP\nID\n...` (`call-host`, text answers) or,
//! for the records, `OP\nID\n...` with bytes beside them and bytes back
//! (`call-host-bytes`):
//! - `config\n\n{settings JSON}`: a client configuration (a context's
//!   settings: protocols, verification, CA certificates, ALPN); answers
//!   its id (the guest sends a context's settings once, not its CA bundle
//!   with every connection);
//! - `open\nCONFIG\nHOST`: a new client connection of that configuration
//!   to `HOST` (empty: no name sent or checked); answers its id, or the
//!   error kind `no-config` when the configuration was let go (the guest
//!   sends it again);
//! - bytes: `step\nID\nEOF\nN` with data: its first `N` bytes are
//!   ciphertext from the peer, the rest plaintext to send; `EOF` is `1`
//!   when the peer closed its side. Answers `HS CLOSED P\n` then `P`
//!   bytes of plaintext received, then ciphertext to send (`HS`: `1`
//!   while handshaking; `CLOSED`: 0 open, 1 the peer's clean close, 2 the
//!   peer closed without a `close_notify`);
//! - bytes: `close\nID`: the ciphertext of a `close_notify`;
//! - `info\nID`: JSON of the negotiated version, cipher, ALPN protocol and
//!   the peer's certificates (hex DER);
//! - `drop\nID`: forget the connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use crate::world::HostError;

/// The reserved host call of the guest's `_ssl` module.
pub(crate) const TLS_CALL: &str = "\0tls";

/// Connections one sandbox may hold at once.
const MAX_CONNECTIONS: usize = 256;
/// Client configurations kept per sandbox (one per distinct context).
const MAX_CONFIGS: usize = 16;

/// A guest context's settings, as its `_ssl` sends them.
#[derive(Debug)]
struct Settings {
    /// Whether connections send a name (SNI) and may check it.
    named: bool,
    alpn: Vec<Vec<u8>>,
    /// `verify_mode != CERT_NONE`.
    verify: bool,
    /// `check_hostname`.
    check_hostname: bool,
    /// Mozilla's roots (`load_default_certs`, `set_default_verify_paths`).
    default_roots: bool,
    /// PEM certificates the context loaded.
    cas: String,
    /// The client's certificate chain and private key (PEM), for servers
    /// that ask for one (`load_cert_chain`).
    client_chain: String,
    client_key: String,
    /// Lowest and highest version: `1.2` or `1.3`.
    min: Option<String>,
    max: Option<String>,
}

fn failed(kind: &str, message: impl Into<String>) -> HostError {
    HostError {
        kind: kind.into(),
        message: message.into(),
    }
}

impl Settings {
    fn parse(text: &str) -> Result<Settings, HostError> {
        let bad = |what: &str| failed("internal", format!("TLS settings: {what}"));
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let string = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
        let alpn = match v.get("alpn").and_then(|a| a.as_array()) {
            Some(list) => list
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(|s| s.as_bytes().to_vec())
                        .ok_or_else(|| bad("alpn"))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Settings {
            named: flag("named"),
            alpn,
            verify: flag("verify"),
            check_hostname: flag("check_hostname"),
            default_roots: flag("default_roots"),
            cas: string("cas").unwrap_or_default(),
            client_chain: string("client_chain").unwrap_or_default(),
            client_key: string("client_key").unwrap_or_default(),
            min: string("min"),
            max: string("max"),
        })
    }

    fn config(&self, provider: &Arc<CryptoProvider>) -> Result<ClientConfig, HostError> {
        let tls_error = |e: rustls::Error| failed("tls", e.to_string());
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        let in_range = |v: &str| {
            self.min.as_deref().is_none_or(|m| m <= v) && self.max.as_deref().is_none_or(|m| m >= v)
        };
        if in_range("1.2") {
            versions.push(&rustls::version::TLS12);
        }
        if in_range("1.3") {
            versions.push(&rustls::version::TLS13);
        }
        if versions.is_empty() {
            return Err(failed(
                "tls",
                "no protocols available: only TLS 1.2 and 1.3 are offered here",
            ));
        }
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(tls_error)?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify {
            let mut roots = rustls::RootCertStore::empty();
            if self.default_roots {
                roots.roots.extend(default_roots().iter().cloned());
            }
            for cert in CertificateDer::pem_slice_iter(self.cas.as_bytes()) {
                let cert = cert.map_err(|e| failed("tls", format!("a CA certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| failed("tls", format!("a CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(failed(
                    "verify",
                    "certificate verify failed: the context has no CA certificates (give it \
                     some with `load_verify_locations(...)`, or Mozilla's with \
                     `load_default_certs()`; `ssl.create_default_context()` does)",
                ));
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| failed("tls", e.to_string()))?;
            if self.check_hostname && self.named {
                webpki
            } else {
                Arc::new(AnyName(webpki))
            }
        } else {
            Arc::new(NoVerify(provider.clone()))
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = if self.client_chain.is_empty() {
            builder.with_no_client_auth()
        } else {
            let chain = CertificateDer::pem_slice_iter(self.client_chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| failed("tls", format!("the client certificate: {e}")))?;
            if chain.is_empty() {
                return Err(failed(
                    "tls",
                    "the client certificate file holds no certificate",
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(self.client_key.as_bytes()).map_err(|e| {
                failed(
                    "tls",
                    format!(
                        "the client's private key: {e} (give it unencrypted, PKCS#8, PKCS#1 \
                         or SEC1 PEM)"
                    ),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| failed("tls", format!("the client certificate and key: {e}")))?
        };
        config.alpn_protocols = self.alpn.clone();
        config.enable_sni = self.named;
        Ok(config)
    }
}

/// Verifies the chain and the signatures but not the name
/// (`check_hostname = False`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `verify_mode = CERT_NONE`: any certificate (the handshake's signatures
/// are still checked, as OpenSSL does).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The CA certificates of `load_default_certs()`: the host's trust store,
/// as CPython's OpenSSL reads it (`SSL_CERT_FILE`, `SSL_CERT_DIR`, the
/// system's), or Mozilla's (webpki-roots) where the host has none. Read once
/// per process.
fn default_roots() -> &'static [rustls::pki_types::TrustAnchor<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::TrustAnchor<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = rustls::RootCertStore::empty();
        let (added, _) =
            store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if added == 0 {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        store.roots
    })
}

/// The process's crypto provider.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    #[allow(
        deprecated,
        reason = "ring lacks the post-quantum key exchange; aws-lc-rs, which has it, would add \
                  a large C build (cmake) to every cold build of the host"
    )]
    let make = || Arc::new(rustls::crypto::ring::default_provider());
    PROVIDER.get_or_init(make).clone()
}

/// The guest's `SSLError` for a rustls error with the peer `host`: a
/// certificate that does not verify is kind `verify`, its message
/// `CODE\ncertificate verify failed: REASON` with OpenSSL's code and words
/// (what programs and their users know).
fn protocol_error(e: rustls::Error, host: &str) -> HostError {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return failed("tls", e.to_string());
    };
    let (code, reason) = match &c {
        C::UnknownIssuer => (20, "unable to get local issuer certificate".to_string()),
        C::Expired | C::ExpiredContext { .. } => (10, "certificate has expired".into()),
        C::NotValidYet | C::NotValidYetContext { .. } => (9, "certificate is not yet valid".into()),
        C::NotValidForName | C::NotValidForNameContext { .. } => (
            62,
            format!("Hostname mismatch, certificate is not valid for '{host}'."),
        ),
        C::Revoked => (23, "certificate revoked".into()),
        C::BadSignature => (7, "certificate signature failure".into()),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            (26, "unsupported certificate purpose".into())
        }
        other => (0, format!("{other:?}")),
    };
    failed(
        "verify",
        format!("{code}\ncertificate verify failed: {reason}"),
    )
}

/// One sandbox's TLS connections.
#[derive(Default)]
pub(crate) struct Sessions {
    next: u32,
    /// Each connection with the name it was opened for.
    conns: HashMap<u32, (ClientConnection, String)>,
    next_config: u32,
    /// The newest configurations, by id.
    configs: Vec<(u32, Arc<ClientConfig>)>,
}

impl Sessions {
    /// Answers a [`TLS_CALL`].
    pub(crate) fn call(&mut self, arguments: &str) -> Result<String, HostError> {
        let mut parts = arguments.splitn(3, '\n');
        let op = parts.next().unwrap_or_default();
        let id = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        if op == "config" {
            let config = Arc::new(Settings::parse(rest)?.config(&provider())?);
            if self.configs.len() >= MAX_CONFIGS {
                self.configs.remove(0);
            }
            self.next_config = self.next_config.wrapping_add(1);
            self.configs.push((self.next_config, config));
            return Ok(self.next_config.to_string());
        }
        let id: u32 = id
            .parse()
            .map_err(|_| failed("internal", format!("TLS call `{op}`: no id")))?;
        if op == "open" {
            return self.open(id, rest);
        }
        if op == "drop" {
            self.conns.remove(&id);
            return Ok(String::new());
        }
        let (conn, _) = self
            .conns
            .get(&id)
            .ok_or_else(|| failed("internal", format!("TLS connection {id} is gone")))?;
        match op {
            "info" => Ok(info(conn)),
            _ => Err(failed("internal", format!("unknown TLS call `{op}`"))),
        }
    }

    /// Answers a [`TLS_CALL`] made with bytes (`call-host-bytes`).
    pub(crate) fn call_bytes(
        &mut self,
        arguments: &str,
        data: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        let mut parts = arguments.splitn(3, '\n');
        let op = parts.next().unwrap_or_default();
        let id: u32 = parts
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| failed("internal", format!("TLS call `{op}`: no id")))?;
        let rest = parts.next().unwrap_or_default();
        let (conn, host) = self
            .conns
            .get_mut(&id)
            .ok_or_else(|| failed("internal", format!("TLS connection {id} is gone")))?;
        match op {
            "step" => step(conn, host, rest, data),
            "close" => {
                conn.send_close_notify();
                let mut out = Vec::new();
                write_out(conn, &mut out)?;
                Ok(out)
            }
            _ => Err(failed("internal", format!("unknown TLS call `{op}`"))),
        }
    }

    fn open(&mut self, config: u32, host: &str) -> Result<String, HostError> {
        if self.conns.len() >= MAX_CONNECTIONS {
            return Err(failed(
                "tls",
                format!(
                    "too many TLS connections open in this sandbox (the limit is \
                     {MAX_CONNECTIONS}); close some"
                ),
            ));
        }
        let Some((_, config)) = self.configs.iter().find(|(id, _)| *id == config) else {
            return Err(failed("no-config", format!("TLS configuration {config}")));
        };
        let config = config.clone();
        // Without a name (no SNI, no name check) rustls still wants one.
        let host = if host.is_empty() {
            "unnamed.invalid"
        } else {
            host
        };
        let name = ServerName::try_from(host.trim_end_matches('.').to_string())
            .map_err(|_| failed("tls", format!("`{host}` is not a server name")))?;
        let conn = ClientConnection::new(config, name).map_err(|e| protocol_error(e, host))?;
        self.next = self.next.wrapping_add(1);
        self.conns.insert(self.next, (conn, host.to_string()));
        Ok(self.next.to_string())
    }
}

/// Moves everything rustls has to send into `out`.
fn write_out(conn: &mut ClientConnection, out: &mut Vec<u8>) -> Result<(), HostError> {
    while conn.wants_write() {
        conn.write_tls(out)
            .map_err(|e| failed("tls", format!("writing TLS records: {e}")))?;
    }
    Ok(())
}

/// One exchange (see the module's documentation).
fn step(
    conn: &mut ClientConnection,
    host: &str,
    rest: &str,
    data: &[u8],
) -> Result<Vec<u8>, HostError> {
    let mut fields = rest.splitn(2, '\n');
    let eof = fields.next() == Some("1");
    let n: usize = fields.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let (incoming, outgoing) = data.split_at(n.min(data.len()));

    let mut plain = Vec::new();
    let mut closed = 0;
    let mut input = incoming;
    loop {
        if !input.is_empty() {
            conn.read_tls(&mut input)
                .map_err(|e| failed("tls", format!("reading TLS records: {e}")))?;
        } else if eof {
            // A read of nothing tells rustls the peer closed its side.
            conn.read_tls(&mut &[][..])
                .map_err(|e| failed("tls", format!("reading TLS records: {e}")))?;
        }
        if let Err(e) = conn.process_new_packets() {
            // Send the alert that says why, as OpenSSL does, and fail.
            let mut out = Vec::new();
            let _ = write_out(conn, &mut out);
            return Err(protocol_error(e, host));
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    closed = 1;
                    break;
                }
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    closed = 2;
                    break;
                }
                Err(e) => return Err(failed("tls", e.to_string())),
            }
        }
        if input.is_empty() {
            break;
        }
    }
    if eof && closed == 0 && !conn.is_handshaking() {
        closed = 2;
    }
    if !outgoing.is_empty() {
        conn.writer()
            .write_all(outgoing)
            .map_err(|e| failed("tls", format!("writing: {e}")))?;
    }
    let mut answer = format!(
        "{} {} {}\n",
        u8::from(conn.is_handshaking()),
        closed,
        plain.len()
    )
    .into_bytes();
    answer.extend_from_slice(&plain);
    write_out(conn, &mut answer)?;
    Ok(answer)
}

/// The negotiated parameters, as JSON.
fn info(conn: &ClientConnection) -> String {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => Some("TLSv1.3"),
        Some(rustls::ProtocolVersion::TLSv1_2) => Some("TLSv1.2"),
        _ => None,
    };
    let (cipher, bits) = match conn.negotiated_cipher_suite() {
        Some(suite) => {
            let name = format!("{:?}", suite.suite());
            let bits = if name.contains("128") { 128 } else { 256 };
            (Some(openssl_name(&name)), bits)
        }
        None => (None, 0),
    };
    let peer: Vec<String> = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| hex::encode(c.as_ref()))
        .collect();
    serde_json::json!({
        "version": version,
        "cipher": cipher,
        "bits": bits,
        "alpn": conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
        "peer": peer,
    })
    .to_string()
}

/// OpenSSL's name of an IANA cipher suite name (`TLS13_AES_128_GCM_SHA256`
/// is `TLS_AES_128_GCM_SHA256`; `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` is
/// `ECDHE-RSA-AES128-GCM-SHA256`).
fn openssl_name(iana: &str) -> String {
    if let Some(rest) = iana.strip_prefix("TLS13_") {
        return format!("TLS_{rest}");
    }
    let rest = iana
        .strip_prefix("TLS_")
        .unwrap_or(iana)
        .replace("_WITH", "");
    rest.replace("AES_128", "AES128")
        .replace("AES_256", "AES256")
        .replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305")
        .replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_names_read_as_openssl_writes_them() {
        assert_eq!(
            openssl_name("TLS13_AES_128_GCM_SHA256"),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            openssl_name("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            "ECDHE-RSA-AES256-GCM-SHA384"
        );
        assert_eq!(
            openssl_name("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            "ECDHE-ECDSA-CHACHA20-POLY1305"
        );
    }

    #[test]
    fn limits_say_what_they_are() {
        let mut s = Sessions::default();
        let err = s
            .call("config\n\n{\"min\": \"1.3\", \"max\": \"1.2\"}")
            .unwrap_err();
        assert_eq!(
            err.message,
            "no protocols available: only TLS 1.2 and 1.3 are offered here"
        );
        let config = s.call("config\n\n{}").unwrap();
        for _ in 0..MAX_CONNECTIONS {
            s.call(&format!("open\n{config}\nexample.com")).unwrap();
        }
        let err = s.call(&format!("open\n{config}\nexample.com")).unwrap_err();
        assert_eq!(
            err.message,
            "too many TLS connections open in this sandbox (the limit is 256); close some"
        );
    }

    #[test]
    fn a_context_without_roots_says_how_to_give_it_some() {
        let mut s = Sessions::default();
        let err = s
            .call("config\n\n{\"named\": true, \"verify\": true, \"check_hostname\": true}")
            .unwrap_err();
        assert_eq!(err.kind, "verify");
        assert!(
            err.message.contains("load_default_certs()"),
            "{}",
            err.message
        );
        let config = s
            .call("config\n\n{\"named\": true, \"verify\": true, \"default_roots\": true}")
            .unwrap();
        assert_eq!(
            s.call("open\n99\nexample.com").unwrap_err().kind,
            "no-config"
        );
        let id = s.call(&format!("open\n{config}\nexample.com")).unwrap();
        // A client hello to send, nothing received yet.
        let out = s.call_bytes(&format!("step\n{id}\n0\n0"), &[]).unwrap();
        assert_eq!(&out[..6], b"1 0 0\n");
        assert_eq!(out[6], 22, "a handshake record");
        let err = s
            .call_bytes(&format!("step\n{id}\n0\n7"), b"\x17\x03\x03\x00\x02ab")
            .unwrap_err();
        assert_eq!(err.kind, "tls", "{}", err.message);
        s.call(&format!("drop\n{id}")).unwrap();
        assert!(s.call(&format!("info\n{id}")).is_err());
    }
}
