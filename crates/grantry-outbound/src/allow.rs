//! The outbound allow-list: which destinations Grantry may call.
//!
//! Entries are host names (`hooks.example.com`, any port), `host:port` (that port only) and
//! CIDR ranges (`127.0.0.0/8`, `fd00::/8`, a bare address is a /32 or /128). A destination
//! is allowed when its host is listed (with its port, for `host:port` entries), or when
//! every address its name resolves to is either in a listed range or public. Loopback,
//! private, link-local, shared (CGNAT), unspecified, multicast and the like are refused
//! unless listed, so a callout cannot be pointed at internal services. The check is on the
//! resolved addresses, and the connection goes to the addresses checked (no second lookup).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Host(String),
    HostPort(String, u16),
    Range(IpNet),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

/// Why a destination may not be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AllowList {
    /// Parses a comma- or whitespace-separated list.
    pub fn parse(text: &str) -> Result<AllowList, String> {
        let mut entries = Vec::new();
        for item in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()) {
            entries.push(parse_entry(item)?);
        }
        Ok(AllowList { entries })
    }

    pub fn from_items<S: AsRef<str>>(items: &[S]) -> Result<AllowList, String> {
        let mut entries = Vec::new();
        for item in items {
            entries.push(parse_entry(item.as_ref().trim())?);
        }
        Ok(AllowList { entries })
    }

    /// This list with `host:port` added (a destination the operator named elsewhere, such
    /// as a trusted token issuer).
    pub fn with_host_port(mut self, host: &str, port: u16) -> AllowList {
        self.entries
            .push(Entry::HostPort(host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(), port));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `host` (lower-case, IPv6 without brackets) on `port` is listed by name.
    pub fn lists_host(&self, host: &str, port: u16) -> bool {
        self.entries.iter().any(|e| match e {
            Entry::Host(h) => h == host,
            Entry::HostPort(h, p) => h == host && *p == port,
            Entry::Range(_) => false,
        })
    }

    /// Whether `ip` may be connected to: in a listed range, or public.
    pub fn allows_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if self.entries.iter().any(|e| matches!(e, Entry::Range(net) if net.contains(&ip))) {
            return Ok(());
        }
        match internal_reason(ip) {
            None => Ok(()),
            Some(why) => Err(Refusal(format!(
                "{ip} is a {why} address; list it (or its range) in --outbound-allow / GRANTRY_OUTBOUND_ALLOW to call it"
            ))),
        }
    }

    /// Checks `host:port` and the addresses it resolved to; all must be allowed.
    pub fn check(&self, host: &str, port: u16, resolved: &[SocketAddr]) -> Result<(), Refusal> {
        if self.lists_host(host, port) {
            return Ok(());
        }
        if resolved.is_empty() {
            return Err(Refusal(format!("{host} resolves to no address")));
        }
        for addr in resolved {
            self.allows_address(addr.ip()).map_err(|r| Refusal(format!("{host}: {r}")))?;
        }
        Ok(())
    }
}

fn parse_entry(item: &str) -> Result<Entry, String> {
    let lower = item.to_ascii_lowercase();
    if lower.contains('/') {
        return lower.parse::<IpNet>().map(Entry::Range).map_err(|_| format!("'{item}' is not a valid CIDR range"));
    }
    if let Ok(ip) = lower.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(Entry::Range(IpNet::from(ip)));
    }
    // `host:port`, or `[v6]:port`.
    if let Some((host, port)) = lower.rsplit_once(':') {
        let port: u16 = port.parse().map_err(|_| format!("'{item}' has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("'{item}' has no host"));
        }
        return Ok(Entry::HostPort(host.to_string(), port));
    }
    if lower.is_empty() || lower.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')) {
        return Err(format!("'{item}' is not a host name, host:port or CIDR range"));
    }
    Ok(Entry::Host(lower.trim_end_matches('.').to_string()))
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Why `ip` is not a public address, if it is not.
fn internal_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignment")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique local (private)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 could reach any IPv4 address, including internal ones.
        Some("NAT64")
    } else if s[0] == 0x2002 {
        Some("6to4")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 443)
    }

    #[test]
    fn internal_addresses_are_refused_unless_listed() {
        let none = AllowList::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(none.check("h", 443, &[addr(ip)]).is_err(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"] {
            assert!(none.check("h", 443, &[addr(ip)]).is_ok(), "{ip}");
        }
        // One bad address among good ones refuses the name.
        assert!(none.check("h", 443, &[addr("8.8.8.8"), addr("10.0.0.1")]).is_err());
        assert!(none.check("h", 443, &[]).is_err());
    }

    #[test]
    fn entries_allow_names_ports_and_ranges() {
        let list = AllowList::parse("127.0.0.0/8, hooks.internal  receiver.local:9000 ::1 [fd00::5]:8443").unwrap();
        assert!(list.check("x", 1, &[addr("127.0.0.2")]).is_ok());
        assert!(list.check("x", 1, &[addr("::1")]).is_ok());
        assert!(list.check("hooks.internal", 1234, &[addr("10.0.0.1")]).is_ok());
        assert!(list.check("receiver.local", 9000, &[addr("10.0.0.1")]).is_ok());
        assert!(list.check("receiver.local", 9001, &[addr("10.0.0.1")]).is_err());
        assert!(list.check("fd00::5", 8443, &[addr("fd00::5")]).is_ok());
        assert!(list.check("x", 1, &[addr("10.0.0.1")]).is_err());
        for bad in ["10.0.0.0/33", "host:port", "a b/c", "exa$mple"] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }
}
