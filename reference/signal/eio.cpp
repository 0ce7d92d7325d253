#include "signal/eio.hpp"

#include <limits>

#include "core/crypto.hpp"
#include "core/pyjson.hpp"

namespace msglab::signal {

namespace {

constexpr char kSeparator = '\x1e';

ParseError error(ParseErrc code, std::size_t offset, std::string detail) {
    return ParseError{code, offset, std::move(detail)};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

// ---- Engine.IO ------------------------------------------------------------------

const char* eio_type_name(EioType t) {
    switch (t) {
        case EioType::open: return "OPEN";
        case EioType::close: return "CLOSE";
        case EioType::ping: return "PING";
        case EioType::pong: return "PONG";
        case EioType::message: return "MESSAGE";
        case EioType::upgrade: return "UPGRADE";
        case EioType::noop: return "NOOP";
    }
    return "UNKNOWN";
}

Result<EioPacket, ParseError> parse_eio_packet(std::string_view text, std::size_t max_bytes) {
    if (text.empty()) return unexpected(error(ParseErrc::truncated, 0, "empty Engine.IO packet"));
    if (text.size() > max_bytes)
        return unexpected(error(ParseErrc::length_over_limit, max_bytes,
                                "Engine.IO packet of " + std::to_string(text.size()) + " bytes, over " +
                                    std::to_string(max_bytes)));
    char c = text[0];
    if (c == 'b')
        return unexpected(error(ParseErrc::unknown_type, 0,
                                "binary Engine.IO packet ('b' + base64): msglab speaks text packets only"));
    if (c < '0' || c > '6')
        return unexpected(error(ParseErrc::unknown_type, 0,
                                "Engine.IO packet type must be a digit 0-6, got byte " +
                                    std::to_string(static_cast<unsigned char>(c))));
    EioPacket p;
    p.type = static_cast<EioType>(c - '0');
    p.data.assign(text.substr(1));
    return p;
}

std::string build_eio_packet(EioType type, std::string_view data) {
    std::string out;
    out.reserve(1 + data.size());
    out.push_back(static_cast<char>('0' + static_cast<int>(type)));
    out.append(data);
    return out;
}

std::string build_eio_packet(const EioPacket& packet) { return build_eio_packet(packet.type, packet.data); }

Result<std::vector<EioPacket>, ParseError> parse_payload(std::string_view body, std::size_t max_bytes,
                                                         std::size_t max_packets) {
    if (body.empty()) return unexpected(error(ParseErrc::truncated, 0, "empty polling payload"));
    if (body.size() > max_bytes)
        return unexpected(error(ParseErrc::length_over_limit, max_bytes,
                                "polling payload of " + std::to_string(body.size()) + " bytes, over " +
                                    std::to_string(max_bytes)));
    std::vector<EioPacket> out;
    std::size_t start = 0;
    while (true) {
        std::size_t end = body.find(kSeparator, start);
        std::string_view one = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (out.size() >= max_packets)
            return unexpected(error(ParseErrc::length_over_limit, start,
                                    "more than " + std::to_string(max_packets) + " packets in one payload"));
        if (one.empty()) return unexpected(error(ParseErrc::bad_length, start, "empty packet in a polling payload"));
        auto p = parse_eio_packet(one, max_bytes);
        if (!p) {
            ParseError e = p.error();
            e.offset += start;
            return unexpected(std::move(e));
        }
        out.push_back(std::move(p.value()));
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return out;
}

std::string build_payload(const std::vector<EioPacket>& packets) {
    std::string out;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        if (i) out.push_back(kSeparator);
        out += build_eio_packet(packets[i]);
    }
    return out;
}

std::string take_payload(std::deque<std::string>& queue, std::size_t max_bytes, std::size_t max_packets) {
    std::string out;
    std::size_t taken = 0;
    while (!queue.empty() && taken < max_packets) {
        std::size_t add = queue.front().size() + (taken ? 1 : 0);
        if (taken && out.size() + add > max_bytes) break;
        if (taken) out.push_back(kSeparator);
        out += queue.front();
        queue.pop_front();
        ++taken;
    }
    return out;
}

std::string build_open_data(const EioOpen& open) {
    Json j = Json::object();
    j["sid"] = open.sid;
    j["upgrades"] = open.upgrades;
    j["pingTimeout"] = open.ping_timeout_ms;
    j["pingInterval"] = open.ping_interval_ms;
    if (open.max_payload) j["maxPayload"] = *open.max_payload;
    return dump_json(j);
}

Result<EioOpen, ParseError> parse_open_data(std::string_view data) {
    auto parsed = parse_json_bounded(data, 4);
    if (!parsed) return unexpected(parsed.error());
    const Json& j = *parsed;
    if (!j.is_object()) return unexpected(error(ParseErrc::bad_value, 0, "open packet data is not a JSON object"));
    EioOpen o;
    auto sid = j.find("sid");
    if (sid == j.end() || !sid->is_string() || sid->get_ref<const std::string&>().empty() ||
        sid->get_ref<const std::string&>().size() > kMaxSidLength)
        return unexpected(error(ParseErrc::bad_value, 0,
                                "open packet: sid must be a string of 1.." + std::to_string(kMaxSidLength) + " bytes"));
    o.sid = sid->get<std::string>();
    auto up = j.find("upgrades");
    if (up == j.end() || !up->is_array() || up->size() > kMaxUpgrades)
        return unexpected(error(ParseErrc::bad_value, 0,
                                "open packet: upgrades must be an array of at most " + std::to_string(kMaxUpgrades) +
                                    " strings"));
    for (const auto& u : *up) {
        if (!u.is_string() || u.get_ref<const std::string&>().size() > 64)
            return unexpected(error(ParseErrc::bad_value, 0, "open packet: an upgrade name is not a short string"));
        o.upgrades.push_back(u.get<std::string>());
    }
    auto millis = [&](const char* key, std::uint32_t& out) -> bool {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_integer()) return false;
        if (it->is_number_unsigned()) {
            auto v = it->get<std::uint64_t>();
            if (v < 1 || v > 0x7fffffffu) return false;
            out = static_cast<std::uint32_t>(v);
            return true;
        }
        auto v = it->get<std::int64_t>();
        if (v < 1 || v > 0x7fffffff) return false;
        out = static_cast<std::uint32_t>(v);
        return true;
    };
    if (!millis("pingInterval", o.ping_interval_ms))
        return unexpected(error(ParseErrc::bad_value, 0, "open packet: pingInterval must be an integer 1..2^31-1"));
    if (!millis("pingTimeout", o.ping_timeout_ms))
        return unexpected(error(ParseErrc::bad_value, 0, "open packet: pingTimeout must be an integer 1..2^31-1"));
    if (auto mp = j.find("maxPayload"); mp != j.end()) {
        if (!mp->is_number_unsigned() || mp->get<std::uint64_t>() == 0)
            return unexpected(error(ParseErrc::bad_value, 0, "open packet: maxPayload must be a positive integer"));
        o.max_payload = mp->get<std::uint64_t>();
    }
    return o;
}

std::string make_sid(Rng& rng) {
    Bytes raw = rng.bytes(15);
    return crypto::base64_encode(raw, crypto::Base64Alphabet::url, false);
}

// ---- JSON -------------------------------------------------------------------------

Result<Json, ParseError> parse_json_bounded(std::string_view text, std::size_t max_depth, std::size_t offset) {
    // The nesting on the text first: nothing is built for input that is too deep.
    std::size_t depth = 0;
    bool in_string = false, escaped = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return unexpected(error(ParseErrc::length_over_limit, offset + i,
                                        "JSON nested deeper than " + std::to_string(max_depth) + " levels"));
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return unexpected(error(ParseErrc::bad_value, offset, "invalid JSON"));
    return j;
}

std::string dump_json(const Json& j) { return python_dumps_compact(j, true); }

// ---- Socket.IO ------------------------------------------------------------------------

const char* sio_type_name(SioType t) {
    switch (t) {
        case SioType::connect: return "CONNECT";
        case SioType::disconnect: return "DISCONNECT";
        case SioType::event: return "EVENT";
        case SioType::ack: return "ACK";
        case SioType::connect_error: return "CONNECT_ERROR";
        case SioType::binary_event: return "BINARY_EVENT";
        case SioType::binary_ack: return "BINARY_ACK";
    }
    return "UNKNOWN";
}

Result<SioPacket, ParseError> parse_sio_packet(std::string_view text, std::size_t max_depth) {
    if (text.empty()) return unexpected(error(ParseErrc::truncated, 0, "empty Socket.IO packet"));
    char c = text[0];
    if (c < '0' || c > '6')
        return unexpected(error(ParseErrc::unknown_type, 0,
                                "Socket.IO packet type must be a digit 0-6, got byte " +
                                    std::to_string(static_cast<unsigned char>(c))));
    SioPacket p;
    p.type = static_cast<SioType>(c - '0');
    if (p.type == SioType::binary_event || p.type == SioType::binary_ack)
        return unexpected(error(ParseErrc::unknown_type, 0,
                                std::string(sio_type_name(p.type)) +
                                    ": binary attachments are not supported, msglab speaks text packets only"));
    std::size_t pos = 1;
    if (pos < text.size() && text[pos] == '/') {
        std::size_t comma = text.find(',', pos);
        std::size_t end = comma == std::string_view::npos ? text.size() : comma;
        if (end - pos > kMaxNamespace)
            return unexpected(error(ParseErrc::length_over_limit, pos,
                                    "namespace longer than " + std::to_string(kMaxNamespace) + " bytes"));
        p.nsp.assign(text.substr(pos, end - pos));
        pos = comma == std::string_view::npos ? text.size() : comma + 1;
    }
    if (pos < text.size() && is_digit(text[pos])) {
        std::size_t start = pos;
        std::uint64_t id = 0;
        while (pos < text.size() && is_digit(text[pos])) {
            if (pos - start >= kMaxAckIdDigits)
                return unexpected(error(ParseErrc::length_over_limit, start,
                                        "ack id longer than " + std::to_string(kMaxAckIdDigits) + " digits"));
            id = id * 10 + static_cast<std::uint64_t>(text[pos] - '0');
            ++pos;
        }
        p.id = id;
    }
    if (pos < text.size()) {
        auto j = parse_json_bounded(text.substr(pos), max_depth, pos);
        if (!j) return unexpected(j.error());
        p.data = std::move(j.value());
    }
    const char* name = sio_type_name(p.type);
    auto bad = [&](const std::string& why) { return unexpected(error(ParseErrc::bad_value, pos, name + (": " + why))); };
    switch (p.type) {
        case SioType::connect:
            if (p.id) return bad("no ack id allowed");
            if (p.data && !p.data->is_object()) return bad("the payload must be an object");
            break;
        case SioType::disconnect:
            if (p.id) return bad("no ack id allowed");
            if (p.data) return bad("no payload allowed");
            break;
        case SioType::event:
            if (!p.data || !p.data->is_array() || p.data->empty() || !(*p.data)[0].is_string())
                return bad("the payload must be an array whose first element is the event name");
            break;
        case SioType::ack:
            if (!p.id) return bad("an ack id is required");
            if (!p.data || !p.data->is_array()) return bad("the payload must be an array");
            break;
        case SioType::connect_error:
            if (p.id) return bad("no ack id allowed");
            if (!p.data || !(p.data->is_object() || p.data->is_string()))
                return bad("the payload must be an object (or a string)");
            break;
        default: break;
    }
    return p;
}

std::string build_sio_packet(const SioPacket& packet) {
    std::string out;
    out.push_back(static_cast<char>('0' + static_cast<int>(packet.type)));
    if (packet.nsp != "/") {
        out += packet.nsp;
        out.push_back(',');
    }
    if (packet.id) out += std::to_string(*packet.id);
    if (packet.data) python_dumps_compact(*packet.data, out, true);
    return out;
}

SioPacket sio_event(std::string_view name, const Json& args, std::optional<std::uint64_t> id, std::string nsp) {
    SioPacket p;
    p.type = SioType::event;
    p.nsp = std::move(nsp);
    p.id = id;
    Json data = Json::array();
    data.push_back(std::string(name));
    if (args.is_array())
        for (const auto& a : args) data.push_back(a);
    else
        data.push_back(args);
    p.data = std::move(data);
    return p;
}

SioPacket sio_ack(std::uint64_t id, const Json& args, std::string nsp) {
    SioPacket p;
    p.type = SioType::ack;
    p.nsp = std::move(nsp);
    p.id = id;
    p.data = args.is_array() ? args : Json::array({args});
    return p;
}

std::string event_name(const SioPacket& event) {
    if (!event.data || !event.data->is_array() || event.data->empty() || !(*event.data)[0].is_string()) return {};
    return (*event.data)[0].get<std::string>();
}

Json event_args(const SioPacket& event) {
    Json args = Json::array();
    if (!event.data || !event.data->is_array()) return args;
    for (std::size_t i = 1; i < event.data->size(); ++i) args.push_back((*event.data)[i]);
    return args;
}

std::string eio_message(const SioPacket& packet) { return "4" + build_sio_packet(packet); }

}  // namespace msglab::signal
