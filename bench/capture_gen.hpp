// Generated SecMsg captures for the benchmarks: one synthetic TCP connection,
// a handshake, then `packets` REGULAR packets (one per segment) under keys
// from a fixed shared secret, and the key log line that decrypts them.
#pragma once

#include <pcap/pcap.h>

#include <string>
#include <vector>

#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "secmsg/codec.hpp"
#include "secmsg/segmsg_cipher.hpp"
#include "secmsg/session.hpp"

namespace msglab::bench {

struct GeneratedCapture {
    std::uint64_t frames = 0;
    std::string keylog_line;  // SECMSG_SHARED_SECRET <session id> <Z>
};

inline GeneratedCapture generate_secmsg_capture(const std::string& path, std::uint64_t packets, std::size_t payload,
                                                std::uint64_t start_time) {
    Bytes z(256, 3);
    auto keys = secmsg::Keys::from_shared_secret(z);
    secmsg::SegmsgCipher cipher(keys.master);
    Bytes ya(256, 0x11), yb(256, 0x22);
    auto req = secmsg::make_handshake(secmsg::MessageType::handshake_request, ya, start_time);
    auto resp = secmsg::make_handshake(secmsg::MessageType::handshake_response, yb, start_time);
    GeneratedCapture g;
    g.keylog_line = std::string(secmsg::kKeyLogLabelShared) + " " + hex(ByteView(req.original_hash).first(8)) + " " +
                    hex(z) + "\n";
    replay::PcapWriter w(path, DLT_EN10MB);
    replay::SynthTcp tcp(0x7f000001, 40000, 0x7f000001, 5000);
    auto put = [&](const replay::SynthFrame& f) { w.write(f.frame, f.ts_sec, f.ts_usec); };
    tcp.set_time(start_time, 0);
    put(tcp.handshake_syn());
    put(tcp.handshake_syn_ack());
    put(tcp.handshake_ack());
    put(tcp.data(true, secmsg::serialize(req)));
    put(tcp.data(false, secmsg::serialize(resp)));
    // Every packet distinct, as in a real session: its number in the text,
    // its timestamp matching the frame time.
    Bytes pt(payload < 8 ? 8 : payload, 'm');
    for (std::uint64_t i = 0; i < packets; ++i) {
        std::uint64_t t = start_time + i / 100000;
        tcp.set_time(t, static_cast<std::uint32_t>(i % 100000) * 10);
        for (int b = 0; b < 8; ++b) pt[b] = static_cast<std::uint8_t>('0' + ((i >> (4 * b)) & 15));
        put(tcp.data(i % 2 == 0, secmsg::seal_regular_wire(keys, cipher, pt, t)));
    }
    w.flush();
    g.frames = w.frames();
    return g;
}

}  // namespace msglab::bench
