// The checks behind SP-SimpleChat's scenarios (`probe: {check: NAME}`). Each
// plays every party it needs with fresh nicks and rooms, over its own
// connections:
//   health            HELLO, JOIN, PING answered with the original's texts
//   room-acl          a room created with a password refuses a JOIN without it
//   magic-trigger     "BACKDOOR" is relayed like any text, with no hidden reply
//   nick-release      a nick is free again after a rename and after its
//                     connection closes
//   oversized-frame   a length prefix of 2 GiB is refused at once
//   file-from         a FILE_* frame whose "from" is not the sender's nick is
//                     not relayed
//   claim-identity    HELLO asks for proof of the claimed nick (design)
//   plaintext-chat    a chat line does not cross the wire in clear (design)
//   file-key          a file transfer cannot be read from its frames alone
//                     (design)
#pragma once

#include <vector>

#include "core/registry.hpp"

namespace msglab::spchat {

std::vector<Probe> probes();

}  // namespace msglab::spchat
