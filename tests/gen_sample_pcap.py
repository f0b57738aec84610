#!/usr/bin/python3
"""Generate Tandem's sample capture: every session behaviour of the vendor
documents as real packets, for conf/tandem.conf (zones trust 10.1/16 and
fd00:1::/64, untrust 10.2/16 and fd00:2::/64, dmz 10.3/16).

Usage: /usr/bin/python3 tests/gen_sample_pcap.py OUT.pcapng

Deterministic: no randomness, fixed timestamps. Each scenario has its own
addresses/ports and a start time; the capture spans a bit over an hour so
the 1800 s TCP timeout is exercised in capture time.
"""
import struct
import sys

from scapy.all import (IP, TCP, UDP, ICMP, Ether, Raw, IPv6, ICMPv6EchoRequest,
                       ICMPv6EchoReply, IPv6ExtHdrDestOpt, GRE)
try:
    from scapy.all import wrpcapng as write_capture
except ImportError:  # older scapy: classic pcap is fine for libpcap
    from scapy.all import wrpcap as write_capture

BASE = 1_700_000_000.0
CMAC, SMAC = "02:00:00:00:01:02", "02:00:00:00:02:02"
events = []


def at(t, pkt):
    """Queue a packet at t seconds into the capture."""
    e = Ether(src=CMAC, dst=SMAC) / pkt
    e.time = BASE + t
    events.append(e)


def raw_ip(t, data):
    e = Ether(src=CMAC, dst=SMAC, type=0x0800) / Raw(data)
    e.time = BASE + t
    events.append(e)


def handshake(t, c, s, sp, dp, cisn=1000, sisn=5000, ip=IP):
    at(t, ip(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="S", seq=cisn,
                                 options=[("WScale", 7)]))
    at(t + 0.001, ip(src=s, dst=c) / TCP(sport=dp, dport=sp, flags="SA", seq=sisn,
                                         ack=cisn + 1, options=[("WScale", 7)]))
    at(t + 0.002, ip(src=c, dst=s) / TCP(sport=sp, dport=dp, flags="A",
                                         seq=cisn + 1, ack=sisn + 1))


def data(t, src, dst, sp, dp, seq, ack, n, flags="PA", ip=IP):
    at(t, ip(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
       / Raw(b"x" * n))


C, WEB, STRICT, LOOSE = "10.1.0.2", "10.2.0.10", "10.2.0.11", "10.2.0.12"
DNS, STATELESS, LIMITED, SHORT = "10.2.0.53", "10.2.0.20", "10.2.0.30", "10.2.0.40"

# 1. web: handshake, request/response, FIN both ways -> time-wait, expires.
handshake(0, C, WEB, 40001, 80)
data(0.01, C, WEB, 40001, 80, 1001, 5001, 100)
data(0.02, WEB, C, 80, 40001, 5001, 1101, 1000)
at(0.03, IP(src=C, dst=WEB) / TCP(sport=40001, dport=80, flags="FA", seq=1101, ack=6001))
at(0.04, IP(src=WEB, dst=C) / TCP(sport=80, dport=40001, flags="FA", seq=6001, ack=1102))
at(0.05, IP(src=C, dst=WEB) / TCP(sport=40001, dport=80, flags="A", seq=1102, ack=6002))

# 2. idle established session: expires after 1800 s (capture time).
handshake(1, C, WEB, 40002, 443)
# 3. established session kept alive by traffic every 1000 s: live at the end.
handshake(2, C, WEB, 40003, 443)
for i, t in enumerate((1000, 2000, 3000)):
    data(t, C, WEB, 40003, 443, 1001 + i * 10, 5001, 10)

# 4. handshake never completes: SYN, retransmitted SYN, gone 20 s later.
at(5, IP(src=C, dst=WEB) / TCP(sport=40004, dport=80, flags="S", seq=1000))
at(8, IP(src=C, dst=WEB) / TCP(sport=40004, dport=80, flags="S", seq=1000))

# 5. rst-invalidate-session: the RST ends the session at once.
handshake(10, C, WEB, 40005, 80)
at(10.1, IP(src=WEB, dst=C) / TCP(sport=80, dport=40005, flags="R", seq=5001))

# 6. half-close (Palo Alto tcp-wait 30 s), data of the closed side dropped,
#    then data after expiry dropped.
handshake(20, C, WEB, 40006, 80)
at(20.1, IP(src=WEB, dst=C) / TCP(sport=80, dport=40006, flags="FA", seq=5001, ack=1001))
data(20.2, C, WEB, 40006, 80, 1001, 5002, 300)          # other half: allowed
data(20.3, WEB, C, 80, 40006, 5002, 1301, 50)           # after own FIN: dropped
data(60, C, WEB, 40006, 80, 1301, 5002, 10)             # after expiry: dropped

# 7. UDP query/answer: udp-replied, expires after 60 s.
at(30, IP(src=C, dst=DNS) / UDP(sport=5353, dport=53) / Raw(b"q" * 30))
at(30.01, IP(src=DNS, dst=C) / UDP(sport=53, dport=5353) / Raw(b"a" * 60))

# 8. ICMP port unreachable quoting a UDP session ends it.
q = IP(src=C, dst=DNS) / UDP(sport=5354, dport=53) / Raw(b"q" * 30)
at(31, q)
at(31.01, IP(src=DNS, dst=C) / ICMP(type=3, code=3) / bytes(q)[:28])
# 9. ICMP error quoting a flow that has no session: dropped.
q2 = IP(src=C, dst=DNS) / UDP(sport=5399, dport=53)
at(32, IP(src=DNS, dst=C) / ICMP(type=3, code=3) / bytes(q2)[:28])

# 10. ping (strict): request then reply; icmp session expires after 60 s.
at(40, IP(src=C, dst=WEB) / ICMP(type=8, id=100, seq=1))
at(40.01, IP(src=WEB, dst=C) / ICMP(type=0, id=100, seq=1))
# 11. echo reply without request: refused where only requests are allowed,
#     accepted by the loose rule of 10.2.0.12.
at(41, IP(src=C, dst=WEB) / ICMP(type=0, id=101, seq=1))
at(42, IP(src=C, dst=LOOSE) / ICMP(type=0, id=102, seq=1))

# 12. strict (Forcepoint): an out-of-window segment is dropped; a gap (a
#     segment not seen, or reordered) passes but the session no longer
#     saw every packet.
handshake(50, C, STRICT, 40012, 80)
data(50.1, C, STRICT, 40012, 80, 1001, 5001, 100)
data(50.2, C, STRICT, 40012, 80, 1001 + 100_000_000, 5001, 10)   # out of window
data(50.3, C, STRICT, 40012, 80, 1301, 5001, 100)                # gap: passes
# 13. loose picks up a connection mid-stream.
data(51, C, LOOSE, 40013, 80, 777, 888, 100)
data(51.01, LOOSE, C, 80, 40013, 888, 877, 100)
# 14. normal needs a SYN.
data(52, C, WEB, 40014, 80, 777, 888, 100)

# 15. tracking off: stateless, replies accepted by their own rule.
at(53, IP(src=C, dst=STATELESS) / UDP(sport=4000, dport=5000) / Raw(b"s" * 20))
at(53.01, IP(src=STATELESS, dst=C) / UDP(sport=5000, dport=4000) / Raw(b"r" * 20))

# 16. per-source limit 3: the fourth concurrent session is refused.
for i in range(4):
    at(54 + i * 0.01, IP(src=C, dst=LIMITED) / TCP(sport=41000 + i, dport=8080, flags="S", seq=1))

# 17. rule idle timeout 10 s instead of UDP's 60 s.
at(55, IP(src=C, dst=SHORT) / UDP(sport=1000, dport=9000) / Raw(b"u" * 10))

# 18. another protocol (GRE): a generic session.
at(56, IP(src=C, dst=WEB) / GRE() / Raw(b"g" * 20))

# 19. reject rule (telnet) and drop rule (dmz).
at(57, IP(src=C, dst=WEB) / TCP(sport=40019, dport=23, flags="S", seq=1))
at(58, IP(src=C, dst="10.3.0.5") / UDP(sport=1, dport=2))

# 20. IPv6: TCP to the web server and an ICMPv6 echo.
handshake(60, "fd00:1::2", "fd00:2::10", 40020, 443, ip=IPv6)
at(61, IPv6(src="fd00:1::2", dst="fd00:2::10") / ICMPv6EchoRequest(id=7, seq=1))
at(61.01, IPv6(src="fd00:2::10", dst="fd00:1::2") / ICMPv6EchoReply(id=7, seq=1))

# 21. the usual TCP cases: simultaneous open, SYN to an established
#     session, retransmitted SYN/ACK.
at(70, IP(src=C, dst=WEB) / TCP(sport=40021, dport=80, flags="S", seq=100))
at(70.001, IP(src=WEB, dst=C) / TCP(sport=80, dport=40021, flags="S", seq=900))
at(70.002, IP(src=C, dst=WEB) / TCP(sport=40021, dport=80, flags="SA", seq=100, ack=901))
at(70.003, IP(src=WEB, dst=C) / TCP(sport=80, dport=40021, flags="SA", seq=900, ack=101))
handshake(71, C, WEB, 40022, 80)
at(71.1, IP(src=C, dst=WEB) / TCP(sport=40022, dport=80, flags="S", seq=99999))
at(71.2, IP(src=WEB, dst=C) / TCP(sport=80, dport=40022, flags="SA", seq=5000, ack=1001))

# 22. malformed packets: each is a counted drop with its own reason.
good = bytes(IP(src=C, dst=WEB) / TCP(sport=40030, dport=80, flags="S", seq=1))
ihl = bytearray(good); ihl[0] = 0x44                       # IHL 4
raw_ip(80, bytes(ihl))
tot = bytearray(good); tot[2:4] = struct.pack("!H", 400)   # beyond the buffer
raw_ip(80.1, bytes(tot))
doff = bytearray(good); doff[20 + 12] = 0x40               # TCP data offset 4
raw_ip(80.2, bytes(doff))
opt = bytes(IP(src=C, dst=WEB) / TCP(sport=40031, dport=80, flags="S", seq=1,
                                     options=[("NOP", None), ("NOP", None), ("NOP", None), ("NOP", None)]))
opt = bytearray(opt); opt[40] = 8; opt[41] = 0            # option length 0
raw_ip(80.3, bytes(opt))
at(80.4, IP(src=C, dst=DNS, proto=17) / Raw(struct.pack("!HHHH", 1000, 53, 200, 0)))  # UDP length 200
at(80.5, IP(src=DNS, dst=C) / ICMP(type=3, code=3) / bytes(q)[:24])         # quote truncated
chain = IPv6(src="fd00:1::2", dst="fd00:2::10")
for _ in range(9):
    chain = chain / IPv6ExtHdrDestOpt()
at(80.6, chain / UDP(sport=1, dport=53))                                     # chain too long
at(80.7, IP(src=C, dst=DNS, flags=0, frag=100, proto=17) / Raw(b"f" * 40))   # non-first fragment
at(80.8, IP(src=C, dst=DNS, flags="MF", frag=0) / UDP(sport=6000, dport=53, len=1008) / Raw(b"F" * 200))
at(80.9, IP(src=C, dst=WEB) / TCP(sport=40032, dport=80, flags="SF", seq=1))  # SYN+FIN
at(81, IP(src="192.0.2.1", dst=WEB) / TCP(sport=1, dport=80, flags="S"))      # no zone

# 23. a burst of 40 new UDP flows: nothing special with the example config;
#     with a tiny table (tests/data/small-table.conf) it fills the table.
for i in range(40):
    at(90 + i * 0.001, IP(src="10.1.0.50", dst=DNS) / UDP(sport=20000 + i, dport=53) / Raw(b"b" * 20))

# 24. keep the capture running past the long timeouts (and one more packet
#     from the kept-alive session at the very end).
data(3700, C, WEB, 40003, 443, 1031, 5001, 10)

events.sort(key=lambda e: float(e.time))
write_capture(sys.argv[1], events)
print(f"wrote {len(events)} packets to {sys.argv[1]}")
