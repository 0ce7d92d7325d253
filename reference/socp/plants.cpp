#include "socp/plants.hpp"

#include "socp/app.hpp"

namespace msglab::socp {

void register_plants(Registry& r) {
    r.add_plant({plant::weak_rsa, "socp", 326, Severity::high,
                 "RSA-1024 keys are accepted and made while RSA-4096 is claimed",
                 "The server (and `msglab connect socp` with this plant) makes an RSA-1024 key, and users and servers "
                 "with keys of 1024 bits or more are admitted, while nothing on the wire says the key is short: a "
                 "crypto downgrade of the cohort's catalogue (samlovat's SOCP_BACKDOOR_WEAK_KEYS).",
                 {"WEAK_KEY_ACCEPTED"}});
    r.add_plant({plant::unsigned_advertise, "socp", 345, Severity::critical,
                 "USER_ADVERTISE is trusted without checking its signature",
                 "Unsigned or badly signed USER_ADVERTISE frames from any server link update user_locations, so "
                 "whoever reaches a server link says where a user lives and receives that user's messages: "
                 "presence and routing hijack.",
                 {"UNAUTHENTICATED_GOSSIP"}});
    r.add_plant({plant::no_dedup, "socp", 294, Severity::high,
                 "the duplicate cache is off: replays are delivered again",
                 "seen_ids is never consulted, so a captured MSG_DIRECT or SERVER_DELIVER sent again is delivered "
                 "again (samlovat's SOCP_BACKDOOR_REPLAY), and gossip can loop.",
                 {"REPLAY_ACCEPTED"}});
    r.add_plant({plant::any_signature, "socp", 347, Severity::critical,
                 "any non-empty signature passes",
                 "Transport signatures are never verified: any non-empty sig is accepted on server frames and user "
                 "frames (Ammark24's 'static server signature acceptance'), so a rogue link forges SERVER_DELIVER, "
                 "USER_REMOVE or HEARTBEAT in any server's name. A missing sig is still refused.",
                 {"SIGNATURE_NOT_VERIFIED"}});
    r.add_plant({plant::dual_login, "socp", 287, Severity::high,
                 "a second login under a name in use is accepted and takes the name over",
                 "USER_HELLO with an id logged in here or elsewhere in the mesh is accepted; the newest login "
                 "receives the name's direct messages: impersonation by duplicate login.",
                 {"IDENTITY_TAKEOVER"}});
    r.add_plant({plant::hidden_command, "socp", 912, Severity::high,
                 "a MSG_DIRECT to \"__debug__\" returns the server's directory",
                 "A direct message to the magic recipient __debug__ is answered (ACK) with every user the server "
                 "knows, where it lives, its key, and every server with its address: a hidden trigger that leaks the "
                 "mesh's layout.",
                 {"HIDDEN_TRIGGER"}});
}

}  // namespace msglab::socp
