// Bounded byte reader and writer shared by every codec.
//
// The reader never throws and never reads out of bounds: the first failure is
// recorded (with its offset) and every later read returns zeros, so a parser
// reads a whole structure and checks `ok()` once, in the style of picotls'
// single decode-error exit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace msglab {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string to_string(ByteView b) { return {b.begin(), b.end()}; }
inline Bytes to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::string hex(ByteView data);
// At most `max_bytes` of `data` in hex, with "..." when there is more.
std::string short_hex(ByteView data, std::size_t max_bytes = 16);
// Strict: even length, [0-9a-fA-F] only. Returns false on bad input.
bool unhex(std::string_view text, Bytes& out);
// Throws std::invalid_argument on bad input; for constants and tests.
Bytes unhex(std::string_view text);

enum class ParseErrc {
    none = 0,
    truncated,          // the input ended inside a field
    length_over_limit,  // a length field exceeds the configured bound
    bad_magic,          // a protocol identifier did not match
    unknown_type,       // a type code outside the protocol's set
    bad_value,          // a field holds a value the protocol forbids
    trailing_bytes,     // bytes left after a complete structure
    bad_length,         // a length field that contradicts the structure
};

const char* parse_errc_name(ParseErrc code);

struct ParseError {
    ParseErrc code = ParseErrc::none;
    std::size_t offset = 0;  // byte offset in the input where the problem was found
    std::string detail;

    explicit operator bool() const { return code != ParseErrc::none; }
    std::string to_string() const;
};

class Reader {
public:
    explicit Reader(ByteView data) : m_data(data) {}

    bool ok() const { return !m_error; }
    const ParseError& error() const { return m_error; }
    std::size_t offset() const { return m_pos; }
    std::size_t remaining() const { return m_error ? 0 : m_data.size() - m_pos; }
    bool at_end() const { return remaining() == 0; }

    std::uint8_t u8();
    std::uint16_t be16();
    std::uint32_t be32();
    std::uint64_t be64();
    // A view of the next n bytes (empty after an error).
    ByteView bytes(std::size_t n);
    template <std::size_t N>
    std::array<std::uint8_t, N> array() {
        std::array<std::uint8_t, N> out{};
        ByteView v = bytes(N);
        if (v.size() == N) std::copy(v.begin(), v.end(), out.begin());
        return out;
    }
    ByteView rest();
    // A field preceded by a big-endian length of `width` bytes (1, 2, 4 or 8).
    // A length above `limit` fails with length_over_limit before any read.
    ByteView prefixed(int width, std::size_t limit);
    // Records an error at the current offset, unless one is already recorded.
    void fail(ParseErrc code, std::string detail = {});
    void fail_at(std::size_t offset, ParseErrc code, std::string detail = {});
    // Fails with trailing_bytes unless the input is consumed.
    void expect_end();

private:
    bool need(std::size_t n);

    ByteView m_data;
    std::size_t m_pos = 0;
    ParseError m_error;
};

class Writer {
public:
    Writer() = default;
    explicit Writer(std::size_t reserve) { m_out.reserve(reserve); }

    Writer& u8(std::uint8_t v);
    Writer& be16(std::uint16_t v);
    Writer& be32(std::uint32_t v);
    Writer& be64(std::uint64_t v);
    Writer& bytes(ByteView v);
    Writer& bytes(std::string_view v) { return bytes(as_bytes(v)); }
    // Throws std::length_error when data does not fit the prefix width.
    Writer& prefixed(int width, ByteView data);

    std::size_t size() const { return m_out.size(); }
    const Bytes& data() const { return m_out; }
    Bytes take() { return std::move(m_out); }

private:
    Bytes m_out;
};

}  // namespace msglab
