#!/usr/bin/python3
"""Validates signed answers with dnspython (Debian: python3-dnspython), ECS included,
which delv cannot send: the verify pass of bench/run.sh for the signed servers.

    dnssec-check.py PORT ZONE 'ZONE. [TTL] [IN] DNSKEY 257 3 13 BASE64' <QUESTIONS

QUESTIONS: lines `NAME TYPE [SUBNET [EXPECT]]`. Each is asked of 127.0.0.1:PORT with DO
(and ECS SUBNET); the zone's DNSKEY set is asked first and must be signed by the given
key (the trust anchor). Every RRset of the answer and authority sections must carry an
RRSIG that validates with that DNSKEY set; a positive answer must hold the asked RRset
(with EXPECT: exactly that address), a negative one (NXDOMAIN, or NOERROR without the
type) a signed NSEC. Prints one line per question, OK or FAIL; exits 1 on any FAIL."""
import sys
import time

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def ask(port, name, rtype, subnet=None):
    options = []
    if subnet:
        addr, plen = subnet.split("/")
        options.append(dns.edns.ECSOption(addr, int(plen), 0))
    q = dns.message.make_query(name, rtype, want_dnssec=True, use_edns=0, payload=1232, options=options)
    q.flags &= ~dns.flags.RD
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=2)


def signed_sets(section):
    """(rrset, its RRSIG rrset or None) for each non-RRSIG rrset of a section."""
    sigs = {(r.name, r.covers): r for r in section if r.rdtype == dns.rdatatype.RRSIG}
    return [(r, sigs.get((r.name, r.rdtype))) for r in section if r.rdtype != dns.rdatatype.RRSIG]


def main():
    port, zone, anchor = int(sys.argv[1]), dns.name.from_text(sys.argv[2]), sys.argv[3].split()
    i = anchor.index("DNSKEY")
    anchor_set = dns.rrset.from_text(zone, 3600, dns.rdataclass.IN, dns.rdatatype.DNSKEY, " ".join(anchor[i + 1:]))
    now = time.time()
    bad = 0

    # The DNSKEY set, signed by the anchor.
    r = ask(port, zone, "DNSKEY")
    keys = r.find_rrset(r.answer, zone, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    sig = r.find_rrset(r.answer, zone, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    try:
        dns.dnssec.validate(keys, sig, {zone: anchor_set}, now=now)
        print(f"OK   {zone} DNSKEY: {len(keys)} keys, signed by the anchor (tag {dns.dnssec.key_id(anchor_set[0])})")
    except dns.dnssec.ValidationFailure as e:
        print(f"FAIL {zone} DNSKEY: {e}")
        return 1
    trusted = {zone: keys}

    for line in sys.stdin:
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        name, rtype = dns.name.from_text(f[0]), dns.rdatatype.from_text(f[1])
        subnet = f[2] if len(f) > 2 else None
        expect = f[3] if len(f) > 3 else None
        what = f"{name} {f[1]}" + (f" ECS {subnet}" if subnet else "")
        try:
            r = ask(port, name, rtype, subnet)
        except Exception as e:  # a timeout, a malformed answer
            print(f"FAIL {what}: {e}")
            bad = 1
            continue
        problems, seen = [], []
        for section in (r.answer, r.authority):
            for rrset, sigs in signed_sets(section):
                seen.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}")
                if sigs is None:
                    problems.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} has no RRSIG")
                    continue
                try:
                    dns.dnssec.validate(rrset, sigs, trusted, now=now)
                except dns.dnssec.ValidationFailure as e:
                    problems.append(f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: {e}")
        answer = [a for a in r.answer if a.name == name and a.rdtype == rtype]
        nsec = [a for a in r.authority if a.rdtype == dns.rdatatype.NSEC]
        rcode = dns.rcode.to_text(r.rcode())
        if answer:
            got = ",".join(sorted(x.to_text() for x in answer[0]))
            if expect and got != expect:
                problems.append(f"answer {got}, expected {expect}")
            result = f"{rcode} {got}"
        elif nsec:
            result = f"{rcode}, denied by " + "; ".join(
                f"NSEC {n.name} -> {' '.join(x.to_text() for x in n)}" for n in nsec)
        else:
            result = rcode
            problems.append("neither the answer nor a signed NSEC")
        if problems:
            bad = 1
            print(f"FAIL {what}: {result}; " + "; ".join(problems))
        else:
            print(f"OK   {what}: {result}; validated: {', '.join(seen)}")
    return bad


if __name__ == "__main__":
    sys.exit(main())
