// Engine.IO v4 and Socket.IO v5 text packets, sans-I/O (PROTOCOLS.md
// sections 5.1 and 5.2): the transport of the Signal-style chat, whose
// original runs python-socketio 5 / python-engineio 4 on both ends.
//
// Engine.IO packet:   <type digit 0-6><data>      "0{...}" open, "1" close,
//                     "2"/"3" ping/pong (the server pings in v4; "2probe" /
//                     "3probe" during an upgrade), "4<text>" message,
//                     "5" upgrade, "6" noop.
// Polling payload:    packets joined with the record separator 0x1e, one
//                     payload per HTTP body (GET answer or POST body).
// Socket.IO packet:   the data of an Engine.IO message:
//                     <type 0-6>[<namespace>,][<ack id>][<JSON>]
//                     0 CONNECT ({} auth or nothing; the server answers
//                     {"sid":..}), 1 DISCONNECT, 2 EVENT (["name",args...]),
//                     3 ACK ([args...]), 4 CONNECT_ERROR ({"message":..}).
//
// Only text is handled: a binary Engine.IO packet ("b<base64>" in a polling
// payload) and the binary Socket.IO types 5 and 6 (which announce
// attachments) are refused with an error that says so. Every parser returns
// a ParseError for hostile input and never throws; every length is bounded
// before it is used (payload bytes, packets per payload, namespace bytes,
// ack id digits, JSON nesting). JSON is written as python-socketio writes it,
// json.dumps with separators=(',', ':') and ASCII escapes, so the bytes on
// the wire match the original's.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace msglab::signal {

using Json = nlohmann::ordered_json;

// ---- Bounds -------------------------------------------------------------------

// A polling payload (one HTTP body), and so any one packet: python-engineio's
// max_http_buffer_size default.
constexpr std::size_t kDefaultMaxPayload = 1'000'000;
constexpr std::size_t kMaxPacketsPerPayload = 4096;
constexpr std::size_t kMaxNamespace = 256;     // bytes of a namespace, with its '/'
constexpr std::size_t kMaxAckIdDigits = 15;    // ids stay below 10^15 (exact in a JS Number)
constexpr std::size_t kMaxJsonDepth = 32;      // nesting of arrays and objects
constexpr std::size_t kMaxSidLength = 128;     // a sid in an open or CONNECT packet
constexpr std::size_t kMaxUpgrades = 8;        // names in an open packet's "upgrades"
constexpr std::size_t kEioSidLength = 20;      // the sids msglab makes, as python-engineio's

// ---- Engine.IO packets ------------------------------------------------------------

enum class EioType : std::uint8_t { open = 0, close = 1, ping = 2, pong = 3, message = 4, upgrade = 5, noop = 6 };
const char* eio_type_name(EioType t);  // "OPEN", ... as python-engineio logs them

struct EioPacket {
    EioType type = EioType::message;
    std::string data;  // everything after the type digit, possibly empty
    bool operator==(const EioPacket&) const = default;
};

// One text packet: a type digit then data (any bytes; a WebSocket text frame
// is checked for UTF-8 by the WebSocket layer). Empty text, a type outside
// 0-6, a binary packet ('b') or text over `max_bytes` is an error.
Result<EioPacket, ParseError> parse_eio_packet(std::string_view text, std::size_t max_bytes = kDefaultMaxPayload);
std::string build_eio_packet(const EioPacket& packet);
std::string build_eio_packet(EioType type, std::string_view data = {});

// A polling payload: packets separated by 0x1e, each parsed as above. An
// empty payload, an empty packet (two separators in a row, or one at either
// end), more than `max_packets` packets or a body over `max_bytes` is an
// error.
Result<std::vector<EioPacket>, ParseError> parse_payload(std::string_view body,
                                                         std::size_t max_bytes = kDefaultMaxPayload,
                                                         std::size_t max_packets = kMaxPacketsPerPayload);
// The packets joined with 0x1e. Nothing is checked.
std::string build_payload(const std::vector<EioPacket>& packets);
// Takes from the front of `queue` (packet texts, already encoded) as many
// packets as fit in `max_bytes` with their separators, and at least one,
// and joins them; `queue` keeps the rest. Empty when `queue` is.
std::string take_payload(std::deque<std::string>& queue, std::size_t max_bytes = kDefaultMaxPayload,
                         std::size_t max_packets = kMaxPacketsPerPayload);

// The open packet's handshake data.
struct EioOpen {
    std::string sid;
    std::vector<std::string> upgrades;  // {"websocket"} on a polling handshake
    std::uint32_t ping_interval_ms = 25'000;
    std::uint32_t ping_timeout_ms = 20'000;
    // python-engineio 4.9 (the capture) leaves it out; the v4 spec lists it.
    std::optional<std::uint64_t> max_payload;
    bool operator==(const EioOpen&) const = default;
};
// The data of an open packet, keys in the order of the capture: sid,
// upgrades, pingTimeout, pingInterval, then maxPayload when set.
std::string build_open_data(const EioOpen& open);
// An object with a non-empty string sid (at most kMaxSidLength bytes), an
// array of at most kMaxUpgrades strings, pingInterval and pingTimeout as
// integers in 1..2^31-1, and an optional positive integer maxPayload. Other
// keys are ignored.
Result<EioOpen, ParseError> parse_open_data(std::string_view data);

// A session id as python-engineio makes them: 20 URL-safe base64 characters
// (15 random bytes).
std::string make_sid(Rng& rng);

// ---- JSON with bounds ----------------------------------------------------------------

// JSON text as Python's json.loads reads it, within bounds: at most
// `max_depth` levels of arrays and objects (checked on the text before
// anything is built), UTF-8 strings (no lone surrogates), numbers that fit
// a double (nlohmann refuses 1e400, which Python reads as inf). NaN and
// Infinity, which Python accepts, are errors. `offset` is where
// `text` starts in the enclosing input, for error positions.
Result<Json, ParseError> parse_json_bounded(std::string_view text, std::size_t max_depth = kMaxJsonDepth,
                                            std::size_t offset = 0);
// json.dumps(j, separators=(',', ':')): python-socketio's packet JSON.
std::string dump_json(const Json& j);

// ---- Socket.IO packets ----------------------------------------------------------------

enum class SioType : std::uint8_t {
    connect = 0,
    disconnect = 1,
    event = 2,
    ack = 3,
    connect_error = 4,
    binary_event = 5,  // refused: binary attachments are not supported
    binary_ack = 6,    // refused
};
const char* sio_type_name(SioType t);  // "CONNECT", ... as python-socketio logs them

struct SioPacket {
    SioType type = SioType::event;
    std::string nsp = "/";             // "/" is not written on the wire
    std::optional<std::uint64_t> id;   // ack id, on EVENT (optional) and ACK (required)
    std::optional<Json> data;
    bool operator==(const SioPacket&) const = default;
};

// A Socket.IO packet (the data of an Engine.IO message). Rules per type:
//   CONNECT: data absent or an object; no ack id.
//   DISCONNECT: no data, no ack id.
//   EVENT: data a non-empty array whose first element is a string; ack id optional.
//   ACK: an ack id and an array.
//   CONNECT_ERROR: an object, or a string (python-socketio 5.7 sends
//   "Unable to connect"); no ack id.
// A namespace starts with '/' and ends at the first ',' (or at the end of a
// packet with nothing else), at most kMaxNamespace bytes. An ack id is at
// most kMaxAckIdDigits digits. Binary types 5 and 6 are refused.
Result<SioPacket, ParseError> parse_sio_packet(std::string_view text, std::size_t max_depth = kMaxJsonDepth);
// As python-socketio encodes: type digit, the namespace and ',' unless it is
// "/", the ack id, the JSON. Nothing is checked, so tests can build packets a
// parser must refuse.
std::string build_sio_packet(const SioPacket& packet);

// Shorthands for the packets a client and a server exchange.
SioPacket sio_event(std::string_view name, const Json& args, std::optional<std::uint64_t> id = std::nullopt,
                    std::string nsp = "/");  // args: an array (the arguments after the name)
SioPacket sio_ack(std::uint64_t id, const Json& args, std::string nsp = "/");
// The event name and the arguments after it, of a well-formed EVENT.
std::string event_name(const SioPacket& event);
Json event_args(const SioPacket& event);

// An Engine.IO message carrying a Socket.IO packet: "4" + the packet.
std::string eio_message(const SioPacket& packet);

}  // namespace msglab::signal
