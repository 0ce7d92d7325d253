// SP-SimpleChat's file transfer (PROTOCOLS.md section 2.4): FILE_START,
// FILE_CHUNK..., FILE_END, each chunk of 32768 bytes sealed with AES-256-EAX
// under keys derived by HKDF-SHA256 from a session key that is always 32 zero
// bytes (the design finding KEY_FROM_PUBLIC_DATA: whoever sees FILE_START can
// derive every key).
//
// FileSender produces the frames of one transfer from a file, one chunk at a
// time. FileReceiver takes the frames addressed to a client, keeps offers
// until they are accepted (or accepts them at once), writes accepted files
// under one folder through a `.part` file, and checks size and SHA-256 at the
// end. Names are reduced to a safe basename, so nothing is written outside
// the folder; a name already taken gets `<stem>.<6 hex><ext>`, as the
// original.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "spchat/wire.hpp"

namespace msglab::spchat {

inline constexpr std::size_t kChunkSize = 32768;
inline constexpr std::uint64_t kDefaultMaxFileSize = 25ull * 1024 * 1024;  // the original's /accept bound

// The derivations of section 2.4.
Bytes file_key(ByteView session_key, ByteView file_nonce);
Bytes chunk_nonce(ByteView file_key, ByteView file_nonce, std::uint64_t index);
// ciphertext || 16-byte tag.
Bytes seal_chunk(ByteView file_key, ByteView nonce, ByteView plaintext);
std::optional<Bytes> open_chunk(ByteView file_key, ByteView nonce, ByteView ciphertext_and_tag);
// The session key every original endpoint uses.
Bytes zero_session_key();

std::string b64url(ByteView data);                        // no padding
std::optional<Bytes> from_b64url(std::string_view text);  // padding optional

// The basename the receiver writes: path separators, NUL and control
// characters removed, leading dots dropped, at most 200 bytes; "file" when
// nothing is left.
std::string safe_name(std::string_view name);

class FileSender {
public:
    // Opens `path`; throws std::runtime_error with the reason when it cannot
    // be read. `to` is a nick or a room; `mode` "dm" or "public".
    // `ts` is the system clock in milliseconds, as the original.
    FileSender(const std::filesystem::path& path, std::string from, std::string to, std::string mode, Rng& rng);

    const std::string& file_id() const { return m_file_id; }
    std::uint64_t size() const { return m_size; }
    std::string sha256_hex() const { return m_sha256; }
    std::uint64_t chunks() const { return (m_size + kChunkSize - 1) / kChunkSize; }

    Json start() const;
    // The next FILE_CHUNK, or nullopt after the last; throws when the file
    // changed under us (shorter than at the start).
    std::optional<Json> next_chunk();
    Json end() const;

private:
    Json envelope(const char* type, Json payload) const;

    std::ifstream m_in;
    std::string m_from, m_to, m_mode, m_name, m_file_id, m_sha256;
    std::uint64_t m_size = 0, m_index = 0, m_sent = 0;
    Bytes m_file_nonce, m_key;
};

struct FileOffer {
    std::string file_id, from, to, name, mode, sha256;
    std::uint64_t size = 0;
};

// What happened to a frame the receiver was given.
struct FileEvent {
    enum class Kind {
        offered,    // a FILE_START waits for accept()
        started,    // accepted; chunks go to disk
        progress,   // a chunk was written
        ignored,    // out of order, unknown file, or not accepted (as the original: silently)
        completed,  // size and SHA-256 match; `path` is the file
        failed,     // a bad chunk, a size or hash mismatch, a disk error; nothing kept
    };
    Kind kind = Kind::ignored;
    FileOffer offer;
    std::filesystem::path path;
    std::uint64_t received = 0;
    std::string detail;
};

class FileReceiver {
public:
    struct Options {
        std::filesystem::path folder = "downloads";
        bool auto_accept = false;
        std::uint64_t max_size = kDefaultMaxFileSize;
        std::size_t max_pending = 64;  // offers kept; the oldest goes first
    };
    explicit FileReceiver(Options options);
    ~FileReceiver();

    // A FILE_START, FILE_CHUNK or FILE_END message.
    FileEvent handle(const Json& message);
    // Accepts a pending offer (by its id or a unique prefix of it).
    FileEvent accept(const std::string& file_id_or_prefix);
    std::vector<FileOffer> pending() const;
    std::size_t active() const { return m_active.size(); }

private:
    struct Active;
    FileEvent begin(const FileOffer& offer, const Bytes& file_nonce);
    void abandon(const std::string& file_id);

    Options m_options;
    std::map<std::string, std::pair<FileOffer, Bytes>> m_pending;  // file_id -> offer, file nonce
    std::vector<std::string> m_pending_order;
    std::map<std::string, std::unique_ptr<Active>> m_active;
};

// The offer in a FILE_START message; nullopt when a field is missing or bad.
std::optional<std::pair<FileOffer, Bytes>> read_offer(const Json& start);

}  // namespace msglab::spchat
