#include "core/bytes.hpp"

#include <stdexcept>

namespace msglab {

std::string short_hex(ByteView data, std::size_t max_bytes) {
    if (data.size() <= max_bytes) return hex(data);
    return hex(data.first(max_bytes)) + "...";
}

std::string hex(ByteView data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (std::uint8_t b : data) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0x0f]);
    }
    return out;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool unhex(std::string_view text, Bytes& out) {
    if (text.size() % 2 != 0) return false;
    Bytes result;
    result.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
        if (hi < 0 || lo < 0) return false;
        result.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    out = std::move(result);
    return true;
}

Bytes unhex(std::string_view text) {
    Bytes out;
    if (!unhex(text, out)) throw std::invalid_argument("not a hex string: " + std::string(text.substr(0, 64)));
    return out;
}

const char* parse_errc_name(ParseErrc code) {
    switch (code) {
        case ParseErrc::none: return "none";
        case ParseErrc::truncated: return "truncated";
        case ParseErrc::length_over_limit: return "length_over_limit";
        case ParseErrc::bad_magic: return "bad_magic";
        case ParseErrc::unknown_type: return "unknown_type";
        case ParseErrc::bad_value: return "bad_value";
        case ParseErrc::trailing_bytes: return "trailing_bytes";
        case ParseErrc::bad_length: return "bad_length";
    }
    return "unknown";
}

std::string ParseError::to_string() const {
    std::string s = parse_errc_name(code);
    s += " at offset " + std::to_string(offset);
    if (!detail.empty()) s += ": " + detail;
    return s;
}

bool Reader::need(std::size_t n) {
    if (m_error) return false;
    if (m_data.size() - m_pos < n) {
        fail(ParseErrc::truncated, "need " + std::to_string(n) + " bytes, have " +
                                       std::to_string(m_data.size() - m_pos));
        return false;
    }
    return true;
}

void Reader::fail(ParseErrc code, std::string detail) { fail_at(m_pos, code, std::move(detail)); }

void Reader::fail_at(std::size_t offset, ParseErrc code, std::string detail) {
    if (m_error) return;
    m_error = ParseError{code, offset, std::move(detail)};
}

std::uint8_t Reader::u8() {
    if (!need(1)) return 0;
    return m_data[m_pos++];
}

std::uint16_t Reader::be16() {
    if (!need(2)) return 0;
    std::uint16_t v = static_cast<std::uint16_t>(m_data[m_pos] << 8 | m_data[m_pos + 1]);
    m_pos += 2;
    return v;
}

std::uint32_t Reader::be32() {
    if (!need(4)) return 0;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | m_data[m_pos + i];
    m_pos += 4;
    return v;
}

std::uint64_t Reader::be64() {
    if (!need(8)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | m_data[m_pos + i];
    m_pos += 8;
    return v;
}

ByteView Reader::bytes(std::size_t n) {
    if (!need(n)) return {};
    ByteView v = m_data.subspan(m_pos, n);
    m_pos += n;
    return v;
}

ByteView Reader::rest() {
    if (m_error) return {};
    ByteView v = m_data.subspan(m_pos);
    m_pos = m_data.size();
    return v;
}

ByteView Reader::prefixed(int width, std::size_t limit) {
    std::size_t at = m_pos;
    std::uint64_t len = 0;
    switch (width) {
        case 1: len = u8(); break;
        case 2: len = be16(); break;
        case 4: len = be32(); break;
        case 8: len = be64(); break;
        default: fail(ParseErrc::bad_length, "unsupported length width"); return {};
    }
    if (m_error) return {};
    if (len > limit) {
        fail_at(at, ParseErrc::length_over_limit,
                "length " + std::to_string(len) + " exceeds limit " + std::to_string(limit));
        return {};
    }
    return bytes(static_cast<std::size_t>(len));
}

void Reader::expect_end() {
    if (m_error) return;
    if (m_pos != m_data.size())
        fail(ParseErrc::trailing_bytes, std::to_string(m_data.size() - m_pos) + " bytes after the end");
}

Writer& Writer::u8(std::uint8_t v) {
    m_out.push_back(v);
    return *this;
}
Writer& Writer::be16(std::uint16_t v) {
    m_out.push_back(static_cast<std::uint8_t>(v >> 8));
    m_out.push_back(static_cast<std::uint8_t>(v));
    return *this;
}
Writer& Writer::be32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) m_out.push_back(static_cast<std::uint8_t>(v >> s));
    return *this;
}
Writer& Writer::be64(std::uint64_t v) {
    for (int s = 56; s >= 0; s -= 8) m_out.push_back(static_cast<std::uint8_t>(v >> s));
    return *this;
}
Writer& Writer::bytes(ByteView v) {
    m_out.insert(m_out.end(), v.begin(), v.end());
    return *this;
}
Writer& Writer::prefixed(int width, ByteView data) {
    std::uint64_t max = width >= 8 ? UINT64_MAX : (std::uint64_t{1} << (8 * width)) - 1;
    if (data.size() > max) throw std::length_error("field does not fit its length prefix");
    switch (width) {
        case 1: u8(static_cast<std::uint8_t>(data.size())); break;
        case 2: be16(static_cast<std::uint16_t>(data.size())); break;
        case 4: be32(static_cast<std::uint32_t>(data.size())); break;
        case 8: be64(data.size()); break;
        default: throw std::invalid_argument("unsupported length width");
    }
    return bytes(data);
}

}  // namespace msglab
