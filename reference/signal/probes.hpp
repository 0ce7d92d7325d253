// The checks behind the Signal-style chat's scenarios (`probe: {check:
// NAME}`). Each plays the users it needs with fresh names and keys over its
// own Socket.IO connections. The checks of a client's behaviour talk to the
// echo bot (client.hpp) that `msglab serve signal --bot msglab-bot` runs
// beside the server (or `msglab connect signal --user msglab-bot --echo`
// against another server); $MSGLAB_SIGNAL_BOT names another bot.
//   health               two users: X3DH and ratchet messages both ways
//   name-takeover        a name online cannot be registered from elsewhere
//   from-spoof           x3dh_message and ratchet_msg in another's name are refused
//   debug-broadcast      `pongi` makes nobody receive `pingi`
//   unsigned-prekey      the bot does not use a bundle with a bad spk_sig
//   forged-ratchet       forged messages leave the bot's session working
//   failed-x3dh-ack      the bot acks false what did not verify
//   x3dh-replay          a replayed x3dh_message is refused (design: never)
//   bundle-substitution  a client can tell a substituted bundle (design: never)
#pragma once

#include <string>
#include <vector>

#include "core/registry.hpp"

namespace msglab::signal {

inline constexpr const char* kDefaultBot = "msglab-bot";
// $MSGLAB_SIGNAL_BOT, else kDefaultBot.
std::string bot_name();

std::vector<Probe> probes();

}  // namespace msglab::signal
