/* SOCP v1.3 (the cohort "Secure Overlay Chat Protocol") for Wireshark: one
 * JSON envelope {type, from, to, ts, payload, sig} per WebSocket text
 * message, as tshark's WebSocket dissector hands it over (unmasked,
 * reassembled, inflated). Every envelope and payload field, the public keys
 * the capture carries learnt in frame order, the transport signature checked
 * with the key of `from` or of the server that relayed the frame, content
 * signatures, DMs and public channel messages decrypted with private keys
 * the user gives, and expert infos for what a reviewer hunts: bad or missing
 * signatures, RSA keys under 4096 bits, replayed envelopes, a `from` the
 * connection never said hello as, unencrypted public messages.
 * Wire format: PROTOCOLS.md section 2.8; the cryptography is
 * reference/socp/wire.hpp's, through msglab_bridge.h.
 *
 * Who is on each side of a connection: the `from` of the hello that side
 * sent (USER_HELLO, SERVER_HELLO_JOIN, SERVER_ANNOUNCE, SERVER_HELLO_LINK);
 * failing that, the server a SERVER_HELLO_LINK or USER_HELLO addressed in
 * its `to`, or the server whose hello gave this listening address in its
 * payload (host, port). A server relaying a frame keeps the originator's
 * `from` and signs it itself, so a signature `from`'s key does not verify is
 * checked with the key of the side that sent it.
 *
 * Every decision that depends on the capture so far is taken on the first
 * pass, in frame order, and kept per message, so the second pass (-2) and
 * the GUI show the same. */
#include <wireshark.h>
#include <epan/conversation.h>
#include <epan/expert.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/prefs-int.h>
#include <epan/proto_data.h>
#include <epan/strutil.h>
#include <epan/to_str.h>

#include <stdlib.h>
#include <string.h>

#include "msglab_bridge.h"
#include "msglab_json.h"

void proto_register_socp(void);
void proto_reg_handoff_socp(void);
/* packet-csmp.c: TRUE on a connection CSMP's upgrade made one of its sockets. */
gboolean csmp_ws_connection(packet_info *pinfo);
gboolean signal_ws_connection(packet_info *pinfo);

/* wire.hpp's Limits: a message, an identity. */
#define SOCP_MAX_MESSAGE (1024u * 1024u)
#define SOCP_REQUIRED_BITS 4096u
/* Message ids remembered per direction of a connection, array elements
 * shown, characters of a value in a label or the Info column. */
#define MAX_SEEN 65536u
/* Listening addresses remembered across the capture, and a host's length. */
#define MAX_ENDPOINTS 65536u
#define MAX_HOST 255
#define MAX_ELEMENTS 256u
#define VALUE_TEXT_CHARS 1024
#define INFO_TEXT_CHARS 48

/* Per-packet data keys: the heuristic's call count lives in pinfo->pool (one
 * pass), the message records in file scope, by their place in the frame. */
#define KEY_WS_COUNT 1u
#define KEY_WS_BASE 0x1000u

static int proto_socp = -1;

static int hf_type = -1;
static int hf_from = -1;
static int hf_to = -1;
static int hf_ts = -1;
static int hf_sig = -1;
static int hf_sig_status = -1;
static int hf_sig_signer = -1;
static int hf_sig_key_owner = -1;
static int hf_sig_key_frame = -1;
static int hf_sig_canonical = -1;
static int hf_payload = -1;
static int hf_host = -1;
static int hf_port = -1;
static int hf_pubkey = -1;
static int hf_assigned_id = -1;
static int hf_servers = -1;
static int hf_clients = -1;
static int hf_entry_server_id = -1;
static int hf_entry_user_id = -1;
static int hf_entry_host = -1;
static int hf_entry_port = -1;
static int hf_entry_pubkey = -1;
static int hf_user_id = -1;
static int hf_server_id = -1;
static int hf_meta = -1;
static int hf_meta_pubkey = -1;
static int hf_meta_display_name = -1;
static int hf_ciphertext = -1;
static int hf_sender = -1;
static int hf_sender_pub = -1;
static int hf_content_sig = -1;
static int hf_client = -1;
static int hf_enc_pubkey = -1;
static int hf_add = -1;
static int hf_if_version = -1;
static int hf_version = -1;
static int hf_key_version = -1;
static int hf_wraps = -1;
static int hf_wrap_member = -1;
static int hf_wrap_key = -1;
static int hf_wrap_opened = -1;
static int hf_shares = -1;
static int hf_share_member = -1;
static int hf_share_key = -1;
static int hf_creator_pub = -1;
static int hf_file_id = -1;
static int hf_name = -1;
static int hf_size = -1;
static int hf_sha256 = -1;
static int hf_mode = -1;
static int hf_index = -1;
static int hf_msg_ref = -1;
static int hf_code = -1;
static int hf_detail = -1;
static int hf_other_key = -1;
static int hf_other_value = -1;
static int hf_key_bits = -1;
static int hf_key_encoding = -1;
static int hf_key_fingerprint = -1;
static int hf_csig_status = -1;
static int hf_csig_key = -1;
static int hf_csig_sender = -1;
static int hf_sender_pub_matches = -1;
static int hf_link_sender = -1;
static int hf_link_sender_kind = -1;
static int hf_link_sender_learnt_in = -1;
static int hf_link_receiver = -1;
static int hf_message_id = -1;
static int hf_duplicate_of = -1;
static int hf_dec_status = -1;
static int hf_dec_recipient = -1;
static int hf_dec_key = -1;
static int hf_dec_group_version = -1;
static int hf_group_keys_learnt = -1;
static int hf_plaintext = -1;

static gint ett_socp = -1;
static gint ett_payload = -1;
static gint ett_sig = -1;
static gint ett_key = -1;
static gint ett_entry = -1;
static gint ett_other = -1;

static expert_field ei_bad_sig = EI_INIT;
static expert_field ei_missing_sig = EI_INIT;
static expert_field ei_weak_key = EI_INIT;
static expert_field ei_bad_key = EI_INIT;
static expert_field ei_key_changed = EI_INIT;
static expert_field ei_duplicate = EI_INIT;
static expert_field ei_from_mismatch = EI_INIT;
static expert_field ei_bad_content_sig = EI_INIT;
static expert_field ei_unencrypted = EI_INIT;
static expert_field ei_decryption_failed = EI_INIT;
static expert_field ei_malformed = EI_INIT;
static expert_field ei_unknown_type = EI_INIT;

/* Preferences. */
static const char *pref_keylog_file = "";
static const char *pref_private_keys = "";

static const char *const status_names[] = {NULL, "missing", "verified", "bad", "no key"};
static const char *const signer_names[] = {NULL, "from", "link peer"};

enum { KIND_UNKNOWN = 0, KIND_USER, KIND_SERVER };
static const char *const kind_names[] = {"unknown", "user", "server"};

/* How a side's identity is known, weakest first. */
enum { HOW_NONE = 0, HOW_ENDPOINT, HOW_ADDRESSED, HOW_WELCOME, HOW_HELLO };


/* ---------------------------------------------------------------------------
 * State. */

/* One side of a TCP connection: who it is, and the message ids it sent. */
typedef struct {
    address addr;
    guint32 port;
    const char *identity;
    guint8 kind;
    guint8 how;
    guint32 learnt_in;
    const char *learnt_by; /* the type that told */
    wmem_map_t *seen;      /* message id (hex) -> the first frame that sent it */
    guint n_seen;
} socp_side;

typedef struct {
    socp_side side[2];
    guint n_sides;
    gboolean server_link; /* a side said hello as a server */
} socp_conv;

/* A listening address a server's hello or a link's `to` named. */
typedef struct {
    const char *identity;
    guint32 frame;
} socp_endpoint;

/* "address:port" -> socp_endpoint, across the capture. */
static wmem_map_t *endpoints;
/* The keys and their owners the capture showed so far (C++). */
static msglab_socp *socp_state;

/* One SOCP message, as the first pass saw it. */
typedef struct {
    const char *malformed;
    const char *sender, *receiver; /* the sides' identities */
    guint8 sender_kind;
    guint32 sender_learnt_in;
    const char *sender_learnt_by;
    const char *link_identity; /* the from-mismatch check's expectation */
    gboolean from_mismatch;
    gboolean missing_required_sig;
    gboolean unknown_type;
    const char *message_id;
    guint32 duplicate_of;
    guint8 sig_status, sig_signer;
    const char *sig_key_owner;
    guint32 sig_key_frame;
    const char *sig_canon;
    const char *sig_no_key_for;
    guint8 csig_status, csig_key;
    const char *csig_sender;
    gint8 sender_pub_matches;
    guint8 dec_status, dec_source;
    const char *dec_recipient;
    gboolean dec_group_version_known;
    gint64 dec_group_version;
    guint8 *plaintext;
    guint plaintext_len;
    guint wraps;
    guint64 wraps_opened, wraps_failed;
    guint group_keys_learnt;
    guint n_conflicts;
    const char *conflict_id[MSGLAB_SOCP_MAX_CONFLICTS];
    guint32 conflict_frame[MSGLAB_SOCP_MAX_CONFLICTS];
} socp_msg;

static const char *file_str(const char *s) { return s ? wmem_strdup(wmem_file_scope(), s) : NULL; }

static gboolean type_is(const char *type, const char *name) { return type && strcmp(type, name) == 0; }

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

/* Made on first use in a capture, with the private keys the preferences
 * name; gone with the capture. */
static msglab_socp *current_state(void)
{
    if (!socp_state) {
        socp_state = msglab_socp_new();
        msglab_socp_load_keylog(socp_state, msglab_keylog_cached(keylog_path()));
        msglab_socp_load_private_keys(socp_state, pref_private_keys);
    }
    return socp_state;
}

static void socp_cleanup(void)
{
    msglab_socp_free(socp_state);
    socp_state = NULL;
}

static socp_conv *get_conv(packet_info *pinfo, gboolean create)
{
    conversation_t *conv = create ? find_or_create_conversation(pinfo) : find_conversation_pinfo(pinfo, 0);
    if (!conv) return NULL;
    socp_conv *c = (socp_conv *)conversation_get_proto_data(conv, proto_socp);
    if (!c && create) {
        c = wmem_new0(wmem_file_scope(), socp_conv);
        conversation_add_proto_data(conv, proto_socp, c);
    }
    return c;
}

static socp_side *get_side(socp_conv *c, const address *addr, guint32 port)
{
    for (guint i = 0; i < c->n_sides; i++)
        if (c->side[i].port == port && addresses_equal(&c->side[i].addr, addr)) return &c->side[i];
    if (c->n_sides == array_length(c->side)) return NULL;
    socp_side *s = &c->side[c->n_sides++];
    copy_address_wmem(wmem_file_scope(), &s->addr, addr);
    s->port = port;
    s->seen = wmem_map_new(wmem_file_scope(), g_str_hash, g_str_equal);
    return s;
}

static const char *endpoint_key(wmem_allocator_t *scope, const address *addr, guint32 port)
{
    return wmem_strdup_printf(scope, "%s:%u", address_to_str(scope, addr), port);
}

static void endpoint_put(const char *key, const char *identity, guint32 frame)
{
    if (wmem_map_size(endpoints) >= MAX_ENDPOINTS || wmem_map_contains(endpoints, key)) return;
    socp_endpoint *e = wmem_new(wmem_file_scope(), socp_endpoint);
    e->identity = file_str(identity);
    e->frame = frame;
    wmem_map_insert(endpoints, wmem_strdup(wmem_file_scope(), key), e);
}

/* A hello's payload host and port: where its server listens. "localhost"
 * is the loopback address of either family. */
static void endpoint_from_payload(packet_info *pinfo, const guint8 *d, const jv *obj, const char *identity)
{
    const char *host = jv_string(obj, "host");
    guint64 port;
    if (!host || !*host || strlen(host) > MAX_HOST || !jv_uint(d, jv_member(obj, "port"), 65535, &port) || port == 0)
        return;
    if (strcmp(host, "localhost") == 0) {
        endpoint_put(wmem_strdup_printf(pinfo->pool, "127.0.0.1:%u", (guint)port), identity, pinfo->num);
        endpoint_put(wmem_strdup_printf(pinfo->pool, "::1:%u", (guint)port), identity, pinfo->num);
    } else {
        endpoint_put(wmem_strdup_printf(pinfo->pool, "%s:%u", host, (guint)port), identity, pinfo->num);
    }
}

static void side_set(socp_side *s, const char *identity, guint8 kind, guint8 how, guint32 frame, const char *by)
{
    if (!s || !identity || how < s->how) return;
    s->identity = file_str(identity);
    s->kind = kind;
    s->how = how;
    s->learnt_in = frame;
    s->learnt_by = by;
}

/* A side no hello named: the server listening at its address, if one is known. */
static void side_resolve(packet_info *pinfo, socp_side *s)
{
    if (!s || s->how > HOW_ENDPOINT) return;
    const char *key = endpoint_key(pinfo->pool, &s->addr, s->port);
    const socp_endpoint *e = (const socp_endpoint *)wmem_map_lookup(endpoints, key);
    if (e) side_set(s, e->identity, KIND_SERVER, HOW_ENDPOINT, e->frame, "a server's listening address");
}

static gboolean is_hello(const char *type)
{
    return type_is(type, "USER_HELLO") || type_is(type, "SERVER_HELLO_JOIN") || type_is(type, "SERVER_ANNOUNCE") ||
           type_is(type, "SERVER_HELLO_LINK");
}

/* An identity in a `to`: not "*", not the introducer's "host:port". */
static gboolean names_identity(const char *to, const char *from)
{
    return to && *to && strcmp(to, "*") != 0 && !strchr(to, ':') && (!from || strcmp(to, from) != 0);
}

/* What a hello or a welcome tells about the connection's sides and the
 * servers' listening addresses. */
static void learn_link(packet_info *pinfo, socp_conv *c, socp_side *snd, socp_side *rcv, const guint8 *d,
                       const jv *root, const char *type, const char *from, const char *to)
{
    const jv *payload = jv_member(root, "payload");
    if (is_hello(type)) {
        gboolean user = type_is(type, "USER_HELLO");
        side_set(snd, from, user ? KIND_USER : KIND_SERVER, HOW_HELLO, pinfo->num, type);
        if (!user) {
            c->server_link = TRUE;
            endpoint_from_payload(pinfo, d, payload, from);
        }
        /* The hello goes to the server it names, at the address it connected to. */
        if ((user || type_is(type, "SERVER_HELLO_LINK")) && names_identity(to, from)) {
            side_set(rcv, to, KIND_SERVER, HOW_ADDRESSED, pinfo->num, type);
            if (rcv) endpoint_put(endpoint_key(pinfo->pool, &rcv->addr, rcv->port), to, pinfo->num);
        }
        if (rcv && user && rcv->kind == KIND_UNKNOWN) rcv->kind = KIND_SERVER;
        return;
    }
    if (!type_is(type, "SERVER_WELCOME")) return;
    /* The introducer answers the new server on the connection it opened. */
    side_set(snd, from, KIND_SERVER, HOW_WELCOME, pinfo->num, type);
    if (snd) endpoint_put(endpoint_key(pinfo->pool, &snd->addr, snd->port), from, pinfo->num);
    /* The introducer may reassign the new server's id (section 2.8, bootstrap). */
    const char *assigned = jv_string(payload, "assigned_id");
    if (rcv && assigned && *assigned) {
        rcv->how = HOW_NONE;
        side_set(rcv, assigned, KIND_SERVER, HOW_WELCOME, pinfo->num, type);
    }
    c->server_link = TRUE;
    const jv *servers = jv_member(payload, "servers");
    if (!servers || servers->type != JV_ARRAY) return;
    guint i = 0;
    for (const jv *e = servers->child; e && i < MAX_ELEMENTS; e = e->next, i++) {
        const char *id = jv_string(e, "server_id");
        if (id) endpoint_from_payload(pinfo, d, e, id);
    }
}

static const char *hex_of(wmem_allocator_t *scope, const guint8 *b, guint n)
{
    static const char digits[] = "0123456789abcdef";
    char *out = (char *)wmem_alloc(scope, 2 * n + 1);
    for (guint i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* The types a user sends as itself, and those a server sends as itself to a
 * server it is linked to (section 2.8's catalogue; relays keep `from`
 * only for the others). */
static gboolean user_content_type(const char *type)
{
    return type_is(type, "MSG_DIRECT") || type_is(type, "MSG_PUBLIC_CHANNEL") || type_is(type, "FILE_START") ||
           type_is(type, "FILE_CHUNK") || type_is(type, "FILE_END");
}

static gboolean server_own_type(const char *type)
{
    return type_is(type, "HEARTBEAT") || type_is(type, "SERVER_DELIVER") || type_is(type, "USER_ADVERTISE") ||
           type_is(type, "USER_REMOVE");
}

static void take_result(socp_msg *m, const msglab_socp_result *r, const guint8 *plaintext)
{
    m->sig_status = (guint8)r->sig_status;
    m->sig_signer = (guint8)r->sig_signer;
    if (r->sig_status == MSGLAB_SOCP_SIG_VERIFIED) {
        m->sig_key_owner = file_str(r->sig_key_owner);
        m->sig_key_frame = r->sig_key_frame;
        m->sig_canon = r->sig_canon;
    }
    if (r->sig_status == MSGLAB_SOCP_SIG_NO_KEY) m->sig_no_key_for = file_str(r->sig_no_key_for);
    m->csig_status = (guint8)r->csig_status;
    m->csig_key = (guint8)r->csig_key;
    if (r->csig_status) m->csig_sender = file_str(r->csig_sender);
    m->sender_pub_matches = (gint8)r->sender_pub_matches;
    m->dec_status = (guint8)r->dec_status;
    m->dec_source = (guint8)r->dec_source;
    if (r->dec_recipient[0]) m->dec_recipient = file_str(r->dec_recipient);
    m->dec_group_version_known = r->dec_group_version_known != 0;
    m->dec_group_version = r->dec_group_version;
    if (r->plaintext_len > 0) {
        m->plaintext_len = (guint)r->plaintext_len;
        m->plaintext = (guint8 *)wmem_memdup(wmem_file_scope(), plaintext, m->plaintext_len);
    }
    m->wraps = r->wraps;
    m->wraps_opened = r->wraps_opened;
    m->wraps_failed = r->wraps_failed;
    m->group_keys_learnt = r->group_keys_learnt;
    m->n_conflicts = MIN(r->n_conflicts, MSGLAB_SOCP_MAX_CONFLICTS);
    for (guint i = 0; i < m->n_conflicts; i++) {
        m->conflict_id[i] = file_str(r->conflict_id[i]);
        m->conflict_frame[i] = r->conflict_frame[i];
    }
}

static socp_msg *first_pass(packet_info *pinfo, const guint8 *d, guint n, const jv *root, const char *jerror)
{
    socp_msg *m = wmem_new0(wmem_file_scope(), socp_msg);
    socp_conv *c = get_conv(pinfo, TRUE);
    socp_side *snd = get_side(c, &pinfo->src, pinfo->srcport);
    socp_side *rcv = get_side(c, &pinfo->dst, pinfo->destport);
    side_resolve(pinfo, snd);
    side_resolve(pinfo, rcv);

    if (!root) {
        m->malformed = file_str(jerror);
    } else if (root->type != JV_OBJECT) {
        m->malformed = "JSON, but not an object";
    } else {
        const char *type = jv_string(root, "type");
        const char *from = jv_string(root, "from");
        const char *to = jv_string(root, "to");
        /* A hello names its own sender, whoever the side was thought to be. */
        const char *link_sender = is_hello(type) && from ? from : snd ? snd->identity : NULL;
        msglab_socp_result *r = wmem_new(pinfo->pool, msglab_socp_result);
        guint8 *plaintext = (guint8 *)wmem_alloc(pinfo->pool, n);
        if (!msglab_socp_analyze(current_state(), (const char *)d, n, link_sender, pinfo->num, r, plaintext, n)) {
            m->malformed = file_str(r->error);
        } else {
            learn_link(pinfo, c, snd, rcv, d, root, type, from, to);
            take_result(m, r, plaintext);
            m->unknown_type = !r->known_type;
            /* Required on what a server sends (section 2.8 "sig"); users may
             * leave theirs empty. */
            m->missing_required_sig =
                r->sig_status == MSGLAB_SOCP_SIG_MISSING && r->server_signed_type && snd && snd->kind == KIND_SERVER;
            if (snd && snd->identity && from) {
                gboolean user_link = snd->kind == KIND_USER && snd->how == HOW_HELLO && user_content_type(type);
                gboolean server_link = c->server_link && snd->kind == KIND_SERVER && server_own_type(type);
                if ((user_link || server_link) && strcmp(from, snd->identity) != 0) {
                    m->from_mismatch = TRUE;
                    m->link_identity = snd->identity;
                }
            }
            /* The same envelope twice in one direction of one connection is
             * a replay; fan-out puts it on different connections. */
            m->message_id = hex_of(wmem_file_scope(), r->message_id, sizeof r->message_id);
            if (snd) {
                guint32 first = GPOINTER_TO_UINT(wmem_map_lookup(snd->seen, m->message_id));
                if (first) {
                    m->duplicate_of = first;
                } else if (snd->n_seen < MAX_SEEN) {
                    wmem_map_insert(snd->seen, m->message_id, GUINT_TO_POINTER(pinfo->num));
                    snd->n_seen++;
                }
            }
        }
    }
    if (snd) {
        m->sender = snd->identity;
        m->sender_kind = snd->kind;
        m->sender_learnt_in = snd->learnt_in;
        m->sender_learnt_by = snd->learnt_by;
    }
    if (rcv) m->receiver = rcv->identity;
    return m;
}


/* ---------------------------------------------------------------------------
 * The tree. */

#define AT(v) ((v)->start)
#define LEN(v) ((v)->end - (v)->start)

static proto_item *add_generated_string(proto_tree *tree, int hf, tvbuff_t *tvb, const char *value)
{
    proto_item *gi = proto_tree_add_string(tree, hf, tvb, 0, 0, value);
    proto_item_set_generated(gi);
    return gi;
}

static proto_item *add_generated_uint(proto_tree *tree, int hf, tvbuff_t *tvb, guint32 value)
{
    proto_item *gi = proto_tree_add_uint(tree, hf, tvb, 0, 0, value);
    proto_item_set_generated(gi);
    return gi;
}

/* A string for a label or the Info column: escaped, at most `max` characters. */
static const char *shown_text(wmem_allocator_t *pool, const char *s, glong max)
{
    if (!s) return "";
    glong chars = g_utf8_strlen(s, -1);
    const char *end = chars > max ? g_utf8_offset_to_pointer(s, max) : s + strlen(s);
    const char *shown = format_text(pool, (const guchar *)s, end - s);
    return chars > max ? wmem_strconcat(pool, shown, "...", NULL) : shown;
}

/* A value as text: a string decoded, anything else as written. */
static const char *value_text(wmem_allocator_t *pool, const guint8 *d, const jv *v)
{
    if (v->type == JV_STRING) return v->str;
    return wmem_strndup(pool, (const char *)d + v->start, LEN(v));
}

/* A JSON number that is an integer: -?digits. */
static gboolean jv_int64(const guint8 *d, const jv *v, gint64 *out)
{
    if (!v || v->type != JV_NUMBER || LEN(v) == 0 || LEN(v) > 20) return FALSE;
    guint i = v->start;
    gboolean negative = d[i] == '-';
    if (negative) i++;
    if (i == v->end) return FALSE;
    guint64 mag = 0;
    for (; i < v->end; i++) {
        if (d[i] < '0' || d[i] > '9') return FALSE;
        guint digit = d[i] - '0';
        if (mag > (G_MAXUINT64 - digit) / 10) return FALSE;
        mag = mag * 10 + digit;
    }
    if (negative ? mag > (guint64)G_MAXINT64 + 1 : mag > (guint64)G_MAXINT64) return FALSE;
    *out = negative ? (gint64)(0 - mag) : (gint64)mag;
    return TRUE;
}

/* A member no field describes: its name, and its value under it. */
static proto_item *add_other(proto_tree *t, tvbuff_t *tvb, wmem_allocator_t *pool, const guint8 *d, const jv *v)
{
    proto_item *ti = proto_tree_add_string(t, hf_other_key, tvb, AT(v), LEN(v), v->key ? v->key : "");
    proto_tree *ot = proto_item_add_subtree(ti, ett_other);
    const char *text = value_text(pool, d, v);
    proto_tree_add_string_format_value(ot, hf_other_value, tvb, AT(v), LEN(v), text, "%s",
                                       shown_text(pool, text, VALUE_TEXT_CHARS));
    proto_item_append_text(ti, " = %s", shown_text(pool, text, INFO_TEXT_CHARS));
    return ti;
}

static proto_item *add_text(proto_tree *t, int hf, tvbuff_t *tvb, wmem_allocator_t *pool, const guint8 *d,
                            const jv *v)
{
    if (v->type == JV_OBJECT || v->type == JV_ARRAY) return add_other(t, tvb, pool, d, v);
    return proto_tree_add_string(t, hf, tvb, AT(v), LEN(v), value_text(pool, d, v));
}

static proto_item *add_number(proto_tree *t, int hf, tvbuff_t *tvb, wmem_allocator_t *pool, const guint8 *d,
                              const jv *v, guint64 max)
{
    guint64 n;
    if (!jv_uint(d, v, max, &n)) return add_other(t, tvb, pool, d, v);
    if (max > G_MAXUINT32) return proto_tree_add_uint64(t, hf, tvb, AT(v), LEN(v), n);
    return proto_tree_add_uint(t, hf, tvb, AT(v), LEN(v), (guint32)n);
}

/* A public key: its size, encoding and fingerprint under it. `expected`:
 * a key must be there (else an expert info); wrapped keys are shown as keys
 * only when they are one. */
static proto_item *add_key(proto_tree *t, int hf, tvbuff_t *tvb, packet_info *pinfo, const guint8 *d, const jv *v,
                           gboolean expected)
{
    if (v->type != JV_STRING) return add_other(t, tvb, pinfo->pool, d, v);
    proto_item *ti = proto_tree_add_string(t, hf, tvb, AT(v), LEN(v), v->str);
    unsigned bits = 0;
    int encoding = 0;
    guint8 fingerprint[32];
    if (!msglab_socp_key_info(v->str, strlen(v->str), &bits, &encoding, fingerprint)) {
        if (expected)
            expert_add_info_format(pinfo, ti, &ei_bad_key,
                                   "Not an RSA public key (base64url of DER SPKI or of PEM, or PEM): the spec's "
                                   "BAD_KEY");
        return ti;
    }
    proto_tree *kt = proto_item_add_subtree(ti, ett_key);
    proto_item_set_generated(proto_tree_add_uint(kt, hf_key_bits, tvb, AT(v), LEN(v), bits));
    add_generated_string(kt, hf_key_encoding, tvb, encoding == MSGLAB_SOCP_KEY_PEM ? "PEM" : "DER");
    add_generated_string(kt, hf_key_fingerprint, tvb, hex_of(pinfo->pool, fingerprint, sizeof fingerprint));
    proto_item_append_text(ti, " (RSA-%u, %s)", bits, encoding == MSGLAB_SOCP_KEY_PEM ? "PEM" : "DER");
    if (bits < SOCP_REQUIRED_BITS)
        expert_add_info_format(pinfo, ti, &ei_weak_key, "RSA-%u key: SOCP v1.3 requires RSA-4096 (section 2.8)",
                               bits);
    return ti;
}

typedef struct {
    tvbuff_t *tvb;
    packet_info *pinfo;
    const guint8 *d;
    const socp_msg *m;
    proto_item *top;
    proto_item *ciphertext; /* for the decryption's expert infos */
} socp_view;

/* A servers/clients element: its members, its id on the item. */
static void add_entry(socp_view *v, proto_tree *t, int hf, const jv *e)
{
    if (e->type != JV_OBJECT) {
        add_other(t, v->tvb, v->pinfo->pool, v->d, e);
        return;
    }
    proto_item *ti = proto_tree_add_item(t, hf, v->tvb, AT(e), LEN(e), ENC_NA);
    proto_tree *et = proto_item_add_subtree(ti, ett_entry);
    const char *id = jv_string(e, "server_id");
    if (!id) id = jv_string(e, "user_id");
    if (id) proto_item_append_text(ti, ": %s", shown_text(v->pinfo->pool, id, INFO_TEXT_CHARS));
    for (const jv *mb = e->child; mb; mb = mb->next) {
        if (strcmp(mb->key, "server_id") == 0)
            add_text(et, hf_entry_server_id, v->tvb, v->pinfo->pool, v->d, mb);
        else if (strcmp(mb->key, "user_id") == 0)
            add_text(et, hf_entry_user_id, v->tvb, v->pinfo->pool, v->d, mb);
        else if (strcmp(mb->key, "host") == 0)
            add_text(et, hf_entry_host, v->tvb, v->pinfo->pool, v->d, mb);
        else if (strcmp(mb->key, "port") == 0)
            add_number(et, hf_entry_port, v->tvb, v->pinfo->pool, v->d, mb, 65535);
        else if (strcmp(mb->key, "pubkey") == 0)
            add_key(et, hf_entry_pubkey, v->tvb, v->pinfo, v->d, mb, TRUE);
        else
            add_other(et, v->tvb, v->pinfo->pool, v->d, mb);
    }
}

/* A wraps or shares element; `i` its place, for whether it opened. */
static void add_wrap(socp_view *v, proto_tree *t, gboolean wrap, const jv *e, guint i)
{
    if (e->type != JV_OBJECT) {
        add_other(t, v->tvb, v->pinfo->pool, v->d, e);
        return;
    }
    proto_item *ti = proto_tree_add_item(t, wrap ? hf_wraps : hf_shares, v->tvb, AT(e), LEN(e), ENC_NA);
    proto_tree *wt = proto_item_add_subtree(ti, ett_entry);
    const char *member_key = wrap ? "member_id" : "member";
    const char *wrapped_key = wrap ? "wrapped_key" : "wrapped_public_channel_key";
    const char *member = jv_string(e, member_key);
    if (member) proto_item_append_text(ti, " for %s", shown_text(v->pinfo->pool, member, INFO_TEXT_CHARS));
    for (const jv *mb = e->child; mb; mb = mb->next) {
        if (strcmp(mb->key, member_key) == 0) {
            add_text(wt, wrap ? hf_wrap_member : hf_share_member, v->tvb, v->pinfo->pool, v->d, mb);
        } else if (strcmp(mb->key, wrapped_key) == 0) {
            /* The original sends the member's public key here, no wrapped key. */
            add_key(wt, wrap ? hf_wrap_key : hf_share_key, v->tvb, v->pinfo, v->d, mb, FALSE);
        } else {
            add_other(wt, v->tvb, v->pinfo->pool, v->d, mb);
        }
    }
    const socp_msg *m = v->m;
    if (i < m->wraps && i < MSGLAB_SOCP_MAX_WRAPS && ((m->wraps_opened | m->wraps_failed) >> i & 1)) {
        gboolean opened = (m->wraps_opened >> i & 1) != 0;
        proto_item *gi = proto_tree_add_boolean(wt, hf_wrap_opened, v->tvb, AT(e), LEN(e), opened);
        proto_item_set_generated(gi);
        proto_item_append_text(ti, opened ? " (opened)" : " (did not open)");
        if (!opened)
            expert_add_info_format(v->pinfo, gi, &ei_decryption_failed,
                                   "The member's private key does not open this wrap");
    }
}

static void add_sig_status(proto_tree *t, tvbuff_t *tvb, const socp_msg *m)
{
    add_generated_string(t, hf_sig_status, tvb, status_names[m->sig_status]);
    if (m->sig_status != MSGLAB_SOCP_SIG_VERIFIED) return;
    add_generated_string(t, hf_sig_signer, tvb, signer_names[m->sig_signer]);
    add_generated_string(t, hf_sig_key_owner, tvb, m->sig_key_owner);
    add_generated_uint(t, hf_sig_key_frame, tvb, m->sig_key_frame);
    add_generated_string(t, hf_sig_canonical, tvb, m->sig_canon);
}

static void add_content_sig(socp_view *v, proto_tree *t, const jv *mb)
{
    const socp_msg *m = v->m;
    proto_item *ti = add_text(t, hf_content_sig, v->tvb, v->pinfo->pool, v->d, mb);
    if (!m->csig_status) return;
    proto_tree *ct = proto_item_add_subtree(ti, ett_sig);
    add_generated_string(ct, hf_csig_status, v->tvb, status_names[m->csig_status]);
    if (m->csig_sender && *m->csig_sender) add_generated_string(ct, hf_csig_sender, v->tvb, m->csig_sender);
    if (m->csig_status == MSGLAB_SOCP_SIG_VERIFIED)
        add_generated_string(ct, hf_csig_key, v->tvb,
                             m->csig_key == MSGLAB_SOCP_CSIG_KEY_SENDER_PUB ? "sender_pub"
                                                                           : "the key learnt for the sender");
    if (m->sender_pub_matches >= 0) {
        proto_item *gi = proto_tree_add_boolean(ct, hf_sender_pub_matches, v->tvb, 0, 0, m->sender_pub_matches);
        proto_item_set_generated(gi);
    }
    proto_item_append_text(ti, " [%s]", status_names[m->csig_status]);
    if (m->csig_status == MSGLAB_SOCP_SIG_BAD)
        expert_add_info_format(v->pinfo, ti, &ei_bad_content_sig,
                               "content_sig does not verify over the end-to-end fields (section 2.8, signing rules) "
                               "with sender_pub nor the key the capture learnt for %s",
                               m->csig_sender && *m->csig_sender ? m->csig_sender : "the creator");
}

static void add_payload_member(socp_view *v, proto_tree *pt, const jv *mb)
{
    wmem_allocator_t *pool = v->pinfo->pool;
    const char *k = mb->key;
    tvbuff_t *tvb = v->tvb;
    const guint8 *d = v->d;
    static const struct {
        const char *key;
        int *hf;
    } texts[] = {
        {"host", &hf_host},       {"assigned_id", &hf_assigned_id}, {"user_id", &hf_user_id},
        {"server_id", &hf_server_id}, {"sender", &hf_sender},       {"client", &hf_client},
        {"file_id", &hf_file_id}, {"name", &hf_name},               {"sha256", &hf_sha256},
        {"mode", &hf_mode},       {"msg_ref", &hf_msg_ref},         {"code", &hf_code},
        {"detail", &hf_detail},
    };
    static const struct {
        const char *key;
        int *hf;
        guint64 max;
    } numbers[] = {
        {"port", &hf_port, 65535},           {"if_version", &hf_if_version, G_MAXUINT64},
        {"version", &hf_version, G_MAXUINT64}, {"key_version", &hf_key_version, G_MAXUINT64},
        {"size", &hf_size, G_MAXUINT64},     {"index", &hf_index, G_MAXUINT64},
    };
    static const struct {
        const char *key;
        int *hf;
    } keys[] = {
        {"pubkey", &hf_pubkey},
        {"enc_pubkey", &hf_enc_pubkey},
        {"sender_pub", &hf_sender_pub},
        {"creator_pub", &hf_creator_pub},
    };
    for (guint i = 0; i < array_length(texts); i++)
        if (strcmp(k, texts[i].key) == 0) {
            add_text(pt, *texts[i].hf, tvb, pool, d, mb);
            return;
        }
    for (guint i = 0; i < array_length(numbers); i++)
        if (strcmp(k, numbers[i].key) == 0) {
            add_number(pt, *numbers[i].hf, tvb, pool, d, mb, numbers[i].max);
            return;
        }
    for (guint i = 0; i < array_length(keys); i++)
        if (strcmp(k, keys[i].key) == 0) {
            add_key(pt, *keys[i].hf, tvb, v->pinfo, d, mb, TRUE);
            return;
        }
    if (strcmp(k, "ciphertext") == 0) {
        v->ciphertext = add_text(pt, hf_ciphertext, tvb, pool, d, mb);
        return;
    }
    if (strcmp(k, "content_sig") == 0) {
        add_content_sig(v, pt, mb);
        return;
    }
    if (strcmp(k, "meta") == 0 && mb->type == JV_OBJECT) {
        proto_item *ti = proto_tree_add_item(pt, hf_meta, tvb, AT(mb), LEN(mb), ENC_NA);
        proto_tree *mt = proto_item_add_subtree(ti, ett_entry);
        for (const jv *e = mb->child; e; e = e->next) {
            if (strcmp(e->key, "pubkey") == 0)
                add_key(mt, hf_meta_pubkey, tvb, v->pinfo, d, e, TRUE);
            else if (strcmp(e->key, "display_name") == 0)
                add_text(mt, hf_meta_display_name, tvb, pool, d, e);
            else
                add_other(mt, tvb, pool, d, e);
        }
        return;
    }
    gboolean servers = strcmp(k, "servers") == 0, clients = strcmp(k, "clients") == 0;
    gboolean wraps = strcmp(k, "wraps") == 0, shares = strcmp(k, "shares") == 0, add = strcmp(k, "add") == 0;
    if ((servers || clients || wraps || shares || add) && mb->type == JV_ARRAY) {
        guint i = 0;
        for (const jv *e = mb->child; e && i < MAX_ELEMENTS; e = e->next, i++) {
            if (servers || clients)
                add_entry(v, pt, servers ? hf_servers : hf_clients, e);
            else if (wraps || shares)
                add_wrap(v, pt, wraps, e, i);
            else
                add_text(pt, hf_add, tvb, pool, d, e);
        }
        return;
    }
    add_other(pt, tvb, pool, d, mb);
}

static void add_decryption(socp_view *v, proto_tree *st)
{
    const socp_msg *m = v->m;
    tvbuff_t *tvb = v->tvb;
    packet_info *pinfo = v->pinfo;
    if (m->group_keys_learnt) add_generated_uint(st, hf_group_keys_learnt, tvb, m->group_keys_learnt);
    if (!m->dec_status) return;
    static const char *const dec_names[] = {NULL, "no key", "decrypted", "failed", "unencrypted"};
    proto_item *status = add_generated_string(st, hf_dec_status, tvb, dec_names[m->dec_status]);
    if (m->dec_recipient) add_generated_string(st, hf_dec_recipient, tvb, m->dec_recipient);
    if (m->dec_status == MSGLAB_SOCP_DEC_DECRYPTED) {
        const char *source = m->dec_source == MSGLAB_SOCP_SOURCE_KEYLOG   ? "key log"
                             : m->dec_source == MSGLAB_SOCP_SOURCE_KEY_FILE ? "private key file"
                                                                            : "group key";
        add_generated_string(st, hf_dec_key, tvb, source);
        if (m->dec_source == MSGLAB_SOCP_SOURCE_GROUP_KEY && m->dec_group_version_known) {
            proto_item *gi = proto_tree_add_int64(st, hf_dec_group_version, tvb, 0, 0, m->dec_group_version);
            proto_item_set_generated(gi);
        }
    }
    if (m->dec_status == MSGLAB_SOCP_DEC_FAILED)
        expert_add_info_format(pinfo, v->ciphertext ? v->ciphertext : status, &ei_decryption_failed,
                               m->dec_source ? "The recipient's private key does not open the ciphertext "
                                               "(RSA-OAEP-SHA256)"
                                             : "No known group key opens the ciphertext (AES-256-GCM)");
    if (m->plaintext_len) {
        tvbuff_t *ptvb = tvb_new_child_real_data(tvb, m->plaintext, m->plaintext_len, m->plaintext_len);
        add_new_data_source(pinfo, ptvb, "SOCP plaintext");
        proto_tree_add_item(st, hf_plaintext, ptvb, 0, m->plaintext_len, ENC_UTF_8);
    }
    if (m->dec_status == MSGLAB_SOCP_DEC_UNENCRYPTED)
        expert_add_info_format(pinfo, v->ciphertext ? v->ciphertext : status, &ei_unencrypted,
                               "Unencrypted public message: the ciphertext is base64 of the text itself");
}

static void socp_display(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, const socp_msg *m, const guint8 *d,
                         const jv *root)
{
    wmem_allocator_t *pool = pinfo->pool;
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "SOCP");
    proto_item *ti = proto_tree_add_item(tree, proto_socp, tvb, 0, -1, ENC_NA);
    proto_tree *st = proto_item_add_subtree(ti, ett_socp);
    socp_view v = {tvb, pinfo, d, m, ti, NULL};
    const char *type = root ? jv_string(root, "type") : NULL;
    const char *from = root ? jv_string(root, "from") : NULL;
    const char *to = root ? jv_string(root, "to") : NULL;

    if (m->sender) {
        proto_item *gi = add_generated_string(st, hf_link_sender, tvb, m->sender);
        proto_tree *lt = proto_item_add_subtree(gi, ett_other);
        add_generated_string(lt, hf_link_sender_kind, tvb, kind_names[m->sender_kind]);
        if (m->sender_learnt_in) add_generated_uint(lt, hf_link_sender_learnt_in, tvb, m->sender_learnt_in);
        if (m->sender_learnt_by) proto_item_append_text(gi, " (from %s)", m->sender_learnt_by);
    }
    if (m->receiver) add_generated_string(st, hf_link_receiver, tvb, m->receiver);

    proto_item *type_item = NULL, *from_item = NULL, *sig_item = NULL;
    if (root && root->type == JV_OBJECT) {
        for (const jv *mb = root->child; mb; mb = mb->next) {
            const char *k = mb->key;
            if (strcmp(k, "type") == 0) {
                type_item = add_text(st, hf_type, tvb, pool, d, mb);
            } else if (strcmp(k, "from") == 0) {
                from_item = add_text(st, hf_from, tvb, pool, d, mb);
            } else if (strcmp(k, "to") == 0) {
                add_text(st, hf_to, tvb, pool, d, mb);
            } else if (strcmp(k, "ts") == 0) {
                gint64 ms;
                if (jv_int64(d, mb, &ms)) {
                    nstime_t t;
                    t.secs = (time_t)(ms / 1000);
                    t.nsecs = (int)((ms % 1000) * 1000000);
                    if (t.nsecs < 0) {
                        t.secs -= 1;
                        t.nsecs += 1000000000;
                    }
                    proto_item *ts = proto_tree_add_time(st, hf_ts, tvb, AT(mb), LEN(mb), &t);
                    proto_item_append_text(ts, " (%" G_GINT64_FORMAT " ms)", ms);
                } else {
                    add_other(st, tvb, pool, d, mb);
                }
            } else if (strcmp(k, "payload") == 0 && mb->type == JV_OBJECT) {
                proto_item *pi = proto_tree_add_item(st, hf_payload, tvb, AT(mb), LEN(mb), ENC_NA);
                proto_tree *pt = proto_item_add_subtree(pi, ett_payload);
                for (const jv *e = mb->child; e; e = e->next) add_payload_member(&v, pt, e);
            } else if (strcmp(k, "sig") == 0) {
                sig_item = add_text(st, hf_sig, tvb, pool, d, mb);
            } else {
                add_other(st, tvb, pool, d, mb);
            }
        }
    }
    col_append_sep_fstr(pinfo->cinfo, COL_INFO, ", ", "SOCP %s", type ? shown_text(pool, type, INFO_TEXT_CHARS)
                                                                     : "(malformed)");
    if (m->malformed) {
        expert_add_info_format(pinfo, ti, &ei_malformed, "Malformed envelope: %s", m->malformed);
        proto_item_append_text(ti, ", malformed: %s", m->malformed);
        return;
    }
    col_append_fstr(pinfo->cinfo, COL_INFO, " from %s to %s", shown_text(pool, from, INFO_TEXT_CHARS),
                    shown_text(pool, to, INFO_TEXT_CHARS));
    proto_item_append_text(ti, ", %s", shown_text(pool, type, INFO_TEXT_CHARS));

    if (m->unknown_type)
        expert_add_info_format(pinfo, type_item, &ei_unknown_type,
                               "Unknown type \"%s\": not in the v1.3 catalogue (the spec's UNKNOWN_TYPE)",
                               shown_text(pool, type, INFO_TEXT_CHARS));
    if (m->from_mismatch)
        expert_add_info_format(pinfo, from_item, &ei_from_mismatch,
                               "%s from \"%s\" on a connection whose %s said hello as \"%s\"",
                               shown_text(pool, type, INFO_TEXT_CHARS), shown_text(pool, from, INFO_TEXT_CHARS),
                               m->sender_kind == KIND_USER ? "user" : "server",
                               shown_text(pool, m->link_identity, INFO_TEXT_CHARS));

    /* The transport signature. */
    proto_tree *sgt = sig_item ? proto_item_add_subtree(sig_item, ett_sig) : st;
    add_sig_status(sgt, tvb, m);
    if (sig_item) proto_item_append_text(sig_item, " [%s]", status_names[m->sig_status]);
    if (m->sig_status == MSGLAB_SOCP_SIG_VERIFIED && m->sig_signer == MSGLAB_SOCP_SIGNER_PEER && sig_item)
        proto_item_append_text(sig_item, " by the relaying %s", m->sig_key_owner);
    if (m->sig_status == MSGLAB_SOCP_SIG_BAD)
        expert_add_info_format(pinfo, sig_item, &ei_bad_sig,
                               "Bad signature: it verifies with neither the key of from (%s) nor that of the side "
                               "that sent it (%s)",
                               shown_text(pool, from, INFO_TEXT_CHARS),
                               shown_text(pool, m->sender ? m->sender : "?", INFO_TEXT_CHARS));
    if (m->sig_status == MSGLAB_SOCP_SIG_NO_KEY && sig_item)
        proto_item_append_text(sig_item, m->sig_no_key_for && *m->sig_no_key_for ? ": no key for %s in the capture"
                                                                                 : "%s: the sending side is unknown",
                               shown_text(pool, m->sig_no_key_for, INFO_TEXT_CHARS));
    if (m->missing_required_sig)
        expert_add_info_format(pinfo, sig_item ? sig_item : ti, &ei_missing_sig,
                               "%s from a server without a signature: required on every server-originated frame "
                               "(section 2.8)",
                               shown_text(pool, type, INFO_TEXT_CHARS));

    for (guint i = 0; i < m->n_conflicts; i++)
        expert_add_info_format(pinfo, ti, &ei_key_changed,
                               "Public key for %s differs from the one learnt in frame %u (kept: keys are pinned)",
                               shown_text(pool, m->conflict_id[i], INFO_TEXT_CHARS), m->conflict_frame[i]);

    if (m->message_id) {
        proto_item *gi = add_generated_string(st, hf_message_id, tvb, m->message_id);
        if (m->duplicate_of) {
            proto_item *dup = add_generated_uint(st, hf_duplicate_of, tvb, m->duplicate_of);
            expert_add_info_format(pinfo, dup ? dup : gi, &ei_duplicate,
                                   "Duplicate of frame %u in the same direction of this connection (same ts, from, "
                                   "to and payload): a replay section 8.3's seen_ids should drop",
                                   m->duplicate_of);
        }
    }
    add_decryption(&v, st);
    if (m->plaintext_len && m->dec_status != MSGLAB_SOCP_DEC_FAILED) {
        char *text = wmem_strndup(pool, (const char *)m->plaintext, m->plaintext_len);
        col_append_fstr(pinfo->cinfo, COL_INFO, " \"%s\"", shown_text(pool, text, INFO_TEXT_CHARS));
    }
}

/* ---------------------------------------------------------------------------
 * WebSocket messages: the "ws" heuristic. */

/* This call's place among the heuristic's calls in this frame, this pass. */
static guint next_ws_index(packet_info *pinfo)
{
    guint *count = (guint *)p_get_proto_data(pinfo->pool, pinfo, proto_socp, KEY_WS_COUNT);
    if (!count) {
        count = wmem_new0(pinfo->pool, guint);
        p_add_proto_data(pinfo->pool, pinfo, proto_socp, KEY_WS_COUNT, count);
    }
    return (*count)++;
}

/* Section 2.8's envelope: string type, from and to, an integer ts, an
 * object payload. */
static gboolean envelope_shape(const guint8 *d, const jv *root)
{
    gint64 ts;
    if (!root || root->type != JV_OBJECT) return FALSE;
    if (!jv_string(root, "type") || !jv_string(root, "from") || !jv_string(root, "to")) return FALSE;
    if (!jv_int64(d, jv_member(root, "ts"), &ts)) return FALSE;
    const jv *payload = jv_member(root, "payload");
    return payload && payload->type == JV_OBJECT;
}

static gboolean dissect_socp_ws(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint index = next_ws_index(pinfo);
    guint n = tvb_captured_length(tvb);
    if (n == 0) return FALSE;
    socp_msg *m = (socp_msg *)p_get_proto_data(wmem_file_scope(), pinfo, proto_socp, KEY_WS_BASE + index);
    /* Later passes take the first pass's decision. */
    if (!m && PINFO_FD_VISITED(pinfo)) return FALSE;
    if (!m && (csmp_ws_connection(pinfo) || signal_ws_connection(pinfo))) return FALSE;

    socp_conv *c = m ? NULL : get_conv(pinfo, FALSE);
    /* Once a connection has carried SOCP, every message on it is SOCP's. */
    gboolean known = c && c->n_sides > 0;
    guint first = 0;
    const guint8 *d = tvb_get_ptr(tvb, 0, n);
    while (first < n && (d[first] == ' ' || d[first] == '\t' || d[first] == '\n' || d[first] == '\r')) first++;
    if (!m && !known && (first == n || d[first] != '{' || n > SOCP_MAX_MESSAGE)) return FALSE;
    const char *jerror = "not JSON";
    const jv *root = NULL;
    if (first < n && d[first] == '{') root = json_parse_text(pinfo->pool, d, n, SOCP_MAX_MESSAGE, &jerror);

    if (!m) {
        if (!known && !envelope_shape(d, root)) return FALSE;
        m = first_pass(pinfo, d, n, root, jerror);
        p_add_proto_data(wmem_file_scope(), pinfo, proto_socp, KEY_WS_BASE + index, m);
    }
    socp_display(tvb, pinfo, tree, m, d, root);
    return TRUE;
}

/* ---------------------------------------------------------------------------
 * Registration. */

void proto_register_socp(void)
{
    static hf_register_info hf[] = {
        {&hf_type, {"Type", "socp.type", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_from, {"From", "socp.from", FT_STRING, BASE_NONE, NULL, 0x0, "A server or user id", HFILL}},
        {&hf_to, {"To", "socp.to", FT_STRING, BASE_NONE, NULL, 0x0, "A server or user id, \"*\" or host:port", HFILL}},
        {&hf_ts, {"Timestamp", "socp.ts", FT_ABSOLUTE_TIME, ABSOLUTE_TIME_UTC, NULL, 0x0, "ts, Unix milliseconds",
                  HFILL}},
        {&hf_sig,
         {"Signature", "socp.sig", FT_STRING, BASE_NONE, NULL, 0x0,
          "RSASSA-PSS-SHA256 over the canonical payload, base64url", HFILL}},
        {&hf_sig_status,
         {"Signature status", "socp.sig.status", FT_STRING, BASE_NONE, NULL, 0x0,
          "verified, bad (every candidate key known, none verifies), missing, or no key (a candidate signer's key is "
          "not in the capture)",
          HFILL}},
        {&hf_sig_signer,
         {"Signed by", "socp.sig.signer", FT_STRING, BASE_NONE, NULL, 0x0,
          "from, or link peer: the side of the connection that sent it (a relaying server)", HFILL}},
        {&hf_sig_key_owner,
         {"Key of", "socp.sig.key_owner", FT_STRING, BASE_NONE, NULL, 0x0, "The identity whose key verified it",
          HFILL}},
        {&hf_sig_key_frame,
         {"Key learnt in", "socp.sig.key_frame", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The frame that carried the verifying key", HFILL}},
        {&hf_sig_canonical,
         {"Canonical form", "socp.sig.canonical", FT_STRING, BASE_NONE, NULL, 0x0,
          "The payload text that verified: sorted keys ASCII-escaped, sorted keys raw UTF-8, or received order",
          HFILL}},
        {&hf_payload, {"Payload", "socp.payload", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_host, {"Host", "socp.payload.host", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_port, {"Port", "socp.payload.port", FT_UINT16, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_pubkey, {"Public key", "socp.payload.pubkey", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_assigned_id, {"Assigned id", "socp.payload.assigned_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_servers, {"Server entry", "socp.payload.servers", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_clients, {"Client entry", "socp.payload.clients", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_entry_server_id,
         {"Server id", "socp.payload.entry.server_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_entry_user_id, {"User id", "socp.payload.entry.user_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_entry_host, {"Host", "socp.payload.entry.host", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_entry_port, {"Port", "socp.payload.entry.port", FT_UINT16, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_entry_pubkey,
         {"Public key", "socp.payload.entry.pubkey", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_user_id, {"User id", "socp.payload.user_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_server_id, {"Server id", "socp.payload.server_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_meta, {"Meta", "socp.payload.meta", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_meta_pubkey, {"Public key", "socp.payload.meta.pubkey", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_meta_display_name,
         {"Display name", "socp.payload.meta.display_name", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_ciphertext, {"Ciphertext", "socp.payload.ciphertext", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_sender, {"Sender", "socp.payload.sender", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_sender_pub,
         {"Sender public key", "socp.payload.sender_pub", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_content_sig,
         {"Content signature", "socp.payload.content_sig", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_client, {"Client", "socp.payload.client", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_enc_pubkey,
         {"Encryption public key", "socp.payload.enc_pubkey", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_add, {"Added member", "socp.payload.add", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_if_version, {"If version", "socp.payload.if_version", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_version, {"Version", "socp.payload.version", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_key_version,
         {"Group key version", "socp.payload.key_version", FT_UINT64, BASE_DEC, NULL, 0x0,
          "msglab's public channel messages: the version of the group key", HFILL}},
        {&hf_wraps, {"Wrap", "socp.payload.wraps", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_wrap_member, {"Member id", "socp.payload.wraps.member_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_wrap_key,
         {"Wrapped key", "socp.payload.wraps.wrapped_key", FT_STRING, BASE_NONE, NULL, 0x0,
          "The group key under the member's RSA-OAEP key", HFILL}},
        {&hf_wrap_opened,
         {"Opened", "socp.payload.wraps.opened", FT_BOOLEAN, BASE_NONE, NULL, 0x0,
          "The member's private key opened it to a 32-byte group key", HFILL}},
        {&hf_shares, {"Share", "socp.payload.shares", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_share_member, {"Member", "socp.payload.shares.member", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_share_key,
         {"Wrapped key", "socp.payload.shares.wrapped_public_channel_key", FT_STRING, BASE_NONE, NULL, 0x0, NULL,
          HFILL}},
        {&hf_creator_pub,
         {"Creator public key", "socp.payload.creator_pub", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_file_id, {"File id", "socp.payload.file_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_name, {"Name", "socp.payload.name", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_size, {"Size", "socp.payload.size", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_sha256, {"SHA-256", "socp.payload.sha256", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_mode, {"Mode", "socp.payload.mode", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_index, {"Index", "socp.payload.index", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_msg_ref, {"Message reference", "socp.payload.msg_ref", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_code, {"Code", "socp.payload.code", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_detail, {"Detail", "socp.payload.detail", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_other_key,
         {"Member", "socp.other", FT_STRING, BASE_NONE, NULL, 0x0, "A member no field describes: its name", HFILL}},
        {&hf_other_value,
         {"Value", "socp.other.value", FT_STRING, BASE_NONE, NULL, 0x0, "Decoded if a string, else as written",
          HFILL}},
        {&hf_key_bits, {"Key size (bits)", "socp.key.bits", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_key_encoding,
         {"Key encoding", "socp.key.encoding", FT_STRING, BASE_NONE, NULL, 0x0,
          "DER SubjectPublicKeyInfo or PEM text (base64url of either, or bare PEM)", HFILL}},
        {&hf_key_fingerprint,
         {"Key fingerprint", "socp.key.fingerprint", FT_STRING, BASE_NONE, NULL, 0x0,
          "SHA-256 of the DER SubjectPublicKeyInfo", HFILL}},
        {&hf_csig_status,
         {"Content signature status", "socp.content_sig.status", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_csig_key,
         {"Verified with", "socp.content_sig.key", FT_STRING, BASE_NONE, NULL, 0x0,
          "sender_pub, or the key the capture learnt for the sender", HFILL}},
        {&hf_csig_sender,
         {"Signed for", "socp.content_sig.sender", FT_STRING, BASE_NONE, NULL, 0x0,
          "The originator the end-to-end fields name", HFILL}},
        {&hf_sender_pub_matches,
         {"sender_pub is the learnt key", "socp.content_sig.sender_pub_matches", FT_BOOLEAN, BASE_NONE, NULL, 0x0,
          "sender_pub against the key the capture learnt first for the sender", HFILL}},
        {&hf_link_sender,
         {"Sent by", "socp.link.sender", FT_STRING, BASE_NONE, NULL, 0x0,
          "The identity of the connection's side that sent this message", HFILL}},
        {&hf_link_sender_kind,
         {"Sender kind", "socp.link.sender_kind", FT_STRING, BASE_NONE, NULL, 0x0, "user, server or unknown", HFILL}},
        {&hf_link_sender_learnt_in,
         {"Identity learnt in", "socp.link.sender_learnt_in", FT_FRAMENUM, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_link_receiver,
         {"Sent to", "socp.link.receiver", FT_STRING, BASE_NONE, NULL, 0x0,
          "The identity of the connection's other side", HFILL}},
        {&hf_message_id,
         {"Message id", "socp.message_id", FT_STRING, BASE_NONE, NULL, 0x0,
          "SHA-256 of section 8.3's seen_ids key (ts, from, to, payload hash)", HFILL}},
        {&hf_duplicate_of,
         {"Duplicate of", "socp.duplicate_of", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The first frame with this message id in this direction of this connection", HFILL}},
        {&hf_dec_status,
         {"Decryption", "socp.decryption.status", FT_STRING, BASE_NONE, NULL, 0x0,
          "decrypted, no key, failed, or unencrypted", HFILL}},
        {&hf_dec_recipient,
         {"Recipient", "socp.decryption.recipient", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_dec_key,
         {"Decrypted with", "socp.decryption.key", FT_STRING, BASE_NONE, NULL, 0x0,
          "key log, private key file, or group key", HFILL}},
        {&hf_dec_group_version,
         {"Group key version", "socp.decryption.group_version", FT_INT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_group_keys_learnt,
         {"Group keys opened", "socp.group_keys_learnt", FT_UINT32, BASE_DEC, NULL, 0x0,
          "Wraps this message carries that a known private key opened", HFILL}},
        {&hf_plaintext, {"Plaintext", "socp.plaintext", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
    };
    static gint *ett[] = {&ett_socp, &ett_payload, &ett_sig, &ett_key, &ett_entry, &ett_other};
    static ei_register_info ei[] = {
        {&ei_bad_sig, {"socp.bad_sig", PI_SECURITY, PI_ERROR, "Bad transport signature", EXPFILL}},
        {&ei_missing_sig,
         {"socp.missing_sig", PI_SECURITY, PI_WARN, "Server frame without the required signature", EXPFILL}},
        {&ei_weak_key, {"socp.weak_key", PI_SECURITY, PI_WARN, "RSA key under 4096 bits", EXPFILL}},
        {&ei_bad_key, {"socp.bad_key", PI_MALFORMED, PI_WARN, "Not an RSA public key", EXPFILL}},
        {&ei_key_changed,
         {"socp.key_changed", PI_SECURITY, PI_WARN, "A different public key for an identity that had one", EXPFILL}},
        {&ei_duplicate, {"socp.duplicate", PI_SECURITY, PI_WARN, "Duplicate message (replay)", EXPFILL}},
        {&ei_from_mismatch,
         {"socp.from_mismatch", PI_SECURITY, PI_WARN, "from is not the identity of the connection it came on",
          EXPFILL}},
        {&ei_bad_content_sig, {"socp.bad_content_sig", PI_SECURITY, PI_ERROR, "Bad content signature", EXPFILL}},
        {&ei_unencrypted, {"socp.unencrypted", PI_SECURITY, PI_WARN, "Unencrypted public message", EXPFILL}},
        {&ei_decryption_failed,
         {"socp.decryption_failed", PI_UNDECODED, PI_WARN, "The key is known, the ciphertext does not open",
          EXPFILL}},
        {&ei_malformed, {"socp.malformed", PI_MALFORMED, PI_ERROR, "Malformed envelope", EXPFILL}},
        {&ei_unknown_type, {"socp.unknown_type", PI_PROTOCOL, PI_WARN, "Unknown type", EXPFILL}},
    };

    proto_socp = proto_register_protocol("Secure Overlay Chat Protocol", "SOCP", "socp");
    proto_register_field_array(proto_socp, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_socp);
    expert_register_field_array(em, ei, array_length(ei));

    module_t *m = prefs_register_protocol(proto_socp, NULL);
    prefs_register_filename_preference(m, "keylog_file", "Key log file",
                                       "SOCP_PRIVATE_KEY <hex of the user id> <hex of the PKCS#8 DER> lines decrypt "
                                       "what goes to that user; secmsg.keylog_file, then MSGLAB_KEYLOGFILE, is used "
                                       "when this is empty",
                                       &pref_keylog_file, FALSE);
    prefs_register_filename_preference(m, "private_keys", "Private keys",
                                       "A PEM (PKCS#8) RSA private key file, or a folder of them: each decrypts what "
                                       "goes to the user whose public key in the capture is its public half",
                                       &pref_private_keys, FALSE);

    endpoints = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    register_init_routine(socp_cleanup);
    register_cleanup_routine(socp_cleanup);
}

void proto_reg_handoff_socp(void)
{
    heur_dissector_add("ws", dissect_socp_ws, "SOCP over WebSocket", "socp_ws", proto_socp, HEURISTIC_ENABLE);
}
