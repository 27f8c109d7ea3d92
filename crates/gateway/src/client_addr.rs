//! Who is calling: the client's address behind the reverse proxies the operator names.
//!
//! The rule is nginx's `real_ip_recursive on`: start from the socket's peer; while the
//! address in hand is a trusted proxy, step one entry left in the forwarding header. The
//! first address that is not a trusted proxy is the client. Proxies *append* the address
//! they saw, so everything left of the last trusted hop was written by the client and is
//! never believed. Only the one header the operator names is read: a proxy that sets
//! `Forwarded` does not strip a client's own `X-Forwarded-For`, and the other way round.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The header the trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx `$proxy_add_x_forwarded_for`, HAProxy
    /// `option forwardfor`).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"` (HAProxy `option
    /// forwarded`).
    Forwarded,
}

/// The proxies in front of the gateway.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    pub networks: Vec<IpNet>,
    pub header: ForwardedHeader,
}

impl TrustedProxies {
    /// Whether `ip` is one of the operator's proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request that arrived from `peer` with `headers`.
    pub fn client(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in self.hops(headers).iter().rev() {
            // A hop that is not an address (garbage, `unknown`, an obfuscated name) ends
            // the walk: nothing further left can be vouched for.
            let Some(ip) = parse_hop(entry, self.header) else {
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }

    /// The header's entries, left to right; several header lines count as one list.
    fn hops<'a>(&self, headers: &'a HeaderMap) -> Vec<&'a str> {
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut hops = Vec::new();
        for value in headers.get_all(name) {
            // A value that is not visible ASCII is one unreadable hop, so the walk stops there.
            match value.to_str() {
                Ok(v) => hops.extend(v.split(',').map(str::trim)),
                Err(_) => hops.push(""),
            }
        }
        hops
    }
}

/// The address of one hop of the header.
fn parse_hop(entry: &str, header: ForwardedHeader) -> Option<IpAddr> {
    match header {
        ForwardedHeader::XForwardedFor => parse_node(entry),
        ForwardedHeader::Forwarded => entry
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
            .and_then(|(_, v)| parse_node(v.trim().trim_matches('"'))),
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(node) {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, port) = rest.split_once(']')?;
        return (port.is_empty() || port.strip_prefix(':').is_some_and(is_port))
            .then(|| ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
            .flatten();
    }
    SocketAddr::from_str(node).ok().map(|s| s.ip())
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// An IPv4 address written as IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports)
/// is that IPv4 address: one client, one key, whatever the socket.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The key an address's limits and failures are kept under: the address itself for IPv4,
/// its /64 for IPv6 — one subscriber gets a whole /64, so counting single IPv6 addresses
/// would give every client 2^64 fresh starts.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            header,
        }
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_forged_left_most_address_is_ignored_behind_an_appending_proxy() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The attacker at 198.51.100.7 sent `X-Forwarded-For: 192.0.2.50`; nginx appended
        // the address it saw.
        let h = headers("x-forwarded-for", &["192.0.2.50, 198.51.100.7"]);
        assert_eq!(p.client(&h, ip("10.0.0.2")), ip("198.51.100.7"));
    }

    #[test]
    fn several_trusted_hops_are_walked_right_to_left() {
        let p = proxies(
            &["10.0.0.0/8", "172.16.0.1/32"],
            ForwardedHeader::XForwardedFor,
        );
        let h = headers(
            "x-forwarded-for",
            &["203.0.113.9, 198.51.100.7", "172.16.0.1"],
        );
        assert_eq!(p.client(&h, ip("10.1.2.3")), ip("198.51.100.7"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["192.0.2.50"]);
        assert_eq!(p.client(&h, ip("198.51.100.7")), ip("198.51.100.7"));
        let none = TrustedProxies::default();
        assert_eq!(none.client(&h, ip("10.0.0.2")), ip("10.0.0.2"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_address_vouched_for() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["192.0.2.50, not-an-ip, 10.0.0.7"]);
        assert_eq!(p.client(&h, ip("10.0.0.2")), ip("10.0.0.7"));
        // Only trusted hops and nothing else: the left-most of them.
        let h = headers("x-forwarded-for", &["10.0.0.9"]);
        assert_eq!(p.client(&h, ip("10.0.0.2")), ip("10.0.0.9"));
        // No header at all: the proxy itself.
        assert_eq!(p.client(&HeaderMap::new(), ip("10.0.0.2")), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_is_read_only_when_named() {
        let h = {
            let mut h = headers("x-forwarded-for", &["192.0.2.50"]);
            h.append(
                "forwarded",
                HeaderValue::from_static(
                    "for=192.0.2.50;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.2",
                ),
            );
            h
        };
        let fwd = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        assert_eq!(fwd.client(&h, ip("10.0.0.2")), ip("2001:db8:cafe::17"));
        let xff = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(xff.client(&h, ip("10.0.0.2")), ip("192.0.2.50"));
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(fwd.client(&h, ip("10.0.0.2")), ip("10.0.0.2"));
    }

    #[test]
    fn nodes_with_ports_and_brackets_parse() {
        assert_eq!(parse_node("192.0.2.1:80"), Some(ip("192.0.2.1")));
        assert_eq!(parse_node("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("[2001:db8::1]:x"), None);
        assert_eq!(parse_node("[192.0.2.1]"), None);
        assert_eq!(parse_node("_hidden"), None);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
