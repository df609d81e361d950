//! Which client a query is routed for: the EDNS Client Subnet (RFC 7871) when one is
//! present, allowed and well formed; otherwise the resolver's own address.

use std::net::IpAddr;

use hickory_proto::rr::rdata::opt::ClientSubnet;
use ipnet::IpNet;

use super::wire;

/// The client a query is routed for: the one name for it on the DNS path. (Routing's
/// `routing::Client` is the same client with its GeoIP lookup attached.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: IpAddr,
    /// Leading bits of `addr` that are meaningful.
    pub prefix: u8,
    /// The ECS option to echo (with the scope filled in later), if the query had one we use.
    pub ecs: Option<ClientSubnet>,
}

/// Why an ECS option is malformed (the query gets FORMERR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("more than one client subnet option")]
    Duplicate,
    #[error("client subnet option shorter than its fixed part")]
    Short,
    #[error("unknown address family {0}")]
    Family(u16),
    #[error("source prefix longer than the address")]
    SourceTooLong,
    #[error("non-zero scope prefix in a query")]
    ScopeInQuery,
    #[error("address length does not match the source prefix")]
    AddressLength,
    #[error("address bits set beyond the source prefix")]
    HostBits,
}

/// ECS handling settings, borrowed from `[server]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EcsPolicy<'a> {
    pub enabled: bool,
    /// Resolvers whose ECS is used; empty: all.
    pub trusted: &'a [IpNet],
}

fn full(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Parses and validates one ECS option's data, per RFC 7871 section 6.
pub fn parse(data: &[u8]) -> Result<ClientSubnet, EcsError> {
    if data.len() < 4 {
        return Err(EcsError::Short);
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let (source, scope, addr) = (data[2], data[3], &data[4..]);
    let width: u8 = match family {
        1 => 32,
        2 => 128,
        other => return Err(EcsError::Family(other)),
    };
    if source > width {
        return Err(EcsError::SourceTooLong);
    }
    if scope != 0 {
        return Err(EcsError::ScopeInQuery);
    }
    if addr.len() != source.div_ceil(8) as usize {
        return Err(EcsError::AddressLength);
    }
    if source % 8 != 0 && addr.last().is_some_and(|b| b & (0xFF >> (source % 8)) != 0) {
        return Err(EcsError::HostBits);
    }
    let ip = if family == 1 {
        let mut o = [0u8; 4];
        o[..addr.len()].copy_from_slice(addr);
        IpAddr::from(o)
    } else {
        let mut o = [0u8; 16];
        o[..addr.len()].copy_from_slice(addr);
        IpAddr::from(o)
    };
    Ok(ClientSubnet::new(ip, source, 0))
}

/// Picks the routing client for a query from `src`, given its OPT record's options
/// (`wire::opt`), if it has one.
pub fn from_query(src: IpAddr, options: Option<&[u8]>, policy: EcsPolicy<'_>) -> Result<Client, EcsError> {
    let src = match src {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(src, IpAddr::V4),
        v4 => v4,
    };
    let resolver = Client { addr: src, prefix: full(src), ecs: None };
    let trusted = policy.trusted.is_empty() || policy.trusted.iter().any(|n| n.contains(&src));
    if !policy.enabled || !trusted {
        // Ignored options are neither checked nor echoed: the answer is then valid for
        // every client of this resolver.
        return Ok(resolver);
    }
    let mut ecs = wire::options(options.unwrap_or_default(), 8);
    let Some(first) = ecs.next() else { return Ok(resolver) };
    if ecs.next().is_some() {
        return Err(EcsError::Duplicate);
    }
    let ecs = parse(first)?;
    if ecs.source_prefix() == 0 {
        // The client asked for privacy: route on the resolver, claim scope /0.
        return Ok(Client { ecs: Some(ecs), ..resolver });
    }
    // An IPv4-mapped IPv6 subnet is an IPv4 subnet (the echo keeps the client's form).
    if let IpAddr::V6(v6) = ecs.addr()
        && let Some(v4) = v6.to_ipv4_mapped()
        && ecs.source_prefix() >= 96
    {
        return Ok(Client { addr: IpAddr::V4(v4), prefix: ecs.source_prefix() - 96, ecs: Some(ecs) });
    }
    Ok(Client { addr: ecs.addr(), prefix: ecs.source_prefix(), ecs: Some(ecs) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(family: u16, source: u8, scope: u8, addr: &[u8]) -> Vec<u8> {
        let mut d = family.to_be_bytes().to_vec();
        d.extend_from_slice(&[source, scope]);
        d.extend_from_slice(addr);
        d
    }

    #[test]
    fn parse_table() {
        let cases: &[(Vec<u8>, Result<&str, EcsError>)] = &[
            (data(1, 24, 0, &[192, 0, 2]), Ok("192.0.2.0/24")),
            (data(1, 32, 0, &[192, 0, 2, 1]), Ok("192.0.2.1/32")),
            (data(1, 0, 0, &[]), Ok("0.0.0.0/0")),
            (data(1, 20, 0, &[192, 0, 16]), Ok("192.0.16.0/20")),
            (data(1, 20, 0, &[192, 0, 17]), Err(EcsError::HostBits)),
            (data(1, 24, 0, &[192, 0, 2, 1]), Err(EcsError::AddressLength)),
            (data(1, 24, 0, &[192, 0]), Err(EcsError::AddressLength)),
            (data(1, 33, 0, &[192, 0, 2, 0, 0]), Err(EcsError::SourceTooLong)),
            (data(1, 24, 24, &[192, 0, 2]), Err(EcsError::ScopeInQuery)),
            (data(3, 24, 0, &[192, 0, 2]), Err(EcsError::Family(3))),
            (vec![0, 1, 24], Err(EcsError::Short)),
            (data(2, 56, 0, &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0]), Ok("2001:db8::/56")),
            (data(2, 129, 0, &[0; 17]), Err(EcsError::SourceTooLong)),
        ];
        for (bytes, want) in cases {
            let got = parse(bytes).map(|c| format!("{}/{}", c.addr(), c.source_prefix()));
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{bytes:?}");
        }
    }

    fn query_with(options: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, b'a', b'p', b'p', 0, 0, 1, 0, 1];
        let rdata: Vec<u8> = options
            .iter()
            .flat_map(|d| {
                let mut o = vec![0, 8];
                o.extend_from_slice(&(d.len() as u16).to_be_bytes());
                o.extend_from_slice(d);
                o
            })
            .collect();
        m.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        m
    }

    /// The OPT record's options in a whole query, as the callers find them.
    fn rdata(m: &[u8]) -> Option<&[u8]> {
        wire::opt(m).map(|o| &m[o.options])
    }

    #[test]
    fn trust_privacy_and_duplicates() {
        let src: IpAddr = "192.0.2.53".parse().unwrap();
        let q = query_with(&[data(1, 24, 0, &[198, 51, 100])]);
        let all = EcsPolicy { enabled: true, trusted: &[] };
        let s = from_query(src, rdata(&q), all).unwrap();
        assert_eq!((s.addr.to_string(), s.prefix, s.ecs.is_some()), ("198.51.100.0".into(), 24, true));

        let nets = ["203.0.113.0/24".parse().unwrap()];
        let other = EcsPolicy { enabled: true, trusted: &nets };
        let s = from_query(src, rdata(&q), other).unwrap();
        assert_eq!((s.addr, s.prefix, s.ecs.is_some()), (src, 32, false));

        let off = EcsPolicy { enabled: false, trusted: &[] };
        assert_eq!(from_query(src, rdata(&q), off).unwrap().ecs, None);

        // Malformed ECS from a resolver whose ECS is ignored is ignored too.
        let bad = query_with(&[data(1, 24, 0, &[198, 51, 100, 7])]);
        assert!(from_query(src, rdata(&bad), off).is_ok());
        assert!(from_query(src, rdata(&bad), other).is_ok());
        assert_eq!(from_query(src, rdata(&bad), all), Err(EcsError::AddressLength));

        let private = query_with(&[data(1, 0, 0, &[])]);
        let s = from_query(src, rdata(&private), all).unwrap();
        assert_eq!((s.addr, s.prefix, s.ecs.is_some()), (src, 32, true));

        let mapped = query_with(&[data(2, 120, 0, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100])]);
        let s = from_query(src, rdata(&mapped), all).unwrap();
        assert_eq!((s.addr.to_string(), s.prefix), ("198.51.100.0".into(), 24));

        let twice = query_with(&[data(1, 24, 0, &[198, 51, 100]), data(1, 24, 0, &[198, 51, 100])]);
        assert_eq!(from_query(src, rdata(&twice), all), Err(EcsError::Duplicate));
    }
}
