// TCP stream reassembly for captured frames, both directions.
//
// Link types: Ethernet (DLT_EN10MB, with 802.1Q tags), Linux cooked
// (DLT_LINUX_SLL, DLT_LINUX_SLL2), BSD loopback (DLT_NULL, DLT_LOOP) and raw IP
// (DLT_RAW); IPv4 and IPv6. Streams are numbered from 0 in order of first
// appearance, like tshark's tcp.stream. Out-of-order segments are held (with a
// bound) until the hole before them fills; retransmitted and overlapping bytes
// are dropped, the first copy wins; a hole that never fills is reported as a
// gap, never papered over, and delivery resumes after it.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/bytes.hpp"
#include "replay/pcap_io.hpp"

namespace msglab::replay {

struct Address {
    std::array<std::uint8_t, 16> ip{};  // IPv4 in the first 4 bytes
    bool v6 = false;
    std::uint16_t port = 0;
    std::string to_string() const;  // "127.0.0.1:5000", "[::1]:5000"
    bool operator==(const Address&) const = default;
};

// The client is the side that sent the first SYN; without a SYN in the
// capture, the side that sent the first segment seen.
enum class Direction { client_to_server = 0, server_to_client = 1 };
const char* direction_arrow(Direction d);  // "->" or "<-"

class ReassemblyHandler {
public:
    virtual ~ReassemblyHandler() = default;
    virtual void on_stream_open(std::uint64_t stream, const Address& client, const Address& server,
                                const FrameInfo& frame) {
        (void)stream, (void)client, (void)server, (void)frame;
    }
    // In-order bytes of one direction, from the segment in `frame`.
    virtual void on_data(std::uint64_t stream, Direction dir, ByteView data, const FrameInfo& frame) = 0;
    // `missing` bytes of one direction never arrived; the next on_data for
    // that direction continues after the hole.
    virtual void on_gap(std::uint64_t stream, Direction dir, std::uint64_t missing, const FrameInfo& frame) {
        (void)stream, (void)dir, (void)missing, (void)frame;
    }
    // Both directions finished (FIN or RST), idle too long, or end of input.
    virtual void on_stream_close(std::uint64_t stream, const FrameInfo& frame) { (void)stream, (void)frame; }
};

struct ReassemblyLimits {
    std::size_t max_held_bytes = 1 << 20;  // out-of-order bytes held per direction; past it, a gap
    std::size_t max_streams = 100000;      // open streams; past it, the least recently used closes
    std::uint64_t idle_timeout_sec = 600;  // a stream quiet this long (capture time) closes
};

struct ReassemblyStats {
    std::uint64_t frames = 0;
    std::uint64_t tcp_segments = 0;
    std::uint64_t not_tcp = 0;             // other link types, protocols or fragments
    std::uint64_t malformed = 0;           // truncated or inconsistent headers
    std::uint64_t retransmitted_bytes = 0; // dropped as already delivered
    std::uint64_t overlap_bytes = 0;       // dropped as already held
    std::uint64_t gaps = 0;
    std::uint64_t gap_bytes = 0;
    std::uint64_t streams = 0;
};

class TcpReassembler {
public:
    explicit TcpReassembler(ReassemblyHandler& handler, ReassemblyLimits limits = {});
    ~TcpReassembler();

    void add_frame(int linktype, ByteView frame, const FrameInfo& info);
    // End of input: holes still open become gaps, held data is delivered,
    // every open stream is closed.
    void finish(const FrameInfo& last);
    const ReassemblyStats& stats() const { return m_stats; }

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
    ReassemblyStats m_stats;
};

// Reads every frame of a capture file into `reassembler`, then finishes it.
// Returns the number of frames. Throws std::runtime_error from PcapReader.
std::uint64_t reassemble_file(const std::string& path, TcpReassembler& reassembler);

}  // namespace msglab::replay
