/* SecMsg (SegMSG v0.1) for Wireshark: every header field, reassembly, the
 * handshake pair as a session, decryption from msglab's key log, and expert
 * infos for what a reviewer hunts: bad or zero HMACs, weak DH values,
 * keystream reuse, replays, reflections, stale timestamps, late handshakes.
 * Wire format: PROTOCOLS.md section 4. */
#include <wireshark.h>
#include <epan/conversation.h>
#include <epan/expert.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/proto_data.h>
#include <epan/dissectors/packet-tcp.h>

#include <stdlib.h>
#include <string.h>

#include "msglab_bridge.h"

#define SECMSG_PORT 5000
#define SECMSG_HEADER 51
#define SECMSG_OVERHEAD 83
#define SECMSG_HANDSHAKE_PAYLOAD 256
/* Reassembly never waits for more than this, whatever a length field says. */
#define SECMSG_REASSEMBLY_MAX (16u * 1024u * 1024u)

/* The replay map packs 64-bit keys into pointers. */
G_STATIC_ASSERT(sizeof(gpointer) >= 8);

enum { SECMSG_REGULAR = 1, SECMSG_HANDSHAKE_REQUEST = 2, SECMSG_HANDSHAKE_RESPONSE = 3 };
enum { HMAC_UNCHECKED = 0, HMAC_GOOD = 1, HMAC_BAD = 2, HMAC_NOT_APPLICABLE = 3 };

void proto_register_secmsg(void);
void proto_reg_handoff_secmsg(void);

static int proto_secmsg = -1;
static dissector_handle_t secmsg_handle;

static int hf_magic = -1;
static int hf_type = -1;
static int hf_length = -1;
static int hf_original_hash = -1;
static int hf_timestamp = -1;
static int hf_payload = -1;
static int hf_dh_public = -1;
static int hf_hmac = -1;
static int hf_session_id = -1;
static int hf_response_in = -1;
static int hf_request_in = -1;
static int hf_handshake_complete = -1;
static int hf_hmac_status = -1;
static int hf_plaintext = -1;
static int hf_duplicate_of = -1;
static int hf_reflection_of = -1;
static int hf_keystream_first = -1;

static gint ett_secmsg = -1;
static gint ett_plaintext = -1;

static expert_field ei_hmac_mismatch = EI_INIT;
static expert_field ei_zero_hmac = EI_INIT;
static expert_field ei_weak_dh = EI_INIT;
static expert_field ei_keystream_reuse = EI_INIT;
static expert_field ei_timestamp_skew = EI_INIT;
static expert_field ei_duplicate = EI_INIT;
static expert_field ei_reflected = EI_INIT;
static expert_field ei_hash_mismatch = EI_INIT;
static expert_field ei_length_over_bound = EI_INIT;
static expert_field ei_late_handshake = EI_INIT;
static expert_field ei_bad_magic = EI_INIT;
static expert_field ei_no_key = EI_INIT;

/* Preferences. */
static const char *pref_keylog_file = "";
static guint pref_max_skew = 300;
static guint pref_max_payload = 65536;

static const value_string type_vals[] = {
    {SECMSG_REGULAR, "REGULAR_MESSAGE"},
    {SECMSG_HANDSHAKE_REQUEST, "HANDSHAKE_REQUEST"},
    {SECMSG_HANDSHAKE_RESPONSE, "HANDSHAKE_RESPONSE"},
    {0, NULL}};

static const value_string hmac_status_vals[] = {
    {HMAC_UNCHECKED, "Not checked: no key for this session"},
    {HMAC_GOOD, "Good"},
    {HMAC_BAD, "Bad"},
    {HMAC_NOT_APPLICABLE, "Not applicable (handshake)"},
    {0, NULL}};

/* The key log: the preference, else MSGLAB_KEYLOGFILE; read once per path. */
static const char *keylog_path(void)
{
    if (pref_keylog_file && *pref_keylog_file) return pref_keylog_file;
    const char *env = getenv("MSGLAB_KEYLOGFILE");
    return env ? env : "";
}

static const msglab_keylog *current_keylog(void) { return msglab_keylog_cached(keylog_path()); }

/* Per TCP conversation: the session the handshake pair makes. */
typedef struct {
    address client_addr;
    guint32 client_port;
    gboolean have_client;
    guint32 request_frame;
    guint32 response_frame;
    guint8 session_id[8];
    gboolean have_session_id;
    gboolean have_keys;
    guint8 master[32];
    guint8 hmac_key[32];
    msglab_secmsg_ctx *ctx;
    guint32 first_regular_frame;
    gboolean keystream_flagged;
    /* First 8 HMAC bytes -> (frame << 1 | from_client), both packed into
     * pointers so that tracking a packet allocates nothing. */
    wmem_map_t *macs;
} secmsg_conv;

/* Per PDU, computed on the first pass so later passes show the same. */
typedef struct {
    gboolean from_client;
    secmsg_conv *conv; /* for links to frames seen later (second pass) */
    guint8 hmac_status;
    gboolean weak_dh;
    gboolean late_handshake;
    gboolean hash_mismatch;
    guint32 duplicate_of;
    guint32 reflection_of;
    guint32 keystream_first;
    gboolean keystream_expert; /* the session's first reuse */
    guint8 *plaintext;
    guint32 plaintext_len;
} secmsg_pdu;

static gboolean free_ctx(wmem_allocator_t *allocator _U_, wmem_cb_event_t event _U_, void *data)
{
    msglab_secmsg_ctx_free((msglab_secmsg_ctx *)data);
    return FALSE;
}

static secmsg_conv *get_conv(packet_info *pinfo)
{
    conversation_t *conv = find_or_create_conversation(pinfo);
    secmsg_conv *c = (secmsg_conv *)conversation_get_proto_data(conv, proto_secmsg);
    if (!c) {
        c = wmem_new0(wmem_file_scope(), secmsg_conv);
        c->macs = wmem_map_new(wmem_file_scope(), g_direct_hash, g_direct_equal);
        conversation_add_proto_data(conv, proto_secmsg, c);
    }
    return c;
}

static gboolean is_zero(const guint8 *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return FALSE;
    return TRUE;
}

static guint get_secmsg_pdu_len(packet_info *pinfo _U_, tvbuff_t *tvb, int offset, void *data _U_)
{
    guint32 len = tvb_get_ntohl(tvb, offset + 7);
    if (len > SECMSG_REASSEMBLY_MAX) return tvb_reported_length_remaining(tvb, offset);
    return SECMSG_OVERHEAD + len;
}

static secmsg_pdu *first_pass(tvbuff_t *tvb, packet_info *pinfo, guint8 type, guint32 len)
{
    secmsg_conv *c = get_conv(pinfo);
    secmsg_pdu *p = wmem_new0(wmem_file_scope(), secmsg_pdu);
    guint32 frame = pinfo->num;

    if (!c->have_client) {
        /* The connecting side speaks first (section 4.1). */
        copy_address_wmem(wmem_file_scope(), &c->client_addr, &pinfo->src);
        c->client_port = pinfo->srcport;
        c->have_client = TRUE;
    }
    p->from_client = pinfo->srcport == c->client_port && addresses_equal(&pinfo->src, &c->client_addr);
    gboolean keyed = c->response_frame != 0 && c->response_frame < frame;

    if (type == SECMSG_HANDSHAKE_REQUEST || type == SECMSG_HANDSHAKE_RESPONSE) {
        p->hmac_status = HMAC_NOT_APPLICABLE;
        if (len == SECMSG_HANDSHAKE_PAYLOAD && tvb_captured_length_remaining(tvb, SECMSG_HEADER) >= (gint)len)
            p->weak_dh = !msglab_dh14_public_ok(tvb_get_ptr(tvb, SECMSG_HEADER, len), len);
        if (keyed) {
            p->late_handshake = TRUE;
        } else if (type == SECMSG_HANDSHAKE_REQUEST && c->request_frame == 0) {
            c->request_frame = frame;
            /* The session id is the first 8 bytes of SHA-256(initiator's y). */
            tvb_memcpy(tvb, c->session_id, 11, 8);
            c->have_session_id = TRUE;
            const msglab_keylog *log = current_keylog();
            c->have_keys = log && msglab_secmsg_keys(log, c->session_id, c->master, c->hmac_key);
            if (c->have_keys) {
                c->ctx = msglab_secmsg_ctx_new(c->master, c->hmac_key);
                wmem_register_callback(wmem_file_scope(), free_ctx, c->ctx);
            }
        } else if (type == SECMSG_HANDSHAKE_RESPONSE && c->response_frame == 0) {
            c->response_frame = frame;
        }
    } else {
        const guint8 *mac = tvb_get_ptr(tvb, SECMSG_HEADER + len, 32);
        guint64 prefix;
        memcpy(&prefix, mac, sizeof prefix);
        gpointer key = GSIZE_TO_POINTER(prefix);
        gpointer seen = wmem_map_lookup(c->macs, key);
        if (seen) {
            guint32 seen_frame = (guint32)(GPOINTER_TO_SIZE(seen) >> 1);
            gboolean seen_client = (GPOINTER_TO_SIZE(seen) & 1) != 0;
            if (seen_client == p->from_client)
                p->duplicate_of = seen_frame;
            else
                p->reflection_of = seen_frame;
        } else {
            wmem_map_insert(c->macs, key, GSIZE_TO_POINTER(((gsize)frame << 1) | (p->from_client ? 1 : 0)));
        }
        /* Fixed zero nonce and counter from 0: every message of the
         * session uses the first message's keystream. This runs once per
         * PDU, so a later PDU in the first one's frame is a reuse too. */
        /* first_pass runs once per PDU, so two REGULARs in one segment
         * count as a reuse too. */
        if (c->first_regular_frame == 0) {
            c->first_regular_frame = frame;
        } else {
            p->keystream_first = c->first_regular_frame;
            p->keystream_expert = !c->keystream_flagged;
            c->keystream_flagged = TRUE;
        }
        if (c->have_keys) {
            const guint8 *all = tvb_get_ptr(tvb, 0, SECMSG_HEADER + len);
            int hmac_ok = 0, hash_ok = 0;
            p->plaintext = (guint8 *)wmem_alloc(wmem_file_scope(), len ? len : 1);
            p->plaintext_len = len;
            msglab_secmsg_open(c->ctx, all, SECMSG_HEADER + len, len, mac, p->plaintext, &hmac_ok, &hash_ok);
            p->hmac_status = hmac_ok ? HMAC_GOOD : HMAC_BAD;
            p->hash_mismatch = !hash_ok;
        } else {
            p->hmac_status = HMAC_UNCHECKED;
        }
    }
    p->conv = c;
    return p;
}

static int dissect_secmsg_pdu(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint captured = tvb_captured_length(tvb);
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "SecMsg");

    proto_item *ti = proto_tree_add_item(tree, proto_secmsg, tvb, 0, -1, ENC_NA);
    proto_tree *st = proto_item_add_subtree(ti, ett_secmsg);

    proto_item *magic = proto_tree_add_item(st, hf_magic, tvb, 0, 6, ENC_ASCII);
    if (tvb_memeql(tvb, 0, (const guint8 *)"SegMSG", 6) != 0) {
        expert_add_info(pinfo, magic, &ei_bad_magic);
        col_set_str(pinfo->cinfo, COL_INFO, "Not SecMsg (bad protocol id)");
        return captured;
    }
    guint8 type = tvb_get_guint8(tvb, 6);
    guint32 len = tvb_get_ntohl(tvb, 7);
    proto_tree_add_item(st, hf_type, tvb, 6, 1, ENC_BIG_ENDIAN);
    proto_item *len_item = proto_tree_add_item(st, hf_length, tvb, 7, 4, ENC_BIG_ENDIAN);
    proto_tree_add_item(st, hf_original_hash, tvb, 11, 32, ENC_NA);
    proto_item *ts_item = proto_tree_add_item(st, hf_timestamp, tvb, 43, 8, ENC_TIME_SECS | ENC_BIG_ENDIAN);
    col_add_str(pinfo->cinfo, COL_INFO, val_to_str(type, type_vals, "Unknown type %u"));

    if (len > pref_max_payload)
        expert_add_info_format(pinfo, len_item, &ei_length_over_bound, "Payload length %u exceeds the bound of %u",
                               len, pref_max_payload);
    if ((guint64)SECMSG_OVERHEAD + len > captured) {
        /* Truncated in the capture, or a length no reassembly should wait for. */
        proto_tree_add_item(st, hf_payload, tvb, SECMSG_HEADER, -1, ENC_NA);
        return captured;
    }

    gboolean handshake = type == SECMSG_HANDSHAKE_REQUEST || type == SECMSG_HANDSHAKE_RESPONSE;
    proto_tree_add_item(st, handshake ? hf_dh_public : hf_payload, tvb, SECMSG_HEADER, len, ENC_NA);
    proto_item *mac_item = proto_tree_add_item(st, hf_hmac, tvb, SECMSG_HEADER + len, 32, ENC_NA);

    guint32 key = (guint32)tvb_raw_offset(tvb);
    secmsg_pdu *p = (secmsg_pdu *)p_get_proto_data(wmem_file_scope(), pinfo, proto_secmsg, key);
    if (!p) {
        p = first_pass(tvb, pinfo, type, len);
        p_add_proto_data(wmem_file_scope(), pinfo, proto_secmsg, key, p);
    }

    proto_item *gi;
    const secmsg_conv *c = p->conv;
    if (c->have_session_id) {
        gi = proto_tree_add_bytes_with_length(st, hf_session_id, tvb, 0, 0, c->session_id, 8);
        proto_item_set_generated(gi);
    }
    if (type == SECMSG_HANDSHAKE_REQUEST && c->response_frame && !p->late_handshake) {
        gi = proto_tree_add_uint(st, hf_response_in, tvb, 0, 0, c->response_frame);
        proto_item_set_generated(gi);
    }
    if (type == SECMSG_HANDSHAKE_RESPONSE && c->request_frame && !p->late_handshake) {
        gi = proto_tree_add_uint(st, hf_request_in, tvb, 0, 0, c->request_frame);
        proto_item_set_generated(gi);
    }
    gi = proto_tree_add_boolean(st, hf_handshake_complete, tvb, 0, 0, c->request_frame && c->response_frame);
    proto_item_set_generated(gi);
    gi = proto_tree_add_uint(st, hf_hmac_status, tvb, 0, 0, p->hmac_status);
    proto_item_set_generated(gi);

    if (handshake) {
        if (p->weak_dh)
            expert_add_info(pinfo, ti, &ei_weak_dh);
        if (p->late_handshake) expert_add_info(pinfo, ti, &ei_late_handshake);
    } else {
        if (tvb_get_guint8(tvb, SECMSG_HEADER + len) == 0) {
            guint8 mac[32];
            tvb_memcpy(tvb, mac, SECMSG_HEADER + len, 32);
            if (is_zero(mac, 32)) expert_add_info(pinfo, mac_item, &ei_zero_hmac);
        }
        if (p->hmac_status == HMAC_BAD) expert_add_info(pinfo, mac_item, &ei_hmac_mismatch);
        if (p->hmac_status == HMAC_UNCHECKED && *keylog_path()) expert_add_info(pinfo, mac_item, &ei_no_key);
        if (p->keystream_first) {
            gi = proto_tree_add_uint(st, hf_keystream_first, tvb, 0, 0, p->keystream_first);
            proto_item_set_generated(gi);
            /* Once per session: every later packet repeats it, and carries
             * secmsg.keystream_first to filter on. */
            if (p->keystream_expert)
                expert_add_info_format(pinfo, gi, &ei_keystream_reuse,
                                       "Keystream reuse: the same key and zero nonce as frame %u "
                                       "(C1 xor C2 = P1 xor P2); every later REGULAR packet of this session too",
                                       p->keystream_first);
        }
        if (p->duplicate_of) {
            gi = proto_tree_add_uint(st, hf_duplicate_of, tvb, 0, 0, p->duplicate_of);
            proto_item_set_generated(gi);
            expert_add_info_format(pinfo, gi, &ei_duplicate, "Duplicate of frame %u: a replay", p->duplicate_of);
        }
        if (p->reflection_of) {
            gi = proto_tree_add_uint(st, hf_reflection_of, tvb, 0, 0, p->reflection_of);
            proto_item_set_generated(gi);
            expert_add_info_format(pinfo, gi, &ei_reflected,
                                   "Reflected: frame %u carried this packet in the other direction",
                                   p->reflection_of);
        }
        if (p->plaintext) {
            tvbuff_t *clear = tvb_new_child_real_data(tvb, p->plaintext, p->plaintext_len, p->plaintext_len);
            add_new_data_source(pinfo, clear, "Decrypted SecMsg");
            proto_item *pi = proto_tree_add_item(st, hf_plaintext, clear, 0, p->plaintext_len, ENC_UTF_8);
            if (p->hash_mismatch) expert_add_info(pinfo, pi, &ei_hash_mismatch);
            col_append_fstr(pinfo->cinfo, COL_INFO, " \"%s\"",
                            tvb_format_text(pinfo->pool, clear, 0, MIN(p->plaintext_len, 64)));
        }
    }

    guint64 ts = tvb_get_ntoh64(tvb, 43);
    gint64 capture = (gint64)pinfo->abs_ts.secs;
    gint64 skew = (gint64)ts - capture;
    if (ts > G_MAXINT64 || skew > (gint64)pref_max_skew || -skew > (gint64)pref_max_skew)
        expert_add_info_format(pinfo, ts_item, &ei_timestamp_skew,
                               "Timestamp is %" G_GINT64_FORMAT " s from the capture time (allowed %u s)", skew,
                               pref_max_skew);
    return SECMSG_OVERHEAD + len;
}

static int dissect_secmsg(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    tcp_dissect_pdus(tvb, pinfo, tree, TRUE, 11, get_secmsg_pdu_len, dissect_secmsg_pdu, data);
    return tvb_captured_length(tvb);
}

static gboolean dissect_secmsg_heur(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    if (tvb_captured_length(tvb) < 7) return FALSE;
    if (tvb_memeql(tvb, 0, (const guint8 *)"SegMSG", 6) != 0) return FALSE;
    guint8 type = tvb_get_guint8(tvb, 6);
    if (type < SECMSG_REGULAR || type > SECMSG_HANDSHAKE_RESPONSE) return FALSE;
    conversation_t *conv = find_or_create_conversation(pinfo);
    conversation_set_dissector(conv, secmsg_handle);
    dissect_secmsg(tvb, pinfo, tree, data);
    return TRUE;
}

void proto_register_secmsg(void)
{
    static hf_register_info hf[] = {
        {&hf_magic, {"Protocol id", "secmsg.magic", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_type, {"Message type", "secmsg.type", FT_UINT8, BASE_DEC, VALS(type_vals), 0x0, NULL, HFILL}},
        {&hf_length, {"Payload length", "secmsg.length", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_original_hash,
         {"Plaintext hash", "secmsg.original_hash", FT_BYTES, BASE_NONE, NULL, 0x0,
          "SHA-256 of the plaintext, sent in clear", HFILL}},
        {&hf_timestamp,
         {"Timestamp", "secmsg.timestamp", FT_ABSOLUTE_TIME, ABSOLUTE_TIME_UTC, NULL, 0x0, NULL, HFILL}},
        {&hf_payload, {"Payload", "secmsg.payload", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_dh_public,
         {"DH public value", "secmsg.dh_public", FT_BYTES, BASE_NONE, NULL, 0x0, "RFC 3526 group 14", HFILL}},
        {&hf_hmac, {"HMAC", "secmsg.hmac", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_session_id,
         {"Session id", "secmsg.session_id", FT_BYTES, BASE_NONE, NULL, 0x0,
          "As msglab's key log names the session", HFILL}},
        {&hf_response_in,
         {"Response in", "secmsg.response_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_RESPONSE), 0x0,
          NULL, HFILL}},
        {&hf_request_in,
         {"Request in", "secmsg.request_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_REQUEST), 0x0, NULL,
          HFILL}},
        {&hf_handshake_complete,
         {"Handshake complete", "secmsg.handshake_complete", FT_BOOLEAN, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_hmac_status,
         {"HMAC status", "secmsg.hmac_status", FT_UINT8, BASE_DEC, VALS(hmac_status_vals), 0x0, NULL, HFILL}},
        {&hf_plaintext, {"Plaintext", "secmsg.plaintext", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_duplicate_of,
         {"Duplicate of", "secmsg.duplicate_of", FT_FRAMENUM, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_reflection_of,
         {"Reflection of", "secmsg.reflection_of", FT_FRAMENUM, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_keystream_first,
         {"Keystream first used in", "secmsg.keystream_first", FT_FRAMENUM, BASE_NONE, NULL, 0x0, NULL, HFILL}},
    };
    static gint *ett[] = {&ett_secmsg, &ett_plaintext};
    static ei_register_info ei[] = {
        {&ei_hmac_mismatch,
         {"secmsg.hmac_mismatch", PI_CHECKSUM, PI_ERROR, "HMAC mismatch", EXPFILL}},
        {&ei_zero_hmac,
         {"secmsg.zero_hmac", PI_SECURITY, PI_WARN, "Zero HMAC on a REGULAR packet", EXPFILL}},
        {&ei_weak_dh,
         {"secmsg.weak_dh", PI_SECURITY, PI_ERROR, "Weak DH public value: 0, 1, p-1 or not below p", EXPFILL}},
        {&ei_keystream_reuse, {"secmsg.keystream_reuse", PI_SECURITY, PI_WARN, "Keystream reuse", EXPFILL}},
        {&ei_timestamp_skew,
         {"secmsg.timestamp_skew", PI_SEQUENCE, PI_WARN, "Timestamp far from the capture time", EXPFILL}},
        {&ei_duplicate, {"secmsg.duplicate", PI_SEQUENCE, PI_WARN, "Duplicate packet (replay)", EXPFILL}},
        {&ei_reflected, {"secmsg.reflected", PI_SECURITY, PI_WARN, "Reflected packet", EXPFILL}},
        {&ei_hash_mismatch,
         {"secmsg.hash_mismatch", PI_CHECKSUM, PI_ERROR, "Plaintext hash does not match the decrypted payload",
          EXPFILL}},
        {&ei_length_over_bound,
         {"secmsg.length_over_bound", PI_MALFORMED, PI_ERROR, "Length field over the bound", EXPFILL}},
        {&ei_late_handshake,
         {"secmsg.late_handshake", PI_SECURITY, PI_WARN, "Handshake packet after keys exist", EXPFILL}},
        {&ei_bad_magic, {"secmsg.bad_magic", PI_MALFORMED, PI_ERROR, "Protocol id is not SegMSG", EXPFILL}},
        {&ei_no_key,
         {"secmsg.no_key", PI_UNDECODED, PI_NOTE, "No key in the key log for this session", EXPFILL}},
    };

    proto_secmsg = proto_register_protocol("SecMsg (SegMSG v0.1)", "SecMsg", "secmsg");
    proto_register_field_array(proto_secmsg, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_secmsg);
    expert_register_field_array(em, ei, array_length(ei));

    module_t *m = prefs_register_protocol(proto_secmsg, NULL);
    prefs_register_filename_preference(m, "keylog_file", "Key log file",
                                       "msglab key log (LABEL session-id secret per line); "
                                       "MSGLAB_KEYLOGFILE is used when this is empty",
                                       &pref_keylog_file, FALSE);
    prefs_register_uint_preference(m, "max_skew", "Timestamp skew (seconds)",
                                   "Flag timestamps further than this from the capture time", 10, &pref_max_skew);
    prefs_register_uint_preference(m, "max_payload", "Payload bound (bytes)",
                                   "Flag length fields above this", 10, &pref_max_payload);
    secmsg_handle = register_dissector("secmsg", dissect_secmsg, proto_secmsg);
}

void proto_reg_handoff_secmsg(void)
{
    dissector_add_uint_with_preference("tcp.port", SECMSG_PORT, secmsg_handle);
    heur_dissector_add("tcp", dissect_secmsg_heur, "SecMsg over TCP", "secmsg_tcp", proto_secmsg,
                       HEURISTIC_ENABLE);
}
