// SP-SimpleChat's file transfer, receiving side: FileReceiver, read_offer,
// open_chunk, from_b64url and safe_name on crafted FILE_START, FILE_CHUNK and
// FILE_END sequences. Chunks are sealed with the keys of section 2.4, so the
// fuzzer gets past the EAX tag without any bypass; a FILE_START goes through
// client_frame and parse() as on the wire.
//
// The receiver writes into a folder of its own, made once per process in
// /dev/shm (or the temporary directory) three levels down, so that a name
// that climbs out lands where the check sees it, emptied after every run
// and removed at exit (or by the next process, after a crash); files are at
// most 48 KiB. Invariants: safe_name never returns a name with '/' or '\\',
// nor "", "." or ".."; nothing but regular files ever appears, and only in
// the folder (walked after every op); a transfer that completes left a file
// of the announced size and SHA-256 holding exactly the bytes sent, and
// never over a file an earlier one completed; a refused, failed or
// unfinished transfer leaves nothing behind. While no raw message has
// touched the receiver, what it answers to each frame is known and checked
// too.
//
// The first byte: bit 0 manual accept (offers wait for accept()), else
// auto-accept. Then at most 32 ops (byte % 8):
//   0 FILE_START   slot, id, name, be16 length, flags (see start())
//   1 FILE_CHUNK   slot, be16 length, flags (see chunk())
//   2 FILE_END     slot, flags (bit 0: an unknown id)
//   3 accept       slot, how (the slot's id, a prefix of it, the oldest offer, "")
//   4 raw message  be16 n, n % 4096 bytes of JSON
//   5 safe_name    u8 n, n bytes
//   6 base64 and the chunk cipher: u8 n, n bytes
//   7 a whole transfer from FileSender: be16 length, fill
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "fuzz_common.hpp"
#include "slmp/codec.hpp"  // valid_utf8
#include "spchat/files.hpp"
#include "spchat/wire.hpp"

using namespace msglab;
using namespace msglab::spchat;
namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMaxSize = 48 * 1024;
constexpr int kSlots = 4;

// A length from two input bytes: mostly under 2 KiB (fast runs), one value
// in 16 from 32 KiB to 64 KiB (two chunks; over the 48 KiB bound or not),
// while the run's budget for those lasts (a run that seals megabytes would
// hold the whole campaign back).
std::size_t length(std::uint16_t x, std::size_t& budget) {
    if (x < 0xF000) return x % 2048;
    const std::size_t n = 32768 + (x & 0x0FFFu) * 8;
    if (n > budget) return x % 2048;
    budget -= n;
    return n;
}

struct Dirs {
    fs::path root, folder, src;
};

// Made once per process, removed at exit (never destroyed itself, so that
// the exit handler can still read it). In /dev/shm when there is one: ext4
// makes a new file slowly right after many were deleted (it looks for an
// inode not recently freed), which took most of every run.
const Dirs& dirs() {
    static const Dirs* d = [] {
        auto* d = new Dirs;
        std::error_code ec;
        const fs::path base = fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
                                  ? fs::path("/dev/shm")
                                  : fs::temp_directory_path();
        const std::string prefix = "msglab-fuzz-spchat-files-";
        d->root = base / (prefix + std::to_string(getpid()));
        fs::remove_all(d->root, ec);
        // A run that crashed never reached the exit handler: its folder goes
        // once no process of its number is left.
        for (const auto& e : fs::directory_iterator(base, ec)) {
            const std::string name = e.path().filename().string();
            if (name.rfind(prefix, 0) != 0) continue;
            const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
            if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
        }
        d->folder = d->root / "a" / "b" / "downloads";
        d->src = d->root / "src";
        fs::create_directories(d->folder);
        fs::create_directories(d->src);
        return d;
    }();
    static const bool cleanup = [] {
        return std::atexit([] {
            std::error_code e;
            fs::remove_all(d->root, e);
        }) == 0;
    }();
    (void)cleanup;
    return *d;
}

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

Bytes read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::error_code ec;
    Bytes b(static_cast<std::size_t>(fs::file_size(p, ec)));
    if (ec) return {};
    in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
    b.resize(static_cast<std::size_t>(in.gcount()));
    return b;
}

void check_safe_name(std::string_view raw) {
    std::string s = safe_name(raw);
    FUZZ_CHECK(!s.empty() && s != "." && s != "..");
    FUZZ_CHECK(s.find('/') == std::string::npos && s.find('\\') == std::string::npos);
    FUZZ_CHECK(s.find('\0') == std::string::npos && s.front() != '.');
    FUZZ_CHECK(s.size() <= 200);
    // A safe name stays as it is (but for a cut at 200 bytes, which may leave
    // a space or a dot at the end), and UTF-8 stays UTF-8.
    FUZZ_CHECK(safe_name(s) == s || s.size() > 180);
    if (slmp::valid_utf8(as_bytes(raw))) FUZZ_CHECK(slmp::valid_utf8(as_bytes(s)));
    fs::path p = dirs().folder / s;
    FUZZ_CHECK(p.parent_path() == dirs().folder && p.filename() == s);
}

// Nothing but the folders the fuzzer made, regular files in the download
// folder, and the sender's file.
void check_tree() {
    const Dirs& d = dirs();
    static const std::set<fs::path> folders = {d.root / "a", d.root / "a" / "b", d.folder, d.src};
    std::size_t files = 0;
    for (const auto& e : fs::recursive_directory_iterator(d.root)) {
        FUZZ_CHECK(!e.is_symlink());
        if (e.is_directory()) {
            FUZZ_CHECK(folders.count(e.path()) == 1);
            continue;
        }
        FUZZ_CHECK(e.is_regular_file());
        FUZZ_CHECK(e.path().parent_path() == d.folder || e.path().parent_path() == d.src);
        ++files;
    }
    FUZZ_CHECK(files <= 64);
}

struct Transfer {
    std::string id;
    Bytes file_nonce, key, content;
    std::uint64_t declared = 0;
    std::string sha256;
    Bytes sent;  // the plaintext the receiver took, in order
    std::uint64_t index = 0;
};

struct Run {
    FileReceiver::Options options;
    FileReceiver receiver;
    Transfer slots[kSlots];
    std::set<std::string> active;               // the transfers the receiver writes (its model)
    std::map<fs::path, std::string>& completed;  // files that must stay, and their SHA-256
    bool modelled = true;                        // no raw message has touched the receiver's state
    std::size_t budget = 160 * 1024;             // for lengths over 32 KiB (see length())

    Run(FileReceiver::Options o, std::map<fs::path, std::string>& done)
        : options(o), receiver(std::move(o)), completed(done) {}

    bool pending(const std::string& id) const {
        for (const auto& o : receiver.pending())
            if (o.file_id == id) return true;
        return false;
    }
    bool live(const std::string& id) const { return active.count(id) || pending(id); }

    // As on the wire: written as the original client writes it, then parsed
    // (what is not UTF-8 comes out as U+FFFD). FILE_CHUNK and FILE_END carry
    // ASCII and an id that came through here already: they skip the trip,
    // which costs more than the rest of a run.
    static Json wire(const Json& m) {
        Bytes f = client_frame(m);
        auto back = parse(text(ByteView(f).subspan(4)));
        FUZZ_CHECK(back);
        return *back;
    }

    void check_event(const FileEvent& ev) {
        using K = FileEvent::Kind;
        if (ev.kind == K::started || ev.kind == K::completed) {
            FUZZ_CHECK(ev.path.parent_path() == options.folder);
            std::string name = ev.path.filename().string();
            FUZZ_CHECK(!name.empty() && name != "." && name != ".." && name.find('\\') == std::string::npos);
            FUZZ_CHECK(ev.offer.size <= options.max_size);
        }
        if (ev.kind == K::offered) FUZZ_CHECK(!options.auto_accept);
        if (ev.kind == K::progress) FUZZ_CHECK(ev.received <= ev.offer.size && ev.received <= options.max_size);
        if (ev.kind == K::started) active.insert(ev.offer.file_id);
        if (ev.kind == K::completed) {
            FUZZ_CHECK(ev.received == ev.offer.size);
            FUZZ_CHECK(fs::is_regular_file(ev.path));
            Bytes got = read_all(ev.path);
            FUZZ_CHECK(got.size() == ev.offer.size);
            FUZZ_CHECK(hex(crypto::sha256(got)) == ev.offer.sha256);
            // Never over a file an earlier transfer completed.
            FUZZ_CHECK(completed.count(ev.path) == 0);
            completed[ev.path] = ev.offer.sha256;
        }
    }
    // After a FILE_CHUNK or FILE_END: a transfer that failed or completed is over.
    void over(const FileEvent& ev) {
        if (ev.kind == FileEvent::Kind::completed || ev.kind == FileEvent::Kind::failed) active.erase(ev.offer.file_id);
    }

    static Json envelope(const char* type, const std::string& from, Json payload) {
        Json j;
        j["type"] = type;
        j["from"] = from;
        j["to"] = "bob";
        j["ts"] = 1700000000000ull;
        j["payload"] = std::move(payload);
        j["sig"] = "";
        return j;
    }

    // id % 8: 0-3 a uuid of that number; 4 another slot's id; 5 too short;
    // 6 with a path in it; 7 raw bytes (id >> 3 of them). name % 12: a table
    // entry or raw bytes (name >> 4 of them); 0x80: 254 bytes. flags: 0x03
    // the size (exact, one more, not a number, 2^63), 0x04 a wrong SHA-256,
    // 0x08 SHA-256 in upper case, 0x10 the file nonce empty or too long,
    // 0x20 the content is the next input bytes (else a pattern), 0x40 / 0x80
    // the sender writes its nick in other case or with spaces.
    void start(Reader& in) {
        const int s = in.u8() % kSlots;
        const std::uint8_t idb = in.u8(), nameb = in.u8();
        const std::size_t len = length(in.be16(), budget);
        const std::uint8_t flags = in.u8();
        Transfer t;
        switch (idb % 8) {
            case 4: t.id = slots[(s + 1) % kSlots].id; break;
            case 5: t.id = "abc"; break;
            case 6: t.id = "../../9c1d0e2f-" + std::to_string(idb >> 3); break;
            case 7: t.id = std::string(text(in.bytes(std::min<std::size_t>(idb >> 3, in.remaining())))); break;
            default: t.id = "0f3c2a9e-7b1d-4c5e-9a8b-00000000000" + std::to_string(idb % 8);
        }
        static const char* const names[] = {"notes.txt", "../../escape.txt", "..", ".", "a/b\\c.txt", "",
                                            "tab\tname:x", "...hidden.", "caf\xc3\xa9 \xe2\x82\xac.pdf",
                                            "/etc/passwd", "C:\\Windows\\win.ini"};
        std::string name;
        if (nameb == 0x80)
            name = std::string(250, 'n') + ".txt";
        else if (nameb % 12 < 11)
            name = names[nameb % 12];
        else
            name = std::string(text(in.bytes(std::min<std::size_t>(nameb >> 4, in.remaining()))));
        if (flags & 0x20) {
            ByteView b = in.bytes(std::min(len, in.remaining()));
            t.content.assign(b.begin(), b.end());
        } else {
            t.content.resize(len);
            for (std::size_t i = 0; i < len; ++i) t.content[i] = static_cast<std::uint8_t>(i * 31 + flags);
        }
        t.file_nonce = Bytes(16, static_cast<std::uint8_t>(s * 17 + idb));
        t.key = file_key(zero_session_key(), t.file_nonce);
        t.sha256 = hex(crypto::sha256((flags & 0x04) ? Bytes{1} : t.content));
        t.declared = t.content.size() + ((flags & 3) == 1 ? 1 : 0);
        Json p;
        p["file_id"] = t.id;
        p["name"] = name;
        switch (flags & 3) {
            case 2: p["size"] = "12"; break;
            case 3:
                t.declared = 1ull << 63;
                p["size"] = t.declared;
                break;
            default: p["size"] = t.declared;
        }
        std::string sha = t.sha256;
        if (flags & 0x08) sha = upper(sha);
        p["sha256"] = sha;
        p["mode"] = "dm";
        p["aead"] = "AES-256-EAX";
        p["kdf"] = "HKDF-SHA256";
        p["file_nonce_b64"] =
            (flags & 0x10) ? ((idb & 1) ? std::string() : b64url(Bytes(65, 7))) : b64url(t.file_nonce);
        std::string from = (flags & 0x40) ? "Alice" : "alice";
        if (flags & 0x80) from = "  " + from + " ";
        Json m = wire(envelope("FILE_START", from, std::move(p)));
        // Raw bytes that are not UTF-8 went out with U+FFFD in their place.
        t.id = string_field(m["payload"], "file_id").value_or("");
        name = string_field(m["payload"], "name").value_or("");
        check_safe_name(name);
        // The receiver writes <id>_<name>.part first: a name over the file
        // system's 255 bytes is refused ("cannot write"); one taken already
        // gets 7 bytes more (".<6 hex>").
        const std::size_t part = (safe_name(t.id) + "_" + safe_name(name) + ".part").size();

        auto offer = read_offer(m);
        if (offer) {
            FUZZ_CHECK(offer->first.file_id == t.id && t.id.size() >= 8 && t.id.size() <= 128);
            FUZZ_CHECK(offer->first.sha256 == t.sha256 && offer->first.name == name);
            FUZZ_CHECK(offer->second == t.file_nonce && offer->first.size == t.declared);
        }
        const bool known = live(t.id);
        FileEvent ev = receiver.handle(m);
        check_event(ev);
        using K = FileEvent::Kind;
        if (!offer) FUZZ_CHECK(ev.kind == K::ignored);
        if (modelled && offer && known) FUZZ_CHECK(ev.kind == K::ignored);  // a second FILE_START
        if (modelled && offer && !known) {
            if (!options.auto_accept)
                FUZZ_CHECK(ev.kind == K::offered);
            else if (t.declared > options.max_size || part > 255)
                FUZZ_CHECK(ev.kind == K::failed);
            else if (part <= 255 - 7)
                FUZZ_CHECK(ev.kind == K::started);
        }
        if (ev.kind != K::started && ev.kind != K::offered) return;
        for (auto& o : slots)
            if (o.id == t.id) o = Transfer{};  // one slot per id
        slots[s] = std::move(t);
    }

    // The next length() bytes of the slot's content (flags 0x01: past
    // its end, the pattern goes on). Flags: 0x02 the wrong index, 0x04 one
    // ciphertext bit flipped, 0x08 ciphertext not base64, 0x10 a 15-byte
    // tag, 0x20 no nonce, 0x40 the index as a string, 0x80 the nonce of
    // another index (the receiver takes the nonce it is given).
    void chunk(Reader& in) {
        const int s = in.u8() % kSlots;
        const std::size_t len = length(in.be16(), budget);
        const std::uint8_t flags = in.u8();
        Transfer& t = slots[s];
        if (t.id.empty()) return;
        const std::size_t at = t.sent.size();
        Bytes piece;
        for (std::size_t i = 0; i < len; ++i) {
            std::size_t k = at + i;
            if (k < t.content.size())
                piece.push_back(t.content[k]);
            else if (flags & 1)
                piece.push_back(static_cast<std::uint8_t>(k));
            else
                break;
        }
        const std::uint64_t index = t.index + ((flags & 0x02) ? 1 : 0);
        const Bytes nonce = chunk_nonce(t.key, t.file_nonce, index + ((flags & 0x80) ? 7 : 0));
        Bytes sealed = seal_chunk(t.key, nonce, piece);
        if (flags & 0x04) sealed[0] ^= 0x80;
        Json p;
        p["file_id"] = t.id;
        if (flags & 0x40)
            p["index"] = std::to_string(index);
        else
            p["index"] = index;
        if (!(flags & 0x20)) p["nonce_b64"] = b64url(nonce);
        p["ciphertext"] =
            (flags & 0x08) ? std::string("!!not base64!!") : b64url(ByteView(sealed).first(sealed.size() - 16));
        p["tag_b64"] = b64url(ByteView(sealed).last((flags & 0x10) ? 15 : 16));
        Json m = envelope("FILE_CHUNK", "alice", std::move(p));
        if (!(flags & 0x08)) {
            auto ct = from_b64url(string_field(m["payload"], "ciphertext").value_or(""));
            FUZZ_CHECK(ct && ct->size() == piece.size());
        }
        const bool was_active = active.count(t.id) == 1;
        FileEvent ev = receiver.handle(m);
        check_event(ev);
        over(ev);
        using K = FileEvent::Kind;
        const bool in_order = !(flags & 0x42);
        const bool good = !(flags & 0x3c);
        const bool fits = t.sent.size() + piece.size() <= t.declared;
        if (modelled && !was_active) FUZZ_CHECK(ev.kind == K::ignored);
        if (modelled && was_active) {
            if (!in_order)
                FUZZ_CHECK(ev.kind == K::ignored);
            else if (good && fits)
                FUZZ_CHECK(ev.kind == K::progress && ev.received == t.sent.size() + piece.size());
            else
                FUZZ_CHECK(ev.kind == K::failed);
        }
        if (ev.kind == K::progress) {
            t.sent.insert(t.sent.end(), piece.begin(), piece.end());
            ++t.index;
        }
    }

    void end(Reader& in) {
        const int s = in.u8() % kSlots;
        const std::uint8_t flags = in.u8();
        Transfer& t = slots[s];
        if (t.id.empty()) return;
        Json p;
        p["file_id"] = (flags & 1) ? t.id + "-other" : t.id;
        const bool was_active = active.count(p["file_id"].get<std::string>()) == 1;
        FileEvent ev = receiver.handle(envelope("FILE_END", "alice", std::move(p)));
        check_event(ev);
        over(ev);
        using K = FileEvent::Kind;
        if (modelled && !was_active) FUZZ_CHECK(ev.kind == K::ignored);
        if (modelled && was_active && !(flags & 1)) {
            const bool whole = t.sent.size() == t.declared && hex(crypto::sha256(t.sent)) == t.sha256;
            FUZZ_CHECK(ev.kind == (whole ? K::completed : K::failed));
            if (ev.kind == K::completed) FUZZ_CHECK(read_all(ev.path) == t.sent);  // exactly the bytes sent
        }
    }

    // how % 4: the slot's id, a prefix of it of (how >> 2) bytes, the oldest
    // offer waiting (a raw FILE_START's too), "".
    void accept(Reader& in) {
        const int s = in.u8() % kSlots;
        const std::uint8_t how = in.u8();
        const Transfer& t = slots[s];
        std::string key;
        switch (how % 4) {
            case 0: key = t.id; break;
            case 1: key = t.id.substr(0, std::min<std::size_t>(t.id.size(), how >> 2)); break;
            case 2: key = receiver.pending().empty() ? "no-such-offer" : receiver.pending().front().file_id; break;
            case 3: key = ""; break;
        }
        const bool waiting = pending(key);
        const std::size_t before = receiver.pending().size();
        FileEvent ev = receiver.accept(key);
        check_event(ev);
        using K = FileEvent::Kind;
        FUZZ_CHECK(ev.kind == K::started || ev.kind == K::failed);
        if (options.auto_accept) FUZZ_CHECK(ev.kind == K::failed && before == 0);
        // The offer of that very id is taken, whatever other ids it begins.
        if (waiting) {
            FUZZ_CHECK(ev.offer.file_id == key && !pending(key));
            if (modelled && key == t.id && ev.kind == K::failed)
                FUZZ_CHECK(t.declared > options.max_size || ev.detail.find("cannot write") != std::string::npos);
        }
        if (ev.kind == K::started) FUZZ_CHECK(receiver.pending().size() == before - 1);
    }

    void raw(Reader& in) {
        std::size_t n = in.be16() % 4096;
        auto m = parse(text(in.bytes(std::min(n, in.remaining()))));
        if (!m) return;
        modelled = false;
        if (auto o = read_offer(*m)) check_safe_name(o->first.name);
        FileEvent ev = receiver.handle(*m);
        check_event(ev);
        if (string_field(*m, "type") != std::string("FILE_START")) over(ev);
    }

    void base64_and_cipher(Reader& in) {
        std::size_t n = in.u8();
        ByteView b = in.bytes(std::min(n, in.remaining()));
        std::string_view t = text(b);
        if (auto d = from_b64url(t)) {
            std::string_view bare = t.substr(0, t.find('='));
            FUZZ_CHECK(d->size() == bare.size() * 3 / 4);
            FUZZ_CHECK(b64url(*d).size() == bare.size());
            FUZZ_CHECK(from_b64url(b64url(*d)) == d);
        }
        FUZZ_CHECK(from_b64url(b64url(b)) == Bytes(b.begin(), b.end()));
        // A key and a nonce from the input: sealed, it opens; changed, it does not.
        if (b.size() >= 33) {
            ByteView key = b.first(32), nonce = b.subspan(32, std::min<std::size_t>(1 + b[32] % 16, b.size() - 32));
            ByteView plain = b.subspan(32);
            Bytes sealed = seal_chunk(key, nonce, plain);
            FUZZ_CHECK(open_chunk(key, nonce, sealed) == Bytes(plain.begin(), plain.end()));
            sealed[sealed.size() - 1 - b[0] % sealed.size()] ^= 0x40;
            FUZZ_CHECK(!open_chunk(key, nonce, sealed));
            FUZZ_CHECK(!open_chunk(key.first(31), nonce, sealed) && !open_chunk(key, {}, sealed));
        }
        FUZZ_CHECK(!open_chunk(Bytes(32, 0), Bytes(16, 0), b));  // no tag forged from the input
    }

    // A whole transfer as the client sends it; it completes when it fits
    // (accepted by hand in manual mode).
    void sender(Reader& in) {
        const std::size_t len = length(in.be16(), budget);
        const std::uint8_t fill = in.u8();
        const fs::path src = dirs().src / "upload.bin";
        Bytes content(len);
        for (std::size_t i = 0; i < len; ++i) content[i] = static_cast<std::uint8_t>(i ^ fill);
        std::ofstream(src, std::ios::binary)
            .write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
        DeterministicRng rng(fill);
        FileSender fsend(src, "alice", "bob", "dm", rng);
        FUZZ_CHECK(fsend.size() == len && fsend.chunks() == (len + kChunkSize - 1) / kChunkSize);
        FUZZ_CHECK(fsend.sha256_hex() == hex(crypto::sha256(content)));
        const bool fresh = !live(fsend.file_id());
        using K = FileEvent::Kind;
        FileEvent ev = receiver.handle(wire(fsend.start()));
        check_event(ev);
        if (ev.kind == K::offered) {
            ev = receiver.accept(fsend.file_id());
            check_event(ev);
        }
        const bool fits = len <= options.max_size;
        if (modelled && fresh) FUZZ_CHECK(ev.kind == (fits ? K::started : K::failed));
        std::uint64_t chunks = 0;
        while (auto c = fsend.next_chunk()) {
            ++chunks;
            FileEvent e = receiver.handle(*c);
            check_event(e);
            over(e);
            if (modelled && fresh && fits) FUZZ_CHECK(e.kind == K::progress);
        }
        FUZZ_CHECK(chunks == fsend.chunks());
        FileEvent e = receiver.handle(fsend.end());
        check_event(e);
        over(e);
        if (modelled && fresh && fits) FUZZ_CHECK(e.kind == K::completed && e.received == len);
        if (e.kind == K::completed && fresh) FUZZ_CHECK(read_all(e.path) == content);
        fs::remove(src);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const Dirs& d = dirs();
    FileReceiver::Options o;
    o.folder = d.folder;
    o.auto_accept = !(data[0] & 1);
    o.max_size = kMaxSize;
    o.max_pending = 4;
    std::map<fs::path, std::string> completed;
    {
        Run run(o, completed);
        Reader in(ByteView(data + 1, size - 1));
        for (int ops = 0; ops < 32 && in.remaining() > 0; ++ops) {
            switch (in.u8() % 8) {
                case 0: run.start(in); break;
                case 1: run.chunk(in); break;
                case 2: run.end(in); break;
                case 3: run.accept(in); break;
                case 4: run.raw(in); break;
                case 5: {
                    std::size_t n = in.u8();
                    check_safe_name(text(in.bytes(std::min(n, in.remaining()))));
                    continue;
                }
                case 6: run.base64_and_cipher(in); continue;
                case 7: run.sender(in); break;
            }
            // After every op that reached the receiver (a file outside the
            // folder would stay: nothing removes it).
            check_tree();
        }
    }
    // The receiver is gone: what never ended left nothing behind, and every
    // file that completed is still there as it was.
    check_tree();
    std::size_t left = 0;
    for (const auto& e : fs::directory_iterator(d.folder)) {
        auto it = completed.find(e.path());
        FUZZ_CHECK(it != completed.end());
        FUZZ_CHECK(hex(crypto::sha256(read_all(e.path()))) == it->second);
        ++left;
    }
    FUZZ_CHECK(left == completed.size());
    for (const auto& e : fs::directory_iterator(d.folder)) fs::remove(e.path());
    return 0;
}
