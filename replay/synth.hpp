// Synthetic TCP conversations as Ethernet/IPv4 (or IPv6) frames, for tests and
// benchmarks that need captures with exactly known contents.
#pragma once

#include <cstdint>
#include <vector>

#include "core/bytes.hpp"
#include "replay/pcap_io.hpp"

namespace msglab::replay {

struct SynthFrame {
    Bytes frame;  // Ethernet II
    std::uint64_t ts_sec = 0;
    std::uint32_t ts_usec = 0;
};

// One TCP connection between a client and a server. Each call appends the
// frames for one segment, with correct sequence and acknowledgement numbers,
// IP and TCP checksums; the caller can reorder, duplicate or drop them.
class SynthTcp {
public:
    SynthTcp(std::uint32_t client_ip, std::uint16_t client_port, std::uint32_t server_ip, std::uint16_t server_port,
             bool ipv6 = false);

    SynthFrame handshake_syn();
    SynthFrame handshake_syn_ack();
    SynthFrame handshake_ack();
    // A data segment from the client (to_server) or the server; advances that
    // side's sequence number by data.size().
    SynthFrame data(bool to_server, ByteView data);
    // A segment at an explicit offset from the side's initial sequence + 1,
    // without advancing anything: for retransmissions and overlaps.
    SynthFrame data_at(bool to_server, std::uint32_t stream_offset, ByteView data);
    SynthFrame fin(bool to_server);
    SynthFrame rst(bool to_server);
    // Every frame's time; advanced by the caller.
    void set_time(std::uint64_t sec, std::uint32_t usec);

private:
    SynthFrame segment(bool to_server, std::uint32_t seq, std::uint8_t flags, ByteView payload);
    std::uint32_t m_cip, m_sip;
    std::uint16_t m_cport, m_sport;
    bool m_v6;
    std::uint32_t m_cisn = 1000, m_sisn = 5000;
    std::uint32_t m_cnext = 0, m_snext = 0;  // offsets of the next new byte
    std::uint64_t m_sec = 1700000000;
    std::uint32_t m_usec = 0;
    std::uint16_t m_ip_id = 1;
};

}  // namespace msglab::replay
