#include "signal/plants.hpp"

#include "signal/app.hpp"

namespace msglab::signal {

void register_plants(Registry& r) {
    r.add_plant({plant::register_overwrite, "signal", 287, Severity::critical,
                 "anyone re-registers a username and substitutes its keys",
                 "register_user from any connection overwrites the directory record of an existing name and moves "
                 "the name's live mapping to the new connection, as the original: whoever registers a name next "
                 "hands out their own keys as that user's bundle and receives that user's messages.",
                 {"IDENTITY_TAKEOVER"}});
    r.add_plant({plant::from_spoof, "signal", 290, Severity::high,
                 "the sender-supplied `from` is relayed unchecked",
                 "x3dh_message and ratchet_msg are relayed with whatever `from` the sender wrote, as the original: "
                 "any client messages anyone in anyone's name, and can reset another user's session with a fresh "
                 "x3dh_message.",
                 {"SENDER_NOT_VERIFIED"}});
    r.add_plant({plant::spk_sig_unchecked, "signal", 347, Severity::high,
                 "the client starts X3DH without verifying the signed prekey's signature",
                 "The client (and `msglab serve signal --bot` with this plant) uses a fetched bundle whose spk_sig "
                 "does not verify under its sik, so whoever hands out bundles picks the prekey unseen.",
                 {"SIGNATURE_NOT_VERIFIED"}});
    r.add_plant({plant::state_before_mac, "signal", 696, Severity::high,
                 "the ratchet commits its state before checking the MAC",
                 "As the original: a ratchet_msg with a fresh header.dh or a large n advances the receiver's ratchet "
                 "(DH step, skipped keys, counters) before its MAC is checked and is not rolled back when the check "
                 "fails, so one forged message desynchronises the session for good.",
                 {"STATE_BEFORE_MAC"}});
    r.add_plant({plant::ack_on_failure, "signal", 392, Severity::medium,
                 "the recipient acks true even when verification fails",
                 "As the original: x3dh_message and ratchet_msg are acknowledged [true] whether or not the MAC "
                 "verified and the message decrypted, so the sender believes a session exists or a message arrived.",
                 {"FAILURE_ACKNOWLEDGED"}});
    r.add_plant({plant::debug_broadcast, "signal", 912, Severity::medium,
                 "the debug event `pongi` broadcasts to every client",
                 "As the original's leftover: any client emitting `pongi` makes the server send `pingi` \"sankalp\" to "
                 "every connected client and ack [true], an undocumented trigger and an amplifier.",
                 {"HIDDEN_TRIGGER"}});
}

}  // namespace msglab::signal
