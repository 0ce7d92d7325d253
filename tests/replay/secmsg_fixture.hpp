// A real SecMsg session (two sans-I/O sessions, real DH) written as a pcap
// with synthetic TCP framing, plus its key log.
#pragma once

#include <pcap/pcap.h>

#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "secmsg/session.hpp"
#include "support.hpp"

namespace msglab::test {

struct SecmsgCapture {
    std::string pcap;
    std::string keylog;
    std::vector<std::string> client_texts, server_texts;
    std::string session_id;
};

// `timestamp` is the sessions' clock: an old one makes every message stale.
inline SecmsgCapture write_secmsg_capture(const TempDir& dir, std::uint64_t timestamp,
                                          std::vector<std::string> client_texts = {"hello from A", "second"},
                                          std::vector<std::string> server_texts = {"hello from B"}) {
    SecmsgCapture c;
    c.pcap = (dir / "secmsg.pcap").string();
    c.keylog = (dir / "keys.log").string();
    c.client_texts = client_texts;
    c.server_texts = server_texts;
    ManualClock clock(timestamp);
    DeterministicRng rng(timestamp);
    KeyLogWriter log(c.keylog);
    secmsg::Session a(secmsg::Role::initiator, {}, clock, rng, &log), b(secmsg::Role::responder, {}, clock, rng, &log);
    b.start();
    replay::SynthTcp tcp(0x7f000001, 40000, 0x7f000001, 5000);
    replay::PcapWriter w(c.pcap, DLT_EN10MB);
    auto put = [&](const replay::SynthFrame& f) { w.write(f.frame, f.ts_sec, f.ts_usec); };
    tcp.set_time(timestamp, 0);
    put(tcp.handshake_syn());
    put(tcp.handshake_syn_ack());
    put(tcp.handshake_ack());
    Bytes req = a.start().packets.at(0);
    put(tcp.data(true, req));
    Bytes resp = b.feed(req).packets.at(0);
    put(tcp.data(false, resp));
    a.feed(resp);
    for (const auto& t : client_texts) {
        Bytes p = a.send(as_bytes(t));
        b.feed(p);
        put(tcp.data(true, p));
    }
    for (const auto& t : server_texts) {
        Bytes p = b.send(as_bytes(t));
        a.feed(p);
        put(tcp.data(false, p));
    }
    put(tcp.fin(true));
    put(tcp.fin(false));
    c.session_id = hex(a.session_id());
    return c;
}

}  // namespace msglab::test
