/* The C interface the dissector uses to reach msglab's C++ core: key log
 * parsing, SecMsg key derivation, the SegMSG cipher and the hashes; for
 * SLMP base64, P-256 key checks and Fernet; for SP-SimpleChat base64url,
 * the file key and AES-EAX. */
#ifndef MSGLAB_BRIDGE_H
#define MSGLAB_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msglab_keylog msglab_keylog;

/* The key log at `path`, read on first use and kept for the life of the
 * plugin, one per path, shared by every protocol's dissector; NULL for an
 * empty path or a file that cannot be read. Junk lines are skipped. */
const msglab_keylog *msglab_keylog_cached(const char *path);
size_t msglab_keylog_size(const msglab_keylog *log);

/* The keys of a SecMsg session (8-byte id): 1 when the key log has them. */
int msglab_secmsg_keys(const msglab_keylog *log, const uint8_t session_id[8], uint8_t master[32],
                       uint8_t hmac_key[32]);
/* SegMSG-CTR with master[0:16]: the same call encrypts and decrypts. */
void msglab_secmsg_ctr(const uint8_t master[32], const uint8_t *in, size_t len, uint8_t *out);

/* A session's keys, expanded once: opening a REGULAR packet then costs no
 * key setup. */
typedef struct msglab_secmsg_ctx msglab_secmsg_ctx;
msglab_secmsg_ctx *msglab_secmsg_ctx_new(const uint8_t master[32], const uint8_t hmac_key[32]);
void msglab_secmsg_ctx_free(msglab_secmsg_ctx *ctx);
/* Checks the HMAC over `signed_part` (header and payload), decrypts the
 * payload (the last `payload_len` bytes of it) into `plaintext` and checks
 * the plaintext hash at bytes 11..43. Sets *hmac_ok and *hash_ok. */
void msglab_secmsg_open(msglab_secmsg_ctx *ctx, const uint8_t *signed_part, size_t signed_len, size_t payload_len,
                        const uint8_t mac[32], uint8_t *plaintext, int *hmac_ok, int *hash_ok);

void msglab_sha256(const uint8_t *data, size_t len, uint8_t out[32]);
int msglab_hmac_sha256_verify(const uint8_t key[32], const uint8_t *data, size_t len, const uint8_t tag[32]);
/* 1 when 1 < y < p-1 in RFC 3526 group 14. */
int msglab_dh14_public_ok(const uint8_t *y, size_t len);

/* ---- SLMP ---- */

/* Strict RFC 4648 decoding with '=' padding (url: the URL-safe alphabet).
 * Returns the decoded length, or -1 when the text is not base64 or the
 * result would not fit `cap` bytes. */
long msglab_base64_decode(const char *text, size_t len, int url, uint8_t *out, size_t cap);
/* 1 when `der` is a SubjectPublicKeyInfo of a valid P-256 point. */
int msglab_p256_spki_ok(const uint8_t *der, size_t len);
/* The session id: the first 8 bytes of SHA-256(client DER || server DER). */
void msglab_slmp_session_id(const uint8_t *client_der, size_t client_len, const uint8_t *server_der,
                            size_t server_len, uint8_t session_id[8]);
/* The 32-byte Fernet key of a session (SLMP_FERNET_KEY): 1 when the key log
 * has it. */
int msglab_slmp_key(const msglab_keylog *log, const uint8_t session_id[8], uint8_t key[32]);
/* Opens a Fernet token (its base64url text) with a 32-byte key, without any
 * time check. Sets *hmac_ok to 1 or 0, or to -1 when the text is not a token
 * (base64, version 0x80, length); when the HMAC verifies and the padding is
 * right writes the plaintext (at most `cap` bytes) and returns its length,
 * else returns -1. */
long msglab_fernet_open(const uint8_t key[32], const char *token, size_t len, uint8_t *plaintext, size_t cap,
                        int *hmac_ok);
/* Lowercase hex SHA-256(user || secret): 64 characters and a NUL. */
void msglab_slmp_auth_token(const char *user, size_t user_len, const char *secret, char out[65]);

/* ---- SP-SimpleChat ---- */

/* RFC 4648 base64url with '=' padding optional (the original sends none).
 * Returns the decoded length, or -1 when the text is not base64url or the
 * result would not fit `cap` bytes. */
long msglab_base64url_decode_unpadded(const char *text, size_t len, uint8_t *out, size_t cap);
/* A file's key: HKDF-SHA256(IKM = session_key, salt = file_nonce,
 * info = "file-key", L = 32). */
void msglab_spchat_file_key(const uint8_t session_key[32], const uint8_t *file_nonce, size_t nonce_len,
                            uint8_t file_key[32]);
/* AES-256-EAX with a 16-byte tag and no associated data: `sealed` is the
 * ciphertext and the tag. When the tag verifies writes the plaintext (at most
 * `cap` bytes) and returns its length, else returns -1. */
long msglab_aes256_eax_open(const uint8_t key[32], const uint8_t *nonce, size_t nonce_len, const uint8_t *sealed,
                            size_t sealed_len, uint8_t *plaintext, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
