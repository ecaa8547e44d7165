"""`_ssl` for the eryx sandbox: the `ssl` module's contexts, with TLS run
by the host.

The WASI build of CPython has no OpenSSL, so `import ssl` failed with "No
module named '_ssl'", and with it every package that imports `ssl` at the
top even when it never makes a connection (anyio's asyncio backend, httpx,
the HTTP clients of API SDKs). The sandbox has no network, so TLS could
never be used here; what code needs is for `ssl` to import and for its
contexts to be configured as usual.

This module (eryx's, written over the stdlib by `cargo xtask dist`) gives
the stdlib's `ssl.py` what it builds on: the constants and enums' values,
the exceptions, `MemoryBIO`, ASN.1 names for `Purpose`, and `_SSLContext`,
whose settings behave as CPython's do (`check_hostname` and `verify_mode`
keep each other consistent, certificate files must exist).

When the host lets the sandbox reach hosts (`SandboxBuilder::allow_net`,
`eryx --allow-net`), TLS works as usual on sockets (`wrap_socket`: `http.
client`, urllib3, httpx) and on memory BIOs (`wrap_bio`: asyncio): the
protocol runs on the host (rustls, see eryx-host's `tls.rs`), which this
module feeds with the ciphertext it moves over the socket or BIOs. The
certificates are verified by the host against the CA certificates the
context loaded (Mozilla's for `load_default_certs()`). Client side only: the
sandbox cannot listen for connections. Without network, starting TLS raises
`SSLError` saying so.
"""

import os as _os
import weakref as _weakref

import _host
import _socket

OPENSSL_VERSION = "OpenSSL 3.0 API without TLS (eryx sandbox: no OpenSSL, no network)"
OPENSSL_VERSION_INFO = (3, 0, 0, 0, 0)
OPENSSL_VERSION_NUMBER = 0x30000000
_OPENSSL_API_VERSION = (3, 0, 0, 0, 0)
_DEFAULT_CIPHERS = "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"

HAS_SNI = True
HAS_ECDH = True
HAS_NPN = False
HAS_ALPN = True
HAS_SSLv2 = False
HAS_SSLv3 = False
HAS_TLSv1 = True
HAS_TLSv1_1 = True
HAS_TLSv1_2 = True
HAS_TLSv1_3 = True
HAS_PSK = False
HAS_PHA = True

PROTOCOL_SSLv23 = PROTOCOL_TLS = 2
PROTOCOL_TLSv1 = 3
PROTOCOL_TLSv1_1 = 4
PROTOCOL_TLSv1_2 = 5
PROTOCOL_TLS_CLIENT = 0x10
PROTOCOL_TLS_SERVER = 0x11
_PROTOCOLS = (PROTOCOL_TLS, PROTOCOL_TLSv1, PROTOCOL_TLSv1_1, PROTOCOL_TLSv1_2,
              PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER)

PROTO_MINIMUM_SUPPORTED = -2
PROTO_MAXIMUM_SUPPORTED = -1
PROTO_SSLv3 = 0x300
PROTO_TLSv1 = 0x301
PROTO_TLSv1_1 = 0x302
PROTO_TLSv1_2 = 0x303
PROTO_TLSv1_3 = 0x304

CERT_NONE = 0
CERT_OPTIONAL = 1
CERT_REQUIRED = 2

VERIFY_DEFAULT = 0
VERIFY_CRL_CHECK_LEAF = 0x4
VERIFY_CRL_CHECK_CHAIN = 0xC
VERIFY_X509_STRICT = 0x20
VERIFY_ALLOW_PROXY_CERTS = 0x40
VERIFY_X509_TRUSTED_FIRST = 0x8000
VERIFY_X509_PARTIAL_CHAIN = 0x80000

OP_ALL = 0x80000850
OP_NO_SSLv2 = 0
OP_NO_SSLv3 = 0x2000000
OP_NO_TLSv1 = 0x4000000
OP_NO_TLSv1_1 = 0x10000000
OP_NO_TLSv1_2 = 0x8000000
OP_NO_TLSv1_3 = 0x20000000
OP_CIPHER_SERVER_PREFERENCE = 0x400000
OP_SINGLE_DH_USE = 0
OP_SINGLE_ECDH_USE = 0
OP_NO_COMPRESSION = 0x20000
OP_NO_TICKET = 0x4000
OP_NO_RENEGOTIATION = 0x40000000
OP_ENABLE_MIDDLEBOX_COMPAT = 0x100000
OP_IGNORE_UNEXPECTED_EOF = 0x80
OP_LEGACY_SERVER_CONNECT = 0x4
OP_ENABLE_KTLS = 0x8

HOSTFLAG_ALWAYS_CHECK_SUBJECT = 0x1
HOSTFLAG_NO_WILDCARDS = 0x2
HOSTFLAG_NO_PARTIAL_WILDCARDS = 0x4
HOSTFLAG_MULTI_LABEL_WILDCARDS = 0x8
HOSTFLAG_SINGLE_LABEL_SUBDOMAINS = 0x10
HOSTFLAG_NEVER_CHECK_SUBJECT = 0x20

ENCODING_PEM = 1
ENCODING_DER = 2

SSL_ERROR_SSL = 1
SSL_ERROR_WANT_READ = 2
SSL_ERROR_WANT_WRITE = 3
SSL_ERROR_WANT_X509_LOOKUP = 4
SSL_ERROR_SYSCALL = 5
SSL_ERROR_ZERO_RETURN = 6
SSL_ERROR_WANT_CONNECT = 7
SSL_ERROR_EOF = 8
SSL_ERROR_INVALID_ERROR_CODE = 10

ALERT_DESCRIPTION_CLOSE_NOTIFY = 0
ALERT_DESCRIPTION_UNEXPECTED_MESSAGE = 10
ALERT_DESCRIPTION_BAD_RECORD_MAC = 20
ALERT_DESCRIPTION_RECORD_OVERFLOW = 22
ALERT_DESCRIPTION_DECOMPRESSION_FAILURE = 30
ALERT_DESCRIPTION_HANDSHAKE_FAILURE = 40
ALERT_DESCRIPTION_BAD_CERTIFICATE = 42
ALERT_DESCRIPTION_UNSUPPORTED_CERTIFICATE = 43
ALERT_DESCRIPTION_CERTIFICATE_REVOKED = 44
ALERT_DESCRIPTION_CERTIFICATE_EXPIRED = 45
ALERT_DESCRIPTION_CERTIFICATE_UNKNOWN = 46
ALERT_DESCRIPTION_ILLEGAL_PARAMETER = 47
ALERT_DESCRIPTION_UNKNOWN_CA = 48
ALERT_DESCRIPTION_ACCESS_DENIED = 49
ALERT_DESCRIPTION_DECODE_ERROR = 50
ALERT_DESCRIPTION_DECRYPT_ERROR = 51
ALERT_DESCRIPTION_PROTOCOL_VERSION = 70
ALERT_DESCRIPTION_INSUFFICIENT_SECURITY = 71
ALERT_DESCRIPTION_INTERNAL_ERROR = 80
ALERT_DESCRIPTION_USER_CANCELLED = 90
ALERT_DESCRIPTION_NO_RENEGOTIATION = 100
ALERT_DESCRIPTION_UNSUPPORTED_EXTENSION = 110
ALERT_DESCRIPTION_CERTIFICATE_UNOBTAINABLE = 111
ALERT_DESCRIPTION_UNRECOGNIZED_NAME = 112
ALERT_DESCRIPTION_BAD_CERTIFICATE_STATUS_RESPONSE = 113
ALERT_DESCRIPTION_BAD_CERTIFICATE_HASH_VALUE = 114
ALERT_DESCRIPTION_UNKNOWN_PSK_IDENTITY = 115


class SSLError(OSError):
    """An error of the TLS layer."""

    library = None
    reason = None

    def __str__(self):
        if len(self.args) >= 2 and isinstance(self.args[1], str):
            return self.args[1]
        return super().__str__()


class SSLZeroReturnError(SSLError):
    """The TLS connection was closed cleanly."""


class SSLWantReadError(SSLError):
    """More data must be read before the operation can go on."""


class SSLWantWriteError(SSLError):
    """More data must be written before the operation can go on."""


class SSLSyscallError(SSLError):
    """A system error below the TLS layer."""


class SSLEOFError(SSLError):
    """The connection ended in violation of the protocol."""


class SSLCertVerificationError(SSLError, ValueError):
    """A certificate did not verify."""

    verify_code = None
    verify_message = None


def _no_tls(what):
    err = SSLError(
        SSL_ERROR_SSL,
        f"{what}: TLS is not available in this eryx sandbox: it has no network "
        "(the host can allow hosts: `SandboxBuilder::allow_net`, `eryx "
        "--allow-net HOST:PORT`)",
    )
    err.library, err.reason = "eryx", "NO_TLS"
    return err


class _NoConfig(Exception):
    """The host let a context's configuration go: send it again."""


def _settings_version(context):
    """A value that changes whenever the context's settings do."""
    s = context._eryx_settings
    return tuple(v if not isinstance(v, list) else len(v) for v in s.values())


def _tls(op, cid, rest=""):
    """A TLS operation of the host (see eryx-host's `tls.rs`)."""
    return _tls_answer(_host.call("\0tls", f"{op}\n{cid}\n{rest}"))


def _tls_bytes(op, cid, rest, data):
    """A TLS operation of the host on bytes (records in, records out)."""
    answer = _host.call("\0tls", "", f"{op}\n{cid}\n{rest}\0".encode() + data)
    if answer[0] == 0:
        return answer[1:]
    kind, _, message = answer[1:].decode("utf-8", "replace").partition("\n")
    return _tls_answer((False, kind, message))


def _tls_answer(outcome):
    ok, *answer = outcome
    if ok:
        return answer[0]
    kind, message = answer
    if kind == "no-config":
        raise _NoConfig(message)
    if kind == "no-network":
        raise _no_tls("TLS to a peer")
    if kind == "verify":
        code, _, message = message.rpartition("\n")
        err = SSLCertVerificationError(SSL_ERROR_SSL, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
        err.library, err.reason = "SSL", "CERTIFICATE_VERIFY_FAILED"
        err.verify_code = int(code or 0)
        err.verify_message = message.removeprefix("certificate verify failed: ")
        raise err
    err = SSLError(SSL_ERROR_SSL, f"[SSL] {message}")
    err.library = "SSL"
    raise err


def _drop(cid):
    try:
        _tls("drop", cid)
    except Exception:
        pass


# ASN.1 objects `ssl.Purpose` is made of: (nid, short name, long name, OID).
_OBJECTS = (
    (129, "serverAuth", "TLS Web Server Authentication", "1.3.6.1.5.5.7.3.1"),
    (130, "clientAuth", "TLS Web Client Authentication", "1.3.6.1.5.5.7.3.2"),
)


def txt2obj(txt, name=False):
    """The ASN.1 object with this OID (or, with `name`, this name)."""
    for obj in _OBJECTS:
        if txt == obj[3] or (name and txt in obj[1:3]):
            return obj
    raise ValueError(f"unknown object '{txt}'")


def nid2obj(nid):
    """The ASN.1 object with this numeric id."""
    for obj in _OBJECTS:
        if nid == obj[0]:
            return obj
    raise ValueError(f"unknown NID {nid}")


def RAND_status():
    """True: the sandbox's randomness comes from the host."""
    return True


def RAND_add(string, entropy):
    """Accepted and ignored (the host supplies randomness)."""


def RAND_bytes(n):
    """`n` random bytes (`os.urandom`)."""
    if n < 0:
        raise ValueError("num must be positive")
    return _os.urandom(n)


def get_default_verify_paths():
    """Where OpenSSL would look for CA certificates."""
    return ("SSL_CERT_FILE", "/etc/ssl/cert.pem", "SSL_CERT_DIR", "/etc/ssl/certs")


class MemoryBIO:
    """An in-memory buffer for TLS data."""

    def __init__(self):
        self._buf = bytearray()
        self._eof = False

    @property
    def pending(self):
        return len(self._buf)

    @property
    def eof(self):
        return self._eof and not self._buf

    def read(self, size=-1):
        if size < 0 or size > len(self._buf):
            size = len(self._buf)
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def write(self, data):
        if self._eof:
            raise SSLError(SSL_ERROR_SSL, "cannot write() after write_eof()")
        data = memoryview(data).tobytes()
        self._buf += data
        return len(data)

    def write_eof(self):
        self._eof = True


_VERSIONS = {PROTO_SSLv3: "1.0", PROTO_TLSv1: "1.0", PROTO_TLSv1_1: "1.1",
             PROTO_TLSv1_2: "1.2", PROTO_TLSv1_3: "1.3"}


def _pem_of_der(der):
    """PEM text of concatenated DER certificates."""
    import base64

    out, i = [], 0
    while i < len(der):
        _, start, end = _der_item(der, i)
        b64 = base64.b64encode(der[i:end]).decode()
        body = "\n".join(b64[j:j + 64] for j in range(0, len(b64), 64))
        out.append(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n")
        i = end
    return "".join(out)


def _der_item(data, i):
    """(tag, start, end) of the DER item at `i` (its contents' bounds)."""
    if i + 2 > len(data):
        raise SSLError(SSL_ERROR_SSL, "[X509] not enough data (bad DER)")
    tag, length = data[i], data[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[i:i + n], "big")
        i += n
    if i + length > len(data):
        raise SSLError(SSL_ERROR_SSL, "[X509] not enough data (bad DER)")
    return tag, i, i + length


def _der_children(data, start, end):
    out = []
    while start < end:
        item = _der_item(data, start)
        out.append(item)
        start = item[2]
    return out


def _oid(b):
    parts, value = [], 0
    for x in b:
        value = value << 7 | (x & 0x7F)
        if not x & 0x80:
            parts.append(value)
            value = 0
    first = parts[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(map(str, head + parts[1:]))


_ATTRIBUTE_NAMES = {
    "2.5.4.3": "commonName", "2.5.4.4": "surname", "2.5.4.5": "serialNumber",
    "2.5.4.6": "countryName", "2.5.4.7": "localityName",
    "2.5.4.8": "stateOrProvinceName", "2.5.4.9": "streetAddress",
    "2.5.4.10": "organizationName", "2.5.4.11": "organizationalUnitName",
    "2.5.4.12": "title", "2.5.4.42": "givenName", "2.5.4.43": "initials",
    "2.5.4.97": "organizationIdentifier", "2.5.4.15": "businessCategory",
    "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "domainComponent",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionCountryName",
}


def _der_text(tag, raw):
    if tag == 0x1E:
        return raw.decode("utf-16-be", "replace")
    if tag == 0x1C:
        return raw.decode("utf-32-be", "replace")
    return raw.decode("utf-8", "replace")


def _der_name(data, start, end):
    rdns = []
    for _, s, e in _der_children(data, start, end):
        rdn = []
        for _, a, b in _der_children(data, s, e):
            (_, os_, oe), (tag, vs, ve) = _der_children(data, a, b)[:2]
            oid = _oid(data[os_:oe])
            rdn.append((_ATTRIBUTE_NAMES.get(oid, oid), _der_text(tag, data[vs:ve])))
        rdns.append(tuple(rdn))
    return tuple(rdns)


def _der_time(tag, raw):
    s = raw.decode("ascii")
    if tag == 0x17:
        year = int(s[:2])
        year += 2000 if year < 50 else 1900
        s = s[2:]
    else:
        year, s = int(s[:4]), s[4:]
    month, day, hh, mm, ss = (int(s[i:i + 2]) for i in range(0, 10, 2))
    months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
    return f"{months[month - 1]} {day:2d} {hh:02d}:{mm:02d}:{ss:02d} {year} GMT"


def _decode_cert(der):
    """The dict `getpeercert()` gives for a DER certificate, as CPython's
    OpenSSL one does (subject, issuer, version, serial number, validity,
    subjectAltName)."""
    _, cs, ce = _der_item(der, 0)
    _, ts, te = _der_item(der, cs)
    items = _der_children(der, ts, te)
    version = 1
    if items[0][0] == 0xA0:
        v = _der_item(der, items[0][1])
        version = int.from_bytes(der[v[1]:v[2]], "big") + 1
        items = items[1:]
    serial, _alg, issuer, validity, subject = items[:5]
    not_before, not_after = _der_children(der, validity[1], validity[2])
    out = {
        "subject": _der_name(der, subject[1], subject[2]),
        "issuer": _der_name(der, issuer[1], issuer[2]),
        "version": version,
        "serialNumber": der[serial[1]:serial[2]].hex().upper().lstrip("0") or "0",
        "notBefore": _der_time(not_before[0], der[not_before[1]:not_before[2]]),
        "notAfter": _der_time(not_after[0], der[not_after[1]:not_after[2]]),
    }
    for tag, s, e in items[5:]:
        if tag != 0xA3:
            continue
        _, xs, xe = _der_item(der, s)
        for _, es, ee in _der_children(der, xs, xe):
            parts = _der_children(der, es, ee)
            if _oid(der[parts[0][1]:parts[0][2]]) != "2.5.29.17":
                continue
            _, os_, oe = parts[-1]
            _, ns, ne = _der_item(der, os_)
            names = []
            for ntag, vs, ve in _der_children(der, ns, ne):
                raw = der[vs:ve]
                if ntag == 0x82:
                    names.append(("DNS", raw.decode("ascii", "replace")))
                elif ntag == 0x81:
                    names.append(("email", raw.decode("ascii", "replace")))
                elif ntag == 0x86:
                    names.append(("URI", raw.decode("ascii", "replace")))
                elif ntag == 0x87 and len(raw) == 4:
                    names.append(("IP Address", ".".join(map(str, raw))))
                elif ntag == 0x87 and len(raw) == 16:
                    groups = (f"{int.from_bytes(raw[i:i + 2], 'big'):X}" for i in range(0, 16, 2))
                    names.append(("IP Address", ":".join(groups)))
            out["subjectAltName"] = tuple(names)
    return out


class Certificate:
    """A certificate of a peer's chain."""

    def __init__(self, der):
        self._der = der

    def public_bytes(self, format=ENCODING_PEM):
        if format == ENCODING_DER:
            return self._der
        return _pem_of_der(self._der)

    def get_info(self):
        return _decode_cert(self._der)

    def __eq__(self, other):
        return isinstance(other, Certificate) and other._der == self._der

    def __hash__(self):
        return hash(self._der)

    def __repr__(self):
        return f"<Certificate '{_decode_cert(self._der).get('subject')}'>"


class _SSLSocket:
    """One TLS client connection: on a socket (`SSLSocket`) or between two
    `MemoryBIO`s (`SSLObject`). The protocol runs on the host; this object
    moves the ciphertext and keeps the plaintext received and not yet
    read."""

    def __init__(self, context, sock, bios, server_side, server_hostname, owner, session):
        if server_side:
            raise SSLError(
                SSL_ERROR_SSL,
                "TLS servers are not available in the eryx sandbox (it cannot "
                "accept connections); only clients",
            )
        s = context._eryx_settings
        verify = s["verify_mode"] != CERT_NONE
        if verify and s["check_hostname"] and not server_hostname:
            raise ValueError("check_hostname requires server_hostname")
        lo, hi = _VERSIONS.get(s["minimum_version"]), _VERSIONS.get(s["maximum_version"])
        if s["options"] & OP_NO_TLSv1_3:
            hi = min(hi or "1.2", "1.2")
        if s["options"] & OP_NO_TLSv1_2:
            lo = max(lo or "1.3", "1.3")
        alpn, wire = [], s.get("alpn") or b""
        while wire:
            alpn.append(wire[1:1 + wire[0]].decode("latin-1"))
            wire = wire[1 + wire[0]:]
        # The host keeps the context's configuration (its CA bundle may be
        # certifi's 300 KB): sent once per state of the settings.
        named = bool(server_hostname)
        key = (_settings_version(context), named)
        cached = context.__dict__.get("_eryx_host_config")
        for attempt in (0, 1):
            if cached is None or cached[0] != key:
                import json

                config = json.dumps({
                    "named": named, "alpn": alpn, "verify": verify,
                    "check_hostname": s["check_hostname"], "default_roots": s["default_roots"],
                    "cas": "".join(s["cas"]), "min": lo, "max": hi,
                    "client_chain": s.get("client_chain", ""),
                    "client_key": s.get("client_key", ""),
                })
                cached = (key, _tls("config", "", config))
                context.__dict__["_eryx_host_config"] = cached
            try:
                self._id = int(_tls("open", cached[1], server_hostname or ""))
                break
            except _NoConfig:
                cached = None
        _weakref.finalize(self, _drop, self._id)
        self._sock = None if sock is None else _weakref.ref(sock)
        self._bios = bios
        self._plain = bytearray()
        self._unsent = b""
        self._write_done = None
        self._handshaking = True
        self._closed = 0
        self._close_sent = False
        self._info = None
        self.context = context
        self.server_side = False
        self.server_hostname = server_hostname
        self.owner = owner
        self.session = None
        self.session_reused = False

    # Moving ciphertext.

    def _socket(self):
        sock = self._sock()
        if sock is None:
            raise SSLError(SSL_ERROR_SSL, "the underlying socket has been closed")
        return sock

    def _flush(self):
        if self._bios is not None:
            if self._unsent:
                self._bios[1].write(self._unsent)
                self._unsent = b""
            return
        sock = self._socket()
        while self._unsent:
            try:
                n = _socket.socket.send(sock, self._unsent)
            except BlockingIOError:
                raise SSLWantWriteError(SSL_ERROR_WANT_WRITE,
                                        "The operation did not complete (write)") from None
            self._unsent = self._unsent[n:]

    def _receive(self):
        """(ciphertext, eof) from the peer."""
        if self._bios is not None:
            incoming = self._bios[0]
            if incoming.pending:
                return incoming.read(), False
            if incoming.eof:
                return b"", True
            raise SSLWantReadError(SSL_ERROR_WANT_READ, "The operation did not complete (read)")
        try:
            data = _socket.socket.recv(self._socket(), 65536)
        except BlockingIOError:
            raise SSLWantReadError(SSL_ERROR_WANT_READ,
                                   "The operation did not complete (read)") from None
        return data, not data

    def _exchange(self, incoming=b"", plain=b"", eof=False):
        answer = _tls_bytes("step", self._id, f"{int(eof)}\n{len(incoming)}", incoming + plain)
        at = answer.index(b"\n")
        hs, closed, n = map(int, answer[:at].split())
        self._handshaking = bool(hs)
        if closed and not self._closed:
            self._closed = closed
        at += 1
        if n:
            self._plain += answer[at:at + n]
        if len(answer) > at + n:
            self._unsent += answer[at + n:]
        self._flush()

    def _receive_more(self):
        data, eof = self._receive()
        self._exchange(data, eof=eof)
        return eof

    # What `ssl.py` calls.

    def do_handshake(self):
        self._flush()
        self._exchange()
        while self._handshaking:
            if self._receive_more() and self._handshaking:
                raise SSLEOFError(SSL_ERROR_EOF,
                                  "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in "
                                  "violation of protocol")

    def read(self, len=1024, buffer=None):
        if len < 0 and buffer is None:
            raise ValueError("size should not be negative")
        if self._handshaking:
            self.do_handshake()
        if buffer is not None and (len <= 0 or len > memoryview(buffer).nbytes):
            len = memoryview(buffer).nbytes
        if len == 0:
            return 0 if buffer is not None else b""
        while not self._plain:
            if self._closed == 1:
                return 0 if buffer is not None else b""
            if self._closed == 2:
                raise SSLEOFError(SSL_ERROR_EOF,
                                  "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in "
                                  "violation of protocol")
            self._receive_more()
        chunk = bytes(self._plain[:len])
        del self._plain[:len]
        if buffer is not None:
            memoryview(buffer).cast("B")[:chunk.__len__()] = chunk
            return chunk.__len__()
        return chunk

    def write(self, data):
        if self._handshaking:
            self.do_handshake()
        if self._unsent:
            # A write that could not be sent in full: the retry (with the
            # same data, as OpenSSL requires) completes it.
            self._flush()
            done, self._write_done = self._write_done, None
            if done is not None:
                return done
        data = memoryview(data).cast("B").tobytes()
        self._write_done = len(data)
        for i in range(0, max(len(data), 1), 1 << 16):
            self._exchange(plain=data[i:i + (1 << 16)])
        self._write_done = None
        return len(data)

    def pending(self):
        return len(self._plain)

    def shutdown(self):
        if not self._close_sent:
            self._close_sent = True
            self._unsent += _tls_bytes("close", self._id, "", b"")
        self._flush()
        if self._bios is None:
            return self._sock()
        while not self._closed:
            self._receive_more()
        return None

    def _negotiated(self):
        if self._info is None:
            if self._handshaking:
                return None
            import json

            self._info = json.loads(_tls("info", self._id))
        return self._info

    def getpeercert(self, binary_form=False):
        info = self._negotiated()
        if info is None:
            raise ValueError("handshake not done yet")
        if not info["peer"]:
            return None
        der = bytes.fromhex(info["peer"][0])
        if binary_form:
            return der
        if self.context.verify_mode == CERT_NONE:
            return {}
        return _decode_cert(der)

    def get_verified_chain(self):
        return self.get_unverified_chain()

    def get_unverified_chain(self):
        info = self._negotiated()
        if info is None:
            return None
        return [Certificate(bytes.fromhex(c)) for c in info["peer"]]

    def cipher(self):
        info = self._negotiated()
        if info is None or info["cipher"] is None:
            return None
        return (info["cipher"], info["version"], info["bits"])

    def version(self):
        info = self._negotiated()
        return None if info is None else info["version"]

    def selected_alpn_protocol(self):
        info = self._negotiated()
        return None if info is None else info["alpn"]

    def compression(self):
        return None

    def shared_ciphers(self):
        return None

    def get_channel_binding(self, cb_type="tls-unique"):
        if cb_type != "tls-unique":
            raise ValueError(f"'{cb_type}' channel binding type not implemented")
        return None

    def verify_client_post_handshake(self):
        raise SSLError(SSL_ERROR_SSL, "[SSL] not a server connection")


class SSLSession:
    """A TLS session (none can exist without TLS)."""

    def __new__(cls, *args, **kwargs):
        raise TypeError("cannot create '_ssl.SSLSession' instances")


def _setting(name, check=None):
    def get(self):
        return self._eryx_settings[name]

    def put(self, value):
        if check is not None:
            value = check(self, value)
        self._eryx_settings[name] = value

    return property(get, put)


def _int_value(self, value):
    if not isinstance(value, int):
        raise TypeError(f"an integer is required (got type {type(value).__name__})")
    return value


def _version_value(self, value):
    value = _int_value(self, value)
    if value not in (PROTO_MINIMUM_SUPPORTED, PROTO_MAXIMUM_SUPPORTED, PROTO_SSLv3,
                     PROTO_TLSv1, PROTO_TLSv1_1, PROTO_TLSv1_2, PROTO_TLSv1_3):
        raise ValueError(f"Unsupported TLS/SSL version 0x{value:x}")
    return value


def _verify_mode_value(self, value):
    value = _int_value(self, value)
    if value not in (CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED):
        raise ValueError("invalid value for verify_mode")
    if value == CERT_NONE and self._eryx_settings["check_hostname"]:
        raise ValueError("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.")
    return value


def _check_hostname_value(self, value):
    value = bool(value)
    if value and self._eryx_settings["verify_mode"] == CERT_NONE:
        self._eryx_settings["verify_mode"] = CERT_REQUIRED
    return value


def _callback_value(self, value):
    if value is not None and not callable(value):
        raise TypeError("not a callable object")
    return value


class _SSLContext:
    """A TLS context's settings; `ssl.SSLContext` builds on it."""

    def __new__(cls, protocol):
        if protocol not in _PROTOCOLS:
            raise ValueError(f"invalid or unsupported protocol version {protocol}")
        self = object.__new__(cls)
        client = protocol == PROTOCOL_TLS_CLIENT
        self._eryx_settings = {
            "protocol": protocol,
            "options": OP_ALL | OP_NO_SSLv3 | OP_NO_COMPRESSION | OP_CIPHER_SERVER_PREFERENCE
            | OP_ENABLE_MIDDLEBOX_COMPAT,
            "verify_mode": CERT_REQUIRED if client else CERT_NONE,
            "check_hostname": client,
            "verify_flags": VERIFY_X509_TRUSTED_FIRST,
            "minimum_version": PROTO_MINIMUM_SUPPORTED,
            "maximum_version": PROTO_MAXIMUM_SUPPORTED,
            "host_flags": 0,
            "post_handshake_auth": False,
            "keylog_filename": None,
            "sni_callback": None,
            "msg_callback": None,
            "num_tickets": 2,
            "ciphers": _DEFAULT_CIPHERS,
            "ca_certs": 0,
            "cas": [],
            "default_roots": False,
        }
        return self

    protocol = property(lambda self: self._eryx_settings["protocol"])
    options = _setting("options", _int_value)
    verify_mode = _setting("verify_mode", _verify_mode_value)
    verify_flags = _setting("verify_flags", _int_value)
    check_hostname = _setting("check_hostname", _check_hostname_value)
    minimum_version = _setting("minimum_version", _version_value)
    maximum_version = _setting("maximum_version", _version_value)
    _host_flags = _setting("host_flags", _int_value)
    post_handshake_auth = _setting("post_handshake_auth", lambda self, v: bool(v))
    keylog_filename = _setting("keylog_filename")
    sni_callback = _setting("sni_callback", _callback_value)
    _msg_callback = _setting("msg_callback", _callback_value)
    num_tickets = _setting("num_tickets", _int_value)
    security_level = property(lambda self: 2)

    def _add_pem(self, text):
        n = text.count("-----BEGIN CERTIFICATE-----")
        if not n:
            raise SSLError(SSL_ERROR_SSL, "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate "
                           "or crl found")
        self._eryx_settings["ca_certs"] += n
        self._eryx_settings["cas"].append(text if text.endswith("\n") else text + "\n")

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        """Reads CA certificates, for the host to verify peers with."""
        if cafile is None and capath is None and cadata is None:
            raise TypeError("cafile, capath and cadata cannot be all omitted")
        if cafile is not None:
            with open(cafile, "rb") as f:
                self._add_pem(f.read().decode("latin-1"))
        if capath is not None:
            if not _os.path.isdir(capath):
                raise FileNotFoundError(2, "No such file or directory", capath)
            for entry in sorted(_os.scandir(capath), key=lambda e: e.name):
                if entry.is_file():
                    with open(entry.path, "rb") as f:
                        text = f.read().decode("latin-1")
                    if "-----BEGIN CERTIFICATE-----" in text:
                        self._add_pem(text)
        if cadata is not None:
            if isinstance(cadata, str):
                self._add_pem(cadata)
            else:
                self._add_pem(_pem_of_der(memoryview(cadata).tobytes()))

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        """The certificate chain and private key a server that asks for a
        client certificate gets (PEM; the host uses them)."""
        with open(certfile, "rb") as f:
            chain = f.read().decode("latin-1")
        key = chain
        if keyfile is not None:
            with open(keyfile, "rb") as f:
                key = f.read().decode("latin-1")
        if "-----BEGIN CERTIFICATE-----" not in chain:
            raise SSLError(SSL_ERROR_SSL, "[SSL] PEM lib: no certificate in the file")
        if "PRIVATE KEY-----" not in key:
            raise SSLError(SSL_ERROR_SSL, "[SSL] PEM lib: no private key in the file")
        if "ENCRYPTED PRIVATE KEY" in key or "Proc-Type: 4,ENCRYPTED" in key:
            raise SSLError(
                SSL_ERROR_SSL,
                "[SSL] encrypted private keys are not supported in the eryx sandbox: "
                "give the key unencrypted",
            )
        self._eryx_settings["client_chain"] = chain
        self._eryx_settings["client_key"] = key

    def load_default_certs(self, purpose=None):
        """Mozilla's CA certificates (the host's copy, as certifi ships them)."""
        self._eryx_settings["default_roots"] = True

    def set_default_verify_paths(self):
        """Mozilla's CA certificates (the host's copy, as certifi ships them)."""
        self._eryx_settings["default_roots"] = True

    def load_dh_params(self, path):
        with open(path, "rb"):
            pass

    def set_ecdh_curve(self, name):
        if not isinstance(name, (str, bytes)):
            raise TypeError("curve name must be str or bytes")

    def set_ciphers(self, ciphers):
        if not isinstance(ciphers, str):
            raise TypeError("ciphers must be a str")
        self._eryx_settings["ciphers"] = ciphers

    def get_ciphers(self):
        return []

    def _set_alpn_protocols(self, protos):
        self._eryx_settings["alpn"] = bytes(protos)

    def _set_npn_protocols(self, protos):
        self._eryx_settings["npn"] = bytes(protos)

    def cert_store_stats(self):
        n = self._eryx_settings["ca_certs"]
        return {"x509": n, "crl": 0, "x509_ca": n}

    def get_ca_certs(self, binary_form=False):
        return []

    def session_stats(self):
        keys = ("number", "connect", "connect_good", "connect_renegotiate", "accept",
                "accept_good", "accept_renegotiate", "hits", "misses", "timeouts",
                "cache_full")
        return dict.fromkeys(keys, 0)

    def _wrap_socket(self, sock, server_side, server_hostname=None, owner=None, session=None):
        return _SSLSocket(self, sock, None, server_side, server_hostname, owner, session)

    def _wrap_bio(self, incoming, outgoing, server_side, server_hostname=None, owner=None,
                  session=None):
        return _SSLSocket(self, None, (incoming, outgoing), server_side, server_hostname, owner,
                          session)
