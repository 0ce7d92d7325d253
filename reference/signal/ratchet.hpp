// Signal-style chat's cryptography (PROTOCOLS.md sections 5.4 to 5.6): the
// identity and prekey bundle, X3DH without one-time prekeys, and the Double
// Ratchet, byte for byte as rohankalbag/cryptography-signal-protocol does it.
// Sans-I/O: keys, bytes and counters in, bytes and typed results out;
// randomness is injected. Nothing here throws on hostile input.
//
// The original's quirks that the wire forces are reproduced exactly:
//   - the header's pn and n are big-endian in as many *bytes* as the value
//     has *bits* (2 -> 00 02), and the MAC covers those bytes as received;
//   - PKCS#7 with a 32-byte block, over the plaintext and (for the MAC) over
//     AD || header;
//   - AD is the base64 text of both identity keys, initiator first;
//   - the payload and message keys come from HKDF with an 80-byte zero salt
//     (longer than SHA-256's block, so HMAC hashes it: not the default salt).
// The original's flaws that the wire does not force are options of
// Ratchet::decrypt (DecryptOptions), off in the clean mode:
//   - commit_before_mac: the state is updated before the MAC is checked and
//     never rolled back (5.9 item 5: one forged message desynchronises);
//   - padded_skipped_plaintext: a message opened with a skipped key comes
//     back still padded (5.9 item 7).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/result.hpp"

namespace msglab::signal {

using Key32 = std::array<std::uint8_t, 32>;
using Iv = std::array<std::uint8_t, 16>;
using Mac = std::array<std::uint8_t, 32>;

// 5.6: a receiver skips at most this many message keys in one step.
inline constexpr std::uint64_t kMaxSkip = 10;
// msglab's bound on the skipped-key store (the original's dict grows
// without limit): beyond it the oldest key is dropped.
inline constexpr std::size_t kMaxSkippedKeys = 1000;
// A plaintext (and so a ciphertext) above this is refused; it is also the
// bound on the base64 cipher of the events (events.hpp).
inline constexpr std::size_t kMaxPlaintext = 64 * 1024;
// decode_counter's bound on the raw pn/n field.
inline constexpr std::size_t kMaxCounterBytes = 64;
// Counters are bounded to what Python's int.from_bytes of a sane peer
// gives and what a uint64 increments without overflow.
inline constexpr std::uint64_t kMaxCounter = (std::uint64_t{1} << 63) - 1;
// AD as 5.5 builds it: two 44-character base64 texts.
inline constexpr std::size_t kAdBytes = 88;
// AD as Ratchet::restore accepts it.
inline constexpr std::size_t kMaxAdBytes = 1024;

inline constexpr std::string_view kX3dhInfo = "extended_triple_diffie_hellman";
inline constexpr std::string_view kX3dhPayloadInfo = "X3DH";
inline constexpr std::string_view kRootInfo = "kdf_rk_info";
inline constexpr std::string_view kMessageInfo = "encrypt_info_kdf";
inline constexpr std::string_view kChatStart = "##CHAT_START##";

// Key log labels (core/keylog.hpp). SIGNAL_MESSAGE_KEY: id keylog_id(dh, n),
// secret mk (32). SIGNAL_X3DH_SK: id the initiator's ephemeral public key
// (32), secret SK (32).
inline constexpr const char* kKeylogMessageKey = "SIGNAL_MESSAGE_KEY";
inline constexpr const char* kKeylogX3dhSk = "SIGNAL_X3DH_SK";
// header.dh (32) || n as 8 bytes big-endian: 40 bytes.
Bytes keylog_id(const Key32& dh, std::uint64_t n);
// The ephemeral public key itself (32 bytes).
Bytes keylog_x3dh_id(const Key32& epk);

// ---- 5.6 counters ---------------------------------------------------------
// Big-endian in bit_length(v) bytes: 0 -> empty, 1 -> 01, 2 -> 00 02,
// 4 -> 00 00 04, 255 -> 8 bytes, 256 -> 9 bytes. At most 64 bytes.
Bytes encode_counter(std::uint64_t value);
// Big-endian, empty = 0, leading zeros allowed (int.from_bytes). nullopt
// above kMaxCounterBytes bytes or kMaxCounter.
std::optional<std::uint64_t> decode_counter(ByteView bytes);

// ---- PKCS#7 with a 32-byte block (padding.PKCS7(256)) ----------------------
// Always adds 1..32 bytes of value n up to a multiple of 32.
Bytes pkcs7_pad32(ByteView data);
// Strict: a non-empty multiple of 32 whose last n (1..32) bytes all equal n.
std::optional<Bytes> pkcs7_unpad32(ByteView data);

// ---- 5.4 keys ---------------------------------------------------------------
// What request_prekey returns (raw, before base64).
struct Bundle {
    Key32 ik{};    // X25519 identity key
    Key32 sik{};   // Ed25519 signing identity key
    Key32 spk{};   // X25519 signed prekey
    std::array<std::uint8_t, 64> spk_sig{};  // Ed25519(SIK, SPK)

    // The check the original's bundle fetch makes; nothing binds sik to ik.
    bool signature_valid() const;
};

struct Identity {
    crypto::X25519KeyPair ik{};
    crypto::Ed25519KeyPair sik{};
    crypto::X25519KeyPair spk{};
    std::array<std::uint8_t, 64> spk_sig{};

    static Identity generate(Rng& rng);
    // From the three private keys (IK, SIK seed, SPK); spk_sig is computed.
    static Identity from_private(const Key32& ik, const Key32& sik_seed, const Key32& spk);
    Bundle bundle() const;
};

// 5.5 step 3: ASCII b64(IK_initiator) || b64(IK_responder), 88 bytes.
Bytes associated_data(const Key32& ik_initiator, const Key32& ik_responder);

// ---- 5.5 X3DH ---------------------------------------------------------------
// HKDF-SHA256(ikm, salt = 80 zero bytes, info, 80) cut into enc_key [0:32],
// auth_key [32:64] and iv [64:80]: the X3DH payload keys (info "X3DH") and
// every message's keys (info "encrypt_info_kdf").
struct PayloadKeys {
    Key32 enc_key{};
    Key32 auth_key{};
    Iv iv{};
};
PayloadKeys derive_payload_keys(ByteView ikm, std::string_view info);

// SK = HKDF-SHA256(0xFF*32 || dh1 || dh2 || dh3, salt = 32 zero bytes,
// "extended_triple_diffie_hellman", 32).
Key32 x3dh_secret(const Key32& dh1, const Key32& dh2, const Key32& dh3);

// Everything the initiator computes, for vectors and key logs.
struct X3dhInitiation {
    crypto::X25519KeyPair ek{};  // EK_A
    Key32 dh1{}, dh2{}, dh3{};
    Key32 sk{};
    PayloadKeys keys;
    Bytes ad;      // 88 bytes of base64 text
    Bytes cipher;  // AES-256-CBC of PKCS7_32("##CHAT_START##"): 32 bytes
    Mac mac{};     // HMAC(auth_key, PKCS7_32(AD) || cipher)
};

enum class X3dhError {
    bad_signature,  // the bundle's spk_sig does not verify under its sik
    bad_key,        // a DH gave all zeros (a low-order public key)
    bad_length,     // cipher empty, not a multiple of 16 or over kMaxPlaintext; mac not 32 bytes
    bad_mac,
    bad_padding,
};
const char* x3dh_error_name(X3dhError e);

// 5.5 steps 1 to 4 for `self` towards `peer`. The bundle's signature is
// checked first, as the original's fetch does. `fixed_ek` replaces the
// random ephemeral private key (for published vectors).
// `verify_signature` false skips that check (plant signal.spk-sig-unchecked).
Result<X3dhInitiation, X3dhError> x3dh_initiate(const Identity& self, const Bundle& peer, Rng& rng,
                                                std::optional<Key32> fixed_ek = std::nullopt,
                                                bool verify_signature = true);

struct X3dhAcceptance {
    Key32 dh1{}, dh2{}, dh3{};
    Key32 sk{};
    PayloadKeys keys;
    Bytes ad;
    Bytes plaintext;
    // The plaintext is "##CHAT_START##". The original never looks: any
    // plaintext under a valid MAC opens the session.
    bool expected_plaintext = false;
};

// 5.5 step 5 for `self` receiving {ik, epk, cipher, hmac}: the MAC is
// checked (constant time) before anything is decrypted or un-padded.
Result<X3dhAcceptance, X3dhError> x3dh_respond(const Identity& self, const Key32& ik_initiator, const Key32& epk,
                                               ByteView cipher, ByteView mac);

// ---- 5.6 Double Ratchet ---------------------------------------------------------
struct Header {
    Key32 dh{};
    std::uint64_t pn = 0;
    std::uint64_t n = 0;
    // The bytes as they travel (and as the MAC covers them). make() writes
    // encode_counter's; a received header keeps what came, which may carry
    // leading zeros.
    Bytes pn_bytes;
    Bytes n_bytes;

    static Header make(const Key32& dh, std::uint64_t pn, std::uint64_t n);
    // nullopt when a counter does not decode_counter.
    static std::optional<Header> from_wire(const Key32& dh, ByteView pn_bytes, ByteView n_bytes);
};

struct RatchetMessage {
    Header header;
    Bytes cipher;
    Bytes hmac;  // 32 bytes when well formed; any length is checked (and fails) as a MAC
};

// KDF_RK(rk, dh_out) -> (RK', CK); KDF_CK(ck) -> (CK', mk).
std::pair<Key32, Key32> kdf_rk(const Key32& rk, const Key32& dh_out);
std::pair<Key32, Key32> kdf_ck(const Key32& ck);
// PKCS7_32(AD || dh || pn_bytes || n_bytes): what the MAC covers before the cipher.
Bytes mac_prefix(ByteView ad, const Header& header);

struct SkippedKey {
    Key32 dh{};
    std::uint64_t n = 0;
    Key32 mk{};
};

// The whole state of one side, copyable (the clean decrypt works on a copy).
struct RatchetState {
    crypto::X25519KeyPair dhs{};
    std::optional<Key32> dhr;
    Key32 rk{};
    std::optional<Key32> cks;
    std::optional<Key32> ckr;
    std::uint64_t ns = 0, nr = 0, pn = 0;
    Bytes ad;
    std::deque<SkippedKey> skipped;  // oldest first

    bool operator==(const RatchetState& o) const;
};

struct DecryptOptions {
    // The original: the state is updated before the MAC check, no rollback.
    bool commit_before_mac = false;
    // The original: a message opened with a skipped key keeps its padding.
    bool padded_skipped_plaintext = false;
};

enum class DecryptStatus {
    ok,
    bad_mac,           // the MAC did not verify (forged, tampered, replayed, keys out of step), or
                       // no receiving chain exists for header.dh
    too_many_skipped,  // pn or n more than kMaxSkip ahead of the receiving chain
    bad_padding,       // the MAC verified but the cipher is not a padded plaintext
    bad_key,           // header.dh gave an all-zero DH
};
const char* decrypt_status_name(DecryptStatus s);

struct Decrypted {
    DecryptStatus status = DecryptStatus::bad_mac;
    Bytes plaintext;                 // when ok
    std::optional<Key32> mk;         // the message key tried, when one was reached
    std::optional<PayloadKeys> keys; // and what it expanded to
    bool from_skipped = false;       // mk came from the skipped-key store
    bool dh_step = false;            // a DH ratchet step was taken (or tried)
    bool state_changed = false;      // the Ratchet's state differs from before the call

    bool ok() const { return status == DecryptStatus::ok; }
};

struct Sealed {
    RatchetMessage message;
    Key32 mk{};
    PayloadKeys keys;
};

enum class SendError {
    not_ready,  // no sending chain yet: the responder before its first message (5.6)
    too_long,   // plaintext above kMaxPlaintext
    exhausted,  // Ns reached kMaxCounter
};
const char* send_error_name(SendError e);

// New ratchet key pairs; the default draws from the Rng.
using KeySource = std::function<crypto::X25519KeyPair()>;

class Ratchet {
public:
    // Sender init (A after X3DH): DHs new (or `first_dhs`), DHr = SPK_B,
    // (RK, CKs) = KDF_RK(SK, DH(DHs, SPK_B)). nullopt when that DH is all
    // zero.
    static std::optional<Ratchet> initiator(const Key32& sk, const Key32& spk_b_public, ByteView ad, Rng& rng,
                                            std::optional<Key32> first_dhs = std::nullopt);
    // Receiver init (B): DHs = SPK_B, RK = SK, no chains.
    static Ratchet responder(const Key32& sk, const crypto::X25519KeyPair& spk_b, ByteView ad, Rng& rng);

    // Ratchet key pairs after the first come from `source` instead of the Rng.
    void set_key_source(KeySource source) { m_keys = std::move(source); }

    bool can_send() const { return m_state.cks.has_value(); }
    Result<Sealed, SendError> encrypt(ByteView plaintext);
    Decrypted decrypt(const RatchetMessage& message, const DecryptOptions& options = {});

    const RatchetState& state() const { return m_state; }

    // A self-contained binary form of the state (version 1, see ratchet.cpp).
    Bytes serialize() const;
    // Bounded: refuses truncated or trailing bytes, AD over kMaxAdBytes,
    // more than kMaxSkippedKeys skipped keys, counters over kMaxCounter.
    static Result<Ratchet, ParseError> restore(ByteView bytes, Rng& rng);

private:
    Ratchet(RatchetState state, Rng& rng) : m_state(std::move(state)), m_rng(&rng) {}
    crypto::X25519KeyPair new_key();

    RatchetState m_state;
    Rng* m_rng;
    KeySource m_keys;
};

}  // namespace msglab::signal
