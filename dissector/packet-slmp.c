/* SLMP (amirmfallah/slmp) for Wireshark: the two PEM keys and the two Fernet
 * tokens of a connection, each unit delimited by its own shape (SLMP has no
 * framing), the key exchange as a session, decryption from msglab's key log,
 * and expert infos for what a reviewer hunts: replayed client keys, a static
 * server key, tokens forgeable from the shared secret, HMAC mismatches, stale
 * timestamps, and the inputs that crash the original server.
 * Wire format: PROTOCOLS.md section 3. */
#include <wireshark.h>
#include <epan/conversation.h>
#include <epan/expert.h>
#include <epan/oids.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/prefs-int.h>
#include <epan/proto_data.h>
#include <wsutil/to_str.h>

#include <stdlib.h>
#include <string.h>

#include "msglab_bridge.h"

#define SLMP_PORT 9999
/* The original reads every unit with a single recv(1024). */
#define SLMP_RECV_LIMIT 1024
/* Reassembly never waits for a unit longer than this. */
#define SLMP_UNIT_MAX (64u * 1024u)
/* version(1) + timestamp(8) + IV(16) + HMAC(32); the ciphertext is 16k bytes, k >= 1. */
#define FERNET_OVERHEAD 57
#define FERNET_VERSION 0x80

static const char PEM_BEGIN[] = "-----BEGIN ";
static const char PEM_BEGIN_KEY[] = "-----BEGIN PUBLIC KEY-----\n";
static const char PEM_END[] = "-----END ";
static const char PEM_DASHES[] = "-----";
static const char TOKEN_START[] = "gAAAAA";
#define LIT_LEN(s) ((guint)(sizeof(s) - 1))

/* DER contents of the OIDs the key checks name. */
static const guint8 OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const guint8 OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

void proto_register_slmp(void);
void proto_reg_handoff_slmp(void);

static int proto_slmp = -1;
static dissector_handle_t slmp_handle;

static int hf_unit = -1;
static int hf_session_id = -1;
static int hf_response_in = -1;
static int hf_request_in = -1;
static int hf_pem = -1;
static int hf_pem_length = -1;
static int hf_der = -1;
static int hf_key_role = -1;
static int hf_key_algorithm = -1;
static int hf_key_curve = -1;
static int hf_key_curve_name = -1;
static int hf_key_point = -1;
static int hf_key_x = -1;
static int hf_key_y = -1;
static int hf_key_first_seen = -1;
static int hf_fernet = -1;
static int hf_fernet_length = -1;
static int hf_fernet_version = -1;
static int hf_fernet_timestamp = -1;
static int hf_fernet_iv = -1;
static int hf_fernet_ciphertext = -1;
static int hf_fernet_hmac = -1;
static int hf_hmac_status = -1;
static int hf_plaintext = -1;
static int hf_token = -1;
static int hf_user = -1;
static int hf_message = -1;
static int hf_data = -1;

static gint ett_slmp = -1;
static gint ett_key = -1;
static gint ett_fernet = -1;
static gint ett_plaintext = -1;

static expert_field ei_client_key_reused = EI_INIT;
static expert_field ei_server_key_reused = EI_INIT;
static expert_field ei_timestamp_skew = EI_INIT;
static expert_field ei_hmac_mismatch = EI_INIT;
static expert_field ei_bad_padding = EI_INIT;
static expert_field ei_malformed_pem = EI_INIT;
static expert_field ei_not_p256 = EI_INIT;
static expert_field ei_malformed_token = EI_INIT;
static expert_field ei_over_recv_limit = EI_INIT;
static expert_field ei_field_count = EI_INIT;
static expert_field ei_not_utf8 = EI_INIT;
static expert_field ei_token_forgeable = EI_INIT;
static expert_field ei_token_not_from_secret = EI_INIT;
static expert_field ei_unit_incomplete = EI_INIT;
static expert_field ei_not_slmp = EI_INIT;
static expert_field ei_unexpected_unit = EI_INIT;
static expert_field ei_no_key = EI_INIT;

/* Preferences. */
static const char *pref_keylog_file = "";
static guint pref_max_skew = 300;
static const char *pref_shared_secret = "my_secret";

enum { UNIT_OTHER = 0, UNIT_CLIENT_KEY = 1, UNIT_SERVER_KEY = 2, UNIT_REQUEST = 3, UNIT_REPLY = 4 };
enum { ROLE_SERVER = 0, ROLE_CLIENT = 1 };
enum { HMAC_UNCHECKED = 0, HMAC_GOOD = 1, HMAC_BAD = 2 };
enum { SHAPE_PEM, SHAPE_TOKEN, SHAPE_OTHER };

static const value_string unit_vals[] = {
    {UNIT_OTHER, "Not SLMP data"},
    {UNIT_CLIENT_KEY, "Client public key"},
    {UNIT_SERVER_KEY, "Server public key"},
    {UNIT_REQUEST, "Request token"},
    {UNIT_REPLY, "Reply token"},
    {0, NULL}};

static const value_string role_vals[] = {{ROLE_SERVER, "Server"}, {ROLE_CLIENT, "Client"}, {0, NULL}};

static const value_string hmac_status_vals[] = {
    {HMAC_UNCHECKED, "Not checked: no key for this session"},
    {HMAC_GOOD, "Good"},
    {HMAC_BAD, "Bad"},
    {0, NULL}};

/* Keys seen anywhere in the capture, one map per role: DER as hex -> the
 * first use. */
typedef struct {
    guint32 frame;
    void *conv;
} key_use;
static wmem_map_t *keys_seen[2];

/* This protocol's preference, else SecMsg's (one msglab key log holds the
 * secrets of every protocol), else MSGLAB_KEYLOGFILE. */
static const char *keylog_path(void)
{
    if (pref_keylog_file && *pref_keylog_file) return pref_keylog_file;
    module_t *secmsg = prefs_find_module("secmsg");
    pref_t *shared = secmsg ? prefs_find_preference(secmsg, "keylog_file") : NULL;
    const char *path = shared ? prefs_get_string_value(shared, pref_current) : NULL;
    if (path && *path) return path;
    const char *env = getenv("MSGLAB_KEYLOGFILE");
    return env ? env : "";
}

static const msglab_keylog *current_keylog(void) { return msglab_keylog_cached(keylog_path()); }

/* Per TCP conversation: the key exchange and the exchange of tokens. Arrays
 * are indexed by role (ROLE_CLIENT for what the client sent). */
typedef struct {
    address client_addr;
    guint32 client_port;
    gboolean have_client;
    guint32 units[2];      /* keys and tokens seen per direction */
    guint32 key_frame[2];  /* each side's first key */
    guint32 token_frame[2];
    const guint8 *der[2];
    guint der_len[2];
    gboolean have_session_id;
    guint8 session_id[8];
    gboolean have_key;
    guint8 fernet_key[32];
} slmp_conv;

/* A PEM key unit, parsed on the first pass. Offsets are into `der`. */
typedef struct {
    const char *problem; /* why it is malformed, or NULL */
    guint8 *der;
    guint der_len;
    gboolean spki; /* the DER walked as a SubjectPublicKeyInfo */
    guint alg_off, alg_len;
    guint curve_off, curve_len; /* curve_len 0: no named curve */
    guint point_off, point_len;
    gboolean p256;     /* id-ecPublicKey on P-256 */
    gboolean point_ok; /* and the point is on the curve */
} pem_info;

/* A token unit, decoded on the first pass. */
typedef struct {
    const char *problem;
    guint8 *raw; /* NULL when the text is not base64url */
    guint raw_len;
    guint8 hmac_status;
    gboolean bad_padding;
    guint8 *plaintext;
    guint plaintext_len;
} token_info;

typedef struct {
    slmp_conv *conv;
    gboolean from_client;
    guint32 index;          /* place among this direction's keys and tokens */
    gboolean first_of_kind; /* the key or token the links point at */
    guint32 reused_first;   /* frame of the first use of this key in another session */
    pem_info *pem;
    token_info *token;
} slmp_unit;

/* How the scanner delimited a unit. */
typedef struct {
    guint8 shape;
    guint length;
    gboolean need_more;
    gboolean unterminated; /* no end within the bound, or no reassembly to wait for one */
} unit_scan;

static gboolean is_alnum(guint8 c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static gboolean is_b64url(guint8 c) { return is_alnum(c) || c == '-' || c == '_'; }

static gboolean is_b64std(guint8 c) { return is_alnum(c) || c == '+' || c == '/'; }

static gboolean is_space(guint8 c) { return c == '\n' || c == '\r' || c == '\t' || c == ' '; }

/* What a PEM block may hold: printable ASCII and line breaks. */
static gboolean is_pem_text(guint8 c) { return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t'; }

/* The base64 length of a whole Fernet token: padded, and 57 + 16k bytes
 * decoded with k >= 1. */
static gboolean token_length_ok(const guint8 *d, guint n)
{
    if (n == 0 || n % 4 != 0) return FALSE;
    guint pads = 0;
    while (pads < 2 && d[n - 1 - pads] == '=') pads++;
    guint raw = n / 4 * 3 - pads;
    return raw >= FERNET_OVERHEAD + 16 && (raw - FERNET_OVERHEAD) % 16 == 0;
}

static gboolean starts_with(const guint8 *d, guint n, const char *lit, guint lit_len)
{
    return n >= lit_len && memcmp(d, lit, lit_len) == 0;
}

/* The first `lit` at or after `from`, or n. */
static guint find_lit(const guint8 *d, guint n, guint from, const char *lit, guint lit_len)
{
    for (guint i = from; i + lit_len <= n; i++)
        if (d[i] == (guint8)lit[0] && memcmp(d + i, lit, lit_len) == 0) return i;
    return n;
}

/* Delimits the unit at the front of d[0..n) (n >= 1). */
static unit_scan scan_unit(const guint8 *d, guint n)
{
    unit_scan s = {SHAPE_OTHER, 0, FALSE, FALSE};
    if (d[0] == '-') {
        if (n < LIT_LEN(PEM_BEGIN)) {
            s.shape = SHAPE_PEM;
            if (memcmp(d, PEM_BEGIN, n) == 0) {
                s.need_more = TRUE;
                return s;
            }
            s.shape = SHAPE_OTHER;
            s.length = n;
            return s;
        }
        if (!starts_with(d, n, PEM_BEGIN, LIT_LEN(PEM_BEGIN))) goto other;
        s.shape = SHAPE_PEM;
        for (guint i = LIT_LEN(PEM_BEGIN); i < n; i++) {
            if (!is_pem_text(d[i])) {
                /* The text stops here: a malformed key up to this byte. */
                s.length = i;
                return s;
            }
            if (d[i] != '-' || !starts_with(d + i, n - i, PEM_END, LIT_LEN(PEM_END))) continue;
            /* The END line: the unit ends after its line break. */
            for (guint j = i + LIT_LEN(PEM_END); j < n; j++) {
                if (d[j] == '\n') {
                    s.length = j + 1;
                    return s;
                }
                if (!is_pem_text(d[j])) {
                    s.length = j;
                    return s;
                }
            }
            /* The data ends inside the END line: whole when it ends in dashes
             * (a missing final newline), else more is on its way. */
            if (n - i >= LIT_LEN(PEM_END) + LIT_LEN(PEM_DASHES) &&
                memcmp(d + n - LIT_LEN(PEM_DASHES), PEM_DASHES, LIT_LEN(PEM_DASHES)) == 0) {
                s.length = n;
                return s;
            }
            break;
        }
        if (n >= SLMP_UNIT_MAX) {
            s.length = n;
            s.unterminated = TRUE;
            return s;
        }
        s.need_more = TRUE;
        return s;
    }
    if (is_b64url(d[0]) || d[0] == '=') {
        s.shape = SHAPE_TOKEN;
        guint run = 0;
        while (run < n && is_b64url(d[run])) run++;
        while (run < n && d[run] == '=') run++;
        /* Two tokens in one write: a whole token's length, then the next
         * token's start. */
        for (guint i = 4; i + LIT_LEN(TOKEN_START) <= run; i += 4) {
            if (token_length_ok(d, i) && memcmp(d + i, TOKEN_START, LIT_LEN(TOKEN_START)) == 0) {
                run = i;
                break;
            }
        }
        s.length = run;
        /* Whole when something follows, when padding closed it, or at a
         * token's length. */
        if (run < n || d[run - 1] == '=' || token_length_ok(d, run)) return s;
        /* Only the start of a Fernet token is worth waiting for. */
        if (memcmp(d, TOKEN_START, MIN(run, LIT_LEN(TOKEN_START))) != 0) return s;
        if (run >= SLMP_UNIT_MAX) {
            s.unterminated = TRUE;
            return s;
        }
        s.need_more = TRUE;
        return s;
    }
other:
    /* Up to where a key or a token could start again. */
    s.shape = SHAPE_OTHER;
    guint next_key = find_lit(d, n, 1, PEM_BEGIN, LIT_LEN(PEM_BEGIN));
    guint next_token = find_lit(d, n, 1, TOKEN_START, LIT_LEN(TOKEN_START));
    s.length = MIN(next_key, next_token);
    return s;
}

static slmp_conv *get_conv(packet_info *pinfo)
{
    conversation_t *conv = find_or_create_conversation(pinfo);
    slmp_conv *c = (slmp_conv *)conversation_get_proto_data(conv, proto_slmp);
    if (!c) {
        c = wmem_new0(wmem_file_scope(), slmp_conv);
        conversation_add_proto_data(conv, proto_slmp, c);
    }
    return c;
}

/* One DER TLV at *pos with the given tag (-1: any): its contents' length,
 * and *pos moved to them. Short and one- or two-byte long lengths only. */
static gboolean der_tlv(const guint8 *d, guint n, guint *pos, int tag, guint *len)
{
    guint p = *pos;
    if (p + 2 > n || (tag >= 0 && d[p] != (guint8)tag)) return FALSE;
    guint8 first = d[p + 1];
    p += 2;
    guint l;
    if (first < 0x80) {
        l = first;
    } else if (first == 0x81) {
        if (p + 1 > n) return FALSE;
        l = d[p];
        p += 1;
    } else if (first == 0x82) {
        if (p + 2 > n) return FALSE;
        l = ((guint)d[p] << 8) | d[p + 1];
        p += 2;
    } else {
        return FALSE;
    }
    if (l > n - p) return FALSE;
    *pos = p;
    *len = l;
    return TRUE;
}

/* SEQUENCE { SEQUENCE { OID algorithm, parameters }, BIT STRING key }. */
static gboolean walk_spki(pem_info *k)
{
    const guint8 *d = k->der;
    guint n = k->der_len, pos = 0, len, alg_end;
    if (!der_tlv(d, n, &pos, 0x30, &len) || pos + len != n) return FALSE;
    if (!der_tlv(d, n, &pos, 0x30, &len)) return FALSE;
    alg_end = pos + len;
    if (!der_tlv(d, alg_end, &pos, 0x06, &len) || len == 0) return FALSE;
    k->alg_off = pos;
    k->alg_len = len;
    pos += len;
    if (pos < alg_end) {
        if (d[pos] == 0x06) {
            if (!der_tlv(d, alg_end, &pos, 0x06, &len) || len == 0) return FALSE;
            k->curve_off = pos;
            k->curve_len = len;
        } else if (!der_tlv(d, alg_end, &pos, -1, &len)) {
            return FALSE;
        }
        pos += len;
    }
    if (pos != alg_end) return FALSE;
    if (!der_tlv(d, n, &pos, 0x03, &len) || len < 1 || pos + len != n) return FALSE;
    if (d[pos] != 0) return FALSE; /* unused bits */
    k->point_off = pos + 1;
    k->point_len = len - 1;
    return TRUE;
}

static gboolean oid_is(const pem_info *k, guint off, guint len, const guint8 *oid, guint oid_len)
{
    return len == oid_len && memcmp(k->der + off, oid, oid_len) == 0;
}

/* The PEM block d[0..n): label, base64 body, END line, DER. */
static pem_info *parse_pem(const guint8 *d, guint n)
{
    pem_info *k = wmem_new0(wmem_file_scope(), pem_info);
    guint line_end = find_lit(d, n, 0, "\n", 1);
    if (line_end == n) {
        k->problem = "no line break after the BEGIN line";
        return k;
    }
    guint begin_len = line_end;
    if (begin_len > 0 && d[begin_len - 1] == '\r') begin_len--;
    if (begin_len < LIT_LEN(PEM_BEGIN) + LIT_LEN(PEM_DASHES) ||
        memcmp(d + begin_len - LIT_LEN(PEM_DASHES), PEM_DASHES, LIT_LEN(PEM_DASHES)) != 0) {
        k->problem = "the BEGIN line does not end in five dashes";
        return k;
    }
    const guint8 *label = d + LIT_LEN(PEM_BEGIN);
    guint label_len = begin_len - LIT_LEN(PEM_BEGIN) - LIT_LEN(PEM_DASHES);
    guint end = find_lit(d, n, line_end + 1, PEM_END, LIT_LEN(PEM_END));
    if (end == n) {
        k->problem = "no END line";
        return k;
    }
    /* The END line names the same label, then dashes, then an optional line break. */
    guint after = end + LIT_LEN(PEM_END);
    guint end_line = n;
    while (end_line > after && is_space(d[end_line - 1])) end_line--;
    if (end_line - after != label_len + LIT_LEN(PEM_DASHES) || memcmp(d + after, label, label_len) != 0 ||
        memcmp(d + after + label_len, PEM_DASHES, LIT_LEN(PEM_DASHES)) != 0) {
        k->problem = "the END line does not match the BEGIN line";
        return k;
    }
    /* The base64 body, without its line breaks. */
    char *b64 = (char *)wmem_alloc(wmem_file_scope(), end - line_end);
    guint b64_len = 0;
    for (guint i = line_end + 1; i < end; i++) {
        if (is_space(d[i])) continue;
        if (!is_b64std(d[i]) && d[i] != '=') {
            k->problem = wmem_strdup_printf(wmem_file_scope(), "byte 0x%02x in the base64 body", d[i]);
            return k;
        }
        b64[b64_len++] = (char)d[i];
    }
    k->der = (guint8 *)wmem_alloc(wmem_file_scope(), b64_len / 4 * 3 + 3);
    long der_len = msglab_base64_decode(b64, b64_len, 0, k->der, b64_len / 4 * 3 + 3);
    if (der_len <= 0) {
        k->der = NULL;
        k->problem = "the body is not base64";
        return k;
    }
    k->der_len = (guint)der_len;
    k->spki = walk_spki(k);
    if (!k->spki) {
        k->problem = "the DER is not a SubjectPublicKeyInfo";
        return k;
    }
    if (label_len != 10 || memcmp(label, "PUBLIC KEY", 10) != 0) {
        k->problem = wmem_strdup_printf(wmem_file_scope(), "label \"%.*s\", not PUBLIC KEY", (int)MIN(label_len, 64),
                                        (const char *)label);
    }
    k->p256 = oid_is(k, k->alg_off, k->alg_len, OID_EC_PUBLIC_KEY, sizeof OID_EC_PUBLIC_KEY) &&
              oid_is(k, k->curve_off, k->curve_len, OID_P256, sizeof OID_P256);
    k->point_ok = k->p256 && msglab_p256_spki_ok(k->der, k->der_len);
    return k;
}

/* The Fernet token d[0..n): decoded, checked, opened when the session has a key. */
static token_info *parse_token(const guint8 *d, guint n, const slmp_conv *c)
{
    token_info *t = wmem_new0(wmem_file_scope(), token_info);
    t->raw = (guint8 *)wmem_alloc(wmem_file_scope(), n / 4 * 3 + 3);
    long raw_len = msglab_base64_decode((const char *)d, n, 1, t->raw, n / 4 * 3 + 3);
    if (raw_len <= 0) {
        t->raw = NULL;
        t->problem = "not base64url with '=' padding";
        return t;
    }
    t->raw_len = (guint)raw_len;
    if (t->raw_len < FERNET_OVERHEAD + 16 || (t->raw_len - FERNET_OVERHEAD) % 16 != 0) {
        t->problem = wmem_strdup_printf(wmem_file_scope(), "%u bytes decoded, not 57 + 16k (k >= 1)", t->raw_len);
    } else if (t->raw[0] != FERNET_VERSION) {
        t->problem = wmem_strdup_printf(wmem_file_scope(), "version 0x%02x, not 0x80", t->raw[0]);
    }
    if (!c->have_key || t->raw_len < FERNET_OVERHEAD || t->raw[0] != FERNET_VERSION) return t;
    t->plaintext = (guint8 *)wmem_alloc(wmem_file_scope(), t->raw_len);
    int hmac_ok = -1;
    long pt_len = msglab_fernet_open(c->fernet_key, (const char *)d, n, t->plaintext, t->raw_len, &hmac_ok);
    t->hmac_status = hmac_ok == 1 ? HMAC_GOOD : hmac_ok == 0 ? HMAC_BAD : HMAC_UNCHECKED;
    if (pt_len < 0) {
        t->plaintext = NULL;
        t->bad_padding = hmac_ok == 1;
    } else {
        t->plaintext_len = (guint)pt_len;
    }
    return t;
}

static slmp_unit *first_pass(tvbuff_t *tvb, packet_info *pinfo, const unit_scan *s)
{
    slmp_conv *c = get_conv(pinfo);
    slmp_unit *u = wmem_new0(wmem_file_scope(), slmp_unit);
    guint32 frame = pinfo->num;
    guint n = tvb_captured_length(tvb);
    const guint8 *d = (const guint8 *)tvb_memdup(pinfo->pool, tvb, 0, n);

    if (!c->have_client) {
        /* The client speaks first (section 3.1). */
        copy_address_wmem(wmem_file_scope(), &c->client_addr, &pinfo->src);
        c->client_port = pinfo->srcport;
        c->have_client = TRUE;
    }
    u->from_client = pinfo->srcport == c->client_port && addresses_equal(&pinfo->src, &c->client_addr);
    u->conv = c;
    int role = u->from_client ? ROLE_CLIENT : ROLE_SERVER;
    if (s->shape == SHAPE_OTHER) return u;
    u->index = c->units[role]++;

    if (s->shape == SHAPE_PEM) {
        u->pem = parse_pem(d, n);
        if (c->key_frame[role] == 0) {
            c->key_frame[role] = frame;
            u->first_of_kind = TRUE;
            if (u->pem->der && u->pem->spki) {
                c->der[role] = u->pem->der;
                c->der_len[role] = u->pem->der_len;
            }
        }
        if (u->pem->der && u->pem->spki) {
            /* A key in two sessions: keyed on its DER across the capture. */
            char *der_hex = (char *)wmem_alloc(wmem_file_scope(), 2 * u->pem->der_len + 1);
            *bytes_to_hexstr(der_hex, u->pem->der, u->pem->der_len) = '\0';
            key_use *seen = (key_use *)wmem_map_lookup(keys_seen[role], der_hex);
            if (!seen) {
                seen = wmem_new(wmem_file_scope(), key_use);
                seen->frame = frame;
                seen->conv = c;
                wmem_map_insert(keys_seen[role], der_hex, seen);
            } else if (seen->conv != c) {
                u->reused_first = seen->frame;
            }
        }
        if (!c->have_session_id && c->der[ROLE_CLIENT] && c->der[ROLE_SERVER]) {
            msglab_slmp_session_id(c->der[ROLE_CLIENT], c->der_len[ROLE_CLIENT], c->der[ROLE_SERVER],
                                   c->der_len[ROLE_SERVER], c->session_id);
            c->have_session_id = TRUE;
            const msglab_keylog *log = current_keylog();
            c->have_key = log && msglab_slmp_key(log, c->session_id, c->fernet_key);
        }
    } else {
        if (c->token_frame[role] == 0) {
            c->token_frame[role] = frame;
            u->first_of_kind = TRUE;
        }
        u->token = parse_token(d, n, c);
    }
    return u;
}

static proto_item *add_generated_uint(proto_tree *tree, int hf, tvbuff_t *tvb, guint32 value)
{
    proto_item *gi = proto_tree_add_uint(tree, hf, tvb, 0, 0, value);
    proto_item_set_generated(gi);
    return gi;
}

static const char *curve_name(packet_info *pinfo, const pem_info *k)
{
    if (k->curve_len == 0) return "no named curve";
    if (oid_is(k, k->curve_off, k->curve_len, OID_P256, sizeof OID_P256)) return "P-256 (secp256r1)";
    return oid_resolved_from_encoded(pinfo->pool, k->der + k->curve_off, (gint)k->curve_len);
}

static void dissect_key(tvbuff_t *tvb, packet_info *pinfo, proto_tree *st, const slmp_unit *u)
{
    const pem_info *k = u->pem;
    guint n = tvb_captured_length(tvb);
    proto_item *pem_item = proto_tree_add_item(st, hf_pem, tvb, 0, n, ENC_ASCII);
    proto_item_set_generated(proto_tree_add_uint(st, hf_pem_length, tvb, 0, n, n));
    guint32 role = u->from_client ? ROLE_CLIENT : ROLE_SERVER;
    proto_item_set_generated(proto_tree_add_uint(st, hf_key_role, tvb, 0, 0, role));
    if (k->problem) expert_add_info_format(pinfo, pem_item, &ei_malformed_pem, "Malformed PEM key: %s", k->problem);
    if (!k->der) return;

    tvbuff_t *der = tvb_new_child_real_data(tvb, k->der, k->der_len, k->der_len);
    add_new_data_source(pinfo, der, "SLMP key (DER)");
    proto_item *der_item = proto_tree_add_item(st, hf_der, der, 0, k->der_len, ENC_NA);
    if (!k->spki) return;
    proto_tree *kt = proto_item_add_subtree(der_item, ett_key);
    proto_tree_add_item(kt, hf_key_algorithm, der, k->alg_off, k->alg_len, ENC_NA);
    const char *curve = curve_name(pinfo, k);
    if (k->curve_len) proto_tree_add_item(kt, hf_key_curve, der, k->curve_off, k->curve_len, ENC_NA);
    proto_item *name = proto_tree_add_string(kt, hf_key_curve_name, der, k->curve_off, k->curve_len, curve);
    proto_item_set_generated(name);
    proto_item *point = proto_tree_add_item(kt, hf_key_point, der, k->point_off, k->point_len, ENC_NA);
    if (k->point_len >= 1) {
        guint8 form = k->der[k->point_off];
        guint coord = (k->point_len - 1) / 2;
        if (form == 0x04 && k->point_len % 2 == 1 && coord > 0) {
            proto_tree_add_item(kt, hf_key_x, der, k->point_off + 1, coord, ENC_NA);
            proto_tree_add_item(kt, hf_key_y, der, k->point_off + 1 + coord, coord, ENC_NA);
        } else if ((form == 0x02 || form == 0x03) && k->point_len > 1) {
            proto_tree_add_item(kt, hf_key_x, der, k->point_off + 1, k->point_len - 1, ENC_NA);
        }
    }
    if (!k->p256) {
        char *alg = oid_resolved_from_encoded(pinfo->pool, k->der + k->alg_off, (gint)k->alg_len);
        expert_add_info_format(pinfo, name, &ei_not_p256,
                               "Not a P-256 key (algorithm %s, curve %s): the original server crashes on it", alg,
                               curve);
    } else if (!k->point_ok) {
        expert_add_info_format(pinfo, point, &ei_not_p256,
                               "Not a valid P-256 point: the original server crashes on it");
    }
    if (u->reused_first) {
        proto_item *gi = add_generated_uint(st, hf_key_first_seen, tvb, u->reused_first);
        if (u->from_client)
            expert_add_info_format(pinfo, gi, &ei_client_key_reused,
                                   "Client key reused: first seen in frame %u, in another session (a replay)",
                                   u->reused_first);
        else
            expert_add_info_format(pinfo, gi, &ei_server_key_reused,
                                   "Server key reused: the same key as frame %u, in another session "
                                   "(a static server key)",
                                   u->reused_first);
    }
}

/* The request plaintext "token;user;message": split, and the token checked
 * against the shared secret. */
static void dissect_request(tvbuff_t *clear, packet_info *pinfo, proto_tree *pt, proto_item *pi, const guint8 *p,
                            guint n)
{
    guint fields = 1, semi[2] = {0, 0};
    for (guint i = 0; i < n; i++) {
        if (p[i] != ';') continue;
        if (fields <= 2) semi[fields - 1] = i;
        fields++;
    }
    if (fields != 3) {
        expert_add_info_format(pinfo, pi, &ei_field_count,
                               "The plaintext has %u field%s on ';', not 3: the original server raises ValueError",
                               fields, fields == 1 ? "" : "s");
        return;
    }
    proto_item *token = proto_tree_add_item(pt, hf_token, clear, 0, semi[0], ENC_UTF_8);
    proto_tree_add_item(pt, hf_user, clear, semi[0] + 1, semi[1] - semi[0] - 1, ENC_UTF_8);
    proto_tree_add_item(pt, hf_message, clear, semi[1] + 1, n - semi[1] - 1, ENC_UTF_8);
    const char *secret = pref_shared_secret ? pref_shared_secret : "";
    char expected[65];
    msglab_slmp_auth_token((const char *)p + semi[0] + 1, semi[1] - semi[0] - 1, secret, expected);
    if (semi[0] == 64 && memcmp(p, expected, 64) == 0)
        expert_add_info_format(pinfo, token, &ei_token_forgeable,
                               "token forgeable: derived from the shared secret '%s'", secret);
    else
        expert_add_info_format(pinfo, token, &ei_token_not_from_secret,
                               "token is not SHA-256(user || '%s'): the original server rejects it", secret);
}

static void dissect_fernet(tvbuff_t *tvb, packet_info *pinfo, proto_tree *st, const slmp_unit *u)
{
    const token_info *t = u->token;
    const slmp_conv *c = u->conv;
    guint n = tvb_captured_length(tvb);
    proto_item *text = proto_tree_add_item(st, hf_fernet, tvb, 0, n, ENC_ASCII);
    proto_item_set_generated(proto_tree_add_uint(st, hf_fernet_length, tvb, 0, n, n));
    if (t->problem) expert_add_info_format(pinfo, text, &ei_malformed_token, "Malformed Fernet token: %s", t->problem);
    if (!t->raw) return;

    tvbuff_t *raw = tvb_new_child_real_data(tvb, t->raw, t->raw_len, t->raw_len);
    add_new_data_source(pinfo, raw, "Fernet token");
    proto_tree *ft = proto_item_add_subtree(text, ett_fernet);
    guint len = t->raw_len;
    proto_tree_add_item(ft, hf_fernet_version, raw, 0, 1, ENC_BIG_ENDIAN);
    if (len >= 9) {
        proto_item *ts_item = proto_tree_add_item(ft, hf_fernet_timestamp, raw, 1, 8, ENC_TIME_SECS | ENC_BIG_ENDIAN);
        guint64 ts = tvb_get_ntoh64(raw, 1);
        gint64 skew = (gint64)ts - (gint64)pinfo->abs_ts.secs;
        if (ts > G_MAXINT64 || skew > (gint64)pref_max_skew || -skew > (gint64)pref_max_skew)
            expert_add_info_format(pinfo, ts_item, &ei_timestamp_skew,
                                   "Token timestamp is %" G_GINT64_FORMAT " s from the capture time (allowed %u s)",
                                   skew, pref_max_skew);
    }
    if (len >= 25) proto_tree_add_item(ft, hf_fernet_iv, raw, 9, 16, ENC_NA);
    proto_item *mac_item = NULL;
    if (len >= FERNET_OVERHEAD) {
        proto_tree_add_item(ft, hf_fernet_ciphertext, raw, 25, len - FERNET_OVERHEAD, ENC_NA);
        mac_item = proto_tree_add_item(ft, hf_fernet_hmac, raw, len - 32, 32, ENC_NA);
    }
    proto_item *status = add_generated_uint(st, hf_hmac_status, tvb, t->hmac_status);
    if (t->hmac_status == HMAC_BAD) expert_add_info(pinfo, mac_item ? mac_item : status, &ei_hmac_mismatch);
    if (t->hmac_status == HMAC_UNCHECKED && c->have_session_id && !c->have_key && *keylog_path())
        expert_add_info(pinfo, status, &ei_no_key);
    if (t->bad_padding) expert_add_info(pinfo, status, &ei_bad_padding);
    if (!t->plaintext) return;

    tvbuff_t *clear = tvb_new_child_real_data(tvb, t->plaintext, t->plaintext_len, t->plaintext_len);
    add_new_data_source(pinfo, clear, "Decrypted SLMP");
    proto_item *pi = proto_tree_add_item(st, hf_plaintext, clear, 0, t->plaintext_len, ENC_UTF_8);
    proto_tree *pt = proto_item_add_subtree(pi, ett_plaintext);
    col_append_fstr(pinfo->cinfo, COL_INFO, " \"%s\"",
                    tvb_format_text(pinfo->pool, clear, 0, MIN(t->plaintext_len, 64)));
    if (!g_utf8_validate((const gchar *)t->plaintext, t->plaintext_len, NULL))
        expert_add_info(pinfo, pi, &ei_not_utf8);
    if (u->from_client) dissect_request(clear, pinfo, pt, pi, t->plaintext, t->plaintext_len);
}

static void dissect_unit(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, const unit_scan *s)
{
    guint n = tvb_captured_length(tvb);
    proto_item *ti = proto_tree_add_item(tree, proto_slmp, tvb, 0, -1, ENC_NA);
    proto_tree *st = proto_item_add_subtree(ti, ett_slmp);

    guint32 key = (guint32)tvb_raw_offset(tvb);
    slmp_unit *u = (slmp_unit *)p_get_proto_data(wmem_file_scope(), pinfo, proto_slmp, key);
    if (!u) {
        u = first_pass(tvb, pinfo, s);
        p_add_proto_data(wmem_file_scope(), pinfo, proto_slmp, key, u);
    }
    const slmp_conv *c = u->conv;
    guint32 kind = UNIT_OTHER;
    if (s->shape == SHAPE_PEM) kind = u->from_client ? UNIT_CLIENT_KEY : UNIT_SERVER_KEY;
    if (s->shape == SHAPE_TOKEN) kind = u->from_client ? UNIT_REQUEST : UNIT_REPLY;
    proto_item *kind_item = add_generated_uint(st, hf_unit, tvb, kind);
    proto_item_append_text(ti, ", %s", val_to_str_const(kind, unit_vals, "?"));
    col_append_sep_str(pinfo->cinfo, COL_INFO, ", ", val_to_str_const(kind, unit_vals, "?"));

    if (c->have_session_id) {
        proto_item *gi = proto_tree_add_bytes_with_length(st, hf_session_id, tvb, 0, 0, c->session_id, 8);
        proto_item_set_generated(gi);
    }
    if (u->first_of_kind && s->shape != SHAPE_OTHER) {
        /* Client key -> server key, request -> reply. */
        const guint32 *frames = s->shape == SHAPE_PEM ? c->key_frame : c->token_frame;
        if (u->from_client && frames[ROLE_SERVER]) add_generated_uint(st, hf_response_in, tvb, frames[ROLE_SERVER]);
        if (!u->from_client && frames[ROLE_CLIENT]) add_generated_uint(st, hf_request_in, tvb, frames[ROLE_CLIENT]);
    }
    if (n > SLMP_RECV_LIMIT)
        expert_add_info_format(pinfo, ti, &ei_over_recv_limit,
                               "Unit of %u bytes: over the original's single recv(%u), so its peer reads "
                               "only part of it",
                               n, SLMP_RECV_LIMIT);
    if (s->unterminated)
        expert_add_info_format(pinfo, ti, &ei_unit_incomplete,
                               n >= SLMP_UNIT_MAX ? "No end of the unit within %u bytes"
                                                  : "The unit is incomplete and reassembly is off (%u bytes)",
                               n);
    if (s->shape != SHAPE_OTHER && u->index >= 2)
        expert_add_info_format(pinfo, kind_item, &ei_unexpected_unit,
                               "Unexpected unit: the %s's unit #%u, after its key and its token",
                               u->from_client ? "client" : "server", u->index + 1);
    else if ((s->shape == SHAPE_PEM && u->index != 0) || (s->shape == SHAPE_TOKEN && u->index != 1))
        expert_add_info_format(pinfo, kind_item, &ei_unexpected_unit,
                               "Unexpected unit: each side sends its key first, then one token");

    switch (s->shape) {
    case SHAPE_PEM:
        dissect_key(tvb, pinfo, st, u);
        break;
    case SHAPE_TOKEN:
        dissect_fernet(tvb, pinfo, st, u);
        break;
    default: {
        proto_item *data = proto_tree_add_item(st, hf_data, tvb, 0, n, ENC_NA);
        expert_add_info_format(pinfo, data, &ei_not_slmp,
                               "Not SLMP data: %u bytes that start neither a PEM key nor a Fernet token", n);
        break;
    }
    }
}

static int dissect_slmp(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint total = tvb_captured_length(tvb);
    guint offset = 0;
    if (total == 0) return 0;
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "SLMP");
    col_clear(pinfo->cinfo, COL_INFO);
    const guint8 *d = (const guint8 *)tvb_memdup(pinfo->pool, tvb, 0, total);
    while (offset < total) {
        /* A line break after a unit (or before one) belongs to none. */
        while (offset < total && is_space(d[offset])) offset++;
        if (offset == total) break;
        unit_scan s = scan_unit(d + offset, total - offset);
        if (s.need_more) {
            if (pinfo->can_desegment) {
                pinfo->desegment_offset = offset;
                pinfo->desegment_len = DESEGMENT_ONE_MORE_SEGMENT;
                return total;
            }
            s.need_more = FALSE;
            s.unterminated = TRUE;
            s.length = total - offset;
        }
        dissect_unit(tvb_new_subset_length(tvb, offset, s.length), pinfo, tree, &s);
        offset += s.length;
    }
    return total;
}

static gboolean dissect_slmp_heur(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    /* The client's first bytes: its PEM key. */
    if (tvb_captured_length(tvb) < LIT_LEN(PEM_BEGIN_KEY)) return FALSE;
    if (tvb_memeql(tvb, 0, (const guint8 *)PEM_BEGIN_KEY, LIT_LEN(PEM_BEGIN_KEY)) != 0) return FALSE;
    conversation_t *conv = find_or_create_conversation(pinfo);
    conversation_set_dissector(conv, slmp_handle);
    dissect_slmp(tvb, pinfo, tree, data);
    return TRUE;
}

void proto_register_slmp(void)
{
    static hf_register_info hf[] = {
        {&hf_unit, {"Unit", "slmp.unit", FT_UINT8, BASE_DEC, VALS(unit_vals), 0x0, NULL, HFILL}},
        {&hf_session_id,
         {"Session id", "slmp.session_id", FT_BYTES, BASE_NONE, NULL, 0x0,
          "First 8 bytes of SHA-256(client DER || server DER), as msglab's key log names the session", HFILL}},
        {&hf_response_in,
         {"Response in", "slmp.response_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_RESPONSE), 0x0,
          NULL, HFILL}},
        {&hf_request_in,
         {"Request in", "slmp.request_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_REQUEST), 0x0, NULL,
          HFILL}},
        {&hf_pem, {"PEM public key", "slmp.pem", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_pem_length, {"PEM length", "slmp.pem.length", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_der,
         {"SubjectPublicKeyInfo", "slmp.der", FT_BYTES, BASE_NONE, NULL, 0x0, "The PEM body decoded (DER)",
          HFILL}},
        {&hf_key_role, {"Key role", "slmp.key.role", FT_UINT8, BASE_DEC, VALS(role_vals), 0x0, NULL, HFILL}},
        {&hf_key_algorithm, {"Algorithm", "slmp.key.algorithm", FT_OID, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_key_curve, {"Named curve", "slmp.key.curve", FT_OID, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_key_curve_name, {"Curve", "slmp.key.curve_name", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_key_point, {"EC point", "slmp.key.point", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_key_x, {"X", "slmp.key.x", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_key_y, {"Y", "slmp.key.y", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_key_first_seen,
         {"Key first seen in", "slmp.key.first_seen", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The frame where another session used this key first", HFILL}},
        {&hf_fernet, {"Fernet token", "slmp.fernet", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_fernet_length,
         {"Token length", "slmp.fernet.length", FT_UINT32, BASE_DEC, NULL, 0x0, "Base64 characters", HFILL}},
        {&hf_fernet_version, {"Version", "slmp.fernet.version", FT_UINT8, BASE_HEX, NULL, 0x0, NULL, HFILL}},
        {&hf_fernet_timestamp,
         {"Timestamp", "slmp.fernet.timestamp", FT_ABSOLUTE_TIME, ABSOLUTE_TIME_UTC, NULL, 0x0, NULL, HFILL}},
        {&hf_fernet_iv, {"IV", "slmp.fernet.iv", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_fernet_ciphertext,
         {"Ciphertext", "slmp.fernet.ciphertext", FT_BYTES, BASE_NONE, NULL, 0x0, "AES-128-CBC", HFILL}},
        {&hf_fernet_hmac, {"HMAC", "slmp.fernet.hmac", FT_BYTES, BASE_NONE, NULL, 0x0, "HMAC-SHA256", HFILL}},
        {&hf_hmac_status,
         {"HMAC status", "slmp.hmac_status", FT_UINT8, BASE_DEC, VALS(hmac_status_vals), 0x0, NULL, HFILL}},
        {&hf_plaintext, {"Plaintext", "slmp.plaintext", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_token,
         {"Authentication token", "slmp.token", FT_STRING, BASE_NONE, NULL, 0x0, "SHA-256(user || secret) in hex",
          HFILL}},
        {&hf_user, {"User", "slmp.user", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_message, {"Message", "slmp.message", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_data, {"Data", "slmp.data", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
    };
    static gint *ett[] = {&ett_slmp, &ett_key, &ett_fernet, &ett_plaintext};
    static ei_register_info ei[] = {
        {&ei_client_key_reused,
         {"slmp.client_key_reused", PI_SECURITY, PI_WARN, "Client key seen in another session (a replay)",
          EXPFILL}},
        {&ei_server_key_reused,
         {"slmp.server_key_reused", PI_SECURITY, PI_WARN,
          "Server key seen in another session (a static server key)", EXPFILL}},
        {&ei_timestamp_skew,
         {"slmp.timestamp_skew", PI_SEQUENCE, PI_WARN, "Token timestamp far from the capture time", EXPFILL}},
        {&ei_hmac_mismatch, {"slmp.hmac_mismatch", PI_CHECKSUM, PI_ERROR, "Fernet HMAC mismatch", EXPFILL}},
        {&ei_bad_padding,
         {"slmp.bad_padding", PI_MALFORMED, PI_ERROR, "HMAC good, but the ciphertext does not decrypt (padding)",
          EXPFILL}},
        {&ei_malformed_pem, {"slmp.malformed_pem", PI_MALFORMED, PI_ERROR, "Malformed PEM key", EXPFILL}},
        {&ei_not_p256, {"slmp.not_p256", PI_PROTOCOL, PI_ERROR, "Not a P-256 key", EXPFILL}},
        {&ei_malformed_token, {"slmp.malformed_token", PI_MALFORMED, PI_ERROR, "Malformed Fernet token", EXPFILL}},
        {&ei_over_recv_limit,
         {"slmp.over_recv_limit", PI_PROTOCOL, PI_WARN, "Unit over the original's 1024-byte recv", EXPFILL}},
        {&ei_field_count,
         {"slmp.field_count", PI_PROTOCOL, PI_ERROR, "Plaintext is not exactly three fields on ';'", EXPFILL}},
        {&ei_not_utf8,
         {"slmp.not_utf8", PI_PROTOCOL, PI_WARN, "Plaintext is not UTF-8: the original server crashes on it",
          EXPFILL}},
        {&ei_token_forgeable,
         {"slmp.token_forgeable", PI_SECURITY, PI_WARN, "token forgeable: derived from the shared secret",
          EXPFILL}},
        {&ei_token_not_from_secret,
         {"slmp.token_not_from_secret", PI_SECURITY, PI_NOTE, "token is not derived from the shared secret",
          EXPFILL}},
        {&ei_unit_incomplete,
         {"slmp.unit_incomplete", PI_MALFORMED, PI_ERROR, "Unit without an end", EXPFILL}},
        {&ei_not_slmp, {"slmp.not_slmp", PI_MALFORMED, PI_ERROR, "Not SLMP data", EXPFILL}},
        {&ei_unexpected_unit,
         {"slmp.unexpected_unit", PI_SEQUENCE, PI_WARN, "Unit out of the protocol's order", EXPFILL}},
        {&ei_no_key, {"slmp.no_key", PI_UNDECODED, PI_NOTE, "No key in the key log for this session", EXPFILL}},
    };

    proto_slmp = proto_register_protocol("Secure Lightweight Messaging Protocol", "SLMP", "slmp");
    proto_register_field_array(proto_slmp, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_slmp);
    expert_register_field_array(em, ei, array_length(ei));

    module_t *m = prefs_register_protocol(proto_slmp, NULL);
    prefs_register_filename_preference(m, "keylog_file", "Key log file",
                                       "msglab key log (SLMP_FERNET_KEY session-id key per line); "
                                       "secmsg.keylog_file, then MSGLAB_KEYLOGFILE, is used when this is empty",
                                       &pref_keylog_file, FALSE);
    prefs_register_uint_preference(m, "max_skew", "Timestamp skew (seconds)",
                                   "Flag token timestamps further than this from the capture time", 10,
                                   &pref_max_skew);
    prefs_register_string_preference(m, "shared_secret", "Shared secret",
                                     "The secret the authentication token is derived from, "
                                     "SHA-256(user || secret); the original's is my_secret",
                                     &pref_shared_secret);

    for (int role = 0; role < 2; role++)
        keys_seen[role] = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    slmp_handle = register_dissector("slmp", dissect_slmp, proto_slmp);
}

void proto_reg_handoff_slmp(void)
{
    dissector_add_uint_with_preference("tcp.port", SLMP_PORT, slmp_handle);
    heur_dissector_add("tcp", dissect_slmp_heur, "SLMP over TCP", "slmp_tcp", proto_slmp, HEURISTIC_ENABLE);
}
