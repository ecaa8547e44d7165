//! Opt-in network egress: TCP connections to the hosts on an allow-list.
//!
//! A sandbox has no network by default. [`crate::SandboxBuilder::allow_net`]
//! (`eryx --allow-net HOST[:PORT]`) names hosts the guest may connect to;
//! with at least one, the guest's TCP sockets are switched on and every
//! connection goes through [`NetPolicy::permits`]:
//!
//! - names are resolved by the host, never by the guest: WASI's name
//!   lookup stays off (a lookup of any name would leak data through DNS),
//!   and the guest's `getaddrinfo` asks the host with a reserved host call
//!   ([`LOOKUP_CALL`]), which resolves only names on the list and records
//!   the addresses they resolved to;
//! - a connection is let through when its address is an IP literal on the
//!   list, or an address a listed name resolved to in this sandbox, and its
//!   port is the rule's (or the rule has none);
//! - nothing else: no listening sockets, no UDP, no implicit bind to a
//!   chosen address.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime_wasi::sockets::SocketAddrUse;

use crate::world::HostError;

/// The reserved host call that resolves a name: arguments `HOST\nPORT`
/// (`PORT` empty when the caller gave none); answer the addresses, one per
/// line.
pub(crate) const LOOKUP_CALL: &str = "\0lookup";

/// The reserved host call that explains a refused connection: arguments
/// the address as the guest gave it (`HOST PORT`); answer the message.
pub(crate) const REFUSED_CALL: &str = "\0refused";

/// Addresses one sandbox's lookups may record (a `*.DOMAIN` entry lets the
/// guest ask for any number of names).
const MAX_RESOLVED: usize = 4096;

/// What a rule's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// One name (lower case, no trailing dot).
    Name(String),
    /// Every name below a domain (`*.example.com`: `.example.com`), not the
    /// domain itself.
    Below(String),
    /// One address.
    Ip(IpAddr),
}

/// One entry of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: HostPattern,
    /// `None`: every port.
    port: Option<u16>,
}

impl Rule {
    /// Parses `HOST`, `HOST:PORT`, `*.DOMAIN[:PORT]`, `IPv4[:PORT]`,
    /// `IPv6` or `[IPv6]:PORT`.
    fn parse(entry: &str) -> Result<Rule, String> {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err("it is empty; give HOST or HOST:PORT".into());
        }
        if entry.contains("://") || entry.contains('/') {
            return Err("give a host and port (`example.com:443`), not a URL".into());
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return Ok(Rule {
                host: HostPattern::Ip(ip.to_canonical()),
                port: None,
            });
        }
        if let Ok(addr) = entry.parse::<SocketAddr>() {
            return Ok(Rule {
                host: HostPattern::Ip(addr.ip().to_canonical()),
                port: Some(port_of(addr.port())?),
            });
        }
        if entry.starts_with('[') {
            return Err("not an IPv6 address in brackets followed by `:PORT`".into());
        }
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("`{port}` is not a port number (1-65535)"))?;
                (host, Some(port_of(port)?))
            }
            None => (entry, None),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let (pattern, name) = match host.strip_prefix("*.") {
            Some(domain) => (HostPattern::Below(format!(".{domain}")), domain),
            None => (HostPattern::Name(host.clone()), host.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "`{name}` is not a host name (letters, digits, `-` and `.`; `*.` only as the \
                 first label; non-ASCII names in their `xn--` form)"
            ));
        }
        Ok(Rule {
            host: pattern,
            port,
        })
    }

    /// Whether this rule lets the name `host` be resolved (for `port`, if
    /// the caller gave one).
    fn names(&self, host: &str, port: Option<u16>) -> bool {
        let host_ok = match &self.host {
            HostPattern::Name(name) => name == host,
            HostPattern::Below(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::Ip(_) => false,
        };
        host_ok && port_ok(self.port, port)
    }
}

fn port_of(port: u16) -> Result<u16, String> {
    if port == 0 {
        return Err("port 0 is not a port to connect to".into());
    }
    Ok(port)
}

/// Whether a rule's port lets `port` through (an unknown port, as a
/// lookup without one, passes: the connection is checked again).
fn port_ok(rule: Option<u16>, port: Option<u16>) -> bool {
    match (rule, port) {
        (None, _) | (_, None) => true,
        (Some(r), Some(p)) => r == p,
    }
}

/// A sandbox's allow-list and the addresses its names resolved to.
#[derive(Debug)]
pub(crate) struct NetPolicy {
    rules: Vec<Rule>,
    /// The entries as given, for messages.
    entries: Vec<String>,
    /// Addresses listed names resolved to, with the port of the rule that
    /// let the name through (`None`: every port).
    resolved: Mutex<HashSet<(IpAddr, Option<u16>)>>,
}

impl NetPolicy {
    /// The policy of these allow-list entries (see [`Rule::parse`]); the
    /// error names the entry and what is wrong with it.
    pub(crate) fn new(entries: &[String]) -> Result<NetPolicy, crate::Error> {
        let rules = entries
            .iter()
            .map(|e| {
                Rule::parse(e).map_err(|reason| crate::Error::BadNetwork {
                    entry: e.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NetPolicy {
            rules,
            entries: entries.to_vec(),
            resolved: Mutex::default(),
        })
    }

    fn resolved(&self) -> std::sync::MutexGuard<'_, HashSet<(IpAddr, Option<u16>)>> {
        // A panic while holding the set leaves it consistent (inserts only).
        self.resolved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the guest may use `addr` this way.
    pub(crate) fn permits(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let ip = addr.ip().to_canonical();
        match usage {
            SocketAddrUse::TcpConnect => {
                let port = addr.port();
                self.rules
                    .iter()
                    .any(|r| r.host == HostPattern::Ip(ip) && port_ok(r.port, Some(port)))
                    || {
                        let resolved = self.resolved();
                        resolved.contains(&(ip, Some(port))) || resolved.contains(&(ip, None))
                    }
            }
            // The implicit bind of `connect` (to the wildcard address, the
            // port left to the system): an explicit bind to a chosen
            // address or port is refused.
            SocketAddrUse::TcpBind => ip.is_unspecified() && addr.port() == 0,
            _ => false,
        }
    }

    /// Answers the guest's [`REFUSED_CALL`]: why a connection to
    /// `HOST PORT` was refused.
    pub(crate) fn refused(&self, arguments: &str) -> String {
        let (host, port) = arguments.rsplit_once(' ').unwrap_or((arguments, ""));
        let shown = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        format!(
            "{shown} is not on this sandbox's network allow-list ({}), nor an address a name on \
             it resolved to; the host can add it (`SandboxBuilder::allow_net`, `eryx \
             --allow-net HOST:PORT`)",
            self.entries.join(", ")
        )
    }

    /// Answers the guest's [`LOOKUP_CALL`]: the addresses of a listed
    /// name, one per line, recorded as ones the guest may connect to. The
    /// error is the guest's `HostError`: kind `denied` (not on the list)
    /// or `unresolved` (no such name), and the message.
    pub(crate) async fn lookup(self: Arc<NetPolicy>, arguments: &str) -> Result<String, HostError> {
        let (host, port) = arguments.split_once('\n').unwrap_or((arguments, ""));
        let port: Option<u16> = port.parse().ok().filter(|p| *p != 0);
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let Some(rule) = self.rules.iter().find(|r| r.names(&name, port)) else {
            let what = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            return Err(HostError {
                kind: "denied".into(),
                message: format!(
                    "{what} is not on this sandbox's network allow-list ({}); the host can add \
                     it (`SandboxBuilder::allow_net`, `eryx --allow-net HOST:PORT`)",
                    self.entries.join(", ")
                ),
            });
        };
        let allowed_port = rule.port;
        if self.resolved().len() >= MAX_RESOLVED {
            return Err(HostError {
                kind: "denied".into(),
                message: format!(
                    "this sandbox resolved {MAX_RESOLVED} addresses already (the limit); \
                     looking up {host} was refused"
                ),
            });
        }
        let found = tokio::net::lookup_host((name.as_str(), port.unwrap_or(0)))
            .await
            .map_err(|e| HostError {
                kind: "unresolved".into(),
                message: format!("cannot resolve {host}: {e}"),
            })?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for addr in found {
            let ip = addr.ip().to_canonical();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let mut resolved = self.resolved();
        for ip in &ips {
            resolved.insert((*ip, allowed_port));
        }
        drop(resolved);
        Ok(ips
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> NetPolicy {
        NetPolicy::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_parse_or_say_what_is_wrong() {
        let ok = [
            ("example.com", HostPattern::Name("example.com".into()), None),
            (
                "Example.COM.:443",
                HostPattern::Name("example.com".into()),
                Some(443),
            ),
            (
                "*.example.com:80",
                HostPattern::Below(".example.com".into()),
                Some(80),
            ),
            (
                "10.0.0.1",
                HostPattern::Ip("10.0.0.1".parse().unwrap()),
                None,
            ),
            (
                "10.0.0.1:8080",
                HostPattern::Ip("10.0.0.1".parse().unwrap()),
                Some(8080),
            ),
            ("::1", HostPattern::Ip("::1".parse().unwrap()), None),
            (
                "[::1]:8443",
                HostPattern::Ip("::1".parse().unwrap()),
                Some(8443),
            ),
        ];
        for (entry, host, port) in ok {
            assert_eq!(Rule::parse(entry), Ok(Rule { host, port }), "{entry}");
        }
        let bad = [
            ("", "empty"),
            ("https://example.com", "not a URL"),
            ("example.com:http", "`http` is not a port number"),
            ("example.com:0", "port 0"),
            ("exa mple.com", "`exa mple.com` is not a host name"),
            ("*.", "is not a host name"),
            ("a.*.com", "is not a host name"),
            ("[::1]", "IPv6 address in brackets"),
        ];
        for (entry, says) in bad {
            let err = Rule::parse(entry).unwrap_err();
            assert!(err.contains(says), "{entry}: {err}");
        }
        let err = NetPolicy::new(&["ok.com".into(), "x:y".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot allow network access to \"x:y\": `y` is not a port number (1-65535)"
        );
    }

    #[test]
    fn connections_need_a_listed_address_and_port() {
        let p = policy(&["10.0.0.1:443", "192.168.1.9", "::1:8080"]);
        let connect = SocketAddrUse::TcpConnect;
        assert!(p.permits(addr("10.0.0.1:443"), connect));
        assert!(!p.permits(addr("10.0.0.1:80"), connect));
        assert!(p.permits(addr("192.168.1.9:22"), connect));
        assert!(!p.permits(addr("10.0.0.2:443"), connect));
        // An IPv4 address written as IPv4-mapped IPv6 is the same address.
        assert!(p.permits(addr("[::ffff:10.0.0.1]:443"), connect));
        // `::1:8080` is an IPv6 address, on every port.
        assert!(p.permits(addr("[::1:8080]:1"), connect));
        assert!(!p.permits(addr("[::1]:8080"), connect));
        // Only the implicit bind of a connect; no listening, no UDP.
        assert!(p.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(p.permits(addr("[::]:0"), SocketAddrUse::TcpBind));
        assert!(!p.permits(addr("0.0.0.0:8000"), SocketAddrUse::TcpBind));
        assert!(!p.permits(addr("10.0.0.1:0"), SocketAddrUse::TcpBind));
        assert!(!p.permits(addr("0.0.0.0:0"), SocketAddrUse::TcpListen));
        assert!(!p.permits(addr("10.0.0.1:443"), SocketAddrUse::UdpSend));
    }

    #[tokio::test]
    async fn lookups_resolve_listed_names_only() {
        let p = Arc::new(policy(&["localhost:8080", "*.invalid"]));
        let connect = SocketAddrUse::TcpConnect;
        assert!(!p.permits(addr("127.0.0.1:8080"), connect));
        let ips = p.clone().lookup("LocalHost\n8080").await.unwrap();
        assert!(ips.lines().any(|l| l == "127.0.0.1"), "{ips}");
        assert!(p.permits(addr("127.0.0.1:8080"), connect));
        assert!(!p.permits(addr("127.0.0.1:8081"), connect));
        let err = p
            .clone()
            .lookup("localhost\n8081")
            .await
            .unwrap_err()
            .message;
        assert!(
            err.starts_with(
                "localhost:8081 is not on this sandbox's network allow-list \
                 (localhost:8080, *.invalid)"
            ),
            "{err}"
        );
        let err = p.clone().lookup("example.com\n").await.unwrap_err();
        assert_eq!(err.kind, "denied");
        let err = err.message;
        assert!(err.starts_with("example.com is not on"), "{err}");
        // A full record of addresses refuses further lookups.
        {
            let mut resolved = p.resolved();
            for i in 0..MAX_RESOLVED as u32 {
                resolved.insert((IpAddr::from(i.to_be_bytes()), None));
            }
        }
        let err = p.clone().lookup("localhost\n8080").await.unwrap_err();
        assert_eq!(
            (err.kind.as_str(), err.message.as_str()),
            (
                "denied",
                "this sandbox resolved 4096 addresses already (the limit); looking up \
                 localhost was refused"
            )
        );
        p.resolved().clear();
        // Listed, but no such name (`.invalid` never resolves).
        let err = p.clone().lookup("nothing.invalid\n443").await.unwrap_err();
        assert_eq!(err.kind, "unresolved");
        let err = err.message;
        assert!(err.starts_with("cannot resolve nothing.invalid: "), "{err}");
    }
}
