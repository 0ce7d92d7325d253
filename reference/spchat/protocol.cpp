#include "spchat/protocol.hpp"

#include "spchat/app.hpp"
#include "spchat/probes.hpp"
#include "spchat/stream.hpp"

namespace msglab::spchat {

void register_protocol(Registry& r) {
    r.add_protocol(ProtocolInfo{
        "spchat",
        "SP-SimpleChat",
        "tcp",
        kDefaultPort,
        "A central chat server on raw TCP: BE32 length + JSON frames, rooms, nicks taken on their word, and a file "
        "transfer in AES-256-EAX under keys derived from an all-zero session key",
        "PROTOCOLS.md sections 2.1 to 2.7",
        {},  // no secrets: the file keys derive from public data
        // Forced by the design (section 2.7): a nick is whatever HELLO says,
        // chat is plain JSON, and the file keys come from a zero key and a
        // nonce sent in clear.
        {"CLIENT_NOT_AUTHENTICATED", "PLAINTEXT_TRAFFIC", "KEY_FROM_PUBLIC_DATA"},
        {kFieldPaths.begin(), kFieldPaths.end()},
        detect,
        make_stream_codec,
        nullptr,  // no session keys: a verbatim replay is already a valid session
        {},
        {},
        {},
        probes(),
        {},
    });

    r.add_plant({plant::join_no_acl, "spchat", 862, Severity::high,
                 "JOIN admits anyone to any room, as the original's handle_join_vuln",
                 "Room passwords and member lists are ignored: any client joins a protected room, reads its "
                 "conversation and its public file transfers, and lists its members. The server's answer says "
                 "'(VULNERABLE)', as the original's.",
                 {"MISSING_AUTHORIZATION"}});
    r.add_plant({plant::magic_reply, "spchat", 912, Severity::medium,
                 "MSG \"BACKDOOR\" gets a hidden reply, as the original",
                 "A chat line whose text is BACKDOOR (any case) is not relayed; the server answers its sender alone "
                 "with \"You found the secret backdoor!\": a hidden trigger.",
                 {"HIDDEN_TRIGGER"}});
    r.add_plant({plant::nick_squat, "spchat", 404, Severity::medium,
                 "every nick a connection said stays bound to it forever, as the original",
                 "A second HELLO adds a nick instead of renaming; the old ones stay bound, and stay taken after the "
                 "connection closes (only the last is released). One client locks any number of nicks away from "
                 "everyone for the server's lifetime.",
                 {"NAME_NOT_RELEASED"}});
    r.add_plant({plant::unbounded_frame, "spchat", 789, Severity::medium,
                 "any length prefix is accepted and waited for, as the original",
                 "A frame of up to 4 GiB is read: the server buffers whatever arrives toward it and waits for the rest "
                 "forever, so a handful of connections ties up memory and sockets.",
                 {"UNBOUNDED_LENGTH"}});
    r.add_plant({plant::spoofed_from, "spchat", 290, Severity::high,
                 "FILE_* frames are relayed with any \"from\", even before HELLO, as the original",
                 "The server forwards file frames verbatim without comparing \"from\" with the sender's nick (and "
                 "\"sig\" is always empty), so anyone sends files in anyone's name.",
                 {"SENDER_NOT_VERIFIED"}});
}

}  // namespace msglab::spchat
