#include "signal/stream.hpp"

#include <zlib.h>

#include <algorithm>
#include <exception>
#include <map>
#include <set>
#include <tuple>

#include "core/crypto.hpp"
#include "csmp/wire.hpp"
#include "signal/eio.hpp"
#include "signal/events.hpp"
#include "signal/ratchet.hpp"

namespace msglab::signal {

namespace {

using csmp::HttpKind;
using csmp::HttpMessage;

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

int side_index(Peer p) { return p == Peer::client ? 0 : 1; }
Peer other(Peer p) { return p == Peer::client ? Peer::server : Peer::client; }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
    std::string out;
    for (char c : s) out += ascii_lower(c);
    return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

constexpr char kRecordSeparator = '\x1e';

// Bounds on what one stream may make the codec remember; past them the codec
// stops learning (it never forgets what it learnt, so no check is undone).
constexpr std::size_t kMaxRemembered = 64 * 1024;  // epks and (sender, dh, n) per direction
constexpr std::size_t kMaxPending = 4096;          // events awaiting an ack, per direction
constexpr std::size_t kMaxNames = 1024;            // identities, bundles, sessions, chains
constexpr std::size_t kMaxChainsPerPair = 64;      // ratchet keys per sender and recipient
// A value longer than this is shown as its first kShownPrefix bytes.
constexpr std::size_t kMaxShown = 96;
constexpr std::size_t kShownPrefix = 48;

std::string shorten(const std::string& s) {
    if (s.size() <= kMaxShown) return s;
    std::size_t n = kShownPrefix;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a UTF-8 sequence
    return s.substr(0, n) + "... (" + std::to_string(s.size()) + " bytes)";
}

std::string shown(const Json& v) {
    if (v.is_string()) return shorten(v.get<std::string>());
    return shorten(v.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void add_field(DecodedMessage& d, std::string name, std::string value) {
    d.fields.push_back({std::move(name), std::move(value)});
}

std::string printable(ByteView b) {
    return csmp::valid_utf8(b) ? shorten(to_string(b)) : "hex:" + short_hex(b, 48);
}


// ---- HTTP content coding ---------------------------------------------------------

// A gzip or zlib ("deflate", as python-engineio writes it with
// zlib.compress) body, inflated within kDefaultMaxPayload.
Result<Bytes, std::string> inflate_body(ByteView in) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 32) != Z_OK) return unexpected(std::string("zlib cannot start"));
    Bytes out;
    std::uint8_t buf[16 * 1024];
    z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    int rc = Z_OK;
    std::string error;
    while (rc != Z_STREAM_END) {
        z.next_out = buf;
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            error = rc == Z_BUF_ERROR ? "the compressed body ends early" : "not valid compressed data";
            break;
        }
        out.insert(out.end(), buf, buf + (sizeof buf - z.avail_out));
        if (out.size() > kDefaultMaxPayload) {
            error = "inflates to more than " + std::to_string(kDefaultMaxPayload) + " bytes";
            break;
        }
        if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
            error = "the compressed body ends early";
            break;
        }
    }
    inflateEnd(&z);
    if (!error.empty()) return unexpected(std::move(error));
    return out;
}

// ---- JSON text with positions, for locate() ------------------------------------------

using Span = csmp::JsonSpan;
using Member = csmp::JsonMemberSpan;

std::optional<std::vector<Member>> scan_object(std::string_view s, std::size_t i) {
    return csmp::json_object_members(s, i);
}
std::optional<std::vector<Span>> scan_array(std::string_view s, std::size_t i) {
    return csmp::json_array_elements(s, i);
}
const Member* last_member(const std::vector<Member>& members, std::string_view key) {
    return csmp::last_json_member(members, key);
}

// The object a member holds, as members.
std::optional<std::vector<Member>> inner_object(std::string_view s, const Member* m) {
    if (!m || m->value.is_string || m->value.length == 0 || s[m->value.offset] != '{') return std::nullopt;
    return scan_object(s, m->value.offset);
}

// `field` in one Engine.IO packet's text.
std::optional<Span> locate_packet(std::string_view p, std::string_view field) {
    if (p.empty()) return std::nullopt;
    auto member_span = [](const std::vector<Member>& members, std::string_view key) -> std::optional<Span> {
        const Member* m = last_member(members, key);
        if (!m) return std::nullopt;
        return m->value;
    };
    if (p[0] == '0') {
        if (field != "signal.eio.sid") return std::nullopt;
        auto open = scan_object(p, 1);
        if (!open) return std::nullopt;
        return member_span(*open, "sid");
    }
    if (p[0] != '4' || p.size() < 2) return std::nullopt;
    const char type = p[1];
    std::size_t i = 2;
    if (i < p.size() && p[i] == '/') {
        std::size_t comma = p.find(',', i);
        if (comma == std::string_view::npos) return std::nullopt;
        i = comma + 1;
    }
    std::size_t id_start = i;
    while (i < p.size() && is_digit(p[i])) ++i;
    if (field == "signal.sio.ack_id") {
        if (i == id_start) return std::nullopt;
        return Span{id_start, i - id_start, false};
    }
    auto elements = scan_array(p, i);
    if (!elements) return std::nullopt;
    auto object_at = [&](const Span& e) -> std::optional<std::vector<Member>> {
        if (e.is_string || e.length == 0 || p[e.offset] != '{') return std::nullopt;
        return scan_object(p, e.offset);
    };
    if (type == '2') {
        if (elements->empty() || !(*elements)[0].is_string) return std::nullopt;
        if (field == "signal.event") return (*elements)[0];
        if (elements->size() < 2) return std::nullopt;
        auto arg = object_at((*elements)[1]);
        if (!arg) return std::nullopt;
        static constexpr std::string_view header_prefix = "signal.header.";
        if (field.substr(0, header_prefix.size()) == header_prefix) {
            auto header = inner_object(p, last_member(*arg, "header"));
            if (!header) return std::nullopt;
            std::string_view key = field.substr(header_prefix.size());
            if (key != "dh" && key != "pn" && key != "n") return std::nullopt;
            return member_span(*header, key);
        }
        static constexpr std::string_view keys[] = {"username", "from", "ik",     "sik",    "spk",
                                                    "spk_sig",  "epk",  "cipher", "hmac"};
        std::string_view key = field.substr(std::string_view("signal.").size());
        if (std::find(std::begin(keys), std::end(keys), key) == std::end(keys)) return std::nullopt;
        return member_span(*arg, key);
    }
    if (type == '3') {
        static constexpr std::string_view bundle_prefix = "signal.bundle.";
        if (field.substr(0, bundle_prefix.size()) != bundle_prefix) return std::nullopt;
        std::string_view key = field.substr(bundle_prefix.size());
        if (key != "ik" && key != "sik" && key != "spk" && key != "spk_sign") return std::nullopt;
        for (const auto& e : *elements)
            if (auto bundle = object_at(e)) return member_span(*bundle, key);
    }
    return std::nullopt;
}

// ---- What a stream carries --------------------------------------------------------

// Which side may send an event (section 5.3).
enum class Sender { client, server, both };

std::optional<Sender> event_sender(std::string_view name) {
    if (name == "register_user" || name == "request_users" || name == "request_prekey" || name == "pongi")
        return Sender::client;
    if (name == "pingi") return Sender::server;
    if (name == "x3dh_message" || name == "ratchet_msg") return Sender::both;
    return std::nullopt;
}

// An event sent with an ack id, until the other side's ACK.
struct Pending {
    std::string event;
    std::string target;        // request_prekey: the name asked for
    std::string previous_user; // register_user: the connection's user before it
    bool mac_failed = false;   // x3dh_message relayed with an HMAC that does not verify
};

// The ratchet chains one sender used towards one recipient, as seen.
struct Chains {
    std::map<Key32, std::uint64_t> next;  // header.dh -> one past the highest n seen
    std::optional<Key32> current;
};

// An X3DH session between two names: who initiated, with which IK.
struct Session {
    std::string initiator;
    Key32 ik_initiator{};
};

std::pair<std::string, std::string> pair_key(const std::string& a, const std::string& b) {
    return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
}

std::string bundle_differences(const Bundle& a, const Bundle& b) {
    std::string out;
    auto add = [&](bool differs, const char* name) {
        if (differs) out += (out.empty() ? "" : ", ") + std::string(name);
    };
    add(a.ik != b.ik, "ik");
    add(a.sik != b.sik, "sik");
    add(a.spk != b.spk, "spk");
    add(a.spk_sig != b.spk_sig, "spk_sig");
    return out;
}

// "1795272083.7369206" (the t query parameter, Python's time.time()) as seconds.
std::optional<std::uint64_t> query_seconds(std::string_view t) {
    std::size_t i = 0;
    std::uint64_t v = 0;
    while (i < t.size() && is_digit(t[i])) {
        if (i == 12) return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(t[i] - '0');
        ++i;
    }
    if (i == 0 || (i < t.size() && t[i] != '.')) return std::nullopt;
    return v;
}

// ---- The codec ---------------------------------------------------------------------

class Codec final : public StreamCodec {
public:
    explicit Codec(const KeyLog* keys) : m_keylog(keys) {}

    Result<std::size_t, ParseError> frame(Peer from, ByteView buffered) override {
        return m_stream.frame(from, buffered);
    }

    DecodedMessage decode(Peer from, ByteView message) override {
        try {
            return decode_message(from, message);
        } catch (const std::exception& e) {
            DecodedMessage d;
            d.type = "MALFORMED";
            d.anomalies.push_back(std::string("decoder error: ") + e.what());
            return d;
        }
    }

    std::optional<FieldSpan> locate(ByteView m, std::string_view field) const override {
        if (std::find(kFieldPaths.begin(), kFieldPaths.end(), field) == kFieldPaths.end()) return std::nullopt;
        if (csmp::looks_like_http_request(m)) return locate_http(m, HttpKind::request, field);
        if (csmp::looks_like_http_response(m)) return locate_http(m, HttpKind::response, field);
        auto f = csmp::parse_ws_frame(m);
        if (!f || f->rsv1 || !f->fin || f->opcode != csmp::ws_opcode::text) return std::nullopt;
        // A masked payload's bytes are visible as sent only under the zero key.
        if (f->masked && f->mask != csmp::WsMask{0, 0, 0, 0}) return std::nullopt;
        auto s = locate_packet(text(f->payload), field);
        if (!s) return std::nullopt;
        return FieldSpan{f->header_length + s->offset, s->length};
    }

private:
    struct Side {
        bool closed = false;       // this side sent a WebSocket close frame
        csmp::WsAssembler assembler;
        std::set<Key32> epks;                          // x3dh_message epks this side carried
        std::set<std::tuple<std::string, Key32, std::uint64_t>> messages;  // (from, dh, n) it carried
        std::map<std::uint64_t, Pending> pending;      // its events awaiting the other side's ack
        std::map<std::pair<std::string, std::string>, Chains> chains;  // (from, to) -> chains
    };

    static HttpKind kind_of(Peer from) { return from == Peer::client ? HttpKind::request : HttpKind::response; }

    // What a framed HTTP head changes for the stream; framing the same bytes
    // again changes nothing more.
    void learn(Peer from, const HttpMessage& head) { m_stream.learn(from, head); }

    DecodedMessage decode_message(Peer from, ByteView message) {
        const auto unit = m_stream.unit(from, message);
        if (unit == csmp::HttpWsStream::Unit::body) {
            DecodedMessage d;
            d.type = "HTTP_BODY";
            std::string names = read_payload(from, text(message), d);
            if (!names.empty()) d.type = names;
            return d;
        }
        if (unit == csmp::HttpWsStream::Unit::ws) return decode_ws(from, message);
        DecodedMessage d = decode_http(from, message);
        if (d.type == "MALFORMED" && m_stream.websocket(from) && csmp::parse_ws_frame(message))
            return decode_ws(from, message);
        return d;
    }

    // ---- HTTP: the polling transport and the upgrade ----

    static std::optional<FieldSpan> query_span(const HttpMessage& head, std::string_view name) {
        if (head.query.empty()) return std::nullopt;
        auto s = csmp::query_parameter_span(head.query, name);
        if (!s) return std::nullopt;
        return FieldSpan{head.query_offset + s->offset, s->length};
    }

    std::optional<FieldSpan> locate_http(ByteView m, HttpKind kind, std::string_view field) const {
        HttpMessage head;
        auto r = csmp::frame_http(m, kind, {}, &head);
        if (!r || *r == 0) return std::nullopt;
        if (kind == HttpKind::request && field == "signal.eio.sid")
            if (auto q = query_span(head, "sid")) return q;
        if (head.framing != csmp::BodyFraming::length) return std::nullopt;
        if (auto coding = head.header_value("content-encoding"); coding && lower(*coding) != "identity")
            return std::nullopt;
        std::string_view body = text(m.subspan(head.head_length, *r - head.head_length));
        std::size_t start = 0;
        for (std::size_t packets = 0; packets < kMaxPacketsPerPayload; ++packets) {
            std::size_t end = body.find(kRecordSeparator, start);
            std::string_view one = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
            if (auto s = locate_packet(one, field)) return FieldSpan{head.head_length + start + s->offset, s->length};
            if (end == std::string_view::npos) break;
            start = end + 1;
        }
        return std::nullopt;
    }

    DecodedMessage decode_http(Peer from, ByteView message) {
        DecodedMessage d;
        auto parsed = csmp::parse_http(message, kind_of(from));
        if (!parsed) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not an HTTP " + std::string(from == Peer::client ? "request" : "response") + ": " +
                                  parsed.error().to_string());
            return d;
        }
        const HttpMessage& m = *parsed;
        learn(from, m);
        if (m.framing == csmp::BodyFraming::until_close)
            d.anomalies.push_back("a response without Content-Length or chunked coding: its body runs to the close");
        if (from == Peer::client)
            read_request(m, d);
        else
            add_field(d, "signal.status", std::to_string(m.status));

        // The body: a polling payload, perhaps compressed.
        Bytes body = m.body;
        if (auto coding = m.header_value("content-encoding"); coding && !body.empty()) {
            std::string c = lower(*coding);
            add_field(d, "signal.content_encoding", *coding);
            if (c == "gzip" || c == "deflate" || c == "x-gzip") {
                auto inflated = inflate_body(body);
                if (!inflated) {
                    d.anomalies.push_back("the " + c + " body does not inflate: " + inflated.error());
                    body.clear();
                } else {
                    body = std::move(*inflated);
                }
            } else if (c != "identity") {
                d.anomalies.push_back("an unknown content coding \"" + shorten(*coding) + "\" (body not read)");
                body.clear();
            }
        }

        if (from == Peer::client) {
            if (m.websocket_upgrade()) {
                d.type = "WS_UPGRADE";
                if (auto key = m.header_value("sec-websocket-key")) {
                    m_ws_key = *key;
                    if (!csmp::valid_websocket_key(*key))
                        d.anomalies.push_back("Sec-WebSocket-Key is not the base64 of 16 bytes");
                } else {
                    d.anomalies.push_back("a WebSocket upgrade without Sec-WebSocket-Key");
                }
            } else if (!body.empty()) {
                d.type = read_payload(from, text(body), d);
            } else {
                d.type = m.method == "GET" ? "HTTP_POLL" : "HTTP_REQUEST";
            }
            return d;
        }
        if (m.status == 101) {
            d.type = "WS_ACCEPT";
            auto accept = m.header_value("sec-websocket-accept");
            if (!accept)
                d.anomalies.push_back("101 without Sec-WebSocket-Accept");
            else if (!m_ws_key.empty() && *accept != csmp::websocket_accept(m_ws_key))
                d.anomalies.push_back("Sec-WebSocket-Accept does not match the request's key");
            return d;
        }
        if (body.empty()) {
            d.type = "HTTP_RESPONSE";
        } else if (m.status == 200 && text(body) == "ok") {
            d.type = "HTTP_OK";  // python-engineio's answer to a POST
        } else if (m.status != 200) {
            d.type = "HTTP_RESPONSE";
            add_field(d, "signal.body", printable(body));
        } else {
            d.type = read_payload(from, text(body), d);
        }
        return d;
    }

    void read_request(const HttpMessage& m, DecodedMessage& d) {
        add_field(d, "signal.method", m.method);
        add_field(d, "signal.path", m.path);
        auto transport = csmp::query_parameter(m.query, "transport");
        if (transport) {
            add_field(d, "signal.transport", *transport);
            if (*transport != "polling" && *transport != "websocket")
                d.anomalies.push_back("an unknown Engine.IO transport \"" + shorten(*transport) + "\"");
        }
        auto eio = csmp::query_parameter(m.query, "EIO");
        if (!eio)
            d.anomalies.push_back("no EIO in the query (the original speaks Engine.IO 4)");
        else if (*eio != "4")
            d.anomalies.push_back("EIO=" + shorten(*eio) + " (the original speaks Engine.IO 4)");
        if (auto sid = csmp::query_parameter(m.query, "sid")) {
            add_field(d, "signal.eio.sid", *sid);
            if (!m_eio_sid.empty() && *sid != m_eio_sid)
                d.anomalies.push_back("sid " + shorten(*sid) + " is not the session this connection opened (" +
                                      m_eio_sid + ")");
        }
        if (auto t = csmp::query_parameter(m.query, "t")) d.timestamp = query_seconds(*t);
    }

    // ---- WebSocket frames ----

    DecodedMessage decode_ws(Peer from, ByteView message) {
        DecodedMessage d;
        Side& side = m_side[side_index(from)];
        auto f = csmp::parse_ws_frame(message);
        if (!f) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not a WebSocket frame: " + f.error().to_string());
            return d;
        }
        if (from == Peer::client && !f->masked) d.anomalies.push_back("an unmasked client frame (RFC 6455 5.1)");
        if (from == Peer::server && f->masked) d.anomalies.push_back("a masked server frame (RFC 6455 5.1)");
        auto r = side.assembler.add(*f);
        if (!r) {
            d.type = "MALFORMED";
            d.anomalies.push_back(r.error().detail);
            return d;
        }
        if (!*r) {
            d.type = "WS_FRAGMENT";
            add_field(d, "signal.opcode", csmp::ws_opcode_name(f->opcode));
            add_field(d, "signal.fragment", std::to_string(side.assembler.fragments()));
            return d;
        }
        csmp::WsMessage& msg = **r;
        switch (msg.opcode) {
            case csmp::ws_opcode::close: {
                d.type = "WS_CLOSE";
                if (side.closed) d.anomalies.push_back("a second close frame from this side");
                side.closed = true;
                auto c = csmp::parse_ws_close(msg.payload);
                if (!c) {
                    d.anomalies.push_back("a bad close payload: " + c.error().detail);
                } else {
                    if (c->code) add_field(d, "signal.close_code", std::to_string(*c->code));
                    if (!c->reason.empty()) add_field(d, "signal.close_reason", shorten(c->reason));
                }
                return d;
            }
            case csmp::ws_opcode::ping:
            case csmp::ws_opcode::pong:
                d.type = msg.opcode == csmp::ws_opcode::ping ? "WS_PING" : "WS_PONG";
                return d;
            default:
                break;
        }
        if (side.closed)
            d.anomalies.push_back("a data message after this side's close frame (RFC 6455 5.5.1: none may follow)");
        if (msg.frames > 1) add_field(d, "signal.fragments", std::to_string(msg.frames));
        if (msg.opcode == csmp::ws_opcode::binary) {
            d.type = "WS_BINARY";
            d.anomalies.push_back("a binary message (Engine.IO packets travel here as text)");
            return d;
        }
        if (!csmp::valid_utf8(msg.payload)) d.anomalies.push_back("a text message that is not UTF-8");
        // The WebSocket transport carries one Engine.IO packet per message.
        d.type = read_packet(from, text(msg.payload), d);
        return d;
    }

    // ---- Engine.IO ----

    // The packets of a polling payload (0x1e between them), read one by one
    // so that a bad packet does not hide the others. The names of the packets.
    std::string read_payload(Peer from, std::string_view body, DecodedMessage& d) {
        std::string names;
        std::size_t start = 0;
        for (std::size_t packets = 0;; ++packets) {
            if (packets == kMaxPacketsPerPayload) {
                d.anomalies.push_back("more than " + std::to_string(kMaxPacketsPerPayload) +
                                      " packets in one polling payload (the rest not read)");
                break;
            }
            std::size_t end = body.find(kRecordSeparator, start);
            std::string_view one = body.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
            std::string name = read_packet(from, one, d);
            names += (names.empty() ? "" : ", ") + name;
            if (end == std::string_view::npos) break;
            start = end + 1;
        }
        return names;
    }

    std::string read_packet(Peer from, std::string_view packet_text, DecodedMessage& d) {
        auto p = parse_eio_packet(packet_text);
        if (!p) {
            d.anomalies.push_back("a malformed Engine.IO packet: " + p.error().to_string());
            return "EIO_MALFORMED";
        }
        add_field(d, "signal.eio.type", eio_type_name(p->type));
        switch (p->type) {
            case EioType::open: {
                if (from == Peer::client) d.anomalies.push_back("an Engine.IO OPEN from the client");
                auto open = parse_open_data(p->data);
                if (!open) {
                    d.anomalies.push_back("a malformed OPEN packet: " + open.error().to_string());
                    return "EIO_OPEN";
                }
                add_field(d, "signal.eio.sid", shorten(open->sid));
                std::string upgrades;
                for (const auto& u : open->upgrades) upgrades += (upgrades.empty() ? "" : ", ") + shorten(u);
                add_field(d, "signal.eio.upgrades", upgrades);
                add_field(d, "signal.eio.ping_interval", std::to_string(open->ping_interval_ms));
                add_field(d, "signal.eio.ping_timeout", std::to_string(open->ping_timeout_ms));
                if (open->max_payload) add_field(d, "signal.eio.max_payload", std::to_string(*open->max_payload));
                if (m_eio_sid.empty()) m_eio_sid = open->sid;
                return "EIO_OPEN";
            }
            case EioType::close: return "EIO_CLOSE";
            case EioType::ping:
            case EioType::pong:
                if (!p->data.empty()) add_field(d, "signal.eio.data", shorten(p->data));
                return p->type == EioType::ping ? "EIO_PING" : "EIO_PONG";
            case EioType::upgrade: return "EIO_UPGRADE";
            case EioType::noop: return "EIO_NOOP";
            case EioType::message: break;
        }
        return read_sio(from, p->data, d);
    }

    // ---- Socket.IO ----

    std::string read_sio(Peer from, std::string_view data, DecodedMessage& d) {
        auto s = parse_sio_packet(data);
        if (!s) {
            d.anomalies.push_back("a malformed Socket.IO packet: " + s.error().to_string());
            return "SIO_MALFORMED";
        }
        add_field(d, "signal.sio.type", sio_type_name(s->type));
        if (s->nsp != "/") add_field(d, "signal.sio.nsp", shorten(s->nsp));
        if (s->id) add_field(d, "signal.sio.ack_id", std::to_string(*s->id));
        switch (s->type) {
            case SioType::connect:
                if (s->data && s->data->is_object()) {
                    auto sid = s->data->find("sid");
                    if (sid != s->data->end()) add_field(d, "signal.sio.sid", shown(*sid));
                }
                return "SIO_CONNECT";
            case SioType::disconnect: return "SIO_DISCONNECT";
            case SioType::connect_error:
                if (s->data && s->data->is_object()) {
                    auto message = s->data->find("message");
                    if (message != s->data->end()) add_field(d, "signal.sio.message", shown(*message));
                } else if (s->data) {
                    add_field(d, "signal.sio.message", shown(*s->data));
                }
                return "SIO_CONNECT_ERROR";
            case SioType::event: return read_event(from, event_name(*s), event_args(*s), s->id, d);
            case SioType::ack: return read_ack(from, *s->id, *s->data, d);
            default: break;
        }
        return "SIO_MALFORMED";
    }

    // ---- Events ----

    std::string read_event(Peer from, const std::string& name, const Json& args, std::optional<std::uint64_t> id,
                           DecodedMessage& d) {
        Side& side = m_side[side_index(from)];
        add_field(d, "signal.event", shorten(name));
        const Json no_arg;
        const Json& arg = args.empty() ? no_arg : args[0];
        auto sender = event_sender(name);
        if (!sender) {
            d.anomalies.push_back("an unknown event \"" + shorten(name) + "\"");
        } else if (*sender != Sender::both && (*sender == Sender::client) != (from == Peer::client)) {
            d.anomalies.push_back("a " + name + " event from the " + peer_name(from) + " (only the " +
                                  peer_name(other(from)) + " sends it)");
        }
        Pending pending;
        pending.event = name;
        if (name == "register_user") {
            show_members(arg, {"username", "ik", "sik", "spk", "spk_sig"}, d);
            on_register(from, arg, pending, d);
        } else if (name == "request_prekey") {
            show_members(arg, {"username"}, d);
            if (arg.is_object() && arg.contains("username") && arg["username"].is_string())
                pending.target = arg["username"].get<std::string>();
            else
                d.anomalies.push_back("request_prekey: the argument is not {\"username\": <string>}");
        } else if (name == "request_users") {
            if (!args.empty()) add_field(d, "signal.args", shown(args));
        } else if (name == "x3dh_message") {
            d.authenticated = true;
            show_members(arg, {"username", "from", "ik", "epk", "cipher", "hmac"}, d);
            auto e = parse_x3dh_message(arg);
            if (!e)
                d.anomalies.push_back("a malformed " + e.error());
            else
                on_x3dh(from, *e, pending, d);
        } else if (name == "ratchet_msg") {
            d.authenticated = true;
            show_members(arg, {"username", "cipher", "header", "hmac", "from"}, d);
            auto e = parse_ratchet_msg(arg);
            if (!e)
                d.anomalies.push_back("a malformed " + e.error());
            else
                on_ratchet(from, *e, d);
        } else {
            if (!args.empty()) add_field(d, "signal.args", shown(args));
            if (name == "pongi")
                d.anomalies.push_back("pongi: the original's debug event (its server broadcasts pingi \"sankalp\" to "
                                      "every client)");
            if (name == "pingi")
                d.anomalies.push_back("pingi: the original's debug broadcast (a client sent pongi)");
        }
        if (id) {
            if (side.pending.count(*id))
                d.anomalies.push_back("ack id " + std::to_string(*id) + " reused while an event with it awaits its ack");
            if (side.pending.size() < kMaxPending || side.pending.count(*id)) side.pending[*id] = std::move(pending);
        }
        return name;
    }

    // The members of an event's argument that the protocol names, in wire
    // order, as signal.<key>; header.pn and header.n as their integers.
    void show_members(const Json& arg, std::initializer_list<const char*> keys, DecodedMessage& d) {
        if (!arg.is_object()) {
            add_field(d, "signal.args", shown(arg));
            return;
        }
        for (auto it = arg.begin(); it != arg.end(); ++it) {
            if (std::find_if(keys.begin(), keys.end(), [&](const char* k) { return it.key() == k; }) == keys.end())
                continue;
            if (it.key() != "header" || !it->is_object()) {
                add_field(d, "signal." + it.key(), shown(*it));
                continue;
            }
            for (auto h = it->begin(); h != it->end(); ++h) {
                if (h.key() == "dh") {
                    add_field(d, "signal.header.dh", shown(*h));
                } else if (h.key() == "pn" || h.key() == "n") {
                    std::string value = shown(*h);
                    if (h->is_string())
                        if (auto raw = crypto::base64_decode(h->get<std::string>(), crypto::Base64Alphabet::standard,
                                                             crypto::Base64Padding::required))
                            if (auto v = decode_counter(*raw)) value = std::to_string(*v);
                    add_field(d, "signal.header." + h.key(), value);
                }
            }
        }
    }

    void on_register(Peer from, const Json& arg, Pending& pending, DecodedMessage& d) {
        auto r = parse_register_user(arg);
        if (!r) {
            d.anomalies.push_back("a malformed " + r.error());
            return;
        }
        if (!r->keys.signature_valid())
            d.anomalies.push_back("register_user: spk_sig does not verify under the sik beside it");
        note_bundle(r->username, r->keys, "register_user", d);
        if (from != Peer::client) return;
        if (!m_user.empty() && m_user != r->username)
            d.anomalies.push_back("this connection registers as " + shorten(r->username) + " after registering as " +
                                  shorten(m_user));
        pending.previous_user = m_user;
        pending.target = r->username;
        m_user = r->username;
    }

    // What the stream says about a name's keys: a bundle (register_user, or
    // request_prekey's answer) and its identity key.
    void note_bundle(const std::string& name, const Bundle& b, const std::string& where, DecodedMessage& d) {
        bool reported = false;
        auto it = m_bundles.find(name);
        if (it != m_bundles.end()) {
            std::string diff = bundle_differences(it->second.first, b);
            if (!diff.empty()) {
                reported = true;
                d.anomalies.push_back(where + " carries another bundle for " + shorten(name) + " than " +
                                      it->second.second + " did (" + diff + " changed)");
            }
            it->second = {b, where};
        } else if (m_bundles.size() < kMaxNames) {
            m_bundles.emplace(name, std::make_pair(b, where));
        }
        auto id = m_identities.find(name);
        if (id != m_identities.end()) {
            if (id->second.first != b.ik && !reported)
                d.anomalies.push_back(where + " gives " + shorten(name) + " another identity key than " +
                                      id->second.second + " did");
            id->second = {b.ik, where};
        } else if (m_identities.size() < kMaxNames) {
            m_identities.emplace(name, std::make_pair(b.ik, where));
        }
    }

    void note_identity(const std::string& name, const Key32& ik, const std::string& where, DecodedMessage& d) {
        auto id = m_identities.find(name);
        if (id != m_identities.end()) {
            if (id->second.first != ik)
                d.anomalies.push_back(where + " gives " + shorten(name) + " another identity key than " +
                                      id->second.second + " did (a substituted key or a spoofed sender)");
            return;
        }
        if (m_identities.size() < kMaxNames) m_identities.emplace(name, std::make_pair(ik, where));
    }

    const Key32* identity(const std::string& name) const {
        auto it = m_identities.find(name);
        return it == m_identities.end() ? nullptr : &it->second.first;
    }

    // The checks both encrypted events share: who sends, to whom, the MAC's shape.
    void check_parties(Peer from, const char* event, const std::string& sender, const std::string& recipient,
                       ByteView hmac, DecodedMessage& d) {
        if (from == Peer::client && !m_user.empty() && sender != m_user)
            d.anomalies.push_back(std::string(event) + ": \"from\" is " + shorten(sender) +
                                  " but this connection registered as " + shorten(m_user));
        if (from == Peer::server && !m_user.empty() && recipient != m_user)
            d.anomalies.push_back(std::string(event) + " for " + shorten(recipient) +
                                  " delivered to this connection, which registered as " + shorten(m_user));
        if (std::all_of(hmac.begin(), hmac.end(), [](std::uint8_t b) { return b == 0; }))
            d.anomalies.push_back("zero HMAC");
    }

    void on_x3dh(Peer from, const X3dhMessage& e, Pending& pending, DecodedMessage& d) {
        Side& side = m_side[side_index(from)];
        d.session_id = hex(keylog_x3dh_id(e.epk));
        check_parties(from, "x3dh_message", e.from, e.username, e.hmac, d);
        if (side.epks.count(e.epk))
            d.anomalies.push_back("x3dh_message replays an epk this side carried before (no one-time prekeys: it "
                                  "re-initialises the recipient's session)");
        else if (side.epks.size() < kMaxRemembered)
            side.epks.insert(e.epk);
        note_identity(e.from, e.ik, "x3dh_message from " + shorten(e.from), d);

        // A new session between the two: the original overwrites the old one.
        auto key = pair_key(e.from, e.username);
        if (m_sessions.count(key) || m_sessions.size() < kMaxNames) m_sessions[key] = Session{e.from, e.ik};
        for (auto& s : m_side) {
            s.chains.erase({e.from, e.username});
            s.chains.erase({e.username, e.from});
        }

        std::optional<Bytes> sk = m_keylog ? m_keylog->find(kKeylogX3dhSk, keylog_x3dh_id(e.epk)) : std::nullopt;
        if (!sk || sk->size() != 32) {
            add_field(d, "signal.mac_check", "no key");
            return;
        }
        PayloadKeys keys = derive_payload_keys(*sk, kX3dhPayloadInfo);
        if (const Key32* responder = identity(e.username)) {
            Bytes data = pkcs7_pad32(associated_data(e.ik, *responder));
            data.insert(data.end(), e.cipher.begin(), e.cipher.end());
            bool ok = check_mac(keys.auth_key, data, e.hmac, d);
            if (!ok && from == Peer::server) pending.mac_failed = true;
        } else {
            add_field(d, "signal.mac_check",
                      "MAC not checked: AD unknown (the identity key of " + shorten(e.username) +
                          ", the responder, has not crossed this connection)");
        }
        if (auto plain = open(keys, e.cipher, "x3dh_message", d)) {
            if (to_string(*plain) != kChatStart)
                d.anomalies.push_back("the X3DH payload is not " + std::string(kChatStart) + " (the original never "
                                      "looks: any plaintext under a valid MAC opens the session)");
            add_field(d, "signal.plaintext", printable(*plain));
            d.plaintext = std::move(*plain);
        }
    }

    void on_ratchet(Peer from, const RatchetMsg& e, DecodedMessage& d) {
        Side& side = m_side[side_index(from)];
        const Header& h = e.message.header;
        d.session_id = hex(keylog_id(h.dh, h.n));
        check_parties(from, "ratchet_msg", e.from, e.username, e.message.hmac, d);
        if (h.pn_bytes != encode_counter(h.pn) || h.n_bytes != encode_counter(h.n))
            d.anomalies.push_back("header.pn or header.n is not in the original's bit-length encoding (leading "
                                  "zeros: the same counter under other MAC'd bytes)");

        auto seen = std::make_tuple(e.from, h.dh, h.n);
        if (side.messages.count(seen))
            d.anomalies.push_back("ratchet_msg repeats the (header.dh, header.n = " + std::to_string(h.n) +
                                  ") of an earlier message from " + shorten(e.from) + " (a replay)");
        else if (side.messages.size() < kMaxRemembered)
            side.messages.insert(seen);

        check_counters(side, e, d);

        std::optional<Bytes> mk =
            m_keylog ? m_keylog->find(kKeylogMessageKey, keylog_id(h.dh, h.n)) : std::nullopt;
        if (!mk || mk->size() != 32) {
            add_field(d, "signal.mac_check", "no key");
            return;
        }
        PayloadKeys keys = derive_payload_keys(*mk, kMessageInfo);
        std::optional<Bytes> ad;
        auto s = m_sessions.find(pair_key(e.from, e.username));
        std::string responder_name;
        if (s != m_sessions.end()) {
            responder_name = s->second.initiator == e.from ? e.username : e.from;
            if (const Key32* responder = identity(responder_name))
                ad = associated_data(s->second.ik_initiator, *responder);
        }
        if (ad) {
            Bytes data = mac_prefix(*ad, h);
            data.insert(data.end(), e.message.cipher.begin(), e.message.cipher.end());
            check_mac(keys.auth_key, data, e.message.hmac, d);
        } else if (s == m_sessions.end()) {
            add_field(d, "signal.mac_check", "MAC not checked: AD unknown (no x3dh_message between " +
                                                 shorten(e.from) + " and " + shorten(e.username) +
                                                 " crossed this connection)");
        } else {
            add_field(d, "signal.mac_check", "MAC not checked: AD unknown (the identity key of " +
                                                 shorten(responder_name) +
                                                 ", the responder, has not crossed this connection)");
        }
        if (auto plain = open(keys, e.message.cipher, "ratchet_msg", d)) {
            add_field(d, "signal.plaintext", printable(*plain));
            d.plaintext = std::move(*plain);
        }
    }

    // 5.6 from the stream's side: the receiver skips at most MAX_SKIP keys,
    // up to header.pn on the old chain and up to header.n on the current one.
    void check_counters(Side& side, const RatchetMsg& e, DecodedMessage& d) {
        const Header& h = e.message.header;
        auto key = std::make_pair(e.from, e.username);
        auto it = side.chains.find(key);
        if (it == side.chains.end()) {
            // Before the first message the receiver's chain counts from 0,
            // when the session began in this stream.
            // A chain first met mid-session is where the receiver was.
            if (side.chains.size() >= kMaxNames) return;
            it = side.chains.emplace(key, Chains{}).first;
            if (!m_sessions.count(pair_key(e.from, e.username))) {
                it->second.next[h.dh] = h.n + 1;
                it->second.current = h.dh;
                return;
            }
        }
        Chains& c = it->second;
        auto chain = c.next.find(h.dh);
        if (chain == c.next.end()) {
            // A DH ratchet step: the old chain is skipped up to pn, the new one starts at 0.
            if (c.current) {
                std::uint64_t next = c.next[*c.current];
                if (h.pn > next + kMaxSkip)
                    d.anomalies.push_back("header.pn " + std::to_string(h.pn) + " is more than MAX_SKIP (" +
                                          std::to_string(kMaxSkip) + ") beyond the previous chain's next message " +
                                          std::to_string(next));
            }
            if (h.n > kMaxSkip)
                d.anomalies.push_back("header.n " + std::to_string(h.n) + " on a new chain is more than MAX_SKIP (" +
                                      std::to_string(kMaxSkip) + ") beyond 0");
            if (c.next.size() >= kMaxChainsPerPair) c.next.erase(c.next.begin());
            c.next[h.dh] = h.n + 1;
            c.current = h.dh;
            return;
        }
        if (h.n > chain->second + kMaxSkip)
            d.anomalies.push_back("header.n " + std::to_string(h.n) + " is more than MAX_SKIP (" +
                                  std::to_string(kMaxSkip) + ") beyond the chain's next message " +
                                  std::to_string(chain->second));
        chain->second = std::max(chain->second, h.n + 1);
    }

    bool check_mac(const Key32& auth_key, ByteView data, ByteView hmac, DecodedMessage& d) {
        auto mac = crypto::hmac_sha256(auth_key, data);
        bool ok = hmac.size() == mac.size() && std::equal(mac.begin(), mac.end(), hmac.begin());
        add_field(d, "signal.mac_check", ok ? "verified" : "HMAC mismatch");
        if (!ok) d.anomalies.push_back("HMAC mismatch");
        return ok;
    }

    // AES-256-CBC without padding, then PKCS#7 with 32-byte blocks.
    std::optional<Bytes> open(const PayloadKeys& keys, ByteView cipher, const char* event, DecodedMessage& d) {
        auto padded = crypto::aes_cbc_decrypt_raw(keys.enc_key, keys.iv, cipher);
        if (!padded) {
            d.anomalies.push_back(std::string(event) + ": the cipher is not a whole number of AES blocks");
            return std::nullopt;
        }
        auto plain = pkcs7_unpad32(*padded);
        if (!plain) {
            d.anomalies.push_back(std::string(event) +
                                  ": bad padding after decrypting with the key log's key (a wrong key or a "
                                  "changed cipher)");
            return std::nullopt;
        }
        return plain;
    }

    // ---- Acks ----

    std::string read_ack(Peer from, std::uint64_t id, const Json& args, DecodedMessage& d) {
        Side& asker = m_side[side_index(other(from))];
        auto it = asker.pending.find(id);
        if (it == asker.pending.end()) {
            d.anomalies.push_back("an ACK with id " + std::to_string(id) + " that answers no event the " +
                                  peer_name(other(from)) + " sent");
            add_field(d, "signal.args", shown(args));
            return "ACK";
        }
        Pending p = std::move(it->second);
        asker.pending.erase(it);
        add_field(d, "signal.event", shorten(p.event));
        std::optional<bool> ok;
        if (!args.empty() && args[0].is_boolean()) ok = args[0].get<bool>();
        if (ok) add_field(d, "signal.ok", *ok ? "true" : "false");
        if (p.event == "request_users") {
            if (!args.empty() && args[0].is_array()) {
                std::string users;
                for (const auto& u : args[0]) users += (users.empty() ? "" : ", ") + shown(u);
                add_field(d, "signal.users", shorten(users));
            } else {
                add_field(d, "signal.args", shown(args));
            }
        } else if (p.event == "request_prekey") {
            if (ok && *ok && args.size() >= 2 && args[1].is_object()) {
                const Json& b = args[1];
                for (const char* k : {"ik", "sik", "spk", "spk_sign"})
                    if (b.contains(k)) add_field(d, std::string("signal.bundle.") + k, shown(b[k]));
                auto bundle = parse_bundle(b);
                if (!bundle) {
                    d.anomalies.push_back("a malformed " + bundle.error() + " (the answer to request_prekey)");
                } else {
                    if (!bundle->signature_valid())
                        d.anomalies.push_back("the bundle for " + shorten(p.target) +
                                              ": spk_sign does not verify under its sik");
                    if (!p.target.empty()) note_bundle(p.target, *bundle, "the bundle for " + shorten(p.target), d);
                }
            } else if (!ok || *ok) {
                add_field(d, "signal.args", shown(args));
            }
        } else if (!(ok && args.size() == 1)) {
            add_field(d, "signal.args", shown(args));
        }
        if (p.event == "register_user" && ok && !*ok && m_user == p.target) m_user = p.previous_user;
        if (p.event == "x3dh_message" && p.mac_failed && ok && *ok)
            d.anomalies.push_back("the recipient acked [true] an x3dh_message whose HMAC does not verify (the "
                                  "initiator believes a session exists)");
        return "ACK " + p.event;
    }

    const KeyLog* m_keylog;
    Side m_side[2];
    csmp::HttpWsStream m_stream;
    std::string m_ws_key;
    std::string m_eio_sid;  // the Engine.IO session this connection opened
    std::string m_user;     // the name this connection registered
    std::map<std::string, std::pair<Key32, std::string>> m_identities;  // name -> IK, where it came from
    std::map<std::string, std::pair<Bundle, std::string>> m_bundles;    // name -> keys, where they came from
    std::map<std::pair<std::string, std::string>, Session> m_sessions;  // names (sorted) -> X3DH session
};

}  // namespace

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys) { return std::make_unique<Codec>(keys); }

bool detect(ByteView b) {
    if (!csmp::looks_like_http_request(b)) return false;
    std::string_view s = text(b.first(std::min(b.size(), csmp::kMaxHttpHead)));
    std::size_t sp = s.find(' ');
    if (sp == std::string_view::npos) return false;
    std::size_t end = s.find_first_of(" \r\n", sp + 1);
    if (end == std::string_view::npos) return false;  // the target is still arriving
    std::string_view target = s.substr(sp + 1, end - sp - 1);
    std::size_t q = target.find('?');
    if (q == std::string_view::npos) return false;
    std::string_view path = target.substr(0, q);
    static constexpr std::string_view prefix = "/socket.io/";
    if (path != "/socket.io" && path.substr(0, prefix.size()) != prefix) return false;
    auto eio = csmp::query_parameter(target.substr(q + 1), "EIO");
    return eio && *eio == "4";
}

}  // namespace msglab::signal
