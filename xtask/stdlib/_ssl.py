"""`_ssl` for the eryx sandbox: the `ssl` module's configuration objects,
without TLS.

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
keep each other consistent, certificate files must exist). Starting TLS on
a socket or a BIO raises `SSLError` saying that TLS is not available here.
"""

import os as _os

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
        f"{what}: TLS is not available in the eryx sandbox (its CPython has no "
        "OpenSSL, and the sandbox has no network); the ssl module only "
        "configures contexts here",
    )
    err.library, err.reason = "eryx", "NO_TLS"
    return err


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

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        """Reads CA certificates (they are counted; nothing verifies here)."""
        if cafile is None and capath is None and cadata is None:
            raise TypeError("cafile, capath and cadata cannot be all omitted")
        if cafile is not None:
            with open(cafile, "rb") as f:
                self._eryx_settings["ca_certs"] += f.read().count(b"-----BEGIN CERTIFICATE-----")
        if capath is not None and not _os.path.isdir(capath):
            raise FileNotFoundError(2, "No such file or directory", capath)
        if cadata is not None:
            if isinstance(cadata, str):
                self._eryx_settings["ca_certs"] += cadata.count("-----BEGIN CERTIFICATE-----")
            else:
                self._eryx_settings["ca_certs"] += 1

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        """Checks that the files can be read (no key is ever used here)."""
        for path in (certfile, keyfile):
            if path is not None:
                with open(path, "rb"):
                    pass

    def load_default_certs(self, purpose=None):
        """Nothing to load: the sandbox has no system certificates."""

    def set_default_verify_paths(self):
        """Nothing to set: the sandbox has no system certificates."""

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

    def _wrap_socket(self, sock, server_side, server_hostname=None, *args, **kwargs):
        raise _no_tls(f"TLS on a socket to {server_hostname or 'a peer'}")

    def _wrap_bio(self, incoming, outgoing, server_side, server_hostname=None, *args, **kwargs):
        raise _no_tls("TLS over a memory BIO")
