// CSMP for decode, replay and fuzzing: a stream codec for one TCP connection
// to the CSMP backend (PROTOCOLS.md section 1). CSMP has no cryptography on
// the wire, so the codec needs no keys.
//
// A connection carries HTTP/1.1 messages until it upgrades: the client side
// carries WebSocket frames after it sends a request with "Upgrade:
// websocket", the server side after it sends 101. frame() cuts whole HTTP
// messages, then whole WebSocket frames; decode() reassembles fragmented
// messages and inflates compressed ones (permessage-deflate, with the
// parameters of the stream's 101) and reads CSMP's JSON.
//
// Message types: HTTP_REQUEST, HTTP_RESPONSE, HTTP_BODY (a close-delimited
// response body), the JSON "type" of a WebSocket data message ("chat",
// "call:init", ...; WS_JSON when it has none), WS_FRAGMENT (a frame of a
// message still open), WS_BINARY, WS_CLOSE, WS_PING, WS_PONG and MALFORMED.
//
// Fields: csmp.method, csmp.path, csmp.upgrade, csmp.status, csmp.session_id,
// csmp.room, csmp.client_id, csmp.detail, csmp.type, csmp.call_id, csmp.from,
// csmp.to, csmp.message, csmp.timestamp, csmp.close_code, csmp.close_reason,
// csmp.compressed, csmp.fragments, csmp.opcode, csmp.fragment.
#pragma once

#include <array>

#include "core/stream_codec.hpp"

namespace msglab::csmp {

// The fields locate() finds, where their bytes are visible as sent: in HTTP
// text (headers, the query, the /history/{room} path, a JSON body with a
// Content-Length) or in an unmasked, uncompressed, unfragmented text frame.
inline constexpr std::array<const char*, 5> kLocatableFields = {"csmp.session_id", "csmp.message", "csmp.to",
                                                                "csmp.call_id", "csmp.room"};

// `keys` is not used: CSMP has no wire cryptography.
std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys);
// An HTTP request to one of CSMP's paths (/, /health, /handshake,
// /chat/send, /history/, /call/call/history, /call/history, /ws/chat,
// /ws/call), or one carrying an x-session-id header.
bool detect(ByteView client_first_bytes);

}  // namespace msglab::csmp
