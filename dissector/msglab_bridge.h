/* The C interface the dissector uses to reach msglab's C++ core: key log
 * parsing, SecMsg key derivation, the SegMSG cipher and the hashes; for
 * SLMP base64, P-256 key checks and Fernet; for SP-SimpleChat base64url,
 * the file key and AES-EAX; for SOCP the envelope, keys, signatures and
 * decryption of reference/socp/wire.hpp, so the dissector and msglab agree. */
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


/* ---- SOCP v1.3 ---- */

/* Bounds of the SOCP analysis: identities are at most 256 bytes (the wire
 * layer's bound on type, from and to) plus a NUL. */
#define MSGLAB_SOCP_ID_MAX 257
#define MSGLAB_SOCP_MAX_CONFLICTS 4
/* Wraps and shares whose outcome is reported, bit i for element i. */
#define MSGLAB_SOCP_MAX_WRAPS 64

enum { MSGLAB_SOCP_KEY_DER = 1, MSGLAB_SOCP_KEY_PEM = 2 };

/* An RSA public key as SOCP carries it (base64url of DER SPKI or of PEM
 * text, or bare PEM): 1 with its size, encoding and the SHA-256 of its DER
 * SubjectPublicKeyInfo, else 0. */
int msglab_socp_key_info(const char *text, size_t len, unsigned *bits, int *encoding, uint8_t fingerprint[32]);

/* The keys one capture has shown so far, the private keys the user gave,
 * and the group keys they opened. */
typedef struct msglab_socp msglab_socp;
msglab_socp *msglab_socp_new(void);
void msglab_socp_free(msglab_socp *s);
/* SOCP_PRIVATE_KEY <hex of the user id> <hex of the PKCS#8 DER> lines of a
 * key log; returns the number of keys taken. */
size_t msglab_socp_load_keylog(msglab_socp *s, const msglab_keylog *log);
/* A PEM private key (PKCS#8) file, or every such file in a folder; returns
 * the number of keys taken. A key applies to the user whose public key in the
 * capture is its public half. */
size_t msglab_socp_load_private_keys(msglab_socp *s, const char *path);
size_t msglab_socp_private_key_count(const msglab_socp *s);

enum {
    MSGLAB_SOCP_SIG_MISSING = 1, /* absent or empty */
    MSGLAB_SOCP_SIG_VERIFIED,
    MSGLAB_SOCP_SIG_BAD,         /* every candidate key known, none verifies */
    MSGLAB_SOCP_SIG_NO_KEY,      /* a candidate signer's key is not in the capture */
};
enum { MSGLAB_SOCP_SIGNER_FROM = 1, MSGLAB_SOCP_SIGNER_PEER };
enum { MSGLAB_SOCP_CSIG_KEY_SENDER_PUB = 1, MSGLAB_SOCP_CSIG_KEY_LEARNT };
enum {
    MSGLAB_SOCP_DEC_NO_KEY = 1,   /* no private key for the recipient / no group key */
    MSGLAB_SOCP_DEC_DECRYPTED,
    MSGLAB_SOCP_DEC_FAILED,       /* the key is there, the ciphertext does not open */
    MSGLAB_SOCP_DEC_UNENCRYPTED,  /* base64 of printable UTF-8, not a ciphertext */
};
enum { MSGLAB_SOCP_SOURCE_KEYLOG = 1, MSGLAB_SOCP_SOURCE_KEY_FILE, MSGLAB_SOCP_SOURCE_GROUP_KEY };

typedef struct {
    int parsed;       /* parse_envelope accepted it; nothing below is set otherwise */
    char error[128];  /* why not */
    uint8_t message_id[32]; /* SHA-256 of section 8.3's (ts, from, to, payload hash) */
    int known_type;
    int server_signed_type;

    int sig_status;
    int sig_signer;                       /* MSGLAB_SOCP_SIGNER_*, when verified */
    char sig_key_owner[MSGLAB_SOCP_ID_MAX]; /* whose key verified it */
    uint32_t sig_key_frame;               /* where that key was learnt */
    const char *sig_canon;                /* the canonical form that verified (static) */
    /* NO_KEY: the identity without a key; empty: the sending side is unknown. */
    char sig_no_key_for[MSGLAB_SOCP_ID_MAX];

    int csig_status;                      /* 0: no content_sig here; else MSGLAB_SOCP_SIG_* */
    int csig_key;                         /* MSGLAB_SOCP_CSIG_KEY_*, when checked */
    char csig_sender[MSGLAB_SOCP_ID_MAX]; /* the identity the content signature speaks for */
    int sender_pub_matches;               /* -1 nothing to compare; 0 or 1 against the learnt key */

    int dec_status;                       /* 0: nothing to decrypt here */
    int dec_source;                       /* MSGLAB_SOCP_SOURCE_* */
    char dec_recipient[MSGLAB_SOCP_ID_MAX];
    int64_t dec_group_version;            /* the group key's version */
    int dec_group_version_known;
    long plaintext_len;                   /* bytes written to the caller's buffer */

    unsigned wraps;                       /* wraps (or shares) in the payload */
    uint64_t wraps_opened, wraps_failed;  /* bit i: element i opened / its key did not open it */
    unsigned group_keys_learnt;

    unsigned n_conflicts;                 /* a signing key unlike the one learnt earlier */
    char conflict_id[MSGLAB_SOCP_MAX_CONFLICTS][MSGLAB_SOCP_ID_MAX];
    uint32_t conflict_frame[MSGLAB_SOCP_MAX_CONFLICTS];
} msglab_socp_result;

/* One WebSocket text message in frame `frame`, in capture order: parses the
 * envelope, learns the public keys it carries, verifies the transport
 * signature with the key of `from` and of `link_sender` (the identity of the
 * connection's side that sent it, NULL when unknown), the content signature,
 * decrypts a DM for a recipient whose private key is known, opens group key
 * wraps and public channel messages. The plaintext goes to `plaintext` (at
 * most `cap` bytes). Returns r->parsed. */
int msglab_socp_analyze(msglab_socp *s, const char *text, size_t len, const char *link_sender, uint32_t frame,
                        msglab_socp_result *r, uint8_t *plaintext, size_t cap);

/* ---- Signal-style chat ---- */

/* SIGNAL_X3DH_SK <hex of the 32-byte ephemeral key> <hex of SK>: 1 with the
 * 32-byte SK when the key log has it. */
int msglab_signal_x3dh_sk(const msglab_keylog *log, const uint8_t epk[32], uint8_t sk[32]);
/* SIGNAL_MESSAGE_KEY <hex of header dh (32 bytes) || n (8 bytes big-endian)>
 * <hex of mk>: 1 with the 32-byte message key when the key log has it. */
int msglab_signal_message_key(const msglab_keylog *log, const uint8_t dh[32], uint64_t n, uint8_t mk[32]);

enum { MSGLAB_SIGNAL_X3DH = 1, MSGLAB_SIGNAL_MESSAGE };
enum { MSGLAB_SIGNAL_MAC_UNKNOWN = 1, MSGLAB_SIGNAL_MAC_GOOD, MSGLAB_SIGNAL_MAC_BAD };

/* Opens a ciphertext of the Signal-style chat (PROTOCOLS.md 5.5 and 5.6):
 * HKDF-SHA256(IKM = key, salt = 80 zero bytes, info = "X3DH" for
 * MSGLAB_SIGNAL_X3DH or "encrypt_info_kdf" for MSGLAB_SIGNAL_MESSAGE, L = 80)
 * gives the AES-256-CBC key, the HMAC key and the IV. The MAC is
 * HMAC-SHA256(auth_key, PKCS7_32(mac_input) || ciphertext): mac_input is the
 * AD (the X3DH message) or AD || dh || pn || n (a ratchet message); NULL when
 * it is not known, which leaves *mac_status MSGLAB_SIGNAL_MAC_UNKNOWN. Writes
 * the plaintext without its 32-byte PKCS#7 padding (at most `cap` bytes) and
 * returns its length; -1 when the ciphertext is no non-empty multiple of 16
 * bytes or the padding is wrong (a wrong key). */
long msglab_signal_open(const uint8_t key[32], int kind, const uint8_t *mac_input, size_t mac_input_len,
                        const uint8_t *ciphertext, size_t ct_len, const uint8_t mac[32], uint8_t *plaintext,
                        size_t cap, int *mac_status);

#ifdef __cplusplus
}
#endif

#endif
