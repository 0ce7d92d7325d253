#include "csmp/stream.hpp"

#include <algorithm>
#include <deque>
#include <exception>

#include <nlohmann/json.hpp>

#include "csmp/wire.hpp"

namespace msglab::csmp {

namespace {

using nlohmann::json;

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

int side_index(Peer p) { return p == Peer::client ? 0 : 1; }


char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

constexpr std::size_t kMaxPendingRequests = 256;  // requests not yet answered, per connection
constexpr std::size_t kMaxShownValue = 256;       // characters of a non-string JSON value in a field

// ---- JSON objects with the position of every member ---------------------------------

using JsonMember = JsonMemberSpan;

std::optional<std::string> decode_json_string(std::string_view quoted) {
    if (quoted.find('\\') == std::string_view::npos) return std::string(quoted.substr(1, quoted.size() - 2));
    try {
        json j = json::parse(quoted);
        if (j.is_string()) return j.get<std::string>();
    } catch (const json::exception&) {
    }
    return std::nullopt;
}

// The members of the object `s` holds, in order; nullopt when `s` is not
// one object (validity is json::accept's).
std::optional<std::vector<JsonMember>> scan_object(std::string_view s) {
    std::size_t end = 0;
    auto members = json_object_members(s, 0, &end);
    if (!members) return std::nullopt;
    while (end < s.size() && is_json_ws(s[end])) ++end;
    if (end != s.size()) return std::nullopt;
    return members;
}

// A JSON object's text and its members; the last of a repeated key counts,
// as in Python's json.
struct JsonObject {
    std::string_view text;
    std::vector<JsonMember> members;

    const JsonMember* last(std::string_view key) const {
        for (auto it = members.rbegin(); it != members.rend(); ++it)
            if (it->key == key) return &*it;
        return nullptr;
    }
    // A string as its decoded text, anything else as its JSON text (cut short).
    std::optional<std::string> value(std::string_view key) const {
        const JsonMember* m = last(key);
        if (!m) return std::nullopt;
        std::string_view raw = text.substr(m->value.offset, m->value.length);
        if (m->value.is_string) return decode_json_string(text.substr(m->value.offset - 1, m->value.length + 2));
        if (raw.size() > kMaxShownValue) return std::string(raw.substr(0, kMaxShownValue)) + "...";
        return std::string(raw);
    }
    std::optional<std::string> string_value(std::string_view key) const {
        const JsonMember* m = last(key);
        if (!m || !m->value.is_string) return std::nullopt;
        return value(key);
    }
    std::optional<FieldSpan> span(std::string_view key) const {
        const JsonMember* m = last(key);
        if (!m) return std::nullopt;
        return FieldSpan{m->value.offset, m->value.length};
    }
};

std::string_view ltrim_json(std::string_view s) {
    while (!s.empty() && is_json_ws(s.front())) s.remove_prefix(1);
    return s;
}

// The object in `s` for locate(): no validation beyond the scan.
std::optional<JsonObject> scan_json(std::string_view s) {
    auto members = scan_object(s);
    if (!members) return std::nullopt;
    return JsonObject{s, std::move(*members)};
}

// The object in `s` for decode(): valid JSON, else an anomaly; repeated
// keys are flagged. nullopt (and no anomaly) when `s` is valid JSON but not
// an object.
std::optional<JsonObject> read_json(std::string_view s, std::vector<std::string>& anomalies, bool& malformed) {
    malformed = false;
    if (!json::accept(s)) {
        malformed = true;
        std::string why = "not valid JSON";
        try {
            json ignored = json::parse(s);
        } catch (const json::parse_error& e) {
            why = e.what();
        }
        anomalies.push_back("malformed JSON: " + why);
        return std::nullopt;
    }
    auto obj = scan_json(s);
    if (!obj) return std::nullopt;
    std::vector<std::string> keys;
    for (const auto& m : obj->members) {
        if (std::find(keys.begin(), keys.end(), m.key) != keys.end()) {
            if (keys.size() < 64)
                anomalies.push_back("JSON key \"" + m.key + "\" repeated (Python's json keeps the last)");
        } else {
            keys.push_back(m.key);
        }
    }
    return obj;
}

// "2026-11-21T14:41:34.154067" (or with a space, a 'Z' or an offset, which
// are ignored) as Unix seconds.
std::optional<std::uint64_t> iso_seconds(std::string_view s) {
    auto num = [&](std::size_t at, std::size_t n) -> std::optional<int> {
        if (s.size() < at + n) return std::nullopt;
        int v = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return std::nullopt;
            v = v * 10 + (s[i] - '0');
        }
        return v;
    };
    if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return std::nullopt;
    auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
    if (!y || !mo || !d || !h || !mi || !se || *y < 1970 || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 ||
        *mi > 59 || *se > 60)
        return std::nullopt;
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    long long yy = *y - (*mo <= 2 ? 1 : 0);
    long long era = yy / 400;
    long long yoe = yy - era * 400;
    long long doy = (153LL * (*mo + (*mo > 2 ? -3 : 9)) + 2) / 5 + *d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    return static_cast<std::uint64_t>(days * 86400 + *h * 3600LL + *mi * 60LL + *se);
}

// The room of a /history/{room_id} path, decoded; one path segment only.
std::optional<std::string> history_room(std::string_view path) {
    static constexpr std::string_view prefix = "/history/";
    if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
    std::string_view seg = path.substr(prefix.size());
    if (seg.empty() || seg.find('/') != std::string_view::npos) return std::nullopt;
    return percent_decode(seg, false);
}

void add_field(DecodedMessage& d, std::string name, std::string value) {
    d.fields.push_back({std::move(name), std::move(value)});
}

bool has_field(const DecodedMessage& d, std::string_view name) {
    return std::any_of(d.fields.begin(), d.fields.end(), [&](const Field& f) { return f.name == name; });
}

// ---- The codec ---------------------------------------------------------------------

class Codec final : public StreamCodec {
public:
    Result<std::size_t, ParseError> frame(Peer from, ByteView buffered) override {
        HttpMessage head;
        auto r = m_stream.frame(from, buffered, pending_method(from), &head);
        if (r && *r > 0 && from == Peer::server && head.status == 101) negotiate(head);
        return r;
    }

    DecodedMessage decode(Peer from, ByteView message) override {
        try {
            DecodedMessage d = decode_message(from, message);
            if (d.session_id.empty()) d.session_id = m_session_id;
            return d;
        } catch (const std::exception& e) {
            DecodedMessage d;
            d.type = "MALFORMED";
            d.anomalies.push_back(std::string("decoder error: ") + e.what());
            return d;
        }
    }

    std::optional<FieldSpan> locate(ByteView m, std::string_view field) const override {
        if (looks_like_http_request(m)) return locate_http(m, HttpKind::request, field);
        if (looks_like_http_response(m)) return locate_http(m, HttpKind::response, field);
        return locate_ws(m, field);
    }

private:
    struct Side {
        WsAssembler assembler;
        std::optional<Inflater> inflater;
    };

    static HttpKind kind_of(Peer from) { return from == Peer::client ? HttpKind::request : HttpKind::response; }
    std::string pending_method(Peer from) const {
        return from == Peer::server && !m_pending.empty() ? m_pending.front() : std::string();
    }

    // What a framed or decoded HTTP head changes for the stream; repeating it
    // (a caller framing the same bytes twice) changes nothing more.
    void learn(Peer from, const HttpMessage& head) {
        m_stream.learn(from, head);
        if (from == Peer::server && head.status == 101) negotiate(head);
    }

    void negotiate(const HttpMessage& head) {
        if (m_negotiated) return;
        m_negotiated = true;
        std::string value;
        for (const auto& h : head.headers) {
            if (!iequals(h.name, "sec-websocket-extensions")) continue;
            if (!value.empty()) value += ", ";
            value += h.value;
        }
        if (value.empty()) return;
        auto agreed = agreed_deflate(value);
        if (!agreed) {
            m_negotiation_problem = "Sec-WebSocket-Extensions not understood: " + agreed.error().detail +
                                    " (compressed messages cannot be read)";
            return;
        }
        m_deflate = *agreed;
    }

    DecodedMessage decode_message(Peer from, ByteView message) {
        const auto unit = m_stream.unit(from, message);
        if (unit == HttpWsStream::Unit::body) {
            DecodedMessage d;
            d.type = "HTTP_BODY";
            d.plaintext = Bytes(message.begin(), message.end());
            return d;
        }
        if (unit == HttpWsStream::Unit::ws) return decode_ws(from, message);
        DecodedMessage d = decode_http(from, message);
        if (d.type == "MALFORMED" && m_stream.websocket(from) && parse_ws_frame(message))
            return decode_ws(from, message);
        return d;
    }

    DecodedMessage decode_http(Peer from, ByteView message) {
        DecodedMessage d;
        auto parsed = parse_http(message, kind_of(from), pending_method(from));
        if (!parsed) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not an HTTP " + std::string(from == Peer::client ? "request" : "response") + ": " +
                                  parsed.error().to_string());
            return d;
        }
        const HttpMessage& m = *parsed;
        learn(from, m);
        if (m.framing == BodyFraming::until_close)
            d.anomalies.push_back("a response without Content-Length or chunked coding: its body runs to the close");
        std::optional<JsonObject> body;
        std::string_view body_text = text(m.body);
        if (!ltrim_json(body_text).empty() && ltrim_json(body_text).front() == '{') {
            bool malformed = false;
            body = read_json(body_text, d.anomalies, malformed);
        }
        if (!m.body.empty()) d.plaintext = m.body;
        if (from == Peer::client)
            decode_request(m, body, d);
        else
            decode_response(m, body, d);
        return d;
    }

    void decode_request(const HttpMessage& m, const std::optional<JsonObject>& body, DecodedMessage& d) {
        d.type = "HTTP_REQUEST";
        if (m_pending.size() >= kMaxPendingRequests) m_pending.pop_front();
        m_pending.push_back(m.method);
        add_field(d, "csmp.method", m.method);
        add_field(d, "csmp.path", m.path);
        if (m.websocket_upgrade()) add_field(d, "csmp.upgrade", "websocket");

        auto header_sid = m.header_value("x-session-id");
        auto query_sid = query_parameter(m.query, "session_id");
        if (query_parameter_count(m.query, "session_id") > 1)
            d.anomalies.push_back("session_id repeated in the query (Starlette takes the last)");
        if (header_sid && query_sid && *header_sid != *query_sid)
            d.anomalies.push_back("x-session-id and the session_id query disagree (the guard takes the header)");
        if (m.header_count("x-session-id") > 1)
            d.anomalies.push_back("x-session-id repeated (Starlette takes the first)");
        std::optional<std::string> sid = header_sid ? header_sid : query_sid;
        if (sid) {
            add_field(d, "csmp.session_id", *sid);
            m_session_id = *sid;
            d.session_id = *sid;
        }

        std::optional<std::string> room = query_parameter(m.query, "room_id");
        if (!room) room = history_room(m.path);
        if (room) add_field(d, "csmp.room", *room);

        if (body) {
            if (auto v = body->value("client_id")) add_field(d, "csmp.client_id", *v);
            if (auto v = body->value("user_id")) add_field(d, "csmp.user_id", *v);
            if (auto v = body->value("message")) add_field(d, "csmp.message", *v);
        }

        if (m.websocket_upgrade()) {
            m_ws_path = m.path;
            if (room) m_room = *room;
            if (auto key = m.header_value("sec-websocket-key")) {
                m_ws_key = *key;
                if (!valid_websocket_key(*key))
                    d.anomalies.push_back("Sec-WebSocket-Key is not the base64 of 16 bytes");
            } else {
                d.anomalies.push_back("a WebSocket upgrade without Sec-WebSocket-Key");
            }
        }
    }

    void decode_response(const HttpMessage& m, const std::optional<JsonObject>& body, DecodedMessage& d) {
        d.type = "HTTP_RESPONSE";
        if (m.status >= 200 || m.status == 101) {
            if (!m_pending.empty()) m_pending.pop_front();
        }
        add_field(d, "csmp.status", std::to_string(m.status));
        if (body) {
            if (auto v = body->value("session_id")) {
                add_field(d, "csmp.session_id", *v);
                if (auto s = body->string_value("session_id")) {
                    m_session_id = *s;
                    d.session_id = *s;
                }
            }
            if (auto v = body->value("client_id")) add_field(d, "csmp.client_id", *v);
            if (auto v = body->value("detail")) add_field(d, "csmp.detail", *v);
        }
        if (m.status == 101) {
            add_field(d, "csmp.upgrade", "websocket");
            if (m_deflate) add_field(d, "csmp.extensions", deflate_element(*m_deflate));
            if (!m_negotiation_problem.empty()) d.anomalies.push_back(m_negotiation_problem);
            auto accept = m.header_value("sec-websocket-accept");
            if (!accept)
                d.anomalies.push_back("101 without Sec-WebSocket-Accept");
            else if (!m_ws_key.empty() && *accept != websocket_accept(m_ws_key))
                d.anomalies.push_back("Sec-WebSocket-Accept does not match the request's key");
        }
    }

    DecodedMessage decode_ws(Peer from, ByteView message) {
        DecodedMessage d;
        Side& side = m_side[side_index(from)];
        auto f = parse_ws_frame(message);
        if (!f) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not a WebSocket frame: " + f.error().to_string());
            return d;
        }
        if (from == Peer::client && !f->masked) d.anomalies.push_back("an unmasked client frame (RFC 6455 5.1)");
        if (from == Peer::server && f->masked) d.anomalies.push_back("a masked server frame (RFC 6455 5.1)");
        side.assembler.allow_compressed(m_deflate.has_value());
        auto r = side.assembler.add(*f);
        if (!r) {
            d.type = "MALFORMED";
            d.anomalies.push_back(r.error().detail);
            return d;
        }
        if (!*r) {
            d.type = "WS_FRAGMENT";
            add_field(d, "csmp.opcode", ws_opcode_name(f->opcode));
            add_field(d, "csmp.fragment", std::to_string(side.assembler.fragments()));
            return d;
        }
        WsMessage& msg = **r;
        switch (msg.opcode) {
            case ws_opcode::close: {
                d.type = "WS_CLOSE";
                auto c = parse_ws_close(msg.payload);
                if (!c) {
                    d.anomalies.push_back("a bad close payload: " + c.error().detail);
                } else {
                    if (c->code) add_field(d, "csmp.close_code", std::to_string(*c->code));
                    if (!c->reason.empty()) add_field(d, "csmp.close_reason", c->reason);
                }
                if (!msg.payload.empty()) d.plaintext = msg.payload;
                return d;
            }
            case ws_opcode::ping:
            case ws_opcode::pong:
                d.type = msg.opcode == ws_opcode::ping ? "WS_PING" : "WS_PONG";
                if (!msg.payload.empty()) d.plaintext = msg.payload;
                return d;
            default:
                break;
        }
        Bytes payload;
        const std::size_t sent_size = msg.payload.size();
        if (msg.compressed) {
            if (!side.inflater) {
                bool nct = from == Peer::client ? m_deflate->client_no_context_takeover
                                                : m_deflate->server_no_context_takeover;
                side.inflater.emplace(nct, kMaxInflated);
            }
            auto inflated = side.inflater->inflate(msg.payload);
            if (!inflated) {
                d.type = "MALFORMED";
                d.anomalies.push_back("the compressed message does not inflate: " + inflated.error().detail);
                add_field(d, "csmp.compressed", std::to_string(msg.payload.size()) + " bytes");
                return d;
            }
            payload = std::move(*inflated);
        } else {
            payload = std::move(msg.payload);
        }
        // After the message's own fields.
        auto framing_fields = [&] {
            if (msg.frames > 1) add_field(d, "csmp.fragments", std::to_string(msg.frames));
            if (msg.compressed)
                add_field(d, "csmp.compressed",
                          std::to_string(sent_size) + " bytes, " + std::to_string(payload.size()) + " inflated");
        };
        if (msg.opcode == ws_opcode::binary) {
            d.type = "WS_BINARY";
            d.anomalies.push_back("a binary message (the original's handlers read text only)");
            framing_fields();
            d.plaintext = std::move(payload);
            return d;
        }
        if (!valid_utf8(payload)) d.anomalies.push_back("a text message that is not UTF-8");
        std::string_view s = text(payload);
        if (!s.empty() && s.front() == '{') {
            bool malformed = false;
            auto obj = read_json(s, d.anomalies, malformed);
            if (malformed) {
                d.type = "MALFORMED";
            } else if (!obj) {
                d.type = "WS_JSON";  // valid JSON the member scan did not follow
                d.anomalies.push_back("a JSON object whose members could not be delimited");
            } else {
                read_ws_object(*obj, d);
            }
        } else {
            // The chat handler reads any other text as {"type":"chat","message":<text>}.
            d.type = "chat";
            d.anomalies.push_back("raw text frame (treated as a chat message)");
            if (m_ws_path == "/ws/call")
                d.anomalies.push_back("text that is not JSON on /ws/call (the original's call handler fails on it)");
            add_field(d, "csmp.type", "chat");
            if (!m_room.empty()) add_field(d, "csmp.room", m_room);
            add_field(d, "csmp.message", std::string(s));
        }
        framing_fields();
        d.plaintext = std::move(payload);
        return d;
    }

    void read_ws_object(const JsonObject& obj, DecodedMessage& d) {
        auto type = obj.string_value("type");
        if (type && !type->empty()) {
            d.type = *type;
        } else {
            d.type = "WS_JSON";
            d.anomalies.push_back("a JSON message without a string \"type\"");
        }
        static constexpr std::pair<const char*, const char*> names[] = {
            {"type", "csmp.type"}, {"room_id", "csmp.room"},   {"call_id", "csmp.call_id"}, {"from", "csmp.from"},
            {"to", "csmp.to"},     {"message", "csmp.message"}, {"timestamp", "csmp.timestamp"}};
        // In the order the keys first appear on the wire.
        std::vector<std::string> done;
        for (const auto& member : obj.members) {
            for (const auto& [key, field] : names) {
                if (member.key != key || std::find(done.begin(), done.end(), member.key) != done.end()) continue;
                done.push_back(member.key);
                if (auto v = obj.value(key)) add_field(d, field, *v);
            }
        }
        if (!has_field(d, "csmp.room") && d.type == "chat" && !m_room.empty()) add_field(d, "csmp.room", m_room);
        if (auto ts = obj.string_value("timestamp")) d.timestamp = iso_seconds(*ts);
    }

    std::optional<FieldSpan> locate_http(ByteView m, HttpKind kind, std::string_view field) const {
        HttpMessage head;
        auto r = frame_http(m, kind, {}, &head);
        if (!r || *r == 0) return std::nullopt;
        std::optional<JsonObject> body;
        std::size_t body_end = head.framing == BodyFraming::until_close ? m.size() : *r;
        if (head.framing == BodyFraming::length || head.framing == BodyFraming::until_close)
            body = scan_json(text(m.subspan(head.head_length, body_end - head.head_length)));
        auto in_body = [&](std::string_view key) -> std::optional<FieldSpan> {
            if (!body) return std::nullopt;
            auto s = body->span(key);
            if (!s) return std::nullopt;
            return FieldSpan{head.head_length + s->offset, s->length};
        };
        auto in_query = [&](std::string_view name) -> std::optional<FieldSpan> {
            auto s = query_parameter_span(head.query, name);
            if (!s || head.query.empty()) return std::nullopt;
            return FieldSpan{head.query_offset + s->offset, s->length};
        };
        if (field == "csmp.session_id") {
            if (kind == HttpKind::request) {
                if (const HttpHeader* h = head.header("x-session-id")) return FieldSpan{h->value_offset, h->value.size()};
                if (auto s = in_query("session_id")) return s;
            }
            return in_body("session_id");
        }
        if (field == "csmp.room") {
            if (kind == HttpKind::request) {
                if (auto s = in_query("room_id")) return s;
                static constexpr std::string_view prefix = "/history/";
                std::string_view target = head.target;
                if (target.substr(0, prefix.size()) == prefix && history_room(head.path)) {
                    std::size_t len = target.find('?');
                    if (len == std::string_view::npos) len = target.size();
                    return FieldSpan{head.target_offset + prefix.size(), len - prefix.size()};
                }
            }
            return in_body("room_id");
        }
        if (field == "csmp.message") return in_body("message");
        if (field == "csmp.to") return in_body("to");
        if (field == "csmp.call_id") return in_body("call_id");
        return std::nullopt;
    }

    std::optional<FieldSpan> locate_ws(ByteView m, std::string_view field) const {
        static constexpr std::pair<const char*, const char*> keys[] = {{"csmp.session_id", "session_id"},
                                                                       {"csmp.message", "message"},
                                                                       {"csmp.to", "to"},
                                                                       {"csmp.call_id", "call_id"},
                                                                       {"csmp.room", "room_id"}};
        const char* key = nullptr;
        for (const auto& [f, k] : keys)
            if (field == f) key = k;
        if (!key) return std::nullopt;
        auto f = parse_ws_frame(m);
        if (!f || f->masked || f->rsv1 || !f->fin || f->opcode != ws_opcode::text) return std::nullopt;
        std::string_view s = text(f->payload);
        if (s.empty() || s.front() != '{') {
            // A raw text frame is the chat message itself.
            if (field == "csmp.message" && !s.empty()) return FieldSpan{f->header_length, s.size()};
            return std::nullopt;
        }
        auto obj = scan_json(s);
        if (!obj) return std::nullopt;
        auto span = obj->span(key);
        if (!span) return std::nullopt;
        return FieldSpan{f->header_length + span->offset, span->length};
    }

    Side m_side[2];
    HttpWsStream m_stream;
    bool m_negotiated = false;
    std::optional<DeflateParams> m_deflate;
    std::string m_negotiation_problem;
    std::deque<std::string> m_pending;  // methods of requests not yet answered, oldest first
    std::string m_ws_path, m_ws_key, m_room, m_session_id;
};

}  // namespace

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog*) { return std::make_unique<Codec>(); }

bool detect(ByteView b) {
    if (!looks_like_http_request(b)) return false;
    std::string_view s = text(b.first(std::min(b.size(), kMaxHttpHead)));
    std::size_t sp = s.find(' ');
    std::size_t end = s.find_first_of(" \r\n", sp + 1);
    bool whole = end != std::string_view::npos;
    std::string_view target = s.substr(sp + 1, whole ? end - sp - 1 : std::string_view::npos);
    std::string_view path = target.substr(0, target.find('?'));
    if (whole && path == "/") return true;
    static constexpr std::string_view prefixes[] = {"/health",   "/handshake",         "/chat/send",
                                                    "/history/", "/call/call/history", "/call/history",
                                                    "/ws/chat",  "/ws/call"};
    for (std::string_view p : prefixes)
        if (path.substr(0, p.size()) == p) return true;
    // An x-session-id field among the lines that have arrived.
    std::size_t pos = s.find("\r\n");
    while (pos != std::string_view::npos) {
        pos += 2;
        std::size_t next = s.find("\r\n", pos);
        std::string_view line = s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
        if (line.empty()) break;
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && iequals(line.substr(0, colon), "x-session-id")) return true;
        pos = next;
    }
    return false;
}

}  // namespace msglab::csmp
