//! `NO_PROXY` as curl reads it: host names and their subdomains, `*`, IP addresses and CIDR
//! ranges, each with or without a port.

use super::split_host_port;
use std::net::IpAddr;

/// The `NO_PROXY` entry that names `host:port`, if any (rule 3 of [`route`](super::rules::route)).
pub fn no_proxy_match(list: &str, host: &str, port: u16) -> Option<String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .find(|entry| no_proxy_entry_matches(entry, &host, host_ip, port))
        .map(str::to_owned)
}

fn no_proxy_entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = match split_host_port(entry) {
        Some((h, p)) => (h, p),
        None => (entry, None),
    };
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    // CIDR: `10.0.0.0/8`, `fd00::/8`.
    if let Some((net, bits)) = pattern.split_once('/') {
        let (Ok(net), Ok(bits), Some(ip)) = (net.parse::<IpAddr>(), bits.parse::<u32>(), host_ip)
        else {
            return false;
        };
        return in_cidr(ip, net, bits);
    }
    if let Ok(ip) = pattern.parse::<IpAddr>() {
        return host_ip == Some(ip);
    }
    if host_ip.is_some() {
        return false;
    }
    let pattern = pattern.trim_start_matches('*').trim_start_matches('.');
    let pattern = pattern
        .strip_suffix('.')
        .unwrap_or(pattern)
        .to_ascii_lowercase();
    if pattern.is_empty() {
        return false;
    }
    host == pattern
        || (host.len() > pattern.len()
            && host.ends_with(&pattern)
            && host.as_bytes()[host.len() - pattern.len() - 1] == b'.')
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_as_curl_reads_it() {
        let m = |list: &str, host: &str, port: u16| no_proxy_match(list, host, port).is_some();
        assert!(m("*", "a.b", 443));
        assert!(m("example.com", "example.com", 443));
        assert!(m("example.com", "a.example.com", 443));
        assert!(m(".example.com", "example.com", 443));
        assert!(m(".example.com", "x.y.example.com", 443));
        assert!(m("*.example.com", "x.example.com", 443));
        assert!(!m("example.com", "badexample.com", 443));
        assert!(!m("a.example.com", "example.com", 443));
        assert!(m(" other , Example.COM ", "example.com", 443));
        assert!(m("example.com:443", "example.com", 443));
        assert!(!m("example.com:8443", "example.com", 443));
        assert!(m("10.1.2.3", "10.1.2.3", 443));
        assert!(!m("10.1.2.3", "10.1.2.4", 443));
        assert!(m("10.0.0.0/8", "10.1.2.4", 443));
        assert!(!m("10.0.0.0/8", "11.1.2.4", 443));
        assert!(m("::2", "::2", 443));
        assert!(m("[::2]", "[::2]", 443));
        assert!(m("[::2]:443", "::2", 443));
        assert!(m("fd00::/8", "fd12::1", 443));
        assert!(!m("", "example.com", 443));
        assert!(!m("10.1.2.3", "example.com", 443));
    }
}
