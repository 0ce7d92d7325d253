// SecMsg for decode, replay and fuzzing: a stream codec and a live client.
#pragma once

#include "core/stream_codec.hpp"

namespace msglab::secmsg {

// Captures are analysed with a far larger bound than endpoints accept, so an
// oversized packet is shown (and flagged) rather than ending the stream.
constexpr std::uint32_t kDecodeMaxPayload = 1u << 24;

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys);
std::unique_ptr<LiveClient> make_live_client(const Clock& clock, Rng& rng);
bool detect(ByteView first_bytes);

}  // namespace msglab::secmsg
