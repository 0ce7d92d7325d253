// SP-SimpleChat for decode, replay and fuzzing: a stream codec for one TCP
// connection (PROTOCOLS.md section 2). Frames are cut by their BE32 length;
// each is read as a JSON message. There are no session keys: file chunks
// open with the all-zero session key and the file nonce of the stream's
// FILE_START, which is the point (KEY_FROM_PUBLIC_DATA).
//
// Message types: the JSON "type" (HELLO, MSG, FILE_CHUNK, ...), or MALFORMED.
// Fields: spchat.length, spchat.type, spchat.nick, spchat.room, spchat.text,
// spchat.members, spchat.from, spchat.to, spchat.file_id, spchat.name,
// spchat.size, spchat.sha256, spchat.mode, spchat.index.
// Anomalies: the magic trigger text and its hidden reply, a FILE_* "from"
// that is not the nick the connection said HELLO with, a frame over the
// clean bound, a file readable by anyone (every FILE_START), a chunk whose
// tag does not verify.
#pragma once

#include <array>

#include "core/stream_codec.hpp"

namespace msglab::spchat {

// decode's own bound on one frame: far above the clean server's, so that a
// capture of a planted server still decodes.
inline constexpr std::size_t kDecodeMaxFrame = 64 * 1024 * 1024;

inline constexpr std::array<const char*, 7> kFieldPaths = {"spchat.length", "spchat.type", "spchat.nick", "spchat.room",
                                                           "spchat.text",   "spchat.from", "spchat.to"};

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys);
// A BE32 length that fits, then a JSON object with one of the protocol's
// upper-case types (section 6).
bool detect(ByteView client_first_bytes);

}  // namespace msglab::spchat
