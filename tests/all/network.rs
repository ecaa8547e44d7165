//! Opt-in network: TCP to the hosts on a sandbox's allow-list, names
//! resolved by the host, TLS run by the host (rustls) under the guest's
//! `ssl` API. The servers are real ones on this machine's loopback: a
//! plain HTTP server and an HTTPS one whose certificate a test CA signed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use eryx_host::Error;

use crate::support::{self, builder, eryx, text};

/// Answers one HTTP/1.x request on `stream`: `hello <path>` (and closes).
fn answer<S: Read + Write>(stream: &mut S) {
    let mut reader = BufReader::new(&mut *stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split(' ').nth(1).unwrap_or("?").to_string();
    let body = format!("hello {path}");
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// A plain HTTP server on 127.0.0.1; its port.
pub fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(&mut stream));
        }
    });
    port
}

/// A server that accepts connections and never answers; its port.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut kept: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            kept.push(stream);
        }
    });
    port
}

/// An HTTPS server on 127.0.0.1 whose certificate (for `localhost` only)
/// a new test CA signed: its port and the CA's PEM.
pub fn https_server() -> (u16, String) {
    let server = tls_server(false);
    (server.port, server.ca)
}

/// A test HTTPS server and the PEM files a client needs.
struct TlsServer {
    port: u16,
    /// The CA that signed the server's and the client's certificates.
    ca: String,
    /// A client certificate and its key (PKCS#8), both PEM.
    client_cert: String,
    client_key: String,
}

/// An HTTPS server as [`https_server`]'s, which with `require_client`
/// accepts only clients with a certificate of its CA.
fn tls_server(require_client: bool) -> TlsServer {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "eryx test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Eryx");
    let cert = params.signed_by(&key, &ca).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sandbox client");
    let client_cert = client_params.signed_by(&client_key, &ca).unwrap();
    #[allow(
        deprecated,
        reason = "the test server needs no post-quantum key exchange"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.as_ref().der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                answer(&mut tls);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    TlsServer {
        port,
        ca: ca.as_ref().pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

#[tokio::test]
async fn a_sandbox_reaches_the_hosts_on_its_allow_list_and_nothing_else() {
    let port = http_server();
    let mut sb = builder()
        .allow_net(format!("localhost:{port}"))
        .build()
        .await
        .unwrap();
    let out = sb
        .execute(&format!(
            r#"
import socket, urllib.request
print(sorted({{a[4][0] for a in socket.getaddrinfo("localhost", {port}, type=socket.SOCK_STREAM)}} & {{"127.0.0.1"}}))
print(urllib.request.urlopen("http://localhost:{port}/first").read())
def fails(f):
    try:
        f()
    except OSError as e:
        print(type(e).__name__, e.errno == getattr(socket, "EAI_FAIL", e.errno), e)
fails(lambda: urllib.request.urlopen("http://localhost:{other}/"))
fails(lambda: socket.gethostbyname("example.com"))
# An address a listed name resolved to, on its port: let through.
s = socket.create_connection(("127.0.0.1", {port}))
s.sendall(b"GET /by-address HTTP/1.0\r\n\r\n")
print(s.makefile("rb").read().split(b"\r\n")[-1])
fails(lambda: socket.create_connection(("127.0.0.1", {other})))
fails(lambda: socket.socket(type=socket.SOCK_DGRAM))
s = socket.socket()
fails(lambda: s.bind(("0.0.0.0", 8000)))
print(socket.getaddrinfo("10.1.2.3", "https")[0][4], socket.gethostbyname("127.0.0.1"))
"#,
            other = port + 1
        ))
        .await
        .unwrap();
    let list = format!("(localhost:{port})");
    let add = "the host can add it (`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`)";
    assert_eq!(
        out.stdout,
        format!(
            "['127.0.0.1']\n\
             b'hello /first'\n\
             URLError False <urlopen error [Errno -4] localhost:{other} is not on this \
             sandbox's network allow-list {list}; {add}>\n\
             gaierror True [Errno -4] example.com is not on this sandbox's network allow-list \
             {list}; {add}\n\
             b'hello /by-address'\n\
             PermissionError False [Errno 2] 127.0.0.1:{other} is not on this sandbox's \
             network allow-list {list}, nor an address a name on it resolved to; {add}\n\
             PermissionError False [Errno 2] only TCP sockets are available in this sandbox \
             (its network allows TCP connections to the hosts on its allow-list)\n\
             PermissionError False [Errno 2] bind: this sandbox cannot accept connections (no \
             listening sockets, no binding to an address); it connects out only, to the hosts \
             on its network allow-list\n\
             ('10.1.2.3', 443) 127.0.0.1\n",
            other = port + 1
        )
    );
}

#[tokio::test]
async fn a_sandbox_without_an_allow_list_has_no_sockets_and_says_how_to_get_them() {
    let out = support::stdout_of(
        r#"
import socket
for f in (socket.socket, lambda: socket.getaddrinfo("example.com", 443)):
    try:
        f()
    except OSError as e:
        print(type(e).__name__, e)
# The host's bytes calls (TLS records) answer only their reserved name,
# and the TLS one only with network.
import _host
print(_host.call("\0tls", "", b"step\n1\n0\n0\0"), _host.call("tool", "", b"x"))
"#,
    )
    .await;
    assert_eq!(
        out,
        "PermissionError [Errno 2] no network in this sandbox (creating a socket); the host can \
         allow hosts (`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`)\n\
         gaierror [Errno -4] no network in this sandbox (looking up 'example.com'); the host \
         can allow names (`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`) or offer \
         what the code needs as host functions\n\
         b'\\x01no-network\\n' b'\\x01not-found\\nno host call `tool` takes bytes'\n"
    );
}

#[tokio::test]
async fn tls_runs_on_the_host_under_the_guests_ssl_api() {
    let (port, ca) = https_server();
    let mut sb = builder()
        .allow_net(format!("localhost:{port}"))
        .allow_net(format!("127.0.0.1:{port}"))
        .build()
        .await
        .unwrap();
    sb.write_file("/tmp/ca.pem", ca.as_bytes()).unwrap();
    let out = sb
        .execute(&format!(
            r#"
import asyncio, http.client, ssl, urllib.request
ctx = ssl.create_default_context(cafile="/tmp/ca.pem")
c = http.client.HTTPSConnection("localhost", {port}, context=ctx)
c.request("GET", "/over-tls")
sock = c.sock
print(sock.version(), sock.cipher()[1:], sock.selected_alpn_protocol() is None)
cert = sock.getpeercert()
print(cert["subject"], cert["issuer"], cert["subjectAltName"], cert["version"])
print(len(sock.getpeercert(binary_form=True)) > 100)
r = c.getresponse()
print(r.status, r.read())
c.close()

def fails(f):
    try:
        f()
    except OSError as e:
        e = e.reason  # urllib's URLError wraps it
        print(type(e).__name__, e.verify_code, e.verify_message)
# The default roots (the host's trust store) do not know the test CA.
fails(lambda: urllib.request.urlopen("https://localhost:{port}/"))
# The certificate names `localhost` only.
fails(lambda: urllib.request.urlopen("https://127.0.0.1:{port}/", context=ctx))
# Without verification (as `verify=False` in requests).
print(urllib.request.urlopen("https://127.0.0.1:{port}/unverified",
                             context=ssl._create_unverified_context()).read())
ctx.set_alpn_protocols(["h2", "http/1.1"])

async def main():
    reader, writer = await asyncio.open_connection("localhost", {port}, ssl=ctx)
    writer.write(b"GET /asyncio HTTP/1.0\r\n\r\n")
    data = await reader.read()
    ssl_object = writer.get_extra_info("ssl_object")
    print(data.split(b"\r\n")[-1], ssl_object.selected_alpn_protocol(),
          writer.get_extra_info("peercert")["subject"][0])
    writer.close()
    await writer.wait_closed()
asyncio.run(main())
"#
        ))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "TLSv1.3 ('TLSv1.3', 256) True\n\
         ((('commonName', 'localhost'),), (('organizationName', 'Eryx'),)) \
         ((('commonName', 'eryx test CA'),),) (('DNS', 'localhost'),) 3\n\
         True\n\
         200 b'hello /over-tls'\n\
         SSLCertVerificationError 20 unable to get local issuer certificate\n\
         SSLCertVerificationError 62 Hostname mismatch, certificate is not valid for \
         '127.0.0.1'.\n\
         b'hello /unverified'\n\
         b'hello /asyncio' http/1.1 (('commonName', 'localhost'),)\n"
    );
}

#[tokio::test]
async fn a_server_that_asks_for_a_client_certificate_gets_the_contexts() {
    let server = tls_server(true);
    let port = server.port;
    let mut sb = builder()
        .allow_net(format!("localhost:{port}"))
        .build()
        .await
        .unwrap();
    sb.write_file("/tmp/ca.pem", server.ca.as_bytes()).unwrap();
    sb.write_file("/tmp/client.pem", server.client_cert.as_bytes())
        .unwrap();
    sb.write_file("/tmp/client.key", server.client_key.as_bytes())
        .unwrap();
    let out = sb
        .execute(&format!(
            r#"
import ssl, urllib.request
ctx = ssl.create_default_context(cafile="/tmp/ca.pem")
try:
    urllib.request.urlopen("https://localhost:{port}/anonymous", context=ctx).read()
except OSError as e:
    print("without:", type(e).__name__)
ctx.load_cert_chain("/tmp/client.pem", "/tmp/client.key")
print(urllib.request.urlopen("https://localhost:{port}/with-cert", context=ctx).read())
try:
    ctx.load_cert_chain("/tmp/ca.pem")
except ssl.SSLError as e:
    print(e)
with open("/tmp/locked.key", "w") as f:
    f.write("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
try:
    ctx.load_cert_chain("/tmp/client.pem", "/tmp/locked.key", password="x")
except ssl.SSLError as e:
    print(e)
server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
try:
    server.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
except ssl.SSLError as e:
    print(e)
"#
        ))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "without: SSLError\nb'hello /with-cert'\n[SSL] PEM lib: no private key in the file\n\
         [SSL] encrypted private keys are not supported in the eryx sandbox: give the key \
         unencrypted\n\
         TLS servers are not available in the eryx sandbox (it cannot accept connections); \
         only clients\n"
    );
}

#[tokio::test]
async fn a_read_that_waits_forever_ends_at_the_time_limit_and_the_host_goes_on() {
    let port = silent_server();
    let mut sb = builder()
        .allow_net(format!("127.0.0.1:{port}"))
        .timeout(std::time::Duration::from_millis(800))
        .build()
        .await
        .unwrap();
    let code = format!(
        r#"
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=0.2)
try:
    s.recv(1)
except TimeoutError as e:
    print("TimeoutError", e)
s.settimeout(None)
print("waiting", flush=True)
s.recv(1)
"#
    );
    let err = sb.execute(&code).await.unwrap_err();
    let Error::Timeout { output, .. } = err else {
        panic!("expected a timeout, got {err:?}")
    };
    assert_eq!(output.stdout, "TimeoutError timed out\nwaiting\n");
    assert_eq!(sb.execute("print(6 * 7)").await.unwrap().stdout, "42\n");
}

#[tokio::test]
async fn allow_list_entries_are_checked_when_the_sandbox_is_built() {
    for (entry, says) in [
        (
            "https://example.com",
            "give a host and port (`example.com:443`), not a URL",
        ),
        (
            "example.com:https",
            "`https` is not a port number (1-65535)",
        ),
    ] {
        let err = builder().allow_net(entry).build().await.unwrap_err();
        assert!(matches!(err, Error::BadNetwork { .. }), "{entry}: {err:?}");
        assert_eq!(
            err.to_string(),
            format!("cannot allow network access to {entry:?}: {says}")
        );
    }
}

#[test]
fn the_cli_allows_hosts_with_allow_net() {
    let port = http_server();
    let allow = format!("localhost:{port}");
    let code = format!(
        "import urllib.request\nprint(urllib.request.urlopen('http://localhost:{port}/cli').read().decode())"
    );
    let out = eryx(&["--allow-net", &allow, "-c", &code], None);
    assert_eq!(text(&out.stdout), "hello /cli\n", "{}", text(&out.stderr));
    assert!(out.status.success());
    let out = eryx(&["--allow-net", "http://x", "-c", "pass"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "cannot allow network access to \"http://x\": give a host and port \
             (`example.com:443`), not a URL"
        ),
        "{}",
        text(&out.stderr)
    );
}
