//! Which client a query is routed for: the EDNS Client Subnet (RFC 7871) when one is
//! present, allowed and well formed; otherwise the resolver's own address.

use std::net::IpAddr;

use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use ipnet::IpNet;

/// The routing subject of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
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
    #[error("source prefix longer than the address")]
    SourceTooLong,
    #[error("non-zero scope prefix in a query")]
    ScopeInQuery,
    #[error("address bits set beyond the source prefix")]
    HostBits,
}

/// ECS handling settings, from `[server]`.
#[derive(Debug, Clone, Default)]
pub struct EcsPolicy {
    pub enabled: bool,
    /// Resolvers whose ECS is used; empty: all.
    pub trusted: Vec<IpNet>,
}

fn full(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Validates an ECS option per RFC 7871 section 6.
pub fn validate(ecs: &ClientSubnet) -> Result<(), EcsError> {
    let addr = ecs.addr();
    let source = ecs.source_prefix();
    if source > full(addr) {
        return Err(EcsError::SourceTooLong);
    }
    if ecs.scope_prefix() != 0 {
        return Err(EcsError::ScopeInQuery);
    }
    let net = IpNet::new(addr, source).map_err(|_| EcsError::SourceTooLong)?;
    if net.network() != addr {
        return Err(EcsError::HostBits);
    }
    Ok(())
}

/// Picks the routing subject for a query from `src` with the given EDNS.
pub fn subject(src: IpAddr, edns: Option<&Edns>, policy: &EcsPolicy) -> Result<Subject, EcsError> {
    let src = match src {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(src, IpAddr::V4),
        v4 => v4,
    };
    let resolver = Subject {
        addr: src,
        prefix: full(src),
        ecs: None,
    };
    let Some(edns) = edns else {
        return Ok(resolver);
    };
    let mut found = None;
    for (code, option) in edns.options().as_ref() {
        if *code != EdnsCode::Subnet {
            continue;
        }
        if found.is_some() {
            return Err(EcsError::Duplicate);
        }
        if let EdnsOption::Subnet(ecs) = option {
            found = Some(ecs);
        }
    }
    let Some(ecs) = found else {
        return Ok(resolver);
    };
    validate(ecs)?;
    if !policy.enabled
        || !(policy.trusted.is_empty() || policy.trusted.iter().any(|n| n.contains(&src)))
    {
        // Ignored options are not echoed: the answer is then valid for every client.
        return Ok(resolver);
    }
    if ecs.source_prefix() == 0 {
        // The client asked for privacy: route on the resolver, claim scope /0.
        return Ok(Subject {
            ecs: Some(*ecs),
            ..resolver
        });
    }
    Ok(Subject {
        addr: ecs.addr(),
        prefix: ecs.source_prefix(),
        ecs: Some(*ecs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let cases: &[(&str, u8, u8, Result<(), EcsError>)] = &[
            ("192.0.2.0", 24, 0, Ok(())),
            ("192.0.2.0", 32, 0, Ok(())),
            ("0.0.0.0", 0, 0, Ok(())),
            ("192.0.2.128", 24, 0, Err(EcsError::HostBits)),
            ("192.0.2.0", 33, 0, Err(EcsError::SourceTooLong)),
            ("192.0.2.0", 24, 24, Err(EcsError::ScopeInQuery)),
            ("2001:db8::", 56, 0, Ok(())),
            ("2001:db8::1", 56, 0, Err(EcsError::HostBits)),
            ("2001:db8::", 129, 0, Err(EcsError::SourceTooLong)),
        ];
        for (addr, source, scope, want) in cases {
            let ecs = ClientSubnet::new(addr.parse().unwrap(), *source, *scope);
            assert_eq!(validate(&ecs), *want, "{addr}/{source} scope {scope}");
        }
    }

    #[test]
    fn trust_and_privacy() {
        let mut edns = Edns::new();
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                "198.51.100.0".parse().unwrap(),
                24,
                0,
            )));
        let src: IpAddr = "192.0.2.53".parse().unwrap();
        let all = EcsPolicy {
            enabled: true,
            trusted: vec![],
        };
        let s = subject(src, Some(&edns), &all).unwrap();
        assert_eq!(
            (s.addr.to_string(), s.prefix, s.ecs.is_some()),
            ("198.51.100.0".into(), 24, true)
        );

        let other = EcsPolicy {
            enabled: true,
            trusted: vec!["203.0.113.0/24".parse().unwrap()],
        };
        let s = subject(src, Some(&edns), &other).unwrap();
        assert_eq!((s.addr, s.prefix, s.ecs.is_some()), (src, 32, false));

        let off = EcsPolicy {
            enabled: false,
            trusted: vec![],
        };
        assert_eq!(subject(src, Some(&edns), &off).unwrap().ecs, None);

        let mut private = Edns::new();
        private
            .options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                "0.0.0.0".parse().unwrap(),
                0,
                0,
            )));
        let s = subject(src, Some(&private), &all).unwrap();
        assert_eq!((s.addr, s.prefix, s.ecs.is_some()), (src, 32, true));
    }
}
