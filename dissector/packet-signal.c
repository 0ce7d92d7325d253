/* The Signal-style chat (rohankalbag/cryptography-signal-protocol) for
 * Wireshark: Engine.IO v4 and Socket.IO v5 text packets over HTTP
 * long-polling and over WebSocket, the chat's events and acks, who is on
 * each connection, the key directory the capture shows, decryption with a
 * key log, and expert infos for what a reviewer hunts: replayed X3DH and
 * ratchet messages, counter jumps beyond MAX_SKIP, a bundle that changes for
 * a name, a `from` that is not the connection's user, malformed packets, bad
 * base64 or key lengths, the pongi broadcast, a true ack to an X3DH message
 * whose MAC does not verify. Wire format: PROTOCOLS.md section 5; the
 * cryptography is msglab's, through msglab_bridge.h.
 *
 * Two entry points, one state:
 *  - WebSocket messages: a heuristic on the "ws" list. Engine.IO text starts
 *    with a packet type digit; SOCP and CSMP take only JSON text, so none of
 *    the three takes another's messages. A connection is Socket.IO's when its
 *    upgrade request went to the Socket.IO path, or when it carried a
 *    Socket.IO packet before.
 *  - HTTP long-polling bodies (text/plain, several Engine.IO packets joined
 *    by 0x1e): HTTP hands a body with a media type to the media_type table
 *    and tries its heuristics only when no dissector is registered for that
 *    type, which text/plain always has (line-based text). This dissector
 *    takes text/plain in that table, dissects the bodies of requests to the
 *    Socket.IO path (the HTTP conversation's request URI) and hands every
 *    other body to the line-based text dissector as before.
 *
 * Who is who: a connection's user is the username of the register_user sent
 * on it. Polling requests and the WebSocket are separate TCP connections of
 * one Engine.IO session, tied by the sid of the query string (or of the open
 * packet), so the user, and the acks awaited, belong to the session.
 *
 * Every decision that depends on the capture so far is taken on the first
 * pass, in frame order, and kept per Engine.IO packet, so the second pass
 * (-2) and the GUI show the same. */
#include <wireshark.h>
#include <epan/conversation.h>
#include <epan/dissectors/packet-http.h>
#include <epan/expert.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/prefs-int.h>
#include <epan/proto_data.h>
#include <epan/strutil.h>

#include <stdlib.h>
#include <string.h>

#include "msglab_bridge.h"
#include "msglab_json.h"

void proto_register_signal(void);
void proto_reg_handoff_signal(void);

#define SIGNAL_PORT 8080
#define SIGNAL_PATH "/socket.io/"
/* Bounds: the text of one message, the Engine.IO packets of one polling
 * body, Socket.IO arguments and users shown, a plaintext kept. */
#define MAX_TEXT (1024u * 1024u)
#define MAX_PACKETS 256u
#define MAX_ELEMENTS 256u
#define MAX_PLAINTEXT 65536u
#define INFO_TEXT_CHARS 48
/* PROTOCOLS.md 5.6: the receiver refuses to skip more message keys. */
#define MAX_SKIP 10u
/* Map entries one capture can make the plugin keep, per map. */
#define MAX_STATE 65536u

/* Per-packet data keys: the call count lives in pinfo->pool (one pass), the
 * message records in file scope, by their place in the frame. */
#define KEY_COUNT 1u
#define KEY_BASE 0x1000u

enum { EIO_OPEN = 0, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE, EIO_UPGRADE, EIO_NOOP, EIO_BINARY };
enum { SIO_CONNECT = 0, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR, SIO_BINARY_EVENT, SIO_BINARY_ACK };
enum {
    EV_NONE = 0,
    EV_REGISTER,
    EV_REQUEST_USERS,
    EV_REQUEST_PREKEY,
    EV_X3DH,
    EV_RATCHET,
    EV_PONGI,
    EV_PINGI,
    EV_OTHER
};

static const value_string eio_type_vals[] = {
    {EIO_OPEN, "open"},       {EIO_CLOSE, "close"}, {EIO_PING, "ping"},
    {EIO_PONG, "pong"},       {EIO_MESSAGE, "message"}, {EIO_UPGRADE, "upgrade"},
    {EIO_NOOP, "noop"},       {EIO_BINARY, "binary message (base64)"}, {0, NULL},
};
static const value_string sio_type_vals[] = {
    {SIO_CONNECT, "connect"},
    {SIO_DISCONNECT, "disconnect"},
    {SIO_EVENT, "event"},
    {SIO_ACK, "ack"},
    {SIO_CONNECT_ERROR, "connect_error"},
    {SIO_BINARY_EVENT, "binary_event"},
    {SIO_BINARY_ACK, "binary_ack"},
    {0, NULL},
};
static const char *const event_names[] = {NULL,          "register_user", "request_users", "request_prekey",
                                          "x3dh_message", "ratchet_msg",   "pongi",         "pingi"};
static const char *const mac_names[] = {NULL, "unknown", "good", "bad"};

static int proto_signal = -1;
static int proto_http = -1;

static int hf_transport = -1;
static int hf_direction = -1;
static int hf_query_sid = -1;
static int hf_conn_user = -1;
static int hf_conn_user_frame = -1;
static int hf_eio_packet = -1;
static int hf_eio_type = -1;
static int hf_eio_sid = -1;
static int hf_eio_upgrades = -1;
static int hf_eio_ping_interval = -1;
static int hf_eio_ping_timeout = -1;
static int hf_eio_max_payload = -1;
static int hf_eio_data = -1;
static int hf_sio_type = -1;
static int hf_sio_attachments = -1;
static int hf_sio_namespace = -1;
static int hf_sio_ack_id = -1;
static int hf_sio_sid = -1;
static int hf_sio_arg = -1;
static int hf_event = -1;
static int hf_ack_to = -1;
static int hf_ack_event = -1;
static int hf_ack_in = -1;
static int hf_ack_success = -1;
static int hf_username = -1;
static int hf_from = -1;
static int hf_target = -1;
static int hf_ik = -1;
static int hf_sik = -1;
static int hf_spk = -1;
static int hf_spk_sig = -1;
static int hf_users = -1;
static int hf_users_count = -1;
static int hf_bundle = -1;
static int hf_bundle_found = -1;
static int hf_bundle_user = -1;
static int hf_bundle_ik = -1;
static int hf_bundle_sik = -1;
static int hf_bundle_spk = -1;
static int hf_bundle_spk_sign = -1;
static int hf_bundle_was = -1;
static int hf_epk = -1;
static int hf_cipher = -1;
static int hf_hmac = -1;
static int hf_header = -1;
static int hf_header_dh = -1;
static int hf_header_pn = -1;
static int hf_header_n = -1;
static int hf_header_pn_value = -1;
static int hf_header_n_value = -1;
static int hf_undecodable = -1;
static int hf_other = -1;
static int hf_replay_of = -1;
static int hf_mac_status = -1;
static int hf_key_source = -1;
static int hf_plaintext = -1;

static gint ett_signal = -1;
static gint ett_eio = -1;
static gint ett_sio = -1;
static gint ett_args = -1;
static gint ett_bundle = -1;
static gint ett_header = -1;

static expert_field ei_x3dh_replay = EI_INIT;
static expert_field ei_ratchet_replay = EI_INIT;
static expert_field ei_counter_jump = EI_INIT;
static expert_field ei_key_substitution = EI_INIT;
static expert_field ei_spoofed_from = EI_INIT;
static expert_field ei_malformed = EI_INIT;
static expert_field ei_bad_encoding = EI_INIT;
static expert_field ei_debug_broadcast = EI_INIT;
static expert_field ei_bad_mac = EI_INIT;
static expert_field ei_ack_true_bad_mac = EI_INIT;

static dissector_handle_t text_lines_handle;

/* Preferences. */
static const char *pref_keylog_file = "";
static guint pref_port = SIGNAL_PORT;


/* ---------------------------------------------------------------------------
 * Parsing: one Engine.IO packet, and the Socket.IO packet it carries. */

typedef struct {
    guint start, end;   /* the Engine.IO packet in the message */
    gint eio_type;      /* EIO_*, -1 when unknown */
    const char *error;  /* malformed: why */
    const jv *open;     /* the open packet's JSON */
    guint base;         /* where the JSON text starts: jv offsets are relative to it */
    gint sio_type;      /* SIO_*, -1 when none */
    gboolean has_attachments;
    guint64 attachments;
    guint att_start, att_len;
    guint ns_start, ns_len; /* 0 bytes: the default namespace "/" */
    gboolean has_ack;
    guint64 ack_id;
    guint ack_start, ack_len;
    const jv *json;     /* the Socket.IO data */
    const char *event;  /* an event's name */
    const jv *args;     /* the first argument: after the name for an event */
    gint ev;            /* EV_* */
} sig_parsed;

static gint event_kind(const char *name)
{
    for (guint i = 1; i < array_length(event_names); i++)
        if (strcmp(name, event_names[i]) == 0) return (gint)i;
    return EV_OTHER;
}

/* Digits at *i (at most 19): TRUE with the value. */
static gboolean read_digits(const guint8 *d, guint *i, guint end, guint64 *out)
{
    guint start = *i;
    guint64 v = 0;
    while (*i < end && d[*i] >= '0' && d[*i] <= '9' && *i - start < 19) v = v * 10 + (d[(*i)++] - '0');
    if (*i == start) return FALSE;
    *out = v;
    return TRUE;
}

static void parse_sio(wmem_allocator_t *pool, const guint8 *d, guint i, guint end, sig_parsed *p)
{
    if (i == end) {
        p->error = "a message without a Socket.IO packet";
        return;
    }
    if (d[i] < '0' || d[i] > '6') {
        p->error = "the Socket.IO packet type is not 0-6";
        return;
    }
    p->sio_type = d[i++] - '0';
    if (p->sio_type == SIO_BINARY_EVENT || p->sio_type == SIO_BINARY_ACK) {
        p->att_start = i;
        if (!read_digits(d, &i, end, &p->attachments) || i == end || d[i] != '-') {
            p->error = "a binary packet without its attachment count";
            return;
        }
        p->has_attachments = TRUE;
        p->att_len = i - p->att_start;
        i++;
    }
    if (i < end && d[i] == '/') {
        p->ns_start = i;
        while (i < end && d[i] != ',') i++;
        p->ns_len = i - p->ns_start;
        if (i < end) i++;
    }
    p->ack_start = i;
    if (i < end && d[i] >= '0' && d[i] <= '9') {
        if (!read_digits(d, &i, end, &p->ack_id) || (i < end && d[i] >= '0' && d[i] <= '9')) {
            p->error = "an ack id of more than 19 digits";
            return;
        }
        p->has_ack = TRUE;
        p->ack_len = i - p->ack_start;
    }
    if (i < end) {
        const char *error = NULL;
        p->base = i;
        p->json = json_parse_text(pool, d + i, end - i, MAX_TEXT, &error);
        if (!p->json) {
            p->error = wmem_strdup_printf(pool, "Socket.IO data: %s", error);
            return;
        }
    }
    switch (p->sio_type) {
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        if (!p->json || p->json->type != JV_ARRAY || !p->json->child || p->json->child->type != JV_STRING) {
            p->error = "an event whose data is not an array starting with its name";
            return;
        }
        p->event = p->json->child->str;
        p->args = p->json->child->next;
        p->ev = event_kind(p->event);
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        if (!p->has_ack) {
            p->error = "an ack without an ack id";
            return;
        }
        if (!p->json || p->json->type != JV_ARRAY) {
            p->error = "an ack whose data is not an array";
            return;
        }
        p->args = p->json->child;
        break;
    case SIO_CONNECT:
        if (p->json && p->json->type != JV_OBJECT) p->error = "connect data that is not an object";
        break;
    case SIO_DISCONNECT:
        if (p->json) p->error = "data on a disconnect";
        break;
    default:
        break;
    }
}

static void parse_eio(wmem_allocator_t *pool, const guint8 *d, guint start, guint end, sig_parsed *p)
{
    memset(p, 0, sizeof *p);
    p->start = start;
    p->end = end;
    p->eio_type = -1;
    p->sio_type = -1;
    if (start == end) {
        p->error = "an empty Engine.IO packet";
        return;
    }
    if (d[start] == 'b') {
        p->eio_type = EIO_BINARY;
        return;
    }
    if (d[start] < '0' || d[start] > '6') {
        p->error = "the Engine.IO packet type is not 0-6";
        return;
    }
    p->eio_type = d[start] - '0';
    guint i = start + 1;
    if (p->eio_type == EIO_OPEN) {
        const char *error = NULL;
        p->base = i;
        p->open = i < end ? json_parse_text(pool, d + i, end - i, MAX_TEXT, &error) : NULL;
        if (!p->open)
            p->error = wmem_strdup_printf(pool, "open packet: %s", i < end ? error : "no data");
        else if (p->open->type != JV_OBJECT || !jv_string(p->open, "sid"))
            p->error = "an open packet without a sid";
        return;
    }
    if (p->eio_type == EIO_MESSAGE) parse_sio(pool, d, i, end, p);
}

/* The packets of a message: a WebSocket message is one; a polling body is
 * several joined by 0x1e. Returns how many (at most MAX_PACKETS). */
static guint parse_message(wmem_allocator_t *pool, const guint8 *d, guint n, gboolean polling, sig_parsed **out)
{
    guint count = 1;
    if (polling)
        for (guint i = 0; i < n; i++)
            if (d[i] == 0x1e) count++;
    count = MIN(count, MAX_PACKETS);
    sig_parsed *p = wmem_alloc_array(pool, sig_parsed, count);
    guint start = 0;
    for (guint k = 0; k < count; k++) {
        guint end = start;
        if (k + 1 == count)
            end = n;
        else
            while (end < n && d[end] != 0x1e) end++;
        parse_eio(pool, d, start, end, &p[k]);
        start = end + 1;
    }
    *out = p;
    return count;
}


/* ---------------------------------------------------------------------------
 * State. */

/* What the first pass decided for one Engine.IO packet. */
typedef struct {
    guint8 mac_status;       /* MSGLAB_SIGNAL_MAC_*; 0: no ciphertext here */
    guint8 key_source;       /* MSGLAB_SIGNAL_X3DH or _MESSAGE: the key log had the key */
    gboolean decrypt_failed; /* the key is there, the padding is wrong */
    guint8 *plaintext;
    guint plaintext_len;
    guint32 ack_to;          /* an ack: its event's frame */
    gint ack_ev;             /* and kind */
    const char *ack_event;
    const char *ack_target;  /* a request_prekey ack: whose bundle */
    guint32 ack_in;          /* an event: the frame of its ack */
    gboolean ack_true_bad_mac;
    guint32 replay_of;       /* an X3DH or ratchet message seen before: where */
    const char *jump;        /* a counter jump: what */
    guint32 bundle_was;      /* a bundle unlike the one before: the frame of that one */
    gboolean spoof;
} sig_rec;

/* One message (a WebSocket message or a polling body), as the first pass saw it. */
typedef struct {
    guint n;
    sig_rec *recs;
    gboolean polling;
    gboolean to_server;
    const char *query_sid;  /* the Engine.IO sid of the request's query string */
    const char *user;       /* the connection's user */
    guint32 user_frame;
} sig_msg;

/* An event sent with an ack id, awaiting its ack. */
typedef struct {
    guint32 frame;
    gint ev;
    const char *event;
    const char *target;
    sig_rec *rec;
} sig_pending;

/* An Engine.IO session: its user and the acks awaited each way. */
typedef struct {
    const char *eio_sid;
    const char *user;
    guint32 user_frame;
    wmem_map_t *pending[2]; /* [to_server of the event]: ack id -> sig_pending */
} sig_session;

/* A TCP connection carrying Socket.IO. */
typedef struct {
    sig_session *session;
    gboolean have_server;
    address server_addr;
    guint32 server_port;
} sig_conv;

/* A prekey bundle as the capture showed it for a name. */
typedef struct {
    guint8 ik[32], sik[32], spk[32], sig[64];
    guint32 frame;
} sig_bundle;

/* A ratchet chain of one sender to one recipient. */
typedef struct {
    guint64 next_n;
} sig_chain;

typedef struct {
    const char *last_dh; /* hex of the chain's current ratchet key */
} sig_pair;

static wmem_map_t *sessions;  /* Engine.IO sid -> sig_session */
static wmem_map_t *bundles;   /* username -> sig_bundle */
static wmem_map_t *x3dh_seen; /* direction, recipient, epk -> first frame */
static wmem_map_t *msg_seen;  /* direction, sender, recipient, dh, n -> first frame */
static wmem_map_t *pairs;     /* direction, sender, recipient -> sig_pair */
static wmem_map_t *chains;    /* direction, sender, recipient, dh -> sig_chain */
static wmem_map_t *ads;       /* the two names, sorted -> the X3DH associated data */

static const char *file_str(const char *s) { return s ? wmem_strdup(wmem_file_scope(), s) : NULL; }

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

static void map_put(wmem_map_t *map, const char *key, void *value)
{
    if (wmem_map_size(map) < MAX_STATE || wmem_map_contains(map, key))
        wmem_map_insert(map, wmem_strdup(wmem_file_scope(), key), value);
}

static sig_session *session_new(const char *sid)
{
    sig_session *s = wmem_new0(wmem_file_scope(), sig_session);
    s->eio_sid = file_str(sid);
    for (guint i = 0; i < 2; i++) s->pending[i] = wmem_map_new(wmem_file_scope(), g_str_hash, g_str_equal);
    return s;
}

/* The session of a message on connection `c` with Engine.IO sid `sid`
 * (NULL when the message names none): the connection's until then. */
static sig_session *bind_session(sig_conv *c, const char *sid)
{
    if (sid && *sid) {
        sig_session *s = (sig_session *)wmem_map_lookup(sessions, sid);
        if (!s) {
            /* The connection's session so far had no sid: it is this one. */
            if (c->session && !c->session->eio_sid) {
                s = c->session;
                s->eio_sid = file_str(sid);
            } else {
                s = session_new(sid);
            }
            if (wmem_map_size(sessions) < MAX_STATE) wmem_map_insert(sessions, s->eio_sid, s);
        }
        c->session = s;
        return s;
    }
    if (!c->session) c->session = session_new(NULL);
    return c->session;
}

static sig_conv *get_conv(packet_info *pinfo, gboolean create)
{
    conversation_t *conv = create ? find_or_create_conversation(pinfo) : find_conversation_pinfo(pinfo, 0);
    if (!conv) return NULL;
    sig_conv *c = (sig_conv *)conversation_get_proto_data(conv, proto_signal);
    if (!c && create) {
        c = wmem_new0(wmem_file_scope(), sig_conv);
        conversation_add_proto_data(conv, proto_signal, c);
    }
    return c;
}

/* The HTTP dissector's state of this connection: its last request URI and
 * the server's address once it answered. */
static const http_conv_t *http_state(packet_info *pinfo)
{
    conversation_t *conv = find_conversation_pinfo(pinfo, 0);
    return conv && proto_http > 0 ? (const http_conv_t *)conversation_get_proto_data(conv, proto_http) : NULL;
}

static gboolean socketio_uri(const char *uri) { return uri && strstr(uri, SIGNAL_PATH) != NULL; }

/* A query parameter of a URI (not percent-decoded: Engine.IO sids are
 * base64url text), or NULL. */
static const char *query_param(wmem_allocator_t *pool, const char *uri, const char *name)
{
    const char *q = uri ? strchr(uri, '?') : NULL;
    size_t len = strlen(name);
    while (q) {
        q++;
        if (strncmp(q, name, len) == 0 && q[len] == '=') {
            const char *v = q + len + 1;
            size_t n = strcspn(v, "&#");
            return wmem_strndup(pool, v, n);
        }
        q = strchr(q, '&');
    }
    return NULL;
}

/* The member `key` of `obj`, standard base64 with padding, decoded into
 * `out`: its length, or -1. */
static long b64_member(const jv *obj, const char *key, guint8 *out, size_t cap)
{
    const char *s = jv_string(obj, key);
    if (!s) return -1;
    return msglab_base64_decode(s, strlen(s), 0, out, cap);
}

/* A big-endian integer of `len` bytes (Python's int.from_bytes; empty is
 * 0): FALSE when it does not fit 64 bits. */
static gboolean be_value(const guint8 *b, long len, guint64 *out)
{
    guint64 v = 0;
    for (long i = 0; i < len; i++) {
        if (v >> 56) return FALSE;
        v = (v << 8) | b[i];
    }
    *out = v;
    return TRUE;
}

static gboolean bundle_of(const jv *obj, const char *sig_key, sig_bundle *b)
{
    return b64_member(obj, "ik", b->ik, 32) == 32 && b64_member(obj, "sik", b->sik, 32) == 32 &&
           b64_member(obj, "spk", b->spk, 32) == 32 && b64_member(obj, sig_key, b->sig, 64) == 64;
}

/* A bundle for `name`: the frame of the one it replaces when different. */
static guint32 learn_bundle(const char *name, const sig_bundle *b, guint32 frame)
{
    if (!name) return 0;
    sig_bundle *old = (sig_bundle *)wmem_map_lookup(bundles, name);
    guint32 was = 0;
    if (old) {
        if (memcmp(old->ik, b->ik, 32) == 0 && memcmp(old->sik, b->sik, 32) == 0 &&
            memcmp(old->spk, b->spk, 32) == 0 && memcmp(old->sig, b->sig, 64) == 0)
            return 0;
        was = old->frame;
    }
    sig_bundle *copy = wmem_new(wmem_file_scope(), sig_bundle);
    *copy = *b;
    copy->frame = frame;
    map_put(bundles, name, copy);
    return was;
}

static const char *pair_key(wmem_allocator_t *pool, const char *a, const char *b)
{
    return strcmp(a, b) <= 0 ? wmem_strdup_printf(pool, "%s\x1f%s", a, b) : wmem_strdup_printf(pool, "%s\x1f%s", b, a);
}

static void keep_plaintext(sig_rec *r, const guint8 *plain, long len)
{
    if (len < 0) {
        r->decrypt_failed = TRUE;
        return;
    }
    r->plaintext_len = (guint)len;
    r->plaintext = (guint8 *)wmem_memdup(wmem_file_scope(), plain, (size_t)len);
}

/* An x3dh_message: replay, the session's associated data, decryption. */
static void first_x3dh(packet_info *pinfo, sig_rec *r, gboolean to_server, const jv *obj)
{
    const char *to = jv_string(obj, "username");
    guint8 ik[32], epk[32], mac[32];
    gboolean have_ik = b64_member(obj, "ik", ik, 32) == 32;
    gboolean have_epk = b64_member(obj, "epk", epk, 32) == 32;
    if (to && have_epk) {
        const char *key =
            wmem_strdup_printf(pinfo->pool, "%d\x1f%s\x1f%s", to_server, to, hex_of(pinfo->pool, epk, 32));
        guint32 first = GPOINTER_TO_UINT(wmem_map_lookup(x3dh_seen, key));
        if (first)
            r->replay_of = first;
        else
            map_put(x3dh_seen, key, GUINT_TO_POINTER(pinfo->num));
    }
    /* AD = b64(IK_initiator) || b64(IK_responder), the responder's identity
     * key as the capture last showed it. */
    const char *ad = NULL;
    const char *from = jv_string(obj, "from");
    const sig_bundle *responder = to ? (const sig_bundle *)wmem_map_lookup(bundles, to) : NULL;
    if (have_ik && responder) {
        gchar *a = g_base64_encode(ik, 32), *b = g_base64_encode(responder->ik, 32);
        ad = wmem_strconcat(wmem_file_scope(), a, b, NULL);
        g_free(a);
        g_free(b);
        if (from) map_put(ads, pair_key(pinfo->pool, from, to), (void *)ad);
    }
    const char *cipher = jv_string(obj, "cipher");
    guint8 sk[32];
    if (!have_epk || !cipher || b64_member(obj, "hmac", mac, 32) != 32 ||
        !msglab_signal_x3dh_sk(msglab_keylog_cached(keylog_path()), epk, sk)) {
        r->mac_status = MSGLAB_SIGNAL_MAC_UNKNOWN;
        return;
    }
    size_t cap = strlen(cipher);
    guint8 *ct = (guint8 *)wmem_alloc(pinfo->pool, cap + 1), *plain = (guint8 *)wmem_alloc(pinfo->pool, cap + 1);
    long ct_len = msglab_base64_decode(cipher, cap, 0, ct, cap);
    if (ct_len <= 0) {
        r->mac_status = MSGLAB_SIGNAL_MAC_UNKNOWN;
        return;
    }
    int status = 0;
    long len = msglab_signal_open(sk, MSGLAB_SIGNAL_X3DH, (const guint8 *)ad, ad ? strlen(ad) : 0, ct, (size_t)ct_len,
                                  mac, plain, MIN(cap, MAX_PLAINTEXT), &status);
    r->mac_status = (guint8)status;
    r->key_source = MSGLAB_SIGNAL_X3DH;
    keep_plaintext(r, plain, len);
}

/* A ratchet_msg: replay, counter jump, decryption. */
static void first_ratchet(packet_info *pinfo, sig_rec *r, gboolean to_server, const jv *obj)
{
    const char *to = jv_string(obj, "username");
    const char *from = jv_string(obj, "from");
    const jv *header = jv_member(obj, "header");
    guint8 dh[32], pn_raw[64], n_raw[64], mac[32];
    r->mac_status = MSGLAB_SIGNAL_MAC_UNKNOWN;
    if (!header || b64_member(header, "dh", dh, 32) != 32) return;
    long pn_len = b64_member(header, "pn", pn_raw, sizeof pn_raw);
    long n_len = b64_member(header, "n", n_raw, sizeof n_raw);
    guint64 pn = 0, n = 0;
    gboolean pn_ok = pn_len >= 0 && be_value(pn_raw, pn_len, &pn);
    gboolean n_ok = n_len >= 0 && be_value(n_raw, n_len, &n);
    const char *dh_hex = hex_of(pinfo->pool, dh, 32);
    if (to && from && n_len >= 0) {
        const char *key = wmem_strdup_printf(pinfo->pool, "%d\x1f%s\x1f%s\x1f%s\x1f%s", to_server, from, to, dh_hex,
                                             hex_of(pinfo->pool, n_raw, (guint)n_len));
        guint32 first = GPOINTER_TO_UINT(wmem_map_lookup(msg_seen, key));
        if (first)
            r->replay_of = first;
        else
            map_put(msg_seen, key, GUINT_TO_POINTER(pinfo->num));
    }
    if (to && from && n_len >= 0 && pn_len >= 0) {
        const char *pk = wmem_strdup_printf(pinfo->pool, "%d\x1f%s\x1f%s", to_server, from, to);
        const char *ck = wmem_strdup_printf(pinfo->pool, "%s\x1f%s", pk, dh_hex);
        sig_pair *pair = (sig_pair *)wmem_map_lookup(pairs, pk);
        sig_chain *chain = (sig_chain *)wmem_map_lookup(chains, ck);
        if (chain) {
            if (!n_ok || (n > chain->next_n && n - chain->next_n > MAX_SKIP))
                r->jump = n_ok ? wmem_strdup_printf(wmem_file_scope(),
                                                    "n = %" G_GUINT64_FORMAT " where %" G_GUINT64_FORMAT
                                                    " was next in this chain: %" G_GUINT64_FORMAT " keys skipped",
                                                    n, chain->next_n, n - chain->next_n)
                               : "n does not fit 64 bits";
            if (n_ok && n + 1 > chain->next_n) chain->next_n = n + 1;
        } else {
            sig_chain *prev = pair ? (sig_chain *)wmem_map_lookup(
                                         chains, wmem_strdup_printf(pinfo->pool, "%s\x1f%s", pk, pair->last_dh))
                                   : NULL;
            if (!pn_ok)
                r->jump = "pn does not fit 64 bits";
            else if (prev && pn > prev->next_n + MAX_SKIP)
                r->jump = wmem_strdup_printf(wmem_file_scope(),
                                             "pn = %" G_GUINT64_FORMAT " where the previous chain reached "
                                             "%" G_GUINT64_FORMAT ": %" G_GUINT64_FORMAT " keys skipped",
                                             pn, prev->next_n, pn - prev->next_n);
            else if (!n_ok)
                r->jump = "n does not fit 64 bits";
            else if (n > MAX_SKIP)
                r->jump = wmem_strdup_printf(wmem_file_scope(),
                                             "n = %" G_GUINT64_FORMAT " in a new chain: %" G_GUINT64_FORMAT
                                             " keys skipped",
                                             n, n);
            chain = wmem_new(wmem_file_scope(), sig_chain);
            chain->next_n = n_ok ? n + 1 : 0;
            map_put(chains, ck, chain);
            if (!pair) {
                pair = wmem_new0(wmem_file_scope(), sig_pair);
                map_put(pairs, pk, pair);
            }
            pair->last_dh = file_str(dh_hex);
        }
    }
    const char *cipher = jv_string(obj, "cipher");
    guint8 mk[32];
    if (!n_ok || !cipher || b64_member(obj, "hmac", mac, 32) != 32 ||
        !msglab_signal_message_key(msglab_keylog_cached(keylog_path()), dh, n, mk))
        return;
    size_t cap = strlen(cipher);
    guint8 *ct = (guint8 *)wmem_alloc(pinfo->pool, cap + 1), *plain = (guint8 *)wmem_alloc(pinfo->pool, cap + 1);
    long ct_len = msglab_base64_decode(cipher, cap, 0, ct, cap);
    if (ct_len <= 0) return;
    /* MAC input: AD || dh || pn || n, the AD of the pair's X3DH. */
    const char *ad = to && from ? (const char *)wmem_map_lookup(ads, pair_key(pinfo->pool, from, to)) : NULL;
    guint8 *input = NULL;
    size_t input_len = 0;
    if (ad && pn_len >= 0) {
        size_t ad_len = strlen(ad);
        input_len = ad_len + 32 + (size_t)pn_len + (size_t)n_len;
        input = (guint8 *)wmem_alloc(pinfo->pool, input_len);
        memcpy(input, ad, ad_len);
        memcpy(input + ad_len, dh, 32);
        memcpy(input + ad_len + 32, pn_raw, (size_t)pn_len);
        memcpy(input + ad_len + 32 + pn_len, n_raw, (size_t)n_len);
    }
    int status = 0;
    long len = msglab_signal_open(mk, MSGLAB_SIGNAL_MESSAGE, input, input_len, ct, (size_t)ct_len, mac, plain,
                                  MIN(cap, MAX_PLAINTEXT), &status);
    r->mac_status = (guint8)status;
    r->key_source = MSGLAB_SIGNAL_MESSAGE;
    keep_plaintext(r, plain, len);
}

static void first_packet(packet_info *pinfo, sig_conv *c, sig_msg *m, const sig_parsed *p, sig_rec *r)
{
    sig_session *s = c->session;
    if (p->eio_type == EIO_OPEN && p->open && !p->error) {
        bind_session(c, jv_string(p->open, "sid"));
        return;
    }
    if (p->error || p->sio_type < 0) return;
    const jv *arg = p->args;
    if (p->sio_type == SIO_EVENT || p->sio_type == SIO_BINARY_EVENT) {
        if (m->to_server && p->ev == EV_REGISTER && arg && arg->type == JV_OBJECT) {
            const char *name = jv_string(arg, "username");
            if (name) {
                s->user = file_str(name);
                s->user_frame = pinfo->num;
                m->user = s->user;
                m->user_frame = s->user_frame;
            }
            sig_bundle b;
            if (name && bundle_of(arg, "spk_sig", &b)) r->bundle_was = learn_bundle(name, &b, pinfo->num);
        }
        if ((p->ev == EV_X3DH || p->ev == EV_RATCHET) && arg && arg->type == JV_OBJECT) {
            const char *from = jv_string(arg, "from");
            if (m->to_server && s->user && from && strcmp(from, s->user) != 0) r->spoof = TRUE;
            if (p->ev == EV_X3DH)
                first_x3dh(pinfo, r, m->to_server, arg);
            else
                first_ratchet(pinfo, r, m->to_server, arg);
        }
        if (p->has_ack) {
            sig_pending *w = wmem_new0(wmem_file_scope(), sig_pending);
            w->frame = pinfo->num;
            w->ev = p->ev;
            w->event = file_str(p->event);
            w->rec = r;
            if (p->ev == EV_REQUEST_PREKEY && arg && arg->type == JV_OBJECT)
                w->target = file_str(jv_string(arg, "username"));
            map_put(s->pending[m->to_server], wmem_strdup_printf(pinfo->pool, "%" G_GUINT64_FORMAT, p->ack_id), w);
        }
        return;
    }
    if (p->sio_type != SIO_ACK && p->sio_type != SIO_BINARY_ACK) return;
    /* The ack goes the other way on the same session. */
    const char *id = wmem_strdup_printf(pinfo->pool, "%" G_GUINT64_FORMAT, p->ack_id);
    sig_pending *w = (sig_pending *)wmem_map_lookup(s->pending[!m->to_server], id);
    if (!w) return;
    wmem_map_remove(s->pending[!m->to_server], id);
    r->ack_to = w->frame;
    r->ack_ev = w->ev;
    r->ack_event = w->event;
    r->ack_target = w->target;
    w->rec->ack_in = pinfo->num;
    if (w->ev == EV_X3DH && w->rec->mac_status == MSGLAB_SIGNAL_MAC_BAD && arg && arg->type == JV_TRUE)
        r->ack_true_bad_mac = TRUE;
    if (w->ev == EV_REQUEST_PREKEY && w->target && arg && arg->type == JV_TRUE && arg->next &&
        arg->next->type == JV_OBJECT) {
        sig_bundle b;
        if (bundle_of(arg->next, "spk_sign", &b)) r->bundle_was = learn_bundle(w->target, &b, pinfo->num);
    }
}

static sig_msg *first_pass(packet_info *pinfo, sig_conv *c, gboolean polling, gboolean to_server, const char *sid,
                           const sig_parsed *pk, guint count)
{
    sig_msg *m = wmem_new0(wmem_file_scope(), sig_msg);
    m->polling = polling;
    m->to_server = to_server;
    m->query_sid = file_str(sid);
    m->n = count;
    m->recs = wmem_alloc0_array(wmem_file_scope(), sig_rec, count);
    sig_session *s = bind_session(c, sid);
    m->user = s->user;
    m->user_frame = s->user_frame;
    for (guint i = 0; i < count; i++) first_packet(pinfo, c, m, &pk[i], &m->recs[i]);
    if (!m->user && c->session->user) {
        m->user = c->session->user;
        m->user_frame = c->session->user_frame;
    }
    return m;
}


/* ---------------------------------------------------------------------------
 * The tree. */

typedef struct {
    tvbuff_t *tvb;
    packet_info *pinfo;
    const guint8 *d;
    const sig_msg *m;
    guint base; /* the JSON text's place in the message */
} sig_view;

#define AT(v, j) ((v)->base + (j)->start)
#define LEN(j) ((j)->end - (j)->start)

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

/* A value as written. */
static const char *json_text(sig_view *v, const jv *j)
{
    return wmem_strndup(v->pinfo->pool, (const char *)v->d + AT(v, j), LEN(j));
}

static proto_item *add_json_string(sig_view *v, proto_tree *t, int hf, const jv *j)
{
    return proto_tree_add_string(t, hf, v->tvb, AT(v, j), LEN(j), j->type == JV_STRING ? j->str : json_text(v, j));
}

static void add_other(sig_view *v, proto_tree *t, const jv *j)
{
    const char *text = json_text(v, j);
    proto_tree_add_string_format_value(t, hf_other, v->tvb, AT(v, j), LEN(j), text, "%s = %s",
                                       j->key ? shown_text(v->pinfo->pool, j->key, INFO_TEXT_CHARS) : "",
                                       shown_text(v->pinfo->pool, text, 1024));
}

/* A base64 member: its bytes, and an expert info when it is not standard
 * base64 with padding or not `expect` bytes long (0: any length; -16: a
 * non-empty multiple of 16). Sets *decoded to the decoded length or -1. */
static proto_item *add_b64(sig_view *v, proto_tree *t, int hf, const jv *j, int expect, const char *what,
                           long *decoded)
{
    packet_info *pinfo = v->pinfo;
    if (decoded) *decoded = -1;
    if (j->type != JV_STRING) {
        proto_item *ti = add_json_string(v, t, hf_undecodable, j);
        expert_add_info_format(pinfo, ti, &ei_bad_encoding, "%s is not a string", what);
        return ti;
    }
    size_t len = strlen(j->str);
    guint8 *raw = (guint8 *)wmem_alloc(pinfo->pool, len + 1);
    long n = msglab_base64_decode(j->str, len, 0, raw, len);
    if (n < 0) {
        proto_item *ti = proto_tree_add_string(t, hf_undecodable, v->tvb, AT(v, j), LEN(j), j->str);
        expert_add_info_format(pinfo, ti, &ei_bad_encoding, "%s is not standard base64 with padding", what);
        return ti;
    }
    proto_item *ti = proto_tree_add_bytes_with_length(t, hf, v->tvb, AT(v, j), LEN(j), raw, (gint)n);
    if (n == 0) proto_item_set_text(ti, "%s: (empty)", proto_registrar_get_name(hf));
    if (expect > 0 && n != expect)
        expert_add_info_format(pinfo, ti, &ei_bad_encoding, "%s is %ld bytes, not %d", what, n, expect);
    if (expect < 0 && (n == 0 || n % -expect != 0))
        expert_add_info_format(pinfo, ti, &ei_bad_encoding, "%s is %ld bytes, not a non-empty multiple of %d", what, n,
                               -expect);
    if (decoded) *decoded = n;
    return ti;
}

/* The pn or n of a ratchet header: its bytes and its value (PROTOCOLS.md
 * 5.6: big-endian, as many bytes as the value's bit length). */
static void add_counter(sig_view *v, proto_tree *t, int hf, int hf_value, const jv *j, const char *what)
{
    long n;
    proto_item *ti = add_b64(v, t, hf, j, 0, what, &n);
    if (n < 0) return;
    guint8 *raw = (guint8 *)wmem_alloc(v->pinfo->pool, (size_t)n + 1);
    msglab_base64_decode(j->str, strlen(j->str), 0, raw, (size_t)n);
    guint64 value;
    if (be_value(raw, n, &value)) {
        proto_item *gi = proto_tree_add_uint64(t, hf_value, v->tvb, AT(v, j), LEN(j), value);
        proto_item_set_generated(gi);
    } else {
        expert_add_info_format(v->pinfo, ti, &ei_bad_encoding,
                               "%s is %ld bytes: its value does not fit 64 bits", what, n);
    }
}

static void require(sig_view *v, proto_item *ti, const jv *obj, const char *const *keys, guint n_keys,
                    const char *event)
{
    for (guint i = 0; i < n_keys; i++)
        if (!jv_member(obj, keys[i]))
            expert_add_info_format(v->pinfo, ti, &ei_malformed, "%s without \"%s\"", event, keys[i]);
}

static void add_key_member(sig_view *v, proto_tree *t, const jv *mb, gboolean bundle)
{
    const char *k = mb->key;
    if (strcmp(k, "ik") == 0)
        add_b64(v, t, bundle ? hf_bundle_ik : hf_ik, mb, 32, "ik", NULL);
    else if (strcmp(k, "sik") == 0)
        add_b64(v, t, bundle ? hf_bundle_sik : hf_sik, mb, 32, "sik", NULL);
    else if (strcmp(k, "spk") == 0)
        add_b64(v, t, bundle ? hf_bundle_spk : hf_spk, mb, 32, "spk", NULL);
    else if (strcmp(k, bundle ? "spk_sign" : "spk_sig") == 0)
        add_b64(v, t, bundle ? hf_bundle_spk_sign : hf_spk_sig, mb, 64, k, NULL);
    else if (!bundle && strcmp(k, "username") == 0)
        add_json_string(v, t, hf_username, mb);
    else
        add_other(v, t, mb);
}

static void add_mac_and_plaintext(sig_view *v, proto_tree *t, proto_item *ti, const sig_rec *r, proto_item *hmac)
{
    packet_info *pinfo = v->pinfo;
    if (!r->mac_status) return;
    proto_item *gi = add_generated_string(t, hf_mac_status, v->tvb, mac_names[r->mac_status]);
    if (r->mac_status == MSGLAB_SIGNAL_MAC_BAD)
        expert_add_info_format(pinfo, hmac ? hmac : gi, &ei_bad_mac,
                               "The MAC does not verify with the %s from the key log",
                               r->key_source == MSGLAB_SIGNAL_X3DH ? "SK" : "message key");
    if (r->key_source)
        add_generated_string(t, hf_key_source, v->tvb,
                             r->key_source == MSGLAB_SIGNAL_X3DH ? "SIGNAL_X3DH_SK" : "SIGNAL_MESSAGE_KEY");
    if (r->decrypt_failed) proto_item_append_text(gi, " (the key log's key does not open the ciphertext)");
    if (r->plaintext) {
        tvbuff_t *ptvb = tvb_new_child_real_data(v->tvb, r->plaintext, r->plaintext_len, r->plaintext_len);
        add_new_data_source(pinfo, ptvb, "Signal plaintext");
        proto_tree_add_item(t, hf_plaintext, ptvb, 0, r->plaintext_len, ENC_UTF_8);
        char *text = wmem_strndup(pinfo->pool, (const char *)r->plaintext, r->plaintext_len);
        proto_item_append_text(ti, ": \"%s\"", shown_text(pinfo->pool, text, INFO_TEXT_CHARS));
        col_append_fstr(pinfo->cinfo, COL_INFO, " \"%s\"", shown_text(pinfo->pool, text, INFO_TEXT_CHARS));
    }
}

static void add_replay(sig_view *v, proto_tree *t, proto_item *ti, const sig_rec *r, gboolean x3dh)
{
    if (!r->replay_of) return;
    proto_item *gi = add_generated_uint(t, hf_replay_of, v->tvb, r->replay_of);
    if (x3dh)
        expert_add_info_format(v->pinfo, gi ? gi : ti, &ei_x3dh_replay,
                               "X3DH message replayed: the same ephemeral key for the same recipient, this way, as in "
                               "frame %u (no one-time prekeys: it re-initialises the recipient's session)",
                               r->replay_of);
    else
        expert_add_info_format(v->pinfo, gi ? gi : ti, &ei_ratchet_replay,
                               "Ratchet message replayed: the same (dh, n) from the same sender to the same recipient, "
                               "this way, as in frame %u",
                               r->replay_of);
}

/* An event's argument object. */
static void add_event_object(sig_view *v, proto_tree *t, proto_item *ti, const sig_parsed *p, const sig_rec *r,
                             const jv *obj)
{
    packet_info *pinfo = v->pinfo;
    const char *to = jv_string(obj, "username"), *from = jv_string(obj, "from");
    proto_item *from_item = NULL, *hmac = NULL;
    for (const jv *mb = obj->child; mb; mb = mb->next) {
        const char *k = mb->key;
        if (p->ev == EV_REGISTER) {
            add_key_member(v, t, mb, FALSE);
        } else if (p->ev == EV_REQUEST_PREKEY && strcmp(k, "username") == 0) {
            add_json_string(v, t, hf_target, mb);
        } else if (strcmp(k, "username") == 0) {
            add_json_string(v, t, hf_username, mb);
        } else if (strcmp(k, "from") == 0) {
            from_item = add_json_string(v, t, hf_from, mb);
        } else if (p->ev == EV_X3DH && strcmp(k, "ik") == 0) {
            add_b64(v, t, hf_ik, mb, 32, "ik", NULL);
        } else if (p->ev == EV_X3DH && strcmp(k, "epk") == 0) {
            add_b64(v, t, hf_epk, mb, 32, "epk", NULL);
        } else if ((p->ev == EV_X3DH || p->ev == EV_RATCHET) && strcmp(k, "cipher") == 0) {
            add_b64(v, t, hf_cipher, mb, -16, "cipher", NULL);
        } else if ((p->ev == EV_X3DH || p->ev == EV_RATCHET) && strcmp(k, "hmac") == 0) {
            hmac = add_b64(v, t, hf_hmac, mb, 32, "hmac", NULL);
        } else if (p->ev == EV_RATCHET && strcmp(k, "header") == 0 && mb->type == JV_OBJECT) {
            proto_item *hi = proto_tree_add_item(t, hf_header, v->tvb, AT(v, mb), LEN(mb), ENC_NA);
            proto_tree *ht = proto_item_add_subtree(hi, ett_header);
            for (const jv *h = mb->child; h; h = h->next) {
                if (strcmp(h->key, "dh") == 0)
                    add_b64(v, ht, hf_header_dh, h, 32, "header dh", NULL);
                else if (strcmp(h->key, "pn") == 0)
                    add_counter(v, ht, hf_header_pn, hf_header_pn_value, h, "header pn");
                else if (strcmp(h->key, "n") == 0)
                    add_counter(v, ht, hf_header_n, hf_header_n_value, h, "header n");
                else
                    add_other(v, ht, h);
            }
            static const char *const header_keys[] = {"dh", "pn", "n"};
            require(v, hi, mb, header_keys, array_length(header_keys), "a ratchet header");
        } else {
            add_other(v, t, mb);
        }
    }
    static const char *const register_keys[] = {"username", "ik", "sik", "spk", "spk_sig"};
    static const char *const x3dh_keys[] = {"username", "from", "ik", "epk", "cipher", "hmac"};
    static const char *const ratchet_keys[] = {"username", "cipher", "header", "hmac", "from"};
    if (p->ev == EV_REGISTER) {
        require(v, ti, obj, register_keys, array_length(register_keys), "register_user");
        col_append_fstr(pinfo->cinfo, COL_INFO, " %s", shown_text(pinfo->pool, to, INFO_TEXT_CHARS));
        if (r->bundle_was)
            expert_add_info_format(pinfo, ti, &ei_key_substitution,
                                   "register_user for \"%s\" with other keys than the bundle of frame %u: the server "
                                   "overwrites the record (key substitution)",
                                   shown_text(pinfo->pool, to, INFO_TEXT_CHARS), r->bundle_was);
        if (r->bundle_was) add_generated_uint(t, hf_bundle_was, v->tvb, r->bundle_was);
    }
    if (p->ev == EV_REQUEST_PREKEY)
        col_append_fstr(pinfo->cinfo, COL_INFO, " %s", shown_text(pinfo->pool, to, INFO_TEXT_CHARS));
    if (p->ev != EV_X3DH && p->ev != EV_RATCHET) return;
    require(v, ti, obj, p->ev == EV_X3DH ? x3dh_keys : ratchet_keys,
            p->ev == EV_X3DH ? array_length(x3dh_keys) : array_length(ratchet_keys), p->event);
    col_append_fstr(pinfo->cinfo, COL_INFO, " %s -> %s", shown_text(pinfo->pool, from, INFO_TEXT_CHARS),
                    shown_text(pinfo->pool, to, INFO_TEXT_CHARS));
    if (r->spoof)
        expert_add_info_format(pinfo, from_item ? from_item : ti, &ei_spoofed_from,
                               "from \"%s\" on the connection of \"%s\" (registered in frame %u): the server relays "
                               "any from unchecked",
                               shown_text(pinfo->pool, from, INFO_TEXT_CHARS),
                               shown_text(pinfo->pool, v->m->user, INFO_TEXT_CHARS), v->m->user_frame);
    add_replay(v, t, ti, r, p->ev == EV_X3DH);
    if (r->jump)
        expert_add_info_format(pinfo, ti, &ei_counter_jump,
                               "Counter jump beyond MAX_SKIP (%u): %s; the receiver's state is changed before it "
                               "fails",
                               MAX_SKIP, r->jump);
    add_mac_and_plaintext(v, t, ti, r, hmac);
}

/* An ack's arguments, read by the event it answers. */
static void add_ack_args(sig_view *v, proto_tree *t, proto_item *ti, const sig_parsed *p, const sig_rec *r)
{
    packet_info *pinfo = v->pinfo;
    if (r->ack_to) {
        proto_item *gi = add_generated_uint(t, hf_ack_to, v->tvb, r->ack_to);
        proto_item_append_text(gi, " (%s)", shown_text(pinfo->pool, r->ack_event, INFO_TEXT_CHARS));
        add_generated_string(t, hf_ack_event, v->tvb, r->ack_event);
        proto_item_append_text(ti, ", ack to %s in frame %u", shown_text(pinfo->pool, r->ack_event, INFO_TEXT_CHARS),
                               r->ack_to);
        col_append_fstr(pinfo->cinfo, COL_INFO, " to %s in frame %u",
                        shown_text(pinfo->pool, r->ack_event, INFO_TEXT_CHARS), r->ack_to);
    }
    guint i = 0;
    for (const jv *a = p->args; a && i < MAX_ELEMENTS; a = a->next, i++) {
        if (i == 0 && (a->type == JV_TRUE || a->type == JV_FALSE)) {
            int hf = r->ack_ev == EV_REQUEST_PREKEY ? hf_bundle_found : hf_ack_success;
            proto_item *bi = proto_tree_add_boolean(t, hf, v->tvb, AT(v, a), LEN(a), a->type == JV_TRUE);
            if (r->ack_true_bad_mac)
                expert_add_info_format(pinfo, bi, &ei_ack_true_bad_mac,
                                       "Ack true to the X3DH message of frame %u whose MAC does not verify: the "
                                       "responder acks true whatever its check found",
                                       r->ack_to);
            continue;
        }
        if (r->ack_ev == EV_REQUEST_USERS && i == 0 && a->type == JV_ARRAY) {
            proto_item *ci = proto_tree_add_uint(t, hf_users_count, v->tvb, AT(v, a), LEN(a), a->count);
            proto_tree *ut = proto_item_add_subtree(ci, ett_args);
            guint k = 0;
            for (const jv *u = a->child; u && k < MAX_ELEMENTS; u = u->next, k++) add_json_string(v, ut, hf_users, u);
            continue;
        }
        if (r->ack_ev == EV_REQUEST_PREKEY && i == 1 && a->type == JV_OBJECT) {
            proto_item *bi = proto_tree_add_item(t, hf_bundle, v->tvb, AT(v, a), LEN(a), ENC_NA);
            proto_tree *bt = proto_item_add_subtree(bi, ett_bundle);
            if (r->ack_target) {
                add_generated_string(bt, hf_bundle_user, v->tvb, r->ack_target);
                proto_item_append_text(bi, " of %s", shown_text(pinfo->pool, r->ack_target, INFO_TEXT_CHARS));
            }
            for (const jv *mb = a->child; mb; mb = mb->next) add_key_member(v, bt, mb, TRUE);
            if (r->bundle_was) {
                add_generated_uint(bt, hf_bundle_was, v->tvb, r->bundle_was);
                expert_add_info_format(pinfo, bi, &ei_key_substitution,
                                       "The bundle of \"%s\" differs from the one of frame %u (key substitution)",
                                       shown_text(pinfo->pool, r->ack_target, INFO_TEXT_CHARS), r->bundle_was);
            }
            continue;
        }
        add_json_string(v, t, hf_sio_arg, a);
    }
}

static void add_sio(sig_view *v, proto_tree *et, proto_item *eti, const sig_parsed *p, const sig_rec *r)
{
    packet_info *pinfo = v->pinfo;
    tvbuff_t *tvb = v->tvb;
    guint sio_at = p->start + 1;
    proto_item *ti = proto_tree_add_uint(et, hf_sio_type, tvb, sio_at, 1, (guint32)p->sio_type);
    proto_tree *st = proto_item_add_subtree(ti, ett_sio);
    const char *type_name = val_to_str_const((guint32)p->sio_type, sio_type_vals, "?");
    proto_item_append_text(eti, ", Socket.IO %s", type_name);
    if (p->has_attachments)
        proto_tree_add_uint64(st, hf_sio_attachments, tvb, p->att_start, p->att_len, p->attachments);
    if (p->ns_len)
        proto_tree_add_item(st, hf_sio_namespace, tvb, p->ns_start, p->ns_len, ENC_UTF_8);
    else
        add_generated_string(st, hf_sio_namespace, tvb, "/");
    if (p->has_ack) proto_tree_add_uint64(st, hf_sio_ack_id, tvb, p->ack_start, p->ack_len, p->ack_id);
    v->base = p->base;
    if (p->sio_type == SIO_CONNECT) {
        const char *sid = p->json ? jv_string(p->json, "sid") : NULL;
        col_append_sep_str(pinfo->cinfo, COL_INFO, "; ", "connect");
        if (sid) {
            const jv *j = jv_member(p->json, "sid");
            proto_tree_add_string(st, hf_sio_sid, tvb, AT(v, j), LEN(j), sid);
            proto_item_append_text(eti, " (sid %s)", shown_text(pinfo->pool, sid, INFO_TEXT_CHARS));
        }
        return;
    }
    if (p->sio_type == SIO_EVENT || p->sio_type == SIO_BINARY_EVENT) {
        const jv *name = p->json->child;
        proto_tree_add_string(st, hf_event, tvb, AT(v, name), LEN(name), p->event);
        proto_item_append_text(eti, " %s", shown_text(pinfo->pool, p->event, INFO_TEXT_CHARS));
        col_append_sep_str(pinfo->cinfo, COL_INFO, "; ", shown_text(pinfo->pool, p->event, INFO_TEXT_CHARS));
        if (r->ack_in) add_generated_uint(st, hf_ack_in, tvb, r->ack_in);
        if (p->ev == EV_PONGI || p->ev == EV_PINGI)
            expert_add_info_format(pinfo, ti, &ei_debug_broadcast,
                                   p->ev == EV_PONGI
                                       ? "pongi: the server broadcasts pingi to every client (a debug leftover any "
                                         "client can trigger)"
                                       : "pingi: the server's broadcast to every client, triggered by a pongi");
        if (p->ev == EV_REQUEST_USERS && p->args) add_json_string(v, st, hf_sio_arg, p->args);
        gboolean object_event = p->ev == EV_REGISTER || p->ev == EV_REQUEST_PREKEY || p->ev == EV_X3DH ||
                                p->ev == EV_RATCHET;
        guint i = 0;
        for (const jv *a = p->args; a && i < MAX_ELEMENTS; a = a->next, i++) {
            if (p->ev == EV_REQUEST_USERS) break;
            if (i == 0 && object_event && a->type == JV_OBJECT) {
                add_event_object(v, st, ti, p, r, a);
                continue;
            }
            add_json_string(v, st, hf_sio_arg, a);
        }
        if (object_event && (!p->args || p->args->type != JV_OBJECT))
            expert_add_info_format(pinfo, ti, &ei_malformed, "%s without its argument object", p->event);
        return;
    }
    if (p->sio_type == SIO_ACK || p->sio_type == SIO_BINARY_ACK) {
        col_append_sep_str(pinfo->cinfo, COL_INFO, "; ", "ack");
        add_ack_args(v, st, eti, p, r);
        return;
    }
    col_append_sep_str(pinfo->cinfo, COL_INFO, "; ", type_name);
    if (p->json) add_json_string(v, st, hf_sio_arg, p->json);
}

static void add_open(sig_view *v, proto_tree *et, proto_item *eti, const sig_parsed *p)
{
    v->base = p->base;
    for (const jv *mb = p->open->child; mb; mb = mb->next) {
        const char *k = mb->key;
        guint64 value;
        if (strcmp(k, "sid") == 0) {
            add_json_string(v, et, hf_eio_sid, mb);
            if (mb->type == JV_STRING)
                proto_item_append_text(eti, " (sid %s)", shown_text(v->pinfo->pool, mb->str, INFO_TEXT_CHARS));
        } else if (strcmp(k, "upgrades") == 0 && mb->type == JV_ARRAY) {
            for (const jv *u = mb->child; u; u = u->next) add_json_string(v, et, hf_eio_upgrades, u);
        } else if (strcmp(k, "pingInterval") == 0 && jv_uint(v->d + v->base, mb, G_MAXUINT32, &value)) {
            proto_tree_add_uint(et, hf_eio_ping_interval, v->tvb, AT(v, mb), LEN(mb), (guint32)value);
        } else if (strcmp(k, "pingTimeout") == 0 && jv_uint(v->d + v->base, mb, G_MAXUINT32, &value)) {
            proto_tree_add_uint(et, hf_eio_ping_timeout, v->tvb, AT(v, mb), LEN(mb), (guint32)value);
        } else if (strcmp(k, "maxPayload") == 0 && jv_uint(v->d + v->base, mb, G_MAXUINT32, &value)) {
            proto_tree_add_uint(et, hf_eio_max_payload, v->tvb, AT(v, mb), LEN(mb), (guint32)value);
        } else {
            add_other(v, et, mb);
        }
    }
}

static void signal_display(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, const sig_msg *m, const guint8 *d,
                           const sig_parsed *pk, guint count)
{
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "Signal");
    col_append_sep_str(pinfo->cinfo, COL_INFO, " ", "[Signal");
    proto_item *ti = proto_tree_add_item(tree, proto_signal, tvb, 0, -1, ENC_NA);
    proto_tree *st = proto_item_add_subtree(ti, ett_signal);
    proto_item_append_text(ti, ", %s, %s", m->polling ? "polling" : "websocket",
                           m->to_server ? "to the server" : "to the client");
    add_generated_string(st, hf_transport, tvb, m->polling ? "polling" : "websocket");
    add_generated_string(st, hf_direction, tvb, m->to_server ? "to server" : "to client");
    if (m->query_sid) add_generated_string(st, hf_query_sid, tvb, m->query_sid);
    if (m->user) {
        proto_item *gi = add_generated_string(st, hf_conn_user, tvb, m->user);
        proto_tree *ut = proto_item_add_subtree(gi, ett_args);
        add_generated_uint(ut, hf_conn_user_frame, tvb, m->user_frame);
        proto_item_append_text(ti, ", user %s", shown_text(pinfo->pool, m->user, INFO_TEXT_CHARS));
    }
    sig_view v = {tvb, pinfo, d, m, 0};
    for (guint i = 0; i < count && i < m->n; i++) {
        const sig_parsed *p = &pk[i];
        const sig_rec *r = &m->recs[i];
        proto_item *eti = proto_tree_add_item(st, hf_eio_packet, tvb, p->start, p->end - p->start, ENC_NA);
        proto_tree *et = proto_item_add_subtree(eti, ett_eio);
        if (p->eio_type >= 0) {
            proto_tree_add_uint(et, hf_eio_type, tvb, p->start, 1, (guint32)p->eio_type);
            proto_item_append_text(eti, ": %s", val_to_str_const((guint32)p->eio_type, eio_type_vals, "?"));
        }
        if (p->error) {
            expert_add_info_format(pinfo, eti, &ei_malformed, "Malformed: %s", p->error);
            proto_item_append_text(eti, " [malformed: %s]", p->error);
            col_append_sep_str(pinfo->cinfo, COL_INFO, "; ", "malformed");
            continue;
        }
        switch (p->eio_type) {
        case EIO_OPEN:
            col_append_sep_str(pinfo->cinfo, COL_INFO, "; ", "open");
            add_open(&v, et, eti, p);
            break;
        case EIO_MESSAGE:
            add_sio(&v, et, eti, p, r);
            break;
        default:
            col_append_sep_str(pinfo->cinfo, COL_INFO, "; ",
                               val_to_str_const((guint32)p->eio_type, eio_type_vals, "?"));
            if (p->end > p->start + 1) {
                proto_tree_add_item(et, hf_eio_data, tvb, p->start + 1, p->end - p->start - 1, ENC_UTF_8);
                col_append_fstr(pinfo->cinfo, COL_INFO, " %s",
                                shown_text(pinfo->pool,
                                           wmem_strndup(pinfo->pool, (const char *)d + p->start + 1,
                                                        p->end - p->start - 1),
                                           INFO_TEXT_CHARS));
            }
            break;
        }
    }
    col_append_str(pinfo->cinfo, COL_INFO, "]");
}


/* ---------------------------------------------------------------------------
 * Entry points. */

/* This call's place among the dissector's calls in this frame, this pass. */
static guint next_index(packet_info *pinfo)
{
    guint *count = (guint *)p_get_proto_data(pinfo->pool, pinfo, proto_signal, KEY_COUNT);
    if (!count) {
        count = wmem_new0(pinfo->pool, guint);
        p_add_proto_data(pinfo->pool, pinfo, proto_signal, KEY_COUNT, count);
    }
    return (*count)++;
}

static gboolean dissect_message(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, guint index, sig_msg *m,
                                gboolean polling, gboolean to_server, const char *sid)
{
    guint n = tvb_captured_length(tvb);
    const guint8 *d = (const guint8 *)tvb_memdup(pinfo->pool, tvb, 0, n);
    sig_parsed *pk = NULL;
    guint count = parse_message(pinfo->pool, d, n, m ? m->polling : polling, &pk);
    if (!m) {
        sig_conv *c = get_conv(pinfo, TRUE);
        if (!c->have_server) {
            c->have_server = TRUE;
            copy_address_wmem(wmem_file_scope(), &c->server_addr, to_server ? &pinfo->dst : &pinfo->src);
            c->server_port = to_server ? pinfo->destport : pinfo->srcport;
        }
        m = first_pass(pinfo, c, polling, to_server, sid, pk, count);
        p_add_proto_data(wmem_file_scope(), pinfo, proto_signal, KEY_BASE + index, m);
    }
    signal_display(tvb, pinfo, tree, m, d, pk, count);
    return TRUE;
}

/* Which way a WebSocket message goes: to the side that answered the upgrade. */
static gboolean ws_to_server(packet_info *pinfo, const sig_conv *c, const http_conv_t *h)
{
    if (c && c->have_server)
        return pinfo->destport == c->server_port && addresses_equal(&pinfo->dst, &c->server_addr);
    if (h && h->server_port)
        return pinfo->destport == h->server_port && addresses_equal(&pinfo->dst, &h->server_addr);
    return pinfo->destport == pref_port;
}

/* For packet-socp.c and packet-csmp.c: TRUE on a WebSocket connection that
 * is Socket.IO's (its upgrade was to the Socket.IO path, or it carried
 * Engine.IO), where every message is this dissector's. */
gboolean signal_ws_connection(packet_info *pinfo);
gboolean signal_ws_connection(packet_info *pinfo)
{
    const sig_conv *c = get_conv(pinfo, FALSE);
    const http_conv_t *h = http_state(pinfo);
    return (c && c->session) || socketio_uri(h ? h->request_uri : NULL);
}

static gboolean dissect_signal_ws(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint index = next_index(pinfo);
    guint n = tvb_captured_length(tvb);
    if (n == 0) return FALSE;
    sig_msg *m = (sig_msg *)p_get_proto_data(wmem_file_scope(), pinfo, proto_signal, KEY_BASE + index);
    if (m) return dissect_message(tvb, pinfo, tree, index, m, FALSE, m->to_server, NULL);
    /* Later passes take the first pass's decision. */
    if (PINFO_FD_VISITED(pinfo) || n > MAX_TEXT) return FALSE;
    guint8 first = tvb_get_guint8(tvb, 0);
    sig_conv *c = get_conv(pinfo, FALSE);
    const http_conv_t *h = http_state(pinfo);
    const char *uri = h ? h->request_uri : NULL;
    /* A Socket.IO connection: every text message is Engine.IO's, malformed
     * when it does not start with a packet type (binary attachments are not
     * UTF-8 text). Elsewhere: a packet type digit on the Socket.IO port. */
    gboolean known = (c && c->session) || socketio_uri(uri);
    if (known ? !g_utf8_validate((const gchar *)tvb_get_ptr(tvb, 0, n), (gssize)n, NULL)
              : (first < '0' || first > '6' || (pinfo->srcport != pref_port && pinfo->destport != pref_port)))
        return FALSE;
    const char *sid = socketio_uri(uri) ? query_param(pinfo->pool, uri, "sid") : NULL;
    return dissect_message(tvb, pinfo, tree, index, NULL, FALSE, ws_to_server(pinfo, c, h), sid);
}

/* text/plain bodies: Engine.IO polling payloads on the Socket.IO path, else
 * line-based text as without this plugin. */
static int dissect_signal_text(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    guint index = next_index(pinfo);
    sig_msg *m = (sig_msg *)p_get_proto_data(wmem_file_scope(), pinfo, proto_signal, KEY_BASE + index);
    if (m) {
        dissect_message(tvb, pinfo, tree, index, m, TRUE, m->to_server, NULL);
        return tvb_captured_length(tvb);
    }
    const http_message_info_t *info = (const http_message_info_t *)data;
    if (!PINFO_FD_VISITED(pinfo) && info && (info->type == HTTP_REQUEST || info->type == HTTP_RESPONSE) &&
        tvb_captured_length(tvb) > 0 && tvb_captured_length(tvb) <= MAX_TEXT) {
        const http_conv_t *h = http_state(pinfo);
        const char *uri = h ? h->request_uri : NULL;
        if (socketio_uri(uri)) {
            dissect_message(tvb, pinfo, tree, index, NULL, TRUE, info->type == HTTP_REQUEST,
                            query_param(pinfo->pool, uri, "sid"));
            return tvb_captured_length(tvb);
        }
    }
    return text_lines_handle ? call_dissector_with_data(text_lines_handle, tvb, pinfo, tree, data) : 0;
}

void proto_register_signal(void)
{
    static hf_register_info hf[] = {
        {&hf_transport,
         {"Transport", "signal.transport", FT_STRING, BASE_NONE, NULL, 0x0,
          "polling (an HTTP body) or websocket (a WebSocket message)", HFILL}},
        {&hf_direction, {"Direction", "signal.direction", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_query_sid,
         {"Engine.IO session (query)", "signal.eio.query_sid", FT_STRING, BASE_NONE, NULL, 0x0,
          "The sid of the request's query string", HFILL}},
        {&hf_conn_user,
         {"Connection user", "signal.conn_user", FT_STRING, BASE_NONE, NULL, 0x0,
          "The username of the register_user sent on this Engine.IO session", HFILL}},
        {&hf_conn_user_frame,
         {"Registered in", "signal.conn_user.frame", FT_FRAMENUM, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_eio_packet, {"Engine.IO packet", "signal.eio", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_eio_type,
         {"Engine.IO type", "signal.eio.type", FT_UINT8, BASE_DEC, VALS(eio_type_vals), 0x0, NULL, HFILL}},
        {&hf_eio_sid, {"Engine.IO sid", "signal.eio.sid", FT_STRING, BASE_NONE, NULL, 0x0, "The open packet's", HFILL}},
        {&hf_eio_upgrades, {"Upgrade", "signal.eio.upgrades", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_eio_ping_interval,
         {"Ping interval (ms)", "signal.eio.ping_interval", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_eio_ping_timeout,
         {"Ping timeout (ms)", "signal.eio.ping_timeout", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_eio_max_payload,
         {"Max payload", "signal.eio.max_payload", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_eio_data,
         {"Data", "signal.eio.data", FT_STRING, BASE_NONE, NULL, 0x0, "What follows the type (probe, ...)", HFILL}},
        {&hf_sio_type,
         {"Socket.IO type", "signal.sio.type", FT_UINT8, BASE_DEC, VALS(sio_type_vals), 0x0, NULL, HFILL}},
        {&hf_sio_attachments,
         {"Attachments", "signal.sio.attachments", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_sio_namespace, {"Namespace", "signal.sio.namespace", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_sio_ack_id, {"Ack id", "signal.sio.ack_id", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_sio_sid,
         {"Socket.IO sid", "signal.sio.sid", FT_STRING, BASE_NONE, NULL, 0x0, "The connect answer's", HFILL}},
        {&hf_sio_arg,
         {"Argument", "signal.sio.arg", FT_STRING, BASE_NONE, NULL, 0x0, "An argument no field describes", HFILL}},
        {&hf_event, {"Event", "signal.event", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_ack_to,
         {"Ack to the event in", "signal.ack_to", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_REQUEST), 0x0,
          "The event with this ack id, the other way on this session", HFILL}},
        {&hf_ack_event, {"Ack to event", "signal.ack_event", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_ack_in,
         {"Acked in", "signal.ack_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_RESPONSE), 0x0, NULL,
          HFILL}},
        {&hf_ack_success,
         {"Result", "signal.ack.success", FT_BOOLEAN, BASE_NONE, NULL, 0x0, "An ack's first argument", HFILL}},
        {&hf_username, {"Username", "signal.username", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_from, {"From", "signal.from", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_target,
         {"Requested user", "signal.target", FT_STRING, BASE_NONE, NULL, 0x0, "request_prekey's username", HFILL}},
        {&hf_ik, {"Identity key (X25519)", "signal.ik", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_sik, {"Signing identity key (Ed25519)", "signal.sik", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_spk, {"Signed prekey (X25519)", "signal.spk", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_spk_sig, {"Signed prekey signature", "signal.spk_sig", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_users, {"User", "signal.users", FT_STRING, BASE_NONE, NULL, 0x0, "request_users' answer", HFILL}},
        {&hf_users_count, {"Users online", "signal.users.count", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_bundle, {"Prekey bundle", "signal.bundle", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_bundle_found,
         {"Found", "signal.bundle.found", FT_BOOLEAN, BASE_NONE, NULL, 0x0, "request_prekey's answer", HFILL}},
        {&hf_bundle_user,
         {"Bundle of", "signal.bundle.user", FT_STRING, BASE_NONE, NULL, 0x0, "The user request_prekey asked for",
          HFILL}},
        {&hf_bundle_ik, {"Identity key", "signal.bundle.ik", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_bundle_sik, {"Signing identity key", "signal.bundle.sik", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_bundle_spk, {"Signed prekey", "signal.bundle.spk", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_bundle_spk_sign,
         {"Signed prekey signature", "signal.bundle.spk_sign", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_bundle_was,
         {"Earlier bundle in", "signal.bundle.was", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The frame of the bundle this one replaces for the same name", HFILL}},
        {&hf_epk, {"Ephemeral key", "signal.epk", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_cipher, {"Ciphertext", "signal.cipher", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_hmac, {"HMAC", "signal.hmac", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_header, {"Header", "signal.header", FT_NONE, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_header_dh, {"Ratchet key", "signal.header.dh", FT_BYTES, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_header_pn,
         {"PN bytes", "signal.header.pn", FT_BYTES, BASE_NONE, NULL, 0x0,
          "Big-endian, as many bytes as the value's bit length", HFILL}},
        {&hf_header_n,
         {"N bytes", "signal.header.n", FT_BYTES, BASE_NONE, NULL, 0x0,
          "Big-endian, as many bytes as the value's bit length", HFILL}},
        {&hf_header_pn_value, {"PN", "signal.header.pn_value", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_header_n_value, {"N", "signal.header.n_value", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_undecodable,
         {"Undecodable value", "signal.undecodable", FT_STRING, BASE_NONE, NULL, 0x0,
          "Not standard base64 with padding, or not a string", HFILL}},
        {&hf_other,
         {"Member", "signal.other", FT_STRING, BASE_NONE, NULL, 0x0, "A member no field describes, as written",
          HFILL}},
        {&hf_replay_of,
         {"Replay of", "signal.replay_of", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The first frame with this X3DH ephemeral key, or this (dh, n), the same way", HFILL}},
        {&hf_mac_status,
         {"MAC", "signal.mac_status", FT_STRING, BASE_NONE, NULL, 0x0,
          "good, bad, or unknown (no key, or no associated data, in the capture)", HFILL}},
        {&hf_key_source,
         {"Key", "signal.key_source", FT_STRING, BASE_NONE, NULL, 0x0, "The key log line that opened it", HFILL}},
        {&hf_plaintext, {"Plaintext", "signal.plaintext", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
    };
    static gint *ett[] = {&ett_signal, &ett_eio, &ett_sio, &ett_args, &ett_bundle, &ett_header};
    static ei_register_info ei[] = {
        {&ei_x3dh_replay,
         {"signal.x3dh_replay", PI_SECURITY, PI_WARN, "X3DH message replayed (the same ephemeral key)", EXPFILL}},
        {&ei_ratchet_replay,
         {"signal.ratchet_replay", PI_SECURITY, PI_WARN, "Ratchet message replayed (the same dh and n)", EXPFILL}},
        {&ei_counter_jump,
         {"signal.counter_jump", PI_SECURITY, PI_WARN, "Message counter beyond MAX_SKIP", EXPFILL}},
        {&ei_key_substitution,
         {"signal.key_substitution", PI_SECURITY, PI_WARN, "Other keys for a name that had a bundle", EXPFILL}},
        {&ei_spoofed_from,
         {"signal.spoofed_from", PI_SECURITY, PI_WARN, "from is not the user of the connection it came on",
          EXPFILL}},
        {&ei_malformed,
         {"signal.malformed", PI_MALFORMED, PI_ERROR, "Malformed Engine.IO or Socket.IO packet", EXPFILL}},
        {&ei_bad_encoding,
         {"signal.bad_encoding", PI_MALFORMED, PI_WARN, "Bad base64, or a key of the wrong length", EXPFILL}},
        {&ei_debug_broadcast,
         {"signal.debug_broadcast", PI_SECURITY, PI_NOTE, "pongi/pingi debug broadcast", EXPFILL}},
        {&ei_bad_mac, {"signal.bad_mac", PI_SECURITY, PI_WARN, "MAC does not verify", EXPFILL}},
        {&ei_ack_true_bad_mac,
         {"signal.ack_true_bad_mac", PI_SECURITY, PI_WARN, "Ack true to an X3DH message whose MAC does not verify",
          EXPFILL}},
    };

    proto_signal = proto_register_protocol("Signal-style chat (Socket.IO)", "Signal", "signal");
    proto_register_field_array(proto_signal, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_signal);
    expert_register_field_array(em, ei, array_length(ei));

    module_t *m = prefs_register_protocol(proto_signal, NULL);
    prefs_register_filename_preference(m, "keylog_file", "Key log file",
                                       "SIGNAL_X3DH_SK <hex epk> <hex SK> and SIGNAL_MESSAGE_KEY <hex dh || n as 8 "
                                       "bytes big-endian> <hex mk> lines decrypt X3DH and ratchet messages; "
                                       "secmsg.keylog_file, then MSGLAB_KEYLOGFILE, is used when this is empty",
                                       &pref_keylog_file, FALSE);
    prefs_register_uint_preference(m, "tcp.port", "Socket.IO server port",
                                   "WebSocket messages starting with an Engine.IO packet type to or from this port "
                                   "count as Socket.IO even when the upgrade was not seen",
                                   10, &pref_port);

    sessions = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    bundles = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    x3dh_seen = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    msg_seen = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    pairs = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    chains = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    ads = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
}

void proto_reg_handoff_signal(void)
{
    heur_dissector_add("ws", dissect_signal_ws, "Signal-style chat over WebSocket (Socket.IO)", "signal_ws",
                       proto_signal, HEURISTIC_ENABLE);
    /* After the built-in dissectors' handoffs (plugins come last), so this
     * entry replaces line-based text's, which it calls for every other body. */
    text_lines_handle = find_dissector_add_dependency("data-text-lines", proto_signal);
    dissector_add_string("media_type", "text/plain",
                         create_dissector_handle(dissect_signal_text, proto_signal));
    proto_http = proto_get_id_by_filter_name("http");
}
