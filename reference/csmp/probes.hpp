// CSMP's checks for `probe` scenario steps: each drives a live server over
// HTTP and both WebSockets with msglab's client, playing every party itself
// (fresh random identities, so checks do not disturb each other).
//
//   health             the health route answers and a handshake succeeds
//   unissued-session   a session id the server never issued is refused
//                      (401 on HTTP, 403 on the upgrade)
//   room-acl           a third party can neither read a pair's history nor
//                      join its room's socket
//   call-takeover      a second session claiming an identity does not take
//                      over that identity's incoming calls
//   call-non-party     a call event from someone outside the call reaches
//                      nobody
//   session-id-random  consecutive session ids share no sequence
//   debug-mode         no debug flag, no public API docs, no traces in 500s
//   at-rest-key        history rows do not open with the original's
//                      hard-coded key (needs the server's database file)
//   claim-identity     the handshake asks for proof of the claimed identity
//   session-in-url     the WebSocket upgrade does not need the session id in
//                      its URL
#pragma once

#include <vector>

#include "core/registry.hpp"

namespace msglab::csmp {

std::vector<Probe> probes();

}  // namespace msglab::csmp
