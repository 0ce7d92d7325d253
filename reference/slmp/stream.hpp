// SLMP for decode, replay and fuzzing: a stream codec and a live client.
#pragma once

#include "core/stream_codec.hpp"

namespace msglab::slmp {

// Captures are read with a far larger bound than endpoints take, so an
// oversized unit is shown (and flagged) rather than ending the stream.
constexpr std::size_t kDecodeMaxUnit = 1u << 20;

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys);
// The live client speaks as user $MSGLAB_SLMP_USER (else "msglab") with the
// shared secret $MSGLAB_SLMP_SECRET (else the original's "my_secret").
std::unique_ptr<LiveClient> make_live_client(const Clock& clock, Rng& rng);
bool detect(ByteView first_bytes);

}  // namespace msglab::slmp
