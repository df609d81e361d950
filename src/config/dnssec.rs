//! DNSSEC keys: the key file `switchyard dnssec keygen` writes, what `[dnssec]`
//! validates to, and the record of when each key was published and signed, from which
//! `check-config` warns about a rollover step taken too early.
//!
//! A key file is TOML holding the zone, the algorithm, the role and the private key
//! (PKCS#8, base64). It is written owner-only and never logged: [`PrivateKey`]'s
//! `Debug` prints a placeholder, and nothing outside this module and the signer reads it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey, signing_key_from_der};
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey};
use hickory_proto::rr::Name;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// `[dnssec]`, validated: the zone's keys and how signatures are made.
#[derive(Debug, Clone)]
pub struct DnssecConfig {
    /// In the config's order; at least one signs the zone's data and one the DNSKEY set.
    pub keys: Vec<ZoneKey>,
    /// How long a signature is valid from the moment it is made.
    pub validity: Duration,
    /// A signature is made again when less than this is left of its validity.
    pub refresh: Duration,
    /// How far in the past a signature's inception is put (clock skew among resolvers).
    pub inception: Duration,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_ttl: u32,
    /// Slots for signed GSLB RRsets, and as many for denials of names that do not
    /// exist (static RRsets are kept besides).
    pub cache_size: usize,
    /// Publish CDS and CDNSKEY at the apex (RFC 7344), for the parent to follow.
    pub cds: bool,
}

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Combined signing key: the DNSKEY set and the zone's data (flags 257).
    Csk,
    /// Key-signing key: the DNSKEY, CDS and CDNSKEY sets only (flags 257).
    Ksk,
    /// Zone-signing key: the zone's data only (flags 256).
    Zsk,
}

impl KeyRole {
    pub fn flags(self) -> u16 {
        match self {
            KeyRole::Csk | KeyRole::Ksk => 257,
            KeyRole::Zsk => 256,
        }
    }

    /// Signs the DNSKEY, CDS and CDNSKEY RRsets.
    pub fn signs_keys(self) -> bool {
        self != KeyRole::Zsk
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Csk => "csk",
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
        }
    }

    pub fn parse(s: &str) -> Option<KeyRole> {
        match s {
            "csk" => Some(KeyRole::Csk),
            "ksk" => Some(KeyRole::Ksk),
            "zsk" => Some(KeyRole::Zsk),
            _ => None,
        }
    }
}

/// A private key's PKCS#8 bytes. `Debug` hides them.
#[derive(Clone)]
pub struct PrivateKey(Arc<[u8]>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    /// The signing key, for the signer.
    pub fn signing_key(&self, algorithm: Algorithm) -> Result<Box<dyn SigningKey>, String> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.0.to_vec()));
        signing_key_from_der(&der, algorithm).map_err(|e| e.to_string())
    }
}

/// One key of the zone, read from its file.
#[derive(Debug, Clone)]
pub struct ZoneKey {
    pub file: PathBuf,
    pub role: KeyRole,
    /// Signs (for a ZSK or CSK: the zone's data); `false`: published only, as in the
    /// first and last steps of a rollover. Keys with the SEP flag always sign the DNSKEY set.
    pub active: bool,
    pub algorithm: Algorithm,
    pub dnskey: DNSKEY,
    pub tag: u16,
    pub private: PrivateKey,
}

impl ZoneKey {
    /// The DS record the parent publishes for this key (SHA-256).
    pub fn ds(&self, zone: &Name) -> Result<DS, String> {
        let digest = self.dnskey.to_digest(zone, DigestType::SHA256).map_err(|e| e.to_string())?;
        Ok(DS::new(self.tag, self.algorithm, DigestType::SHA256, digest.as_ref().to_vec()))
    }
}

/// The longest TTL a zone answers with: how long a signature may sit in a cache.
pub fn max_ttl(config: &super::Config) -> u32 {
    let statics = config.zone.records.iter().chain(&config.zone.ns).map(|r| r.ttl);
    let names = config.names.iter().flat_map(|n| [n.ttl, n.failover_ttl]);
    let dnskey = config.dnssec.as_ref().map(|d| d.dnskey_ttl);
    statics.chain(names).chain(dnskey).chain([config.zone.soa.ttl]).max().unwrap_or(0)
}

/// The algorithms `keygen` makes and the signer uses.
pub fn algorithm_from(s: &str) -> Option<Algorithm> {
    match s.to_ascii_lowercase().as_str() {
        "13" | "ecdsap256sha256" | "ecdsa" | "ecdsa-p256" | "p256" => Some(Algorithm::ECDSAP256SHA256),
        "15" | "ed25519" => Some(Algorithm::ED25519),
        _ => None,
    }
}

/// A key read from a file, before the config says whether it signs.
pub struct LoadedKey {
    pub zone: Name,
    pub role: KeyRole,
    pub algorithm: Algorithm,
    pub dnskey: DNSKEY,
    pub tag: u16,
    pub private: PrivateKey,
}

impl LoadedKey {
    /// The key as the config lists it: from `file`, signing or not.
    pub fn into_zone_key(self, file: PathBuf, active: bool) -> ZoneKey {
        let LoadedKey { role, algorithm, dnskey, tag, private, .. } = self;
        ZoneKey { file, role, active, algorithm, dnskey, tag, private }
    }
}

fn public_dnskey(key: &dyn SigningKey, role: KeyRole) -> Result<DNSKEY, String> {
    let public = key.to_public_key().map_err(|e| e.to_string())?;
    Ok(DNSKEY::with_flags(role.flags(), public))
}

/// Reads a key file; the error says what is wrong with it (not where: the caller knows).
pub fn read_key(path: &Path) -> Result<LoadedKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read key file `{}`: {e}", path.display()))?;
    let file: super::raw::KeyFile = toml::from_str(&text)
        .map_err(|e| format!("`{}` is not a switchyard key file: {}", path.display(), e.message()))?;
    let role = KeyRole::parse(&file.role)
        .ok_or_else(|| format!("key file `{}`: role `{}` is not csk, ksk or zsk", path.display(), file.role))?;
    let zone = Name::from_ascii(&file.zone)
        .map(|n| n.to_lowercase())
        .map_err(|e| format!("key file `{}`: zone `{}`: {e}", path.display(), file.zone))?;
    let algorithm = Algorithm::from_u8(file.algorithm);
    if !matches!(algorithm, Algorithm::ECDSAP256SHA256 | Algorithm::ED25519) {
        return Err(format!(
            "key file `{}`: algorithm {} is not supported (13, ECDSA P-256, or 15, Ed25519)",
            path.display(),
            file.algorithm
        ));
    }
    let der = data_encoding::BASE64
        .decode(file.private_key.trim().as_bytes())
        .map_err(|e| format!("key file `{}`: private_key is not base64: {e}", path.display()))?;
    let private = PrivateKey(der.into());
    let signing = private.signing_key(algorithm).map_err(|e| format!("key file `{}`: {e}", path.display()))?;
    let dnskey = public_dnskey(&*signing, role).map_err(|e| format!("key file `{}`: {e}", path.display()))?;
    let tag = dnskey.calculate_key_tag().map_err(|e| e.to_string())?;
    if tag != file.key_tag {
        return Err(format!(
            "key file `{}`: key_tag says {} but the key's tag is {tag} (edited by hand?)",
            path.display(),
            file.key_tag
        ));
    }
    Ok(LoadedKey { zone, role, algorithm, dnskey, tag, private })
}

/// Makes a new key for `zone` and writes it to a new file in `dir` (owner-only), named
/// `K<zone>+<algorithm>+<tag>.key`. Returns the path and the key. A key whose tag is
/// already taken in `dir` is made again: two keys of a zone should not share a tag.
pub fn generate(zone: &Name, algorithm: Algorithm, role: KeyRole, dir: &Path) -> Result<(PathBuf, LoadedKey), String> {
    let mut last = String::new();
    for _ in 0..8 {
        match generate_once(zone, algorithm, role, dir) {
            Err((e, true)) => last = e,
            done => return done.map_err(|(e, _)| e),
        }
    }
    Err(last)
}

/// One try; the error says whether the file (the tag) was taken.
fn generate_once(
    zone: &Name,
    algorithm: Algorithm,
    role: KeyRole,
    dir: &Path,
) -> Result<(PathBuf, LoadedKey), (String, bool)> {
    let plain = |e: String| (e, false);
    let pkcs8 = match algorithm {
        Algorithm::ECDSAP256SHA256 => EcdsaSigningKey::generate_pkcs8(algorithm),
        Algorithm::ED25519 => Ed25519SigningKey::generate_pkcs8(),
        other => return Err(plain(format!("algorithm {other} is not supported"))),
    }
    .map_err(|e| plain(format!("cannot make a key: {e}")))?;
    let private = PrivateKey(pkcs8.secret_pkcs8_der().to_vec().into());
    let signing = private.signing_key(algorithm).map_err(plain)?;
    let dnskey = public_dnskey(&*signing, role).map_err(plain)?;
    let tag = dnskey.calculate_key_tag().map_err(|e| plain(e.to_string()))?;
    let zone = zone.to_lowercase();
    let text = format!(
        "# switchyard DNSSEC key for {zone} ({algorithm}, {role}, tag {tag}).\n\
         # The private key: keep this file owner-only, back it up, never commit it.\n\
         zone = \"{zone}\"\nalgorithm = {alg}\nrole = \"{role}\"\nkey_tag = {tag}\ncreated = \"{created}\"\n\
         private_key = \"{private}\"\n",
        role = role.as_str(),
        alg = u8::from(algorithm),
        created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        private = data_encoding::BASE64.encode(&private.0),
    );
    let name = zone.to_ascii();
    let path = dir.join(format!("K{}+{:03}+{tag:05}.key", name.trim_end_matches('.'), u8::from(algorithm)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&path).map_err(|e| {
        (format!("cannot create `{}`: {e}", path.display()), e.kind() == std::io::ErrorKind::AlreadyExists)
    })?;
    let written = |e: std::io::Error| plain(format!("cannot write `{}`: {e}", path.display()));
    f.write_all(text.as_bytes()).map_err(written)?;
    f.sync_all().map_err(written)?;
    Ok((path, LoadedKey { zone, role, algorithm, dnskey, tag, private }))
}

/// When each key (by tag) was first published and first and last signed the zone's
/// data, as the server saw it (unix seconds), and which keys it publishes now. Kept
/// beside the state file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyHistory {
    pub keys: BTreeMap<u16, KeyTimes>,
    /// The keys published at the last observation, and which of them signed.
    pub published: Vec<u16>,
    pub signing: Vec<u16>,
    /// The longest DNSKEY TTL the zone has published with (caches keep the set that long).
    pub dnskey_ttl: u32,
    /// The longest TTL the zone has answered with (signatures live in caches that long).
    pub max_ttl: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyTimes {
    /// The start of its current publication (a key removed and added again starts anew).
    pub first_published: u64,
    /// It signs the DNSKEY set (a KSK or CSK: the parent's DS may point at it).
    pub sep: bool,
    /// Unset: never signed the zone's data.
    pub first_signed: Option<u64>,
    /// The last moment it was seen signing (for a key still signing: the last observation).
    pub last_signed: Option<u64>,
}

impl KeyHistory {
    /// Where the history of a config's keys is kept: beside the state file, else beside
    /// the config.
    pub fn path(state_file: Option<&Path>, config: &Path) -> PathBuf {
        match state_file {
            Some(s) => {
                let mut p = s.as_os_str().to_owned();
                p.push(".dnssec.json");
                PathBuf::from(p)
            }
            None => {
                let mut p = config.as_os_str().to_owned();
                p.push(".dnssec.json");
                PathBuf::from(p)
            }
        }
    }

    /// Reads the history; a missing file is an empty history.
    pub fn read(path: &Path) -> Result<KeyHistory, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyHistory::default()),
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        };
        let bad = |what: &str| format!("`{}`: {what}", path.display());
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(&format!("not valid JSON: {e}")))?;
        let tags = |k: &str| -> Result<Vec<u16>, String> {
            let list = v.get(k).and_then(Value::as_array).ok_or_else(|| bad(&format!("no `{k}` list")))?;
            list.iter()
                .map(|t| t.as_u64().and_then(|t| u16::try_from(t).ok()).ok_or_else(|| bad("a bad key tag")))
                .collect()
        };
        let mut keys = BTreeMap::new();
        for (tag, t) in v.get("keys").and_then(Value::as_object).ok_or_else(|| bad("no `keys` object"))? {
            let tag: u16 = tag.parse().map_err(|_| bad(&format!("`{tag}` is not a key tag")))?;
            let first_published =
                t.get("first_published").and_then(Value::as_u64).ok_or_else(|| bad("a key without first_published"))?;
            keys.insert(
                tag,
                KeyTimes {
                    first_published,
                    sep: t.get("sep").and_then(Value::as_bool).unwrap_or(true),
                    first_signed: t.get("first_signed").and_then(Value::as_u64),
                    last_signed: t.get("last_signed").and_then(Value::as_u64),
                },
            );
        }
        let ttl = |k: &str| v.get(k).and_then(Value::as_u64).map_or(0, |t| t.min(u64::from(u32::MAX)) as u32);
        let (dnskey_ttl, max_ttl) = (ttl("dnskey_ttl"), ttl("max_ttl"));
        Ok(KeyHistory { keys, published: tags("published")?, signing: tags("signing")?, dnskey_ttl, max_ttl })
    }

    /// The history as its file holds it.
    pub fn to_json(&self) -> String {
        let keys: serde_json::Map<String, Value> = self
            .keys
            .iter()
            .map(|(tag, t)| {
                let times = json!({
                    "first_published": t.first_published,
                    "sep": t.sep,
                    "first_signed": t.first_signed,
                    "last_signed": t.last_signed,
                });
                (tag.to_string(), times)
            })
            .collect();
        let v = json!({
            "keys": keys,
            "published": self.published,
            "signing": self.signing,
            "dnskey_ttl": self.dnskey_ttl,
            "max_ttl": self.max_ttl,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// Notes that `config`'s keys are published (and the active ones sign) from `now`
    /// on; `None`: the zone is no longer signed.
    pub fn observe(&mut self, config: Option<&DnssecConfig>, max_ttl: u32, now: u64) {
        // The keys that signed until now (some may stop now).
        for tag in &self.signing {
            if let Some(t) = self.keys.get_mut(tag) {
                t.last_signed = Some(now);
            }
        }
        let before = std::mem::take(&mut self.published);
        self.signing.clear();
        let keys = config.map_or(&[][..], |c| &c.keys[..]);
        if let Some(c) = config {
            self.dnskey_ttl = self.dnskey_ttl.max(c.dnskey_ttl);
            self.max_ttl = self.max_ttl.max(max_ttl);
        }
        for k in keys {
            // A key published again (after it was removed) starts anew.
            if !before.contains(&k.tag) {
                self.keys.insert(k.tag, KeyTimes { first_published: now, ..KeyTimes::default() });
            }
            let t = self.keys.entry(k.tag).or_default();
            t.sep = k.role.signs_keys();
            self.published.push(k.tag);
            if k.active && k.role != KeyRole::Ksk {
                t.first_signed.get_or_insert(now);
                t.last_signed = Some(now);
                self.signing.push(k.tag);
            }
        }
    }

    /// What a change to `config`'s keys (`None`: no `[dnssec]`) would break for
    /// resolvers that cached the running zone's data, judged at `now` (whole seconds,
    /// rounded down; observations are rounded up). `max_ttl` is the longest TTL the zone
    /// answers with (signatures live in caches that long).
    pub fn rollover_warnings(&self, config: Option<&DnssecConfig>, max_ttl: u32, now: u64) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(config) = config else {
            if !self.signing.is_empty() {
                warnings.push(
                    "the zone would stop being signed: validating resolvers fail every answer while the parent \
                     has a DS for it; remove the DS at the parent first, and wait for its TTL"
                        .to_owned(),
                );
            }
            return warnings;
        };
        // Caches keep a DNSKEY set, and signatures, for the longest TTL they were
        // published with.
        let ttl = u64::from(config.dnskey_ttl.max(self.dnskey_ttl));
        let max_ttl = max_ttl.max(self.max_ttl);
        let published_for = |tag: u16| {
            if self.published.contains(&tag) {
                self.keys.get(&tag).map(|t| now.saturating_sub(t.first_published))
            } else {
                None
            }
        };
        let old_enough = |tag: u16| published_for(tag).is_some_and(|age| age >= ttl);
        // Every RRset needs a signature by a key every cached DNSKEY set holds: one that
        // already signs and stays, or one published for the DNSKEY TTL. A key newer than
        // that may sign beside such a key (an algorithm rollover does), not alone.
        // Signatures some cache may still hold: the zone signs now, or signed recently
        // (a zone signed again long after it stopped starts afresh).
        let recently = |t: &KeyTimes| t.last_signed.is_some_and(|l| now < l + u64::from(max_ttl).max(ttl));
        let anyone_signed_before = !self.signing.is_empty() || self.keys.values().any(recently);
        let signing = config.keys.iter().filter(|k| k.active && k.role != KeyRole::Ksk);
        let covered = signing.clone().any(|k| old_enough(k.tag) || self.signing.contains(&k.tag));
        if anyone_signed_before && !covered {
            for k in signing {
                warnings.push(match published_for(k.tag) {
                    Some(age) => format!(
                        "key {} would start signing {age}s after it was first published, before the DNSKEY TTL \
                         ({ttl}s) has passed: resolvers that cached the DNSKEY set without it would fail to \
                         validate; wait {}s",
                        k.tag,
                        ttl.saturating_sub(age)
                    ),
                    None => format!(
                        "key {} would sign without having been published first: resolvers that cached the DNSKEY \
                         set without it would fail to validate; add it with `active = false`, reload, and wait the \
                         DNSKEY TTL ({ttl}s)",
                        k.tag
                    ),
                });
            }
        }
        // The DNSKEY set must stay signed by a key that cached sets (and the parent's DS)
        // lead to.
        let sep_stays = config.keys.iter().any(|k| k.role.signs_keys() && old_enough(k.tag));
        for tag in self.published.iter().filter(|t| !config.keys.iter().any(|k| k.tag == **t)) {
            let Some(t) = self.keys.get(tag) else { continue };
            // A key signing at the last observation signs to this moment.
            let signed_until = if self.signing.contains(tag) { Some(now) } else { t.last_signed };
            // Safe when a key that stays has signed beside it for the longest TTL (an
            // algorithm rollover's double signing): caches hold its signatures too.
            let others_cover = config.keys.iter().any(|k| {
                k.tag != *tag
                    && k.active
                    && k.role != KeyRole::Ksk
                    && self.signing.contains(&k.tag)
                    && self.keys.get(&k.tag).and_then(|t| t.first_signed).is_some_and(|f| now >= f + u64::from(max_ttl))
            });
            if let Some(until) = signed_until.map(|s| s + u64::from(max_ttl))
                && now < until
                && !others_cover
            {
                warnings.push(format!(
                    "removing key {tag}, which signed answers {}s ago: resolvers may hold those signatures for up to \
                     {max_ttl}s (the zone's longest TTL) and would fail to validate them; make it inactive \
                     (`active = false`), reload, and remove it {}s later",
                    now.saturating_sub(signed_until.unwrap_or(now)),
                    until.saturating_sub(now)
                ));
            }
            if t.sep && !sep_stays {
                warnings.push(format!(
                    "removing key {tag}, which signs the DNSKEY set, while no key left to sign it has been published \
                     for the DNSKEY TTL ({ttl}s): resolvers' cached DNSKEY sets, and the parent's DS, would lead to no \
                     key; publish its successor first, give the parent its DS, and wait"
                ));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path, role: KeyRole, active: bool) -> ZoneKey {
        let zone = Name::from_ascii("gslb.example.org.").unwrap();
        let (file, k) = generate(&zone, Algorithm::ECDSAP256SHA256, role, dir).unwrap();
        k.into_zone_key(file, active)
    }

    fn config(keys: &[&ZoneKey]) -> DnssecConfig {
        DnssecConfig {
            keys: keys.iter().map(|k| (*k).clone()).collect(),
            validity: Duration::from_secs(14 * 86400),
            refresh: Duration::from_secs(7 * 86400),
            inception: Duration::from_secs(3600),
            dnskey_ttl: 3600,
            cache_size: 100,
            cds: true,
        }
    }

    #[test]
    fn a_key_file_reads_back_owner_only_with_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), KeyRole::Ksk, true);
        let back = read_key(&k.file).unwrap();
        assert_eq!((back.tag, back.role, back.dnskey.flags()), (k.tag, KeyRole::Ksk, 257));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&k.file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // The secret scalar (after the PKCS#8 header every P-256 key shares) never shows.
        let der = &k.private.0;
        let at = der.windows(5).position(|w| w == [2, 1, 1, 4, 32]).unwrap() + 5;
        let debug = format!("{k:?}");
        for form in [data_encoding::HEXLOWER.encode(&der[at..at + 32]), format!("{:?}", &der[at..at + 4])] {
            assert!(!debug.contains(form.trim_matches(['[', ']'])), "{form} in {debug}");
        }
        assert!(debug.contains("PrivateKey(..)"));
    }

    /// The rollover of docs/dnssec.md on a one-hour DNSKEY TTL and a 300 s zone: each
    /// step warns until its wait is over, and not after.
    #[test]
    fn each_rollover_step_taken_early_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let old = key(dir.path(), KeyRole::Csk, true);
        let new = key(dir.path(), KeyRole::Csk, false);
        let mut h = KeyHistory::default();
        let max_ttl = 300;
        let warn = |h: &KeyHistory, keys: &[&ZoneKey], at: u64| h.rollover_warnings(Some(&config(keys)), max_ttl, at);
        // The first key of a zone: nothing was cached before, nothing to warn about.
        assert!(warn(&h, &[&old], 1_000).is_empty());
        h.observe(Some(&config(&[&old])), max_ttl, 1_000);
        // Publishing a second key is always safe.
        assert!(warn(&h, &[&old, &new], 2_000).is_empty());
        h.observe(Some(&config(&[&old, &new])), max_ttl, 2_000);
        // Switching before the DNSKEY TTL has passed since the new key appeared.
        let old_off = ZoneKey { active: false, ..old.clone() };
        let new_on = ZoneKey { active: true, ..new.clone() };
        let w = warn(&h, &[&old_off, &new_on], 2_000 + 3_599);
        assert!(w.len() == 1 && w[0].contains(&format!("key {} would start signing", new.tag)), "{w:?}");
        assert!(warn(&h, &[&old_off, &new_on], 2_000 + 3_600).is_empty());
        h.observe(Some(&config(&[&old_off, &new_on])), max_ttl, 5_600);
        // Removing the old key while its signatures may still be cached.
        let w = warn(&h, &[&new_on], 5_600 + 299);
        assert!(w.len() == 1 && w[0].contains(&format!("removing key {}", old.tag)), "{w:?}");
        assert!(warn(&h, &[&new_on], 5_600 + 300).is_empty());
    }

    #[test]
    fn other_unsafe_changes_are_warned_about_and_safe_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let old = key(dir.path(), KeyRole::Csk, true);
        let max_ttl = 300;
        let mut h = KeyHistory::default();
        h.observe(Some(&config(&[&old])), max_ttl, 1_000);
        // A key that signs without having been published, alone: warned.
        let third = key(dir.path(), KeyRole::Csk, true);
        let w = h.rollover_warnings(Some(&config(&[&third])), max_ttl, 100_000);
        assert!(w.iter().any(|w| w.contains("without having been published first")), "{w:?}");
        // Beside a key that already signs (an algorithm rollover's first step): not.
        let w = h.rollover_warnings(Some(&config(&[&old, &third])), max_ttl, 100_000);
        assert!(w.is_empty(), "{w:?}");
        // Removing a key that still signs, while the key that stays signed beside it for
        // less than the longest TTL: warned. Once it has signed for the longest TTL and
        // been in the DNSKEY set for its TTL (the algorithm rollover's step 4): not.
        h.observe(Some(&config(&[&old, &third])), max_ttl, 100_000);
        let w = h.rollover_warnings(Some(&config(&[&third])), max_ttl, 100_000 + 299);
        assert!(w.iter().any(|w| w.contains(&format!("removing key {}, which signed", old.tag))), "{w:?}");
        let w = h.rollover_warnings(Some(&config(&[&third])), max_ttl, 100_000 + 3_600);
        assert!(w.is_empty(), "{w:?}");
        // Swapping a KSK in one step: the DNSKEY set would be signed by a key no cache
        // (and no DS) knows.
        let ksk = key(dir.path(), KeyRole::Ksk, true);
        let zsk = key(dir.path(), KeyRole::Zsk, true);
        let mut k = KeyHistory::default();
        k.observe(Some(&config(&[&ksk, &zsk])), max_ttl, 1_000);
        let ksk2 = key(dir.path(), KeyRole::Ksk, true);
        let w = k.rollover_warnings(Some(&config(&[&ksk2, &zsk])), max_ttl, 50_000);
        assert!(
            w.iter().any(|w| w.contains(&format!("removing key {}, which signs the DNSKEY set", ksk.tag))),
            "{w:?}"
        );
        // Done in steps (the new KSK published first, for the TTL), it is not.
        k.observe(Some(&config(&[&ksk, &ksk2, &zsk])), max_ttl, 50_000);
        let w = k.rollover_warnings(Some(&config(&[&ksk2, &zsk])), max_ttl, 50_000 + 3_600);
        assert!(w.is_empty(), "{w:?}");
        // A key removed and added again starts its publication anew.
        k.observe(Some(&config(&[&ksk2, &zsk])), max_ttl, 60_000);
        k.observe(Some(&config(&[&ksk, &ksk2, &zsk])), max_ttl, 70_000);
        let zsk2 = key(dir.path(), KeyRole::Zsk, false);
        k.observe(Some(&config(&[&ksk, &ksk2, &zsk, &zsk2])), max_ttl, 70_000);
        let zsk_off = ZoneKey { active: false, ..zsk.clone() };
        let zsk2_on = ZoneKey { active: true, ..zsk2.clone() };
        let w = k.rollover_warnings(Some(&config(&[&ksk, &ksk2, &zsk_off, &zsk2_on])), max_ttl, 70_100);
        assert!(w.iter().any(|w| w.contains(&format!("key {} would start signing", zsk2.tag))), "{w:?}");
        // Turning signing off while signing: warned (the parent's DS).
        let w = k.rollover_warnings(None, max_ttl, 80_000);
        assert!(w.iter().any(|w| w.contains("would stop being signed")), "{w:?}");
        // Signing again long after it stopped: no cache holds anything, no warning.
        k.observe(None, max_ttl, 80_000);
        let fresh = key(dir.path(), KeyRole::Csk, true);
        let w = k.rollover_warnings(Some(&config(&[&fresh])), max_ttl, 80_000 + 3_600);
        assert!(w.is_empty(), "{w:?}");
        // A history that does not match the config does not panic.
        let mut odd = KeyHistory::default();
        odd.published.push(4242);
        let _ = odd.rollover_warnings(Some(&config(&[&old])), max_ttl, 1);
    }
}
