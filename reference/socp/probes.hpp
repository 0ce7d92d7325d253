// The checks behind SOCP's scenarios (`probe: {check: NAME}`). Each plays
// every party it needs (users, and a rogue server that announces itself on
// an ordinary connection) with fresh ids, over its own connections, with RSA
// keys from the key cache (socp/keys.hpp):
//   health             USER_HELLO is acknowledged and a DM to oneself comes back
//   weak-key           an RSA-1024 key is refused at login
//   replay             a MSG_DIRECT sent twice is delivered once
//   dual-login         a second login under a name in use is refused
//   from-spoof         a MSG_DIRECT whose from is not the sender is refused
//   unsigned-advertise USER_ADVERTISE without a signature is not trusted
//   forged-signature   a server frame with a signature that does not verify
//                      is dropped
//   hidden-command     no recipient id makes the server answer something else
//   open-mesh          a stranger that announces itself as a server cannot
//                      claim a user (design)
//   key-directory      a user can authenticate the keys its server hands it
//                      (design)
//   unbounded-ciphertext  a ciphertext no RSA-4096 block can be is not relayed
//                      (design)
#pragma once

#include <vector>

#include "core/registry.hpp"

namespace msglab::socp {

std::vector<Probe> probes();

}  // namespace msglab::socp
