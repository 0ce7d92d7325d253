// C entry points for the Wireshark plugin, over msglab's own code.
#include "msglab_bridge.h"

#include <botan/mac.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "secmsg/codec.hpp"
#include "secmsg/segmsg_cipher.hpp"
#include "secmsg/session.hpp"
#include "socp/wire.hpp"

using namespace msglab;

struct msglab_keylog {
    KeyLog log;
};

namespace {

// ---- SOCP ----

// Bounds on what one capture can make the plugin keep.
constexpr std::size_t kSocpMaxIdentities = 65536;
constexpr std::size_t kSocpMaxOtherKeys = 8;
constexpr std::size_t kSocpMaxPrivateKeys = 1024;
constexpr std::size_t kSocpMaxGroupKeys = 256;
constexpr std::size_t kSocpMaxKeyFile = 1024 * 1024;
// Keys the plugin does RSA with: a modulus of at most this many bits and an
// exponent of at most a few bytes (the DER is not much longer than the
// modulus), so no key in a capture makes a verification slow.
constexpr std::size_t kSocpMaxKeyBits = 16384;

struct SocpKey {
    std::shared_ptr<const crypto::RsaPublicKey> key;
    std::string der;  // its DER SubjectPublicKeyInfo
    std::uint32_t frame = 0;
};

struct SocpIdentity {
    std::optional<SocpKey> pinned;  // the first signing key: later ones do not replace it (section 2.8, "pinned")
    std::vector<SocpKey> others;    // enc_pubkey: for matching private keys only
};

struct SocpPrivateKey {
    crypto::RsaPrivateKey key;
    std::string der;  // of its public half
    int source;
};

std::string as_string(ByteView b) { return {reinterpret_cast<const char *>(b.data()), b.size()}; }

std::optional<SocpKey> usable_key(std::string_view text, std::uint32_t frame) {
    auto decoded = socp::decode_key(text);
    if (!decoded) return std::nullopt;
    std::size_t bits = decoded->key.bits();
    Bytes der = decoded->key.spki_der();
    if (bits < 512 || bits > kSocpMaxKeyBits || der.size() > bits / 8 + 64) return std::nullopt;
    return SocpKey{std::make_shared<const crypto::RsaPublicKey>(std::move(decoded->key)), as_string(der), frame};
}

void copy_id(char (&out)[MSGLAB_SOCP_ID_MAX], std::string_view id) {
    std::size_t n = std::min(id.size(), sizeof out - 1);
    std::memcpy(out, id.data(), n);
    out[n] = '\0';
}

bool printable_utf8(const Bytes &raw) {
    if (raw.empty()) return false;
    std::string_view text(reinterpret_cast<const char *>(raw.data()), raw.size());
    // Control characters other than tab and line breaks make it binary.
    for (unsigned char c : text)
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
    try {
        (void)nlohmann::json(std::string(text)).dump();  // throws on invalid UTF-8
    } catch (const std::exception &) {
        return false;
    }
    return true;
}

}  // namespace

struct msglab_socp {
    std::map<std::string, SocpIdentity, std::less<>> ids;
    std::vector<SocpPrivateKey> privates;
    std::map<std::string, std::size_t, std::less<>> private_by_user;  // key log
    std::map<std::string, std::size_t, std::less<>> private_by_der;
    std::map<std::int64_t, Bytes> group_keys;
    std::deque<std::int64_t> group_order;  // oldest first
    std::optional<Bytes> unversioned_group_key;

    const SocpKey *key_of(std::string_view id) const {
        auto it = ids.find(id);
        return it != ids.end() && it->second.pinned ? &*it->second.pinned : nullptr;
    }

    void add_private(crypto::RsaPrivateKey key, int source, const std::string &user) {
        if (privates.size() >= kSocpMaxPrivateKeys) return;
        std::string der = as_string(key.public_key().spki_der());
        std::size_t index = privates.size();
        privates.push_back(SocpPrivateKey{std::move(key), der, source});
        private_by_der.emplace(der, index);
        if (!user.empty()) private_by_user.emplace(user, index);
    }

    // The recipient's private key: named in the key log, or one whose public
    // half the capture showed for that identity.
    const SocpPrivateKey *private_for(std::string_view id) const {
        if (auto it = private_by_user.find(id); it != private_by_user.end()) return &privates[it->second];
        auto it = ids.find(id);
        if (it == ids.end()) return nullptr;
        auto match = [&](const SocpKey &k) -> const SocpPrivateKey * {
            auto p = private_by_der.find(k.der);
            return p != private_by_der.end() ? &privates[p->second] : nullptr;
        };
        if (it->second.pinned)
            if (auto p = match(*it->second.pinned)) return p;
        for (const auto &k : it->second.others)
            if (auto p = match(k)) return p;
        return nullptr;
    }

    // A public key the capture shows for `id`. The first signing key is
    // pinned; a different one later is a conflict, returned with the frame of
    // the pinned one.
    std::optional<std::uint32_t> learn(const std::string &id, std::string_view text, std::uint32_t frame,
                                       bool signing) {
        if (id.empty() || id.size() >= MSGLAB_SOCP_ID_MAX) return std::nullopt;
        auto key = usable_key(text, frame);
        if (!key) return std::nullopt;
        auto it = ids.find(id);
        if (it == ids.end()) {
            if (ids.size() >= kSocpMaxIdentities) return std::nullopt;
            it = ids.emplace(id, SocpIdentity{}).first;
        }
        SocpIdentity &ident = it->second;
        if (signing) {
            if (!ident.pinned) {
                ident.pinned = std::move(*key);
                return std::nullopt;
            }
            if (ident.pinned->der != key->der) return ident.pinned->frame;
            return std::nullopt;
        }
        bool known = (ident.pinned && ident.pinned->der == key->der) ||
                     std::any_of(ident.others.begin(), ident.others.end(),
                                 [&](const SocpKey &k) { return k.der == key->der; });
        if (!known && ident.others.size() < kSocpMaxOtherKeys) ident.others.push_back(std::move(*key));
        return std::nullopt;
    }

    void add_group_key(std::optional<std::int64_t> version, Bytes key) {
        if (!version) {
            unversioned_group_key = std::move(key);
            return;
        }
        if (!group_keys.count(*version)) {
            group_order.push_back(*version);
            if (group_order.size() > kSocpMaxGroupKeys) {
                group_keys.erase(group_order.front());
                group_order.pop_front();
            }
        }
        group_keys[*version] = std::move(key);
    }
};

struct msglab_secmsg_ctx {
    secmsg::SegmsgCipher cipher;
    std::unique_ptr<Botan::MessageAuthenticationCode> mac;
};

extern "C" {

const msglab_keylog *msglab_keylog_cached(const char *path) {
    if (!path || !*path) return nullptr;
    // Dissection runs on one thread; an unreadable file is remembered as such.
    static std::map<std::string, std::unique_ptr<msglab_keylog>> cache;
    auto it = cache.find(path);
    if (it == cache.end()) {
        std::unique_ptr<msglab_keylog> log;
        try {
            log.reset(new msglab_keylog{KeyLog::load(path)});
        } catch (const std::exception &) {
        }
        it = cache.emplace(path, std::move(log)).first;
    }
    return it->second.get();
}

size_t msglab_keylog_size(const msglab_keylog *log) { return log ? log->log.size() : 0; }

int msglab_secmsg_keys(const msglab_keylog *log, const uint8_t session_id[8], uint8_t master[32],
                       uint8_t hmac_key[32]) {
    if (!log) return 0;
    auto keys = secmsg::keys_from_keylog(log->log, ByteView(session_id, 8));
    if (!keys) return 0;
    std::copy(keys->master.begin(), keys->master.end(), master);
    std::copy(keys->hmac_key.begin(), keys->hmac_key.end(), hmac_key);
    return 1;
}

void msglab_secmsg_ctr(const uint8_t master[32], const uint8_t *in, size_t len, uint8_t *out) {
    std::copy(in, in + len, out);
    secmsg::SegmsgCipher(ByteView(master, 32)).ctr_xor(out, len);
}

msglab_secmsg_ctx *msglab_secmsg_ctx_new(const uint8_t master[32], const uint8_t hmac_key[32]) {
    auto mac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
    mac->set_key(hmac_key, 32);
    return new msglab_secmsg_ctx{secmsg::SegmsgCipher(ByteView(master, 32)), std::move(mac)};
}

void msglab_secmsg_ctx_free(msglab_secmsg_ctx *ctx) { delete ctx; }

void msglab_secmsg_open(msglab_secmsg_ctx *ctx, const uint8_t *signed_part, size_t signed_len, size_t payload_len,
                        const uint8_t mac[32], uint8_t *plaintext, int *hmac_ok, int *hash_ok) {
    uint8_t computed[32];
    ctx->mac->update(signed_part, signed_len);
    ctx->mac->final(computed);
    *hmac_ok = crypto::constant_time_equal(ByteView(computed, 32), ByteView(mac, 32)) ? 1 : 0;
    const uint8_t *payload = signed_part + signed_len - payload_len;
    std::copy(payload, payload + payload_len, plaintext);
    ctx->cipher.ctr_xor(plaintext, payload_len);
    auto digest = crypto::sha256(ByteView(plaintext, payload_len));
    *hash_ok = std::equal(digest.begin(), digest.end(), signed_part + 11) ? 1 : 0;
}

void msglab_sha256(const uint8_t *data, size_t len, uint8_t out[32]) {
    auto d = crypto::sha256(ByteView(data, len));
    std::copy(d.begin(), d.end(), out);
}

int msglab_hmac_sha256_verify(const uint8_t key[32], const uint8_t *data, size_t len, const uint8_t tag[32]) {
    return crypto::hmac_sha256_verify(ByteView(key, 32), ByteView(data, len), ByteView(tag, 32)) ? 1 : 0;
}

int msglab_dh14_public_ok(const uint8_t *y, size_t len) {
    return crypto::dh14::public_value_ok(ByteView(y, len)) ? 1 : 0;
}

// ---- SLMP ----

long msglab_base64_decode(const char *text, size_t len, int url, uint8_t *out, size_t cap) {
    try {
        auto raw = crypto::base64_decode(std::string_view(text, len),
                                         url ? crypto::Base64Alphabet::url : crypto::Base64Alphabet::standard,
                                         crypto::Base64Padding::required);
        if (!raw || raw->size() > cap) return -1;
        std::copy(raw->begin(), raw->end(), out);
        return static_cast<long>(raw->size());
    } catch (const std::exception &) {
        return -1;
    }
}

int msglab_p256_spki_ok(const uint8_t *der, size_t len) {
    return crypto::P256PublicKey::from_spki_der(ByteView(der, len)) ? 1 : 0;
}

void msglab_slmp_session_id(const uint8_t *client_der, size_t client_len, const uint8_t *server_der,
                            size_t server_len, uint8_t session_id[8]) {
    Bytes both(client_der, client_der + client_len);
    both.insert(both.end(), server_der, server_der + server_len);
    auto d = crypto::sha256(both);
    std::copy(d.begin(), d.begin() + 8, session_id);
}

int msglab_slmp_key(const msglab_keylog *log, const uint8_t session_id[8], uint8_t key[32]) {
    if (!log) return 0;
    auto secret = log->log.find("SLMP_FERNET_KEY", ByteView(session_id, 8));
    if (!secret || secret->size() != 32) return 0;
    std::copy(secret->begin(), secret->end(), key);
    return 1;
}

long msglab_fernet_open(const uint8_t key[32], const char *token, size_t len, uint8_t *plaintext, size_t cap,
                        int *hmac_ok) {
    *hmac_ok = -1;
    try {
        auto k = fernet::Key::from_bytes(ByteView(key, 32));
        fernet::VerifyOptions options;
        options.check_future = false;  // SLMP checks no time; the dissector flags skew itself
        auto pt = fernet::decrypt(*k, std::string_view(token, len), 0, options);
        if (!pt) {
            if (pt.error().code == fernet::Errc::bad_mac) *hmac_ok = 0;
            if (pt.error().code == fernet::Errc::bad_padding) *hmac_ok = 1;
            return -1;
        }
        *hmac_ok = 1;
        if (pt->size() > cap) return -1;
        std::copy(pt->begin(), pt->end(), plaintext);
        return static_cast<long>(pt->size());
    } catch (const std::exception &) {
        return -1;
    }
}

void msglab_slmp_auth_token(const char *user, size_t user_len, const char *secret, char out[65]) {
    std::string text(user, user_len);
    text += secret;
    std::string h = hex(crypto::sha256(as_bytes(text)));
    std::copy(h.begin(), h.end(), out);
    out[64] = '\0';
}

// ---- SP-SimpleChat ----

long msglab_base64url_decode_unpadded(const char *text, size_t len, uint8_t *out, size_t cap) {
    try {
        auto raw = crypto::base64_decode(std::string_view(text, len), crypto::Base64Alphabet::url,
                                         crypto::Base64Padding::optional);
        if (!raw || raw->size() > cap) return -1;
        std::copy(raw->begin(), raw->end(), out);
        return static_cast<long>(raw->size());
    } catch (const std::exception &) {
        return -1;
    }
}

void msglab_spchat_file_key(const uint8_t session_key[32], const uint8_t *file_nonce, size_t nonce_len,
                            uint8_t file_key[32]) {
    Bytes key = crypto::hkdf_sha256(ByteView(session_key, 32), ByteView(file_nonce, nonce_len), as_bytes("file-key"),
                                    32);
    std::copy(key.begin(), key.end(), file_key);
}

long msglab_aes256_eax_open(const uint8_t key[32], const uint8_t *nonce, size_t nonce_len, const uint8_t *sealed,
                            size_t sealed_len, uint8_t *plaintext, size_t cap) {
    try {
        auto pt = crypto::aes_eax_decrypt(ByteView(key, 32), ByteView(nonce, nonce_len), {},
                                          ByteView(sealed, sealed_len));
        if (!pt || pt->size() > cap) return -1;
        std::copy(pt->begin(), pt->end(), plaintext);
        return static_cast<long>(pt->size());
    } catch (const std::exception &) {
        return -1;
    }
}

// ---- SOCP ----

int msglab_socp_key_info(const char *text, size_t len, unsigned *bits, int *encoding, uint8_t fingerprint[32]) {
    try {
        auto k = socp::decode_key(std::string_view(text, len));
        if (!k) return 0;
        *bits = static_cast<unsigned>(k->key.bits());
        *encoding = k->encoding == socp::KeyEncoding::pem ? MSGLAB_SOCP_KEY_PEM : MSGLAB_SOCP_KEY_DER;
        auto d = crypto::sha256(k->key.spki_der());
        std::copy(d.begin(), d.end(), fingerprint);
        return 1;
    } catch (const std::exception &) {
        return 0;
    }
}

msglab_socp *msglab_socp_new(void) {
    try {
        return new msglab_socp();
    } catch (const std::exception &) {
        return nullptr;
    }
}

void msglab_socp_free(msglab_socp *s) { delete s; }

size_t msglab_socp_private_key_count(const msglab_socp *s) { return s ? s->privates.size() : 0; }

size_t msglab_socp_load_keylog(msglab_socp *s, const msglab_keylog *log) {
    if (!s || !log) return 0;
    std::size_t taken = 0;
    try {
        for (const auto &e : log->log.entries()) {
            if (e.label != "SOCP_PRIVATE_KEY") continue;
            auto key = crypto::RsaPrivateKey::from_pkcs8_der(e.secret);
            if (!key) continue;
            s->add_private(std::move(*key), MSGLAB_SOCP_SOURCE_KEYLOG, as_string(e.session_id));
            ++taken;
        }
    } catch (const std::exception &) {
    }
    return taken;
}

size_t msglab_socp_load_private_keys(msglab_socp *s, const char *path) {
    if (!s || !path || !*path) return 0;
    namespace fs = std::filesystem;
    std::size_t taken = 0;
    auto load = [&](const fs::path &file) {
        std::error_code ec;
        if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) > kSocpMaxKeyFile || ec) return;
        std::ifstream in(file, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        if (auto key = crypto::RsaPrivateKey::from_pem(text.str())) {
            s->add_private(std::move(*key), MSGLAB_SOCP_SOURCE_KEY_FILE, "");
            ++taken;
        }
    };
    try {
        std::error_code ec;
        if (fs::is_directory(path, ec)) {
            std::vector<fs::path> files;
            for (const auto &entry : fs::directory_iterator(path, ec)) {
                if (files.size() >= kSocpMaxPrivateKeys) break;
                files.push_back(entry.path());
            }
            std::sort(files.begin(), files.end());
            for (const auto &f : files) load(f);
        } else {
            load(path);
        }
    } catch (const std::exception &) {
    }
    return taken;
}

namespace {

bool is_dm_type(std::string_view t) { return t == "MSG_DIRECT" || t == "USER_DELIVER" || t == "SERVER_DELIVER"; }
bool is_deliver_type(std::string_view t) { return t == "USER_DELIVER" || t == "SERVER_DELIVER"; }

void socp_learn_keys(msglab_socp *s, const socp::Envelope &e, std::uint32_t frame, msglab_socp_result *r) {
    const socp::Json &p = e.payload;
    auto note = [&](const std::string &id, std::optional<std::uint32_t> conflict) {
        if (!conflict || r->n_conflicts >= MSGLAB_SOCP_MAX_CONFLICTS) return;
        copy_id(r->conflict_id[r->n_conflicts], id);
        r->conflict_frame[r->n_conflicts++] = *conflict;
    };
    auto learn = [&](const std::string &id, const socp::Json &obj, const char *field, bool signing) {
        if (auto text = socp::string_field(obj, field)) note(id, s->learn(id, *text, frame, signing));
    };
    const std::string &t = e.type;
    if (t == "USER_HELLO" || t == "SERVER_HELLO_JOIN" || t == "SERVER_ANNOUNCE" || t == "SERVER_HELLO_LINK") {
        learn(e.from, p, "pubkey", true);
        learn(e.from, p, "enc_pubkey", false);
    } else if (t == "SERVER_WELCOME") {
        learn(e.from, p, "pubkey", true);
        for (const char *list : {"servers", "clients"}) {
            auto it = p.find(list);
            if (it == p.end() || !it->is_array()) continue;
            std::size_t n = 0;
            for (const auto &entry : *it) {
                if (++n > MSGLAB_SOCP_MAX_WRAPS * 4) break;
                auto id = socp::string_field(entry, "server_id");
                if (!id) id = socp::string_field(entry, "user_id");
                if (!id) id = socp::string_field(entry, "id");
                if (id) learn(*id, entry, "pubkey", true);
            }
        }
    } else if (t == "USER_ADVERTISE") {
        if (auto user = socp::string_field(p, "user_id")) {
            auto meta = p.find("meta");
            if (meta != p.end()) learn(*user, *meta, "pubkey", true);
            learn(*user, p, "pubkey", true);
        }
    }
    if (p.contains("sender_pub")) {
        std::string sender = e.from;
        if (is_deliver_type(t))
            if (auto named = socp::string_field(p, "sender")) sender = *named;
        learn(sender, p, "sender_pub", true);
    }
}

void socp_verify_sig(msglab_socp *s, const socp::Envelope &e, const char *link_sender, msglab_socp_result *r) {
    if (!e.sig || e.sig->empty()) {
        r->sig_status = MSGLAB_SOCP_SIG_MISSING;
        return;
    }
    // The originator's key, then the key of the side that sent it: a relaying
    // server re-signs what it forwards and keeps the originator's `from`.
    std::vector<std::pair<std::string, int>> candidates = {{e.from, MSGLAB_SOCP_SIGNER_FROM}};
    if (link_sender && e.from != link_sender) candidates.emplace_back(link_sender, MSGLAB_SOCP_SIGNER_PEER);
    bool all_known = true;
    for (const auto &[id, role] : candidates) {
        const SocpKey *k = s->key_of(id);
        if (!k) {
            if (all_known) copy_id(r->sig_no_key_for, id);
            all_known = false;
            continue;
        }
        if (auto canon = socp::verify_payload(*k->key, e.payload, *e.sig)) {
            r->sig_status = MSGLAB_SOCP_SIG_VERIFIED;
            r->sig_signer = role;
            copy_id(r->sig_key_owner, id);
            r->sig_key_frame = k->frame;
            r->sig_canon = socp::canon_name(*canon);
            r->sig_no_key_for[0] = '\0';
            return;
        }
    }
    // With the sending side unknown, a relay may have signed it.
    r->sig_status = all_known && link_sender ? MSGLAB_SOCP_SIG_BAD : MSGLAB_SOCP_SIG_NO_KEY;
}

void socp_verify_content(msglab_socp *s, const socp::Envelope &e, msglab_socp_result *r) {
    const socp::Json &p = e.payload;
    const std::string &t = e.type;
    std::string content, sender = e.from;
    std::optional<std::string> key_text;
    if (is_dm_type(t) || t == "MSG_PUBLIC_CHANNEL") {
        auto ct = socp::string_field(p, "ciphertext");
        if (!ct) return;
        if (is_deliver_type(t))
            if (auto named = socp::string_field(p, "sender")) sender = *named;
        std::string to = e.to;
        if (is_deliver_type(t))
            if (auto user = socp::string_field(p, "user_id")) to = *user;
        content = t == "MSG_PUBLIC_CHANNEL" ? socp::public_content(*ct, sender, e.ts)
                                            : socp::dm_content(*ct, sender, to, e.ts);
        key_text = socp::string_field(p, "sender_pub");
    } else if (t == "PUBLIC_CHANNEL_KEY_SHARE") {
        auto shares = p.find("shares");
        key_text = socp::string_field(p, "creator_pub");
        if (shares == p.end() || !key_text) return;
        content = socp::keyshare_content(*shares, *key_text);
        sender = "";
    } else {
        return;
    }
    auto sig = p.find("content_sig");
    if (sig == p.end()) return;
    copy_id(r->csig_sender, sender);
    if (!sig->is_string() || sig->get_ref<const std::string &>().empty()) {
        r->csig_status = MSGLAB_SOCP_SIG_MISSING;
        return;
    }
    const std::string &sig_text = sig->get_ref<const std::string &>();
    std::optional<SocpKey> given = key_text ? usable_key(*key_text, 0) : std::nullopt;
    const SocpKey *learnt = sender.empty() ? nullptr : s->key_of(sender);
    r->sender_pub_matches = given && learnt ? (given->der == learnt->der ? 1 : 0) : -1;
    if (!given && !learnt) {
        r->csig_status = MSGLAB_SOCP_SIG_NO_KEY;
        return;
    }
    // What the recipient checks it with (sender_pub), then the key the capture
    // learnt for the sender.
    if (given && socp::verify_content(*given->key, content, sig_text)) {
        r->csig_status = MSGLAB_SOCP_SIG_VERIFIED;
        r->csig_key = MSGLAB_SOCP_CSIG_KEY_SENDER_PUB;
        return;
    }
    if (learnt && (!given || given->der != learnt->der) && socp::verify_content(*learnt->key, content, sig_text)) {
        r->csig_status = MSGLAB_SOCP_SIG_VERIFIED;
        r->csig_key = MSGLAB_SOCP_CSIG_KEY_LEARNT;
        return;
    }
    r->csig_status = MSGLAB_SOCP_SIG_BAD;
}

void put_plaintext(const Bytes &plain, msglab_socp_result *r, uint8_t *out, size_t cap) {
    std::size_t n = std::min(plain.size(), cap);
    if (n) std::memcpy(out, plain.data(), n);
    r->plaintext_len = static_cast<long>(n);
}

void socp_open_wraps(msglab_socp *s, const socp::Envelope &e, msglab_socp_result *r) {
    const socp::Json &p = e.payload;
    bool updated = e.type == "PUBLIC_CHANNEL_UPDATED";
    if (!updated && e.type != "PUBLIC_CHANNEL_KEY_SHARE") return;
    auto list = p.find(updated ? "wraps" : "shares");
    if (list == p.end() || !list->is_array()) return;
    auto version = socp::int_field(p, "version");
    unsigned i = 0;
    for (const auto &w : *list) {
        if (i >= MSGLAB_SOCP_MAX_WRAPS) break;
        auto member = socp::string_field(w, updated ? "member_id" : "member");
        auto wrapped = socp::string_field(w, updated ? "wrapped_key" : "wrapped_public_channel_key");
        const SocpPrivateKey *priv = member ? s->private_for(*member) : nullptr;
        if (priv && wrapped) {
            auto key = socp::decrypt_with(priv->key, *wrapped, SystemRng::instance());
            if (key && key->size() == 32) {
                r->wraps_opened |= 1ull << i;
                s->add_group_key(version, std::move(*key));
                r->group_keys_learnt++;
            } else {
                r->wraps_failed |= 1ull << i;
            }
        }
        ++i;
    }
    r->wraps = i;
}

void socp_decrypt(msglab_socp *s, const socp::Envelope &e, msglab_socp_result *r, uint8_t *out, size_t cap) {
    const socp::Json &p = e.payload;
    const std::string &t = e.type;
    auto ct = socp::string_field(p, "ciphertext");
    if (!ct) return;
    if (is_dm_type(t) || t == "FILE_CHUNK") {
        std::string recipient = e.to;
        if (is_deliver_type(t))
            if (auto user = socp::string_field(p, "user_id")) recipient = *user;
        copy_id(r->dec_recipient, recipient);
        const SocpPrivateKey *priv = s->private_for(recipient);
        if (!priv) {
            r->dec_status = MSGLAB_SOCP_DEC_NO_KEY;
            return;
        }
        r->dec_source = priv->source;
        auto plain = socp::decrypt_with(priv->key, *ct, SystemRng::instance());
        if (!plain) {
            r->dec_status = MSGLAB_SOCP_DEC_FAILED;
            return;
        }
        r->dec_status = MSGLAB_SOCP_DEC_DECRYPTED;
        put_plaintext(*plain, r, out, cap);
        return;
    }
    if (t != "MSG_PUBLIC_CHANNEL") return;
    // msglab's format: AES-256-GCM under the group key of "key_version".
    auto version = socp::int_field(p, "key_version");
    std::vector<std::pair<std::optional<std::int64_t>, const Bytes *>> tries;
    if (version) {
        if (auto it = s->group_keys.find(*version); it != s->group_keys.end())
            tries.emplace_back(*version, &it->second);
    } else {
        for (auto v = s->group_order.rbegin(); v != s->group_order.rend(); ++v)
            tries.emplace_back(*v, &s->group_keys.at(*v));
        if (s->unversioned_group_key) tries.emplace_back(std::nullopt, &*s->unversioned_group_key);
    }
    for (const auto &[v, key] : tries) {
        if (auto plain = socp::group_decrypt(*key, *ct)) {
            r->dec_status = MSGLAB_SOCP_DEC_DECRYPTED;
            r->dec_source = MSGLAB_SOCP_SOURCE_GROUP_KEY;
            r->dec_group_version_known = v.has_value();
            r->dec_group_version = v.value_or(0);
            put_plaintext(Bytes(plain->begin(), plain->end()), r, out, cap);
            return;
        }
    }
    // The original's: base64 of the text itself.
    if (auto raw = socp::b64url_decode(*ct); raw && printable_utf8(*raw)) {
        r->dec_status = MSGLAB_SOCP_DEC_UNENCRYPTED;
        put_plaintext(*raw, r, out, cap);
        return;
    }
    r->dec_status = tries.empty() ? MSGLAB_SOCP_DEC_NO_KEY : MSGLAB_SOCP_DEC_FAILED;
}

}  // namespace

int msglab_socp_analyze(msglab_socp *s, const char *text, size_t len, const char *link_sender, uint32_t frame,
                        msglab_socp_result *r, uint8_t *plaintext, size_t cap) {
    std::memset(r, 0, sizeof *r);
    r->sender_pub_matches = -1;
    if (!s) return 0;
    try {
        auto e = socp::parse_envelope(std::string_view(text, len));
        if (!e.ok()) {
            std::snprintf(r->error, sizeof r->error, "%s", e.error().c_str());
            return 0;
        }
        r->parsed = 1;
        auto id = socp::message_id(*e);
        auto digest = crypto::sha256(as_bytes(id));
        std::copy(digest.begin(), digest.end(), r->message_id);
        r->known_type = socp::known_type(e->type) ? 1 : 0;
        r->server_signed_type = socp::server_signed_type(e->type) ? 1 : 0;
        socp_learn_keys(s, *e, frame, r);
        socp_verify_sig(s, *e, link_sender, r);
        socp_verify_content(s, *e, r);
        socp_open_wraps(s, *e, r);
        socp_decrypt(s, *e, r, plaintext, cap);
    } catch (const std::exception &) {
        // Whatever was decided before stays; a failure later is no result.
    }
    return r->parsed;
}

// ---- Signal-style chat ----

int msglab_signal_x3dh_sk(const msglab_keylog *log, const uint8_t epk[32], uint8_t sk[32]) {
    if (!log) return 0;
    auto secret = log->log.find("SIGNAL_X3DH_SK", ByteView(epk, 32));
    if (!secret || secret->size() != 32) return 0;
    std::copy(secret->begin(), secret->end(), sk);
    return 1;
}

int msglab_signal_message_key(const msglab_keylog *log, const uint8_t dh[32], uint64_t n, uint8_t mk[32]) {
    if (!log) return 0;
    uint8_t id[40];
    std::memcpy(id, dh, 32);
    for (int i = 0; i < 8; ++i) id[32 + i] = static_cast<uint8_t>(n >> (8 * (7 - i)));
    auto secret = log->log.find("SIGNAL_MESSAGE_KEY", ByteView(id, sizeof id));
    if (!secret || secret->size() != 32) return 0;
    std::copy(secret->begin(), secret->end(), mk);
    return 1;
}

long msglab_signal_open(const uint8_t key[32], int kind, const uint8_t *mac_input, size_t mac_input_len,
                        const uint8_t *ciphertext, size_t ct_len, const uint8_t mac[32], uint8_t *plaintext,
                        size_t cap, int *mac_status) {
    *mac_status = MSGLAB_SIGNAL_MAC_UNKNOWN;
    try {
        // PROTOCOLS.md 5.5: the salt is 80 zero bytes, longer than an HMAC block.
        const Bytes salt(80, 0);
        Bytes okm = crypto::hkdf_sha256(ByteView(key, 32), salt,
                                        as_bytes(kind == MSGLAB_SIGNAL_X3DH ? "X3DH" : "encrypt_info_kdf"), 80);
        ByteView enc_key(okm.data(), 32), auth_key(okm.data() + 32, 32), iv(okm.data() + 64, 16);
        if (mac_input) {
            // PKCS#7 with a 32-byte block over the associated data, then the ciphertext.
            Bytes signed_part(mac_input, mac_input + mac_input_len);
            std::size_t pad = 32 - mac_input_len % 32;
            signed_part.insert(signed_part.end(), pad, static_cast<uint8_t>(pad));
            signed_part.insert(signed_part.end(), ciphertext, ciphertext + ct_len);
            *mac_status = crypto::hmac_sha256_verify(auth_key, signed_part, ByteView(mac, 32))
                              ? MSGLAB_SIGNAL_MAC_GOOD
                              : MSGLAB_SIGNAL_MAC_BAD;
        }
        auto padded = crypto::aes_cbc_decrypt_raw(enc_key, iv, ByteView(ciphertext, ct_len));
        if (!padded || padded->size() % 32 != 0) return -1;
        std::size_t p = padded->back();
        if (p < 1 || p > 32) return -1;
        for (std::size_t i = padded->size() - p; i < padded->size(); ++i)
            if ((*padded)[i] != p) return -1;
        std::size_t n = std::min(padded->size() - p, cap);
        std::copy(padded->begin(), padded->begin() + static_cast<std::ptrdiff_t>(n), plaintext);
        return static_cast<long>(n);
    } catch (const std::exception &) {
        return -1;
    }
}

}  // extern "C"
