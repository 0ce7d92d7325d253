#include "replay/synth.hpp"

#include <algorithm>
#include <array>

namespace msglab::replay {

namespace {

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
constexpr std::size_t kEthernet = 14, kIpv4 = 20, kIpv6 = 40, kTcp = 20;

void put16(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}

void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
}

// RFC 1071 one's-complement sum, folded at the end by checksum().
std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (n % 2) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    return sum;
}

std::uint16_t checksum(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

// fd00::<ipv4>: a unique-local address that never looks like a v4-mapped one.
std::array<std::uint8_t, 16> v6_address(std::uint32_t ip) {
    std::array<std::uint8_t, 16> a{};
    a[0] = 0xfd;
    put32(a.data() + 12, ip);
    return a;
}

}  // namespace

SynthTcp::SynthTcp(std::uint32_t client_ip, std::uint16_t client_port, std::uint32_t server_ip,
                   std::uint16_t server_port, bool ipv6)
    : m_cip(client_ip), m_sip(server_ip), m_cport(client_port), m_sport(server_port), m_v6(ipv6) {}

void SynthTcp::set_time(std::uint64_t sec, std::uint32_t usec) {
    m_sec = sec;
    m_usec = usec;
}

SynthFrame SynthTcp::handshake_syn() { return segment(true, m_cisn, kSyn, {}); }

SynthFrame SynthTcp::handshake_syn_ack() { return segment(false, m_sisn, kSyn | kAck, {}); }

SynthFrame SynthTcp::handshake_ack() { return segment(true, m_cisn + 1 + m_cnext, kAck, {}); }

SynthFrame SynthTcp::data(bool to_server, ByteView payload) {
    std::uint32_t& next = to_server ? m_cnext : m_snext;
    SynthFrame f = data_at(to_server, next, payload);
    next += static_cast<std::uint32_t>(payload.size());
    return f;
}

SynthFrame SynthTcp::data_at(bool to_server, std::uint32_t stream_offset, ByteView payload) {
    std::uint32_t isn = to_server ? m_cisn : m_sisn;
    return segment(to_server, isn + 1 + stream_offset, kAck | kPsh, payload);
}

SynthFrame SynthTcp::fin(bool to_server) {
    std::uint32_t& next = to_server ? m_cnext : m_snext;
    SynthFrame f = segment(to_server, (to_server ? m_cisn : m_sisn) + 1 + next, kFin | kAck, {});
    next += 1;  // the FIN takes one sequence number, which the peer's later ACKs cover
    return f;
}

SynthFrame SynthTcp::rst(bool to_server) {
    std::uint32_t next = to_server ? m_cnext : m_snext;
    return segment(to_server, (to_server ? m_cisn : m_sisn) + 1 + next, kRst | kAck, {});
}

SynthFrame SynthTcp::segment(bool to_server, std::uint32_t seq, std::uint8_t flags, ByteView payload) {
    const std::size_t ip_len = m_v6 ? kIpv6 : kIpv4;
    const std::size_t tcp_len = kTcp + payload.size();
    SynthFrame out;
    out.ts_sec = m_sec;
    out.ts_usec = m_usec;
    Bytes& f = out.frame;
    f.assign(kEthernet + ip_len + tcp_len, 0);

    const std::uint8_t client_mac[6] = {0x02, 0, 0, 0, 0, 0x01}, server_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
    const std::uint8_t* dst_mac = to_server ? server_mac : client_mac;
    const std::uint8_t* src_mac = to_server ? client_mac : server_mac;
    std::copy(dst_mac, dst_mac + 6, f.begin());
    std::copy(src_mac, src_mac + 6, f.begin() + 6);
    put16(&f[12], m_v6 ? 0x86dd : 0x0800);

    const std::uint32_t src_ip = to_server ? m_cip : m_sip, dst_ip = to_server ? m_sip : m_cip;
    std::uint8_t* ip = &f[kEthernet];
    std::uint32_t pseudo = 0;
    if (m_v6) {
        auto src = v6_address(src_ip), dst = v6_address(dst_ip);
        put32(ip, 0x60000000);
        put16(ip + 4, static_cast<std::uint32_t>(tcp_len));
        ip[6] = 6;
        ip[7] = 64;
        std::copy(src.begin(), src.end(), ip + 8);
        std::copy(dst.begin(), dst.end(), ip + 24);
        pseudo = sum16(ip + 8, 32);
        pseudo += static_cast<std::uint32_t>(tcp_len >> 16) + static_cast<std::uint32_t>(tcp_len & 0xffff) + 6;
    } else {
        ip[0] = 0x45;
        put16(ip + 2, static_cast<std::uint32_t>(kIpv4 + tcp_len));
        put16(ip + 4, m_ip_id++);
        put16(ip + 6, 0x4000);  // don't fragment, as Linux sends TCP
        ip[8] = 64;
        ip[9] = 6;
        put32(ip + 12, src_ip);
        put32(ip + 16, dst_ip);
        put16(ip + 10, checksum(sum16(ip, kIpv4)));
        pseudo = sum16(ip + 12, 8) + 6 + static_cast<std::uint32_t>(tcp_len);
    }

    std::uint8_t* tcp = ip + ip_len;
    const std::uint32_t other_next = to_server ? m_snext : m_cnext;
    const std::uint32_t other_isn = to_server ? m_sisn : m_cisn;
    // Before the server's SYN-ACK there is nothing to acknowledge.
    const bool acks = (flags & kAck) != 0;
    put16(tcp, to_server ? m_cport : m_sport);
    put16(tcp + 2, to_server ? m_sport : m_cport);
    put32(tcp + 4, seq);
    put32(tcp + 8, acks ? other_isn + 1 + other_next : 0);
    tcp[12] = (kTcp / 4) << 4;
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    std::copy(payload.begin(), payload.end(), tcp + kTcp);
    put16(tcp + 16, checksum(sum16(tcp, tcp_len, pseudo)));
    return out;
}

}  // namespace msglab::replay
