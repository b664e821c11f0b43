//! Who is the client: the peer address, or behind trusted proxies the rightmost
//! `X-Forwarded-For` address that is not a trusted proxy, and whether the client's
//! connection is HTTPS.
//!
//! ```
//! use rampart_layers::client_ip::TrustedProxies;
//! let proxies = TrustedProxies::parse("10.0.0.0/8, ::1/128").unwrap();
//! assert!(proxies.contains("10.1.2.3".parse().unwrap()));
//! ```
//!
//! The server inserts a [`ConnectionInfo`] extension on every request (or axum's
//! `ConnectInfo<SocketAddr>`, with `into_make_service_with_connect_info`, for plain TCP);
//! [`ClientIpLayer`] turns it into a [`ClientIp`] extension that later layers (logs, HSTS,
//! rate limits) read.
//!
//! # Security
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the peer is a trusted
//! proxy; from anyone else they are ignored, so a client cannot pick its own rate-limit key.
//! IPv4-mapped IPv6 addresses count as IPv4, and other IPv6 clients are keyed by their /64,
//! the block one subscriber usually controls.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, Request};
use ipnet::IpNet;
use tower::{Layer, Service};

/// Facts about the connection a request arrived on, inserted by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// The resolved client of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    /// The client's address (IPv4-mapped addresses as IPv4).
    pub ip: IpAddr,
    /// Whether the client's own connection is HTTPS (TLS here, or a trusted proxy said so).
    pub https: bool,
}

impl ClientIp {
    /// The key a per-client limit uses: the IPv4 address, or the IPv6 /64 prefix.
    pub fn key(&self) -> IpAddr {
        match self.ip {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

/// An error in a trusted-proxy list.
#[derive(Debug, thiserror::Error)]
#[error("not a CIDR or IP address: {0}")]
pub struct InvalidProxy(String);

/// The CIDRs whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Parse a comma-separated list of CIDRs or single addresses; empty means none.
    pub fn parse(list: &str) -> Result<Self, InvalidProxy> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| InvalidProxy(item.to_owned()))?,
            };
            nets.push(net);
        }
        Ok(Self(Arc::new(nets)))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// Whether `ip` belongs to a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Resolve the client of a request that arrived from `conn` with `headers`.
    pub fn resolve(&self, conn: &ConnectionInfo, headers: &HeaderMap) -> ClientIp {
        let peer = conn.peer.ip().to_canonical();
        if !self.contains(peer) {
            return ClientIp {
                ip: peer,
                https: conn.tls,
            };
        }
        // Walk the hops from the nearest to the farthest; the first one that is not a
        // trusted proxy is the client. An unparsable hop ends the walk: everything to its
        // left may be forged, so the last trusted hop stands in for the client.
        let mut client = peer;
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.contains(ip) => client = ip,
                Some(ip) => {
                    client = ip;
                    break;
                }
                None => break,
            }
        }
        let forwarded_https = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        ClientIp {
            ip: client,
            https: conn.tls || forwarded_https,
        }
    }
}

/// An `X-Forwarded-For` hop: a bare address, `[v6]`, `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = hop.parse::<SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
}

/// Inserts [`ClientIp`] from [`ConnectionInfo`] and the trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct ClientIpLayer {
    proxies: TrustedProxies,
}

impl ClientIpLayer {
    /// A layer believing forwarding headers from `proxies` only.
    pub fn new(proxies: TrustedProxies) -> Self {
        Self { proxies }
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService {
            inner,
            proxies: self.proxies.clone(),
        }
    }
}

/// Service of [`ClientIpLayer`].
#[derive(Debug, Clone)]
pub struct ClientIpService<S> {
    inner: S,
    proxies: TrustedProxies,
}

impl<S, B> Service<Request<B>> for ClientIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Connection facts from the server, or the peer axum's `serve` records (plain
        // TCP). Without either (a test calling the service directly) the client is the
        // unspecified address: it still gets a key, it just shares it.
        let extensions = req.extensions();
        let conn = extensions
            .get::<ConnectionInfo>()
            .copied()
            .or_else(|| {
                extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|peer| ConnectionInfo {
                        peer: peer.0,
                        tls: false,
                    })
            })
            .unwrap_or(ConnectionInfo {
                peer: SocketAddr::from(([0, 0, 0, 0], 0)),
                tls: false,
            });
        let client = self.proxies.resolve(&conn, req.headers());
        req.extensions_mut().insert(client);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn conn(peer: &str) -> ConnectionInfo {
        ConnectionInfo {
            peer: SocketAddr::new(peer.parse().unwrap(), 1234),
            tls: false,
        }
    }

    fn headers(xff: &str, proto: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    #[test]
    fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let client = proxies.resolve(&conn("203.0.113.9"), &headers("1.2.3.4", Some("https")));
        assert_eq!(client.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!client.https);
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers("6.6.6.6, 198.51.100.7, 10.0.0.2", Some("https"));
        let client = proxies.resolve(&conn("10.0.0.1"), &h);
        assert_eq!(client.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(client.https);
    }

    #[test]
    fn an_unparsable_hop_stops_the_walk_at_the_last_trusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let client = proxies.resolve(&conn("10.0.0.1"), &headers("1.1.1.1, garbage", None));
        assert_eq!(client.ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4_and_ipv6_is_keyed_by_its_64() {
        let none = TrustedProxies::default();
        let mapped = none.resolve(&conn("::ffff:192.0.2.1"), &HeaderMap::new());
        assert_eq!(mapped.key(), "192.0.2.1".parse::<IpAddr>().unwrap());
        let a = none.resolve(&conn("2001:db8:1:2:aaaa::1"), &HeaderMap::new());
        let b = none.resolve(&conn("2001:db8:1:2:ffff::9"), &HeaderMap::new());
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("example.com").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_layer_keeps_the_inner_services_readiness() {
        crate::test_support::serves_within_one_permit(
            ClientIpLayer::new(TrustedProxies::default()),
            || Request::new(axum::body::Body::empty()),
            http::StatusCode::OK,
            true,
        )
        .await;
    }

    #[tokio::test]
    async fn the_layer_resolves_the_client_from_connection_facts_alone() {
        use tower::{ServiceExt, service_fn};
        let svc = ClientIpLayer::new(TrustedProxies::parse("10.0.0.0/8").unwrap()).layer(
            service_fn(|req: Request<()>| async move {
                Ok::<_, std::convert::Infallible>(req.extensions().get::<ClientIp>().copied())
            }),
        );
        let mut req = Request::new(());
        req.extensions_mut().insert(conn("203.0.113.9"));
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        let client = svc.clone().oneshot(req).await.unwrap().unwrap();
        assert_eq!(client.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        // axum's peer address serves when the server records nothing else.
        let mut req = Request::new(());
        let peer = SocketAddr::new("198.51.100.3".parse().unwrap(), 5555);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let client = svc.oneshot(req).await.unwrap().unwrap();
        assert_eq!(client.ip, peer.ip());
        assert!(!client.https);
    }
}
