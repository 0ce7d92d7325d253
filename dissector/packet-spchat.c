/* SP-SimpleChat for Wireshark: frames of a BE32 length and a JSON object,
 * reassembled across TCP segments, every field of every message type, file
 * chunks decrypted with the key anyone can derive (an all-zero session key
 * and the nonce FILE_START sends in clear), and expert infos for what a
 * reviewer hunts: the BACKDOOR trigger and its hidden reply, a `from` on file
 * frames that is not the connection's nick, length prefixes no bound stops,
 * tampered chunks, malformed JSON.
 * Wire format: PROTOCOLS.md sections 2.1 to 2.7. */
#include <wireshark.h>
#include <epan/conversation.h>
#include <epan/expert.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/proto_data.h>
#include <epan/strutil.h>
#include <epan/to_str.h>
#include <epan/dissectors/packet-tcp.h>

#include <string.h>

#include "msglab_bridge.h"
#include "msglab_json.h"

#define SPCHAT_PORT 9000
#define LENGTH_PREFIX 4
/* The original has no maximum (section 2.2): reassembly never waits for
 * more than this, and a length above it is flagged. */
#define SPCHAT_LENGTH_MAX (16u * 1024u * 1024u)
/* Bounds on a JSON text: nesting, values. */
/* Nicks one connection registers: a second HELLO adds one (section 2.3). */
#define MAX_NICKS 16
/* Bytes of a frame's JSON the heuristic searches for "type". */
#define HEUR_SCAN 512
#define FILE_KEY_LEN 32
#define EAX_TAG_LEN 16
/* Characters of a text, and members of a list, in the Info column. */
#define INFO_TEXT_CHARS 64
#define INFO_MEMBERS 8

/* The session key both ends use for files: the sender passes None, which
 * becomes zeros, and the receiver hardcodes zeros (section 2.4). */
static const guint8 SESSION_KEY[32] = {0};
static const char BACKDOOR_REPLY[] = "You found the secret backdoor!";

void proto_register_spchat(void);
void proto_reg_handoff_spchat(void);

static int proto_spchat = -1;
static dissector_handle_t spchat_handle;

static int hf_length = -1;
static int hf_json = -1;
static int hf_type = -1;
static int hf_nick = -1;
static int hf_room = -1;
static int hf_text = -1;
static int hf_members = -1;
static int hf_from = -1;
static int hf_to = -1;
static int hf_ts = -1;
static int hf_sig = -1;
static int hf_registered_nick = -1;
static int hf_file_id = -1;
static int hf_file_name = -1;
static int hf_file_size = -1;
static int hf_file_sha256 = -1;
static int hf_file_mode = -1;
static int hf_file_aead = -1;
static int hf_file_kdf = -1;
static int hf_file_nonce = -1;
static int hf_file_key = -1;
static int hf_file_index = -1;
static int hf_chunk_nonce = -1;
static int hf_ciphertext_length = -1;
static int hf_tag = -1;
static int hf_chunk_status = -1;
static int hf_start_in = -1;
static int hf_plaintext = -1;
static int hf_plaintext_length = -1;
static int hf_data = -1;

static gint ett_spchat = -1;
static gint ett_payload = -1;

static expert_field ei_malformed_json = EI_INIT;
static expert_field ei_oversized_length = EI_INIT;
static expert_field ei_magic_trigger = EI_INIT;
static expert_field ei_from_mismatch = EI_INIT;
static expert_field ei_zero_key = EI_INIT;
static expert_field ei_tag_mismatch = EI_INIT;
static expert_field ei_unknown_type = EI_INIT;
static expert_field ei_bad_file_field = EI_INIT;
static expert_field ei_no_file_start = EI_INIT;

static const char *const known_types[] = {"HELLO", "JOIN",  "WHO",      "MSG",        "LEAVE",
                                          "QUIT",  "PING",  "PONG",     "INFO",       "ERROR",
                                          "WHO_LIST", "FILE_START", "FILE_CHUNK", "FILE_END"};

enum { CHUNK_NO_START = 0, CHUNK_DECRYPTED = 1, CHUNK_TAG_MISMATCH = 2, CHUNK_BAD_FIELD = 3 };

static const value_string chunk_status_vals[] = {
    {CHUNK_NO_START, "Not decrypted: no FILE_START for this file earlier in the capture"},
    {CHUNK_DECRYPTED, "Decrypted"},
    {CHUNK_TAG_MISMATCH, "Tag mismatch"},
    {CHUNK_BAD_FIELD, "Not decrypted: nonce, ciphertext or tag is not base64url"},
    {0, NULL}};


/* ---------------------------------------------------------------------------
 * Python's str.strip(), lower() and upper(), as the original applies them to
 * nicks, `to` and the BACKDOOR text. Input is valid UTF-8. */

static gboolean py_space(gunichar u)
{
    /* str.isspace(): also the separators U+001C..U+001F and U+0085. */
    return g_unichar_isspace(u) || (u >= 0x1c && u <= 0x1f) || u == 0x85;
}

static char *py_strip(wmem_allocator_t *pool, const char *s)
{
    const char *start = s, *end = s + strlen(s);
    while (start < end && py_space(g_utf8_get_char(start))) start = g_utf8_next_char(start);
    while (end > start) {
        const char *prev = g_utf8_prev_char(end);
        if (!py_space(g_utf8_get_char(prev))) break;
        end = prev;
    }
    return wmem_strndup(pool, start, end - start);
}

static char *py_case(wmem_allocator_t *pool, const char *s, gboolean upper)
{
    char *stripped = py_strip(pool, s);
    gchar *cased = upper ? g_utf8_strup(stripped, -1) : g_utf8_strdown(stripped, -1);
    char *out = wmem_strdup(pool, cased);
    g_free(cased);
    return out;
}

/* ---------------------------------------------------------------------------
 * State. */

/* What a FILE_START taught: the file key, derived once. */
typedef struct {
    guint32 start_frame;
    guint8 file_key[FILE_KEY_LEN];
} spchat_file;

/* file_id -> spchat_file across the capture: the server relays FILE_START on
 * another connection, and a capture may hold only one of the two. */
static wmem_map_t *files_seen;

/* Per TCP conversation: which side is the client, the nicks its HELLOs
 * registered, the files announced on it, and where a length prefix over the
 * bound left each direction unframed. Arrays are indexed by from_client. */
typedef struct {
    address client_addr;
    guint32 client_port;
    gboolean have_client;
    const char *nicks[MAX_NICKS];
    guint n_nicks;
    wmem_map_t *files;
    guint32 oversized_frame[2];
} spchat_conv;

/* Per frame, computed on the first pass so later passes show the same. */
typedef struct {
    gboolean from_client;
    const char *nick;       /* the connection's latest HELLO nick before this frame */
    const char *nicks;      /* all of them, for the from_mismatch text */
    gboolean from_mismatch; /* a FILE_* `from` none of them */
    const char *from_norm;
    gboolean have_file_key; /* FILE_START: derived; FILE_CHUNK: found */
    guint8 file_key[FILE_KEY_LEN];
    const guint8 *file_nonce;
    guint file_nonce_len;
    const char *problem; /* a file field that does not decode */
    guint8 chunk_status;
    guint32 start_frame;
    const guint8 *nonce, *tag;
    guint nonce_len, tag_len;
    gint ciphertext_len; /* -1: not base64url */
    guint8 *plaintext;
    guint plaintext_len;
} spchat_pdu;

static spchat_conv *get_conv(packet_info *pinfo)
{
    conversation_t *conv = find_or_create_conversation(pinfo);
    spchat_conv *c = (spchat_conv *)conversation_get_proto_data(conv, proto_spchat);
    if (!c) {
        c = wmem_new0(wmem_file_scope(), spchat_conv);
        c->files = wmem_map_new(wmem_file_scope(), g_str_hash, g_str_equal);
        conversation_add_proto_data(conv, proto_spchat, c);
    }
    return c;
}

static gboolean is_from_client(spchat_conv *c, packet_info *pinfo)
{
    if (!c->have_client) {
        /* The server binds 9000 and the client speaks first (section 2.1):
         * a capture that starts later may open with the server's data. */
        gboolean server_sent = pinfo->srcport == SPCHAT_PORT && pinfo->destport != SPCHAT_PORT;
        copy_address_wmem(wmem_file_scope(), &c->client_addr, server_sent ? &pinfo->dst : &pinfo->src);
        c->client_port = server_sent ? pinfo->destport : pinfo->srcport;
        c->have_client = TRUE;
    }
    return pinfo->srcport == c->client_port && addresses_equal(&pinfo->src, &c->client_addr);
}

/* After a length over the bound the direction has no framing left. */
static gboolean unframed(const spchat_conv *c, packet_info *pinfo, gboolean from_client)
{
    guint32 at = c->oversized_frame[from_client ? 1 : 0];
    return at != 0 && pinfo->num > at;
}

static gboolean known_type(const char *type)
{
    for (guint i = 0; i < array_length(known_types); i++)
        if (strcmp(type, known_types[i]) == 0) return TRUE;
    return FALSE;
}

static gboolean type_is(const char *type, const char *name) { return type && strcmp(type, name) == 0; }

static gboolean is_file_type(const char *type) { return type && strncmp(type, "FILE_", 5) == 0 && known_type(type); }

/* b64url without padding (section 2.4), decoded; NULL when it is not. */
static guint8 *b64url_decode(wmem_allocator_t *pool, const char *text, guint *len)
{
    size_t n = strlen(text);
    size_t cap = n / 4 * 3 + 3;
    guint8 *out = (guint8 *)wmem_alloc(pool, cap);
    long got = msglab_base64url_decode_unpadded(text, n, out, cap);
    if (got < 0) return NULL;
    *len = (guint)got;
    return out;
}

static const char *file_nick_list(spchat_conv *c)
{
    wmem_strbuf_t *b = wmem_strbuf_new(wmem_file_scope(), "");
    for (guint i = 0; i < c->n_nicks; i++) wmem_strbuf_append_printf(b, "%s\"%s\"", i ? ", " : "", c->nicks[i]);
    return wmem_strbuf_finalize(b);
}

static void register_nick(spchat_conv *c, const char *nick)
{
    for (guint i = 0; i < c->n_nicks; i++)
        if (strcmp(c->nicks[i], nick) == 0) return;
    if (c->n_nicks < MAX_NICKS) c->nicks[c->n_nicks++] = nick;
}

static void file_start_pass(spchat_conv *c, spchat_pdu *p, const jv *payload, guint32 frame)
{
    const char *fid = jv_string(payload, "file_id");
    const char *nonce_b64 = jv_string(payload, "file_nonce_b64");
    if (!nonce_b64) return;
    p->file_nonce = b64url_decode(wmem_file_scope(), nonce_b64, &p->file_nonce_len);
    if (!p->file_nonce || p->file_nonce_len == 0) {
        p->file_nonce = NULL;
        p->problem = "payload.file_nonce_b64 is not base64url";
        return;
    }
    msglab_spchat_file_key(SESSION_KEY, p->file_nonce, p->file_nonce_len, p->file_key);
    p->have_file_key = TRUE;
    if (!fid) return;
    spchat_file *f = wmem_new(wmem_file_scope(), spchat_file);
    f->start_frame = frame;
    memcpy(f->file_key, p->file_key, FILE_KEY_LEN);
    const char *key = wmem_strdup(wmem_file_scope(), fid);
    wmem_map_insert(c->files, key, f);
    wmem_map_insert(files_seen, key, f);
}

static void file_chunk_pass(packet_info *pinfo, spchat_conv *c, spchat_pdu *p, const jv *payload)
{
    const char *fid = jv_string(payload, "file_id");
    const char *nonce_b64 = jv_string(payload, "nonce_b64");
    const char *ciphertext_b64 = jv_string(payload, "ciphertext");
    const char *tag_b64 = jv_string(payload, "tag_b64");
    guint ct_len = 0;
    guint8 *ct = ciphertext_b64 ? b64url_decode(pinfo->pool, ciphertext_b64, &ct_len) : NULL;
    p->ciphertext_len = ct ? (gint)ct_len : -1;
    if (nonce_b64) p->nonce = b64url_decode(wmem_file_scope(), nonce_b64, &p->nonce_len);
    if (tag_b64) p->tag = b64url_decode(wmem_file_scope(), tag_b64, &p->tag_len);

    /* This connection's FILE_START first, else any earlier in the capture. */
    const spchat_file *f = NULL;
    if (fid) f = (const spchat_file *)wmem_map_lookup(c->files, fid);
    if (fid && !f) f = (const spchat_file *)wmem_map_lookup(files_seen, fid);
    p->chunk_status = CHUNK_NO_START;
    if (f) {
        p->start_frame = f->start_frame;
        memcpy(p->file_key, f->file_key, FILE_KEY_LEN);
        p->have_file_key = TRUE;
    }
    if (!ct)
        p->problem = "payload.ciphertext is missing or not base64url";
    else if (!p->nonce || p->nonce_len == 0)
        p->problem = "payload.nonce_b64 is missing or not base64url";
    else if (!p->tag)
        p->problem = "payload.tag_b64 is missing or not base64url";
    if (p->problem) {
        if (f) p->chunk_status = CHUNK_BAD_FIELD;
        return;
    }
    if (!f) return;
    if (p->tag_len != EAX_TAG_LEN) {
        /* pycryptodome compares the whole 16-byte tag: any other length fails. */
        p->chunk_status = CHUNK_TAG_MISMATCH;
        return;
    }
    guint8 *sealed = (guint8 *)wmem_alloc(pinfo->pool, ct_len + EAX_TAG_LEN);
    memcpy(sealed, ct, ct_len);
    memcpy(sealed + ct_len, p->tag, EAX_TAG_LEN);
    guint8 *plain = (guint8 *)wmem_alloc(wmem_file_scope(), ct_len ? ct_len : 1);
    long got = msglab_aes256_eax_open(p->file_key, p->nonce, p->nonce_len, sealed, ct_len + EAX_TAG_LEN, plain,
                                      ct_len);
    if (got < 0) {
        wmem_free(wmem_file_scope(), plain);
        p->chunk_status = CHUNK_TAG_MISMATCH;
        return;
    }
    p->chunk_status = CHUNK_DECRYPTED;
    p->plaintext = plain;
    p->plaintext_len = (guint)got;
}

static spchat_pdu *first_pass(packet_info *pinfo, spchat_conv *c, gboolean from_client, const jv *root,
                              const char *type)
{
    spchat_pdu *p = wmem_new0(wmem_file_scope(), spchat_pdu);
    p->from_client = from_client;
    p->ciphertext_len = -1;
    if (from_client && c->n_nicks) p->nick = c->nicks[c->n_nicks - 1];
    if (from_client && type_is(type, "HELLO")) {
        /* nick = strip().lower(); an empty one is refused (section 2.3). */
        const char *nick = jv_string(root, "nick");
        char *norm = nick ? py_case(wmem_file_scope(), nick, FALSE) : NULL;
        if (norm && *norm) register_nick(c, norm);
        return p;
    }
    if (!is_file_type(type)) return p;

    /* The server forwards `from` unverified (section 2.7, item 4). Relayed
     * frames reach a client on a connection whose HELLO is another user's. */
    const char *from = jv_string(root, "from");
    if (from_client && from && c->n_nicks) {
        p->from_norm = py_case(wmem_file_scope(), from, FALSE);
        p->from_mismatch = TRUE;
        for (guint i = 0; i < c->n_nicks; i++)
            if (strcmp(c->nicks[i], p->from_norm) == 0) p->from_mismatch = FALSE;
        if (p->from_mismatch) p->nicks = file_nick_list(c);
    }
    const jv *payload = jv_member(root, "payload");
    if (type_is(type, "FILE_START")) file_start_pass(c, p, payload, pinfo->num);
    if (type_is(type, "FILE_CHUNK")) file_chunk_pass(pinfo, c, p, payload);
    return p;
}

/* ---------------------------------------------------------------------------
 * The tree. */

/* Offsets of JSON values are into the text, which follows the length. */
#define AT(v) (LENGTH_PREFIX + (v)->start)
#define LEN(v) ((v)->end - (v)->start)

static proto_item *add_generated_uint(proto_tree *tree, int hf, tvbuff_t *tvb, guint32 value)
{
    proto_item *gi = proto_tree_add_uint(tree, hf, tvb, 0, 0, value);
    proto_item_set_generated(gi);
    return gi;
}

/* A member shown as text: a string decoded, another scalar as written. */
static proto_item *add_text_member(proto_tree *t, int hf, tvbuff_t *tvb, const guint8 *d, const jv *obj,
                                   const char *key, wmem_allocator_t *pool)
{
    const jv *m = jv_member(obj, key);
    if (!m || m->type == JV_OBJECT || m->type == JV_ARRAY) return NULL;
    const char *text = m->type == JV_STRING ? m->str : wmem_strndup(pool, (const char *)d + m->start, LEN(m));
    return proto_tree_add_string(t, hf, tvb, AT(m), LEN(m), text);
}

static proto_item *add_uint_member(proto_tree *t, int hf, tvbuff_t *tvb, const guint8 *d, const jv *obj,
                                   const char *key, guint64 max)
{
    const jv *m = jv_member(obj, key);
    guint64 v;
    if (!jv_uint(d, m, max, &v)) return NULL;
    if (max > G_MAXUINT32) return proto_tree_add_uint64(t, hf, tvb, AT(m), LEN(m), v);
    return proto_tree_add_uint(t, hf, tvb, AT(m), LEN(m), (guint32)v);
}

/* A b64url member shown decoded, over its text. */
static proto_item *add_b64_member(proto_tree *t, int hf, tvbuff_t *tvb, const jv *obj, const char *key,
                                  const guint8 *bytes, guint len)
{
    const jv *m = jv_member(obj, key);
    if (!m || !bytes) return NULL;
    return proto_tree_add_bytes_with_length(t, hf, tvb, AT(m), LEN(m), bytes, len);
}

/* A string for the Info column: escaped, at most INFO_TEXT_CHARS characters. */
static const char *info_text(wmem_allocator_t *pool, const char *s)
{
    if (!s) return "";
    glong chars = g_utf8_strlen(s, -1);
    const char *end = chars > INFO_TEXT_CHARS ? g_utf8_offset_to_pointer(s, INFO_TEXT_CHARS) : s + strlen(s);
    const char *shown = format_text(pool, (const guchar *)s, end - s);
    return chars > INFO_TEXT_CHARS ? wmem_strconcat(pool, shown, "...", NULL) : shown;
}

/* The first 8 characters of a file id. */
static const char *short_id(wmem_allocator_t *pool, const char *fid)
{
    if (!fid) return "?";
    return wmem_strdup_printf(pool, "%s...", info_text(pool, wmem_strndup(pool, fid, 8)));
}

/* WHO_LIST's members: each an item, the first few for the Info column. */
static void add_members(proto_tree *st, tvbuff_t *tvb, wmem_allocator_t *pool, const jv *root, wmem_strbuf_t *info)
{
    const jv *members = jv_member(root, "members");
    if (!members || members->type != JV_ARRAY) return;
    guint shown = 0;
    for (const jv *e = members->child; e; e = e->next) {
        if (e->type != JV_STRING) continue;
        proto_tree_add_string(st, hf_members, tvb, AT(e), LEN(e), e->str);
        if (shown < INFO_MEMBERS)
            wmem_strbuf_append_printf(info, "%s%s", shown ? ", " : " [", info_text(pool, e->str));
        else if (shown == INFO_MEMBERS)
            wmem_strbuf_append(info, ", ...");
        shown++;
    }
    if (shown) wmem_strbuf_append_c(info, ']');
}

static void add_payload(proto_tree *st, tvbuff_t *tvb, packet_info *pinfo, const guint8 *d, const jv *root,
                        const char *type, const spchat_pdu *p, wmem_strbuf_t *info)
{
    const jv *payload = jv_member(root, "payload");
    const char *fid = jv_string(payload, "file_id");
    wmem_allocator_t *pool = pinfo->pool;
    if (type_is(type, "FILE_START")) {
        wmem_strbuf_append_printf(info, " %s", info_text(pool, jv_string(payload, "name")));
        guint64 size;
        if (jv_uint(d, jv_member(payload, "size"), G_MAXUINT64, &size))
            wmem_strbuf_append_printf(info, " (%" G_GUINT64_FORMAT " bytes)", size);
        wmem_strbuf_append_printf(info, " %s -> %s, %s", info_text(pool, jv_string(root, "from")),
                                  info_text(pool, jv_string(root, "to")), short_id(pool, fid));
    } else if (type_is(type, "FILE_CHUNK")) {
        guint64 index;
        if (jv_uint(d, jv_member(payload, "index"), G_MAXUINT32, &index))
            wmem_strbuf_append_printf(info, " #%" G_GUINT64_FORMAT, index);
        wmem_strbuf_append_printf(info, " of %s", short_id(pool, fid));
    } else {
        wmem_strbuf_append_printf(info, " of %s", short_id(pool, fid));
    }
    if (!payload || payload->type != JV_OBJECT) return;

    proto_item *payload_item;
    proto_tree *pt =
        proto_tree_add_subtree(st, tvb, AT(payload), LEN(payload), ett_payload, &payload_item, "Payload");
    add_text_member(pt, hf_file_id, tvb, d, payload, "file_id", pool);
    add_text_member(pt, hf_file_name, tvb, d, payload, "name", pool);
    add_uint_member(pt, hf_file_size, tvb, d, payload, "size", G_MAXUINT64);
    add_text_member(pt, hf_file_sha256, tvb, d, payload, "sha256", pool);
    add_text_member(pt, hf_file_mode, tvb, d, payload, "mode", pool);
    add_text_member(pt, hf_file_aead, tvb, d, payload, "aead", pool);
    add_text_member(pt, hf_file_kdf, tvb, d, payload, "kdf", pool);
    proto_item *nonce_item =
        add_b64_member(pt, hf_file_nonce, tvb, payload, "file_nonce_b64", p->file_nonce, p->file_nonce_len);
    add_uint_member(pt, hf_file_index, tvb, d, payload, "index", G_MAXUINT32);
    add_b64_member(pt, hf_chunk_nonce, tvb, payload, "nonce_b64", p->nonce, p->nonce_len);
    const jv *ct = jv_member(payload, "ciphertext");
    if (ct && p->ciphertext_len >= 0)
        proto_tree_add_uint(pt, hf_ciphertext_length, tvb, AT(ct), LEN(ct), (guint32)p->ciphertext_len);
    proto_item *tag_item = add_b64_member(pt, hf_tag, tvb, payload, "tag_b64", p->tag, p->tag_len);
    if (p->problem) expert_add_info_format(pinfo, payload_item, &ei_bad_file_field, "Bad file field: %s", p->problem);

    if (type_is(type, "FILE_START") && p->have_file_key) {
        proto_item *key = proto_tree_add_bytes_with_length(pt, hf_file_key, tvb, 0, 0, p->file_key, FILE_KEY_LEN);
        proto_item_set_generated(key);
        expert_add_info_format(pinfo, nonce_item ? nonce_item : key, &ei_zero_key,
                               "File key = HKDF-SHA256(all-zero session key, this file nonce sent in clear): "
                               "anyone who saw this FILE_START reads the file");
    }
    if (!type_is(type, "FILE_CHUNK")) return;

    proto_item *status = add_generated_uint(pt, hf_chunk_status, tvb, p->chunk_status);
    if (p->start_frame) add_generated_uint(pt, hf_start_in, tvb, p->start_frame);
    if (p->have_file_key) {
        proto_item *key = proto_tree_add_bytes_with_length(pt, hf_file_key, tvb, 0, 0, p->file_key, FILE_KEY_LEN);
        proto_item_set_generated(key);
    }
    if (p->chunk_status == CHUNK_NO_START && fid) expert_add_info(pinfo, status, &ei_no_file_start);
    if (p->chunk_status == CHUNK_TAG_MISMATCH) {
        if (p->tag_len != EAX_TAG_LEN)
            expert_add_info_format(pinfo, tag_item ? tag_item : status, &ei_tag_mismatch,
                                   "EAX tag mismatch: the tag is %u bytes, not %u", p->tag_len, EAX_TAG_LEN);
        else
            expert_add_info_format(pinfo, tag_item ? tag_item : status, &ei_tag_mismatch,
                                   "EAX tag mismatch with the key from FILE_START in frame %u: the chunk was "
                                   "altered, or FILE_START and the chunk do not belong together",
                                   p->start_frame);
        wmem_strbuf_append(info, " [tag mismatch]");
    }
    if (!p->plaintext) return;

    tvbuff_t *clear = tvb_new_child_real_data(tvb, p->plaintext, p->plaintext_len, p->plaintext_len);
    add_new_data_source(pinfo, clear, "Decrypted file chunk");
    proto_item *pi = proto_tree_add_item(pt, hf_plaintext, clear, 0, p->plaintext_len, ENC_NA);
    add_generated_uint(pt, hf_plaintext_length, tvb, p->plaintext_len);
    expert_add_info_format(pinfo, pi, &ei_zero_key,
                           "Decrypted with the key from FILE_START in frame %u: an all-zero session key and a "
                           "nonce sent in clear, so anyone who saw FILE_START reads the file",
                           p->start_frame);
}

/* Milliseconds since the epoch, shown as a date too. */
static void add_ts(proto_tree *st, tvbuff_t *tvb, packet_info *pinfo, const guint8 *d, const jv *root)
{
    const jv *m = jv_member(root, "ts");
    guint64 ms;
    if (!jv_uint(d, m, G_MAXUINT64, &ms)) return;
    proto_item *ts = proto_tree_add_uint64(st, hf_ts, tvb, AT(m), LEN(m), ms);
    if (ms / 1000 > G_MAXINT32) return;
    nstime_t t = {(time_t)(ms / 1000), (int)(ms % 1000) * 1000000};
    proto_item_append_text(ts, " (%s)", abs_time_to_str(pinfo->pool, &t, ABSOLUTE_TIME_UTC, TRUE));
}

static int dissect_spchat_pdu(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint captured = tvb_captured_length(tvb);
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "SP-SimpleChat");
    proto_item *ti = proto_tree_add_item(tree, proto_spchat, tvb, 0, -1, ENC_NA);
    proto_tree *st = proto_item_add_subtree(ti, ett_spchat);
    spchat_conv *c = get_conv(pinfo);
    gboolean from_client = is_from_client(c, pinfo);

    if (unframed(c, pinfo, from_client)) {
        proto_tree_add_item(st, hf_data, tvb, 0, -1, ENC_NA);
        proto_item_append_text(ti, ", data after an oversized length prefix");
        col_append_sep_str(pinfo->cinfo, COL_INFO, ", ", "Data after an oversized length prefix");
        return captured;
    }
    guint32 len = tvb_get_ntohl(tvb, 0);
    proto_item *len_item = proto_tree_add_item(st, hf_length, tvb, 0, LENGTH_PREFIX, ENC_BIG_ENDIAN);
    if (len > SPCHAT_LENGTH_MAX) {
        /* Not reassembled: the rest of this direction has no framing left. */
        guint32 *at = &c->oversized_frame[from_client ? 1 : 0];
        if (!PINFO_FD_VISITED(pinfo) && *at == 0) *at = pinfo->num;
        expert_add_info_format(pinfo, len_item, &ei_oversized_length,
                               "Length prefix %u over the bound of %u: the original server reads however much "
                               "it says (no maximum); not reassembled, the rest of this direction is not framed",
                               len, SPCHAT_LENGTH_MAX);
        if (captured > LENGTH_PREFIX) proto_tree_add_item(st, hf_data, tvb, LENGTH_PREFIX, -1, ENC_NA);
        proto_item_append_text(ti, ", oversized length %u", len);
        col_append_sep_fstr(pinfo->cinfo, COL_INFO, ", ", "Oversized length %u", len);
        return captured;
    }

    guint json_len = MIN(len, captured - LENGTH_PREFIX);
    proto_item *json_item = proto_tree_add_item(st, hf_json, tvb, LENGTH_PREFIX, json_len, ENC_UTF_8);
    const guint8 *d = json_len ? tvb_get_ptr(tvb, LENGTH_PREFIX, json_len) : NULL;
    const char *error;
    const jv *root = json_parse_text(pinfo->pool, d, json_len, SPCHAT_LENGTH_MAX, &error);
    if (root && root->type != JV_OBJECT) {
        root = NULL;
        error = "not a JSON object";
    }
    if (!root) {
        expert_add_info_format(pinfo, json_item, &ei_malformed_json,
                               "Malformed JSON (%s): the original closes the connection", error);
        proto_item_append_text(ti, ", malformed JSON");
        col_append_sep_str(pinfo->cinfo, COL_INFO, ", ", "Malformed JSON");
        return captured;
    }

    const char *type = jv_string(root, "type");
    guint32 key = (guint32)tvb_raw_offset(tvb);
    spchat_pdu *p = (spchat_pdu *)p_get_proto_data(wmem_file_scope(), pinfo, proto_spchat, key);
    if (!p) {
        p = first_pass(pinfo, c, from_client, root, type);
        p_add_proto_data(wmem_file_scope(), pinfo, proto_spchat, key, p);
    }

    wmem_allocator_t *pool = pinfo->pool;
    wmem_strbuf_t *info = wmem_strbuf_new(pool, type ? info_text(pool, type) : "No type");
    proto_item *type_item = add_text_member(st, hf_type, tvb, d, root, "type", pool);
    if (!type)
        expert_add_info_format(pinfo, type_item ? type_item : ti, &ei_unknown_type,
                               "No string \"type\": the original server answers ERROR");
    else if (!known_type(type))
        expert_add_info_format(pinfo, type_item, &ei_unknown_type,
                               "Unknown type \"%s\": the original server answers ERROR", info_text(pool, type));
    proto_item_append_text(ti, ", %s", wmem_strbuf_get_str(info));
    if (p->nick) proto_item_set_generated(proto_tree_add_string(st, hf_registered_nick, tvb, 0, 0, p->nick));

    add_text_member(st, hf_nick, tvb, d, root, "nick", pool);
    add_text_member(st, hf_room, tvb, d, root, "room", pool);
    proto_item *text_item = add_text_member(st, hf_text, tvb, d, root, "text", pool);
    wmem_strbuf_t *members = wmem_strbuf_new(pool, "");
    add_members(st, tvb, pool, root, members);
    proto_item *from_item = add_text_member(st, hf_from, tvb, d, root, "from", pool);
    add_text_member(st, hf_to, tvb, d, root, "to", pool);
    add_ts(st, tvb, pinfo, d, root);

    const char *nick = jv_string(root, "nick");
    const char *room = jv_string(root, "room");
    const char *text = jv_string(root, "text");
    if (type_is(type, "HELLO")) {
        wmem_strbuf_append_printf(info, " nick=%s", info_text(pool, nick));
    } else if (type_is(type, "JOIN") || type_is(type, "WHO")) {
        if (room) wmem_strbuf_append_printf(info, " room=%s", info_text(pool, room));
    } else if (type_is(type, "MSG")) {
        if (room) wmem_strbuf_append_printf(info, " %s", info_text(pool, room));
        if (nick) wmem_strbuf_append_printf(info, " <%s>", info_text(pool, nick));
        wmem_strbuf_append_printf(info, " %s", info_text(pool, text));
        /* text.upper() == "BACKDOOR" answers only the sender (section 2.3). */
        if (text && strcmp(py_case(pool, text, TRUE), "BACKDOOR") == 0)
            expert_add_info_format(pinfo, text_item, &ei_magic_trigger,
                                   "Magic trigger: MSG \"BACKDOOR\" makes the server send a hidden reply "
                                   "(a hidden-trigger pattern)");
        if (text && nick && strcmp(nick, "server") == 0 && strcmp(text, BACKDOOR_REPLY) == 0)
            expert_add_info_format(pinfo, text_item, &ei_magic_trigger,
                                   "Magic trigger: the server's hidden reply to \"BACKDOOR\"");
    } else if (type_is(type, "INFO") || type_is(type, "ERROR")) {
        wmem_strbuf_append_printf(info, " %s", info_text(pool, text));
    } else if (type_is(type, "WHO_LIST")) {
        if (room) wmem_strbuf_append_printf(info, " %s", info_text(pool, room));
        wmem_strbuf_append(info, wmem_strbuf_get_str(members));
    } else if (is_file_type(type)) {
        add_payload(st, tvb, pinfo, d, root, type, p, info);
        if (p->from_mismatch)
            expert_add_info_format(pinfo, from_item, &ei_from_mismatch,
                                   "%s from \"%s\", but this connection said HELLO as %s: the server relays "
                                   "`from` unverified",
                                   type, info_text(pool, p->from_norm), info_text(pool, p->nicks));
    }
    add_text_member(st, hf_sig, tvb, d, root, "sig", pool);
    col_append_sep_str(pinfo->cinfo, COL_INFO, ", ", wmem_strbuf_get_str(info));
    return LENGTH_PREFIX + len;
}

static guint get_spchat_pdu_len(packet_info *pinfo, tvbuff_t *tvb, int offset, void *data _U_)
{
    guint32 len = tvb_get_ntohl(tvb, offset);
    spchat_conv *c = get_conv(pinfo);
    if (len > SPCHAT_LENGTH_MAX || unframed(c, pinfo, is_from_client(c, pinfo)))
        return tvb_reported_length_remaining(tvb, offset);
    return LENGTH_PREFIX + len;
}

static int dissect_spchat(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "SP-SimpleChat");
    col_clear(pinfo->cinfo, COL_INFO);
    tcp_dissect_pdus(tvb, pinfo, tree, TRUE, LENGTH_PREFIX, get_spchat_pdu_len, dissect_spchat_pdu, data);
    return tvb_captured_length(tvb);
}

/* `"type"` as a member name in d[0..n), then ':' and one of the known types. */
static gboolean heur_has_type(const guint8 *d, guint n)
{
    static const char key[] = "\"type\"";
    const guint key_len = sizeof key - 1;
    for (guint i = 1; i + key_len < n; i++) {
        if (d[i] != '"' || memcmp(d + i, key, key_len) != 0) continue;
        guint before = i - 1;
        while (before > 0 && g_ascii_isspace(d[before])) before--;
        if (d[before] != '{' && d[before] != ',') continue;
        guint at = i + key_len;
        while (at < n && g_ascii_isspace(d[at])) at++;
        if (at >= n || d[at] != ':') continue;
        at++;
        while (at < n && g_ascii_isspace(d[at])) at++;
        if (at >= n || d[at] != '"') continue;
        guint start = ++at;
        while (at < n && at - start < 16 && d[at] != '"') at++;
        if (at >= n || d[at] != '"') continue;
        char type[17];
        memcpy(type, d + start, at - start);
        type[at - start] = '\0';
        return known_type(type);
    }
    return FALSE;
}

static gboolean dissect_spchat_heur(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    /* A BE32 length, '{', and a known "type" (PROTOCOLS.md section 6). The
     * frame may continue in later segments: only what is here is searched. */
    guint captured = tvb_captured_length(tvb);
    if (captured < LENGTH_PREFIX + 10 || tvb_get_guint8(tvb, LENGTH_PREFIX) != '{') return FALSE;
    guint32 len = tvb_get_ntohl(tvb, 0);
    if (len < 10 || len > SPCHAT_LENGTH_MAX) return FALSE;
    guint n = MIN(MIN(len, captured - LENGTH_PREFIX), HEUR_SCAN);
    if (!heur_has_type(tvb_get_ptr(tvb, LENGTH_PREFIX, n), n)) return FALSE;
    conversation_t *conv = find_or_create_conversation(pinfo);
    conversation_set_dissector(conv, spchat_handle);
    dissect_spchat(tvb, pinfo, tree, data);
    return TRUE;
}

void proto_register_spchat(void)
{
    static hf_register_info hf[] = {
        {&hf_length, {"Length", "spchat.length", FT_UINT32, BASE_DEC, NULL, 0x0, "Bytes of JSON that follow", HFILL}},
        {&hf_json, {"JSON", "spchat.json", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_type, {"Type", "spchat.type", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_nick, {"Nick", "spchat.nick", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_room, {"Room", "spchat.room", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_text, {"Text", "spchat.text", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_members, {"Member", "spchat.members", FT_STRING, BASE_NONE, NULL, 0x0, "WHO_LIST member", HFILL}},
        {&hf_from, {"From", "spchat.from", FT_STRING, BASE_NONE, NULL, 0x0, "As the sender typed it", HFILL}},
        {&hf_to, {"To", "spchat.to", FT_STRING, BASE_NONE, NULL, 0x0, "A nick or a room", HFILL}},
        {&hf_ts, {"Timestamp (ms)", "spchat.ts", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_sig, {"Signature", "spchat.sig", FT_STRING, BASE_NONE, NULL, 0x0, "Always empty in the original", HFILL}},
        {&hf_registered_nick,
         {"Connection's nick", "spchat.registered_nick", FT_STRING, BASE_NONE, NULL, 0x0,
          "The latest HELLO nick on this connection, strip().lower()", HFILL}},
        {&hf_file_id, {"File id", "spchat.file.id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_file_name, {"Name", "spchat.file.name", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_file_size, {"Size", "spchat.file.size", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_file_sha256,
         {"SHA-256", "spchat.file.sha256", FT_STRING, BASE_NONE, NULL, 0x0, "Of the whole plaintext file", HFILL}},
        {&hf_file_mode, {"Mode", "spchat.file.mode", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_file_aead, {"AEAD", "spchat.file.aead", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_file_kdf, {"KDF", "spchat.file.kdf", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_file_nonce,
         {"File nonce", "spchat.file.file_nonce", FT_BYTES, BASE_NONE, NULL, 0x0,
          "The HKDF salt of the file key, sent in clear", HFILL}},
        {&hf_file_key,
         {"File key", "spchat.file.key", FT_BYTES, BASE_NONE, NULL, 0x0,
          "HKDF-SHA256(32 zero bytes, file nonce, \"file-key\")", HFILL}},
        {&hf_file_index, {"Chunk index", "spchat.file.index", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_chunk_nonce, {"Chunk nonce", "spchat.file.nonce", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_ciphertext_length,
         {"Ciphertext length", "spchat.file.ciphertext_length", FT_UINT32, BASE_DEC, NULL, 0x0,
          "Bytes, base64url decoded", HFILL}},
        {&hf_tag, {"Tag", "spchat.file.tag", FT_BYTES, BASE_NONE, NULL, 0x0, "AES-256-EAX tag", HFILL}},
        {&hf_chunk_status,
         {"Chunk status", "spchat.file.status", FT_UINT8, BASE_DEC, VALS(chunk_status_vals), 0x0, NULL, HFILL}},
        {&hf_start_in,
         {"FILE_START in", "spchat.file.start_in", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The frame whose nonce gave the file key", HFILL}},
        {&hf_plaintext, {"Decrypted chunk", "spchat.file.plaintext", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_plaintext_length,
         {"Decrypted length", "spchat.file.plaintext_length", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_data, {"Data", "spchat.data", FT_BYTES, BASE_NONE, NULL, 0x0, "Not framed", HFILL}},
    };
    static gint *ett[] = {&ett_spchat, &ett_payload};
    static ei_register_info ei[] = {
        {&ei_malformed_json, {"spchat.malformed_json", PI_MALFORMED, PI_ERROR, "Malformed JSON", EXPFILL}},
        {&ei_oversized_length,
         {"spchat.oversized_length", PI_SECURITY, PI_WARN, "Length prefix over the bound (memory DoS)", EXPFILL}},
        {&ei_magic_trigger,
         {"spchat.magic_trigger", PI_SECURITY, PI_WARN, "Magic trigger: the BACKDOOR message", EXPFILL}},
        {&ei_from_mismatch,
         {"spchat.from_mismatch", PI_SECURITY, PI_WARN, "File frame's from is not the connection's nick", EXPFILL}},
        {&ei_zero_key,
         {"spchat.zero_key", PI_SECURITY, PI_WARN,
          "File key from an all-zero session key and a nonce sent in clear", EXPFILL}},
        {&ei_tag_mismatch, {"spchat.tag_mismatch", PI_CHECKSUM, PI_ERROR, "EAX tag mismatch", EXPFILL}},
        {&ei_unknown_type, {"spchat.unknown_type", PI_PROTOCOL, PI_WARN, "Unknown or missing type", EXPFILL}},
        {&ei_bad_file_field,
         {"spchat.bad_file_field", PI_MALFORMED, PI_ERROR, "File field not base64url", EXPFILL}},
        {&ei_no_file_start,
         {"spchat.no_file_start", PI_UNDECODED, PI_NOTE, "No FILE_START for this file earlier in the capture",
          EXPFILL}},
    };

    proto_spchat = proto_register_protocol("SP-SimpleChat", "SP-SimpleChat", "spchat");
    proto_register_field_array(proto_spchat, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_spchat);
    expert_register_field_array(em, ei, array_length(ei));
    prefs_register_protocol(proto_spchat, NULL);

    files_seen = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    spchat_handle = register_dissector("spchat", dissect_spchat, proto_spchat);
}

void proto_reg_handoff_spchat(void)
{
    dissector_add_uint_with_preference("tcp.port", SPCHAT_PORT, spchat_handle);
    heur_dissector_add("tcp", dissect_spchat_heur, "SP-SimpleChat over TCP", "spchat_tcp", proto_spchat,
                       HEURISTIC_ENABLE);
}
