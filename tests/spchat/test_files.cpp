// SP-SimpleChat file transfer (PROTOCOLS.md section 2.4) in process: the
// derivations, a sender and a receiver, and every way a transfer can go
// wrong leaving nothing behind.
#include <catch2/catch.hpp>

#include <fstream>

#include "core/crypto.hpp"
#include "spchat/files.hpp"

using namespace msglab;
using namespace msglab::spchat;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    TempDir() {
        path = fs::temp_directory_path() / ("msglab-spchat-" + hex(SystemRng::instance().bytes(6)));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path path;
};

Bytes random_file(const fs::path& p, std::size_t n) {
    Bytes b = SystemRng::instance().bytes(n);
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return b;
}

std::vector<Json> frames_of(FileSender& s) {
    std::vector<Json> out{s.start()};
    while (auto c = s.next_chunk()) out.push_back(*c);
    out.push_back(s.end());
    return out;
}

Bytes read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::size_t files_in(const fs::path& dir) {
    std::size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
    return n;
}

}  // namespace

TEST_CASE("spchat files: the key and nonce derivations of section 2.4", "[files]") {
    Bytes file_nonce = unhex("000102030405060708090a0b0c0d0e0f");
    Bytes k = file_key(zero_session_key(), file_nonce);
    CHECK(k == crypto::hkdf_sha256(Bytes(32, 0), file_nonce, to_bytes("file-key"), 32));
    CHECK(chunk_nonce(k, file_nonce, 12) == crypto::hkdf_sha256(k, file_nonce, to_bytes("chunk-nonce:12"), 16));
    Bytes sealed = seal_chunk(k, chunk_nonce(k, file_nonce, 0), to_bytes("hello"));
    CHECK(sealed.size() == 5 + 16);
    CHECK(open_chunk(k, chunk_nonce(k, file_nonce, 0), sealed) == to_bytes("hello"));
    sealed[0] ^= 1;
    CHECK_FALSE(open_chunk(k, chunk_nonce(k, file_nonce, 0), sealed));
    CHECK(b64url(Bytes{0xfb, 0xff}) == "-_8");
    CHECK(from_b64url("-_8") == Bytes{0xfb, 0xff});
}

TEST_CASE("spchat files: a sender's frames carry the original's fields, a receiver rebuilds the file", "[files]") {
    TempDir t;
    for (std::size_t size : {0u, 1u, 32768u, 32769u, 100000u}) {
        INFO("size " << size);
        Bytes data = random_file(t.path / "in.bin", size);
        FileSender s(t.path / "in.bin", "Alice", "bob", "dm", SystemRng::instance());
        auto frames = frames_of(s);
        CHECK(frames.size() == 2 + (size + kChunkSize - 1) / kChunkSize);
        const Json& st = frames.front();
        CHECK(st["type"] == "FILE_START");
        CHECK(st["from"] == "Alice");
        CHECK(st["sig"] == "");
        CHECK(st["payload"]["aead"] == "AES-256-EAX");
        CHECK(st["payload"]["kdf"] == "HKDF-SHA256");
        CHECK(st["payload"]["size"] == size);
        CHECK(from_b64url(st["payload"]["file_nonce_b64"].get<std::string>())->size() == 16);
        std::vector<std::string> keys;
        for (auto it = st.begin(); it != st.end(); ++it) keys.push_back(it.key());
        CHECK(keys == std::vector<std::string>{"type", "from", "to", "ts", "payload", "sig"});
        FileReceiver::Options o;
        o.folder = t.path / "dl";
        o.auto_accept = true;
        FileReceiver r(o);
        FileEvent last;
        for (const auto& f : frames) last = r.handle(f);
        REQUIRE(last.kind == FileEvent::Kind::completed);
        CHECK(read(last.path) == data);
        CHECK(last.path.parent_path() == o.folder);
        fs::remove_all(o.folder);
    }
}

TEST_CASE("spchat files: offers wait for /accept, chunks before it are dropped as the original", "[files]") {
    TempDir t;
    random_file(t.path / "a.txt", 50000);
    FileSender s(t.path / "a.txt", "alice", "bob", "dm", SystemRng::instance());
    auto frames = frames_of(s);
    FileReceiver::Options o;
    o.folder = t.path / "dl";
    FileReceiver r(o);
    CHECK(r.handle(frames[0]).kind == FileEvent::Kind::offered);
    REQUIRE(r.pending().size() == 1);
    CHECK(r.handle(frames[1]).kind == FileEvent::Kind::ignored);
    CHECK(r.accept("zzz").kind == FileEvent::Kind::failed);
    CHECK(r.accept(s.file_id().substr(0, 6)).kind == FileEvent::Kind::started);
    // Chunk 0 was missed: chunk 1 is out of order and ignored; the end fails on size.
    CHECK(r.handle(frames[2]).kind == FileEvent::Kind::ignored);
    auto end = r.handle(frames[3]);
    CHECK(end.kind == FileEvent::Kind::failed);
    CHECK(end.detail.find("size mismatch") != std::string::npos);
    CHECK(files_in(o.folder) == 0);  // nothing left, not even the .part
}

TEST_CASE("spchat files: tampering, lies about size or hash, and oversized offers leave nothing", "[files]") {
    TempDir t;
    random_file(t.path / "a.bin", 70000);
    FileReceiver::Options o;
    o.folder = t.path / "dl";
    o.auto_accept = true;
    o.max_size = 100000;
    auto run = [&](const std::function<void(std::vector<Json>&)>& change) {
        FileSender s(t.path / "a.bin", "alice", "bob", "dm", SystemRng::instance());
        auto frames = frames_of(s);
        change(frames);
        FileReceiver r(o);
        FileEvent last;
        for (const auto& f : frames) {
            last = r.handle(f);
            if (last.kind == FileEvent::Kind::failed) break;
        }
        return last;
    };
    auto tampered = run([](std::vector<Json>& f) {
        std::string ct = f[1]["payload"]["ciphertext"];
        ct[10] = ct[10] == 'A' ? 'B' : 'A';
        f[1]["payload"]["ciphertext"] = ct;
    });
    CHECK(tampered.kind == FileEvent::Kind::failed);
    CHECK(tampered.detail.find("does not authenticate") != std::string::npos);
    auto wrong_hash = run([](std::vector<Json>& f) { f[0]["payload"]["sha256"] = std::string(64, 'a'); });
    CHECK(wrong_hash.kind == FileEvent::Kind::failed);
    auto short_size = run([](std::vector<Json>& f) { f[0]["payload"]["size"] = 1000; });
    CHECK(short_size.kind == FileEvent::Kind::failed);
    auto too_big = run([](std::vector<Json>& f) { f[0]["payload"]["size"] = 200000; });
    CHECK(too_big.kind == FileEvent::Kind::failed);
    CHECK(too_big.detail.find("over the limit") != std::string::npos);
    CHECK((!fs::exists(o.folder) || files_in(o.folder) == 0));
}

TEST_CASE("spchat files: names cannot leave the folder, collisions get <stem>.<6 hex><ext>", "[files]") {
    CHECK(safe_name("../../etc/passwd") == "passwd");
    CHECK(safe_name("..\\..\\boot.ini") == "boot.ini");
    CHECK(safe_name("..") == "file");
    CHECK(safe_name("") == "file");
    CHECK(safe_name(".bashrc") == "bashrc");
    CHECK(safe_name("a\nb\x01.txt") == "ab.txt");
    CHECK(safe_name(std::string(500, 'x') + ".pdf").size() == 200);
    CHECK(safe_name(std::string(500, 'x') + ".pdf").substr(196) == ".pdf");
    TempDir t;
    random_file(t.path / "report.txt", 10);
    FileReceiver::Options o;
    o.folder = t.path / "dl";
    o.auto_accept = true;
    fs::create_directories(o.folder);
    std::ofstream(o.folder / "report.txt") << "already here";
    for (int i = 0; i < 2; ++i) {
        FileSender s(t.path / "report.txt", "alice", "bob", "dm", SystemRng::instance());
        auto frames = frames_of(s);
        frames[0]["payload"]["name"] = "../../report.txt";
        FileReceiver r(o);
        FileEvent last;
        for (const auto& f : frames) last = r.handle(f);
        REQUIRE(last.kind == FileEvent::Kind::completed);
        CHECK(last.path.parent_path() == o.folder);
        std::string n = last.path.filename().string();
        CHECK(n.size() == std::string("report.123456.txt").size());
        CHECK(n.rfind("report.", 0) == 0);
    }
    CHECK(files_in(o.folder) == 3);
    std::ifstream kept(o.folder / "report.txt");
    std::string s;
    std::getline(kept, s);
    CHECK(s == "already here");
}
