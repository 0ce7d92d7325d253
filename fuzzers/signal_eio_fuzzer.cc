// The Signal-style chat's transport codecs on any input (reference/signal/
// eio.hpp): Engine.IO packets, polling payloads, Socket.IO packets, the open
// packet and the bounded JSON reader, each with round trips. The first byte
// chooses what the rest is:
//
//   s % 4 == 0  an Engine.IO packet (a WebSocket message): what parses is
//               built back to the same bytes; a MESSAGE's data goes on as a
//               Socket.IO packet (below)
//   s % 4 == 1  a polling payload under a bound of (s >> 2) * 64 packets
//               (none when 0): what parses is joined back to the same bytes,
//               no packet is empty, the bound holds; take_payload() over the
//               packets with a byte bound from the next byte gives back the
//               same packets in order, at least one per call, each call
//               within its bound unless it took a single packet
//   s % 4 == 2  a Socket.IO packet: parse(build(p)) == p and build is stable;
//               a tighter depth bound accepts no more; an EVENT or ACK is
//               rebuilt by sio_event() / sio_ack() from its parts
//   s % 4 == 3  the open packet's data: parse(build(o)) == o; and the
//               bounded JSON reader: what it reads is written compact, read
//               again to the same value and written again to the same text
#include <deque>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "signal/eio.hpp"

using namespace msglab;
using namespace msglab::signal;

namespace {

void sio_round_trip(std::string_view text) {
    auto p = parse_sio_packet(text);
    auto tight = parse_sio_packet(text, 4);
    if (!p) {
        FUZZ_CHECK(!tight);
        return;
    }
    if (tight) FUZZ_CHECK(*tight == *p);
    FUZZ_CHECK(p->type != SioType::binary_event && p->type != SioType::binary_ack);
    FUZZ_CHECK(!p->nsp.empty() && p->nsp[0] == '/' && p->nsp.size() <= kMaxNamespace);
    std::string built = build_sio_packet(*p);
    auto again = parse_sio_packet(built);
    FUZZ_CHECK(again);
    FUZZ_CHECK(*again == *p);
    FUZZ_CHECK(build_sio_packet(*again) == built);
    if (p->type == SioType::event)
        FUZZ_CHECK(sio_event(event_name(*p), event_args(*p), p->id, p->nsp) == *p);
    if (p->type == SioType::ack) FUZZ_CHECK(sio_ack(*p->id, *p->data, p->nsp) == *p);
    FUZZ_CHECK(eio_message(*p) == "4" + built);
}

void eio_round_trip(std::string_view text) {
    auto p = parse_eio_packet(text);
    if (!p) return;
    FUZZ_CHECK(build_eio_packet(*p) == text);
    auto again = parse_eio_packet(build_eio_packet(*p));
    FUZZ_CHECK(again && *again == *p);
    if (p->type == EioType::message) sio_round_trip(p->data);
}

void payload_round_trip(std::string_view body, std::size_t max_packets, std::uint8_t cut) {
    auto packets = parse_payload(body, kDefaultMaxPayload, max_packets);
    if (!packets) return;
    FUZZ_CHECK(!packets->empty() && packets->size() <= max_packets);
    FUZZ_CHECK(build_payload(*packets) == body);
    std::deque<std::string> queue;
    for (const auto& p : *packets) {
        FUZZ_CHECK(!build_eio_packet(p).empty());
        queue.push_back(build_eio_packet(p));
        if (p.type == EioType::message) sio_round_trip(p.data);
    }
    // Drained in payloads of at most `bound` bytes (or one packet each).
    std::size_t bound = 1 + cut * 4u;
    std::size_t next = 0;
    while (!queue.empty()) {
        std::size_t before = queue.size();
        std::string part = take_payload(queue, bound, max_packets);
        FUZZ_CHECK(queue.size() < before);
        std::size_t taken = before - queue.size();
        FUZZ_CHECK(part.size() <= bound || taken == 1);
        auto back = parse_payload(part, kDefaultMaxPayload, max_packets);
        FUZZ_CHECK(back && back->size() == taken);
        for (const auto& p : *back) FUZZ_CHECK(p == (*packets)[next++]);
    }
    FUZZ_CHECK(next == packets->size());
}

void open_round_trip(std::string_view data) {
    auto o = parse_open_data(data);
    if (o) {
        FUZZ_CHECK(!o->sid.empty() && o->sid.size() <= kMaxSidLength && o->upgrades.size() <= kMaxUpgrades);
        auto again = parse_open_data(build_open_data(*o));
        FUZZ_CHECK(again && *again == *o);
    }
    auto j = parse_json_bounded(data);
    if (!j) return;
    std::string text = dump_json(*j);
    auto back = parse_json_bounded(text);
    FUZZ_CHECK(back && *back == *j);
    FUZZ_CHECK(dump_json(*back) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t s = data[0];
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (s % 4) {
        case 0: eio_round_trip(rest); break;
        case 1: {
            std::size_t max_packets = (s >> 2) ? (s >> 2) * 64u : kMaxPacketsPerPayload;
            std::uint8_t cut = rest.empty() ? 0 : static_cast<std::uint8_t>(rest[0]);
            payload_round_trip(rest.empty() ? rest : rest.substr(1), max_packets, cut);
            break;
        }
        case 2: sio_round_trip(rest); break;
        case 3: open_round_trip(rest); break;
    }
    return 0;
}
