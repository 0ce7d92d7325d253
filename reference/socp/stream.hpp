// SOCP v1.3 for decode, replay and fuzzing: a stream codec for one TCP
// connection to a SOCP server (PROTOCOLS.md section 2.8). The client sends
// an HTTP GET with "Upgrade: websocket", the server answers 101 (with the
// permessage-deflate parameters it agreed), then both sides send WebSocket
// frames: one JSON envelope {type, from, to, ts, payload, sig} per text
// message. frame() cuts the HTTP messages, then whole WebSocket frames;
// decode() reassembles fragmented messages, inflates compressed ones (with
// the context takeover the 101 agreed) and reads each text message with
// socp::parse_envelope.
//
// Message types: the envelope's "type" (USER_HELLO, MSG_DIRECT, ...),
// HTTP_REQUEST, HTTP_RESPONSE, HTTP_BODY (a close-delimited response body),
// WS_FRAGMENT (a frame of a message still open), WS_BINARY, WS_PING,
// WS_PONG, WS_CLOSE and MALFORMED (not HTTP, not a frame, or a text message
// that is not an envelope).
//
// Fields: socp.type, socp.from, socp.to, socp.ts, socp.payload.<key> for
// each top-level payload key (long values shortened), socp.sig (shortened),
// socp.sig_check, socp.content_sig_check, socp.key_bits, socp.plaintext;
// socp.method, socp.path, socp.upgrade, socp.status, socp.extensions on the
// handshake; socp.close_code, socp.close_reason, socp.compressed,
// socp.fragments, socp.opcode, socp.fragment on frames.
//
// Signatures are checked with the keys the stream itself carried, never
// with keys from elsewhere: a USER_HELLO's pubkey, a SERVER_HELLO_JOIN's,
// SERVER_HELLO_LINK's or SERVER_ANNOUNCE's pubkey (for their "from"), a
// USER_ADVERTISE's meta.pubkey (for its user_id), a sender_pub (for the
// sender). The transport sig is tried with the key of the envelope's "from",
// then with the key of the side that sent it (a server that relays a user's
// frame signs it itself). socp.sig_check is "verified (<canonical form>)",
// "verified (<canonical form>) by <id>, the sending peer", "bad" or "no key"
// (also for a user's frame from a server side whose key the stream lacks);
// socp.content_sig_check likewise for content_sig (DMs, deliveries, public
// channel messages, key shares), with the sender's key from earlier in the
// stream or else the sender_pub the frame carries.
//
// Anomalies: a server-signed type (wire.hpp server_signed_type) without a
// sig from a side that is a server (the server side, or a client side that
// said SERVER_HELLO_*/SERVER_ANNOUNCE); an RSA key under 4096 bits or a key
// that does not parse; a key for an id that differs from the one the stream
// carried before; the same message id (ts, from, to, payload) twice in one
// direction; a user frame whose "from" is not the "from" of the connection's
// USER_HELLO; a malformed envelope; an unknown type; WebSocket framing
// problems as CSMP's codec reports them.
//
// With a key log (SOCP_PRIVATE_KEY <hex of the user id's bytes> <hex of the
// PKCS#8 DER>), the ciphertext of a MSG_DIRECT or FILE_CHUNK to that user,
// and of a USER_DELIVER or SERVER_DELIVER whose user is that user, is
// decrypted (RSA-OAEP-SHA256) into socp.plaintext.
#pragma once

#include <array>
#include <memory>

#include "core/keylog.hpp"
#include "core/stream_codec.hpp"

namespace msglab::socp {

inline constexpr const char* kKeyLogLabel = "SOCP_PRIVATE_KEY";

// The fields locate() finds, where their bytes are visible as sent: in an
// unmasked, uncompressed, unfragmented text frame (a string's characters
// between its quotes, a number's digits).
inline constexpr std::array<const char*, 10> kFieldPaths = {
    "socp.type",  "socp.from",  "socp.to", "socp.ts", "socp.sig", "socp.payload.ciphertext", "socp.payload.content_sig",
    "socp.payload.sender_pub", "socp.payload.pubkey", "socp.payload.user_id"};

// `keys` may be null; when given it must outlive the codec.
std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys);
// A client's first bytes: an HTTP GET of "/" (a query allowed) with an
// Upgrade header naming websocket among the header lines that have arrived.
// CSMP's WebSockets live on /ws/chat and /ws/call, so the two do not meet.
bool detect(ByteView client_first_bytes);

}  // namespace msglab::socp
