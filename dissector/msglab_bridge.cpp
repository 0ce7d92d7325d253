// C entry points for the Wireshark plugin, over msglab's own code.
#include "msglab_bridge.h"

#include <botan/mac.h>

#include <exception>
#include <map>
#include <memory>
#include <string>

#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "secmsg/codec.hpp"
#include "secmsg/segmsg_cipher.hpp"
#include "secmsg/session.hpp"

using namespace msglab;

struct msglab_keylog {
    KeyLog log;
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

}  // extern "C"
