// msglab.so's SLMP dissector through tshark: the original programs' capture
// decoded in place, and synthetic sessions built here with the core's P-256,
// HKDF and Fernet, written as pcaps with synthetic TCP and a key log. Every
// check names exact frames and values.
#include <pcap/pcap.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "support.hpp"
#include "tshark_support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

constexpr std::uint32_t kClientIp = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t kServerIp = 0x0a000002;  // 10.0.0.2
constexpr std::uint16_t kSlmpPort = 9999;
constexpr std::uint64_t kStaleTimestamp = 1700000000;  // 2023-11-14 22:13:20 UTC
constexpr const char* kSecret = "my_secret";
// A dissector exception or bug in a frame. (_ws.malformed alone also matches
// every expert info of the Malformed group.)
constexpr const char* kException = "_ws.malformed.expert || _ws.malformed.dissector_bug || _ws.short";

// Every SLMP expert info the plugin registers.
const std::vector<std::string> kExperts = {
    "slmp.client_key_reused",
    "slmp.server_key_reused",
    "slmp.timestamp_skew",
    "slmp.hmac_mismatch",
    "slmp.bad_padding",
    "slmp.malformed_pem",
    "slmp.not_p256",
    "slmp.malformed_token",
    "slmp.over_recv_limit",
    "slmp.field_count",
    "slmp.not_utf8",
    "slmp.token_forgeable",
    "slmp.token_not_from_secret",
    "slmp.unit_incomplete",
    "slmp.not_slmp",
    "slmp.unexpected_unit",
    "slmp.no_key",
};

std::vector<std::string> keylog_args(const fs::path& keylog) {
    return {"-o", "slmp.keylog_file:" + keylog.string()};
}

// The SLMP frames' rows (the filter "slmp"), keyed by frame number.
std::map<std::uint64_t, Row> slmp_rows(const fs::path& pcap, const std::vector<std::string>& names,
                                       const std::vector<std::string>& extra = {}) {
    return rows_by_frame(pcap, names, extra, "slmp");
}

// Every SLMP expert info, from one tshark run: name -> the frames that carry it.
std::map<std::string, Frames> experts(const fs::path& pcap, const std::vector<std::string>& extra = {}) {
    return experts_by_name(pcap, kExperts, extra);
}

// Connections to the SLMP port unless told otherwise.
struct Capture : SynthCapture {
    using SynthCapture::SynthCapture;
    std::size_t connect(std::uint16_t client_port, std::uint16_t server_port = kSlmpPort) {
        return SynthCapture::connect(client_port, server_port);
    }
};

// One side's P-256 key pair with its PEM (as the original writes it) and DER.
struct KeyPair {
    crypto::P256PrivateKey priv;
    std::string pem;
    Bytes der;

    explicit KeyPair(crypto::P256PrivateKey k)
        : priv(std::move(k)), pem(priv.public_key().pem()), der(priv.public_key().spki_der()) {}
    static KeyPair generate(Rng& rng) { return KeyPair(crypto::P256PrivateKey::generate(rng)); }
    // The same key again (a static server key, a replayed client key).
    KeyPair copy() const { return KeyPair(*crypto::P256PrivateKey::from_scalar(priv.scalar())); }
};

std::string auth_token(std::string_view user, std::string_view secret) {
    return hex(crypto::sha256(as_bytes(std::string(user) + std::string(secret))));
}

// A connection's key exchange done as both sides do it: ECDH, HKDF, the
// Fernet key, the session id the key log names it by.
struct Session {
    std::string client_pem, server_pem;
    Bytes client_der, server_der;
    Bytes k;  // the 32-byte Fernet key
    fernet::Key key;
    std::string sid;  // 16 hex digits

    Session(const KeyPair& client, const KeyPair& server) {
        auto z = client.priv.agree(server.priv.public_key());
        auto z_server = server.priv.agree(client.priv.public_key());
        REQUIRE(z);
        REQUIRE(z_server);
        REQUIRE(*z == *z_server);
        client_pem = client.pem;
        server_pem = server.pem;
        client_der = client.der;
        server_der = server.der;
        k = crypto::hkdf_sha256(*z, {}, as_bytes("handshake data"), 32);
        key = *fernet::Key::from_bytes(k);
        Bytes both = client_der;
        both.insert(both.end(), server_der.begin(), server_der.end());
        sid = hex(crypto::sha256(both)).substr(0, 16);
    }

    std::string seal(std::string_view plaintext, std::uint64_t ts, Rng& rng) const {
        return fernet::encrypt(key, as_bytes(plaintext), ts, rng.bytes(16));
    }
    std::string request(std::string_view user, std::string_view message, std::uint64_t ts, Rng& rng) const {
        return seal(auth_token(user, kSecret) + ";" + std::string(user) + ";" + std::string(message), ts, rng);
    }
    std::string reply(std::string_view message, std::uint64_t ts, Rng& rng) const {
        return seal("Message received: " + std::string(message), ts, rng);
    }
    std::string keylog_line() const { return format_keylog_line("SLMP_FERNET_KEY", unhex(sid), k); }
};

void write_keylog(const fs::path& path, const std::vector<const Session*>& sessions) {
    std::string text = "# SLMP sessions\n";
    for (const Session* s : sessions) text += s->keylog_line();
    write_file(path, text);
    make_world_readable(path);
}

// "YYYY-MM-DD HH:MM:SSZ", as a display filter compares absolute times.
std::string filter_time(std::uint64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

// The `-z expert` section (Errors, Warns, ...) of the first line containing `needle`.
std::string expert_line_section(const std::vector<std::string>& lines, const std::string& needle) {
    std::string section;
    for (const auto& l : lines) {
        for (const char* s : {"Errors", "Warns", "Notes", "Chats", "Comments"})
            if (l.rfind(s, 0) == 0) section = s;
        if (l.find(needle) != std::string::npos) return section;
    }
    return "";
}

// One connection on 9999 with the four units of a normal session, frames 4 to 7.
struct NormalCapture {
    ReadableTempDir dir;
    fs::path keylog = dir / "keys.log";
    std::uint64_t now = now_seconds();
    DeterministicRng rng;
    KeyPair client, server;
    Session session;
    std::string user = "amir", message = "Hello SLMP!";
    std::string request, reply;
    Capture cap;

    explicit NormalCapture(std::uint64_t seed, std::uint16_t port = kSlmpPort)
        : rng(seed),
          client(KeyPair::generate(rng)),
          server(KeyPair::generate(rng)),
          session(client, server),
          request(session.request(user, message, now, rng)),
          reply(session.reply(message, now, rng)),
          cap(dir / "slmp.pcap", now) {
        std::size_t c = cap.connect(40000, port);
        REQUIRE(cap.send(c, true, session.client_pem) == 4);
        REQUIRE(cap.send(c, false, session.server_pem) == 5);
        REQUIRE(cap.send(c, true, request) == 6);
        REQUIRE(cap.send(c, false, reply) == 7);
        cap.close(c);  // frames 8 and 9
        cap.finish();
        write_keylog(keylog, {&session});
    }
};

}  // namespace

// ---------------------------------------------------------------------------
// 1. The original programs' capture.

TEST_CASE("SLMP: the original capture decodes in place: units, lengths, keys, tokens, links, the static server key",
          "[dissector][slmp]") {
    REQUIRE_TSHARK();
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals/slmp.pcap")) MSGLAB_SKIP("no originals/slmp.pcap");
    const fs::path pcap = *dir / "originals/slmp.pcap";

    SECTION("units, lengths, curve, versions, request/response links") {
        // Two connections; every unit is one segment.
        const Frames units = {4, 6, 8, 9, 17, 19, 21, 22};
        REQUIRE(frames_where(pcap, "slmp") == units);
        REQUIRE(frames_where(pcap, "tcp.len > 0") == units);

        auto rows =
            slmp_rows(pcap, {"tcp.len", "slmp.unit", "slmp.pem.length", "slmp.key.role", "slmp.key.algorithm",
                             "slmp.key.curve", "slmp.key.curve_name", "slmp.fernet.length", "slmp.fernet.version",
                             "slmp.response_in", "slmp.request_in", "slmp.hmac_status", "slmp.plaintext"});
        const std::string ec = "1.2.840.10045.2.1", p256 = "1.2.840.10045.3.1.7", name = "P-256 (secp256r1)";
        const std::map<std::uint64_t, Row> want = {
            {4, {"178", "1", "178", "1", ec, p256, name, "", "", "6", "", "", ""}},
            {6, {"178", "2", "178", "0", ec, p256, name, "", "", "", "4", "", ""}},
            // "7123e531...;amir;Hello SLMP!" is 81 bytes: 204 characters (section 3.5).
            {8, {"204", "3", "", "", "", "", "", "204", "0x80", "9", "", "0", ""}},
            // "Message received: Hello SLMP!", 29 bytes: 120 characters.
            {9, {"120", "4", "", "", "", "", "", "120", "0x80", "", "8", "0", ""}},
            {17, {"178", "1", "178", "1", ec, p256, name, "", "", "19", "", "", ""}},
            {19, {"178", "2", "178", "0", ec, p256, name, "", "", "", "17", "", ""}},
            // "...;user1;second message" is 85 bytes: 204; the 33-byte reply: 140.
            {21, {"204", "3", "", "", "", "", "", "204", "0x80", "22", "", "0", ""}},
            {22, {"140", "4", "", "", "", "", "", "140", "0x80", "", "21", "0", ""}},
        };
        CHECK(rows == want);
    }

    SECTION("the keys: DER of 91 bytes, the point's X and Y, session ids from the two DERs") {
        auto keys = slmp_rows(
            pcap, {"slmp.der", "slmp.key.point", "slmp.key.x", "slmp.key.y", "slmp.session_id", "tcp.payload"});
        for (std::uint64_t f : {4, 6, 17, 19}) {
            INFO("frame " << f);
            const Row& r = keys.at(f);
            const Bytes der = unhex(r[0]);
            REQUIRE(der.size() == 91);
            CHECK(hex(ByteView(der).first(26)) == "3059301306072a8648ce3d020106082a8648ce3d030107034200");
            CHECK(r[1] == hex(ByteView(der).subspan(26)));
            CHECK(r[2] == hex(ByteView(der).subspan(27, 32)));
            CHECK(r[3] == hex(ByteView(der).subspan(59, 32)));
            // The core re-encodes the DER into exactly the PEM on the wire.
            auto key = crypto::P256PublicKey::from_spki_der(der);
            REQUIRE(key);
            CHECK(key->pem() == to_string(unhex(r[5])));
        }
        auto sid = [&](std::uint64_t client, std::uint64_t server) {
            Bytes both = unhex(keys.at(client)[0]);
            Bytes s = unhex(keys.at(server)[0]);
            both.insert(both.end(), s.begin(), s.end());
            return hex(crypto::sha256(both)).substr(0, 16);
        };
        const std::string first = sid(4, 6), second = sid(17, 19);
        CHECK(first != second);
        for (std::uint64_t f : {4, 6, 8, 9}) CHECK(keys.at(f)[4] == first);
        for (std::uint64_t f : {17, 19, 21, 22}) CHECK(keys.at(f)[4] == second);
        // The original's static server key: one DER in both sessions, two client keys.
        CHECK(keys.at(6)[0] == keys.at(19)[0]);
        CHECK(keys.at(4)[0] != keys.at(17)[0]);
    }

    SECTION("expert infos: the static server key, and nothing else") {
        auto e = experts(pcap);
        CHECK(e == std::map<std::string, Frames>{{"slmp.server_key_reused", {19}}});
        CHECK(frames_where(pcap, "slmp.key.first_seen == 6") == Frames{19});
        TsharkResult r = run_tshark({"-r", pcap.string(), "-q", "-z", "expert"});
        REQUIRE(r.exit_code == 0);
        CHECK(expert_line_section(r.lines, "Server key reused: the same key as frame 6") == "Warns");
    }

    SECTION("token timestamps are the capture's second: no skew") {
        auto times = slmp_rows(pcap, {"frame.time_epoch", "slmp.fernet.timestamp"});
        const std::uint64_t second = std::stoull(split(times.at(8)[0], '.')[0]);
        CHECK(frames_where(pcap, "slmp.fernet.timestamp == \"" + filter_time(second) + "\"") == Frames{8, 9, 21, 22});
        CHECK(frames_where(pcap, "slmp.fernet.timestamp == \"2026-11-21 14:41:18Z\"") == Frames{8, 9, 21, 22});
        CHECK(frames_where(pcap, "slmp.fernet.version == 0x80") == Frames{8, 9, 21, 22});
    }

    SECTION("a key log without these sessions: no plaintext, and a note on every token") {
        ReadableTempDir kdir;
        DeterministicRng rng(1);
        KeyPair a = KeyPair::generate(rng), b = KeyPair::generate(rng);
        Session other(a, b);
        write_keylog(kdir / "keys.log", {&other});
        auto e = experts(pcap, keylog_args(kdir / "keys.log"));
        CHECK(e.at("slmp.no_key") == Frames{8, 9, 21, 22});
        CHECK(frames_where(pcap, "slmp.plaintext", keylog_args(kdir / "keys.log")).empty());
    }
}

// ---------------------------------------------------------------------------
// 2. Synthetic sessions with the key log.

TEST_CASE("SLMP: a session with the key log: plaintexts, the three request fields, HMAC good, the forgeable token",
          "[dissector][slmp]") {
    REQUIRE_TSHARK();
    // The derivation this test uses is section 3.3's and 3.4's.
    CHECK(hex(crypto::hkdf_sha256(Bytes(32, 0x01), {}, as_bytes("handshake data"), 32)) ==
          "9a28ec78439739e46d7830d1f45b0e0ad3b78f4203c3da9cdeb47e99b314de88");
    CHECK(auth_token("amir", "my_secret") == "7123e531f4dc6fa4c91fb7d1278cf06c174786254b72c58d6934ed625cd5a0a3");

    NormalCapture nc(601);
    const std::string token = auth_token(nc.user, kSecret);
    const std::string plain = token + ";" + nc.user + ";" + nc.message;
    const std::string reply = "Message received: " + nc.message;
    const std::vector<std::string> names = {"slmp.unit",      "slmp.session_id",    "slmp.hmac_status",
                                            "slmp.plaintext", "slmp.token",         "slmp.user",
                                            "slmp.message",   "slmp.fernet.length", "slmp.pem.length"};
    const std::string rq_len = std::to_string(nc.request.size()), rp_len = std::to_string(nc.reply.size());
    REQUIRE(nc.session.client_pem.size() == 178);
    REQUIRE(nc.request.size() == 204);
    REQUIRE(nc.reply.size() == 120);

    SECTION("with the key log") {
        auto rows = slmp_rows(nc.cap.path(), names, keylog_args(nc.keylog));
        const std::string& sid = nc.session.sid;
        const std::map<std::uint64_t, Row> want = {
            {4, {"1", sid, "", "", "", "", "", "", "178"}},
            {5, {"2", sid, "", "", "", "", "", "", "178"}},
            {6, {"3", sid, "1", plain, token, nc.user, nc.message, rq_len, ""}},
            {7, {"4", sid, "1", reply, "", "", "", rp_len, ""}},
        };
        CHECK(rows == want);
        // The original's secret: anyone can forge this token.
        auto e = experts(nc.cap.path(), keylog_args(nc.keylog));
        CHECK(e == std::map<std::string, Frames>{{"slmp.token_forgeable", {6}}});
        TsharkResult r = run_tshark(
            {"-r", nc.cap.path().string(), "-q", "-z", "expert", "-o", "slmp.keylog_file:" + nc.keylog.string()});
        REQUIRE(r.exit_code == 0);
        CHECK(expert_line_section(r.lines, "token forgeable: derived from the shared secret 'my_secret'") == "Warns");
    }

    SECTION("another shared secret: the token does not derive from it, a note instead") {
        std::vector<std::string> args = keylog_args(nc.keylog);
        args.insert(args.end(), {"-o", "slmp.shared_secret:not the secret"});
        auto e = experts(nc.cap.path(), args);
        CHECK(e == std::map<std::string, Frames>{{"slmp.token_not_from_secret", {6}}});
        CHECK(frames_where(nc.cap.path(), "slmp.user == \"amir\"", args) == Frames{6});
    }

    SECTION("SecMsg's key log preference (what msglab wireshark --keylog sets) serves SLMP too") {
        auto rows = slmp_rows(nc.cap.path(), {"slmp.hmac_status", "slmp.plaintext"},
                              {"-o", "secmsg.keylog_file:" + nc.keylog.string()});
        CHECK(rows.at(6) == Row{"1", plain});
        CHECK(rows.at(7) == Row{"1", reply});
    }

    SECTION("without the key log: HMAC not checked, no plaintext, no note") {
        auto rows = slmp_rows(nc.cap.path(), {"slmp.session_id", "slmp.hmac_status", "slmp.plaintext"});
        CHECK(rows.at(6) == Row{nc.session.sid, "0", ""});
        CHECK(rows.at(7) == Row{nc.session.sid, "0", ""});
        CHECK(experts(nc.cap.path()).empty());
    }

    SECTION("the Fernet fields are the token's bytes") {
        auto rows = slmp_rows(nc.cap.path(),
                              {"slmp.fernet.version", "slmp.fernet.iv", "slmp.fernet.ciphertext", "slmp.fernet.hmac"});
        for (auto [frame, text] : {std::pair<std::uint64_t, std::string>{6, nc.request}, {7, nc.reply}}) {
            INFO("frame " << frame);
            auto t = fernet::parse(text);
            REQUIRE(t);
            CHECK(rows.at(frame) == Row{"0x80", hex(t->iv), hex(t->ciphertext), hex(t->hmac)});
        }
        CHECK(frames_where(nc.cap.path(), "slmp.fernet.timestamp == \"" + filter_time(nc.now) + "\"") == Frames{6, 7});
    }
}

TEST_CASE("SLMP: a tampered token gives slmp.hmac_mismatch (key log needed)", "[dissector][slmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(602);
    const std::uint64_t now = now_seconds();
    KeyPair client = KeyPair::generate(rng), server = KeyPair::generate(rng);
    Session s(client, server);
    std::string bad = s.request("amir", "tampered", now, rng);
    // One base64 character inside the HMAC, changed.
    char& c = bad[bad.size() - 10];
    c = c == 'A' ? 'B' : 'A';
    Capture cap(dir / "slmp.pcap", now);
    std::size_t conn = cap.connect(40001);
    REQUIRE(cap.send(conn, true, s.client_pem) == 4);
    REQUIRE(cap.send(conn, false, s.server_pem) == 5);
    REQUIRE(cap.send(conn, true, bad) == 6);
    REQUIRE(cap.send(conn, false, s.reply("tampered", now, rng)) == 7);
    cap.finish();
    write_keylog(dir / "keys.log", {&s});

    auto e = experts(cap.path(), keylog_args(dir / "keys.log"));
    CHECK(e == std::map<std::string, Frames>{{"slmp.hmac_mismatch", {6}}});
    auto rows = slmp_rows(cap.path(), {"slmp.hmac_status", "slmp.plaintext"}, keylog_args(dir / "keys.log"));
    CHECK(rows.at(6) == Row{"2", ""});
    CHECK(rows.at(7) == Row{"1", "Message received: tampered"});
    // Without keys nothing can be checked, so nothing is claimed.
    CHECK(experts(cap.path()).empty());
}

TEST_CASE("SLMP: a token stamped far from the capture time gives slmp.timestamp_skew", "[dissector][slmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(603);
    const std::uint64_t now = now_seconds();
    REQUIRE(now > kStaleTimestamp + 86400);
    KeyPair client = KeyPair::generate(rng), server = KeyPair::generate(rng);
    Session s(client, server);
    Capture cap(dir / "slmp.pcap", now);
    std::size_t conn = cap.connect(40002);
    REQUIRE(cap.send(conn, true, s.client_pem) == 4);
    REQUIRE(cap.send(conn, false, s.server_pem) == 5);
    REQUIRE(cap.send(conn, true, s.request("amir", "from 2023", kStaleTimestamp, rng)) == 6);
    // 299 s ahead: inside the default 300 s.
    REQUIRE(cap.send(conn, false, s.reply("from 2023", now + 299, rng)) == 7);
    cap.finish();
    write_keylog(dir / "keys.log", {&s});

    CHECK(experts(cap.path())["slmp.timestamp_skew"] == Frames{6});
    CHECK(experts(cap.path(), {"-o", "slmp.max_skew:999999999"})["slmp.timestamp_skew"].empty());
    CHECK(experts(cap.path(), {"-o", "slmp.max_skew:200"})["slmp.timestamp_skew"] == Frames{6, 7});
    CHECK(frames_where(cap.path(), "slmp.fernet.timestamp == \"2023-11-14 22:13:20Z\"") == Frames{6});
    // SLMP checks no TTL: the stale request still opens.
    auto rows = slmp_rows(cap.path(), {"slmp.hmac_status", "slmp.message"}, keylog_args(dir / "keys.log"));
    CHECK(rows.at(6) == Row{"1", "from 2023"});
}

TEST_CASE("SLMP: a client key in two sessions gives slmp.client_key_reused with the first use",
          "[dissector][slmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(604);
    const std::uint64_t now = now_seconds();
    KeyPair client = KeyPair::generate(rng);
    KeyPair client_again = client.copy();
    REQUIRE(client_again.pem == client.pem);

    SECTION("fresh server keys: only the client key repeats") {
        KeyPair server1 = KeyPair::generate(rng), server2 = KeyPair::generate(rng);
        Session s1(client, server1), s2(client_again, server2);
        REQUIRE(s1.sid != s2.sid);
        Capture cap(dir / "slmp.pcap", now);
        std::size_t a = cap.connect(40010);  // frames 1-3
        REQUIRE(cap.send(a, true, s1.client_pem) == 4);
        REQUIRE(cap.send(a, false, s1.server_pem) == 5);
        REQUIRE(cap.send(a, true, s1.request("amir", "first", now, rng)) == 6);
        REQUIRE(cap.send(a, false, s1.reply("first", now, rng)) == 7);
        cap.close(a);                        // 8, 9
        std::size_t b = cap.connect(40011);  // 10-12
        REQUIRE(cap.send(b, true, s2.client_pem) == 13);
        REQUIRE(cap.send(b, false, s2.server_pem) == 14);
        REQUIRE(cap.send(b, true, s2.request("amir", "second", now, rng)) == 15);
        REQUIRE(cap.send(b, false, s2.reply("second", now, rng)) == 16);
        cap.close(b);
        cap.finish();
        write_keylog(dir / "keys.log", {&s1, &s2});

        auto e = experts(cap.path(), keylog_args(dir / "keys.log"));
        CHECK(e.at("slmp.client_key_reused") == Frames{13});
        CHECK(e.count("slmp.server_key_reused") == 0);
        CHECK(frames_where(cap.path(), "slmp.key.first_seen == 4") == Frames{13});
        auto rows = slmp_rows(cap.path(), {"slmp.session_id", "slmp.message"}, keylog_args(dir / "keys.log"));
        CHECK(rows.at(6) == Row{s1.sid, "first"});
        CHECK(rows.at(15) == Row{s2.sid, "second"});
    }

    SECTION("a full replay to a static server key (section 3.8): both keys repeat, the same session id") {
        KeyPair server = KeyPair::generate(rng);
        KeyPair server_again = server.copy();
        Session s1(client, server), s2(client_again, server_again);
        REQUIRE(s1.sid == s2.sid);
        const std::string request = s1.request("amir", "pay 100", now, rng);
        Capture cap(dir / "replay.pcap", now);
        std::size_t a = cap.connect(40020);
        REQUIRE(cap.send(a, true, s1.client_pem) == 4);
        REQUIRE(cap.send(a, false, s1.server_pem) == 5);
        REQUIRE(cap.send(a, true, request) == 6);
        REQUIRE(cap.send(a, false, s1.reply("pay 100", now, rng)) == 7);
        cap.close(a);
        std::size_t b = cap.connect(40021);
        REQUIRE(cap.send(b, true, s2.client_pem) == 13);
        REQUIRE(cap.send(b, false, s2.server_pem) == 14);
        REQUIRE(cap.send(b, true, request) == 15);  // the captured token, replayed
        REQUIRE(cap.send(b, false, s2.reply("pay 100", now, rng)) == 16);
        cap.close(b);
        cap.finish();
        write_keylog(dir / "keys.log", {&s1});

        auto e = experts(cap.path(), keylog_args(dir / "keys.log"));
        CHECK(e.at("slmp.client_key_reused") == Frames{13});
        CHECK(e.at("slmp.server_key_reused") == Frames{14});
        CHECK(frames_where(cap.path(), "slmp.key.first_seen == 5") == Frames{14});
        auto rows = slmp_rows(cap.path(), {"slmp.session_id", "slmp.hmac_status", "slmp.message"},
                              keylog_args(dir / "keys.log"));
        CHECK(rows.at(6) == Row{s1.sid, "1", "pay 100"});
        CHECK(rows.at(15) == Row{s1.sid, "1", "pay 100"});
    }
}

// ---------------------------------------------------------------------------
// 3. Reassembly.

TEST_CASE("SLMP: units split across TCP segments are reassembled (PEM keys and tokens)", "[dissector][slmp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(605);
    const std::uint64_t now = now_seconds();
    KeyPair client = KeyPair::generate(rng), server = KeyPair::generate(rng);
    Session s(client, server);
    write_keylog(dir / "keys.log", {&s});
    const std::vector<std::string> with_keys = keylog_args(dir / "keys.log");

    SECTION("every unit in two segments") {
        const std::string request = s.request("user1", "split over segments", now, rng);
        const std::string reply = s.reply("split over segments", now, rng);
        REQUIRE(request.size() == 204);
        REQUIRE(reply.size() == 140);
        Capture cap(dir / "slmp.pcap", now);
        std::size_t c = cap.connect(40030);
        // 5 bytes (not even "-----BEGIN "), then the rest.
        REQUIRE(cap.send_split(c, true, as_bytes(s.client_pem), {5, 173}) == Frames{4, 5});
        // Split inside the END line.
        REQUIRE(cap.send_split(c, false, as_bytes(s.server_pem), {170, 8}) == Frames{6, 7});
        // 100 characters are no token's length; then one character, "g", then the rest.
        REQUIRE(cap.send_split(c, true, as_bytes(request), {100, 104}) == Frames{8, 9});
        REQUIRE(cap.send_split(c, false, as_bytes(reply), {1, 139}) == Frames{10, 11});
        cap.close(c);
        cap.finish();

        auto rows = slmp_rows(cap.path(),
                              {"slmp.unit", "slmp.pem.length", "slmp.fernet.length", "slmp.der", "slmp.session_id",
                               "slmp.hmac_status", "slmp.user", "slmp.message", "slmp.plaintext", "slmp.request_in"},
                              with_keys);
        const std::map<std::uint64_t, Row> want = {
            {5, {"1", "178", "", hex(s.client_der), s.sid, "", "", "", "", ""}},
            {7, {"2", "178", "", hex(s.server_der), s.sid, "", "", "", "", "5"}},
            {9,
             {"3", "", "204", "", s.sid, "1", "user1", "split over segments",
              auth_token("user1", kSecret) + ";user1;split over segments", ""}},
            {11, {"4", "", "140", "", s.sid, "1", "", "", "Message received: split over segments", "9"}},
        };
        CHECK(rows == want);
        auto e = experts(cap.path(), with_keys);
        CHECK(e == std::map<std::string, Frames>{{"slmp.token_forgeable", {9}}});
    }

    SECTION("a PEM without its final newline is whole where the segment ends") {
        Capture cap(dir / "nonl.pcap", now);
        std::size_t c = cap.connect(40031);
        const std::string pem = s.client_pem.substr(0, s.client_pem.size() - 1);
        REQUIRE(cap.send(c, true, pem) == 4);
        REQUIRE(cap.send(c, false, s.server_pem) == 5);
        cap.finish();
        auto rows = slmp_rows(cap.path(), {"slmp.unit", "slmp.pem.length", "slmp.der", "slmp.session_id"});
        CHECK(rows.at(4) == Row{"1", "177", hex(s.client_der), s.sid});
        CHECK(rows.at(5) == Row{"2", "178", hex(s.server_der), s.sid});
        CHECK(experts(cap.path()).empty());
    }

    SECTION("two unpadded tokens in one segment are two units") {
        const std::string first = s.request("user1", "first of two!", now, rng);
        const std::string second = s.request("user1", "second of two", now, rng);
        REQUIRE(first.size() == 204);
        REQUIRE(second.size() == 204);
        REQUIRE(first.back() != '=');
        Capture cap(dir / "two.pcap", now);
        std::size_t c = cap.connect(40032);
        REQUIRE(cap.send(c, true, s.client_pem) == 4);
        REQUIRE(cap.send(c, false, s.server_pem) == 5);
        REQUIRE(cap.send(c, true, first + second) == 6);
        REQUIRE(cap.send(c, false, s.reply("first of two!", now, rng)) == 7);
        cap.finish();
        auto rows = slmp_rows(cap.path(), {"slmp.unit", "slmp.fernet.length", "slmp.hmac_status", "slmp.message"},
                              with_keys);
        CHECK(rows.at(6) == Row{"3,3", "204,204", "1,1", "first of two!,second of two"});
        auto e = experts(cap.path(), with_keys);
        // The client's second token is its third unit.
        CHECK(e.at("slmp.unexpected_unit") == Frames{6});
        CHECK(e.at("slmp.token_forgeable") == Frames{6});
    }
}

TEST_CASE("SLMP: a unit with no end within 64 KiB is shown as malformed rather than waited for",
          "[dissector][slmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Capture cap(dir / "endless.pcap", now_seconds());
    std::size_t c = cap.connect(40040);
    // "gAAAAA" and then base64 characters: 1000 per segment, a length no
    // token has (a token's is 12 mod 64, 1000k mod 64 is a multiple of 8).
    std::string stream = "gAAAAA" + std::string(66000 - 6, 'Q');
    std::vector<std::size_t> sizes(66, 1000);
    Frames segments = cap.send_split(c, true, as_bytes(stream), sizes);
    REQUIRE(segments.front() == 4);
    REQUIRE(segments.back() == 69);
    cap.finish();

    // The 66th segment takes the run past 65536 bytes.
    auto e = experts(cap.path());
    CHECK(e.at("slmp.unit_incomplete") == Frames{69});
    CHECK(e.at("slmp.over_recv_limit") == Frames{69});
    CHECK(e.at("slmp.malformed_token") == Frames{69});
    CHECK(frames_where(cap.path(), "slmp") == Frames{69});
    CHECK(frames_where(cap.path(), "slmp.fernet.length == 66000") == Frames{69});
    CHECK(frames_where(cap.path(), kException).empty());
}

// ---------------------------------------------------------------------------
// 4. Bad input: never a crash, always an expert info.

TEST_CASE("SLMP: junk, malformed keys and tokens, bad plaintexts: expert infos, no exception",
          "[dissector][slmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(606);
    const std::uint64_t now = now_seconds();
    Capture cap(dir / "bad.pcap", now);

    // Binary junk (frames 4, 5).
    Bytes junk = rng.bytes(300);
    junk[0] = 0x00;
    std::size_t a = cap.connect(40050);  // 1-3
    REQUIRE(cap.send(a, true, junk) == 4);
    Bytes junk2 = rng.bytes(50);
    junk2[0] = 0x01;
    REQUIRE(cap.send(a, false, junk2) == 5);
    cap.close(a);  // 6, 7

    // A PEM whose body is not base64 (frame 11), then a token of no token's
    // length followed by a line break (frame 12).
    std::size_t b = cap.connect(40051);  // 8-10
    REQUIRE(cap.send(b, true, "-----BEGIN PUBLIC KEY-----\nMFkw@@@@\n-----END PUBLIC KEY-----\n") == 11);
    REQUIRE(cap.send(b, true, "gAAAAAQQQQQQQQ\n") == 12);
    cap.close(b);  // 13, 14

    // Keys that are not P-256: a P-384 SPKI (frame 18) and a P-256 point off
    // the curve (frame 19, the server's).
    KeyPair good = KeyPair::generate(rng);
    Bytes p384 = unhex("3076301006072a8648ce3d020106052b81040022036200");
    Bytes point = rng.bytes(97);
    point[0] = 0x04;
    p384.insert(p384.end(), point.begin(), point.end());
    REQUIRE(p384.size() == 120);
    auto pem_of = [](ByteView der) {
        std::string b64 = crypto::base64_encode(der), out = "-----BEGIN PUBLIC KEY-----\n";
        for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
        return out + "-----END PUBLIC KEY-----\n";
    };
    Bytes off_curve = good.der;
    off_curve.back() ^= 0x01;
    REQUIRE_FALSE(crypto::P256PublicKey::from_spki_der(off_curve));
    std::size_t c = cap.connect(40052);  // 15-17
    REQUIRE(cap.send(c, true, pem_of(p384)) == 18);
    REQUIRE(cap.send(c, false, pem_of(off_curve)) == 19);
    cap.close(c);  // 20, 21

    // A keyed session (keys in frames 25, 26) with bad tokens: two fields
    // (27), a user that is not UTF-8 (28), a version that is not 0x80 (29), a
    // request over 1024 bytes (30).
    KeyPair client = KeyPair::generate(rng), server = KeyPair::generate(rng);
    Session s(client, server);
    std::string wrong_version = s.seal("x;y;z", now, rng);
    REQUIRE(wrong_version.substr(0, 2) == "gA");
    wrong_version[1] = 'Q';  // 0x80 -> 0x81
    const std::string long_message(800, 'm');
    const std::string long_request = s.request("amir", long_message, now, rng);
    REQUIRE(long_request.size() > 1024);
    std::size_t d = cap.connect(40053);  // 22-24
    REQUIRE(cap.send(d, true, s.client_pem) == 25);
    REQUIRE(cap.send(d, false, s.server_pem) == 26);
    REQUIRE(cap.send(d, true, s.seal("only;two", now, rng)) == 27);
    REQUIRE(cap.send(d, true, s.seal(auth_token("amir", kSecret) + ";am\xffir;hi", now, rng)) == 28);
    REQUIRE(cap.send(d, true, wrong_version) == 29);
    REQUIRE(cap.send(d, true, long_request) == 30);
    cap.close(d);  // 31, 32
    cap.finish();
    write_keylog(dir / "keys.log", {&s});

    auto e = experts(cap.path(), keylog_args(dir / "keys.log"));
    CHECK(e.at("slmp.not_slmp") == Frames{4, 5});
    CHECK(e.at("slmp.malformed_pem") == Frames{11});
    CHECK(e.at("slmp.malformed_token") == Frames{12, 29});
    CHECK(e.at("slmp.not_p256") == Frames{18, 19});
    CHECK(e.at("slmp.field_count") == Frames{27});
    CHECK(e.at("slmp.not_utf8") == Frames{28});
    CHECK(e.at("slmp.over_recv_limit") == Frames{30});
    // A client's third and later units break the protocol's order.
    CHECK(e.at("slmp.unexpected_unit") == Frames{28, 29, 30});
    // The token is amir's, the user is not: no longer derived from the secret.
    CHECK(e.at("slmp.token_not_from_secret") == Frames{28});
    CHECK(e.at("slmp.token_forgeable") == Frames{30});
    CHECK(e.count("slmp.hmac_mismatch") == 0);
    CHECK(frames_where(cap.path(), kException, keylog_args(dir / "keys.log")).empty());

    auto rows = slmp_rows(cap.path(),
                          {"slmp.unit", "slmp.key.curve", "slmp.key.curve_name", "slmp.fernet.version",
                           "slmp.hmac_status", "slmp.message"},
                          keylog_args(dir / "keys.log"));
    CHECK(rows.at(18) == Row{"1", "1.3.132.0.34", "secp384r1", "", "", ""});
    CHECK(rows.at(19) == Row{"2", "1.2.840.10045.3.1.7", "P-256 (secp256r1)", "", "", ""});
    CHECK(rows.at(27) == Row{"3", "", "", "0x80", "1", ""});
    CHECK(rows.at(29) == Row{"3", "", "", "0x81", "0", ""});
    CHECK(rows.at(30) == Row{"3", "", "", "0x80", "1", long_message});
    CHECK(rows.at(4)[0] == "0");

    SECTION("random streams in random segments: tshark exits cleanly, no exception in any frame") {
        ReadableTempDir fdir;
        Capture fuzz(fdir / "fuzz.pcap", now);
        const std::vector<std::string> pieces = {"-----BEGIN PUBLIC KEY-----\n",
                                                 "-----END PUBLIC KEY-----",
                                                 "\n",
                                                 "gAAAAA",
                                                 "=",
                                                 "==",
                                                 "-",
                                                 "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
                                                 s.client_pem,
                                                 s.seal("a;b;c", now, rng)};
        for (int conn = 0; conn < 20; ++conn) {
            std::size_t k = fuzz.connect(static_cast<std::uint16_t>(41000 + conn));
            std::string stream;
            while (stream.size() < 600) {
                if (rng.below(3) == 0) {
                    Bytes r = rng.bytes(1 + rng.below(40));
                    stream.append(r.begin(), r.end());
                } else {
                    stream += pieces[rng.below(pieces.size())];
                }
            }
            std::vector<std::size_t> sizes;
            for (std::size_t left = stream.size(); left > 0;) {
                std::size_t n = std::min<std::size_t>(left, 1 + rng.below(120));
                sizes.push_back(n);
                left -= n;
            }
            fuzz.send_split(k, conn % 2 == 0, as_bytes(stream), sizes);
            fuzz.close(k);
        }
        fuzz.finish();
        TsharkResult r = run_tshark(
            {"-r", fuzz.path().string(), "-2", "-V", "-o", "slmp.keylog_file:" + (dir / "keys.log").string()});
        INFO("tshark stderr: " << r.errors);
        CHECK(r.exit_code == 0);
        CHECK(r.errors.find("Dissector bug") == std::string::npos);
        CHECK(frames_where(fuzz.path(), kException).empty());
        CHECK_FALSE(frames_where(fuzz.path(), "slmp").empty());
    }
}

// ---------------------------------------------------------------------------
// 5. Port 9999, the heuristic elsewhere, Decode As.

TEST_CASE("SLMP: port 9999, the heuristic on port 7777, and Decode As when the heuristic is off", "[dissector][slmp]") {
    REQUIRE_TSHARK();
    NormalCapture on9999(607), on7777(607, 7777);
    const std::vector<std::string> off = {"--disable-heuristic", "slmp_tcp"};
    std::vector<std::string> off_decode_as = off;
    off_decode_as.insert(off_decode_as.end(), {"-d", "tcp.port==7777,slmp"});

    CHECK(frames_where(on9999.cap.path(), "slmp") == Frames{4, 5, 6, 7});
    CHECK(frames_where(on7777.cap.path(), "slmp") == Frames{4, 5, 6, 7});
    CHECK(frames_where(on9999.cap.path(), "slmp", off) == Frames{4, 5, 6, 7});
    CHECK(frames_where(on7777.cap.path(), "slmp", off).empty());
    CHECK(frames_where(on7777.cap.path(), "slmp", off_decode_as) == Frames{4, 5, 6, 7});
    // The port preference, like Decode As.
    std::vector<std::string> off_port = off;
    off_port.insert(off_port.end(), {"-o", "slmp.tcp.port:7777"});
    CHECK(frames_where(on7777.cap.path(), "slmp", off_port) == Frames{4, 5, 6, 7});
    CHECK(frames_where(on7777.cap.path(), "secmsg").empty());

    // The heuristic's decode is a full one.
    std::vector<std::string> with_keys = keylog_args(on7777.keylog);
    auto rows = slmp_rows(on7777.cap.path(), {"slmp.unit", "tcp.dstport", "slmp.message"}, with_keys);
    const std::map<std::uint64_t, Row> want = {
        {4, {"1", "7777", ""}}, {5, {"2", "40000", ""}}, {6, {"3", "7777", on7777.message}}, {7, {"4", "40000", ""}}};
    CHECK(rows == want);
    with_keys.insert(with_keys.end(), off_decode_as.begin(), off_decode_as.end());
    CHECK(slmp_rows(on7777.cap.path(), {"slmp.unit", "tcp.dstport", "slmp.message"}, with_keys) == want);
}
