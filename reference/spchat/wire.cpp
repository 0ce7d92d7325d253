#include "spchat/wire.hpp"

#include "core/pyjson.hpp"

#include <array>
#include <cstring>

namespace msglab::spchat {

bool known_type(std::string_view type) {
    static constexpr std::array<std::string_view, 14> kTypes = {
        "HELLO", "JOIN",     "WHO",   "MSG",  "LEAVE",      "QUIT",       "PING",
        "PONG",  "INFO",     "ERROR", "WHO_LIST", "FILE_START", "FILE_CHUNK", "FILE_END"};
    for (auto t : kTypes)
        if (t == type) return true;
    return false;
}

Bytes frame(std::string_view json_text) {
    Bytes out;
    out.reserve(4 + json_text.size());
    const auto n = static_cast<std::uint32_t>(json_text.size());
    out.push_back(static_cast<std::uint8_t>(n >> 24));
    out.push_back(static_cast<std::uint8_t>(n >> 16));
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
    out.insert(out.end(), json_text.begin(), json_text.end());
    return out;
}

Bytes server_frame(const Json& message) { return frame(python_dumps(message, true)); }
Bytes client_frame(const Json& message) { return frame(python_dumps(message, false)); }

void FrameReader::push(ByteView data) {
    // Compact what was consumed before growing.
    if (m_pos > 0 && m_pos >= m_buf.size() / 2) {
        m_buf.erase(m_buf.begin(), m_buf.begin() + static_cast<std::ptrdiff_t>(m_pos));
        m_pos = 0;
    }
    m_buf.insert(m_buf.end(), data.begin(), data.end());
}

FrameReader::Status FrameReader::next(std::string& body) {
    const std::size_t have = m_buf.size() - m_pos;
    if (have < 4) return Status::need_more;
    const std::uint8_t* p = m_buf.data() + m_pos;
    const std::uint64_t n = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) | (std::uint64_t{p[2]} << 8) | p[3];
    m_announced = n;
    if (n > m_max) return Status::too_large;
    if (have - 4 < n) return Status::need_more;
    body.assign(reinterpret_cast<const char*>(p + 4), static_cast<std::size_t>(n));
    m_pos += 4 + static_cast<std::size_t>(n);
    if (m_pos == m_buf.size()) {
        m_buf.clear();
        m_pos = 0;
    }
    return Status::frame;
}

std::optional<Json> parse(std::string_view body) {
    // nlohmann's lexer takes a NUL byte for the end of the input, so
    // `{"type": "PING"}` NUL and then anything (not UTF-8, a second object)
    // would parse, where json.loads refuses it. JSON text never holds a raw
    // NUL (inside a string it must be escaped as \u0000).
    if (body.find('\0') != std::string_view::npos) return std::nullopt;
    // nlohmann rejects invalid UTF-8 in strings; bytes outside strings are
    // JSON syntax errors. Depth is bounded by the frame bound and the parser's
    // own recursion is shallow enough for 1 MiB, but a callback caps it anyway.
    int depth = 0;
    bool too_deep = false;
    Json::parser_callback_t cb = [&](int d, Json::parse_event_t event, Json&) {
        (void)event;
        depth = d;
        if (d > 64) too_deep = true;
        return !too_deep;
    };
    Json j = Json::parse(body.begin(), body.end(), cb, false);
    if (too_deep || j.is_discarded() || !j.is_object()) return std::nullopt;
    auto it = j.find("type");
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return j;
}

std::optional<std::string> string_field(const Json& object, const char* key) {
    if (!object.is_object()) return std::nullopt;
    auto it = object.find(key);
    if (it == object.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

std::string strip(std::string_view s) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return std::string(s);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

}  // namespace msglab::spchat
