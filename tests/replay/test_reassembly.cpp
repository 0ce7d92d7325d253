#include <pcap/dlt.h>

#include <algorithm>
#include <map>
#include <vector>

#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "replay/tcp_reassembly.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::replay;
using msglab::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kClientIp = 0x0a000001, kServerIp = 0x0a000002;  // 10.0.0.1, 10.0.0.2
constexpr auto c2s = Direction::client_to_server;
constexpr auto s2c = Direction::server_to_client;
constexpr std::size_t kTcpOffset = 14 + 20;  // in SynthTcp's Ethernet/IPv4 frames

struct Event {
    enum Kind { open, data, gap, close } kind;
    std::uint64_t stream = 0;
    Direction dir = c2s;
    std::string bytes;
    std::uint64_t missing = 0;
    std::uint64_t frame = 0;
};

struct StreamRecord {
    Address client, server;
    std::string bytes[2];
    std::vector<std::uint64_t> gaps[2];
    int opens = 0, closes = 0, data_calls = 0;
    std::uint64_t close_frame = 0;
};

class Recorder : public ReassemblyHandler {
public:
    void on_stream_open(std::uint64_t stream, const Address& client, const Address& server,
                        const FrameInfo& frame) override {
        StreamRecord& s = streams[stream];
        s.client = client;
        s.server = server;
        ++s.opens;
        events.push_back({Event::open, stream, c2s, {}, 0, frame.frame});
    }
    void on_data(std::uint64_t stream, Direction dir, ByteView data, const FrameInfo& frame) override {
        StreamRecord& s = streams[stream];
        s.bytes[static_cast<int>(dir)] += to_string(data);
        ++s.data_calls;
        events.push_back({Event::data, stream, dir, to_string(data), 0, frame.frame});
    }
    void on_gap(std::uint64_t stream, Direction dir, std::uint64_t missing, const FrameInfo& frame) override {
        streams[stream].gaps[static_cast<int>(dir)].push_back(missing);
        events.push_back({Event::gap, stream, dir, {}, missing, frame.frame});
    }
    void on_stream_close(std::uint64_t stream, const FrameInfo& frame) override {
        StreamRecord& s = streams[stream];
        ++s.closes;
        s.close_frame = frame.frame;
        events.push_back({Event::close, stream, c2s, {}, 0, frame.frame});
    }

    const std::string& bytes(std::uint64_t stream, Direction dir) const {
        return streams.at(stream).bytes[static_cast<int>(dir)];
    }
    const std::vector<std::uint64_t>& gaps(std::uint64_t stream, Direction dir) const {
        return streams.at(stream).gaps[static_cast<int>(dir)];
    }
    // The kinds of one stream's events, in order: "open data gap data close".
    std::string story(std::uint64_t stream) const {
        static const char* names[] = {"open", "data", "gap", "close"};
        std::string out;
        for (const Event& e : events)
            if (e.stream == stream) out += (out.empty() ? "" : " ") + std::string(names[e.kind]);
        return out;
    }

    std::map<std::uint64_t, StreamRecord> streams;
    std::vector<Event> events;
};

struct Run {
    Recorder rec;
    ReassemblyStats stats;
    std::uint64_t frames = 0;
};

void write_capture(const fs::path& path, const std::vector<SynthFrame>& frames, int linktype = DLT_EN10MB) {
    PcapWriter writer(path.string(), linktype);
    for (const SynthFrame& f : frames) writer.write(f.frame, f.ts_sec, f.ts_usec);
    writer.flush();
    REQUIRE(writer.frames() == frames.size());
}

Run reassemble(const fs::path& path, ReassemblyLimits limits = {}) {
    Run run;
    TcpReassembler reassembler(run.rec, limits);
    run.frames = reassemble_file(path.string(), reassembler);
    run.stats = reassembler.stats();
    return run;
}

// Writes the frames to a fresh capture and reads it back.
Run round_trip(const std::vector<SynthFrame>& frames, ReassemblyLimits limits = {}, int linktype = DLT_EN10MB) {
    TempDir dir;
    write_capture(dir / "t.pcap", frames, linktype);
    Run run = reassemble(dir / "t.pcap", limits);
    CHECK(run.frames == frames.size());
    CHECK(run.stats.frames == frames.size());
    return run;
}

std::string text(char c, std::size_t n) { return std::string(n, c); }

// The same IP packet behind another link-layer header.
SynthFrame rewrap(SynthFrame f, const Bytes& link_header) {
    Bytes frame = link_header;
    frame.insert(frame.end(), f.frame.begin() + 14, f.frame.end());
    f.frame = std::move(frame);
    return f;
}

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v >> 8);
    b[at + 1] = static_cast<std::uint8_t>(v);
}

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
    put16(b, at, static_cast<std::uint16_t>(v >> 16));
    put16(b, at + 2, static_cast<std::uint16_t>(v));
}

}  // namespace

TEST_CASE("Reassembly: in-order conversation with handshake and FINs", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f;
    f.push_back(t.handshake_syn());
    f.push_back(t.handshake_syn_ack());
    f.push_back(t.handshake_ack());
    f.push_back(t.data(true, as_bytes("hello server")));
    f.push_back(t.data(false, as_bytes("hello client, nice to see you")));
    f.push_back(t.data(true, as_bytes("bye")));
    f.push_back(t.fin(true));
    f.push_back(t.fin(false));
    f.push_back(t.handshake_ack());  // the last ACK, after both FINs: no second stream
    Run r = round_trip(f);

    REQUIRE(r.rec.streams.size() == 1);
    const StreamRecord& s = r.rec.streams.at(0);
    CHECK(s.client.to_string() == "10.0.0.1:40000");
    CHECK(s.server.to_string() == "10.0.0.2:5000");
    CHECK(r.rec.bytes(0, c2s) == "hello serverbye");
    CHECK(r.rec.bytes(0, s2c) == "hello client, nice to see you");
    CHECK(s.opens == 1);
    CHECK(s.closes == 1);
    CHECK(s.close_frame == 8);  // closed by the second FIN, not at the end of input
    CHECK(r.rec.story(0) == "open data data data close");
    CHECK(r.rec.events.front().frame == 1);
    CHECK(r.stats.tcp_segments == 9);
    CHECK(r.stats.streams == 1);
    CHECK(r.stats.retransmitted_bytes == 0);
    CHECK(r.stats.overlap_bytes == 0);
    CHECK(r.stats.gaps == 0);
    CHECK(r.stats.malformed == 0);
    CHECK(r.stats.not_tcp == 0);
}

TEST_CASE("Reassembly: a SYN that carries data", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    SynthFrame syn = t.data_at(true, 0, as_bytes("early"));
    put32(syn.frame, kTcpOffset + 4, 1000);  // SynthTcp's client ISN: the data follows the SYN's number
    syn.frame[kTcpOffset + 13] = 0x02;
    std::vector<SynthFrame> f{syn, t.handshake_syn_ack(), t.data_at(true, 5, as_bytes(" data"))};
    Run r = round_trip(f);
    REQUIRE(r.rec.streams.size() == 1);
    CHECK(r.rec.streams.at(0).client.port == 40000);
    CHECK(r.rec.bytes(0, c2s) == "early data");
    CHECK(r.stats.retransmitted_bytes == 0);
}

TEST_CASE("Reassembly: one message split over several segments", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::string message;
    for (int i = 0; i < 300; ++i) message += static_cast<char>('a' + i % 26);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    for (std::size_t at = 0; at < message.size(); at += 100)
        f.push_back(t.data(true, as_bytes(std::string_view(message).substr(at, 100))));
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == message);
    CHECK(r.rec.bytes(0, s2c).empty());
    CHECK(r.rec.streams.at(0).data_calls == 3);
}

TEST_CASE("Reassembly: several messages coalesced in one segment", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    const std::string joined = "first\nsecond\nthird\n";
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack(),
                              t.data(false, as_bytes(joined))};
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, s2c) == joined);
    CHECK(r.rec.bytes(0, c2s).empty());
    CHECK(r.rec.streams.at(0).data_calls == 1);
}

TEST_CASE("Reassembly: out-of-order segments 3, 1, 2", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    SynthFrame d1 = t.data(true, as_bytes("one-")), d2 = t.data(true, as_bytes("two-")),
               d3 = t.data(true, as_bytes("three"));
    f.insert(f.end(), {d3, d1, d2, t.fin(true), t.fin(false)});
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == "one-two-three");
    CHECK(r.stats.gaps == 0);
    CHECK(r.stats.retransmitted_bytes == 0);
    CHECK(r.stats.overlap_bytes == 0);
    // Held bytes are reported with the frame that carried them (frame 4 is segment 3).
    std::vector<std::pair<std::string, std::uint64_t>> data;
    for (const Event& e : r.rec.events)
        if (e.kind == Event::data) data.emplace_back(e.bytes, e.frame);
    CHECK(data == std::vector<std::pair<std::string, std::uint64_t>>{{"one-", 5}, {"two-", 6}, {"three", 4}});
    CHECK(r.rec.streams.at(0).close_frame == 8);
}

TEST_CASE("Reassembly: a retransmitted segment is dropped and counted", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    SynthFrame d1 = t.data(true, as_bytes("0123456789"));
    SynthFrame d2 = t.data(true, as_bytes("abcdef"));
    f.insert(f.end(), {d1, d2, d1, t.data(true, as_bytes("XYZ")), d2});
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == "0123456789abcdefXYZ");
    CHECK(r.stats.retransmitted_bytes == 16);
    CHECK(r.stats.gaps == 0);
    CHECK(r.stats.overlap_bytes == 0);
}

TEST_CASE("Reassembly: overlapping segments, the first copy wins", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    f.push_back(t.data_at(true, 10, as_bytes("abcdefghij")));  // [10, 20) held
    f.push_back(t.data_at(true, 15, as_bytes("XXXXXXXXXX")));  // [15, 25): 5 bytes overlap the held copy
    f.push_back(t.data_at(true, 0, as_bytes("0123456789")));   // fills the hole
    f.push_back(t.data_at(true, 5, as_bytes("zzzzzzzzzz")));   // [5, 15): already delivered
    f.push_back(t.data_at(true, 22, as_bytes("YYYYYY")));      // [22, 28): 3 delivered, 3 new
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == "0123456789abcdefghijXXXXXYYY");
    CHECK(r.stats.overlap_bytes == 5);
    CHECK(r.stats.retransmitted_bytes == 13);
    CHECK(r.stats.gaps == 0);
    CHECK(r.rec.streams.at(0).closes == 1);
}

TEST_CASE("Reassembly: a segment that never arrives is a gap of exactly its size", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    f.push_back(t.data(true, as_bytes(text('a', 10))));
    t.data(true, as_bytes(text('b', 20)));  // lost
    f.push_back(t.data(true, as_bytes(text('c', 30))));
    f.push_back(t.data(false, as_bytes("reply")));
    f.push_back(t.fin(true));
    f.push_back(t.fin(false));
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == text('a', 10) + text('c', 30));
    CHECK(r.rec.bytes(0, s2c) == "reply");
    CHECK(r.rec.gaps(0, c2s) == std::vector<std::uint64_t>{20});
    CHECK(r.rec.gaps(0, s2c).empty());
    CHECK(r.stats.gaps == 1);
    CHECK(r.stats.gap_bytes == 20);
    // The client's FIN waits behind the hole, so the end of input reports it, then the held data.
    CHECK(r.rec.story(0) == "open data data gap data close");
    CHECK(r.rec.streams.at(0).closes == 1);
}

TEST_CASE("Reassembly: a FIN after a lost tail reports the missing bytes", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    f.push_back(t.data(true, as_bytes("kept")));
    t.data(true, as_bytes("lost tail"));
    f.push_back(t.fin(true));
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == "kept");
    CHECK(r.rec.gaps(0, c2s) == std::vector<std::uint64_t>{9});
    CHECK(r.stats.gap_bytes == 9);
}

TEST_CASE("Reassembly: two interleaved streams are numbered by first appearance", "[reassembly]") {
    SynthTcp a(kClientIp, 40001, kServerIp, 5000), b(kClientIp, 40002, kServerIp, 5000);
    std::vector<SynthFrame> f;
    f.push_back(b.handshake_syn());
    f.push_back(a.handshake_syn());
    f.push_back(a.handshake_syn_ack());
    f.push_back(b.handshake_syn_ack());
    f.push_back(a.handshake_ack());
    f.push_back(b.handshake_ack());
    f.push_back(a.data(true, as_bytes("A1 ")));
    f.push_back(b.data(true, as_bytes("B1 ")));
    f.push_back(b.data(false, as_bytes("b-reply")));
    f.push_back(a.data(true, as_bytes("A2")));
    f.push_back(a.data(false, as_bytes("a-reply")));
    f.push_back(b.data(true, as_bytes("B2")));
    f.push_back(b.fin(true));
    f.push_back(a.fin(true));
    f.push_back(b.fin(false));
    f.push_back(a.fin(false));
    Run r = round_trip(f);
    REQUIRE(r.rec.streams.size() == 2);
    CHECK(r.rec.streams.at(0).client.port == 40002);
    CHECK(r.rec.streams.at(1).client.port == 40001);
    CHECK(r.rec.bytes(0, c2s) == "B1 B2");
    CHECK(r.rec.bytes(0, s2c) == "b-reply");
    CHECK(r.rec.bytes(1, c2s) == "A1 A2");
    CHECK(r.rec.bytes(1, s2c) == "a-reply");
    CHECK(r.rec.streams.at(0).close_frame == 15);
    CHECK(r.rec.streams.at(1).close_frame == 16);
    CHECK(r.stats.streams == 2);
}

TEST_CASE("Reassembly: IPv6", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000, true);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    SynthFrame d1 = t.data(true, as_bytes("over ")), d2 = t.data(true, as_bytes("IPv6"));
    f.insert(f.end(), {d2, d1, t.data(false, as_bytes("ok")), t.fin(true), t.fin(false)});
    REQUIRE(f[0].frame[12] == 0x86);
    Run r = round_trip(f);
    REQUIRE(r.rec.streams.size() == 1);
    CHECK(r.rec.streams.at(0).client.to_string() == "[fd00::a00:1]:40000");
    CHECK(r.rec.streams.at(0).server.to_string() == "[fd00::a00:2]:5000");
    CHECK(r.rec.bytes(0, c2s) == "over IPv6");
    CHECK(r.rec.bytes(0, s2c) == "ok");
    CHECK(r.rec.streams.at(0).close_frame == 8);
}

TEST_CASE("Reassembly: a capture that starts mid-stream", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    t.handshake_syn();
    t.handshake_syn_ack();
    t.handshake_ack();
    t.data(true, as_bytes("before the capture"));
    std::vector<SynthFrame> f;
    // The first segment seen is the server's: without a SYN its sender counts as the client.
    f.push_back(t.data(false, as_bytes("server speaks first")));
    f.push_back(t.data(true, as_bytes("client answers")));
    f.push_back(t.data(false, as_bytes(" again")));
    Run r = round_trip(f);
    REQUIRE(r.rec.streams.size() == 1);
    CHECK(r.rec.streams.at(0).client.to_string() == "10.0.0.2:5000");
    CHECK(r.rec.streams.at(0).server.to_string() == "10.0.0.1:40000");
    CHECK(r.rec.bytes(0, c2s) == "server speaks first again");
    CHECK(r.rec.bytes(0, s2c) == "client answers");
    CHECK(r.stats.gaps == 0);
}

TEST_CASE("Reassembly: sequence numbers wrapping around 2^32", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    const std::uint32_t start = 0xffffffffu - 1000u - 10u;  // SynthTcp's client ISN is 1000: seq 2^32 - 10
    std::vector<SynthFrame> f;
    f.push_back(t.data_at(true, start, as_bytes(text('a', 8))));
    f.push_back(t.data_at(true, start + 16, as_bytes(text('c', 8))));  // across the wrap, held
    f.push_back(t.data_at(true, start + 8, as_bytes(text('b', 8))));
    f.push_back(t.data_at(true, start + 24, as_bytes(text('d', 8))));
    Run r = round_trip(f);
    CHECK(r.rec.bytes(0, c2s) == text('a', 8) + text('b', 8) + text('c', 8) + text('d', 8));
    CHECK(r.stats.gaps == 0);
    CHECK(r.stats.retransmitted_bytes == 0);
}

TEST_CASE("Reassembly: other link types", "[reassembly]") {
    struct Case {
        const char* name;
        int linktype;
        bool v6;
        Bytes header;
    };
    Bytes sll(16, 0), sll6(16, 0), sll2(20, 0), vlan(14 + 8, 0);
    put16(sll, 2, 772);  // ARPHRD_LOOPBACK
    put16(sll, 4, 6);
    put16(sll, 14, 0x0800);
    sll6 = sll;
    put16(sll6, 14, 0x86dd);
    put16(sll2, 0, 0x0800);
    put16(sll2, 8, 772);
    put16(vlan, 12, 0x88a8);  // 802.1ad outer tag, 802.1Q inner tag
    put16(vlan, 14, 100);
    put16(vlan, 16, 0x8100);
    put16(vlan, 18, 200);
    put16(vlan, 20, 0x0800);
    const std::vector<Case> cases{
        {"Linux cooked", DLT_LINUX_SLL, false, sll},
        {"Linux cooked, IPv6", DLT_LINUX_SLL, true, sll6},
        {"Linux cooked v2", DLT_LINUX_SLL2, false, sll2},
        {"BSD loopback, host order", DLT_NULL, false, {2, 0, 0, 0}},
        {"BSD loopback, macOS IPv6", DLT_NULL, true, {30, 0, 0, 0}},
        {"OpenBSD loopback, network order", DLT_LOOP, false, {0, 0, 0, 2}},
        {"OpenBSD loopback, IPv6", DLT_LOOP, true, {0, 0, 0, 24}},
        {"raw IP", DLT_RAW, false, {}},
        {"raw IPv6", DLT_RAW, true, {}},
        {"Ethernet with two VLAN tags", DLT_EN10MB, false, vlan},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        SynthTcp t(kClientIp, 40000, kServerIp, 5000, c.v6);
        std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
        SynthFrame d1 = t.data(true, as_bytes("link ")), d2 = t.data(true, as_bytes("layers"));
        f.insert(f.end(), {d2, d1, t.data(false, as_bytes("fine")), t.fin(true), t.fin(false)});
        for (SynthFrame& frame : f) frame = rewrap(frame, c.header);
        Run r = round_trip(f, {}, c.linktype);
        REQUIRE(r.rec.streams.size() == 1);
        CHECK(r.rec.streams.at(0).client.port == 40000);
        CHECK(r.rec.streams.at(0).client.v6 == c.v6);
        CHECK(r.rec.bytes(0, c2s) == "link layers");
        CHECK(r.rec.bytes(0, s2c) == "fine");
        CHECK(r.rec.streams.at(0).close_frame == 8);
        CHECK(r.stats.malformed == 0);
        CHECK(r.stats.not_tcp == 0);
    }
}

TEST_CASE("Reassembly: malformed and non-TCP frames are counted, never read past", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    const SynthFrame good = t.data(true, as_bytes("payload"));

    SynthFrame truncated_ip = good;
    truncated_ip.frame.resize(14 + 10);
    SynthFrame ihl3 = good;
    ihl3.frame[14] = 0x43;
    SynthFrame long_offset = good;  // 60-byte TCP header in a 27-byte segment
    long_offset.frame[kTcpOffset + 12] = 0xf0;
    SynthFrame short_total = good;  // the IP total length claims more than the frame holds
    put16(short_total.frame, 14 + 2, 1500);
    SynthFrame runt = good;
    runt.frame.resize(9);
    f.insert(f.end(), {truncated_ip, ihl3, long_offset, short_total, runt});

    SynthFrame udp = good, fragment = good, arp = good;
    udp.frame[14 + 9] = 17;
    put16(fragment.frame, 14 + 6, 0x2000);  // more fragments
    put16(arp.frame, 12, 0x0806);
    SynthFrame padded = t.data(true, as_bytes(" and more"));  // Ethernet padding after the IP packet
    padded.frame.insert(padded.frame.end(), 20, 0xee);
    f.insert(f.end(), {udp, fragment, arp, good, padded});

    Run r = round_trip(f);
    CHECK(r.stats.malformed == 5);
    CHECK(r.stats.not_tcp == 3);
    CHECK(r.stats.tcp_segments == 5);
    REQUIRE(r.rec.streams.size() == 1);
    CHECK(r.rec.bytes(0, c2s) == "payload and more");

    // Every truncation of a valid frame, fed directly: all malformed, nothing delivered.
    Recorder rec;
    TcpReassembler direct(rec);
    for (std::size_t n = 0; n < good.frame.size(); ++n) {
        Bytes cut(good.frame.begin(), good.frame.begin() + static_cast<std::ptrdiff_t>(n));
        direct.add_frame(DLT_EN10MB, cut, FrameInfo{n + 1, 1700000000, 0});
    }
    direct.finish(FrameInfo{});
    CHECK(direct.stats().frames == good.frame.size());
    CHECK(direct.stats().malformed == good.frame.size());
    CHECK(rec.events.empty());
}

TEST_CASE("Reassembly: past the held-bytes limit a hole becomes a gap at once", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    f.push_back(t.data(true, as_bytes(text('a', 10))));
    t.data(true, as_bytes(text('-', 50)));  // lost
    for (char c : {'b', 'c', 'd', 'e'}) f.push_back(t.data(true, as_bytes(text(c, 40))));
    f.push_back(t.fin(true));
    f.push_back(t.fin(false));
    ReassemblyLimits limits;
    limits.max_held_bytes = 100;
    Run r = round_trip(f, limits);
    CHECK(r.rec.bytes(0, c2s) == text('a', 10) + text('b', 40) + text('c', 40) + text('d', 40) + text('e', 40));
    CHECK(r.rec.gaps(0, c2s) == std::vector<std::uint64_t>{50});
    CHECK(r.stats.gaps == 1);
    // The third held segment (frame 7) passes 100 bytes: the gap comes then, and the FINs close the stream.
    auto gap = std::find_if(r.rec.events.begin(), r.rec.events.end(),
                            [](const Event& e) { return e.kind == Event::gap; });
    REQUIRE(gap != r.rec.events.end());
    CHECK(gap->frame == 7);
    CHECK(r.rec.story(0) == "open data gap data data data data close");
    CHECK(r.rec.streams.at(0).close_frame == 10);
}

TEST_CASE("Reassembly: RST closes at once, after reporting the hole and the held data", "[reassembly]") {
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack()};
    f.push_back(t.data(true, as_bytes("abc")));
    t.data(true, as_bytes("defg"));  // lost
    f.push_back(t.data(true, as_bytes("hij")));
    f.push_back(t.rst(false));
    f.push_back(t.data(false, as_bytes("late")));  // same 4-tuple, after the RST: a new stream
    Run r = round_trip(f);
    REQUIRE(r.rec.streams.size() == 2);
    CHECK(r.rec.story(0) == "open data gap data close");
    CHECK(r.rec.streams.at(0).close_frame == 6);
    CHECK(r.rec.gaps(0, c2s) == std::vector<std::uint64_t>{4});
    CHECK(r.rec.bytes(0, c2s) == "abchij");
    CHECK(r.rec.bytes(1, c2s) == "late");
    CHECK(r.rec.streams.at(1).client.port == 5000);
}

TEST_CASE("Reassembly: idle streams and the stream limit close the least recently used", "[reassembly]") {
    SECTION("idle timeout in capture time") {
        SynthTcp a(kClientIp, 40001, kServerIp, 5000), b(kClientIp, 40002, kServerIp, 5000);
        std::vector<SynthFrame> f{a.data(true, as_bytes("a")), b.data(true, as_bytes("b"))};
        b.set_time(1700000000 + 50, 0);
        f.push_back(b.data(true, as_bytes("b")));
        b.set_time(1700000000 + 100, 0);
        f.push_back(b.data(true, as_bytes("b")));  // a has been quiet for 100 s
        ReassemblyLimits limits;
        limits.idle_timeout_sec = 60;
        Run r = round_trip(f, limits);
        REQUIRE(r.rec.streams.size() == 2);
        CHECK(r.rec.streams.at(0).close_frame == 4);
        CHECK(r.rec.bytes(1, c2s) == "bbb");
        CHECK(r.rec.streams.at(1).closes == 1);
    }
    SECTION("max_streams") {
        SynthTcp a(kClientIp, 40001, kServerIp, 5000), b(kClientIp, 40002, kServerIp, 5000),
            c(kClientIp, 40003, kServerIp, 5000);
        std::vector<SynthFrame> f{a.data(true, as_bytes("a")), b.data(true, as_bytes("b")),
                                  a.data(true, as_bytes("a")), c.data(true, as_bytes("c"))};
        ReassemblyLimits limits;
        limits.max_streams = 2;
        Run r = round_trip(f, limits);
        REQUIRE(r.rec.streams.size() == 3);
        CHECK(r.rec.streams.at(1).close_frame == 4);  // b, not a: a was used after b
        CHECK(r.rec.bytes(0, c2s) == "aa");
        CHECK(r.rec.events[r.rec.events.size() - 3].kind == Event::data);  // finish closes a, then c
        CHECK(r.rec.story(0) == "open data data close");
    }
}

TEST_CASE("PcapReader: a file truncated inside a record", "[pcap]") {
    TempDir dir;
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    std::vector<SynthFrame> f{t.handshake_syn(), t.handshake_syn_ack(), t.handshake_ack(),
                              t.data(true, as_bytes("complete")), t.data(true, as_bytes("cut in the middle"))};
    const fs::path path = dir / "damaged.pcap";
    write_capture(path, f);
    fs::resize_file(path, fs::file_size(path) - 10);

    PcapReader reader(path.string());
    CHECK(reader.linktype() == DLT_EN10MB);
    ByteView frame;
    FrameInfo info;
    std::uint64_t read = 0;
    std::string error;
    try {
        while (reader.next(frame, info)) ++read;
    } catch (const std::runtime_error& e) {
        error = e.what();
    }
    // libpcap reports the short record as an error, after the four whole frames.
    CHECK(read == 4);
    CHECK(info.frame == 4);
    CHECK(error.find(path.string()) != std::string::npos);
    CHECK(error.find("truncated") != std::string::npos);

    // What came before the damage still reaches the handler, closed, before the exception.
    Recorder rec;
    TcpReassembler reassembler(rec);
    CHECK_THROWS_AS(reassemble_file(path.string(), reassembler), std::runtime_error);
    REQUIRE(rec.streams.size() == 1);
    CHECK(rec.bytes(0, c2s) == "complete");
    CHECK(rec.story(0) == "open data close");
}

TEST_CASE("PcapReader and PcapWriter: errors name the file", "[pcap]") {
    TempDir dir;
    const std::string missing = (dir / "no-such-capture.pcap").string();
    try {
        PcapReader reader(missing);
        FAIL("opened a file that does not exist");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find(missing) != std::string::npos);
    }
    Recorder rec;
    TcpReassembler reassembler(rec);
    CHECK_THROWS_WITH(reassemble_file(missing, reassembler), Catch::Contains(missing));

    const std::string unwritable = (dir / "no-such-folder" / "out.pcap").string();
    CHECK_THROWS_WITH(PcapWriter(unwritable, DLT_EN10MB), Catch::Contains(unwritable));

    msglab::test::write_file(dir / "junk.pcap", "this is not a capture file at all");
    CHECK_THROWS_WITH(PcapReader((dir / "junk.pcap").string()), Catch::Contains("junk.pcap"));
}

TEST_CASE("PcapWriter and PcapReader: frames and timestamps round-trip", "[pcap]") {
    TempDir dir;
    SynthTcp t(kClientIp, 40000, kServerIp, 5000);
    t.set_time(1700000123, 456789);
    const SynthFrame a = t.handshake_syn();
    t.set_time(1700000124, 1);
    const SynthFrame b = t.data(true, as_bytes("x"));
    write_capture(dir / "rt.pcap", {a, b});
    PcapReader reader((dir / "rt.pcap").string());
    ByteView frame;
    FrameInfo info;
    REQUIRE(reader.next(frame, info));
    CHECK(Bytes(frame.begin(), frame.end()) == a.frame);
    CHECK(info.frame == 1);
    CHECK(info.ts_sec == 1700000123);
    CHECK(info.ts_usec == 456789);
    REQUIRE(reader.next(frame, info));
    CHECK(Bytes(frame.begin(), frame.end()) == b.frame);
    CHECK(info.frame == 2);
    CHECK(info.ts_sec == 1700000124);
    CHECK(info.ts_usec == 1);
    CHECK_FALSE(reader.next(frame, info));
}

TEST_CASE("Reassembly: the original SecMsg capture", "[reassembly][captures]") {
    auto dir = msglab::test::captures_dir();
    if (!dir) MSGLAB_SKIP("captures folder not found (set MSGLAB_CAPTURES_DIR)");
    const fs::path path = *dir / "originals" / "secmsg.pcap";
    if (!fs::exists(path)) MSGLAB_SKIP(path.string() + " not found");
    Run r = reassemble(path);
    std::cout << "secmsg.pcap: " << r.frames << " frames, streams " << r.rec.streams.size();
    for (const auto& [id, s] : r.rec.streams)
        std::cout << "; stream " << id << " " << s.client.to_string() << " -> " << s.server.to_string() << ": "
                  << s.bytes[0].size() << " bytes client to server, " << s.bytes[1].size() << " back";
    std::cout << std::endl;

    REQUIRE(r.rec.streams.size() == 1);
    const StreamRecord& s = r.rec.streams.at(0);
    CHECK(s.client.to_string() == "127.0.0.1:58594");
    CHECK(s.server.to_string() == "127.0.0.1:5000");
    // A 339-byte HANDSHAKE_REQUEST/RESPONSE, then one 95-byte REGULAR message each way ("hello from A/B").
    CHECK(s.bytes[0].size() == 339 + 95);
    CHECK(s.bytes[1].size() == 339 + 95);
    CHECK(s.bytes[0].rfind(std::string("SegMSG\x02", 7), 0) == 0);
    CHECK(s.bytes[1].rfind(std::string("SegMSG\x03", 7), 0) == 0);
    CHECK(s.bytes[0].compare(339, 7, std::string("SegMSG\x01", 7)) == 0);
    CHECK(s.bytes[1].compare(339, 7, std::string("SegMSG\x01", 7)) == 0);
    CHECK(s.closes == 1);
    CHECK(s.close_frame == 13);  // the second FIN; frame 14 is the last ACK
    CHECK(r.frames == 14);
    CHECK(r.stats.tcp_segments == 14);
    CHECK(r.stats.gaps == 0);
    CHECK(r.stats.retransmitted_bytes == 0);
    CHECK(r.stats.malformed == 0);
}
