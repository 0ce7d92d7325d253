#include "csmp/protocol.hpp"

#include "csmp/app.hpp"
#include "csmp/probes.hpp"
#include "csmp/stream.hpp"

namespace msglab::csmp {

void register_protocol(Registry& r) {
    r.add_protocol(ProtocolInfo{
        "csmp",
        "CSMP",
        "http+ws",
        kDefaultPort,
        "HTTP/1.1 REST and two WebSockets (chat rooms, call signalling) with JSON; a session id handed to any "
        "claimed identity; history encrypted at rest with AES-256-GCM",
        "PROTOCOLS.md section 1",
        {},  // no wire cryptography: nothing to log
        // Forced by the design (section 1.10): the handshake takes the
        // client's word, and the WebSocket upgrade carries the session in
        // its URL.
        {"CLIENT_NOT_AUTHENTICATED", "SESSION_ID_IN_URL"},
        {"csmp.session_id", "csmp.message", "csmp.to", "csmp.call_id", "csmp.room"},
        detect,
        make_stream_codec,
        nullptr,  // no re-wrapping: there are no session keys to re-wrap under
        {},
        {},
        {},
        probes(),
        {{"db", "--db", "history.db"}},
    });

    r.add_plant({plant::session_fallback, "csmp", 287, Severity::critical,
                 "any string is accepted as a session id, as the original's development fallback",
                 "An unknown session id creates a session on the spot whose identity is the id's first eight "
                 "characters. Anyone becomes 'bob' on every route and both WebSockets by presenting "
                 "session_id=bob, and every bogus id grows the session table.",
                 {"UNISSUED_SESSION_ACCEPTED"}});
    r.add_plant({plant::room_no_acl, "csmp", 862, Severity::high,
                 "any client joins any room and reads its history, as the original",
                 "Room ids are predictable (room_<a>_<b>) and never checked: a third party joins the room's "
                 "WebSocket and reads the conversation live, or pulls its history over HTTP (an IDOR).",
                 {"MISSING_AUTHORIZATION"}});
    r.add_plant({plant::call_hijack, "csmp", 287, Severity::high,
                 "the newest call socket takes over an identity's calls; events from non-parties accepted",
                 "As the original, call sockets are registered by identity and the last one wins, so a second "
                 "session claiming 'bob' receives bob's incoming calls; and any client may answer, send "
                 "candidates for or end any call id.",
                 {"IDENTITY_TAKEOVER", "MISSING_AUTHORIZATION"}});
    r.add_plant({plant::predictable_session_id, "csmp", 330, Severity::high,
                 "session ids are a counter in uuid4's shape",
                 "Sessions are numbered 00000000-0000-4000-8000-000000000001, ...2, ...: whoever holds one id "
                 "knows the ids issued before and after it, and so everyone else's bearer credential.",
                 {"PREDICTABLE_SESSION_ID"}});
    r.add_plant({plant::hardcoded_secret, "csmp", 321, Severity::high,
                 "history encrypted under the original's hard-coded key, salted with the session id stored beside it",
                 "As the original: K = HKDF-SHA256(\"dev_secret_key_32_chars_long_!!!\", salt = session id, info "
                 "\"general\"), no associated data, and the session id in clear in the same row. Anyone with the "
                 "database file decrypts every message.",
                 {"HARDCODED_KEY"}});
    r.add_plant({plant::debug_traceback, "csmp", 215, Severity::medium,
                 "debug mode: / and /health say so, /docs is served, 500s carry a trace",
                 "As the original's debug=True: the root and health routes report debug mode, the API "
                 "documentation is public, and every 500 answer carries a trace with internal paths.",
                 {"DEBUG_INFO_EXPOSED"}});
}

}  // namespace msglab::csmp
