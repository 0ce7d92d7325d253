// The published vectors of docs/vectors/signal/ (described in its README):
// X3DH and a Double Ratchet conversation with every intermediate key, made
// from fixed DeterministicRng seeds so that they regenerate byte for byte.
// tests/signal/test_vectors.cpp compares the checked-in files with these
// (MSGLAB_UPDATE_VECTORS=1 rewrites them), and tests/signal/signal_vectors.py
// recomputes them independently from PROTOCOLS.md section 5.
#pragma once

#include <string>

namespace msglab::signal::vectors {

// docs/vectors/signal/x3dh.json: both identities (private and public keys,
// spk_sig), EK, DH1..3, SK, AD, the payload keys, cipher and hmac, the
// events, and the SK test vector of 5.5. Two-space indented, final newline.
std::string x3dh_json();

// docs/vectors/signal/ratchet.json: the pn/n table of 5.6 and a conversation
// continuing the X3DH session of x3dh.json: every send with the sender's
// keys and chain before and after, every delivery (in order, out of order,
// from skipped keys, across DH steps) with the receiver's state before and
// after.
std::string ratchet_json();

}  // namespace msglab::signal::vectors
