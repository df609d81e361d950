//! The peer benchmark's data, built from files in the repository only.
//!
//! ```text
//! switchyard-bench-data SRC.mmdb COUNTRIES.csv GEO_DIR OUT_DIR [QUERIES]
//! ```
//!
//! - `SRC.mmdb`: `geoip/default.mmdb`, the country database switchyard ships (records
//!   `{"country_code": "US"}`, ~1 M networks). gdnsd and Knot cannot read that record
//!   layout, so every network of it is rewritten into the GeoIP2-Country schema:
//!   `country.iso_code`, `continent.code` (from `COUNTRIES.csv`, i.e. `geoip/countries.csv`)
//!   and a coarse per-continent `location`. All servers read that one file:
//!   `OUT_DIR/gslb-geoip2-country.mmdb`.
//! - `GEO_DIR`: `bench/geo`, with `anchors.txt` (client subnets whose country is known)
//!   and `regions.txt` (continent -> region -> address).
//! - The query mix (`OUT_DIR/queries.bin`, dnsperf's `-B` format: each query a 2-byte
//!   length then the message, so each one carries its own ECS option), fixed seed:
//!   80 % `app.gslb.example A` with ECS from a pool of random /24s of the anchors'
//!   countries and random /56s of the IPv6 anchor, 10 % `static.gslb.example A`,
//!   10 % `nx-<n>.gslb.example A` (NXDOMAIN). All with EDNS0, RD clear.
//! - `OUT_DIR/queries-do.bin`: the same queries in the same order, byte for byte, but
//!   for the DO bit (RFC 3225) set in each OPT record: the mix for the signed servers.
//! - For the verify pass: `anchors-expected.tsv` (anchor, country, continent, region,
//!   address) and `pool.tsv` (every ECS subnet of the mix and its region);
//!   `queries.txt` is the mix in readable form.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::error::Error;
use std::fs;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ipnet::IpNet;
use maxminddb::{Reader, WithinOptions};
use mmdb_writer::{Ipv4Aliasing, RecordSize, Value, Writer};
use serde::Deserialize;

type Res<T> = Result<T, Box<dyn Error>>;
/// Per country, its IPv4 networks of /24 or wider: (first address, prefix length).
type V4Nets = HashMap<String, Vec<(u32, u8)>>;

/// /24s drawn per IPv4 anchor country, /56s drawn in each IPv6 anchor.
const V4_DRAWS: usize = 400;
const V6_DRAWS: usize = 100;
const SEED: u64 = 20_240_601;

/// Coarse continent centroids (latitude, longitude): the same record shape as a GeoIP2
/// Country database with a location, whatever a server does with it.
const CENTROIDS: &[(&str, f64, f64)] = &[
    ("AF", 5.0, 20.0),
    ("AN", -75.0, -60.0),
    ("AS", 30.0, 90.0),
    ("EU", 50.0, 10.0),
    ("NA", 40.0, -100.0),
    ("OC", -25.0, 135.0),
    ("SA", -15.0, -60.0),
];

#[derive(Deserialize)]
struct SourceRecord<'a> {
    country_code: Option<&'a str>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench-data: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(4..=5).contains(&args.len()) {
        return Err("usage: switchyard-bench-data SRC.mmdb COUNTRIES.csv GEO_DIR OUT_DIR [QUERIES]".into());
    }
    let (src, countries, geo, out) = (&args[0], &args[1], Path::new(&args[2]), PathBuf::from(&args[3]));
    let n_queries: usize = args.get(4).map_or(Ok(100_000), |s| s.parse())?;
    fs::create_dir_all(&out)?;

    let continent_of = read_continents(countries)?;
    let (writer, v4_nets, stats) = convert(src, &continent_of)?;
    write_atomically(&out.join("gslb-geoip2-country.mmdb"), &writer.to_bytes()?)?;
    eprintln!(
        "bench-data: {} networks ({} IPv4, {} IPv6) -> gslb-geoip2-country.mmdb; countries without a continent: {}",
        stats.v4 + stats.v6,
        stats.v4,
        stats.v6,
        if stats.unmapped.is_empty() {
            "none".to_owned()
        } else {
            stats.unmapped.iter().cloned().collect::<Vec<_>>().join(" ")
        }
    );

    let regions = read_regions(&geo.join("regions.txt"))?;
    let anchors = read_anchors(&geo.join("anchors.txt"))?;
    let geo_of = |ip: IpAddr| -> (String, String) {
        let v = writer.get(ip);
        let get = |a: &str, b: &str| v.and_then(|v| field(v, a, b)).unwrap_or("").to_owned();
        (get("country", "iso_code"), get("continent", "code"))
    };

    // The anchors and the region each must get.
    let mut expected = String::from("# subnet\tcountry\tcontinent\tregion\taddress\n");
    for (net, cc) in &anchors {
        let (got, cont) = geo_of(net.addr());
        if &got != cc {
            return Err(format!("anchor {net}: the database says {got:?}, anchors.txt says {cc}").into());
        }
        let (region, addr) = regions.of(&cont)?;
        expected += &format!("{net}\t{cc}\t{cont}\t{region}\t{addr}\n");
    }
    write_atomically(&out.join("anchors-expected.tsv"), expected.as_bytes())?;

    // The ECS pool: random /24s inside each IPv4 anchor country's networks, random /56s
    // inside each IPv6 anchor; each kept only if the database places it in that country.
    let mut rng = SplitMix64(SEED);
    let mut pool: Vec<(IpNet, String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    let v4_countries: BTreeSet<&String> =
        anchors.iter().filter(|(n, _)| matches!(n, IpNet::V4(_))).map(|(_, c)| c).collect();
    for cc in v4_countries {
        let nets = v4_nets.get(cc.as_str()).ok_or_else(|| format!("no IPv4 network of {cc} in the database"))?;
        for _ in 0..V4_DRAWS {
            let (base, len) = nets[rng.below(nets.len() as u64) as usize];
            let slash24 = base + ((rng.below(1 << (24 - len)) as u32) << 8);
            let net = IpNet::new(IpAddr::V4(Ipv4Addr::from(slash24)), 24)?;
            if !seen.insert(net) {
                continue;
            }
            let (got, cont) = geo_of(net.addr());
            if &got == cc {
                pool.push((net, got, cont));
            }
        }
    }
    for (anchor, cc) in anchors.iter().filter(|(n, _)| matches!(n, IpNet::V6(_))) {
        let first = match anchor.network() {
            IpAddr::V6(a) => u128::from(a),
            IpAddr::V4(_) => unreachable!(),
        };
        let spare = 56u32.saturating_sub(u32::from(anchor.prefix_len()));
        for _ in 0..V6_DRAWS {
            let n = first + (u128::from(rng.below(1u64 << spare.min(63))) << 72);
            let net = IpNet::new(IpAddr::V6(Ipv6Addr::from(n)), 56)?;
            if !seen.insert(net) {
                continue;
            }
            let (got, cont) = geo_of(net.addr());
            if &got == cc {
                pool.push((net, got, cont));
            }
        }
    }
    let mut pool_tsv = String::from("# subnet\tcountry\tcontinent\tregion\n");
    for (net, cc, cont) in &pool {
        pool_tsv += &format!("{net}\t{cc}\t{cont}\t{}\n", regions.of(cont)?.0);
    }
    write_atomically(&out.join("pool.tsv"), pool_tsv.as_bytes())?;

    // The mix.
    let mut bin = Vec::with_capacity(n_queries * 64);
    let mut bin_do = Vec::with_capacity(n_queries * 64);
    let mut txt = String::with_capacity(n_queries * 48);
    let (mut app, mut stat, mut nx) = (0, 0, 0);
    for _ in 0..n_queries {
        let r = rng.below(10);
        if r < 8 {
            let (net, _, cont) = &pool[rng.below(pool.len() as u64) as usize];
            push_query(&mut bin, "app.gslb.example", Some(net), false);
            push_query(&mut bin_do, "app.gslb.example", Some(net), true);
            txt += &format!("app.gslb.example A ecs={net} expect={}\n", regions.of(cont)?.0);
            app += 1;
        } else if r < 9 {
            push_query(&mut bin, "static.gslb.example", None, false);
            push_query(&mut bin_do, "static.gslb.example", None, true);
            txt += "static.gslb.example A\n";
            stat += 1;
        } else {
            let name = format!("nx-{}.gslb.example", rng.below(100_000));
            push_query(&mut bin, &name, None, false);
            push_query(&mut bin_do, &name, None, true);
            txt += &format!("{name} A\n");
            nx += 1;
        }
    }
    write_atomically(&out.join("queries.bin"), &bin)?;
    write_atomically(&out.join("queries-do.bin"), &bin_do)?;
    write_atomically(&out.join("queries.txt"), txt.as_bytes())?;
    eprintln!(
        "bench-data: {n_queries} queries (app {app}, static {stat}, nx {nx}), ECS pool {} subnets -> {}",
        pool.len(),
        out.display()
    );
    Ok(())
}

struct Stats {
    v4: usize,
    v6: usize,
    unmapped: BTreeSet<String>,
}

/// Every network of the source database, rewritten into the GeoIP2-Country schema. Also
/// returns each country's IPv4 networks of /24 or wider (the ECS pool is drawn from them).
fn convert(src: &str, continent_of: &HashMap<String, String>) -> Res<(Writer, V4Nets, Stats)> {
    let reader = Reader::open_readfile(src)?;
    let mut writer = Writer::builder("GeoIP2-Country")
        .description(&[("en", "switchyard bench: geoip/default.mmdb in the GeoIP2-Country schema")])
        // IPv4 lives in ::/96 only, as in the source; 28-bit records, as in the database
        // the results in bench/results/ were taken with. A fixed build time keeps the file
        // byte-for-byte reproducible.
        .ipv4_aliasing(Ipv4Aliasing::Disabled)
        .record_size(RecordSize::Bits28)
        .build_epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .build();
    let mut records: HashMap<String, Value> = HashMap::new();
    let mut v4_nets = V4Nets::new();
    let mut stats = Stats { v4: 0, v6: 0, unmapped: BTreeSet::new() };
    for item in reader.networks(WithinOptions::default())? {
        let item = item?;
        let Some(SourceRecord { country_code: Some(cc) }) = item.decode::<SourceRecord>()? else {
            continue;
        };
        let nw = item.network()?;
        let net = IpNet::new(nw.ip(), nw.prefix())?;
        let record = records.entry(cc.to_owned()).or_insert_with(|| {
            let mut fields = vec![("country", Value::map([("iso_code", cc)]))];
            match continent_of.get(cc) {
                Some(cont) => {
                    let &(_, lat, lon) = CENTROIDS.iter().find(|(c, ..)| c == cont).expect("a known continent");
                    fields.push(("continent", Value::map([("code", cont.as_str())])));
                    fields.push((
                        "location",
                        Value::map([
                            ("latitude", Value::from(lat)),
                            ("longitude", Value::from(lon)),
                            ("accuracy_radius", Value::U16(1000)),
                        ]),
                    ));
                }
                None => {
                    stats.unmapped.insert(cc.to_owned());
                }
            }
            Value::map(fields)
        });
        writer.insert_value(net, record.clone())?;
        match net {
            IpNet::V4(n) => {
                stats.v4 += 1;
                if n.prefix_len() <= 24 {
                    v4_nets.entry(cc.to_owned()).or_default().push((u32::from(n.network()), n.prefix_len()));
                }
            }
            IpNet::V6(_) => stats.v6 += 1,
        }
    }
    Ok((writer, v4_nets, stats))
}

/// `a.b` of a record, as a string.
fn field<'v>(v: &'v Value, a: &str, b: &str) -> Option<&'v str> {
    let Value::Map(top) = v else { return None };
    let Some(Value::Map(inner)) = top.get(a) else { return None };
    match inner.get(b) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// `iso,continent,...` lines of geoip/countries.csv.
fn read_continents(path: &str) -> Res<HashMap<String, String>> {
    let text = fs::read_to_string(path)?;
    let mut map = HashMap::new();
    for line in text.lines().skip(1) {
        let mut cols = line.split(',');
        if let (Some(iso), Some(cont)) = (cols.next(), cols.next()) {
            if !CENTROIDS.iter().any(|(c, ..)| *c == cont) {
                return Err(format!("{path}: unknown continent {cont:?} for {iso}").into());
            }
            map.insert(iso.to_owned(), cont.to_owned());
        }
    }
    Ok(map)
}

/// Lines of a whitespace-separated file, comments (`#`) and blank lines dropped.
fn rows(path: &Path) -> Res<Vec<Vec<String>>> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect())
}

fn read_anchors(path: &Path) -> Res<Vec<(IpNet, String)>> {
    rows(path)?
        .into_iter()
        .map(|r| match r.as_slice() {
            [net, cc] => Ok((net.parse::<IpNet>()?, cc.clone())),
            _ => Err(format!("{}: expected `subnet country`, got {r:?}", path.display()).into()),
        })
        .collect()
}

/// `region address continent... gateway` lines of bench/geo/regions.txt.
struct Regions(BTreeMap<String, (String, String)>);

impl Regions {
    /// (region, address) serving a continent.
    fn of(&self, continent: &str) -> Res<(&str, &str)> {
        self.0
            .get(continent)
            .map(|(r, a)| (r.as_str(), a.as_str()))
            .ok_or_else(|| format!("no region serves continent {continent:?}").into())
    }
}

fn read_regions(path: &Path) -> Res<Regions> {
    let mut map = BTreeMap::new();
    for r in rows(path)? {
        if r.len() < 4 {
            return Err(format!("{}: expected `region address continent... gateway`, got {r:?}", path.display()).into());
        }
        for cont in &r[2..r.len() - 1] {
            map.insert(cont.clone(), (r[0].clone(), r[1].clone()));
        }
    }
    Ok(Regions(map))
}

/// One query in dnsperf's `-B` framing: `NAME A IN`, RD clear, an OPT record (UDP size
/// 1232) and, with `ecs`, an EDNS Client Subnet option (source prefix = the subnet's,
/// scope 0, the address cut to the prefix's bytes); with `dnssec_ok`, the OPT record's
/// DO bit set (the query asks for signatures).
fn push_query(out: &mut Vec<u8>, name: &str, ecs: Option<&IpNet>, dnssec_ok: bool) {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]); // id 0, flags 0, QD 1, AR 1
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]); // A IN
    let mut opt = Vec::new();
    if let Some(net) = ecs {
        let (family, bytes): (u16, Vec<u8>) = match net.network() {
            IpAddr::V4(a) => (1, a.octets().to_vec()),
            IpAddr::V6(a) => (2, a.octets().to_vec()),
        };
        let plen = net.prefix_len();
        let addr = &bytes[..usize::from(plen).div_ceil(8)];
        opt.extend_from_slice(&8u16.to_be_bytes()); // ECS
        opt.extend_from_slice(&(4 + addr.len() as u16).to_be_bytes());
        opt.extend_from_slice(&family.to_be_bytes());
        opt.extend_from_slice(&[plen, 0]);
        opt.extend_from_slice(addr);
    }
    m.push(0); // OPT owner: the root
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&1232u16.to_be_bytes());
    m.extend_from_slice(&[0, 0]); // extended RCODE, version
    m.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes()); // flags: DO
    m.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    m.extend_from_slice(&opt);
    out.extend_from_slice(&(m.len() as u16).to_be_bytes());
    out.extend_from_slice(&m);
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Res<()> {
    let tmp = path.with_extension("tmp");
    let mut f = BufWriter::new(fs::File::create(&tmp)?);
    f.write_all(bytes)?;
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// A small fixed-seed generator (SplitMix64): the same mix on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for n far below 2^64.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
