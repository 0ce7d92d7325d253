// msglab.so's SOCP v1.3 dissector through tshark: the original cohort
// implementation's capture decoded in place (every envelope over inflated
// WebSocket frames, the signatures its own keys can check, the relayed ones
// by the relaying server, e4aa's own with no key in the capture), and
// synthetic meshes written here (envelopes signed and encrypted with the
// fixture keys through reference/socp/wire.hpp, WebSocket frames through
// csmp/wire.hpp over synthetic TCP) for decryption with a key log and with
// key files, and for each expert info against its clean counterpart. Every
// check names exact frames and values.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/keylog.hpp"
#include "csmp/wire.hpp"
#include "socp/socp_support.hpp"
#include "socp/wire.hpp"
#include "support.hpp"
#include "tshark_support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

// A dissector exception or bug in a frame. (_ws.malformed alone also matches
// every expert info of the Malformed group.)
constexpr const char* kException = "_ws.malformed.expert || _ws.malformed.dissector_bug || _ws.short";

// Every SOCP expert info the plugin registers.
const std::vector<std::string> kExperts = {
    "socp.bad_sig",     "socp.missing_sig",       "socp.weak_key",      "socp.bad_key",
    "socp.key_changed", "socp.duplicate",         "socp.from_mismatch", "socp.bad_content_sig",
    "socp.unencrypted", "socp.decryption_failed", "socp.malformed",     "socp.unknown_type",
};

std::map<std::string, Frames> experts(const fs::path& pcap, const std::vector<std::string>& extra = {}) {
    return experts_by_name(pcap, kExperts, extra);
}

// The SOCP frames' rows (the filter "socp"), keyed by frame number.
std::map<std::uint64_t, Row> socp_rows(const fs::path& pcap, const std::vector<std::string>& names,
                                       const std::vector<std::string>& extra = {}) {
    return rows_by_frame(pcap, names, extra, "socp");
}

// ---- the original capture -------------------------------------------------

const std::string kDd1d = "dd1db956-ee6d-4706-9cdc-35053314ff94";  // the server on 8765
const std::string kE4aa = "e4aa4292-3f9b-42df-a052-a4958d3fc46e";  // the server on 8767
const std::string kOrigUser1 = "11111111-1111-4111-8111-111111111111";
const std::string kOrigUser2 = "22222222-2222-4222-8222-222222222222";

// ---- synthetic meshes ------------------------------------------------------

constexpr std::uint64_t kStart = 1795272133;  // 2026-11-21 14:42:13 UTC
constexpr std::int64_t kTs0 = 1795272133289;
constexpr std::uint16_t kPortA = 8765, kPortB = 8767, kPortC = 8769;

const std::string kServerA = "a0a0a0a0-0000-4000-8000-00000000000a";
const std::string kServerB = "b0b0b0b0-0000-4000-8000-00000000000b";
const std::string kServerC = "c0c0c0c0-0000-4000-8000-00000000000c";
const std::string kUser1 = "11111111-aaaa-4aaa-8aaa-000000000001";
const std::string kUser2 = "22222222-bbbb-4bbb-8bbb-000000000002";
const std::string kUser3 = "33333333-cccc-4ccc-8ccc-000000000003";
const std::string kUser4 = "44444444-dddd-4ddd-8ddd-000000000004";
const std::string kDmText = "hello user two";
const std::string kPublicText = "hello everyone";

const crypto::RsaPrivateKey& key(const std::string& name) {
    return socp::test::key(name);
}
std::string pub(const std::string& name, socp::KeyEncoding e = socp::KeyEncoding::der) {
    return socp::encode_key(key(name).public_key(), e);
}
std::string fingerprint(const std::string& name) {
    return hex(crypto::sha256(key(name).public_key().spki_der()));
}

std::string upgrade_request(std::uint16_t port) {
    return "GET / HTTP/1.1\r\nHost: 10.0.0.2:" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n";
}
const std::string kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

socp::Envelope env(std::string type, std::string from, std::string to, std::int64_t ts, socp::Json payload) {
    socp::Envelope e;
    e.type = std::move(type);
    e.from = std::move(from);
    e.to = std::move(to);
    e.ts = ts;
    e.payload = std::move(payload);
    return e;
}

// SOCP traffic between 10.0.0.1 (who connects) and 10.0.0.2 (the servers'
// listening ports), one WebSocket message per segment; clients mask theirs.
class Socp {
public:
    explicit Socp(const fs::path& path) : cap(path, kStart), rng(20251017) {}

    // A TCP connection to `server_port`, upgraded to a WebSocket.
    std::size_t link(std::uint16_t server_port) {
        std::size_t c = cap.connect(m_next_port++, server_port);
        cap.send(c, true, upgrade_request(server_port));
        cap.send(c, false, kSwitching);
        return c;
    }
    std::uint64_t text(std::size_t conn, bool from_client, std::string_view message) {
        csmp::WsFrame f;
        f.opcode = csmp::ws_opcode::text;
        f.masked = from_client;
        f.mask = {0x37, 0xfa, 0x21, 0x3d};
        f.payload = Bytes(message.begin(), message.end());
        return cap.send(conn, from_client, csmp::build_ws_frame(f));
    }
    // Signed by the fixture key `signer`; "" leaves the sig empty.
    std::string seal(socp::Envelope e, const std::string& signer) {
        e.sig = signer.empty() ? std::string() : socp::sign_payload(key(signer), e.payload, rng);
        return socp::encode(e);
    }
    std::uint64_t send(std::size_t conn, bool from_client, const socp::Envelope& e, const std::string& signer) {
        return text(conn, from_client, seal(e, signer));
    }
    std::int64_t ts() { return m_ts += 7; }

    // A DM's payload: RSA-OAEP to the recipient, content_sig by the sender.
    socp::Json dm(const std::string& sender_key, const std::string& from, const std::string& to, std::int64_t ts,
                  const std::string& recipient_key, std::string_view plaintext) {
        std::string ct = *socp::encrypt_for(key(recipient_key).public_key(), as_bytes(plaintext), rng);
        socp::Json p;
        p["ciphertext"] = ct;
        p["content_sig"] = socp::sign_content(key(sender_key), socp::dm_content(ct, from, to, ts), rng);
        p["sender_pub"] = pub(sender_key);
        return p;
    }

    void finish() { cap.finish(); }
    const fs::path& path() const { return cap.path(); }

    SynthCapture cap;
    DeterministicRng rng;

private:
    std::uint16_t m_next_port = 41000;
    std::int64_t m_ts = kTs0;
};

// Two servers linked, a user on each: B links to A (SERVER_HELLO_LINK, A
// answers SERVER_ANNOUNCE), presence, a DM from user 1 to user 2 across
// both, the group key wrapped for both users, a public message fanned out,
// heartbeats. Every signature verifies; nothing is flagged.
struct Mesh {
    std::size_t link = 0, u1 = 0, u2 = 0;  // connections: B->A, user 1->A, user 2->B
    std::uint64_t link_hello = 0, announce = 0, hello1 = 0, hello2 = 0, advert_a = 0, advert_b = 0, advert_relay = 0;
    std::uint64_t dm = 0, deliver_server = 0, deliver_user = 0;
    std::uint64_t updated_u1 = 0, updated_link = 0, updated_u2 = 0;
    std::uint64_t pub_u1 = 0, pub_link = 0, pub_u2 = 0, hb_a = 0, hb_b = 0;
    Bytes group_key;
    socp::Envelope direct;  // the DM as user 1 sent it
};

Mesh write_mesh(Socp& s) {
    Mesh m;
    m.link = s.link(kPortA);
    m.u1 = s.link(kPortA);
    m.u2 = s.link(kPortB);
    m.link_hello = s.send(m.link, true,
                          env("SERVER_HELLO_LINK", kServerB, kServerA, s.ts(),
                              {{"host", "10.0.0.2"}, {"port", kPortB}, {"pubkey", pub("server-b")}}),
                          "server-b");
    m.announce = s.send(m.link, false,
                        env("SERVER_ANNOUNCE", kServerA, "*", s.ts(),
                            {{"host", "10.0.0.2"}, {"port", kPortA}, {"pubkey", pub("server-a")}}),
                        "server-a");
    // User 1's key as DER, user 2's as PEM, as the original's.
    m.hello1 = s.send(m.u1, true,
                      env("USER_HELLO", kUser1, kServerA, s.ts(),
                          {{"client", "cli-v1"}, {"pubkey", pub("user-1")}, {"enc_pubkey", pub("user-1")}}),
                      "");
    const std::string pem2 = pub("user-2", socp::KeyEncoding::pem);
    m.hello2 =
        s.send(m.u2, true,
               env("USER_HELLO", kUser2, kUser2, s.ts(),
                   {{"client", "cli-v1"}, {"pubkey", pem2}, {"enc_pubkey", pem2}, {"meta", socp::Json::object()}}),
               "");
    socp::Envelope advert = env(
        "USER_ADVERTISE", kServerA, "*", s.ts(),
        {{"user_id", kUser1}, {"server_id", kServerA}, {"meta", {{"pubkey", pub("user-1")}, {"display_name", "one"}}}});
    m.advert_a = s.send(m.link, false, advert, "server-a");
    m.advert_b = s.send(m.link, true,
                        env("USER_ADVERTISE", kServerB, "*", s.ts(),
                            {{"user_id", kUser2}, {"server_id", kServerB}, {"meta", {{"pubkey", pem2}}}}),
                        "server-b");
    // B gossips A's advertisement to its user, signed by itself.
    m.advert_relay = s.send(m.u2, false, advert, "server-b");

    const std::int64_t ts = s.ts();
    m.direct = env("MSG_DIRECT", kUser1, kUser2, ts, s.dm("user-1", kUser1, kUser2, ts, "user-2", kDmText));
    m.dm = s.send(m.u1, true, m.direct, "user-1");
    socp::Json forwarded = m.direct.payload;
    forwarded["sender"] = kUser1;
    socp::Json to_server = forwarded;
    to_server["user_id"] = kUser2;
    m.deliver_server = s.send(m.link, false, env("SERVER_DELIVER", kServerA, kServerB, ts, to_server), "server-a");
    m.deliver_user = s.send(m.u2, false, env("USER_DELIVER", kServerB, kUser2, ts, forwarded), "server-b");

    m.group_key = s.rng.bytes(32);
    socp::Json wraps = socp::Json::array();
    for (const auto& [member, name] : {std::pair{kUser1, "user-1"}, std::pair{kUser2, "user-2"}})
        wraps.push_back(
            {{"member_id", member}, {"wrapped_key", *socp::encrypt_for(key(name).public_key(), m.group_key, s.rng)}});
    socp::Envelope updated = env("PUBLIC_CHANNEL_UPDATED", kServerA, "*", s.ts(), {{"version", 1}, {"wraps", wraps}});
    m.updated_u1 = s.send(m.u1, false, updated, "server-a");
    m.updated_link = s.send(m.link, false, updated, "server-a");
    m.updated_u2 = s.send(m.u2, false, updated, "server-b");

    const std::int64_t pts = s.ts();
    std::string ct = socp::group_encrypt(m.group_key, kPublicText, s.rng);
    socp::Envelope message =
        env("MSG_PUBLIC_CHANNEL", kUser1, "public", pts,
            {{"ciphertext", ct},
             {"key_version", 1},
             {"sender_pub", pub("user-1")},
             {"content_sig", socp::sign_content(key("user-1"), socp::public_content(ct, kUser1, pts), s.rng)}});
    m.pub_u1 = s.send(m.u1, true, message, "user-1");
    m.pub_link = s.send(m.link, false, message, "server-a");
    m.pub_u2 = s.send(m.u2, false, message, "server-b");
    m.hb_a = s.send(m.link, false, env("HEARTBEAT", kServerA, kServerB, s.ts(), socp::Json::object()), "server-a");
    m.hb_b = s.send(m.link, true, env("HEARTBEAT", kServerB, kServerA, s.ts(), socp::Json::object()), "server-b");
    return m;
}

std::string keylog_line(const std::string& user, const std::string& name) {
    return format_keylog_line("SOCP_PRIVATE_KEY", as_bytes(user), key(name).pkcs8_der());
}

// A world-readable copy of a fixture key, for tshark's preference.
fs::path copy_key(const fs::path& dir, const std::string& name) {
    fs::path p = dir / (name + ".pem");
    write_file(p, socp::test::read_text(socp::test::key_path(name)));
    make_world_readable(p);
    return p;
}

std::vector<std::string> keylog_args(const fs::path& keylog) {
    return {"-o", "socp.keylog_file:" + keylog.string()};
}
std::vector<std::string> key_args(const fs::path& path) {
    return {"-o", "socp.private_keys:" + path.string()};
}

}  // namespace

// ---------------------------------------------------------------------------
// 1. The original cohort implementation's capture.

TEST_CASE("SOCP: the original capture decodes in place: every envelope, its fields, keys and signatures",
          "[dissector][socp]") {
    REQUIRE_TSHARK();
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals/socp.pcap")) MSGLAB_SKIP("no originals/socp.pcap");
    const fs::path pcap = *dir / "originals/socp.pcap";
    const std::string dd = kDd1d, e4 = kE4aa, u1 = kOrigUser1, u2 = kOrigUser2;

    // Every WebSocket text message, permessage-deflate inflated by tshark.
    // Streams: 1 dd1d (34306) linked to e4aa (8767), 2 user 2 (39464) on
    // e4aa, 3 user 1 (44048) on dd1d (8765).
    const std::map<std::uint64_t, std::string> types = {
        {10, "SERVER_HELLO_LINK"},
        {19, "USER_HELLO"},
        {21, "PUBLIC_CHANNEL_ADD"},
        {23, "PUBLIC_CHANNEL_ADD"},
        {25, "PUBLIC_CHANNEL_UPDATED"},
        {27, "PUBLIC_CHANNEL_UPDATED"},
        {29, "USER_ADVERTISE"},
        {31, "USER_ADVERTISE"},
        {40, "USER_HELLO"},
        {42, "PUBLIC_CHANNEL_ADD"},
        {44, "PUBLIC_CHANNEL_ADD"},
        {46, "PUBLIC_CHANNEL_ADD"},
        {48, "PUBLIC_CHANNEL_UPDATED"},
        {50, "PUBLIC_CHANNEL_UPDATED"},
        {52, "PUBLIC_CHANNEL_UPDATED"},
        {54, "USER_ADVERTISE"},
        {56, "USER_ADVERTISE"},
        {58, "USER_ADVERTISE"},
        {60, "USER_ADVERTISE"},
        {62, "HEARTBEAT"},
        {66, "MSG_DIRECT"},
        {68, "HEARTBEAT"},
        {72, "SERVER_DELIVER"},
        {74, "MSG_PUBLIC_CHANNEL"},
        {76, "USER_DELIVER"},
        {78, "MSG_PUBLIC_CHANNEL"},
        {80, "MSG_PUBLIC_CHANNEL"},
        {94, "MSG_DIRECT"},
        {96, "SERVER_DELIVER"},
        {100, "USER_DELIVER"},
        {115, "USER_REMOVE"},
        {117, "USER_REMOVE"},
        {126, "USER_REMOVE"},
    };

    SECTION("one SOCP message per WebSocket text message, with its type") {
        auto rows = socp_rows(pcap, {"socp.type"});
        std::map<std::uint64_t, std::string> got;
        for (const auto& [f, r] : rows) got[f] = r[0];
        CHECK(got == types);
        Frames text;
        for (const auto& [f, t] : types) text.push_back(f);
        CHECK(frames_where(pcap, "websocket.opcode == 1") == text);
        // Nothing is left to tshark's line-based text.
        CHECK(frames_where(pcap, "data-text-lines").empty());
    }

    SECTION("the envelope and the payload fields") {
        auto rows = socp_rows(pcap, {"socp.from", "socp.to", "socp.ts", "socp.payload.host", "socp.payload.port",
                                     "socp.key.bits", "socp.key.encoding", "socp.payload.client"});
        CHECK(rows.at(10) ==
              Row{dd, e4, "Nov 21, 2026 14:42:13.289000000 UTC", "localhost", "8765", "4096", "PEM", ""});
        // pubkey and enc_pubkey: the same key.
        CHECK(rows.at(19) ==
              Row{u2, u2, "Nov 21, 2026 14:42:18.448000000 UTC", "", "", "4096,4096", "PEM,PEM", "cli-v1"});
        auto more = socp_rows(pcap, {"socp.payload.add", "socp.payload.if_version", "socp.payload.version",
                                     "socp.payload.wraps.member_id", "socp.payload.user_id", "socp.payload.server_id",
                                     "socp.payload.meta.pubkey", "socp.payload.sender"});
        CHECK(more.at(42) == Row{u1, "1", "", "", "", "", "", ""});
        CHECK(more.at(48)[2] == "2");
        CHECK(more.at(48)[3] == u2 + "," + u1);
        CHECK(more.at(29)[4] == u2);
        CHECK(more.at(29)[5] == e4);
        CHECK(more.at(29)[6].substr(0, 20) == "LS0tLS1CRUdJTiBQVUJM");
        CHECK(more.at(72)[4] == u2);
        CHECK(more.at(72)[7] == u1);
        CHECK(more.at(115)[4] == u1);
        CHECK(more.at(115)[5] == dd);
        auto dm = socp_rows(
            pcap, {"socp.payload.ciphertext", "socp.payload.sender_pub", "socp.payload.content_sig", "socp.sig"});
        CHECK(dm.at(66)[0].substr(0, 20) == "BtfTJyvPKJLAEBeeDjnh");
        CHECK(dm.at(66)[0].size() == 683);  // 512 bytes, base64url without padding
        CHECK(dm.at(66)[1].size() == 1067);
        CHECK(dm.at(66)[2].size() == 683);
        CHECK(dm.at(66)[3].size() == 683);
        CHECK(dm.at(74)[0] == "cHVibGljIGhlbGxv");
        CHECK(dm.at(10)[3].empty());
    }

    SECTION("who is on each side: hellos, the link's `to`, the hello's listening address") {
        auto rows = socp_rows(pcap, {"socp.link.sender", "socp.link.sender_kind", "socp.link.sender_learnt_in",
                                     "socp.link.receiver", "tcp.stream"});
        CHECK(rows.at(10) == Row{dd, "server", "10", e4, "1"});
        CHECK(rows.at(21) == Row{e4, "server", "10", dd, "1"});  // addressed by frame 10's `to`
        CHECK(rows.at(19) == Row{u2, "user", "19", e4, "2"});    // 8767 is e4aa's, as frame 10 said
        CHECK(rows.at(23) == Row{e4, "server", "10", u2, "2"});
        CHECK(rows.at(40) == Row{u1, "user", "40", dd, "3"});
        CHECK(rows.at(44) == Row{dd, "server", "10", u1, "3"});  // dd1d said it listens on localhost:8765
    }

    SECTION("signatures: dd1d's and the users' verified, relays by the link peer, e4aa's without a key") {
        auto rows = socp_rows(pcap, {"socp.sig.status", "socp.sig.signer", "socp.sig.key_owner", "socp.sig.key_frame",
                                     "socp.sig.canonical"});
        const std::string canon = "sorted keys, ASCII-escaped";
        const Row missing = {"missing", "", "", "", ""};
        const Row no_key = {"no key", "", "", "", ""};
        const Row by_dd = {"verified", "from", dd, "10", canon};
        std::map<std::uint64_t, Row> want;
        for (std::uint64_t f : {10, 19, 40}) want[f] = missing;
        // e4aa's own, and what e4aa relays to user 2 keeping dd1d's or user 1's from.
        for (std::uint64_t f : {21, 23, 25, 27, 29, 31, 46, 52, 60, 62, 76, 80, 96, 117, 126}) want[f] = no_key;
        for (std::uint64_t f : {42, 44, 48, 50, 54, 56, 58, 68, 72, 100, 115}) want[f] = by_dd;
        want[66] = {"verified", "from", u1, "40", canon};
        want[74] = {"verified", "from", u1, "40", canon};
        want[94] = {"verified", "from", u2, "19", canon};
        // User 1's public message relayed by dd1d on the server link.
        want[78] = {"verified", "link peer", dd, "10", canon};
        CHECK(rows == want);
    }

    SECTION("content signatures, and the public message sent in clear") {
        auto rows = socp_rows(pcap, {"socp.content_sig.status", "socp.content_sig.sender", "socp.content_sig.key",
                                     "socp.decryption.status", "socp.decryption.recipient", "socp.plaintext"});
        for (std::uint64_t f : {66, 72, 76}) CHECK(rows.at(f) == Row{"verified", u1, "sender_pub", "no key", u2, ""});
        for (std::uint64_t f : {94, 96, 100}) CHECK(rows.at(f) == Row{"verified", u2, "sender_pub", "no key", u1, ""});
        for (std::uint64_t f : {74, 78, 80})
            CHECK(rows.at(f) == Row{"verified", u1, "sender_pub", "unencrypted", "", "public hello"});
        CHECK(rows.at(62) == Row{"", "", "", "", "", ""});
    }

    SECTION("expert infos: the public message in clear, nothing else; no exception") {
        CHECK(experts(pcap) == std::map<std::string, Frames>{{"socp.unencrypted", {74, 78, 80}}});
        CHECK(frames_where(pcap, kException).empty());
        CHECK(frames_where(pcap, "csmp").empty());
    }

    SECTION("one pass and two passes agree") {
        std::vector<std::string> names = {"frame.number",           "socp.type",        "socp.sig.status",
                                          "socp.sig.signer",        "socp.link.sender", "socp.content_sig.status",
                                          "socp.decryption.status", "_ws.col.Info"};
        names.insert(names.end(), kExperts.begin(), kExperts.end());
        std::vector<std::string> args = {"-r", pcap.string(), "-T", "fields", "-Y", "socp"};
        for (const auto& n : names) args.insert(args.end(), {"-e", n});
        TsharkResult one = run_tshark(args);
        args.insert(args.begin() + 2, "-2");
        TsharkResult two = run_tshark(args);
        INFO("stderr: " << one.errors << two.errors);
        REQUIRE(one.exit_code == 0);
        REQUIRE(two.exit_code == 0);
        CHECK(one.lines.size() == types.size());
        CHECK(one.lines == two.lines);
    }
}

// ---------------------------------------------------------------------------
// 2. A synthetic mesh: decryption with a key log, a key file, a folder.

TEST_CASE("SOCP: a clean mesh verifies throughout, with no expert info", "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "mesh.pcap");
    Mesh m = write_mesh(s);
    s.finish();

    CHECK(experts(s.path()).empty());
    CHECK(frames_where(s.path(), kException).empty());
    auto rows = socp_rows(s.path(), {"socp.type", "socp.link.sender", "socp.sig.status", "socp.sig.signer",
                                     "socp.sig.key_owner", "socp.content_sig.status"});
    const std::map<std::uint64_t, Row> want = {
        {m.link_hello, {"SERVER_HELLO_LINK", kServerB, "verified", "from", kServerB, ""}},
        {m.announce, {"SERVER_ANNOUNCE", kServerA, "verified", "from", kServerA, ""}},
        {m.hello1, {"USER_HELLO", kUser1, "missing", "", "", ""}},
        {m.hello2, {"USER_HELLO", kUser2, "missing", "", "", ""}},
        {m.advert_a, {"USER_ADVERTISE", kServerA, "verified", "from", kServerA, ""}},
        {m.advert_b, {"USER_ADVERTISE", kServerB, "verified", "from", kServerB, ""}},
        {m.advert_relay, {"USER_ADVERTISE", kServerB, "verified", "link peer", kServerB, ""}},
        {m.dm, {"MSG_DIRECT", kUser1, "verified", "from", kUser1, "verified"}},
        {m.deliver_server, {"SERVER_DELIVER", kServerA, "verified", "from", kServerA, "verified"}},
        {m.deliver_user, {"USER_DELIVER", kServerB, "verified", "from", kServerB, "verified"}},
        {m.updated_u1, {"PUBLIC_CHANNEL_UPDATED", kServerA, "verified", "from", kServerA, ""}},
        {m.updated_link, {"PUBLIC_CHANNEL_UPDATED", kServerA, "verified", "from", kServerA, ""}},
        {m.updated_u2, {"PUBLIC_CHANNEL_UPDATED", kServerB, "verified", "link peer", kServerB, ""}},
        {m.pub_u1, {"MSG_PUBLIC_CHANNEL", kUser1, "verified", "from", kUser1, "verified"}},
        {m.pub_link, {"MSG_PUBLIC_CHANNEL", kServerA, "verified", "link peer", kServerA, "verified"}},
        {m.pub_u2, {"MSG_PUBLIC_CHANNEL", kServerB, "verified", "link peer", kServerB, "verified"}},
        {m.hb_a, {"HEARTBEAT", kServerA, "verified", "from", kServerA, ""}},
        {m.hb_b, {"HEARTBEAT", kServerB, "verified", "from", kServerB, ""}},
    };
    CHECK(rows == want);

    // Keys: DER for user 1 and the servers, PEM for user 2; their fingerprints.
    auto keys = socp_rows(s.path(), {"socp.key.bits", "socp.key.encoding", "socp.key.fingerprint"});
    CHECK(keys.at(m.hello1) == Row{"4096,4096", "DER,DER", fingerprint("user-1") + "," + fingerprint("user-1")});
    CHECK(keys.at(m.hello2) == Row{"4096,4096", "PEM,PEM", fingerprint("user-2") + "," + fingerprint("user-2")});
    CHECK(keys.at(m.announce) == Row{"4096", "DER", fingerprint("server-a")});
    // Without private keys: nothing opens.
    auto dec = socp_rows(
        s.path(), {"socp.decryption.status", "socp.decryption.recipient", "socp.plaintext", "socp.payload.wraps.opened",
                   "socp.payload.key_version", "socp.payload.meta.display_name"});
    CHECK(dec.at(m.dm) == Row{"no key", kUser2, "", "", "", ""});
    CHECK(dec.at(m.pub_u1) == Row{"no key", "", "", "", "1", ""});
    CHECK(dec.at(m.updated_u1) == Row{"", "", "", "", "", ""});
    CHECK(dec.at(m.advert_a)[5] == "one");
}

TEST_CASE("SOCP: DMs, group key wraps and public messages decrypted with a key log", "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "mesh.pcap");
    Mesh m = write_mesh(s);
    s.finish();
    const fs::path keylog = dir / "keys.log";
    write_file(keylog, "# user 2's key\n" + keylog_line(kUser2, "user-2") + "JUNK line\n");
    make_world_readable(keylog);

    auto rows = socp_rows(
        s.path(),
        {"socp.decryption.status", "socp.decryption.recipient", "socp.decryption.key", "socp.decryption.group_version",
         "socp.plaintext", "socp.payload.wraps.opened", "socp.group_keys_learnt"},
        keylog_args(keylog));
    for (std::uint64_t f : {m.dm, m.deliver_server, m.deliver_user})
        CHECK(rows.at(f) == Row{"decrypted", kUser2, "key log", "", kDmText, "", ""});
    // User 2's wrap opens; user 1's has no key.
    for (std::uint64_t f : {m.updated_u1, m.updated_link, m.updated_u2})
        CHECK(rows.at(f) == Row{"", "", "", "", "", "1", "1"});
    for (std::uint64_t f : {m.pub_u1, m.pub_link, m.pub_u2})
        CHECK(rows.at(f) == Row{"decrypted", "", "group key", "1", kPublicText, "", ""});
    CHECK(experts(s.path(), keylog_args(keylog)).empty());

    auto info = socp_rows(s.path(), {"_ws.col.Info"}, keylog_args(keylog));
    CHECK(info.at(m.dm)[0].find("SOCP MSG_DIRECT from " + kUser1 + " to " + kUser2 + " \"" + kDmText + "\"") !=
          std::string::npos);

    SECTION("the key log named by secmsg's preference serves SOCP too") {
        auto shared = socp_rows(s.path(), {"socp.plaintext"}, {"-o", "secmsg.keylog_file:" + keylog.string()});
        CHECK(shared.at(m.dm) == Row{kDmText});
    }
    SECTION("a key log for a user nothing goes to opens nothing") {
        const fs::path other = dir / "other.log";
        write_file(other, keylog_line(kUser3, "user-3"));
        make_world_readable(other);
        auto none = socp_rows(s.path(), {"socp.decryption.status", "socp.plaintext"}, keylog_args(other));
        CHECK(none.at(m.dm) == Row{"no key", ""});
    }
}

TEST_CASE("SOCP: a PEM private key file, or a folder of them, applies to the user whose public key matches",
          "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "mesh.pcap");
    Mesh m = write_mesh(s);
    s.finish();

    SECTION("one file: user 2's key") {
        const fs::path file = copy_key(dir.path(), "user-2");
        auto rows = socp_rows(
            s.path(), {"socp.decryption.status", "socp.decryption.key", "socp.plaintext", "socp.payload.wraps.opened"},
            key_args(file));
        for (std::uint64_t f : {m.dm, m.deliver_server, m.deliver_user})
            CHECK(rows.at(f) == Row{"decrypted", "private key file", kDmText, ""});
        CHECK(rows.at(m.updated_u1) == Row{"", "", "", "1"});
        CHECK(rows.at(m.pub_u2) == Row{"decrypted", "group key", kPublicText, ""});
        CHECK(experts(s.path(), key_args(file)).empty());
    }
    SECTION("a folder: both users' keys, a public key and junk beside them") {
        fs::path keys = dir / "keys";
        fs::create_directories(keys);
        make_world_readable(keys);
        copy_key(keys, "user-1");
        copy_key(keys, "user-2");
        write_file(keys / "server-a.pub", key("server-a").public_key().pem());
        write_file(keys / "junk.txt", "not a key\n");
        make_world_readable(keys / "server-a.pub");
        make_world_readable(keys / "junk.txt");
        auto rows = socp_rows(
            s.path(),
            {"socp.decryption.status", "socp.plaintext", "socp.payload.wraps.opened", "socp.group_keys_learnt"},
            key_args(keys));
        CHECK(rows.at(m.dm) == Row{"decrypted", kDmText, "", ""});
        // Both wraps open now.
        CHECK(rows.at(m.updated_u1) == Row{"", "", "1,1", "2"});
        CHECK(rows.at(m.pub_u1) == Row{"decrypted", kPublicText, "", ""});
    }
    SECTION("a key whose public half is in no hello opens nothing") {
        const fs::path file = copy_key(dir.path(), "user-3");
        auto rows = socp_rows(s.path(), {"socp.decryption.status", "socp.plaintext"}, key_args(file));
        CHECK(rows.at(m.dm) == Row{"no key", ""});
        CHECK(rows.at(m.pub_u1) == Row{"no key", ""});
    }
}

TEST_CASE("SOCP: bootstrap: SERVER_HELLO_JOIN, SERVER_WELCOME's servers and assigned id, keys learnt from entries",
          "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "join.pcap");
    const std::string renamed = "b1b1b1b1-0000-4000-8000-0000000000b1";
    std::size_t join = s.link(kPortA);
    std::uint64_t hello = s.send(join, true,
                                 env("SERVER_HELLO_JOIN", kServerB, "10.0.0.2:8765", s.ts(),
                                     {{"host", "10.0.0.2"}, {"port", kPortB}, {"pubkey", pub("server-b")}}),
                                 "");
    std::uint64_t welcome =
        s.send(join, false,
               env("SERVER_WELCOME", kServerA, kServerB, s.ts(),
                   {{"assigned_id", renamed},
                    {"servers", socp::Json::array({{{"server_id", kServerC},
                                                    {"host", "10.0.0.2"},
                                                    {"port", kPortC},
                                                    {"pubkey", pub("server-c", socp::KeyEncoding::pem)}}})}}),
               "server-a");
    std::uint64_t announce = s.send(join, true,
                                    env("SERVER_ANNOUNCE", renamed, "*", s.ts(),
                                        {{"host", "10.0.0.2"}, {"port", kPortB}, {"pubkey", pub("server-b")}}),
                                    "server-b");
    // A user of C's: C is known by the address the welcome gave, its key from the welcome.
    std::size_t u4 = s.link(kPortC);
    std::uint64_t hello4 = s.send(
        u4, true, env("USER_HELLO", kUser4, kUser4, s.ts(), {{"client", "cli-v1"}, {"pubkey", pub("user-4")}}), "");
    std::uint64_t advert =
        s.send(u4, false,
               env("USER_ADVERTISE", kServerC, "*", s.ts(),
                   {{"user_id", kUser4}, {"server_id", kServerC}, {"meta", {{"pubkey", pub("user-4")}}}}),
               "server-c");
    s.finish();

    auto rows = socp_rows(s.path(), {"socp.type", "socp.link.sender", "socp.link.receiver", "socp.sig.status",
                                     "socp.sig.key_owner", "socp.sig.key_frame"});
    const std::string w = std::to_string(welcome);
    CHECK(rows.at(hello) == Row{"SERVER_HELLO_JOIN", kServerB, "", "missing", "", ""});
    // A's own key is pinned by configuration, not in the capture.
    CHECK(rows.at(welcome) == Row{"SERVER_WELCOME", kServerA, renamed, "no key", "", ""});
    CHECK(rows.at(announce) ==
          Row{"SERVER_ANNOUNCE", renamed, kServerA, "verified", renamed, std::to_string(announce)});
    CHECK(rows.at(hello4) == Row{"USER_HELLO", kUser4, kServerC, "missing", "", ""});
    CHECK(rows.at(advert) == Row{"USER_ADVERTISE", kServerC, kUser4, "verified", kServerC, w});
    auto entries =
        socp_rows(s.path(), {"socp.payload.assigned_id", "socp.payload.entry.server_id", "socp.payload.entry.host",
                             "socp.payload.entry.port", "socp.key.bits", "socp.key.encoding"});
    CHECK(entries.at(welcome) == Row{renamed, kServerC, "10.0.0.2", "8769", "4096", "PEM"});
    CHECK(experts(s.path()).empty());
}

TEST_CASE("SOCP: a signature over any of the three canonical forms, with any salt, verifies and names its form",
          "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "canon.pcap");
    Mesh m = write_mesh(s);
    // Keys not in sorted order, a non-ASCII value: three different texts.
    socp::Json payload = {{"user_id", kUser1}, {"server_id", kServerA}, {"meta", {{"display_name", "Zo\xc3\xab"}}}};
    auto advert = [&](socp::Canon c, std::size_t salt) {
        std::string sig = socp::b64url(key("server-a").pss_sign(as_bytes(socp::canonical(payload, c)), s.rng, salt));
        return s.text(m.link, false,
                      R"({"type":"USER_ADVERTISE","from":")" + kServerA + R"(","to":"*","ts":)" +
                          std::to_string(s.ts()) + R"(,"payload":)" + payload.dump(-1, ' ', false) + R"(,"sig":")" +
                          sig + "\"}");
    };
    std::uint64_t python = advert(socp::Canon::sorted_ascii, 478);  // PSS.MAX_LENGTH, as the Python teams
    std::uint64_t utf8 = advert(socp::Canon::sorted_utf8, 32);
    std::uint64_t node = advert(socp::Canon::received_order, 0);
    s.finish();
    auto rows = socp_rows(s.path(), {"socp.sig.status", "socp.sig.canonical", "socp.payload.meta.display_name"});
    CHECK(rows.at(python) == Row{"verified", "sorted keys, ASCII-escaped", "Zo\xc3\xab"});
    CHECK(rows.at(utf8) == Row{"verified", "sorted keys, raw UTF-8", "Zo\xc3\xab"});
    CHECK(rows.at(node) == Row{"verified", "received key order", "Zo\xc3\xab"});
    CHECK(experts(s.path()).empty());
}

TEST_CASE("SOCP: the rest of the catalogue's payload fields: ACK, ERROR, key shares, files, clients, CTRL_CLOSE",
          "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "catalogue.pcap");
    Mesh m = write_mesh(s);
    std::uint64_t ack = s.send(m.u1, false, env("ACK", kServerA, kUser1, s.ts(), {{"msg_ref", "m-1"}}), "server-a");
    std::uint64_t error = s.send(
        m.u1, false, env("ERROR", kServerA, kUser1, s.ts(), {{"code", "USER_NOT_FOUND"}, {"detail", "no such user"}}),
        "server-a");
    socp::Json shares = socp::Json::array(
        {{{"member", kUser1},
          {"wrapped_public_channel_key", *socp::encrypt_for(key("user-1").public_key(), m.group_key, s.rng)}},
         {{"member", kUser2},
          {"wrapped_public_channel_key", *socp::encrypt_for(key("user-2").public_key(), m.group_key, s.rng)}}});
    const std::string creator = pub("server-a");
    std::uint64_t share = s.send(
        m.u1, false,
        env("PUBLIC_CHANNEL_KEY_SHARE", kServerA, "*", s.ts(),
            {{"shares", shares},
             {"creator_pub", creator},
             {"content_sig", socp::sign_content(key("server-a"), socp::keyshare_content(shares, creator), s.rng)}}),
        "server-a");
    const std::int64_t ts = s.ts();
    std::uint64_t chunk =
        s.send(m.u1, true,
               env("FILE_CHUNK", kUser1, kUser2, ts,
                   {{"file_id", "f9"},
                    {"index", 4},
                    {"ciphertext", *socp::encrypt_for(key("user-2").public_key(), as_bytes("chunk four"), s.rng)}}),
               "user-1");
    std::uint64_t welcome = s.send(
        m.link, false,
        env("SERVER_WELCOME", kServerA, kServerB, s.ts(),
            {{"assigned_id", kServerB},
             {"clients", socp::Json::array(
                             {{{"user_id", kUser3}, {"host", "10.0.0.9"}, {"port", 1}, {"pubkey", pub("user-3")}}})}}),
        "server-a");
    std::uint64_t removed =
        s.send(m.link, false, env("USER_REMOVE", kServerA, "*", s.ts(), {{"user_id", kUser1}, {"server_id", kServerA}}),
               "server-a");
    std::uint64_t close = s.send(m.u1, true, env("CTRL_CLOSE", kUser1, kServerA, s.ts(), socp::Json::object()), "");
    s.finish();

    auto rows =
        socp_rows(s.path(), {"socp.type", "socp.payload.msg_ref", "socp.payload.code", "socp.payload.detail",
                             "socp.payload.shares.member", "socp.payload.creator_pub", "socp.content_sig.status",
                             "socp.payload.file_id", "socp.payload.index", "socp.payload.entry.user_id",
                             "socp.payload.entry.port", "socp.payload.user_id", "socp.sig.status"});
    CHECK(rows.at(ack) == Row{"ACK", "m-1", "", "", "", "", "", "", "", "", "", "", "verified"});
    CHECK(rows.at(error) ==
          Row{"ERROR", "", "USER_NOT_FOUND", "no such user", "", "", "", "", "", "", "", "", "verified"});
    CHECK(rows.at(share) == Row{"PUBLIC_CHANNEL_KEY_SHARE", "", "", "", kUser1 + "," + kUser2, creator, "verified", "",
                                "", "", "", "", "verified"});
    CHECK(rows.at(chunk) == Row{"FILE_CHUNK", "", "", "", "", "", "", "f9", "4", "", "", "", "verified"});
    CHECK(rows.at(welcome) == Row{"SERVER_WELCOME", "", "", "", "", "", "", "", "", kUser3, "1", "", "verified"});
    CHECK(rows.at(removed) == Row{"USER_REMOVE", "", "", "", "", "", "", "", "", "", "", kUser1, "verified"});
    CHECK(rows.at(close) == Row{"CTRL_CLOSE", "", "", "", "", "", "", "", "", "", "", "", "missing"});
    CHECK(experts(s.path()).empty());

    // With user 2's key the chunk opens, and both shares' group key is the one of the wraps.
    const fs::path file = copy_key(dir.path(), "user-2");
    auto open = socp_rows(
        s.path(), {"socp.decryption.status", "socp.plaintext", "socp.payload.wraps.opened", "socp.group_keys_learnt"},
        key_args(file));
    CHECK(open.at(chunk) == Row{"decrypted", "chunk four", "", ""});
    CHECK(open.at(share) == Row{"", "", "1", "1"});
}

// ---------------------------------------------------------------------------
// 3. Expert infos, each against the clean mesh around it.

TEST_CASE("SOCP: socp.bad_sig when neither from's key nor the sending side's verifies, and no key is not bad",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "bad.pcap");
    Mesh m = write_mesh(s);
    // A's frame to user 1, signed with a key that is not A's.
    std::uint64_t wrong_key =
        s.send(m.u1, false, env("USER_DELIVER", kServerA, kUser1, s.ts(), {{"ciphertext", "AAAA"}, {"sender", kUser2}}),
               "server-c");
    // B's heartbeat, its payload changed after signing.
    socp::Envelope hb = env("HEARTBEAT", kServerB, kServerA, s.ts(), socp::Json::object());
    hb.sig = socp::sign_payload(key("server-b"), hb.payload, s.rng);
    hb.payload["late"] = 1;
    std::uint64_t tampered = s.text(m.link, true, socp::encode(hb));
    // From C, whose key the capture never shows, relayed by B to its user with C's signature.
    std::uint64_t unknown = s.send(
        m.u2, false, env("USER_ADVERTISE", kServerC, "*", s.ts(), {{"user_id", kUser3}, {"server_id", kServerC}}),
        "server-c");
    s.finish();

    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.bad_sig", {wrong_key, tampered}}});
    auto rows = socp_rows(s.path(), {"socp.sig.status", "socp.sig.key_owner"});
    CHECK(rows.at(wrong_key) == Row{"bad", ""});
    CHECK(rows.at(tampered) == Row{"bad", ""});
    CHECK(rows.at(unknown) == Row{"no key", ""});
    CHECK(rows.at(m.pub_u2) == Row{"verified", kServerB});
}

TEST_CASE("SOCP: socp.missing_sig on server frames without a signature, not on users' empty ones",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "missing.pcap");
    Mesh m = write_mesh(s);
    std::uint64_t empty = s.send(m.link, false, env("HEARTBEAT", kServerA, kServerB, s.ts(), socp::Json::object()), "");
    // No "sig" member at all.
    const std::int64_t ts0 = s.ts();
    socp::Json p = s.dm("user-1", kUser1, kUser2, ts0, "user-2", "no sig");
    p["sender"] = kUser1;
    std::uint64_t absent = s.text(m.u2, false, socp::encode(env("USER_DELIVER", kServerB, kUser2, ts0, p)));
    // A user's DM with an empty link signature: allowed.
    const std::int64_t ts = s.ts();
    std::uint64_t user =
        s.send(m.u1, true,
               env("MSG_DIRECT", kUser1, kUser2, ts, s.dm("user-1", kUser1, kUser2, ts, "user-2", "unsigned")), "");
    s.finish();

    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.missing_sig", {empty, absent}}});
    auto rows = socp_rows(s.path(), {"socp.sig.status", "socp.content_sig.status"});
    CHECK(rows.at(empty) == Row{"missing", ""});
    CHECK(rows.at(absent) == Row{"missing", "verified"});
    CHECK(rows.at(user) == Row{"missing", "verified"});
    CHECK(rows.at(m.hello1) == Row{"missing", ""});
}

TEST_CASE("SOCP: socp.weak_key on every RSA key under 4096 bits, whose signatures still verify",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "weak.pcap");
    Mesh m = write_mesh(s);
    std::size_t u3 = s.link(kPortA);
    std::uint64_t hello = s.send(
        u3, true, env("USER_HELLO", kUser3, kServerA, s.ts(), {{"client", "cli-v1"}, {"pubkey", pub("weak-1")}}), "");
    const std::int64_t ts = s.ts();
    std::uint64_t dm = s.send(
        u3, true, env("MSG_DIRECT", kUser3, kUser1, ts, s.dm("weak-1", kUser3, kUser1, ts, "user-1", "tiny key")),
        "weak-1");
    s.finish();

    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.weak_key", {hello, dm}}});
    auto rows = socp_rows(s.path(), {"socp.key.bits", "socp.sig.status", "socp.content_sig.status"});
    CHECK(rows.at(hello) == Row{"1024", "missing", ""});
    CHECK(rows.at(dm) == Row{"1024", "verified", "verified"});
    CHECK(rows.at(m.hello1)[0] == "4096,4096");
}

TEST_CASE("SOCP: socp.duplicate on the same message twice in one direction of one connection, not on fan-out",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "dup.pcap");
    Mesh m = write_mesh(s);
    std::uint64_t again = s.send(m.u1, true, m.direct, "user-1");      // a fresh signature, the same message
    std::uint64_t echoed = s.send(m.u1, false, m.direct, "server-a");  // the other direction
    std::uint64_t third = s.send(m.u1, true, m.direct, "");
    s.finish();

    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.duplicate", {again, third}}});
    auto rows = socp_rows(s.path(), {"socp.duplicate_of", "socp.message_id"});
    const std::string first = std::to_string(m.dm);
    CHECK(rows.at(again)[0] == first);
    CHECK(rows.at(third)[0] == first);
    CHECK(rows.at(echoed)[0].empty());
    CHECK(rows.at(again)[1] == rows.at(m.dm)[1]);
    // The group key update went to three connections: one message id, no duplicate.
    CHECK(rows.at(m.updated_u1)[1] == rows.at(m.updated_link)[1]);
    CHECK(rows.at(m.updated_u1)[1].size() == 64);
}

TEST_CASE("SOCP: socp.from_mismatch on a user link's content from someone else, and a server link's own frames",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "from.pcap");
    Mesh m = write_mesh(s);
    const std::int64_t ts = s.ts();
    // User 1's connection sends as user 2, signed with user 2's key.
    std::uint64_t forged = s.send(
        m.u1, true, env("MSG_DIRECT", kUser2, kUser1, ts, s.dm("user-2", kUser2, kUser1, ts, "user-1", "it is me")),
        "user-2");
    std::uint64_t file =
        s.send(m.u1, true,
               env("FILE_START", kUser2, kUser1, s.ts(),
                   {{"file_id", "f1"}, {"name", "a.txt"}, {"size", 3}, {"sha256", "00"}, {"mode", "dm"}}),
               "user-2");
    // B's side of the link sends a heartbeat as C.
    std::uint64_t heartbeat =
        s.send(m.link, true, env("HEARTBEAT", kServerC, kServerA, s.ts(), socp::Json::object()), "server-c");
    // User 1's own file: fine.
    std::uint64_t own = s.send(m.u1, true, env("FILE_END", kUser1, kUser2, s.ts(), {{"file_id", "f2"}}), "user-1");
    s.finish();

    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.from_mismatch", {forged, file, heartbeat}}});
    auto rows = socp_rows(s.path(), {"socp.from", "socp.link.sender", "socp.sig.status", "socp.payload.name",
                                     "socp.payload.size", "socp.payload.mode", "socp.payload.file_id"});
    CHECK(rows.at(forged) == Row{kUser2, kUser1, "verified", "", "", "", ""});
    CHECK(rows.at(file) == Row{kUser2, kUser1, "verified", "a.txt", "3", "dm", "f1"});
    CHECK(rows.at(heartbeat) == Row{kServerC, kServerB, "no key", "", "", "", ""});
    CHECK(rows.at(own) == Row{kUser1, kUser1, "verified", "", "", "", "f2"});
}

TEST_CASE("SOCP: socp.bad_content_sig when the end-to-end fields were not what the sender signed",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "csig.pcap");
    Mesh m = write_mesh(s);
    // Signed for another ts.
    const std::int64_t ts = s.ts();
    std::uint64_t stale = s.send(
        m.u1, true, env("MSG_DIRECT", kUser1, kUser2, ts, s.dm("user-1", kUser1, kUser2, ts - 1, "user-2", "late")),
        "user-1");
    // A delivery naming user 1 as the sender, signed by user 2 (sender_pub user 1's).
    const std::int64_t ts2 = s.ts();
    socp::Json p = s.dm("user-2", kUser1, kUser2, ts2, "user-2", "not from one");
    p["sender"] = kUser1;
    p["sender_pub"] = pub("user-1");
    std::uint64_t impostor = s.send(m.u2, false, env("USER_DELIVER", kServerB, kUser2, ts2, p), "server-b");
    s.finish();

    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.bad_content_sig", {stale, impostor}}});
    auto rows = socp_rows(s.path(), {"socp.content_sig.status", "socp.content_sig.sender", "socp.sig.status"});
    CHECK(rows.at(stale) == Row{"bad", kUser1, "verified"});
    CHECK(rows.at(impostor) == Row{"bad", kUser1, "verified"});
}

TEST_CASE("SOCP: socp.malformed on a SOCP connection's messages that are no envelope, others are not claimed",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "malformed.pcap");
    Mesh m = write_mesh(s);
    std::uint64_t text = s.text(m.u1, true, "hello");
    std::uint64_t no_ts =
        s.text(m.u1, true, R"({"type":"MSG_DIRECT","from":")" + kUser1 + R"(","to":"x","payload":{}})");
    std::uint64_t empty_type =
        s.text(m.u1, true, R"({"type":"","from":")" + kUser1 + R"(","to":"x","ts":1,"payload":{}})");
    std::uint64_t sig_number = s.text(
        m.link, false, R"({"type":"HEARTBEAT","from":")" + kServerA + R"(","to":"x","ts":1,"payload":{},"sig":5})");
    std::uint64_t cut = s.text(m.link, true, R"({"type":"HEARTBEAT","from":")");
    // A WebSocket that never carried SOCP: its JSON and text stay tshark's.
    std::size_t other = s.link(8771);
    std::uint64_t plain = s.text(other, true, R"({"hello":"world"})");
    std::uint64_t partial = s.text(other, true, R"({"type":"HEARTBEAT","from":"a","to":"b","payload":{}})");
    s.finish();

    CHECK(experts(s.path()) ==
          std::map<std::string, Frames>{{"socp.malformed", {text, no_ts, empty_type, sig_number, cut}}});
    auto rows = socp_rows(s.path(), {"socp.type"});
    CHECK(rows.count(text) == 1);
    CHECK(rows.at(empty_type) == Row{""});
    CHECK(rows.count(plain) == 0);
    CHECK(rows.count(partial) == 0);
    CHECK(frames_where(s.path(), kException).empty());
    TsharkResult z = run_tshark({"-r", s.path().string(), "-q", "-z", "expert,error"});
    REQUIRE(z.exit_code == 0);
    std::string all;
    for (const auto& l : z.lines) all += l + "\n";
    CHECK(all.find("Malformed envelope: \"type\" is empty") != std::string::npos);
    CHECK(all.find("Malformed envelope: \"sig\" is not a string") != std::string::npos);
    CHECK(all.find("Malformed envelope: no \"ts\"") != std::string::npos);
}

TEST_CASE("SOCP: socp.unknown_type on a type outside the v1.3 catalogue", "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "unknown.pcap");
    Mesh m = write_mesh(s);
    std::uint64_t gossip = s.send(
        m.link, false, env("SERVER_GOSSIP", kServerA, kServerB, s.ts(), {{"rumour", "x"}, {"n", 2}}), "server-a");
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.unknown_type", {gossip}}});
    auto rows = socp_rows(s.path(), {"socp.type", "socp.sig.status", "socp.other", "socp.other.value"});
    CHECK(rows.at(gossip) == Row{"SERVER_GOSSIP", "verified", "n,rumour", "2,x"});
}

TEST_CASE("SOCP: socp.unencrypted on a public message that is base64 of its text", "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "clear.pcap");
    Mesh m = write_mesh(s);
    const std::int64_t ts = s.ts();
    std::string ct = socp::b64url(as_bytes("plain words"));
    std::uint64_t clear =
        s.send(m.u1, true,
               env("MSG_PUBLIC_CHANNEL", kUser1, "public", ts,
                   {{"ciphertext", ct},
                    {"sender_pub", pub("user-1")},
                    {"content_sig", socp::sign_content(key("user-1"), socp::public_content(ct, kUser1, ts), s.rng)}}),
               "user-1");
    // Random bytes are no text: not flagged.
    std::uint64_t opaque = s.send(
        m.u1, true,
        env("MSG_PUBLIC_CHANNEL", kUser1, "public", s.ts(), {{"ciphertext", socp::b64url(s.rng.bytes(64))}}), "user-1");
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.unencrypted", {clear}}});
    auto rows = socp_rows(s.path(), {"socp.decryption.status", "socp.plaintext", "socp.content_sig.status"});
    CHECK(rows.at(clear) == Row{"unencrypted", "plain words", "verified"});
    CHECK(rows.at(opaque) == Row{"no key", "", ""});
    CHECK(rows.at(m.pub_u1) == Row{"no key", "", "verified"});
}

TEST_CASE("SOCP: socp.key_changed on another key for an identity, whose signatures then do not verify",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "key.pcap");
    Mesh m = write_mesh(s);
    // A presence hijack: user 1 advertised with user 5's key.
    std::uint64_t advert =
        s.send(m.link, false,
               env("USER_ADVERTISE", kServerA, "*", s.ts(),
                   {{"user_id", kUser1}, {"server_id", kServerA}, {"meta", {{"pubkey", pub("user-5")}}}}),
               "server-a");
    const std::int64_t ts = s.ts();
    std::uint64_t dm =
        s.send(m.u1, true,
               env("MSG_DIRECT", kUser1, kUser2, ts, s.dm("user-5", kUser1, kUser2, ts, "user-2", "as one")), "user-5");
    s.finish();

    CHECK(experts(s.path()) ==
          std::map<std::string, Frames>{{"socp.key_changed", {advert, dm}}, {"socp.bad_sig", {dm}}});
    auto rows = socp_rows(s.path(), {"socp.sig.status", "socp.content_sig.status", "socp.content_sig.key",
                                     "socp.content_sig.sender_pub_matches"});
    CHECK(rows.at(advert) == Row{"verified", "", "", ""});
    // What the recipient checks (sender_pub) verifies; it is not the key user 1 had.
    CHECK(rows.at(dm) == Row{"bad", "verified", "sender_pub", "0"});
    CHECK(rows.at(m.dm) == Row{"verified", "verified", "sender_pub", "1"});
}

TEST_CASE("SOCP: socp.bad_key on a key field that holds no RSA public key", "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "badkey.pcap");
    Mesh m = write_mesh(s);
    std::size_t u3 = s.link(kPortA);
    std::uint64_t hello = s.send(
        u3, true, env("USER_HELLO", kUser3, kServerA, s.ts(), {{"pubkey", socp::b64url(as_bytes("not a key"))}}), "");
    std::uint64_t advert = s.send(
        m.link, false,
        env("USER_ADVERTISE", kServerA, "*", s.ts(), {{"user_id", kUser3}, {"meta", {{"pubkey", "-----BEGIN junk"}}}}),
        "server-a");
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.bad_key", {hello, advert}}});
    auto rows = socp_rows(s.path(), {"socp.key.bits", "socp.sig.status"});
    CHECK(rows.at(hello) == Row{"", "missing"});
    CHECK(rows.at(advert) == Row{"", "verified"});
}

TEST_CASE("SOCP: socp.decryption_failed when the recipient's key does not open a DM, a wrap or a public message",
          "[dissector][socp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "fail.pcap");
    Mesh m = write_mesh(s);
    // To user 2, encrypted for user 1's key.
    const std::int64_t ts = s.ts();
    std::uint64_t dm = s.send(
        m.u1, true, env("MSG_DIRECT", kUser1, kUser2, ts, s.dm("user-1", kUser1, kUser2, ts, "user-1", "misrouted")),
        "user-1");
    // A wrap for user 2 under user 3's key.
    socp::Json wraps =
        socp::Json::array({{{"member_id", kUser2},
                            {"wrapped_key", *socp::encrypt_for(key("user-3").public_key(), s.rng.bytes(32), s.rng)}}});
    std::uint64_t wrap =
        s.send(m.u2, false, env("PUBLIC_CHANNEL_UPDATED", kServerB, "*", s.ts(), {{"version", 2}, {"wraps", wraps}}),
               "server-b");
    // Version 1's ciphertext with a flipped byte.
    Bytes sealed = *socp::b64url_decode(socp::group_encrypt(m.group_key, "tampered", s.rng));
    sealed[14] ^= 1;
    std::uint64_t tampered = s.send(
        m.u1, true,
        env("MSG_PUBLIC_CHANNEL", kUser1, "public", s.ts(), {{"ciphertext", socp::b64url(sealed)}, {"key_version", 1}}),
        "user-1");
    s.finish();
    const fs::path keylog = dir / "keys.log";
    write_file(keylog, keylog_line(kUser2, "user-2"));
    make_world_readable(keylog);

    CHECK(experts(s.path(), keylog_args(keylog)) ==
          std::map<std::string, Frames>{{"socp.decryption_failed", {dm, wrap, tampered}}});
    auto rows = socp_rows(s.path(), {"socp.decryption.status", "socp.payload.wraps.opened", "socp.plaintext"},
                          keylog_args(keylog));
    CHECK(rows.at(dm) == Row{"failed", "", ""});
    CHECK(rows.at(wrap) == Row{"", "0", ""});
    CHECK(rows.at(tampered) == Row{"failed", "", ""});
    // Without the key nothing is known to fail.
    CHECK(experts(s.path()).empty());
}

// ---------------------------------------------------------------------------
// 4. Where SOCP is recognised, and robustness.

TEST_CASE("SOCP: SOCP and CSMP share the ws heuristics without taking each other's messages", "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "both.pcap");
    // A CSMP chat socket on 8000: everything on it is CSMP's, envelopes included.
    std::size_t chat = s.cap.connect(40500, 8000);
    s.cap.send(chat, true,
               "GET /ws/chat?session_id=6f0c1a2e-3b4d-4c5e-8f60-718293a4b5c6&room_id=room1 HTTP/1.1\r\n"
               "host: 127.0.0.1:8000\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
               "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n");
    s.cap.send(chat, false, kSwitching);
    std::uint64_t csmp_chat = s.text(chat, true, R"({"type":"chat","message":"hi"})");
    std::uint64_t csmp_envelope =
        s.text(chat, true, R"({"type":"chat","from":"a","to":"b","ts":1,"payload":{},"message":"x"})");
    // A SOCP connection: an envelope, even of type "chat", is SOCP's.
    std::size_t link = s.link(kPortA);
    std::uint64_t socp_chat = s.text(link, true, R"({"type":"chat","from":"a","to":"b","ts":1,"payload":{}})");
    // Elsewhere, CSMP's own JSON is still CSMP's.
    std::size_t elsewhere = s.link(8771);
    std::uint64_t csmp_elsewhere = s.text(elsewhere, false, R"({"type":"chat","from":"alice","message":"m"})");
    s.finish();

    CHECK(frames_where(s.path(), "csmp.type == \"chat\"") == Frames{csmp_chat, csmp_envelope, csmp_elsewhere});
    CHECK(frames_where(s.path(), "socp") == Frames{socp_chat});
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"socp.unknown_type", {socp_chat}}});
}

TEST_CASE("SOCP: random and mutated envelopes: tshark exits cleanly, no exception in any frame", "[dissector][socp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Socp s(dir / "fuzz.pcap");
    Mesh m = write_mesh(s);
    DeterministicRng rng(7301);
    const std::vector<std::string> seeds = {
        s.seal(m.direct, "user-1"),
        s.seal(env("USER_HELLO", kUser3, kServerA, 1, {{"pubkey", pub("weak-2")}, {"meta", {{"pubkey", "x"}}}}), ""),
        s.seal(env("SERVER_WELCOME", kServerA, kServerB, 2,
                   {{"assigned_id", kServerB},
                    {"servers", socp::Json::array({{{"server_id", kServerC}, {"host", "localhost"}, {"port", 1}}})},
                    {"clients", socp::Json::array({{{"user_id", kUser1}, {"pubkey", pub("user-1")}}})}}),
               "server-a"),
        s.seal(env("PUBLIC_CHANNEL_KEY_SHARE", kServerA, "*", 3,
                   {{"shares", socp::Json::array({{{"member", kUser1}, {"wrapped_public_channel_key", "AAAA"}}})},
                    {"creator_pub", pub("server-a")},
                    {"content_sig", "AAAA"}}),
               "server-a"),
    };
    const std::vector<std::string> pieces = {"{",
                                             "}",
                                             "[",
                                             "]",
                                             "\"",
                                             "\\",
                                             "\\u",
                                             "\\ud83d",
                                             ":",
                                             ",",
                                             "\"ts\"",
                                             "\"payload\"",
                                             "\"sig\"",
                                             "\"type\"",
                                             "null",
                                             "-1",
                                             "1e999",
                                             "NaN",
                                             "18446744073709551616",
                                             " ",
                                             "\xff",
                                             "\"wraps\"",
                                             "\"servers\""};
    auto mutate = [&](std::string t) {
        const std::size_t edits = 1 + rng.below(4);
        for (std::size_t i = 0; i < edits && !t.empty(); ++i) {
            const std::size_t at = rng.below(t.size());
            switch (rng.below(4)) {
                case 0: t.erase(at, 1 + rng.below(40)); break;
                case 1: t.insert(at, pieces[rng.below(pieces.size())]); break;
                case 2: t[at] = static_cast<char>(rng.below(256)); break;
                default: t.resize(at); break;
            }
        }
        return t;
    };
    std::size_t fresh = s.link(8773);
    for (int i = 0; i < 120; ++i) {
        const std::string text = mutate(seeds[rng.below(seeds.size())]);
        s.text(i % 3 == 0 ? m.u1 : i % 3 == 1 ? m.link : fresh, i % 2 == 0, text);
    }
    s.finish();
    const fs::path file = copy_key(dir.path(), "user-2");
    TsharkResult r = run_tshark({"-r", s.path().string(), "-2", "-V", "-o", "socp.private_keys:" + file.string()});
    INFO("tshark stderr: " << r.errors);
    CHECK(r.exit_code == 0);
    CHECK(r.errors.find("Dissector bug") == std::string::npos);
    CHECK(frames_where(s.path(), kException).empty());
    CHECK(frames_where(s.path(), "socp").size() >= 80);
}
