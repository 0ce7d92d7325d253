// CSMP's wire layer, sans-I/O (PROTOCOLS.md section 1): HTTP/1.1 message
// framing on a byte stream, WebSocket frames (RFC 6455), permessage-deflate
// (RFC 7692) and the opening handshake's Sec-WebSocket-Accept.
//
// Every parser takes the bytes buffered so far and answers "more bytes are
// needed", a whole unit, or a ParseError; every length is bounded before
// anything is allocated for it, so hostile input costs at most the bounds
// below in memory.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "core/stream_codec.hpp"

namespace msglab::csmp {

// ---- Bounds -----------------------------------------------------------------

constexpr std::size_t kMaxHttpHead = 16 * 1024;         // start line, fields and the blank line
constexpr std::size_t kMaxHttpHeaders = 100;            // header fields (and, apart, trailer fields)
constexpr std::size_t kMaxHttpBody = 1u << 20;          // a body, after removing the chunked coding
constexpr std::size_t kMaxChunkLine = 1024;             // one chunk-size line with its extensions
constexpr std::size_t kMaxChunks = 16 * 1024;           // chunks in one body
constexpr std::size_t kMaxChunkedBytes = 2u << 20;      // the chunked coding of one body on the wire
constexpr std::size_t kMaxWsPayload = 1u << 20;         // one WebSocket frame's payload
constexpr std::size_t kMaxWsMessage = 1u << 20;         // one reassembled message, as sent
constexpr std::size_t kMaxWsFragments = 16 * 1024;      // frames in one message
constexpr std::size_t kMaxInflated = 1u << 20;          // one message after inflating
constexpr std::size_t kMaxWsControlPayload = 125;       // RFC 6455 5.5

// ---- HTTP/1.1 -----------------------------------------------------------------

enum class HttpKind { request, response };

// How the body of a message is delimited (RFC 9112 section 6.3).
enum class BodyFraming {
    none,         // no body: a request without a length, a 1xx/101/204/304 response, the answer to HEAD
    length,       // Content-Length
    chunked,      // Transfer-Encoding ending in chunked
    until_close,  // a response without either: the rest of the connection is its body
};
const char* body_framing_name(BodyFraming f);

struct HttpHeader {
    std::string name;   // as sent
    std::string value;  // without the surrounding whitespace
    std::size_t value_offset = 0;  // where the value lies in the message
};

struct HttpMessage {
    HttpKind kind = HttpKind::request;
    // The request line.
    std::string method;
    std::string target;   // as sent
    std::string path;     // the target's path, still percent-encoded ("*" for OPTIONS *)
    std::string query;    // after '?', without it; empty when there is none
    std::size_t target_offset = 0;
    std::size_t query_offset = 0;  // where `query` starts in the message (when it is not empty)
    // The status line.
    int status = 0;
    std::string reason;
    int version_major = 1, version_minor = 1;

    std::vector<HttpHeader> headers;
    std::vector<HttpHeader> trailers;  // after a chunked body
    BodyFraming framing = BodyFraming::none;
    std::size_t head_length = 0;  // through the blank line
    std::size_t length = 0;       // the whole message on the wire (the head alone for until_close)
    Bytes body;                   // chunks joined; filled by parse_http only

    // The first field named `name` (ASCII case-insensitive), as Starlette's
    // Headers.get reads it.
    const HttpHeader* header(std::string_view name) const;
    std::optional<std::string> header_value(std::string_view name) const;
    std::size_t header_count(std::string_view name) const;
    // Whether a comma-separated field (every line named `name`) lists `token`,
    // case-insensitively ("Connection: keep-alive, Upgrade").
    bool has_token(std::string_view name, std::string_view token) const;
    // A request asking to become a WebSocket (Upgrade lists "websocket").
    bool websocket_upgrade() const;
};

// The length of the message at the front of `buffered`: 0 while more bytes
// are needed, or a ParseError. `request_method` is the method of the request
// a response answers, when known: the answer to HEAD has no body. With
// `head` set, a successful framing also fills it (without the body); for
// until_close the length is the head's and the caller owns the rest.
Result<std::size_t, ParseError> frame_http(ByteView buffered, HttpKind kind, std::string_view request_method = {},
                                           HttpMessage* head = nullptr);
// The whole message at the front of `buffered`, body decoded; `truncated`
// when it is not all there. Bytes after it are not looked at.
Result<HttpMessage, ParseError> parse_http(ByteView buffered, HttpKind kind, std::string_view request_method = {});

// frame_http for one direction of a stream, as its bytes arrive: the same
// answers, but a message trickling in costs time linear in its length, not
// a parse per arrival. Between calls the framer keeps the head it parsed and
// how far it walked a chunked body, and resumes only when the next buffer
// starts with the same head bytes and still holds the bytes where the walk
// stopped; any other buffer is parsed afresh. Once it answers with a length
// or an error it keeps nothing.
class HttpFramer {
public:
    explicit HttpFramer(HttpKind kind) : m_kind(kind) {}
    Result<std::size_t, ParseError> frame(ByteView buffered, std::string_view request_method = {},
                                          HttpMessage* head = nullptr);
    void reset();

    struct ChunkWalk {
        std::size_t pos = 0;     // the next chunk-size line
        std::size_t total = 0;   // data bytes in the chunks walked
        std::size_t chunks = 0;  // chunks walked
    };

private:
    HttpKind m_kind;
    bool m_active = false;
    std::string m_method;
    HttpMessage m_head;
    Bytes m_head_bytes;
    std::size_t m_content_length = 0;
    ChunkWalk m_walk;
    Bytes m_mark;  // the bytes just before m_walk.pos
};

// Cheap tests of a buffer's first bytes: a request line's method and SP
// ("GET /"), or "HTTP/1." for a status line. Used to tell HTTP apart from
// WebSocket frames, whose first two bytes are never both so.
bool looks_like_http_request(ByteView buffered);
bool looks_like_http_response(ByteView buffered);
// Too few bytes to tell yet: more could make the test above true.
bool may_become_http_request(ByteView buffered);
bool may_become_http_response(ByteView buffered);

// RFC 3986 percent-decoding; '+' becomes a space when `plus_is_space` (query
// strings, as Python's parse_qsl reads them). A '%' not followed by two hex
// digits stays as it is, as Python's unquote leaves it.
std::string percent_decode(std::string_view text, bool plus_is_space);
// A query parameter, decoded. Starlette keeps the last of repeated names.
std::optional<std::string> query_parameter(std::string_view query, std::string_view name);
// Where that last value lies in `query`, still encoded.
std::optional<FieldSpan> query_parameter_span(std::string_view query, std::string_view name);
std::size_t query_parameter_count(std::string_view query, std::string_view name);

// ---- WebSocket frames (RFC 6455 section 5) ---------------------------------------

namespace ws_opcode {
constexpr std::uint8_t continuation = 0x0;
constexpr std::uint8_t text = 0x1;
constexpr std::uint8_t binary = 0x2;
constexpr std::uint8_t close = 0x8;
constexpr std::uint8_t ping = 0x9;
constexpr std::uint8_t pong = 0xa;
}  // namespace ws_opcode
const char* ws_opcode_name(std::uint8_t opcode);  // "text", ..., "reserved"
inline bool ws_control(std::uint8_t opcode) { return (opcode & 0x8) != 0; }

using WsMask = std::array<std::uint8_t, 4>;

struct WsFrame {
    bool fin = true;
    bool rsv1 = false, rsv2 = false, rsv3 = false;
    std::uint8_t opcode = ws_opcode::text;
    bool masked = false;
    WsMask mask{};
    Bytes payload;                  // unmasked
    std::size_t header_length = 0;  // set by parse_ws_frame
};

// The length of the frame at the front of `buffered`: 0 while more bytes are
// needed, or a ParseError for a reserved opcode, a length not in its minimal
// encoding, a 64-bit length with the top bit set, a payload over
// `max_payload`, or a control frame that is fragmented or over 125 bytes.
// Each rule is checked as soon as its bytes are there.
Result<std::size_t, ParseError> frame_ws(ByteView buffered, std::size_t max_payload = kMaxWsPayload);
// The frame at the front of `buffered`, unmasked; `truncated` when it is not
// all there.
Result<WsFrame, ParseError> parse_ws_frame(ByteView buffered, std::size_t max_payload = kMaxWsPayload);
// The frame on the wire, lengths in their minimal encoding, the payload
// masked with `frame.mask` when `frame.masked`. Nothing is checked, so tests
// can build frames a parser must refuse.
Bytes build_ws_frame(const WsFrame& frame);
// XOR with the key, from the payload's first byte; its own inverse.
void ws_apply_mask(Bytes& payload, const WsMask& mask);

// A close frame's payload (RFC 6455 5.5.1): empty, or a code then a UTF-8 reason.
struct WsClose {
    std::optional<std::uint16_t> code;
    std::string reason;
};
Result<WsClose, ParseError> parse_ws_close(ByteView payload);
// A code an endpoint may send (RFC 6455 7.4, and IANA's 1012-1014).
bool ws_close_code_valid(std::uint16_t code);
bool valid_utf8(ByteView text);

// A whole message: the data frames of one message joined, or a control frame.
struct WsMessage {
    std::uint8_t opcode = ws_opcode::text;  // of the first frame
    bool compressed = false;                // RSV1 on the first frame
    Bytes payload;                          // as sent (still compressed)
    std::size_t frames = 1;
};

// Reassembles fragmented messages of one direction. Control frames may come
// between the fragments of a data message and come back at once.
class WsAssembler {
public:
    explicit WsAssembler(std::size_t max_bytes = kMaxWsMessage, std::size_t max_frames = kMaxWsFragments)
        : m_max_bytes(max_bytes), m_max_frames(max_frames) {}

    // RSV1 marks a compressed message once permessage-deflate is agreed.
    void allow_compressed(bool allow) { m_allow_compressed = allow; }
    // The message `frame` completes, nullopt while more fragments are due,
    // or a ParseError: a continuation with no message open, a new data frame
    // inside one, RSV1 where it does not belong, RSV2/RSV3, or a message over
    // the bounds. After an error the open message is dropped.
    Result<std::optional<WsMessage>, ParseError> add(const WsFrame& frame);
    bool in_message() const { return m_open; }
    std::size_t fragments() const { return m_open ? m_message.frames : 0; }
    void reset();

private:
    std::size_t m_max_bytes, m_max_frames;
    bool m_allow_compressed = false;
    bool m_open = false;
    WsMessage m_message;
};

// ---- A stream that starts as HTTP and may switch to WebSocket -------------------

// Where the messages of one TCP stream end, in both directions, when it
// starts as HTTP/1.1 and may be upgraded to WebSocket (the stream codecs of
// CSMP, SOCP and the Signal-style chat): HTTP messages until the client asks
// for an upgrade and the server answers 101, then WebSocket frames in that
// direction; a close-delimited response body runs to the end of the stream.
// Bytes that start like an HTTP message are framed as one even after the
// upgrade (a capture may hold a new connection's request on a reused
// stream), and bytes that may still become an HTTP start line wait.
class HttpWsStream {
public:
    // What a whole message of a side is.
    enum class Unit {
        http,  // an HTTP message (or what failed to be one)
        body,  // more of a close-delimited response body
        ws,    // a WebSocket frame
    };

    // The length of the message from `from` at the front of `buffered`: 0
    // while more bytes are needed, or a ParseError. `request_method` is the
    // method of the request a response answers, when known. The head of an
    // HTTP message framed is learnt (see learn()) and, with `head` set,
    // written there (`head->status` is 0 when the message was not HTTP).
    Result<std::size_t, ParseError> frame(Peer from, ByteView buffered, std::string_view request_method = {},
                                          HttpMessage* head = nullptr);
    // What a message frame() cut is.
    Unit unit(Peer from, ByteView message) const;
    // What an HTTP head changes: an upgrade request, a 101, a body that runs
    // to the close. Learning the same head again changes nothing more.
    void learn(Peer from, const HttpMessage& head);
    bool websocket(Peer from) const { return m_websocket[index(from)]; }
    bool until_close(Peer from) const { return m_until_close[index(from)]; }
    static bool starts_http(Peer from, ByteView bytes);

private:
    static int index(Peer from) { return from == Peer::client ? 0 : 1; }
    HttpFramer m_framer[2] = {HttpFramer(HttpKind::request), HttpFramer(HttpKind::response)};
    bool m_websocket[2] = {false, false};
    bool m_until_close[2] = {false, false};
};

// ---- Where JSON values lie --------------------------------------------------------

// Positions of members and elements in JSON text, for the stream codecs'
// locate(): the scans only delimit values, iteratively (nesting costs no
// stack); whether the text is valid JSON is the decoder's business.
inline bool is_json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
struct JsonSpan {
    std::size_t offset = 0;  // a string's characters, without its quotes
    std::size_t length = 0;
    bool is_string = false;
};
struct JsonMemberSpan {
    std::string key;  // decoded
    JsonSpan value;
};
// One past the end of the value starting at s[i]; nullopt when it does not end.
std::optional<std::size_t> json_value_end(std::string_view s, std::size_t i);
// The members of the object starting at s[i] (after whitespace), in order,
// positions in `s`; with `end` set, one past its closing brace there.
std::optional<std::vector<JsonMemberSpan>> json_object_members(std::string_view s, std::size_t i = 0,
                                                              std::size_t* end = nullptr);
// The elements of the array starting at s[i] (after whitespace).
std::optional<std::vector<JsonSpan>> json_array_elements(std::string_view s, std::size_t i = 0);
// The last member named `key` (JSON parsers keep the last of repeated keys).
const JsonMemberSpan* last_json_member(const std::vector<JsonMemberSpan>& members, std::string_view key);

// ---- permessage-deflate (RFC 7692) ------------------------------------------------

// One element of a Sec-WebSocket-Extensions value: a name and its
// parameters (a value, unquoted, or none).
struct WsExtension {
    std::string name;
    std::vector<std::pair<std::string, std::optional<std::string>>> params;
};
// Every element of the value (several header lines joined with ", "). At
// most 64 elements of 64 parameters.
Result<std::vector<WsExtension>, ParseError> parse_ws_extensions(std::string_view value);

struct DeflateParams {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    std::optional<int> server_max_window_bits;  // 8..15
    // 8..15; 0 in an offer that names it without a value (the client can
    // take the server's choice).
    std::optional<int> client_max_window_bits;
};
enum class DeflateRole { offer, response };
// A permessage-deflate element's parameters: each at most once, the window
// sizes decimal 8..15 without leading zeros, no value on the
// no_context_takeover ones, nothing unknown. A response must give
// client_max_window_bits a value.
Result<DeflateParams, ParseError> parse_deflate_params(const WsExtension& extension, DeflateRole role);
// What a server's Sec-WebSocket-Extensions agreed: nullopt when it does not
// list permessage-deflate, an error when it does so badly or twice.
Result<std::optional<DeflateParams>, ParseError> agreed_deflate(std::string_view response_value);
// The text of a parameter set as an extension element, for building
// handshakes ("permessage-deflate; client_max_window_bits").
std::string deflate_element(const DeflateParams& params);

// Inflates the messages of one direction: raw DEFLATE, 00 00 ff ff appended
// to each message, the window carried from one message to the next unless
// the sender agreed to no_context_takeover. A message that inflates to more
// than `max_output` bytes, is not valid DEFLATE, or ends inside a block is a
// ParseError; after one, with context takeover, the window is lost and every
// later message is refused too.
class Inflater {
public:
    explicit Inflater(bool no_context_takeover = false, std::size_t max_output = kMaxInflated);
    ~Inflater();
    Inflater(Inflater&&) noexcept;
    Inflater& operator=(Inflater&&) noexcept;
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;

    Result<Bytes, ParseError> inflate(ByteView message);
    bool broken() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// Compresses messages of one direction: raw DEFLATE with a sync flush, the
// trailing 00 00 ff ff removed; the window is reset after every message with
// no_context_takeover. `window_bits` 8..15 (zlib's raw deflate takes 9 for 8).
class Deflater {
public:
    explicit Deflater(bool no_context_takeover = false, int window_bits = 15, int level = 6);
    ~Deflater();
    Deflater(Deflater&&) noexcept;
    Deflater& operator=(Deflater&&) noexcept;
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;

    Bytes deflate(ByteView message);

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// ---- The opening handshake (RFC 6455 section 4) --------------------------------------

constexpr std::string_view kWsGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// base64(SHA-1(key || GUID)).
std::string websocket_accept(std::string_view key);
// A Sec-WebSocket-Key is the base64 of 16 bytes (24 characters).
bool valid_websocket_key(std::string_view key);

}  // namespace msglab::csmp
