// msglab.so's SP-SimpleChat dissector through tshark: the original programs'
// capture decoded in place (every type, the BACKDOOR trigger, both file
// transfers decrypted back to the file FILE_START describes), and synthetic
// connections built here, files sealed with the core's HKDF and AES-EAX as
// the original's file_transfer.py does, written as pcaps with synthetic TCP.
// Every check names exact frames and values.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <iterator>
#include <map>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "support.hpp"
#include "tshark_support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

constexpr std::uint16_t kSpchatPort = 9000;
// A dissector exception or bug in a frame. (_ws.malformed alone also matches
// every expert info of the Malformed group.)
constexpr const char* kException = "_ws.malformed.expert || _ws.malformed.dissector_bug || _ws.short";
// The file in the original capture, as both FILE_STARTs describe it.
constexpr const char* kOriginalSha256 = "545a6578cf5110b4332640acea6330c6e44d73bb6514be1d04f377034c47f780";
constexpr std::size_t kChunkSize = 32768;  // plaintext bytes per FILE_CHUNK (section 2.4)

// Every SP-SimpleChat expert info the plugin registers.
const std::vector<std::string> kExperts = {
    "spchat.malformed_json", "spchat.oversized_length", "spchat.magic_trigger",
    "spchat.from_mismatch",  "spchat.zero_key",         "spchat.tag_mismatch",
    "spchat.unknown_type",   "spchat.bad_file_field",   "spchat.no_file_start",
};

using Json = nlohmann::ordered_json;  // "type" first, as the original writes it

// The SP-SimpleChat frames' rows (the filter "spchat"), keyed by frame number.
std::map<std::uint64_t, Row> spchat_rows(const fs::path& pcap, const std::vector<std::string>& names,
                                         const std::vector<std::string>& extra = {}) {
    return rows_by_frame(pcap, names, extra, "spchat");
}

std::map<std::string, Frames> experts(const fs::path& pcap, const std::vector<std::string>& extra = {}) {
    return experts_by_name(pcap, kExperts, extra);
}

// BE32 length || the JSON text (section 2.2).
Bytes frame_of_text(std::string_view json) {
    Bytes out;
    const auto n = static_cast<std::uint32_t>(json.size());
    out.push_back(static_cast<std::uint8_t>(n >> 24));
    out.push_back(static_cast<std::uint8_t>(n >> 16));
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n));
    out.insert(out.end(), json.begin(), json.end());
    return out;
}
Bytes frame_of(const Json& j) {
    return frame_of_text(j.dump());
}

std::string b64url(ByteView b) {
    return crypto::base64_encode(b, crypto::Base64Alphabet::url, false);
}

// One file sent as file_transfer.py sends it: the key from the all-zero
// session key and the file nonce, each chunk sealed with AES-256-EAX under a
// fresh 16-byte nonce.
struct FileTransfer {
    std::string id;
    Bytes content;
    Bytes file_nonce;
    Bytes file_key;
    DeterministicRng rng;

    FileTransfer(std::string file_id, Bytes data, std::uint64_t seed)
        : id(std::move(file_id)), content(std::move(data)), rng(seed) {
        file_nonce = rng.bytes(16);
        file_key = crypto::hkdf_sha256(Bytes(32, 0x00), file_nonce, as_bytes("file-key"), 32);
    }

    static Json envelope(const char* type, std::string_view from, std::string_view to, Json payload) {
        Json j;
        j["type"] = type;
        j["from"] = from;
        j["to"] = to;
        j["ts"] = 1795272104902ULL;
        j["payload"] = std::move(payload);
        j["sig"] = "";
        return j;
    }

    Json start(std::string_view from, std::string_view to) const {
        Json p;
        p["file_id"] = id;
        p["name"] = "notes.bin";
        p["size"] = content.size();
        p["sha256"] = hex(crypto::sha256(content));
        p["mode"] = "dm";
        p["aead"] = "AES-256-EAX";
        p["kdf"] = "HKDF-SHA256";
        p["file_nonce_b64"] = b64url(file_nonce);
        return envelope("FILE_START", from, to, std::move(p));
    }

    // Chunk `index`; `tamper` edits the sealed bytes (ciphertext || tag).
    Json chunk(std::string_view from, std::string_view to, std::size_t index,
               const std::function<void(Bytes&)>& tamper = {}) {
        const std::size_t at = index * kChunkSize;
        const ByteView plain = ByteView(content).subspan(at, std::min(kChunkSize, content.size() - at));
        const Bytes nonce = rng.bytes(16);
        Bytes sealed = crypto::aes_eax_encrypt(file_key, nonce, {}, plain);
        if (tamper) tamper(sealed);
        const ByteView all(sealed);
        Json p;
        p["file_id"] = id;
        p["index"] = index;
        p["nonce_b64"] = b64url(nonce);
        p["ciphertext"] = b64url(all.first(all.size() - 16));
        p["tag_b64"] = b64url(all.last(16));
        return envelope("FILE_CHUNK", from, to, std::move(p));
    }

    Json end(std::string_view from, std::string_view to) const {
        return envelope("FILE_END", from, to, Json{{"file_id", id}});
    }
};

Json msg(std::initializer_list<std::pair<const char*, const char*>> members) {
    Json j;
    for (const auto& [k, v] : members) j[k] = v;
    return j;
}

// Connections to 9000 unless told otherwise.
struct Capture : SynthCapture {
    using SynthCapture::SynthCapture;
    std::size_t connect(std::uint16_t client_port, std::uint16_t server_port = kSpchatPort) {
        return SynthCapture::connect(client_port, server_port);
    }
    std::uint64_t send_json(std::size_t conn, bool to_server, const Json& j) {
        return send(conn, to_server, frame_of(j));
    }
};

}  // namespace

// ---------------------------------------------------------------------------
// 1. The original programs' capture.

TEST_CASE("SP-SimpleChat: the original capture decodes in place: every type, fields, Info, the BACKDOOR trigger",
          "[dissector][spchat]") {
    REQUIRE_TSHARK();
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals/spchat.pcap")) MSGLAB_SKIP("no originals/spchat.pcap");
    const fs::path pcap = *dir / "originals/spchat.pcap";

    SECTION("one frame per message, and its type; the 44 KB chunks where their last segment arrives") {
        // Bob connects first (stream 0, port 56326), then Alice (stream 1).
        // Each FILE_CHUNK #0 of the DM spans two segments (42+44, 46+48).
        const std::map<std::uint64_t, std::string> types = {
            {4, "HELLO"},       {6, "INFO"},        {11, "HELLO"},      {13, "INFO"},       {15, "JOIN"},
            {16, "INFO"},       {18, "JOIN"},       {19, "INFO"},       {21, "MSG"},        {23, "MSG"},
            {24, "MSG"},        {27, "WHO"},        {29, "WHO_LIST"},   {31, "WHO"},        {32, "WHO_LIST"},
            {34, "MSG"},        {35, "MSG"},        {38, "FILE_START"}, {39, "FILE_START"}, {44, "FILE_CHUNK"},
            {48, "FILE_CHUNK"}, {50, "FILE_CHUNK"}, {52, "FILE_CHUNK"}, {54, "FILE_END"},   {56, "FILE_END"},
            {58, "FILE_START"}, {60, "FILE_START"}, {62, "FILE_CHUNK"}, {64, "FILE_CHUNK"}, {66, "FILE_CHUNK"},
            {68, "FILE_CHUNK"}, {70, "FILE_END"},   {72, "FILE_END"},   {74, "MSG"},        {76, "MSG"},
            {78, "LEAVE"},      {79, "INFO"},       {81, "MSG"},        {83, "PING"},       {85, "PONG"},
            {87, "PING"},       {88, "PONG"},       {90, "QUIT"},       {91, "INFO"},       {94, "QUIT"},
            {95, "INFO"},
        };
        auto rows = spchat_rows(pcap, {"spchat.type", "spchat.length", "tcp.len", "tcp.reassembled.length"});
        std::map<std::uint64_t, std::string> got;
        for (const auto& [f, r] : rows) got[f] = r[0];
        CHECK(got == types);
        for (const char* t : {"HELLO", "INFO", "JOIN", "MSG", "WHO", "WHO_LIST", "FILE_START", "FILE_CHUNK", "FILE_END",
                              "PING", "PONG", "QUIT", "LEAVE"}) {
            INFO(t);
            CHECK(std::any_of(types.begin(), types.end(), [&](const auto& kv) { return kv.second == t; }));
        }
        // Every payload-carrying segment is SP-SimpleChat: a frame, or the
        // first segment of one.
        Frames segments = frames_where(pcap, "tcp.len != 0");
        Frames framed = frames_where(pcap, "spchat");
        Frames first_halves;
        std::set_difference(segments.begin(), segments.end(), framed.begin(), framed.end(),
                            std::back_inserter(first_halves));
        CHECK(first_halves == Frames{42, 46});
        // Length prefix + JSON = the segment, or the two reassembled.
        CHECK(rows.at(4) == Row{"HELLO", "32", "36", ""});
        CHECK(rows.at(44) == Row{"FILE_CHUNK", "43945", "11181", "43949"});
        CHECK(rows.at(62) == Row{"FILE_CHUNK", "43947", "43951", ""});
    }

    SECTION("fields of each message type") {
        auto rows = spchat_rows(pcap, {"spchat.nick", "spchat.room", "spchat.text", "spchat.members", "spchat.from",
                                       "spchat.to", "spchat.ts", "spchat.sig", "spchat.registered_nick"});
        CHECK(rows.at(4) == Row{"Bob", "", "", "", "", "", "", "", ""});
        CHECK(rows.at(6) == Row{"", "", "hello bob", "", "", "", "", "", ""});
        // After HELLO the connection's nick is the lowered one.
        CHECK(rows.at(15) == Row{"", "room1", "", "", "", "", "", "", "bob"});
        CHECK(rows.at(23) == Row{"", "room1", "hello bob", "", "", "", "", "", "alice"});
        CHECK(rows.at(24) == Row{"alice", "room1", "hello bob", "", "", "", "", "", ""});
        CHECK(rows.at(29) == Row{"", "room1", "", "alice,bob", "", "", "", "", ""});
        CHECK(rows.at(38) == Row{"", "", "", "", "Alice", "bob", "1795272104902", "", "alice"});
        CHECK(rows.at(39) == Row{"", "", "", "", "Alice", "bob", "1795272104902", "", ""});
        CHECK(rows.at(58) == Row{"", "", "", "", "Alice", "room1", "1795272107904", "", "alice"});

        auto files = spchat_rows(
            pcap, {"spchat.file.id", "spchat.file.name", "spchat.file.size", "spchat.file.sha256", "spchat.file.mode",
                   "spchat.file.aead", "spchat.file.kdf", "spchat.file.file_nonce", "spchat.file.index",
                   "spchat.file.nonce", "spchat.file.ciphertext_length", "spchat.file.tag"});
        const std::string dm = "d11e47b5-1a3b-4f7c-a919-8585cde8fc18", room = "bc2cd367-38f0-4ba0-8db7-10be810890f8";
        // file_nonce_b64 "U_eAwu5CDNnLZd2lB6PLOA" and "eQPq7sCtCtvqX8BfGXQL8w".
        const std::string dm_nonce = "53f780c2ee420cd9cb65dda507a3cb38";
        const std::string room_nonce =
            hex(*crypto::base64_decode("eQPq7sCtCtvqX8BfGXQL8w", crypto::Base64Alphabet::url));
        for (std::uint64_t f : {38, 39})
            CHECK(files.at(f) == Row{dm, "testfile.bin", "40000", kOriginalSha256, "dm", "AES-256-EAX", "HKDF-SHA256",
                                     dm_nonce, "", "", "", ""});
        for (std::uint64_t f : {58, 60})
            CHECK(files.at(f) == Row{room, "testfile.bin", "40000", kOriginalSha256, "public", "AES-256-EAX",
                                     "HKDF-SHA256", room_nonce, "", "", "", ""});
        // Chunk 0 ("nonce_b64": "Yv_2LdBDlcqTOfUhyK9afg", "tag_b64": "KIg2fBytuX6KcXeE7GlOfg").
        CHECK(files.at(44) == Row{dm, "", "", "", "", "", "", "", "0", "62fff62dd04395ca9339f521c8af5a7e", "32768",
                                  "2888367c1cadb97e8a717784ec694e7e"});
        CHECK(files.at(50)[8] == "1");
        CHECK(files.at(50)[10] == "7232");
        CHECK(files.at(54) == Row{dm, "", "", "", "", "", "", "", "", "", "", ""});
    }

    SECTION("the Info column") {
        auto info = spchat_rows(pcap, {"_ws.col.Info"});
        CHECK(info.at(4)[0] == "HELLO nick=Bob");
        CHECK(info.at(15)[0] == "JOIN room=room1");
        CHECK(info.at(23)[0] == "MSG room1 hello bob");
        CHECK(info.at(24)[0] == "MSG room1 <alice> hello bob");
        CHECK(info.at(27)[0] == "WHO room=room1");
        CHECK(info.at(29)[0] == "WHO_LIST room1 [alice, bob]");
        CHECK(info.at(38)[0] == "FILE_START testfile.bin (40000 bytes) Alice -> bob, d11e47b5...");
        CHECK(info.at(44)[0] == "FILE_CHUNK #0 of d11e47b5...");
        CHECK(info.at(66)[0] == "FILE_CHUNK #1 of bc2cd367...");
        CHECK(info.at(70)[0] == "FILE_END of bc2cd367...");
        CHECK(info.at(76)[0] == "MSG room1 <server> You found the secret backdoor!");
        CHECK(info.at(83)[0] == "PING");
        CHECK(info.at(91)[0] == "INFO Goodbye!");
    }

    SECTION("expert infos: the trigger and its reply, the zero key on every START and chunk, nothing else") {
        auto e = experts(pcap);
        const std::map<std::string, Frames> want = {
            {"spchat.magic_trigger", {74, 76}},
            {"spchat.zero_key", {38, 39, 44, 48, 50, 52, 58, 60, 62, 64, 66, 68}},
        };
        CHECK(e == want);
        CHECK(frames_where(pcap, kException).empty());
    }

    SECTION("one pass and two passes agree on every field and expert info") {
        std::vector<std::string> names = {"frame.number",       "spchat.type",          "spchat.registered_nick",
                                          "spchat.file.status", "spchat.file.start_in", "spchat.file.plaintext_length",
                                          "_ws.col.Info"};
        names.insert(names.end(), kExperts.begin(), kExperts.end());
        std::vector<std::string> args = {"-r", pcap.string(), "-T", "fields", "-Y", "spchat"};
        for (const auto& n : names) args.insert(args.end(), {"-e", n});
        TsharkResult one = run_tshark(args);
        args.insert(args.begin() + 2, "-2");
        TsharkResult two = run_tshark(args);
        INFO("stderr: " << one.errors << two.errors);
        REQUIRE(one.exit_code == 0);
        REQUIRE(two.exit_code == 0);
        CHECK(one.lines.size() == 46);
        CHECK(one.lines == two.lines);
    }

    SECTION("both transfers decrypt, on both connections, to the 40,000-byte file FILE_START names") {
        auto rows = fields(pcap,
                           {"tcp.stream", "spchat.file.id", "spchat.file.index", "spchat.file.plaintext",
                            "spchat.file.plaintext_length", "spchat.file.status", "spchat.file.start_in"},
                           {}, "spchat.file.plaintext");
        // (stream, file id) -> index -> plaintext
        std::map<std::pair<std::string, std::string>, std::map<int, Bytes>> files;
        std::map<std::pair<std::string, std::string>, std::vector<std::string>> starts;
        for (const auto& r : rows) {
            Bytes plain = unhex(r[3]);
            CHECK(std::to_string(plain.size()) == r[4]);
            CHECK(r[5] == "1");
            files[{r[0], r[1]}][std::stoi(r[2])] = plain;
            starts[{r[0], r[1]}].push_back(r[6]);
        }
        REQUIRE(rows.size() == 8);
        REQUIRE(files.size() == 4);
        for (const auto& [key, chunks] : files) {
            INFO("stream " << key.first << ", file " << key.second);
            REQUIRE(chunks.size() == 2);
            Bytes whole;
            for (const auto& [index, plain] : chunks) whole.insert(whole.end(), plain.begin(), plain.end());
            CHECK(chunks.at(0).size() == kChunkSize);
            CHECK(whole.size() == 40000);
            CHECK(hex(crypto::sha256(whole)) == kOriginalSha256);
        }
        // The key of each connection's chunks came from that connection's FILE_START.
        using Key = std::pair<std::string, std::string>;
        const std::string dm = "d11e47b5-1a3b-4f7c-a919-8585cde8fc18", room = "bc2cd367-38f0-4ba0-8db7-10be810890f8";
        CHECK(starts.at(Key{"1", dm}) == std::vector<std::string>{"38", "38"});
        CHECK(starts.at(Key{"0", dm}) == std::vector<std::string>{"39", "39"});
        CHECK(starts.at(Key{"1", room}) == std::vector<std::string>{"58", "58"});
        CHECK(starts.at(Key{"0", room}) == std::vector<std::string>{"60", "60"});
        // The derivation anyone can redo: HKDF over 32 zero bytes and the nonce.
        auto keys = spchat_rows(pcap, {"spchat.file.key"});
        const Bytes nonce = *crypto::base64_decode("U_eAwu5CDNnLZd2lB6PLOA", crypto::Base64Alphabet::url);
        const std::string key = hex(crypto::hkdf_sha256(Bytes(32, 0x00), nonce, as_bytes("file-key"), 32));
        for (std::uint64_t f : {38, 39, 44, 48, 50, 52}) CHECK(keys.at(f)[0] == key);
    }
}

// ---------------------------------------------------------------------------
// 2. Reassembly.

TEST_CASE("SP-SimpleChat: frames split across many segments, and several frames in one segment, are reassembled",
          "[dissector][spchat]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(701);
    FileTransfer file("5f0c1d2e-0000-4000-8000-00000000a001", rng.bytes(kChunkSize + 100), 702);
    Capture cap(dir / "split.pcap", now_seconds());
    std::size_t c = cap.connect(40100);

    // HELLO in three segments: two bytes of the length, the rest of it and
    // the '{', the rest.
    const Bytes hello = frame_of(msg({{"type", "HELLO"}, {"nick", "Alice"}}));
    REQUIRE(cap.send_split(c, true, hello, {2, 3, hello.size() - 5}) == Frames{4, 5, 6});
    REQUIRE(cap.send_json(c, true, file.start("alice", "bob")) == 7);
    // Chunk 0 (about 44 KB of JSON) in 1000-byte segments; the last segment
    // also carries FILE_END whole and three bytes of a PING.
    const Bytes chunk = frame_of(file.chunk("alice", "bob", 0));
    REQUIRE(chunk.size() > 43000);
    Bytes stream = chunk;
    const Bytes end = frame_of(file.end("alice", "bob"));
    const Bytes ping = frame_of(msg({{"type", "PING"}}));
    stream.insert(stream.end(), end.begin(), end.end());
    stream.insert(stream.end(), ping.begin(), ping.begin() + 3);
    std::vector<std::size_t> sizes(chunk.size() / 1000, 1000);
    sizes.push_back(stream.size() - 1000 * sizes.size());
    const Frames segments = cap.send_split(c, true, stream, sizes);
    REQUIRE(segments.size() > 40);
    const std::uint64_t last = segments.back();
    REQUIRE(cap.send(c, true, ByteView(ping).subspan(3)) == last + 1);
    REQUIRE(cap.send_json(c, false, msg({{"type", "PONG"}})) == last + 2);
    cap.close(c);
    cap.finish();

    CHECK(frames_where(cap.path(), "spchat") == Frames{6, 7, last, last + 1, last + 2});
    auto rows = spchat_rows(cap.path(), {"spchat.type", "spchat.nick", "spchat.file.index", "spchat.file.plaintext",
                                         "spchat.file.plaintext_length", "spchat.file.start_in", "_ws.col.Info"});
    const std::string plain = hex(ByteView(file.content).first(kChunkSize));
    const std::map<std::uint64_t, Row> want = {
        {6, {"HELLO", "Alice", "", "", "", "", "HELLO nick=Alice"}},
        {7, {"FILE_START", "", "", "", "", "", "FILE_START notes.bin (32868 bytes) alice -> bob, 5f0c1d2e..."}},
        {last,
         {"FILE_CHUNK,FILE_END", "", "0", plain, "32768", "7",
          "FILE_CHUNK #0 of 5f0c1d2e..., FILE_END of 5f0c1d2e..."}},
        {last + 1, {"PING", "", "", "", "", "", "PING"}},
        {last + 2, {"PONG", "", "", "", "", "", "PONG"}},
    };
    CHECK(rows == want);
    CHECK(experts(cap.path()) == std::map<std::string, Frames>{{"spchat.zero_key", {7, last}}});
    CHECK(frames_where(cap.path(), kException).empty());
}

TEST_CASE("SP-SimpleChat: a length prefix over 16 MiB is flagged, not reassembled, and ends that direction's framing",
          "[dissector][spchat][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Capture cap(dir / "oversized.pcap", now_seconds());
    std::size_t c = cap.connect(40110);
    REQUIRE(cap.send_json(c, true, msg({{"type", "HELLO"}, {"nick", "alice"}})) == 4);
    REQUIRE(cap.send_json(c, false, msg({{"type", "INFO"}, {"text", "hello alice"}})) == 5);
    // 1 GiB announced, 100 bytes sent: the original would keep reading.
    Bytes huge = {0x40, 0x00, 0x00, 0x00};
    const std::string start = "{\"type\": \"MSG\", \"text\": \"" + std::string(74, 'x');
    huge.insert(huge.end(), start.begin(), start.end());
    REQUIRE(cap.send(c, true, huge) == 6);
    // What follows in that direction has no framing left; the other side's does.
    REQUIRE(cap.send_json(c, true, msg({{"type", "PING"}})) == 7);
    REQUIRE(cap.send_json(c, false, msg({{"type", "PONG"}})) == 8);
    // Exactly the bound is a length like any other (the frame never completes).
    std::size_t d = cap.connect(40111);  // 9-11
    Bytes bound = {0x01, 0x00, 0x00, 0x00, '{'};
    REQUIRE(cap.send(d, true, bound) == 12);
    cap.finish();

    auto e = experts(cap.path());
    CHECK(e == std::map<std::string, Frames>{{"spchat.oversized_length", {6}}});
    CHECK(frames_where(cap.path(), "spchat.type") == Frames{4, 5, 8});
    CHECK(frames_where(cap.path(), "spchat.data") == Frames{6, 7});
    CHECK(frames_where(cap.path(), "spchat.length == 1073741824") == Frames{6});
    auto info = spchat_rows(cap.path(), {"_ws.col.Info"});
    CHECK(info.at(6)[0] == "Oversized length 1073741824");
    CHECK(info.at(7)[0] == "Data after an oversized length prefix");
    CHECK(frames_where(cap.path(), kException).empty());
}

// ---------------------------------------------------------------------------
// 3. Expert infos on synthetic connections.

TEST_CASE("SP-SimpleChat: a FILE_* from another nick than the connection's HELLO is flagged, client to server only",
          "[dissector][spchat][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(711);
    FileTransfer file("7a7a7a7a-1111-4222-8333-444455556666", rng.bytes(1000), 712);
    Capture cap(dir / "from.pcap", now_seconds());

    std::size_t a = cap.connect(40120);  // 1-3
    // nick = strip().lower(): " ALICE " is alice.
    REQUIRE(cap.send_json(a, true, msg({{"type", "HELLO"}, {"nick", " Alice "}})) == 4);
    REQUIRE(cap.send_json(a, true, file.start(" ALICE", "bob")) == 5);
    REQUIRE(cap.send_json(a, true, file.start("mallory", "bob")) == 6);
    // A second HELLO adds a nick; the first stays bound (section 2.3).
    REQUIRE(cap.send_json(a, true, msg({{"type", "HELLO"}, {"nick", "eve"}})) == 7);
    REQUIRE(cap.send_json(a, true, file.chunk("Eve", "bob", 0)) == 8);
    REQUIRE(cap.send_json(a, true, file.end("alice", "bob")) == 9);
    REQUIRE(cap.send_json(a, true, file.end("mallory", "bob")) == 10);
    cap.close(a);  // 11, 12

    // The server relays a spoofed frame to bob: nothing to compare on that side.
    std::size_t b = cap.connect(40121);  // 13-15
    REQUIRE(cap.send_json(b, true, msg({{"type", "HELLO"}, {"nick", "bob"}})) == 16);
    REQUIRE(cap.send_json(b, false, file.start("mallory", "bob")) == 17);
    cap.close(b);  // 18, 19

    // No HELLO on the connection: nothing to compare either.
    std::size_t c = cap.connect(40122);  // 20-22
    REQUIRE(cap.send_json(c, true, file.start("mallory", "bob")) == 23);

    // The server's data first (a capture started late): port 9000 tells the sides.
    std::size_t d = cap.connect(40123);  // 24-26
    REQUIRE(cap.send_json(d, false, msg({{"type", "INFO"}, {"text", "hello carol"}})) == 27);
    REQUIRE(cap.send_json(d, true, msg({{"type", "HELLO"}, {"nick", "carol"}})) == 28);
    REQUIRE(cap.send_json(d, true, file.end("mallory", "bob")) == 29);
    cap.finish();

    auto e = experts(cap.path());
    CHECK(e.at("spchat.from_mismatch") == Frames{6, 10, 29});
    CHECK(e.count("spchat.malformed_json") == 0);
    auto rows = spchat_rows(cap.path(), {"spchat.type", "spchat.from", "spchat.registered_nick"});
    CHECK(rows.at(5) == Row{"FILE_START", " ALICE", "alice"});
    CHECK(rows.at(6) == Row{"FILE_START", "mallory", "alice"});
    CHECK(rows.at(8) == Row{"FILE_CHUNK", "Eve", "eve"});
    CHECK(rows.at(17) == Row{"FILE_START", "mallory", ""});
    CHECK(rows.at(23) == Row{"FILE_START", "mallory", ""});
    CHECK(rows.at(29) == Row{"FILE_END", "mallory", "carol"});
    TsharkResult r = run_tshark({"-r", cap.path().string(), "-q", "-z", "expert"});
    REQUIRE(r.exit_code == 0);
    const bool named = std::any_of(r.lines.begin(), r.lines.end(), [](const std::string& l) {
        return l.find("FILE_END from \"mallory\", but this connection said HELLO as \"alice\", \"eve\"") !=
               std::string::npos;
    });
    CHECK(named);
}

TEST_CASE("SP-SimpleChat: tampered chunks fail the EAX tag, chunks without FILE_START or with bad base64 are noted",
          "[dissector][spchat][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(721);
    FileTransfer file("0badc0de-2222-4333-8444-555566667777", rng.bytes(3 * kChunkSize), 722);
    FileTransfer unknown("feedf00d-3333-4444-8555-666677778888", rng.bytes(100), 723);
    Capture cap(dir / "tamper.pcap", now_seconds());
    std::size_t c = cap.connect(40130);
    REQUIRE(cap.send_json(c, true, msg({{"type", "HELLO"}, {"nick", "alice"}})) == 4);
    REQUIRE(cap.send_json(c, true, file.start("alice", "bob")) == 5);
    REQUIRE(cap.send_json(c, true, file.chunk("alice", "bob", 0)) == 6);
    // A ciphertext bit, then a tag bit.
    REQUIRE(cap.send_json(c, true, file.chunk("alice", "bob", 1, [](Bytes& s) { s[100] ^= 0x01; })) == 7);
    REQUIRE(cap.send_json(c, true, file.chunk("alice", "bob", 2, [](Bytes& s) { s.back() ^= 0x80; })) == 8);
    // A file whose FILE_START the capture does not hold.
    REQUIRE(cap.send_json(c, true, unknown.chunk("alice", "bob", 0)) == 9);
    // A 15-byte tag, and a ciphertext that is not base64url.
    Json short_tag = file.chunk("alice", "bob", 1);
    short_tag["payload"]["tag_b64"] = b64url(Bytes(15, 0x11));
    REQUIRE(cap.send_json(c, true, short_tag) == 10);
    Json bad_b64 = file.chunk("alice", "bob", 1);
    bad_b64["payload"]["ciphertext"] = "not*base64";
    REQUIRE(cap.send_json(c, true, bad_b64) == 11);
    cap.finish();

    auto e = experts(cap.path());
    const std::map<std::string, Frames> want = {
        {"spchat.zero_key", {5, 6}},
        {"spchat.tag_mismatch", {7, 8, 10}},
        {"spchat.no_file_start", {9}},
        {"spchat.bad_file_field", {11}},
    };
    CHECK(e == want);
    auto rows = spchat_rows(cap.path(), {"spchat.file.index", "spchat.file.status", "spchat.file.start_in",
                                         "spchat.file.plaintext_length", "spchat.file.ciphertext_length"});
    CHECK(rows.at(6) == Row{"0", "1", "5", "32768", "32768"});
    CHECK(rows.at(7) == Row{"1", "2", "5", "", "32768"});
    CHECK(rows.at(8) == Row{"2", "2", "5", "", "32768"});
    CHECK(rows.at(9) == Row{"0", "0", "", "", "100"});
    CHECK(rows.at(10) == Row{"1", "2", "5", "", "32768"});
    CHECK(rows.at(11) == Row{"1", "3", "5", "", ""});
    auto info = spchat_rows(cap.path(), {"_ws.col.Info"});
    CHECK(info.at(7)[0] == "FILE_CHUNK #1 of 0badc0de... [tag mismatch]");
    CHECK(frames_where(cap.path(), kException).empty());
}

TEST_CASE("SP-SimpleChat: malformed JSON, unknown types, random streams: expert infos, no exception",
          "[dissector][spchat][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(731);
    Capture cap(dir / "bad.pcap", now_seconds());
    std::size_t c = cap.connect(40140);  // 1-3
    const std::vector<std::string> malformed = {
        R"({"type": "MSG", "text": "hi)",               // 4: unterminated
        R"({"type": "PING"} x)",                        // 5: data after the value
        R"(["PING"])",                                  // 6: not an object
        R"({"type": "PING",})",                         // 7: trailing comma
        "{\"type\": \"MSG\", \"text\": \"\xff\"}",      // 8: not UTF-8
        R"({"type": "MSG", "text": "a\qb"})",           // 9: bad escape
        "",                                             // 10: empty
        std::string(100, '[') + std::string(100, ']'),  // 11: nested too deeply
        R"({"type": "MSG" "text": "x"})",               // 12: no comma
        R"({"type": tru})",                             // 13: bad literal
    };
    std::uint64_t f = 4;
    for (const auto& text : malformed) REQUIRE(cap.send(c, true, frame_of_text(text)) == f++);
    REQUIRE(cap.send_json(c, true, msg({{"type", "NOPE"}})) == 14);
    REQUIRE(cap.send(c, true, frame_of_text(R"({"nick": "x"})")) == 15);
    // The stream stays framed: Python's NaN and a \u escape parse.
    REQUIRE(cap.send(c, true, frame_of_text(R"({"type": "MSG", "room": "r", "text": "caf\u00e9", "x": NaN})")) == 16);
    REQUIRE(cap.send_json(c, true, msg({{"type", "PING"}})) == 17);
    cap.finish();

    auto e = experts(cap.path());
    const std::map<std::string, Frames> want = {
        {"spchat.malformed_json", {4, 5, 6, 7, 8, 9, 10, 11, 12, 13}},
        {"spchat.unknown_type", {14, 15}},
    };
    CHECK(e == want);
    auto rows = spchat_rows(cap.path(), {"spchat.type", "spchat.text", "_ws.col.Info"});
    CHECK(rows.at(4) == Row{"", "", "Malformed JSON"});
    CHECK(rows.at(14) == Row{"NOPE", "", "NOPE"});
    CHECK(rows.at(15) == Row{"", "", "No type"});
    CHECK(rows.at(16) == Row{"MSG", "caf\xc3\xa9", "MSG r caf\xc3\xa9"});
    CHECK(rows.at(17) == Row{"PING", "", "PING"});
    CHECK(frames_where(cap.path(), kException).empty());

    SECTION("random streams in random segments: tshark exits cleanly, no exception in any frame") {
        ReadableTempDir fdir;
        Capture fuzz(fdir / "fuzz.pcap", now_seconds());
        FileTransfer file("f022f022-4444-4555-8666-777788889999", rng.bytes(2000), 732);
        const std::vector<Bytes> pieces = {
            frame_of(msg({{"type", "HELLO"}, {"nick", "alice"}})),
            frame_of(file.start("alice", "bob")),
            frame_of(file.chunk("alice", "bob", 0)),
            frame_of(msg({{"type", "MSG"}, {"text", "backdoor"}})),
            frame_of_text(R"({"type": "FILE_CHUNK", "payload": {"file_id": 7, "ciphertext": [1]}})"),
            frame_of_text(R"({"type": "FILE_START", "payload": "x", "from": null})"),
            frame_of_text(R"({"type": "WHO_LIST", "members": [1, "a", {"b": []}], "ts": -1.5e3})"),
            frame_of_text(R"({"type": "MSG", "text": "\ud800\udc00\udfff\u0000"})"),
            Bytes{0x00, 0x00, 0x00},
            Bytes{'{', '"'},
            Bytes{0xff, 0xff, 0xff, 0xff},
        };
        for (int conn = 0; conn < 20; ++conn) {
            std::size_t k = fuzz.connect(static_cast<std::uint16_t>(41000 + conn));
            Bytes stream;
            while (stream.size() < 3000) {
                if (rng.below(4) == 0) {
                    Bytes r = rng.bytes(1 + rng.below(40));
                    stream.insert(stream.end(), r.begin(), r.end());
                } else {
                    const Bytes& p = pieces[rng.below(pieces.size())];
                    stream.insert(stream.end(), p.begin(), p.end());
                }
            }
            std::vector<std::size_t> sizes;
            for (std::size_t left = stream.size(); left > 0;) {
                std::size_t n = std::min<std::size_t>(left, 1 + rng.below(1500));
                sizes.push_back(n);
                left -= n;
            }
            fuzz.send_split(k, conn % 2 == 0, stream, sizes);
            fuzz.close(k);
        }
        fuzz.finish();
        TsharkResult r = run_tshark({"-r", fuzz.path().string(), "-2", "-V"});
        INFO("tshark stderr: " << r.errors);
        CHECK(r.exit_code == 0);
        CHECK(r.errors.find("Dissector bug") == std::string::npos);
        CHECK(frames_where(fuzz.path(), kException).empty());
        CHECK_FALSE(frames_where(fuzz.path(), "spchat.type").empty());
    }
}

TEST_CASE("SP-SimpleChat: the BACKDOOR trigger after strip() and upper(), and texts that are not it",
          "[dissector][spchat]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Capture cap(dir / "backdoor.pcap", now_seconds());
    std::size_t c = cap.connect(40150);
    REQUIRE(cap.send_json(c, true, msg({{"type", "MSG"}, {"room", "r"}, {"text", " backDoor\n"}})) == 4);
    const Json reply =
        msg({{"type", "MSG"}, {"room", "r"}, {"nick", "server"}, {"text", "You found the secret backdoor!"}});
    REQUIRE(cap.send_json(c, false, reply) == 5);
    REQUIRE(cap.send_json(c, true, msg({{"type", "MSG"}, {"room", "r"}, {"text", "BACKDOORS"}})) == 6);
    REQUIRE(cap.send_json(c, true, msg({{"type", "MSG"}, {"room", "r"}, {"text", "back door"}})) == 7);
    cap.finish();
    CHECK(experts(cap.path()) == std::map<std::string, Frames>{{"spchat.magic_trigger", {4, 5}}});
}

// ---------------------------------------------------------------------------
// 4. Port 9000, the heuristic elsewhere, Decode As.

TEST_CASE("SP-SimpleChat: port 9000, the heuristic on port 7777, and Decode As when the heuristic is off",
          "[dissector][spchat]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    DeterministicRng rng(741);
    FileTransfer file("abcdabcd-5555-4666-8777-88889999aaaa", rng.bytes(500), 742);
    auto session = [&](const std::string& name, std::uint16_t port) {
        auto cap = std::make_unique<Capture>(dir / name, now_seconds());
        std::size_t c = cap->connect(40160, port);
        // The connection's first frame spans two segments.
        const Bytes hello = frame_of(msg({{"type", "HELLO"}, {"nick", "alice"}}));
        REQUIRE(cap->send_split(c, true, hello, {20, hello.size() - 20}) == Frames{4, 5});
        REQUIRE(cap->send_json(c, false, msg({{"type", "INFO"}, {"text", "hello alice"}})) == 6);
        REQUIRE(cap->send_json(c, true, file.start("alice", "bob")) == 7);
        REQUIRE(cap->send_json(c, true, file.chunk("alice", "bob", 0)) == 8);
        cap->close(c);
        cap->finish();
        return cap;
    };
    auto on9000 = session("p9000.pcap", 9000);
    auto on7777 = session("p7777.pcap", 7777);
    // Not SP-SimpleChat: a length and an object without a known type.
    Capture other(dir / "other.pcap", now_seconds());
    std::size_t o = other.connect(40161, 7778);
    other.send(o, true, frame_of_text(R"({"kind": "HELLO", "type": "HELO"})"));
    other.finish();

    const std::vector<std::string> off = {"--disable-heuristic", "spchat_tcp"};
    std::vector<std::string> off_decode_as = off;
    off_decode_as.insert(off_decode_as.end(), {"-d", "tcp.port==7777,spchat"});
    std::vector<std::string> off_port = off;
    off_port.insert(off_port.end(), {"-o", "spchat.tcp.port:7777"});
    const Frames all = {5, 6, 7, 8};

    CHECK(frames_where(on9000->path(), "spchat") == all);
    CHECK(frames_where(on7777->path(), "spchat") == all);
    CHECK(frames_where(on9000->path(), "spchat", off) == all);
    CHECK(frames_where(on7777->path(), "spchat", off).empty());
    CHECK(frames_where(on7777->path(), "spchat", off_decode_as) == all);
    CHECK(frames_where(on7777->path(), "spchat", off_port) == all);
    CHECK(frames_where(other.path(), "spchat").empty());

    // The heuristic's decode is a full one, decryption included.
    auto rows = spchat_rows(on7777->path(), {"spchat.type", "tcp.dstport", "spchat.file.plaintext"});
    const std::map<std::uint64_t, Row> want = {{5, {"HELLO", "7777", ""}},
                                               {6, {"INFO", "40160", ""}},
                                               {7, {"FILE_START", "7777", ""}},
                                               {8, {"FILE_CHUNK", "7777", hex(file.content)}}};
    CHECK(rows == want);
    CHECK(spchat_rows(on7777->path(), {"spchat.type", "tcp.dstport", "spchat.file.plaintext"}, off_decode_as) == want);
}
