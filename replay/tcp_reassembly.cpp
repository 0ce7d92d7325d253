#include "replay/tcp_reassembly.hpp"

#include <arpa/inet.h>
#include <pcap/dlt.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <tuple>
#include <vector>

namespace msglab::replay {

std::string Address::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, ip.data(), text, sizeof text);
    std::string out = v6 ? "[" + std::string(text) + "]" : std::string(text);
    return out + ":" + std::to_string(port);
}

const char* direction_arrow(Direction d) { return d == Direction::client_to_server ? "->" : "<-"; }

namespace {

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

std::uint16_t rd16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

std::uint32_t rd32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

enum class Verdict { tcp, not_tcp, malformed };
enum class Network { ipv4, ipv6, other };

struct TcpSegment {
    const std::uint8_t* src = nullptr;  // 4 or 16 address bytes inside the frame
    const std::uint8_t* dst = nullptr;
    bool v6 = false;
    std::uint16_t sport = 0, dport = 0;
    std::uint32_t seq = 0;
    std::uint8_t flags = 0;
    ByteView payload;
};

Network from_ethertype(std::uint16_t type) {
    if (type == 0x0800) return Network::ipv4;
    if (type == 0x86dd) return Network::ipv6;
    return Network::other;
}

// BSD address families: AF_INET6 differs between Linux, the BSDs and macOS.
Network from_family(std::uint32_t family) {
    if (family == 2) return Network::ipv4;
    if (family == 10 || family == 24 || family == 28 || family == 30) return Network::ipv6;
    return Network::other;
}

// Finds the network layer; on `tcp`, `off` <= frame size and `net` is IPv4 or IPv6.
Verdict link_layer(int linktype, ByteView f, Network& net, std::size_t& off) {
    const std::uint8_t* p = f.data();
    const std::size_t n = f.size();
    switch (linktype) {
        case DLT_EN10MB: {
            if (n < 14) return Verdict::malformed;
            std::uint16_t type = rd16(p + 12);
            off = 14;
            for (int tags = 0; type == 0x8100 || type == 0x88a8 || type == 0x9100; ++tags) {
                if (tags == 2) return Verdict::not_tcp;
                if (n - off < 4) return Verdict::malformed;
                type = rd16(p + off + 2);
                off += 4;
            }
            net = from_ethertype(type);
            break;
        }
        case DLT_LINUX_SLL:
            if (n < 16) return Verdict::malformed;
            net = from_ethertype(rd16(p + 14));
            off = 16;
            break;
        case DLT_LINUX_SLL2:
            if (n < 20) return Verdict::malformed;
            net = from_ethertype(rd16(p));
            off = 20;
            break;
        case DLT_NULL:
        case DLT_LOOP: {
            if (n < 4) return Verdict::malformed;
            // The capturing host's byte order for DLT_NULL, network order for DLT_LOOP, and writers mix them up.
            net = from_family(rd32(p));
            if (net == Network::other)
                net = from_family(std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 |
                                  p[0]);
            off = 4;
            break;
        }
        case DLT_RAW:
        case DLT_IPV4:
        case DLT_IPV6:
            if (n < 1) return Verdict::malformed;
            net = p[0] >> 4 == 4 ? Network::ipv4 : p[0] >> 4 == 6 ? Network::ipv6 : Network::other;
            off = 0;
            break;
        default:
            return Verdict::not_tcp;
    }
    return net == Network::other ? Verdict::not_tcp : Verdict::tcp;
}

Verdict parse(int linktype, ByteView f, TcpSegment& seg) {
    Network net = Network::other;
    std::size_t off = 0;
    if (Verdict v = link_layer(linktype, f, net, off); v != Verdict::tcp) return v;
    const std::uint8_t* p = f.data();
    const std::size_t n = f.size();
    const std::uint8_t* ip = p + off;
    std::size_t l4 = 0, end = 0;  // the TCP segment is [l4, end) of the frame
    if (net == Network::ipv4) {
        if (n - off < 20 || ip[0] >> 4 != 4) return Verdict::malformed;
        const std::size_t ihl = (ip[0] & 0x0fu) * 4u, total = rd16(ip + 2);
        // Ethernet pads short frames: the total length, not the frame, says where the packet ends.
        if (ihl < 20 || total < ihl || total > n - off) return Verdict::malformed;
        if (rd16(ip + 6) & 0x3fff) return Verdict::not_tcp;  // MF or a fragment offset
        if (ip[9] != 6) return Verdict::not_tcp;
        seg.src = ip + 12;
        seg.dst = ip + 16;
        seg.v6 = false;
        l4 = off + ihl;
        end = off + total;
    } else {
        if (n - off < 40 || ip[0] >> 4 != 6) return Verdict::malformed;
        const std::size_t payload_length = rd16(ip + 4);
        if (payload_length > n - off - 40) return Verdict::malformed;
        seg.src = ip + 8;
        seg.dst = ip + 24;
        seg.v6 = true;
        l4 = off + 40;
        end = l4 + payload_length;
        for (std::uint8_t next = ip[6]; next != 6;) {
            // Hop-by-hop, routing and destination options; fragments and anything else are not TCP.
            if (next != 0 && next != 43 && next != 60) return Verdict::not_tcp;
            if (end - l4 < 2) return Verdict::malformed;
            const std::size_t length = (p[l4 + 1] + 1u) * 8u;
            if (length > end - l4) return Verdict::malformed;
            next = p[l4];
            l4 += length;
        }
    }
    if (end - l4 < 20) return Verdict::malformed;
    const std::uint8_t* tcp = p + l4;
    const std::size_t data_offset = (tcp[12] >> 4) * 4u;
    if (data_offset < 20 || data_offset > end - l4) return Verdict::malformed;
    seg.sport = rd16(tcp);
    seg.dport = rd16(tcp + 2);
    seg.seq = rd32(tcp + 4);
    seg.flags = tcp[13];
    seg.payload = f.subspan(l4 + data_offset, end - l4 - data_offset);
    return Verdict::tcp;
}

// An address and port in a form that is cheap to compare and hash; the byte
// order of the words is the host's, which is fine for a consistent order.
struct Endpoint {
    std::uint64_t hi = 0, lo = 0;
    std::uint16_t port = 0;
};

Endpoint endpoint(const std::uint8_t* ip, bool v6, std::uint16_t port) {
    Endpoint e;
    e.port = port;
    if (v6) {
        std::memcpy(&e.hi, ip, 8);
        std::memcpy(&e.lo, ip + 8, 8);
    } else {
        std::uint32_t v4 = 0;
        std::memcpy(&v4, ip, 4);
        e.lo = v4;
    }
    return e;
}

bool operator<(const Endpoint& a, const Endpoint& b) {
    return std::tie(a.hi, a.lo, a.port) < std::tie(b.hi, b.lo, b.port);
}

Address address(const std::uint8_t* ip, bool v6, std::uint16_t port) {
    Address a;
    std::memcpy(a.ip.data(), ip, v6 ? 16 : 4);
    a.v6 = v6;
    a.port = port;
    return a;
}

// Both directions of a connection: the smaller endpoint first.
struct FlowKey {
    std::array<std::uint64_t, 5> w{};
    bool operator==(const FlowKey&) const = default;
};

struct FlowKeyHash {
    std::size_t operator()(const FlowKey& k) const noexcept {
        std::uint64_t h = 0x9e3779b97f4a7c15ull;
        for (std::uint64_t w : k.w) {
            h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
            h ^= h >> 31;
        }
        return static_cast<std::size_t>(h);
    }
};

struct Held {
    Bytes data;
    FrameInfo frame;  // where these bytes arrived, reported when they are delivered
};

// One direction. Positions count from the initial sequence number (the SYN
// takes position 0) in 64 bits, so the held map orders correctly across
// sequence number wrap-around.
struct Half {
    std::map<std::uint64_t, Held> held;  // never overlapping, all after `next`
    std::size_t held_bytes = 0;
    std::uint64_t next = 0;  // position of the next byte to deliver
    std::uint64_t fin_pos = 0;
    std::uint32_t base = 0;  // sequence number of position 0
    bool started = false, syn = false, fin = false, fin_done = false;

    // The position of `seq`, the nearest one to `next` in 32-bit sequence space (RFC 1982 style).
    std::int64_t position(std::uint32_t seq) const {
        const std::uint32_t expected = base + static_cast<std::uint32_t>(next);
        return static_cast<std::int64_t>(next) + static_cast<std::int32_t>(seq - expected);
    }
};

struct Stream {
    FlowKey key;
    std::uint64_t id = 0;
    bool a_is_client = true;  // the key's first endpoint is the client
    std::array<Half, 2> half;  // by Direction
    std::uint64_t last_us = 0;
    Stream* newer = nullptr;  // least-recently-used list
    Stream* older = nullptr;
};

}  // namespace

struct TcpReassembler::Impl {
    Impl(ReassemblyHandler& h, const ReassemblyLimits& l, ReassemblyStats& s) : handler(h), limits(l), stats(s) {
        constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
        idle_us = l.idle_timeout_sec > max / 1000000 ? max : l.idle_timeout_sec * 1000000;
        // Payload bytes alone do not bound memory: a flood of one-byte segments between holes would cost a
        // map node and an allocation each, so the number of held segments is bounded too.
        max_held_segments = std::max<std::size_t>(64, l.max_held_bytes / 32);
    }

    void on_segment(const TcpSegment& seg, const FrameInfo& info);
    void finish(const FrameInfo& last);

private:
    Stream& open(const FlowKey& key, bool src_is_a, bool syn_ack, const TcpSegment& seg, const FrameInfo& info);
    void close(Stream& s, const FrameInfo& info);
    void data(Stream& s, Direction dir, std::int64_t start, ByteView payload, const FrameInfo& info);
    void hold(Half& h, std::uint64_t pos, ByteView payload, const FrameInfo& info);
    void drain(Stream& s, Direction dir);
    void skip_hole(Stream& s, Direction dir, const FrameInfo& info);
    void flush(Stream& s, Direction dir, const FrameInfo& info);
    void gap(Stream& s, Direction dir, std::uint64_t missing, const FrameInfo& info);
    void link_newest(Stream& s);
    void unlink(Stream& s);

    static Direction direction(const Stream& s, bool src_is_a) {
        return src_is_a == s.a_is_client ? Direction::client_to_server : Direction::server_to_client;
    }
    static Half& half(Stream& s, Direction dir) { return s.half[static_cast<std::size_t>(dir)]; }
    static void check_fin(Half& h) {
        if (!h.fin || h.fin_done || h.next < h.fin_pos) return;
        h.fin_done = true;
        if (h.next == h.fin_pos) h.next += 1;
    }

    ReassemblyHandler& handler;
    ReassemblyLimits limits;
    ReassemblyStats& stats;
    std::unordered_map<FlowKey, Stream, FlowKeyHash> streams;
    Stream* newest = nullptr;
    Stream* oldest = nullptr;
    std::uint64_t next_id = 0;
    std::uint64_t now_us = 0;  // the latest capture time seen: timestamps may go backwards
    std::uint64_t idle_us = 0;
    std::size_t max_held_segments = 0;
};

void TcpReassembler::Impl::on_segment(const TcpSegment& seg, const FrameInfo& info) {
    now_us = std::max(now_us, info.ts_sec * 1000000 + info.ts_usec);
    while (oldest && now_us - oldest->last_us > idle_us) close(*oldest, info);

    const Endpoint src = endpoint(seg.src, seg.v6, seg.sport), dst = endpoint(seg.dst, seg.v6, seg.dport);
    const bool src_is_a = !(dst < src);
    const Endpoint& a = src_is_a ? src : dst;
    const Endpoint& b = src_is_a ? dst : src;
    const FlowKey key{{a.hi, a.lo, b.hi, b.lo,
                       std::uint64_t{a.port} << 32 | std::uint64_t{b.port} << 16 | std::uint64_t{seg.v6}}};
    const bool syn = seg.flags & kSyn, ack = seg.flags & kAck, fin = seg.flags & kFin, rst = seg.flags & kRst;

    auto it = streams.find(key);
    Stream* s = it == streams.end() ? nullptr : &it->second;
    if (s && syn && !ack) {
        // A new SYN on a known 4-tuple is the port's next connection, unless it repeats this one's SYN.
        const Half& h = half(*s, direction(*s, src_is_a));
        if (h.started && (!h.syn || h.base != seg.seq)) {
            close(*s, info);
            s = nullptr;
        }
    }
    if (!s) {
        // Bare ACKs, FINs and RSTs of an unknown connection are the tail of one already closed.
        if (rst || (!syn && seg.payload.empty())) return;
        s = &open(key, src_is_a, syn && ack, seg, info);
    } else if (s != newest) {
        unlink(*s);
        link_newest(*s);
    }
    s->last_us = now_us;

    const Direction dir = direction(*s, src_is_a);
    Half& h = half(*s, dir);
    if (!h.started) {
        h.started = true;
        h.syn = syn;
        h.base = seg.seq;
        h.next = syn ? 1 : 0;
    }
    // The SYN takes the sequence number before the first data byte.
    const std::int64_t start = h.position(seg.seq + (syn ? 1u : 0u));
    if (!seg.payload.empty()) data(*s, dir, start, seg.payload, info);
    if (fin && !h.fin) {
        const std::int64_t fin_pos = start + static_cast<std::int64_t>(seg.payload.size());
        if (fin_pos >= 0) {
            h.fin = true;
            h.fin_pos = static_cast<std::uint64_t>(fin_pos);
        }
    }
    check_fin(h);
    if (rst || (s->half[0].fin_done && s->half[1].fin_done)) close(*s, info);
}

Stream& TcpReassembler::Impl::open(const FlowKey& key, bool src_is_a, bool syn_ack, const TcpSegment& seg,
                                   const FrameInfo& info) {
    if (streams.size() >= limits.max_streams && oldest) close(*oldest, info);
    Stream& s = streams.try_emplace(key).first->second;
    s.key = key;
    s.id = next_id++;
    // Whoever answers with SYN-ACK is the server, even when the capture missed the SYN.
    const bool src_is_client = !syn_ack;
    s.a_is_client = src_is_a == src_is_client;
    link_newest(s);
    ++stats.streams;
    Address from = address(seg.src, seg.v6, seg.sport), to = address(seg.dst, seg.v6, seg.dport);
    if (src_is_client)
        handler.on_stream_open(s.id, from, to, info);
    else
        handler.on_stream_open(s.id, to, from, info);
    return s;
}

void TcpReassembler::Impl::data(Stream& s, Direction dir, std::int64_t start, ByteView payload,
                                const FrameInfo& info) {
    Half& h = half(s, dir);
    const auto next = static_cast<std::int64_t>(h.next);
    const auto size = static_cast<std::int64_t>(payload.size());
    if (start + size <= next) {
        stats.retransmitted_bytes += payload.size();
        return;
    }
    if (start < next) {
        const auto seen = static_cast<std::size_t>(next - start);
        stats.retransmitted_bytes += seen;
        payload = payload.subspan(seen);
        start = next;
    }
    if (start == next && h.held.empty()) {
        h.next += payload.size();
        handler.on_data(s.id, dir, payload, info);
        return;
    }
    hold(h, static_cast<std::uint64_t>(start), payload, info);
    drain(s, dir);
    while (h.held_bytes > limits.max_held_bytes || h.held.size() > max_held_segments) skip_hole(s, dir, info);
}

void TcpReassembler::Impl::hold(Half& h, std::uint64_t pos, ByteView payload, const FrameInfo& info) {
    const std::uint64_t start = pos, end = pos + payload.size();
    auto it = h.held.upper_bound(pos);
    if (it != h.held.begin()) {
        auto prev = std::prev(it);
        if (prev->first + prev->second.data.size() > pos) it = prev;
    }
    auto keep = [&](std::uint64_t from, std::uint64_t to) {
        auto piece = payload.subspan(static_cast<std::size_t>(from - start), static_cast<std::size_t>(to - from));
        h.held.emplace_hint(it, from, Held{Bytes(piece.begin(), piece.end()), info});
        h.held_bytes += piece.size();
    };
    while (pos < end) {
        if (it == h.held.end() || it->first >= end) {
            keep(pos, end);
            break;
        }
        if (it->first > pos) {
            keep(pos, it->first);
            pos = it->first;
        }
        const std::uint64_t covered = std::min(end, it->first + it->second.data.size());
        stats.overlap_bytes += covered - pos;
        pos = covered;
        ++it;
    }
}

void TcpReassembler::Impl::drain(Stream& s, Direction dir) {
    Half& h = half(s, dir);
    while (!h.held.empty() && h.held.begin()->first <= h.next) {
        auto node = h.held.extract(h.held.begin());
        Held& held = node.mapped();
        h.held_bytes -= held.data.size();
        const std::uint64_t seen = h.next - node.key();
        // Only a FIN consumed before data held beyond it can leave bytes behind `next` here.
        if (seen >= held.data.size()) {
            stats.retransmitted_bytes += held.data.size();
            continue;
        }
        stats.retransmitted_bytes += seen;
        ByteView fresh = ByteView(held.data).subspan(static_cast<std::size_t>(seen));
        h.next += fresh.size();
        handler.on_data(s.id, dir, fresh, held.frame);
    }
}

void TcpReassembler::Impl::gap(Stream& s, Direction dir, std::uint64_t missing, const FrameInfo& info) {
    ++stats.gaps;
    stats.gap_bytes += missing;
    handler.on_gap(s.id, dir, missing, info);
}

void TcpReassembler::Impl::skip_hole(Stream& s, Direction dir, const FrameInfo& info) {
    Half& h = half(s, dir);
    const std::uint64_t resume = h.held.begin()->first;
    const std::uint64_t missing = resume - h.next;
    h.next = resume;
    gap(s, dir, missing, info);
    drain(s, dir);
}

void TcpReassembler::Impl::flush(Stream& s, Direction dir, const FrameInfo& info) {
    Half& h = half(s, dir);
    drain(s, dir);
    while (!h.held.empty()) skip_hole(s, dir, info);
    // A FIN beyond everything delivered says how much never arrived.
    if (h.fin && !h.fin_done && h.fin_pos > h.next) {
        gap(s, dir, h.fin_pos - h.next, info);
        h.next = h.fin_pos;
    }
    check_fin(h);
}

void TcpReassembler::Impl::close(Stream& s, const FrameInfo& info) {
    flush(s, Direction::client_to_server, info);
    flush(s, Direction::server_to_client, info);
    handler.on_stream_close(s.id, info);
    unlink(s);
    const FlowKey key = s.key;
    streams.erase(key);
}

void TcpReassembler::Impl::finish(const FrameInfo& last) {
    std::vector<Stream*> open;
    open.reserve(streams.size());
    for (auto& entry : streams) open.push_back(&entry.second);
    std::sort(open.begin(), open.end(), [](const Stream* x, const Stream* y) { return x->id < y->id; });
    for (Stream* s : open) close(*s, last);
}

void TcpReassembler::Impl::link_newest(Stream& s) {
    s.older = newest;
    s.newer = nullptr;
    if (newest) newest->newer = &s;
    newest = &s;
    if (!oldest) oldest = &s;
}

void TcpReassembler::Impl::unlink(Stream& s) {
    (s.newer ? s.newer->older : newest) = s.older;
    (s.older ? s.older->newer : oldest) = s.newer;
    s.newer = s.older = nullptr;
}

TcpReassembler::TcpReassembler(ReassemblyHandler& handler, ReassemblyLimits limits)
    : m_impl(std::make_unique<Impl>(handler, limits, m_stats)) {}

TcpReassembler::~TcpReassembler() = default;

void TcpReassembler::add_frame(int linktype, ByteView frame, const FrameInfo& info) {
    ++m_stats.frames;
    TcpSegment seg;
    switch (parse(linktype, frame, seg)) {
        case Verdict::not_tcp:
            ++m_stats.not_tcp;
            return;
        case Verdict::malformed:
            ++m_stats.malformed;
            return;
        case Verdict::tcp:
            ++m_stats.tcp_segments;
            m_impl->on_segment(seg, info);
            return;
    }
}

void TcpReassembler::finish(const FrameInfo& last) { m_impl->finish(last); }

std::uint64_t reassemble_file(const std::string& path, TcpReassembler& reassembler) {
    PcapReader reader(path);
    const int linktype = reader.linktype();
    ByteView frame;
    FrameInfo info, last;
    std::uint64_t frames = 0;
    for (;;) {
        bool more = false;
        try {
            more = reader.next(frame, info);
        } catch (const std::runtime_error&) {
            // What was read before the damage is delivered and closed, not lost with the exception.
            reassembler.finish(last);
            throw;
        }
        if (!more) break;
        reassembler.add_frame(linktype, frame, info);
        last = info;
        ++frames;
    }
    reassembler.finish(last);
    return frames;
}

}  // namespace msglab::replay
