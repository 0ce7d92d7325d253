// Signal-style chat for decode, replay and hunt: a stream codec for one TCP
// connection to the relay (PROTOCOLS.md section 5). python-socketio's client
// opens with an Engine.IO long-polling handshake (GET
// /socket.io/?transport=polling&EIO=4 answered 200 "0{...}"), then upgrades
// on a second connection (GET ...transport=websocket&sid=... answered 101)
// and sends one Engine.IO packet per WebSocket text frame. frame() cuts the
// HTTP messages, then whole WebSocket frames; decode() reassembles
// fragmented messages (as CSMP's and SOCP's codecs do), splits polling
// bodies into their packets (0x1e between them; gzip or deflate content
// coding undone) and reads each Engine.IO packet, the Socket.IO packet inside
// an Engine.IO MESSAGE, and the events' arguments.
//
// Message types, one per HTTP message or WebSocket message:
//   HTTP_POLL (a polling GET), WS_UPGRADE (the upgrade GET), WS_ACCEPT (101),
//   HTTP_OK (python-engineio's "ok" to a POST), HTTP_REQUEST and
//   HTTP_RESPONSE (anything else, an empty body), WS_FRAGMENT, WS_BINARY,
//   WS_PING, WS_PONG, WS_CLOSE, MALFORMED (not HTTP, not a frame, or no
//   packet could be read);
//   otherwise the name of each packet the message carries, joined with ", "
//   when a polling body holds several:
//     EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_UPGRADE, EIO_NOOP;
//     SIO_CONNECT, SIO_DISCONNECT, SIO_CONNECT_ERROR;
//     an EVENT by its event name: register_user, request_users,
//     request_prekey, x3dh_message, ratchet_msg, pongi, pingi (any other
//     name as itself, with an anomaly);
//     an ACK as "ACK <event>" for the event it answers (ack ids are per
//     sender: an ACK from one side answers an EVENT the other side sent with
//     that id), "ACK" when it answers none seen;
//     EIO_MALFORMED / SIO_MALFORMED for a packet that does not parse.
//
// Fields, in wire order, for each packet: signal.eio.type (OPEN, MESSAGE,
// ...), signal.eio.sid, signal.eio.upgrades, signal.eio.ping_interval,
// signal.eio.ping_timeout, signal.eio.max_payload (OPEN), signal.eio.data
// (PING/PONG "probe"); signal.sio.type, signal.sio.nsp (when not "/"),
// signal.sio.ack_id, signal.sio.sid, signal.sio.message; signal.event (the
// event, or for an ACK the event it answers); then the arguments:
//   register_user: signal.username, signal.ik, signal.sik, signal.spk, signal.spk_sig
//   request_prekey: signal.username
//   x3dh_message: signal.username, signal.from, signal.ik, signal.epk, signal.cipher, signal.hmac
//   ratchet_msg: signal.username, signal.cipher, signal.header.dh,
//     signal.header.pn, signal.header.n (the decoded integers), signal.hmac, signal.from
//   pongi / pingi / others: signal.args (their JSON)
//   acks: signal.ok (a boolean first argument), signal.users (request_users),
//     signal.bundle.ik, .sik, .spk, .spk_sign (request_prekey), signal.args otherwise
// and signal.mac_check, signal.plaintext for x3dh_message and ratchet_msg.
// On HTTP messages also signal.method, signal.path, signal.transport,
// signal.eio.sid (the query's sid), signal.status, signal.content_encoding.
//
// Keys and sessions come from the stream itself: a connection is one user
// (its register_user), the identity keys of the names it met (register_user,
// request_prekey bundles, x3dh_message's ik) and the X3DH sessions it saw.
// With a key log, SIGNAL_X3DH_SK <hex epk> <hex SK> opens an x3dh_message
// (HKDF(SK, 80 zero bytes, "X3DH"), AES-256-CBC, PKCS#7 with 32-byte blocks,
// "##CHAT_START##" expected) and SIGNAL_MESSAGE_KEY <hex dh || n as 8 bytes
// big-endian> <hex mk> opens a ratchet_msg (HKDF(mk, 80 zero bytes,
// "encrypt_info_kdf")); DecodedMessage::plaintext is what opened. The MAC is
// checked when AD (b64(IK_initiator) || b64(IK_responder)) is known: the
// initiator is the x3dh_message's sender, the responder's IK must have
// crossed this connection; signal.mac_check says "verified", "HMAC mismatch",
// "no key" or "MAC not checked: ..." when AD is unknown. session_id is the
// key log id (hex epk, or hex dh || n). Messages that carry an x3dh_message
// or ratchet_msg are `authenticated`.
//
// Anomalies: malformed HTTP, frames, payloads, Engine.IO, Socket.IO packets
// and event arguments (bad base64, wrong key lengths, bad counters); an
// x3dh_message whose epk this direction of the stream carried before (a
// replay: no one-time prekeys); a (dh, n) repeated from the same sender; a
// counter more than MAX_SKIP (10) ahead of its chain; a "from" that is not
// the user this connection registered; a username registered again with
// other keys, a bundle or identity key that changed for a name; a prekey
// signature that does not verify under the sik beside it; pongi and pingi
// (the original's debug broadcast); unknown events, events from the wrong
// side, acks that answer nothing, ack ids reused while pending; the
// recipient acking [true] an x3dh_message whose MAC failed; HMAC mismatch,
// zero HMAC, bad padding, an X3DH payload other than ##CHAT_START##;
// WebSocket framing problems as CSMP's codec reports them.
#pragma once

#include <array>
#include <memory>

#include "core/keylog.hpp"
#include "core/stream_codec.hpp"

namespace msglab::signal {

// The fields locate() finds, where their bytes are visible as sent: in a
// polling body with a Content-Length and no content coding, or in an
// uncompressed, unfragmented text frame that is unmasked (the server's) or
// masked with the all-zero key. A string's characters between its quotes,
// an ack id's digits; in the first packet of a body that has the field.
// signal.eio.sid is also found in a request's query.
inline constexpr std::array<const char*, 19> kFieldPaths = {
    "signal.username",   "signal.from",       "signal.ik",         "signal.sik",         "signal.spk",
    "signal.spk_sig",    "signal.epk",        "signal.cipher",     "signal.hmac",        "signal.header.dh",
    "signal.header.pn",  "signal.header.n",   "signal.bundle.ik",  "signal.bundle.sik",  "signal.bundle.spk",
    "signal.bundle.spk_sign", "signal.event", "signal.sio.ack_id", "signal.eio.sid"};

// `keys` may be null; when given it must outlive the codec.
std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys);
// A client's first bytes: an HTTP request whose path is /socket.io/ (or
// /socket.io) with EIO=4 in its query, polling or websocket.
bool detect(ByteView client_first_bytes);

}  // namespace msglab::signal
