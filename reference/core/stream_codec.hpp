// What a protocol gives decode, replay and the fuzzers: cutting a reassembled
// byte stream into messages, describing each message, locating named fields
// for mutation, and a live client session for re-wrapping replays.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/keylog.hpp"
#include "core/result.hpp"

namespace msglab {

// Who sent a message: the side that opened the connection, or the other.
enum class Peer { client = 0, server = 1 };
inline const char* peer_name(Peer p) { return p == Peer::client ? "client" : "server"; }

struct Field {
    std::string name;   // "secmsg.timestamp"
    std::string value;  // as a person reads it
};

struct DecodedMessage {
    std::string type;                // in the protocol's words: "HANDSHAKE_REQUEST"
    std::vector<Field> fields;       // key fields, in wire order
    std::string session_id;          // hex, as the key log names the session, when known
    std::optional<Bytes> plaintext;  // when the key log has the session's keys
    bool authenticated = false;      // carries a MAC or signature a replay would reuse
    std::optional<std::uint64_t> timestamp;  // the sender's clock, when the message has one
    std::vector<std::string> anomalies;      // "HMAC mismatch", "zero HMAC", ...
};

struct FieldSpan {
    std::size_t offset = 0;
    std::size_t length = 0;
};

// Per stream: holds what earlier messages taught (the session id, keys).
class StreamCodec {
public:
    virtual ~StreamCodec() = default;
    // The length of the message at the front of `buffered`: 0 when more bytes
    // are needed, or a parse error (the stream cannot be resynchronised).
    virtual Result<std::size_t, ParseError> frame(Peer from, ByteView buffered) = 0;
    virtual DecodedMessage decode(Peer from, ByteView message) = 0;
    // Where `field` (a registry field path) lies in `message`; nullopt if absent.
    // Mutations change bytes in place and recompute nothing.
    virtual std::optional<FieldSpan> locate(ByteView message, std::string_view field) const = 0;
};

// A protocol client driven by the replayer when it re-wraps captured
// plaintexts into a fresh session of its own.
class LiveClient {
public:
    virtual ~LiveClient() = default;
    // The bytes that open the session (handshake), possibly none.
    virtual std::vector<Bytes> start() = 0;
    struct Fed {
        std::vector<Bytes> to_send;
        std::vector<Bytes> messages;  // whole messages the target sent
        bool established = false;
        std::optional<std::string> closed;  // why the session ended on our side
    };
    virtual Fed feed(ByteView data) = 0;
    virtual bool established() const = 0;
    // A data message carrying `plaintext` in the live session, stamped with
    // `timestamp` when the protocol carries one (else the clock's time).
    virtual Bytes seal(ByteView plaintext, std::optional<std::uint64_t> timestamp) = 0;
    // `message` after a mutation, with what the protocol derives from its
    // other fields recomputed (unkeyed hashes, and the MAC with the live
    // session's keys), so that a changed field reaches the checks behind
    // them; nullopt when that is not possible (the default).
    virtual std::optional<Bytes> refresh(ByteView message) const {
        (void)message;
        return std::nullopt;
    }
    // The live session's key log line, so its traffic can be decoded later.
    virtual std::optional<KeyLogEntry> keylog_entry() const = 0;
};

}  // namespace msglab
