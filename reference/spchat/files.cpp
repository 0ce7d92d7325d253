#include "spchat/files.hpp"

#include "core/crypto.hpp"

#include <botan/hash.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <system_error>

namespace msglab::spchat {

namespace fs = std::filesystem;

namespace {

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

std::optional<std::uint64_t> uint_field(const Json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end()) return std::nullopt;
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_number_integer() && it->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(it->get<std::int64_t>());
    return std::nullopt;
}

bool lower_hex64(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// `file` in `folder`, or <stem>.<6 hex><ext> when that is taken, as the
// original. Taken: a file is there, or another transfer under way holds the
// name (its .part, or the name it will have), so that two transfers of one
// name never end in one file.
template <class Taken>
fs::path free_path(const fs::path& folder, const std::string& file, Taken taken) {
    fs::path target = folder / file;
    if (!taken(target)) return target;
    fs::path p(file);
    const std::string stem = p.stem().string(), ext = p.extension().string();
    for (int tries = 0; tries < 100 && taken(target); ++tries) {
        Bytes r(3);
        static SystemRng& rng = SystemRng::instance();
        rng.fill(r);
        target = folder / (stem + "." + hex(r) + ext);
    }
    return target;
}

}  // namespace

Bytes zero_session_key() { return Bytes(32, 0); }

Bytes file_key(ByteView session_key, ByteView file_nonce) {
    return crypto::hkdf_sha256(session_key, file_nonce, bytes_of("file-key"), 32);
}

Bytes chunk_nonce(ByteView key, ByteView file_nonce, std::uint64_t index) {
    return crypto::hkdf_sha256(key, file_nonce, bytes_of("chunk-nonce:" + std::to_string(index)), 16);
}

Bytes seal_chunk(ByteView key, ByteView nonce, ByteView plaintext) {
    return crypto::aes_eax_encrypt(key, nonce, {}, plaintext);
}

std::optional<Bytes> open_chunk(ByteView key, ByteView nonce, ByteView ciphertext_and_tag) {
    if (key.size() != 32 || nonce.empty()) return std::nullopt;
    return crypto::aes_eax_decrypt(key, nonce, {}, ciphertext_and_tag);
}

std::string b64url(ByteView data) { return crypto::base64_encode(data, crypto::Base64Alphabet::url, false); }

std::optional<Bytes> from_b64url(std::string_view text) {
    return crypto::base64_decode(text, crypto::Base64Alphabet::url, crypto::Base64Padding::optional);
}

std::string safe_name(std::string_view name) {
    // The basename: what follows the last separator of either kind.
    auto cut = name.find_last_of("/\\");
    if (cut != std::string_view::npos) name.remove_prefix(cut + 1);
    std::string out;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == ':') continue;
        out += c;
    }
    while (!out.empty() && (out.front() == '.' || out.front() == ' ')) out.erase(out.begin());
    while (!out.empty() && (out.back() == ' ' || out.back() == '.')) out.pop_back();
    if (out.size() > 200) {
        // Keep the extension when there is a short one.
        auto dot = out.rfind('.');
        std::string ext = (dot != std::string::npos && out.size() - dot <= 16) ? out.substr(dot) : "";
        out = out.substr(0, 200 - ext.size()) + ext;
        // Do not leave half a UTF-8 sequence before the extension.
        std::size_t stem_end = out.size() - ext.size();
        std::size_t i = stem_end;
        while (i > 0 && (static_cast<unsigned char>(out[i - 1]) & 0xC0) == 0x80) --i;
        if (i > 0 && static_cast<unsigned char>(out[i - 1]) >= 0xC0) out.erase(i - 1, stem_end - (i - 1));
    }
    if (out.empty()) out = "file";
    return out;
}

// ---- sender ----

FileSender::FileSender(const fs::path& path, std::string from, std::string to, std::string mode, Rng& rng)
    : m_from(std::move(from)), m_to(std::move(to)), m_mode(std::move(mode)) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw std::runtime_error(path.string() + ": not a readable file");
    m_size = fs::file_size(path, ec);
    if (ec) throw std::runtime_error(path.string() + ": " + ec.message());
    // Hash first, as the original does before sending FILE_START.
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error(path.string() + ": cannot open");
        auto h = Botan::HashFunction::create_or_throw("SHA-256");
        std::vector<char> buf(1 << 16);
        std::uint64_t total = 0;
        while (in) {
            in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
            auto got = static_cast<std::size_t>(in.gcount());
            h->update(reinterpret_cast<const std::uint8_t*>(buf.data()), got);
            total += got;
        }
        if (total != m_size) throw std::runtime_error(path.string() + ": changed while being read");
        auto digest = h->final();
        m_sha256 = hex(Bytes(digest.begin(), digest.end()));
    }
    m_in.open(path, std::ios::binary);
    if (!m_in) throw std::runtime_error(path.string() + ": cannot open");
    m_name = path.filename().string();
    m_file_id = uuid4(rng);
    m_file_nonce = rng.bytes(16);
    m_key = file_key(zero_session_key(), m_file_nonce);
}

Json FileSender::envelope(const char* type, Json payload) const {
    Json j;
    j["type"] = type;
    j["from"] = m_from;
    j["to"] = m_to;
    j["ts"] = now_ms();
    j["payload"] = std::move(payload);
    j["sig"] = "";
    return j;
}

Json FileSender::start() const {
    Json p;
    p["file_id"] = m_file_id;
    p["name"] = m_name;
    p["size"] = m_size;
    p["sha256"] = m_sha256;
    p["mode"] = m_mode;
    p["aead"] = "AES-256-EAX";
    p["kdf"] = "HKDF-SHA256";
    p["file_nonce_b64"] = b64url(m_file_nonce);
    return envelope("FILE_START", std::move(p));
}

std::optional<Json> FileSender::next_chunk() {
    if (m_sent >= m_size) return std::nullopt;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kChunkSize, m_size - m_sent));
    Bytes plain(want);
    m_in.read(reinterpret_cast<char*>(plain.data()), static_cast<std::streamsize>(want));
    if (static_cast<std::size_t>(m_in.gcount()) != want) throw std::runtime_error(m_name + ": file shrank while being sent");
    Bytes nonce = chunk_nonce(m_key, m_file_nonce, m_index);
    Bytes sealed = seal_chunk(m_key, nonce, plain);
    ByteView ct(sealed.data(), sealed.size() - 16), tag(sealed.data() + sealed.size() - 16, 16);
    Json p;
    p["file_id"] = m_file_id;
    p["index"] = m_index;
    p["nonce_b64"] = b64url(nonce);
    p["ciphertext"] = b64url(ct);
    p["tag_b64"] = b64url(tag);
    ++m_index;
    m_sent += want;
    return envelope("FILE_CHUNK", std::move(p));
}

Json FileSender::end() const {
    Json p;
    p["file_id"] = m_file_id;
    return envelope("FILE_END", std::move(p));
}

// ---- receiver ----

std::optional<std::pair<FileOffer, Bytes>> read_offer(const Json& start) {
    auto pl = start.find("payload");
    if (pl == start.end() || !pl->is_object()) return std::nullopt;
    FileOffer o;
    auto id = string_field(*pl, "file_id");
    auto name = string_field(*pl, "name");
    auto sha = string_field(*pl, "sha256");
    auto nonce_text = string_field(*pl, "file_nonce_b64");
    auto size = uint_field(*pl, "size");
    if (!id || id->size() < 8 || id->size() > 128 || !name || !sha || !lower_hex64(*sha) || !nonce_text || !size)
        return std::nullopt;
    auto nonce = from_b64url(*nonce_text);
    if (!nonce || nonce->empty() || nonce->size() > 64) return std::nullopt;
    o.file_id = *id;
    o.name = *name;
    o.sha256 = *sha;
    o.size = *size;
    o.from = string_field(start, "from").value_or("");
    o.to = string_field(start, "to").value_or("");
    o.mode = string_field(*pl, "mode").value_or("");
    return std::make_pair(std::move(o), std::move(*nonce));
}

struct FileReceiver::Active {
    FileOffer offer;
    Bytes key;
    fs::path part, final_path;
    std::ofstream out;
    std::unique_ptr<Botan::HashFunction> hash = Botan::HashFunction::create_or_throw("SHA-256");
    std::uint64_t next_index = 0, received = 0;
};

FileReceiver::FileReceiver(Options options) : m_options(std::move(options)) {}

FileReceiver::~FileReceiver() {
    // Transfers that never ended leave nothing behind.
    for (auto& [id, a] : m_active) {
        a->out.close();
        std::error_code ec;
        fs::remove(a->part, ec);
    }
}

std::vector<FileOffer> FileReceiver::pending() const {
    std::vector<FileOffer> out;
    for (const auto& id : m_pending_order) out.push_back(m_pending.at(id).first);
    return out;
}

void FileReceiver::abandon(const std::string& file_id) {
    auto it = m_active.find(file_id);
    if (it == m_active.end()) return;
    it->second->out.close();
    std::error_code ec;
    fs::remove(it->second->part, ec);
    m_active.erase(it);
}

FileEvent FileReceiver::begin(const FileOffer& offer, const Bytes& file_nonce) {
    FileEvent ev;
    ev.offer = offer;
    if (offer.size > m_options.max_size) {
        ev.kind = FileEvent::Kind::failed;
        ev.detail = "refused: " + std::to_string(offer.size) + " bytes is over the limit of " +
                    std::to_string(m_options.max_size);
        return ev;
    }
    std::error_code ec;
    fs::create_directories(m_options.folder, ec);
    if (ec) {
        ev.kind = FileEvent::Kind::failed;
        ev.detail = m_options.folder.string() + ": " + ec.message();
        return ev;
    }
    auto a = std::make_unique<Active>();
    a->offer = offer;
    a->key = file_key(zero_session_key(), file_nonce);
    const std::string name = safe_name(offer.name);
    auto taken = [&](const fs::path& p) {
        std::error_code e;
        if (fs::exists(p, e)) return true;
        for (const auto& [id, other] : m_active)
            if (other->part == p || other->final_path == p) return true;
        return false;
    };
    // The id goes into the temporary name only once made safe too. Two ids
    // can be made the same, and a name can be another transfer's .part:
    // each transfer has names of its own.
    a->part = free_path(m_options.folder, safe_name(offer.file_id) + "_" + name + ".part", taken);
    a->final_path = free_path(m_options.folder, name, [&](const fs::path& p) { return p == a->part || taken(p); });
    a->out.open(a->part, std::ios::binary | std::ios::trunc);
    if (!a->out) {
        ev.kind = FileEvent::Kind::failed;
        ev.detail = a->part.string() + ": cannot write";
        return ev;
    }
    ev.kind = FileEvent::Kind::started;
    ev.path = a->final_path;
    abandon(offer.file_id);
    m_active[offer.file_id] = std::move(a);
    return ev;
}

FileEvent FileReceiver::accept(const std::string& id_or_prefix) {
    FileEvent ev;
    std::string found;
    if (m_pending.count(id_or_prefix)) {
        // A whole id is that offer, even when it also begins other offers' ids.
        found = id_or_prefix;
    } else {
        for (const auto& id : m_pending_order) {
            if (id_or_prefix.empty() || id.rfind(id_or_prefix, 0) != 0) continue;
            if (!found.empty()) {
                ev.kind = FileEvent::Kind::failed;
                ev.detail = "'" + id_or_prefix + "' matches more than one offer";
                return ev;
            }
            found = id;
        }
    }
    if (found.empty()) {
        ev.kind = FileEvent::Kind::failed;
        ev.detail = "no pending file '" + id_or_prefix + "'";
        return ev;
    }
    auto [offer, nonce] = m_pending.at(found);
    m_pending.erase(found);
    m_pending_order.erase(std::find(m_pending_order.begin(), m_pending_order.end(), found));
    return begin(offer, nonce);
}

FileEvent FileReceiver::handle(const Json& message) {
    FileEvent ev;
    const std::string type = string_field(message, "type").value_or("");
    auto pl = message.find("payload");
    if (pl == message.end() || !pl->is_object()) {
        ev.detail = "no payload";
        return ev;
    }
    const std::string id = string_field(*pl, "file_id").value_or("");
    if (type == "FILE_START") {
        auto offer = read_offer(message);
        if (!offer) {
            ev.detail = "malformed FILE_START";
            return ev;
        }
        ev.offer = offer->first;
        if (m_active.count(ev.offer.file_id) || m_pending.count(ev.offer.file_id)) {
            ev.detail = "a second FILE_START for " + ev.offer.file_id;
            return ev;
        }
        if (m_options.auto_accept) return begin(offer->first, offer->second);
        if (m_pending_order.size() >= m_options.max_pending) {
            m_pending.erase(m_pending_order.front());
            m_pending_order.erase(m_pending_order.begin());
        }
        m_pending_order.push_back(ev.offer.file_id);
        m_pending.emplace(ev.offer.file_id, std::move(*offer));
        ev.kind = FileEvent::Kind::offered;
        return ev;
    }
    auto it = m_active.find(id);
    if (it == m_active.end()) {
        // Chunks of an offer not (yet) accepted are dropped, as the original.
        ev.detail = "no accepted transfer " + id;
        return ev;
    }
    Active& a = *it->second;
    ev.offer = a.offer;
    if (type == "FILE_CHUNK") {
        auto index = uint_field(*pl, "index");
        if (!index || *index != a.next_index) {
            ev.detail = "chunk out of order";
            return ev;
        }
        auto nonce = from_b64url(string_field(*pl, "nonce_b64").value_or(""));
        auto ct = from_b64url(string_field(*pl, "ciphertext").value_or(""));
        auto tag = from_b64url(string_field(*pl, "tag_b64").value_or(""));
        if (!nonce || nonce->empty() || !ct || !tag || tag->size() != 16) {
            ev.kind = FileEvent::Kind::failed;
            ev.detail = "malformed chunk " + std::to_string(*index);
            abandon(id);
            return ev;
        }
        ct->insert(ct->end(), tag->begin(), tag->end());
        auto plain = open_chunk(a.key, *nonce, *ct);
        if (!plain) {
            ev.kind = FileEvent::Kind::failed;
            ev.detail = "chunk " + std::to_string(*index) + " does not authenticate";
            abandon(id);
            return ev;
        }
        if (a.received + plain->size() > a.offer.size) {
            ev.kind = FileEvent::Kind::failed;
            ev.detail = "more data than the announced " + std::to_string(a.offer.size) + " bytes";
            abandon(id);
            return ev;
        }
        a.out.write(reinterpret_cast<const char*>(plain->data()), static_cast<std::streamsize>(plain->size()));
        if (!a.out) {
            ev.kind = FileEvent::Kind::failed;
            ev.detail = a.part.string() + ": write failed";
            abandon(id);
            return ev;
        }
        a.hash->update(plain->data(), plain->size());
        a.received += plain->size();
        ++a.next_index;
        ev.kind = FileEvent::Kind::progress;
        ev.received = a.received;
        return ev;
    }
    if (type == "FILE_END") {
        a.out.close();
        auto digest = a.hash->final();
        const std::string got = hex(Bytes(digest.begin(), digest.end()));
        ev.received = a.received;
        if (a.received != a.offer.size || got != a.offer.sha256) {
            ev.kind = FileEvent::Kind::failed;
            ev.detail = a.received != a.offer.size
                            ? "size mismatch: " + std::to_string(a.received) + " of " + std::to_string(a.offer.size) + " bytes"
                            : "SHA-256 mismatch: got " + got;
            abandon(id);
            return ev;
        }
        std::error_code ec;
        // A file of that name that appeared since (not one of ours) stays.
        if (fs::exists(a.final_path, ec)) {
            a.final_path =
                free_path(a.final_path.parent_path(), a.final_path.filename().string(), [&](const fs::path& p) {
                    std::error_code e;
                    if (fs::exists(p, e)) return true;
                    for (const auto& [other_id, other] : m_active)
                        if (other.get() != &a && (other->part == p || other->final_path == p)) return true;
                    return false;
                });
        }
        fs::rename(a.part, a.final_path, ec);
        if (ec) {
            ev.kind = FileEvent::Kind::failed;
            ev.detail = a.final_path.string() + ": " + ec.message();
            abandon(id);
            return ev;
        }
        ev.kind = FileEvent::Kind::completed;
        ev.path = a.final_path;
        m_active.erase(it);
        return ev;
    }
    ev.detail = "not a file frame";
    return ev;
}

}  // namespace msglab::spchat
