#include "core/findings.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <stdexcept>

namespace msglab {

using json = nlohmann::json;

const char* severity_name(Severity s) {
    switch (s) {
        case Severity::info: return "info";
        case Severity::low: return "low";
        case Severity::medium: return "medium";
        case Severity::high: return "high";
        case Severity::critical: return "critical";
    }
    return "info";
}

std::optional<Severity> parse_severity(std::string_view s) {
    for (Severity v : {Severity::info, Severity::low, Severity::medium, Severity::high, Severity::critical})
        if (s == severity_name(v)) return v;
    return std::nullopt;
}

const char* confidence_name(Confidence c) {
    switch (c) {
        case Confidence::tentative: return "tentative";
        case Confidence::firm: return "firm";
        case Confidence::certain: return "certain";
    }
    return "firm";
}

std::optional<Confidence> parse_confidence(std::string_view s) {
    for (Confidence v : {Confidence::tentative, Confidence::firm, Confidence::certain})
        if (s == confidence_name(v)) return v;
    return std::nullopt;
}

const std::vector<FindingCode>& finding_catalogue() {
    static const std::vector<FindingCode> catalogue = {
        {"REPLAY_ACCEPTED", 294, Severity::high, "Replayed message accepted",
         "A verbatim copy of an authenticated message, sent again, was accepted as new.",
         "Bind each message to a sequence number or a freshness window and reject duplicates."},
        {"REFLECTION_ACCEPTED", 301, Severity::high, "Reflected message accepted",
         "A peer accepted its own message sent back to it; both directions share one key.",
         "Use a distinct key (or a direction label under the MAC) for each direction."},
        {"STALE_MESSAGE_ACCEPTED", 294, Severity::medium, "Message with a stale timestamp accepted",
         "A message whose timestamp lies far outside the freshness window was accepted.",
         "Check the timestamp against a window and keep a replay cache for that window."},
        {"MAC_NOT_VERIFIED", 345, Severity::critical, "Message authentication code not verified",
         "A message with a wrong or zero MAC was accepted.",
         "Verify the MAC in constant time before using any field of the message."},
        {"WEAK_DH_PUBLIC_ACCEPTED", 20, Severity::high, "Weak Diffie-Hellman public value accepted",
         "A DH public value of 0, 1, p-1 or not below p was accepted; the shared secret becomes predictable.",
         "Reject public values outside 1 < y < p-1 before deriving keys."},
        {"LATE_HANDSHAKE_ACCEPTED", 372, Severity::high, "Handshake accepted on a keyed session",
         "A handshake packet arriving after keys were established changed the session's keys.",
         "Reject handshake messages once a session is keyed."},
        {"KEYSTREAM_REUSE", 323, Severity::high, "Keystream reused across messages",
         "Messages are encrypted under the same key and nonce, so C1 xor C2 = P1 xor P2.",
         "Use a unique nonce per message and per direction (or an AEAD with a counter nonce)."},
        {"PLAINTEXT_HASH_EXPOSED", 200, Severity::medium, "Hash of the plaintext sent in clear",
         "An unkeyed hash of each plaintext travels in clear, so guesses can be confirmed offline.",
         "Drop the plaintext hash; rely on the MAC over the ciphertext."},
        {"UNAUTHENTICATED_KEY_EXCHANGE", 322, Severity::high, "Key exchange without authentication",
         "Neither side authenticates its key-exchange value, so a man in the middle can relay with two keys.",
         "Sign the ephemeral values with long-term keys, or pin the peer's key."},
        {"NONSTANDARD_CIPHER", 327, Severity::medium, "Non-standard block cipher",
         "The protocol uses a home-made cipher that is not a standard primitive and has no public analysis.",
         "Use a standard AEAD such as AES-GCM or ChaCha20-Poly1305."},
        {"UNBOUNDED_LENGTH", 789, Severity::medium, "Length field without a bound",
         "A length field far above any sane size was accepted and memory reserved for it.",
         "Bound every length field and close the connection when a bound is exceeded."},
        {"STATIC_KEY_REUSE", 323, Severity::high, "Key-exchange key reused across sessions",
         "Separate connections were answered with the same key-exchange public key: there is no forward secrecy, "
         "and a recorded session can be replayed whole.",
         "Generate a fresh ephemeral key pair for every session."},
        {"STATIC_BEARER_TOKEN", 798, Severity::high, "Static bearer token derived from a shared secret",
         "The authentication token is a fixed function of the user name and a secret every client holds, so "
         "anyone with the client forges it for any user, and a token seen once is good forever.",
         "Authenticate each session with a per-user credential over a fresh challenge (a signature or a MAC of a "
         "server nonce)."},
        {"ENDPOINT_DIES_ON_BAD_INPUT", 248, Severity::high, "Endpoint dies on bad input",
         "One malformed message on one connection stopped the whole endpoint, for every client.",
         "Handle every parse and crypto error per connection: close that connection and keep serving."},
        {"SINGLE_PEER_BLOCKS_OTHERS", 410, Severity::medium, "One stalled peer blocks every other",
         "While one client held a connection open without finishing the exchange, no other client was served.",
         "Serve connections concurrently and give each exchange a deadline."},
        {"CLIENT_NOT_AUTHENTICATED", 306, Severity::high, "Client identity taken on its word",
         "The handshake gives a session to whatever identity the client claims; nothing proves the client is that "
         "identity.",
         "Authenticate the client (a password, a signature over a server challenge, or a token from an identity "
         "provider) before issuing a session bound to an identity."},
        {"SESSION_ID_IN_URL", 598, Severity::medium, "Session id carried in the URL",
         "The bearer session id travels in a URL query string, where server and proxy logs, history and Referer "
         "headers keep it.",
         "Carry the session in a header or a cookie, or exchange it for a short-lived single-use ticket for "
         "the WebSocket upgrade."},
        {"UNISSUED_SESSION_ACCEPTED", 287, Severity::critical, "Session id that was never issued accepted",
         "A session id the server never issued was accepted as a session, with an identity derived from the id "
         "itself.",
         "Accept only session ids the server issued and still holds; refuse any other with 401."},
        {"MISSING_AUTHORIZATION", 862, Severity::high, "Access without an authorization check",
         "A client reached a resource that belongs to others (a room's messages or history, another "
         "identity's call) with no check that it is allowed to.",
         "Check on every request that the session's identity may use the resource it names."},
        {"IDENTITY_TAKEOVER", 287, Severity::high, "Another session takes over an identity",
         "A second session claiming the same identity took over the first one's traffic (its incoming calls).",
         "Bind live channels to the session that opened them; refuse a second session's claim while the "
         "first is connected."},
        {"PREDICTABLE_SESSION_ID", 330, Severity::high, "Predictable session id",
         "Session ids follow a guessable sequence, so one issued id reveals others.",
         "Make session ids at least 128 random bits from the system's generator."},
        {"HARDCODED_KEY", 321, Severity::high, "Data encrypted under a hard-coded key",
         "Data at rest is encrypted under a key derived from a constant in the program (and values stored "
         "beside it), so anyone with the file and the program reads it.",
         "Derive the key from a secret configured per deployment and kept out of the data store."},
        {"DEBUG_INFO_EXPOSED", 215, Severity::medium, "Debug information exposed",
         "The endpoint runs in debug mode: it says so, serves its API documentation, and its errors carry "
         "internal details (traces, paths).",
         "Turn debug mode off in deployments; answer errors with a generic message and log the details."},
        {"HIDDEN_TRIGGER", 912, Severity::high, "Hidden behaviour behind a magic input",
         "A particular input (a magic string) makes the endpoint do something undocumented that other input does "
         "not: the classic shape of a backdoor trigger.",
         "Remove the hidden branch; every input goes through the documented handling."},
        {"NAME_NOT_RELEASED", 404, Severity::medium, "Name kept bound after its holder let go of it",
         "A name a connection gave up (by renaming, or by closing) stays bound to it, so nobody can use that name "
         "again: one client locks others out of any name it once said.",
         "Release a name on rename and on disconnect, and bind each connection to one name at a time."},
        {"SENDER_NOT_VERIFIED", 290, Severity::high, "Relayed message carries a sender the server did not check",
         "The server relays a message whose sender field names someone other than the connection it came from, "
         "so any client can send in anyone's name.",
         "Set the sender from the authenticated connection, or refuse messages whose sender field differs."},
        {"PLAINTEXT_TRAFFIC", 319, Severity::high, "Messages cross the network in clear",
         "Chat travels as plain text: anyone on the path reads and alters it, and nothing detects the change.",
         "Run the protocol inside TLS, or encrypt and authenticate messages end to end."},
        {"KEY_FROM_PUBLIC_DATA", 321, Severity::high, "Keys derived from public data",
         "Encryption keys derive from a constant and values sent in clear, so whoever sees the traffic derives "
         "the keys: the encryption hides nothing.",
         "Derive keys from a secret the parties agreed (an authenticated key exchange), never from a constant."},
        {"WEAK_KEY_ACCEPTED", 326, Severity::high, "Key shorter than the protocol requires accepted",
         "The endpoint accepts (or makes) an RSA key below the size the protocol mandates while the protocol still "
         "claims its full strength: RSA-1024 is within reach of a well-funded attacker, and every message and "
         "signature under it falls with it.",
         "Refuse keys below the mandated size at every place a key enters (login, server links, directories)."},
        {"UNAUTHENTICATED_GOSSIP", 345, Severity::critical, "Presence gossip trusted without a valid signature",
         "A server accepts a presence announcement (USER_ADVERTISE) that is unsigned or badly signed, so anyone "
         "who reaches a server link can say where a user lives and receive that user's messages.",
         "Verify every gossip frame with the pinned key of the server that originated it; drop and report the rest."},
        {"SIGNATURE_NOT_VERIFIED", 347, Severity::critical, "Signed frames accepted without checking the signature",
         "The endpoint accepts frames whose signature does not verify (any non-empty value passes), so the "
         "signatures protect nothing: a forged server frame delivers, removes or reroutes at will.",
         "Verify each signature against the expected key and reject the frame when it fails."},
        {"UNAUTHENTICATED_SERVER_JOIN", 306, Severity::high, "Any host can join the server mesh",
         "A peer that announces itself as a server is linked with the key it presents: no operator, allow-list or "
         "certificate vouches for it. Once linked, its own valid signatures make its gossip trusted, so it can "
         "claim any user and receive their messages.",
         "Pin the keys of the servers allowed in the mesh (or sign them with a mesh authority) and refuse others."},
        {"UNBOUNDED_RSA_PAYLOAD", 770, Severity::low, "Ciphertext size left without a rule",
         "The protocol applies RSA-OAEP directly to payloads (at most 446 bytes under RSA-4096) yet sets no "
         "chunking rule and no size bound, so a relaying server must pass any ciphertext it is given and a "
         "long message becomes pieces with no order or completeness the receiver can check.",
         "Use hybrid encryption (a per-message key wrapped with RSA, the body under an AEAD) and bound sizes."},
        {"STATE_BEFORE_MAC", 696, Severity::high, "Session state changed by a message before it is authenticated",
         "The receiver advances its ratchet (new DH step, skipped keys, chain counters) for a message whose MAC it "
         "has not yet checked, and keeps the change when the check fails: one forged message desynchronises or "
         "destroys the session.",
         "Work on a copy of the state and commit it only after the message authenticates."},
        {"FAILURE_ACKNOWLEDGED", 392, Severity::medium, "Success acknowledged for a message that failed",
         "The receiver acknowledges a message as accepted although its authentication or decryption failed, so "
         "the sender believes a session exists or a message arrived when it did not.",
         "Acknowledge only messages that verified and decrypted; report failures to the sender."},
        {"FIRST_MESSAGE_REPLAYABLE", 294, Severity::medium, "The first message of a session can be replayed",
         "The key agreement uses no one-time prekeys and nothing single-use on the responder's side, so a captured "
         "initial message is accepted again, re-initialising the victim's session with the same keys.",
         "Publish one-time prekeys and consume each once, or keep a replay cache of initial messages."},
        {"CRASH", 119, Severity::high, "Crash on crafted input",
         "Crafted input made the implementation crash or trip a sanitizer.",
         "Fix the memory-safety bug; fuzz the parser with sanitizers in CI."},
    };
    return catalogue;
}

const FindingCode* find_finding_code(std::string_view code) {
    for (const auto& c : finding_catalogue())
        if (c.code == code) return &c;
    return nullptr;
}

std::string utc_timestamp_now() {
    std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

Finding Finding::make(std::string_view code, std::string protocol, std::string target, std::string technique) {
    const FindingCode* c = find_finding_code(code);
    if (!c) throw std::invalid_argument("finding code not in the catalogue: " + std::string(code));
    Finding f;
    f.code = std::string(c->code);
    f.cwe = c->cwe;
    f.severity = c->severity;
    f.title = std::string(c->title);
    f.remediation = std::string(c->remediation);
    f.protocol = std::move(protocol);
    f.target = std::move(target);
    f.technique = std::move(technique);
    f.time = utc_timestamp_now();
    return f;
}

std::string to_json_line(const Finding& f) {
    json j = {
        {"code", f.code},
        {"cwe", f.cwe},
        {"severity", severity_name(f.severity)},
        {"confidence", confidence_name(f.confidence)},
        {"protocol", f.protocol},
        {"target", f.target},
        {"session_id", f.session_id},
        {"technique", f.technique},
        {"title", f.title},
        {"evidence",
         {{"pcap", f.evidence.pcap},
          {"frames", f.evidence.frames},
          {"bytes", f.evidence.bytes_hex},
          {"detail", f.evidence.detail},
          {"reproducer", f.evidence.reproducer}}},
        {"remediation", f.remediation},
        {"reproduce", f.reproduce},
        {"time", f.time},
    };
    // Replace invalid UTF-8 rather than throw: evidence may quote raw input.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
std::string get_string(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string()) throw std::invalid_argument(std::string("field '") + key + "' is not a string");
    return it->get<std::string>();
}
}  // namespace

Finding finding_from_json(std::string_view line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) throw std::invalid_argument("not valid JSON");
    if (!j.is_object()) throw std::invalid_argument("not a JSON object");
    Finding f;
    f.code = get_string(j, "code");
    if (f.code.empty()) throw std::invalid_argument("missing 'code'");
    if (auto it = j.find("cwe"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer()) throw std::invalid_argument("field 'cwe' is not an integer");
        f.cwe = it->get<int>();
    }
    auto sev = parse_severity(get_string(j, "severity"));
    if (!sev) throw std::invalid_argument("bad or missing 'severity'");
    f.severity = *sev;
    if (std::string c = get_string(j, "confidence"); !c.empty()) {
        auto conf = parse_confidence(c);
        if (!conf) throw std::invalid_argument("bad 'confidence'");
        f.confidence = *conf;
    }
    f.protocol = get_string(j, "protocol");
    f.target = get_string(j, "target");
    f.session_id = get_string(j, "session_id");
    f.technique = get_string(j, "technique");
    f.title = get_string(j, "title");
    f.remediation = get_string(j, "remediation");
    f.reproduce = get_string(j, "reproduce");
    f.time = get_string(j, "time");
    if (auto it = j.find("evidence"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) throw std::invalid_argument("field 'evidence' is not an object");
        f.evidence.pcap = get_string(*it, "pcap");
        f.evidence.bytes_hex = get_string(*it, "bytes");
        f.evidence.detail = get_string(*it, "detail");
        f.evidence.reproducer = get_string(*it, "reproducer");
        if (auto fr = it->find("frames"); fr != it->end() && !fr->is_null()) {
            if (!fr->is_array()) throw std::invalid_argument("field 'evidence.frames' is not an array");
            for (const auto& n : *fr) {
                if (!n.is_number_unsigned()) throw std::invalid_argument("a frame number is not a whole number");
                f.evidence.frames.push_back(n.get<std::uint64_t>());
            }
        }
    }
    return f;
}

void FindingWriter::write(const Finding& f) {
    m_out << to_json_line(f) << '\n';
    m_out.flush();
    ++m_count;
}

FindingReadResult read_findings(std::istream& in) {
    FindingReadResult result;
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            result.findings.push_back(finding_from_json(line));
        } catch (const std::exception& e) {
            result.errors.push_back("line " + std::to_string(n) + ": " + e.what());
        }
    }
    return result;
}

}  // namespace msglab
