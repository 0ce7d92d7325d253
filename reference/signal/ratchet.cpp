#include "signal/ratchet.hpp"

#include <algorithm>
#include <stdexcept>

namespace msglab::signal {

namespace {

Key32 to_key(ByteView b) {
    Key32 k{};
    if (b.size() == k.size()) std::copy(b.begin(), b.end(), k.begin());
    return k;
}

constexpr std::array<std::uint8_t, 80> kZeroSalt80{};
constexpr std::array<std::uint8_t, 32> kZeroSalt32{};

}  // namespace

Bytes keylog_id(const Key32& dh, std::uint64_t n) {
    Writer w(40);
    w.bytes(dh).be64(n);
    return w.take();
}

Bytes keylog_x3dh_id(const Key32& epk) { return Bytes(epk.begin(), epk.end()); }

// ---- counters ------------------------------------------------------------------

Bytes encode_counter(std::uint64_t value) {
    std::size_t bits = 0;
    for (std::uint64_t v = value; v; v >>= 1) ++bits;
    // n.to_bytes(n.bit_length()): one byte per bit, big-endian.
    Bytes out(bits, 0);
    std::uint64_t v = value;
    for (std::size_t i = bits; i-- > 0 && v; v >>= 8) out[i] = static_cast<std::uint8_t>(v & 0xff);
    return out;
}

std::optional<std::uint64_t> decode_counter(ByteView bytes) {
    if (bytes.size() > kMaxCounterBytes) return std::nullopt;
    std::size_t i = 0;
    while (i < bytes.size() && bytes[i] == 0) ++i;
    if (bytes.size() - i > 8) return std::nullopt;
    std::uint64_t v = 0;
    for (; i < bytes.size(); ++i) v = (v << 8) | bytes[i];
    if (v > kMaxCounter) return std::nullopt;
    return v;
}

// ---- PKCS#7 ----------------------------------------------------------------------

Bytes pkcs7_pad32(ByteView data) {
    std::size_t pad = 32 - data.size() % 32;
    Bytes out(data.begin(), data.end());
    out.insert(out.end(), pad, static_cast<std::uint8_t>(pad));
    return out;
}

std::optional<Bytes> pkcs7_unpad32(ByteView data) {
    if (data.empty() || data.size() % 32 != 0) return std::nullopt;
    std::uint8_t pad = data.back();
    if (pad < 1 || pad > 32) return std::nullopt;
    for (std::size_t i = data.size() - pad; i < data.size(); ++i)
        if (data[i] != pad) return std::nullopt;
    return Bytes(data.begin(), data.end() - pad);
}

// ---- keys ----------------------------------------------------------------------------

bool Bundle::signature_valid() const { return crypto::ed25519_verify(sik, spk, spk_sig); }

Identity Identity::generate(Rng& rng) {
    Identity id;
    id.ik = crypto::x25519_generate(rng);
    id.sik = crypto::ed25519_generate(rng);
    id.spk = crypto::x25519_generate(rng);
    id.spk_sig = crypto::ed25519_sign(id.sik, id.spk.public_key);
    return id;
}

Identity Identity::from_private(const Key32& ik, const Key32& sik_seed, const Key32& spk) {
    Identity id;
    id.ik = {ik, crypto::x25519_public(ik)};
    id.sik = crypto::ed25519_from_seed(sik_seed);
    id.spk = {spk, crypto::x25519_public(spk)};
    id.spk_sig = crypto::ed25519_sign(id.sik, id.spk.public_key);
    return id;
}

Bundle Identity::bundle() const { return {ik.public_key, sik.public_key, spk.public_key, spk_sig}; }

Bytes associated_data(const Key32& ik_initiator, const Key32& ik_responder) {
    return to_bytes(crypto::base64_encode(ik_initiator) + crypto::base64_encode(ik_responder));
}

// ---- X3DH ------------------------------------------------------------------------------

PayloadKeys derive_payload_keys(ByteView ikm, std::string_view info) {
    Bytes okm = crypto::hkdf_sha256(ikm, kZeroSalt80, as_bytes(info), 80);
    PayloadKeys k;
    std::copy(okm.begin(), okm.begin() + 32, k.enc_key.begin());
    std::copy(okm.begin() + 32, okm.begin() + 64, k.auth_key.begin());
    std::copy(okm.begin() + 64, okm.end(), k.iv.begin());
    return k;
}

Key32 x3dh_secret(const Key32& dh1, const Key32& dh2, const Key32& dh3) {
    Bytes ikm(32, 0xff);
    ikm.insert(ikm.end(), dh1.begin(), dh1.end());
    ikm.insert(ikm.end(), dh2.begin(), dh2.end());
    ikm.insert(ikm.end(), dh3.begin(), dh3.end());
    return to_key(crypto::hkdf_sha256(ikm, kZeroSalt32, as_bytes(kX3dhInfo), 32));
}

const char* x3dh_error_name(X3dhError e) {
    switch (e) {
        case X3dhError::bad_signature: return "bad_signature";
        case X3dhError::bad_key: return "bad_key";
        case X3dhError::bad_length: return "bad_length";
        case X3dhError::bad_mac: return "bad_mac";
        case X3dhError::bad_padding: return "bad_padding";
    }
    return "?";
}

namespace {

Mac mac_over(const Key32& auth_key, ByteView prefix, ByteView cipher) {
    Bytes data(prefix.begin(), prefix.end());
    data.insert(data.end(), cipher.begin(), cipher.end());
    return crypto::hmac_sha256(auth_key, data);
}

bool mac_ok(const Key32& auth_key, ByteView prefix, ByteView cipher, ByteView mac) {
    Bytes data(prefix.begin(), prefix.end());
    data.insert(data.end(), cipher.begin(), cipher.end());
    return crypto::hmac_sha256_verify(auth_key, data, mac);
}

}  // namespace

Result<X3dhInitiation, X3dhError> x3dh_initiate(const Identity& self, const Bundle& peer, Rng& rng,
                                                std::optional<Key32> fixed_ek, bool verify_signature) {
    if (verify_signature && !peer.signature_valid()) return unexpected(X3dhError::bad_signature);
    X3dhInitiation r;
    if (fixed_ek)
        r.ek = {*fixed_ek, crypto::x25519_public(*fixed_ek)};
    else
        r.ek = crypto::x25519_generate(rng);
    auto dh1 = crypto::x25519(self.ik.private_key, peer.spk);
    auto dh2 = crypto::x25519(r.ek.private_key, peer.ik);
    auto dh3 = crypto::x25519(r.ek.private_key, peer.spk);
    if (!dh1 || !dh2 || !dh3) return unexpected(X3dhError::bad_key);
    r.dh1 = *dh1, r.dh2 = *dh2, r.dh3 = *dh3;
    r.sk = x3dh_secret(r.dh1, r.dh2, r.dh3);
    r.keys = derive_payload_keys(r.sk, kX3dhPayloadInfo);
    r.ad = associated_data(self.ik.public_key, peer.ik);
    r.cipher = crypto::aes_cbc_encrypt_raw(r.keys.enc_key, r.keys.iv, pkcs7_pad32(as_bytes(kChatStart)));
    r.mac = mac_over(r.keys.auth_key, pkcs7_pad32(r.ad), r.cipher);
    return r;
}

Result<X3dhAcceptance, X3dhError> x3dh_respond(const Identity& self, const Key32& ik_initiator, const Key32& epk,
                                               ByteView cipher, ByteView mac) {
    if (cipher.empty() || cipher.size() % 16 != 0 || cipher.size() > kMaxPlaintext + 32 || mac.size() != 32)
        return unexpected(X3dhError::bad_length);
    X3dhAcceptance r;
    auto dh1 = crypto::x25519(self.spk.private_key, ik_initiator);
    auto dh2 = crypto::x25519(self.ik.private_key, epk);
    auto dh3 = crypto::x25519(self.spk.private_key, epk);
    if (!dh1 || !dh2 || !dh3) return unexpected(X3dhError::bad_key);
    r.dh1 = *dh1, r.dh2 = *dh2, r.dh3 = *dh3;
    r.sk = x3dh_secret(r.dh1, r.dh2, r.dh3);
    r.keys = derive_payload_keys(r.sk, kX3dhPayloadInfo);
    r.ad = associated_data(ik_initiator, self.ik.public_key);
    if (!mac_ok(r.keys.auth_key, pkcs7_pad32(r.ad), cipher, mac)) return unexpected(X3dhError::bad_mac);
    auto padded = crypto::aes_cbc_decrypt_raw(r.keys.enc_key, r.keys.iv, cipher);
    if (!padded) return unexpected(X3dhError::bad_length);
    auto plain = pkcs7_unpad32(*padded);
    if (!plain) return unexpected(X3dhError::bad_padding);
    r.plaintext = std::move(*plain);
    r.expected_plaintext = to_string(r.plaintext) == kChatStart;
    return r;
}

// ---- Double Ratchet ----------------------------------------------------------------

Header Header::make(const Key32& dh, std::uint64_t pn, std::uint64_t n) {
    return {dh, pn, n, encode_counter(pn), encode_counter(n)};
}

std::optional<Header> Header::from_wire(const Key32& dh, ByteView pn_bytes, ByteView n_bytes) {
    auto pn = decode_counter(pn_bytes);
    auto n = decode_counter(n_bytes);
    if (!pn || !n) return std::nullopt;
    return Header{dh, *pn, *n, Bytes(pn_bytes.begin(), pn_bytes.end()), Bytes(n_bytes.begin(), n_bytes.end())};
}

std::pair<Key32, Key32> kdf_rk(const Key32& rk, const Key32& dh_out) {
    Bytes okm = crypto::hkdf_sha256(dh_out, rk, as_bytes(kRootInfo), 64);
    return {to_key(ByteView(okm).first(32)), to_key(ByteView(okm).subspan(32))};
}

std::pair<Key32, Key32> kdf_ck(const Key32& ck) {
    const std::uint8_t one = 0x01, two = 0x02;
    Key32 mk = crypto::hmac_sha256(ck, ByteView(&one, 1));
    Key32 next = crypto::hmac_sha256(ck, ByteView(&two, 1));
    return {next, mk};
}

Bytes mac_prefix(ByteView ad, const Header& h) {
    Bytes data(ad.begin(), ad.end());
    data.insert(data.end(), h.dh.begin(), h.dh.end());
    data.insert(data.end(), h.pn_bytes.begin(), h.pn_bytes.end());
    data.insert(data.end(), h.n_bytes.begin(), h.n_bytes.end());
    return pkcs7_pad32(data);
}

bool RatchetState::operator==(const RatchetState& o) const {
    auto same_skipped = [&] {
        if (skipped.size() != o.skipped.size()) return false;
        for (std::size_t i = 0; i < skipped.size(); ++i)
            if (skipped[i].dh != o.skipped[i].dh || skipped[i].n != o.skipped[i].n || skipped[i].mk != o.skipped[i].mk)
                return false;
        return true;
    };
    return dhs.private_key == o.dhs.private_key && dhs.public_key == o.dhs.public_key && dhr == o.dhr && rk == o.rk &&
           cks == o.cks && ckr == o.ckr && ns == o.ns && nr == o.nr && pn == o.pn && ad == o.ad && same_skipped();
}

const char* decrypt_status_name(DecryptStatus s) {
    switch (s) {
        case DecryptStatus::ok: return "ok";
        case DecryptStatus::bad_mac: return "bad_mac";
        case DecryptStatus::too_many_skipped: return "too_many_skipped";
        case DecryptStatus::bad_padding: return "bad_padding";
        case DecryptStatus::bad_key: return "bad_key";
    }
    return "?";
}

const char* send_error_name(SendError e) {
    switch (e) {
        case SendError::not_ready: return "not_ready";
        case SendError::too_long: return "too_long";
        case SendError::exhausted: return "exhausted";
    }
    return "?";
}

std::optional<Ratchet> Ratchet::initiator(const Key32& sk, const Key32& spk_b_public, ByteView ad, Rng& rng,
                                          std::optional<Key32> first_dhs) {
    RatchetState s;
    s.dhs = first_dhs ? crypto::X25519KeyPair{*first_dhs, crypto::x25519_public(*first_dhs)}
                      : crypto::x25519_generate(rng);
    auto dh = crypto::x25519(s.dhs.private_key, spk_b_public);
    if (!dh) return std::nullopt;
    s.dhr = spk_b_public;
    auto [rk, cks] = kdf_rk(sk, *dh);
    s.rk = rk;
    s.cks = cks;
    s.ad.assign(ad.begin(), ad.end());
    return Ratchet(std::move(s), rng);
}

Ratchet Ratchet::responder(const Key32& sk, const crypto::X25519KeyPair& spk_b, ByteView ad, Rng& rng) {
    RatchetState s;
    s.dhs = spk_b;
    s.rk = sk;
    s.ad.assign(ad.begin(), ad.end());
    return Ratchet(std::move(s), rng);
}

crypto::X25519KeyPair Ratchet::new_key() { return m_keys ? m_keys() : crypto::x25519_generate(*m_rng); }

Result<Sealed, SendError> Ratchet::encrypt(ByteView plaintext) {
    if (!m_state.cks) return unexpected(SendError::not_ready);
    if (plaintext.size() > kMaxPlaintext) return unexpected(SendError::too_long);
    if (m_state.ns >= kMaxCounter) return unexpected(SendError::exhausted);
    Sealed out;
    auto [next, mk] = kdf_ck(*m_state.cks);
    out.mk = mk;
    out.keys = derive_payload_keys(mk, kMessageInfo);
    out.message.header = Header::make(m_state.dhs.public_key, m_state.pn, m_state.ns);
    out.message.cipher = crypto::aes_cbc_encrypt_raw(out.keys.enc_key, out.keys.iv, pkcs7_pad32(plaintext));
    Mac mac = mac_over(out.keys.auth_key, mac_prefix(m_state.ad, out.message.header), out.message.cipher);
    out.message.hmac.assign(mac.begin(), mac.end());
    m_state.cks = next;
    ++m_state.ns;
    return out;
}

namespace {

// SkipMessageKeys: refuse a jump of more than kMaxSkip, then (with a
// receiving chain) store the keys up to `until`.
bool skip_keys(RatchetState& s, std::uint64_t until) {
    if (s.nr + kMaxSkip < until) return false;
    if (!s.ckr || !s.dhr) return true;
    while (s.nr < until) {
        auto [next, mk] = kdf_ck(*s.ckr);
        s.ckr = next;
        if (s.skipped.size() >= kMaxSkippedKeys) s.skipped.pop_front();
        s.skipped.push_back({*s.dhr, s.nr, mk});
        ++s.nr;
    }
    return true;
}

// Checks the MAC with mk, then decrypts and (unless `keep_padding`) un-pads.
void open_with(const RatchetState& s, const RatchetMessage& m, const Key32& mk, bool keep_padding, Decrypted& d) {
    d.mk = mk;
    d.keys = derive_payload_keys(mk, kMessageInfo);
    if (!mac_ok(d.keys->auth_key, mac_prefix(s.ad, m.header), m.cipher, m.hmac)) {
        d.status = DecryptStatus::bad_mac;
        return;
    }
    if (m.cipher.size() > kMaxPlaintext + 32) {
        d.status = DecryptStatus::bad_padding;
        return;
    }
    auto padded = crypto::aes_cbc_decrypt_raw(d.keys->enc_key, d.keys->iv, m.cipher);
    if (!padded) {
        d.status = DecryptStatus::bad_padding;
        return;
    }
    if (keep_padding) {
        d.plaintext = std::move(*padded);
        d.status = DecryptStatus::ok;
        return;
    }
    auto plain = pkcs7_unpad32(*padded);
    if (!plain) {
        d.status = DecryptStatus::bad_padding;
        return;
    }
    d.plaintext = std::move(*plain);
    d.status = DecryptStatus::ok;
}

}  // namespace

Decrypted Ratchet::decrypt(const RatchetMessage& m, const DecryptOptions& options) {
    // Every step works on a copy. Clean, the copy replaces the state only
    // when the message opened; the original commits it whatever happened,
    // which is what mutating in place and raising would leave behind.
    RatchetState s = m_state;
    Decrypted d;
    const Header& h = m.header;
    auto skipped = std::find_if(s.skipped.begin(), s.skipped.end(),
                                [&](const SkippedKey& k) { return k.n == h.n && k.dh == h.dh; });
    if (skipped != s.skipped.end()) {
        // TrySkippedMessageKeys: the key leaves the store before the MAC check.
        Key32 mk = skipped->mk;
        s.skipped.erase(skipped);
        d.from_skipped = true;
        open_with(s, m, mk, options.padded_skipped_plaintext, d);
    } else {
        bool stepped_ok = true;
        if (!s.dhr || *s.dhr != h.dh) {
            d.dh_step = true;
            if (!skip_keys(s, h.pn)) {
                d.status = DecryptStatus::too_many_skipped;
                stepped_ok = false;
            } else {
                // DHRatchet.
                s.pn = s.ns;
                s.ns = 0;
                s.nr = 0;
                s.dhr = h.dh;
                auto dh = crypto::x25519(s.dhs.private_key, h.dh);
                if (!dh) {
                    d.status = DecryptStatus::bad_key;
                    stepped_ok = false;
                } else {
                    auto [rk, ckr] = kdf_rk(s.rk, *dh);
                    s.rk = rk;
                    s.ckr = ckr;
                    s.dhs = new_key();
                    auto dh_send = crypto::x25519(s.dhs.private_key, h.dh);
                    if (!dh_send) {
                        d.status = DecryptStatus::bad_key;
                        stepped_ok = false;
                    } else {
                        auto [rk2, cks] = kdf_rk(s.rk, *dh_send);
                        s.rk = rk2;
                        s.cks = cks;
                    }
                }
            }
        }
        if (stepped_ok) {
            if (!skip_keys(s, h.n)) {
                d.status = DecryptStatus::too_many_skipped;
            } else if (!s.ckr) {
                // The initiator's DHr starts as SPK_B with no receiving chain:
                // a message under SPK_B has no key (the original crashes).
                d.status = DecryptStatus::bad_mac;
            } else {
                auto [next, mk] = kdf_ck(*s.ckr);
                s.ckr = next;
                ++s.nr;
                open_with(s, m, mk, false, d);
            }
        }
    }
    if (d.ok() || options.commit_before_mac) {
        d.state_changed = !(s == m_state);
        m_state = std::move(s);
    }
    return d;
}

// ---- state serialisation ---------------------------------------------------------------
//
// "MSR1", flags u8 (bit 0 DHr, bit 1 CKs, bit 2 CKr), DHs private (32),
// [DHr (32)], RK (32), [CKs (32)], [CKr (32)], Ns, Nr, PN (be64 each),
// AD (be16 length, bytes), skipped count (be16), then per key DHr (32),
// n (be64), mk (32), oldest first. DHs's public half is recomputed.

namespace {
constexpr std::string_view kStateMagic = "MSR1";
}

Bytes Ratchet::serialize() const {
    const RatchetState& s = m_state;
    Writer w(256 + s.skipped.size() * 72);
    w.bytes(kStateMagic);
    w.u8(static_cast<std::uint8_t>((s.dhr ? 1 : 0) | (s.cks ? 2 : 0) | (s.ckr ? 4 : 0)));
    w.bytes(s.dhs.private_key);
    if (s.dhr) w.bytes(*s.dhr);
    w.bytes(s.rk);
    if (s.cks) w.bytes(*s.cks);
    if (s.ckr) w.bytes(*s.ckr);
    w.be64(s.ns).be64(s.nr).be64(s.pn);
    w.prefixed(2, s.ad);
    w.be16(static_cast<std::uint16_t>(s.skipped.size()));
    for (const auto& k : s.skipped) w.bytes(k.dh).be64(k.n).bytes(k.mk);
    return w.take();
}

Result<Ratchet, ParseError> Ratchet::restore(ByteView bytes, Rng& rng) {
    Reader r(bytes);
    RatchetState s;
    if (to_string(r.bytes(4)) != kStateMagic) r.fail_at(0, ParseErrc::bad_magic, "not a ratchet state");
    std::uint8_t flags = r.u8();
    if (r.ok() && (flags & ~7u)) r.fail(ParseErrc::bad_value, "unknown flags");
    Key32 dhs = r.array<32>();
    s.dhs = {dhs, crypto::x25519_public(dhs)};
    if (flags & 1) s.dhr = r.array<32>();
    s.rk = r.array<32>();
    if (flags & 2) s.cks = r.array<32>();
    if (flags & 4) s.ckr = r.array<32>();
    s.ns = r.be64();
    s.nr = r.be64();
    s.pn = r.be64();
    if (r.ok() && (s.ns > kMaxCounter || s.nr > kMaxCounter || s.pn > kMaxCounter))
        r.fail(ParseErrc::bad_value, "counter over 2^63-1");
    ByteView ad = r.prefixed(2, kMaxAdBytes);
    s.ad.assign(ad.begin(), ad.end());
    std::uint16_t count = r.be16();
    if (r.ok() && count > kMaxSkippedKeys) r.fail(ParseErrc::length_over_limit, "too many skipped keys");
    for (std::uint16_t i = 0; r.ok() && i < count; ++i) {
        SkippedKey k;
        k.dh = r.array<32>();
        k.n = r.be64();
        k.mk = r.array<32>();
        if (r.ok() && k.n > kMaxCounter) r.fail(ParseErrc::bad_value, "skipped counter over 2^63-1");
        s.skipped.push_back(k);
    }
    r.expect_end();
    if (!r.ok()) return unexpected(r.error());
    return Ratchet(std::move(s), rng);
}

}  // namespace msglab::signal
