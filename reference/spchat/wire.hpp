// SP-SimpleChat on the wire (PROTOCOLS.md sections 2.2 and 2.3): a frame is a
// BE32 length and that many bytes of a UTF-8 JSON object whose "type" is an
// upper-case word. Sans-I/O: the server, the client, the stream codec and the
// fuzzers all cut frames with FrameReader and read messages with parse().
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"

namespace msglab::spchat {

using Json = nlohmann::ordered_json;

inline constexpr std::uint16_t kDefaultPort = 9000;
// The clean endpoints' bound on one frame: a FILE_CHUNK of 32 KiB is about
// 44 KiB of JSON; 1 MiB leaves room for any sane message.
inline constexpr std::size_t kDefaultMaxFrame = 1024 * 1024;
// The largest length prefix there can be.
inline constexpr std::uint64_t kMaxLengthPrefix = 0xFFFFFFFFull;

// Every type the original's server or client sends.
bool known_type(std::string_view type);

// BE32 length || text.
Bytes frame(std::string_view json_text);
// A message as the original's server writes it: json.dumps defaults
// (", ", ": ", non-ASCII escaped), framed.
Bytes server_frame(const Json& message);
// As the original's client writes it: the same separators, UTF-8 kept.
Bytes client_frame(const Json& message);

// Cuts a byte stream into frames. Bounded: a length prefix above `max_frame`
// is an error the moment its four bytes arrive, before any body is read, so
// a hostile length never reserves memory. With `max_frame` = kMaxLengthPrefix
// the reader accepts any length (the spchat.unbounded-frame plant) and still
// only holds what arrived.
class FrameReader {
public:
    explicit FrameReader(std::uint64_t max_frame = kDefaultMaxFrame) : m_max(max_frame) {}

    void push(ByteView data);
    enum class Status { frame, need_more, too_large };
    // The next whole frame's body into `body` (status frame), or why not.
    Status next(std::string& body);
    // The length prefix that was refused (status too_large), or the one
    // being waited for.
    std::uint64_t announced() const { return m_announced; }
    std::size_t buffered() const { return m_buf.size() - m_pos; }

private:
    Bytes m_buf;
    std::size_t m_pos = 0;
    std::uint64_t m_max;
    std::uint64_t m_announced = 0;
};

// A frame's body read as a message: a JSON object (of any key order) whose
// "type" is a string. nullopt for anything else (not UTF-8, not JSON, not an
// object, no string type), which the original answers by closing the
// connection.
std::optional<Json> parse(std::string_view body);

// Field accessors that never throw: the string at `key`, or nullopt when it
// is absent or not a string.
std::optional<std::string> string_field(const Json& object, const char* key);
// Python's s.strip() for ASCII whitespace and str.lower() for ASCII letters:
// what the original does to nicks and file destinations. Non-ASCII letters
// are kept as they are (documented: Python would lower-case them too).
std::string strip(std::string_view s);
std::string lower(std::string_view s);
std::string upper(std::string_view s);

}  // namespace msglab::spchat
