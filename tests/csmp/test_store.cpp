// CSMP's history store: a real SQLite file, AES-256-GCM rows, checked with
// Debian's python3-cryptography and sqlite3 through /usr/bin/python3.
#include "support.hpp"

#include <sqlite3.h>

#include "core/crypto.hpp"
#include "csmp/store.hpp"

using namespace msglab;
using namespace msglab::csmp;
using namespace msglab::test;

namespace {

fs::path temp_db(const std::string& name) {
    fs::path dir = fs::temp_directory_path() / ("msglab-csmp-store-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::path p = dir / name;
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(p.string() + ext);
    return p;
}

std::string python(const std::string& script, const std::vector<std::string>& args) {
    fs::path f = fs::temp_directory_path() / ("msglab-csmp-" + std::to_string(::getpid()) + ".py");
    std::ofstream(f) << script;
    std::string cmd = "/usr/bin/python3 " + f.string();
    for (const auto& a : args) cmd += " '" + a + "'";
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int rc = pclose(p);
    INFO(out);
    REQUIRE(rc == 0);
    return out;
}

}  // namespace

TEST_CASE("The original's at-rest key matches the published vector", "[csmp][store]") {
    CHECK(hex(original_key("00000000-0000-4000-8000-000000000000")) ==
          "426b6f82f1513292b67df1459567a6ac24b1f7b38dc33a6318793122970fb69c");
    CHECK(sql_time(1769447131123456ull) == "2026-01-26 17:05:31.123456");
    CHECK(iso_time("2026-01-26 17:05:31.123456") == "2026-01-26T17:05:31.123456");
    CHECK(iso_time("2026-01-26 17:05:31.000000") == "2026-01-26T17:05:31");
}

TEST_CASE("History rows are AES-256-GCM under the configured secret, readable by an independent implementation",
          "[csmp][store]") {
    fs::path db = temp_db("clean.db");
    Bytes secret = to_bytes("a configured secret of some length");
    {
        HistoryStore store({db.string(), secret, false}, SystemRng::instance());
        store.append("alice", "sid-1", "room_alice_bob", "hi bob", 1769447131123456ull);
        store.append("bob", "sid-2", "room_alice_bob", "héllo ✓", 1769447132000000ull);
        store.append("carol", "sid-3", "general", "elsewhere", 1769447133000000ull);
        auto rows = store.recent("room_alice_bob", 50);
        REQUIRE(rows.size() == 2);
        CHECK(rows[0].message == "hi bob");
        CHECK(rows[1].message == "héllo ✓");
        CHECK(rows[1].client_id == "bob");
        CHECK(store.recent("room_alice_bob", 1).at(0).message == "héllo ✓");  // the newest, still in order
        CHECK(store.count() == 3);
    }
    // The file holds no plaintext and no session id.
    std::ifstream in(db, std::ios::binary);
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ifstream wal(db.string() + "-wal", std::ios::binary);
    raw.append((std::istreambuf_iterator<char>(wal)), std::istreambuf_iterator<char>());
    CHECK(raw.find("hi bob") == std::string::npos);
    CHECK(raw.find("sid-1") == std::string::npos);

    // Python reads the rows with the key derived independently.
    std::string out = python(R"(import sqlite3, sys
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = HKDF(hashes.SHA256(), 32, b"msglab csmp history", b"chat_messages v1").derive(sys.argv[2].encode())
db = sqlite3.connect(sys.argv[1])
mode = db.execute("PRAGMA journal_mode").fetchone()[0]
for room, client, created, ct, nonce in db.execute("SELECT room_id, client_id, created_at, ciphertext, nonce FROM chat_messages ORDER BY id"):
    aad = (room + "\0" + client + "\0" + created).encode()
    print(client, AESGCM(key).decrypt(bytes.fromhex(nonce), bytes.fromhex(ct), aad).decode())
print("journal", mode)
)",
                             {db.string(), to_string(secret)});
    CHECK(out == "alice hi bob\nbob héllo ✓\ncarol elsewhere\njournal wal\n");

    // Another secret does not open the file; a moved row does not open.
    CHECK_THROWS_WITH(HistoryStore({db.string(), to_bytes("another secret, also long"), false}, SystemRng::instance()),
                      Catch::Contains("another secret"));
    CHECK_THROWS_WITH(HistoryStore({db.string(), {}, true}, SystemRng::instance()), Catch::Contains("key scheme"));
    {
        sqlite3* raw_db = nullptr;
        REQUIRE(sqlite3_open(db.c_str(), &raw_db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(raw_db, "UPDATE chat_messages SET room_id='general' WHERE client_id='alice'", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
        sqlite3_close(raw_db);
    }
    HistoryStore store({db.string(), secret, false}, SystemRng::instance());
    CHECK_THROWS_WITH(store.recent("general", 50), Catch::Contains("does not open"));
}

TEST_CASE("Planted csmp.hardcoded-secret: rows open with the original's constant and the stored session id",
          "[csmp][store]") {
    fs::path db = temp_db("planted.db");
    {
        HistoryStore store({db.string(), {}, true}, SystemRng::instance());
        store.append("alice", "00000000-0000-4000-8000-000000000000", "room1", "hi", 1769447131123456ull);
        store.append("bob", "6f0c1a2e-3b4d-4c5e-8f60-718293a4b5c6", "room1", "yo", 1769447132123456ull);
        // History opens across sessions even so (each row's own session).
        auto rows = store.recent("room1", 10);
        REQUIRE(rows.size() == 2);
        CHECK(rows[1].message == "yo");
    }
    // What anyone holding the file can do, knowing only the program.
    std::string out = python(R"(import sqlite3, sys
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
db = sqlite3.connect(sys.argv[1])
for sid, ct, nonce in db.execute("SELECT session_id, ciphertext, nonce FROM chat_messages ORDER BY id"):
    key = HKDF(hashes.SHA256(), 32, sid.encode(), b"general").derive(b"dev_secret_key_32_chars_long_!!!")
    print(AESGCM(key).decrypt(bytes.fromhex(nonce), bytes.fromhex(ct), None).decode())
)",
                             {db.string()});
    CHECK(out == "hi\nyo\n");
}

TEST_CASE("A bad store file or secret is a clear error", "[csmp][store]") {
    fs::path db = temp_db("not-a-db.db");
    std::ofstream(db) << "this is not a database, just text that is long enough to matter............";
    CHECK_THROWS_AS(HistoryStore({db.string(), to_bytes("sixteen bytes at least"), false}, SystemRng::instance()),
                    StoreError);
    CHECK_THROWS_WITH(HistoryStore({temp_db("x.db").string(), to_bytes("short"), false}, SystemRng::instance()),
                      Catch::Contains("at least 16 bytes"));
    CHECK_THROWS_WITH(HistoryStore({"/nonexistent-dir/h.db", to_bytes("sixteen bytes at least"), false},
                                   SystemRng::instance()),
                      Catch::Contains("cannot open"));
}
