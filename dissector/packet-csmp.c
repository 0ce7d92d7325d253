/* CSMP (Aditya-9753/CSMP-) for Wireshark: the REST calls and the two
 * WebSockets as tshark's own HTTP and WebSocket dissectors decode them, the
 * session id tied to the client id it was issued to across the capture, and
 * expert infos for what a reviewer hunts: a session used by two identities,
 * a session never issued yet accepted (the original's fallback), call events
 * from someone who is no party to the call, room messages from someone the
 * room's name does not admit. Wire format: PROTOCOLS.md section 1.
 *
 * Two entry points, one state:
 *  - WebSocket messages: a heuristic on the "ws" list. The WebSocket
 *    dissector inflates permessage-deflate itself and, unless a dissector is
 *    registered for the connection's Sec-WebSocket-Protocol or server port
 *    ("ws.protocol", "ws.port"), offers every data payload (unmasked,
 *    reassembled, inflated) to that list. The upgrade request seen on the
 *    connection tells the socket (/ws/chat or /ws/call), its session and room.
 *  - HTTP messages: a postdissector with wanted hfids. HTTP hands JSON bodies
 *    to the media_type table (the JSON dissector) and tries its "http"
 *    heuristic list only when no media type dissector took the body, never
 *    for a message without a body, and gives a body dissector no request URI;
 *    a postdissector sees the method, URI, status, header lines and body of
 *    every message. Its wanted hfids are kept in the tree even when tshark
 *    fakes the rest, and tshark builds a tree on every pass when a
 *    postdissector wants hfids.
 *
 * Every decision that depends on the capture so far is taken on the first
 * pass, in frame order, and kept per message, so the second pass (-2) and
 * the GUI show the same. */
#include <wireshark.h>
#include <epan/conversation.h>
#include <epan/expert.h>
#include <epan/packet.h>
#include <epan/prefs.h>
#include <epan/proto_data.h>

#include <stdlib.h>
#include <string.h>

#include "msglab_json.h"

void proto_register_csmp(void);
void proto_reg_handoff_csmp(void);
gboolean csmp_ws_connection(packet_info *pinfo);
gboolean signal_ws_connection(packet_info *pinfo);

#define CSMP_PORT 8000
/* Bounds: JSON texts parsed, nesting, values per text. */
#define JSON_MAX_LEN (1024u * 1024u)
/* Identities remembered per session, requests awaiting a response per
 * connection, history rows shown, header lines read per message. */
#define MAX_IDENTITIES 16
#define MAX_PENDING 256
#define MAX_ROWS 1000
#define MAX_HEADERS 128
/* The walk through one HTTP item's subtree, and HTTP messages per frame. */
#define HTTP_WALK_MAX 4096
#define HTTP_WALK_DEPTH 16
#define HTTP_MAX_PER_FRAME 64

/* Per-packet data keys. The WebSocket count lives in pinfo->pool (one pass);
 * the message records in file scope, by their place in the frame. */
#define KEY_WS_COUNT 1u
#define KEY_WS_BASE 0x1000u
#define KEY_HTTP_BASE 0x40000000u

static int proto_csmp = -1;
static dissector_handle_t csmp_http_handle;

static int hf_type = -1;
static int hf_path = -1;
static int hf_status = -1;
static int hf_session_id = -1;
static int hf_client_id = -1;
static int hf_session_client = -1;
static int hf_issued_in = -1;
static int hf_identity = -1;
static int hf_channel = -1;
static int hf_to_server = -1;
static int hf_room = -1;
static int hf_call_id = -1;
static int hf_from = -1;
static int hf_to = -1;
static int hf_message = -1;
static int hf_timestamp = -1;
static int hf_call_type = -1;
static int hf_protocol_version = -1;
static int hf_expires_in = -1;
static int hf_detail = -1;
static int hf_code = -1;
static int hf_reason = -1;
static int hf_user_id = -1;
static int hf_result = -1;
static int hf_msg_id = -1;
static int hf_count = -1;
static int hf_rows = -1;
static int hf_raw_text = -1;
static int hf_request_in = -1;
static int hf_response_in = -1;
static int hf_caller = -1;
static int hf_callee = -1;

static gint ett_csmp = -1;
static gint ett_row = -1;

static expert_field ei_two_identities = EI_INIT;
static expert_field ei_never_issued = EI_INIT;
static expert_field ei_call_non_party = EI_INIT;
static expert_field ei_room_non_member = EI_INIT;
static expert_field ei_malformed_json = EI_INIT;

/* HTTP's fields, read by the postdissector. */
static int proto_http_id = -1;
static int hf_http_method = -1;
static int hf_http_uri = -1;
static int hf_http_code = -1;
static int hf_http_req_line = -1;
static int hf_http_resp_line = -1;
static int hf_http_file_data = -1;

/* Preferences. */
static guint pref_port = CSMP_PORT;

#define LIT_LEN(s) ((guint)(sizeof(s) - 1))


/* ---------------------------------------------------------------------------
 * Capture-wide state. */

typedef struct {
    const char *sid;
    const char *fallback;      /* sid[:8]: the identity the original's fallback gives it */
    const char *issued_client; /* the client id of the last handshake response that issued it */
    guint32 issued_frame;
    guint32 first_use;
    gboolean pre_capture;  /* first used before any handshake: perhaps issued before the capture */
    gboolean never_issued; /* first used after handshakes, none of which issued it */
    guint n_ids;
    const char *ids[MAX_IDENTITIES]; /* every identity seen using it, first first */
} csmp_session;

typedef struct {
    const char *caller;
    const char *callee;
} csmp_call;

/* session id -> csmp_session, call id -> csmp_call. */
static wmem_map_t *sessions;
static wmem_map_t *calls;
/* The first handshake response of the capture (0: none yet). */
static guint32 first_handshake_frame;

enum { CH_NONE = 0, CH_CHAT, CH_CALL };
static const char *const channel_names[] = {NULL, "chat", "call"};

enum {
    R_NONE = 0,
    R_HANDSHAKE,
    R_REGISTER,
    R_CHAT_SEND,
    R_HISTORY,
    R_CALL_HISTORY,
    R_WS_CHAT,
    R_WS_CALL,
    R_HEALTH,
    R_ROOT,
    R_DOCS,
    R_OTHER,
};
static const char *const route_names[] = {NULL,          "handshake",    "register", "chat_send",
                                          "history",     "call_history", "ws_chat",  "ws_call",
                                          "health",      "root",         "docs",     "other"};
static const char *const response_names[] = {NULL,
                                             "handshake_response",
                                             "register_response",
                                             "chat_send_response",
                                             "history_response",
                                             "call_history_response",
                                             "ws_chat_response",
                                             "ws_call_response",
                                             "health_response",
                                             "root_response",
                                             "docs_response",
                                             "other_response"};

/* One CSMP message (an HTTP request or response, a WebSocket message), as
 * the first pass saw it. */
typedef struct csmp_msg {
    guint32 frame;
    gboolean is_csmp;
    gboolean is_response;
    guint8 route;
    guint8 channel;
    const char *type;
    const char *path;
    const char *session_id;
    const char *session_client;
    guint32 issued_in;
    const char *identity;
    const char *room;
    gboolean direction_known;
    gboolean to_server;
    gboolean raw_text;
    guint32 status;
    guint32 request_in;
    guint32 response_in; /* set when the response is seen */
    const char *caller;
    const char *callee;
    const char *id_first, *id_second; /* two identities of the session */
    gboolean never_issued;
    const char *non_party;
    const char *non_member;
    const char *malformed;
} csmp_msg;

typedef struct pending_req {
    csmp_msg *msg;
    struct pending_req *next;
} pending_req;

/* Per TCP connection: the WebSocket it became, and the HTTP requests that
 * wait for their responses (HTTP/1.1 answers in order). */
typedef struct {
    guint8 channel;
    const char *path;
    const char *session_id;
    const char *room;
    gboolean have_server;
    address server_addr;
    guint32 server_port;
    pending_req *head, *tail;
    guint n_pending;
} csmp_conv;

static void csmp_init(void) { first_handshake_frame = 0; }

static csmp_conv *get_conv(packet_info *pinfo, gboolean create)
{
    conversation_t *conv = create ? find_or_create_conversation(pinfo) : find_conversation_pinfo(pinfo, 0);
    if (!conv) return NULL;
    csmp_conv *c = (csmp_conv *)conversation_get_proto_data(conv, proto_csmp);
    if (!c && create) {
        c = wmem_new0(wmem_file_scope(), csmp_conv);
        conversation_add_proto_data(conv, proto_csmp, c);
    }
    return c;
}

/* For packet-socp.c: TRUE on a connection whose upgrade made it one of
 * CSMP's sockets, where every message is CSMP's. */
gboolean csmp_ws_connection(packet_info *pinfo)
{
    const csmp_conv *c = get_conv(pinfo, FALSE);
    return c && c->channel != CH_NONE;
}

static csmp_session *find_session(const char *sid)
{
    return sid ? (csmp_session *)wmem_map_lookup(sessions, sid) : NULL;
}

static csmp_session *get_session(const char *sid)
{
    csmp_session *s = find_session(sid);
    if (!s) {
        s = wmem_new0(wmem_file_scope(), csmp_session);
        s->sid = wmem_strdup(wmem_file_scope(), sid);
        /* Python's sid[:8]: eight code points (eight bytes should the text
         * not be UTF-8). */
        const char *end = s->sid;
        gboolean utf8 = g_utf8_validate(s->sid, -1, NULL);
        for (int i = 0; i < 8 && *end; i++) end = utf8 ? g_utf8_next_char(end) : end + 1;
        s->fallback = wmem_strndup(wmem_file_scope(), s->sid, (size_t)(end - s->sid));
        wmem_map_insert(sessions, s->sid, s);
    }
    return s;
}

/* Adds an identity seen using the session; returns the session's first
 * identity when this one differs from every one seen before. */
static const char *identity_add(csmp_session *s, const char *id)
{
    for (guint i = 0; i < s->n_ids; i++)
        if (strcmp(s->ids[i], id) == 0) return NULL;
    const char *first = s->n_ids ? s->ids[0] : NULL;
    if (s->n_ids < MAX_IDENTITIES) s->ids[s->n_ids++] = wmem_strdup(wmem_file_scope(), id);
    return first;
}

/* The identity the server attaches to the session: the client id it was
 * issued to; for a session no handshake in the capture issued (once the
 * capture has shown handshakes), the original's fallback, sid[:8]; else
 * unknown. */
static const char *session_identity(const csmp_session *s)
{
    if (!s) return NULL;
    if (s->issued_client) return s->issued_client;
    if (s->never_issued) return s->fallback;
    return NULL;
}

/* A request or upgrade presents the session id (first pass). */
static csmp_session *session_use(const char *sid, guint32 frame)
{
    csmp_session *s = get_session(sid);
    if (s->first_use) return s;
    s->first_use = frame;
    if (s->issued_frame) return s;
    if (first_handshake_frame && first_handshake_frame < frame) {
        s->never_issued = TRUE;
        identity_add(s, s->fallback);
    } else {
        s->pre_capture = TRUE;
    }
    return s;
}

static void snapshot_session(csmp_msg *m, const csmp_session *s)
{
    if (!s) return;
    m->session_client = s->issued_client;
    m->issued_in = s->issued_frame;
    m->identity = session_identity(s);
}

static void note_two_identities(csmp_msg *m, const char *first, const char *second)
{
    if (!first || m->id_first) return;
    m->id_first = first;
    m->id_second = wmem_strdup(wmem_file_scope(), second);
}

/* room_<a>_<b> admits a and b. TRUE when the room has that shape and `id`
 * is neither; the split is ambiguous when ids contain '_', so any split
 * that admits `id` does. */
static gboolean room_excludes(const char *room, const char *id)
{
    if (!room || !id || strncmp(room, "room_", 5) != 0) return FALSE;
    const char *rest = room + 5;
    size_t n = strlen(rest), k = strlen(id);
    const char *sep = strchr(rest, '_');
    /* Not room_<a>_<b>: no membership rule. */
    if (!sep || sep == rest || strrchr(rest, '_') == rest + n - 1) return FALSE;
    if (k == 0 || k + 1 >= n) return TRUE;
    if (strncmp(rest, id, k) == 0 && rest[k] == '_') return FALSE;
    if (strcmp(rest + n - k, id) == 0 && rest[n - k - 1] == '_') return FALSE;
    return TRUE;
}

static csmp_call *get_call(const char *call_id)
{
    csmp_call *c = (csmp_call *)wmem_map_lookup(calls, call_id);
    if (!c) {
        c = wmem_new0(wmem_file_scope(), csmp_call);
        wmem_map_insert(calls, wmem_strdup(wmem_file_scope(), call_id), c);
    }
    return c;
}

static void call_parties(const char *call_id, const char *caller, const char *callee)
{
    csmp_call *c = get_call(call_id);
    if (caller && !c->caller) c->caller = wmem_strdup(wmem_file_scope(), caller);
    if (callee && !c->callee) c->callee = wmem_strdup(wmem_file_scope(), callee);
}

/* The sender when both parties of the call are known and it is neither. */
static const char *call_outsider(const char *call_id, const char *sender)
{
    const csmp_call *c = call_id ? (const csmp_call *)wmem_map_lookup(calls, call_id) : NULL;
    if (!c || !c->caller || !c->callee || !sender) return NULL;
    if (strcmp(sender, c->caller) == 0 || strcmp(sender, c->callee) == 0) return NULL;
    return wmem_strdup(wmem_file_scope(), sender);
}

static const char *file_str(const char *s) { return s ? wmem_strdup(wmem_file_scope(), s) : NULL; }

/* ---------------------------------------------------------------------------
 * The tree, shared by both entry points. */

typedef struct {
    const char *key;
    int *hf;
} json_field;

static const json_field json_fields[] = {
    {"type", &hf_type},
    {"session_id", &hf_session_id},
    {"client_id", &hf_client_id},
    {"user_id", &hf_user_id},
    {"room_id", &hf_room},
    {"call_id", &hf_call_id},
    {"from", &hf_from},
    {"to", &hf_to},
    {"message", &hf_message},
    {"timestamp", &hf_timestamp},
    {"call_type", &hf_call_type},
    {"protocol_version", &hf_protocol_version},
    {"status", &hf_result},
    {"detail", &hf_detail},
    {"code", &hf_code},
    {"reason", &hf_reason},
};

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

/* The object's known members; strings decoded, other scalars as written.
 * `d` is the JSON text, at `base` in `tvb`. */
static void add_json_members(proto_tree *st, tvbuff_t *tvb, guint base, const guint8 *d, const jv *obj,
                             wmem_allocator_t *pool)
{
    for (guint i = 0; i < array_length(json_fields); i++) {
        const jv *m = jv_member(obj, json_fields[i].key);
        if (!m || m->type == JV_OBJECT || m->type == JV_ARRAY) continue;
        const char *text = m->type == JV_STRING
                               ? m->str
                               : wmem_strndup(pool, (const char *)d + m->start, m->end - m->start);
        proto_tree_add_string(st, *json_fields[i].hf, tvb, base + m->start, m->end - m->start, text);
    }
    guint64 v;
    const jv *m = jv_member(obj, "expires_in");
    if (jv_uint(d, m, G_MAXUINT32, &v))
        proto_tree_add_uint(st, hf_expires_in, tvb, base + m->start, m->end - m->start, (guint32)v);
    m = jv_member(obj, "id");
    if (jv_uint(d, m, G_MAXUINT64, &v))
        proto_tree_add_uint64(st, hf_msg_id, tvb, base + m->start, m->end - m->start, v);
    m = jv_member(obj, "count");
    if (jv_uint(d, m, G_MAXUINT32, &v))
        proto_tree_add_uint(st, hf_count, tvb, base + m->start, m->end - m->start, (guint32)v);
}

/* A JSON body or message: an object's members, or an array's objects as rows
 * (the history). */
static void add_json(proto_tree *st, tvbuff_t *tvb, guint base, const guint8 *d, const jv *root,
                     wmem_allocator_t *pool)
{
    if (root->type == JV_OBJECT) {
        add_json_members(st, tvb, base, d, root, pool);
        return;
    }
    if (root->type != JV_ARRAY) return;
    proto_item *count = proto_tree_add_uint(st, hf_rows, tvb, base + root->start, root->end - root->start, root->count);
    proto_item_set_generated(count);
    guint i = 0;
    for (const jv *e = root->child; e && i < MAX_ROWS; e = e->next, i++) {
        if (e->type != JV_OBJECT) continue;
        proto_tree *rt = proto_tree_add_subtree_format(st, tvb, base + e->start, e->end - e->start, ett_row, NULL,
                                                       "Row %u", i + 1);
        add_json_members(rt, tvb, base, d, e, pool);
    }
}

/* What every CSMP message shows from its record, and its expert infos. */
static void add_record(proto_tree *st, proto_item *ti, tvbuff_t *tvb, packet_info *pinfo, const csmp_msg *m)
{
    if (m->session_client) add_generated_string(st, hf_session_client, tvb, m->session_client);
    if (m->issued_in) add_generated_uint(st, hf_issued_in, tvb, m->issued_in);
    if (m->identity) add_generated_string(st, hf_identity, tvb, m->identity);
    if (m->caller) add_generated_string(st, hf_caller, tvb, m->caller);
    if (m->callee) add_generated_string(st, hf_callee, tvb, m->callee);
    if (m->request_in) add_generated_uint(st, hf_request_in, tvb, m->request_in);
    if (m->response_in) add_generated_uint(st, hf_response_in, tvb, m->response_in);

    if (m->id_first)
        expert_add_info_format(pinfo, ti, &ei_two_identities,
                               "Session %s used by two client identities: \"%s\" and \"%s\"",
                               m->session_id ? m->session_id : "?", m->id_first, m->id_second);
    if (m->never_issued)
        expert_add_info_format(pinfo, ti, &ei_never_issued,
                               "Session %s was never issued in this capture, yet accepted (%u): the original's "
                               "fallback creates it with identity \"%s\"",
                               m->session_id ? m->session_id : "?", m->status, m->identity ? m->identity : "?");
    if (m->non_party)
        expert_add_info_format(pinfo, ti, &ei_call_non_party,
                               "Call event from \"%s\", neither caller (\"%s\") nor callee (\"%s\") of the call",
                               m->non_party, m->caller ? m->caller : "?", m->callee ? m->callee : "?");
    if (m->non_member)
        expert_add_info_format(pinfo, ti, &ei_room_non_member,
                               "Room message from \"%s\", not a member of %s (room_<a>_<b> admits a and b)",
                               m->non_member, m->room ? m->room : "?");
    if (m->malformed) expert_add_info_format(pinfo, ti, &ei_malformed_json, "Malformed JSON: %s", m->malformed);
}

/* ---------------------------------------------------------------------------
 * WebSocket messages: the "ws" heuristic. */

/* This call's place among the heuristic's calls in this frame, this pass. */
static guint next_ws_index(packet_info *pinfo)
{
    guint *count = (guint *)p_get_proto_data(pinfo->pool, pinfo, proto_csmp, KEY_WS_COUNT);
    if (!count) {
        count = wmem_new0(pinfo->pool, guint);
        p_add_proto_data(pinfo->pool, pinfo, proto_csmp, KEY_WS_COUNT, count);
    }
    return (*count)++;
}

/* The events that act on an existing call (all but call:init). */
static gboolean is_call_event(const char *type)
{
    if (!type) return FALSE;
    return strcmp(type, "call:offer") == 0 || strcmp(type, "call:answer") == 0 || strcmp(type, "call:ice") == 0 ||
           strcmp(type, "call:end") == 0 || strcmp(type, "call:reject") == 0;
}

/* CSMP's JSON on a socket whose upgrade was not seen: "chat", "call:...",
 * or msglab's server's {"type":"error","code","detail"}. */
static gboolean looks_like_csmp(const jv *root)
{
    const char *type = jv_string(root, "type");
    if (!type) return FALSE;
    /* A SOCP envelope (section 2.8) is SOCP's, whatever its type. */
    const jv *ts = jv_member(root, "ts"), *payload = jv_member(root, "payload");
    if (ts && ts->type == JV_NUMBER && payload && payload->type == JV_OBJECT) return FALSE;
    if (strcmp(type, "chat") == 0 || strncmp(type, "call:", 5) == 0) return TRUE;
    return strcmp(type, "error") == 0 && jv_member(root, "code") && jv_member(root, "detail");
}

/* The original's chat socket parses a frame as JSON when its text starts
 * with '{'; anything else is a chat message. The call socket parses every
 * frame. */
static gboolean ws_raw_chat(const csmp_msg *m, const guint8 *d, guint n)
{
    return m->channel == CH_CHAT && m->to_server && (n == 0 || d[0] != '{');
}

static csmp_msg *ws_first_pass(packet_info *pinfo, csmp_conv *c, const guint8 *d, guint n, const jv *root,
                               const char *jerror)
{
    csmp_msg *m = wmem_new0(wmem_file_scope(), csmp_msg);
    m->frame = pinfo->num;
    m->is_csmp = TRUE;
    const char *type = root ? jv_string(root, "type") : NULL;

    if (c && c->have_server) {
        m->direction_known = TRUE;
        m->to_server = pinfo->destport == c->server_port && addresses_equal(&pinfo->dst, &c->server_addr);
    } else if (pinfo->destport == pref_port || pinfo->srcport == pref_port) {
        m->direction_known = TRUE;
        m->to_server = pinfo->destport == pref_port;
    }
    if (c && c->channel != CH_NONE) {
        m->channel = c->channel;
        m->path = c->path;
        m->room = c->room;
        m->session_id = c->session_id;
    } else if (type) {
        m->channel = strcmp(type, "chat") == 0 ? CH_CHAT : strncmp(type, "call:", 5) == 0 ? CH_CALL : CH_NONE;
    }
    csmp_session *s = find_session(m->session_id);
    snapshot_session(m, s);
    const char *me = m->identity;

    if (ws_raw_chat(m, d, n)) {
        m->raw_text = TRUE;
        m->type = "chat";
        if (!g_utf8_validate((const gchar *)d, (gssize)n, NULL)) m->malformed = "not UTF-8 text";
        if (room_excludes(m->room, me)) m->non_member = me;
        return m;
    }
    if (!root) {
        m->malformed = wmem_strdup(wmem_file_scope(), jerror);
        return m;
    }
    if (root->type != JV_OBJECT) {
        m->malformed = "JSON, but not an object";
        return m;
    }
    m->type = file_str(type);
    const char *from = jv_string(root, "from");
    const char *to = jv_string(root, "to");
    const char *call_id = jv_string(root, "call_id");
    const char *room_id = jv_string(root, "room_id");

    if (m->to_server) {
        /* A client that names itself: one more identity of its session. */
        if (from && m->session_id) {
            const char *first = identity_add(get_session(m->session_id), from);
            note_two_identities(m, first, from);
        }
        if (type && strcmp(type, "chat") == 0 && room_excludes(m->room, me)) m->non_member = me;
        if (is_call_event(type)) m->non_party = call_outsider(call_id, me);
    } else if (type) {
        if (strcmp(type, "chat") == 0 && from && room_id && room_excludes(room_id, from)) {
            m->non_member = file_str(from);
            m->room = file_str(room_id);
        }
        if (strcmp(type, "call:ack") == 0 && call_id) call_parties(call_id, me, to);
        if (strcmp(type, "call:incoming") == 0 && call_id) call_parties(call_id, from, me);
        /* The server relays the sender's identity as "from". */
        if (is_call_event(type) && from) m->non_party = call_outsider(call_id, from);
    }
    if (call_id) {
        const csmp_call *call = (const csmp_call *)wmem_map_lookup(calls, call_id);
        if (call) {
            m->caller = call->caller;
            m->callee = call->callee;
        }
    }
    return m;
}

static void ws_display(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, const csmp_msg *m, const guint8 *d,
                       guint n, const jv *root)
{
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "CSMP");
    col_append_sep_fstr(pinfo->cinfo, COL_INFO, ", ", "CSMP %s", m->type ? m->type : "(malformed)");
    proto_item *ti = proto_tree_add_item(tree, proto_csmp, tvb, 0, -1, ENC_NA);
    proto_tree *st = proto_item_add_subtree(ti, ett_csmp);
    if (m->channel != CH_NONE) add_generated_string(st, hf_channel, tvb, channel_names[m->channel]);
    if (m->direction_known) {
        proto_item *gi = proto_tree_add_boolean(st, hf_to_server, tvb, 0, 0, m->to_server);
        proto_item_set_generated(gi);
    }
    if (m->path) add_generated_string(st, hf_path, tvb, m->path);
    if (m->session_id) add_generated_string(st, hf_session_id, tvb, m->session_id);

    gboolean json_room = FALSE;
    if (m->raw_text) {
        add_generated_string(st, hf_type, tvb, "chat");
        proto_tree_add_item(st, hf_message, tvb, 0, n, ENC_UTF_8);
        proto_item *gi = proto_tree_add_boolean(st, hf_raw_text, tvb, 0, 0, TRUE);
        proto_item_set_generated(gi);
    } else if (root) {
        add_json(st, tvb, 0, d, root, pinfo->pool);
        json_room = jv_member(root, "room_id") != NULL;
        const char *from = jv_string(root, "from");
        if (m->type) col_append_fstr(pinfo->cinfo, COL_INFO, "%s%s", from ? " from " : "", from ? from : "");
    }
    /* The chat socket's room, from its upgrade request. */
    if (m->room && !json_room) add_generated_string(st, hf_room, tvb, m->room);
    add_record(st, ti, tvb, pinfo, m);
}

static gboolean dissect_csmp_ws(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    guint index = next_ws_index(pinfo);
    guint n = tvb_captured_length(tvb);
    if (n == 0) return FALSE;
    csmp_msg *m = (csmp_msg *)p_get_proto_data(wmem_file_scope(), pinfo, proto_csmp, KEY_WS_BASE + index);
    /* Later passes take the first pass's decision. */
    if (!m && PINFO_FD_VISITED(pinfo)) return FALSE;
    if (!m && signal_ws_connection(pinfo)) return FALSE;

    const guint8 *d = (const guint8 *)tvb_memdup(pinfo->pool, tvb, 0, n);
    csmp_conv *c = get_conv(pinfo, FALSE);
    gboolean known = c && c->channel != CH_NONE;
    guint first = 0;
    while (first < n && (d[first] == ' ' || d[first] == '\t' || d[first] == '\n' || d[first] == '\r')) first++;
    const jv *root = NULL;
    const char *jerror = "not JSON";
    if (first < n && (d[first] == '{' || d[first] == '[')) root = json_parse_text(pinfo->pool, d, n, JSON_MAX_LEN, &jerror);
    else if (!known) return FALSE;

    if (!m) {
        if (!known && !looks_like_csmp(root)) return FALSE;
        m = ws_first_pass(pinfo, c, d, n, root, jerror);
        p_add_proto_data(wmem_file_scope(), pinfo, proto_csmp, KEY_WS_BASE + index, m);
    }
    ws_display(tvb, pinfo, tree, m, d, n, m->raw_text ? NULL : root);
    return TRUE;
}

/* ---------------------------------------------------------------------------
 * HTTP messages: the postdissector. */

/* One HTTP message's fields, gathered from its "http" item. */
typedef struct {
    const char *method;
    field_info *uri;
    field_info *code;
    field_info *headers[MAX_HEADERS];
    guint n_headers;
    field_info *body;
} http_msg;

static void http_collect(proto_node *node, http_msg *h, guint depth, guint *budget)
{
    for (proto_node *child = node->first_child; child; child = child->next) {
        if (*budget == 0) return;
        (*budget)--;
        field_info *fi = PNODE_FINFO(child);
        if (fi && fi->hfinfo) {
            int id = fi->hfinfo->id;
            if (id == hf_http_method && !h->method) {
                h->method = fvalue_get_string(&fi->value);
            } else if (id == hf_http_uri && !h->uri) {
                h->uri = fi;
            } else if (id == hf_http_code && !h->code) {
                h->code = fi;
            } else if ((id == hf_http_req_line || id == hf_http_resp_line) && h->n_headers < MAX_HEADERS) {
                h->headers[h->n_headers++] = fi;
            } else if (id == hf_http_file_data && !h->body) {
                h->body = fi;
            } else if (id == proto_http_id) {
                /* Another HTTP message (a tunnel): not this one's. */
                continue;
            }
        }
        if (depth < HTTP_WALK_DEPTH) http_collect(child, h, depth + 1, budget);
    }
}

/* The bytes a field covers, when its data source has them. */
static gboolean field_bytes(field_info *fi, const guint8 **d, guint *n)
{
    if (!fi || !fi->ds_tvb || fi->start < 0 || fi->length < 0) return FALSE;
    if (!tvb_bytes_exist(fi->ds_tvb, fi->start, fi->length)) return FALSE;
    *n = (guint)fi->length;
    *d = tvb_get_ptr(fi->ds_tvb, fi->start, fi->length);
    return TRUE;
}

/* %XX decoded ('+' as a space in a query), as UTF-8 with replacements, the
 * way Starlette reads paths and query strings. */
/* A hex digit's value, or -1. */
static int hex_value(guint8 c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *url_decode(wmem_allocator_t *scope, const char *s, size_t len, gboolean plus_space)
{
    wmem_strbuf_t *out = wmem_strbuf_new(scope, "");
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len && hex_value((guint8)s[i + 1]) >= 0 && hex_value((guint8)s[i + 2]) >= 0) {
            c = (char)(hex_value((guint8)s[i + 1]) * 16 + hex_value((guint8)s[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0')
            wmem_strbuf_append_unichar(out, 0xFFFD);
        else
            wmem_strbuf_append_c(out, c);
    }
    const char *raw = wmem_strbuf_get_str(out);
    if (g_utf8_validate(raw, -1, NULL)) return (char *)raw;
    gchar *valid = g_utf8_make_valid(raw, -1);
    char *copy = wmem_strdup(scope, valid);
    g_free(valid);
    return copy;
}

/* The query parameter `name`: its last value, as Starlette's QueryParams.get. */
static const char *query_get(wmem_allocator_t *scope, const char *query, const char *name)
{
    const char *value = NULL;
    size_t name_len = strlen(name);
    while (query && *query) {
        const char *amp = strchr(query, '&');
        size_t len = amp ? (size_t)(amp - query) : strlen(query);
        const char *eq = memchr(query, '=', len);
        size_t key_len = eq ? (size_t)(eq - query) : len;
        char *key = url_decode(scope, query, key_len, TRUE);
        if (strlen(key) == name_len && memcmp(key, name, name_len) == 0)
            value = eq ? url_decode(scope, eq + 1, len - key_len - 1, TRUE) : "";
        query = amp ? amp + 1 : NULL;
    }
    return value;
}

/* The value of header `name` (lower case): its first occurrence, as
 * Starlette's Headers.get. Sets *fi to the header line. */
static const char *header_get(wmem_allocator_t *scope, const http_msg *h, const char *name, field_info **where)
{
    size_t name_len = strlen(name);
    for (guint i = 0; i < h->n_headers; i++) {
        const char *line = fvalue_get_string(&h->headers[i]->value);
        if (!line) continue;
        const char *colon = strchr(line, ':');
        if (!colon || (size_t)(colon - line) != name_len || g_ascii_strncasecmp(line, name, name_len) != 0) continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t len = strlen(v);
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
        if (where) *where = h->headers[i];
        return wmem_strndup(scope, v, len);
    }
    return NULL;
}

static gboolean starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* The route of a decoded path; *room for /history/<room>. */
static guint8 route_of(const char *path, const char **room)
{
    *room = NULL;
    if (strcmp(path, "/") == 0) return R_ROOT;
    if (strcmp(path, "/handshake/register") == 0) return R_REGISTER;
    if (strcmp(path, "/handshake/") == 0 || strcmp(path, "/handshake") == 0) return R_HANDSHAKE;
    if (starts_with(path, "/health")) return R_HEALTH;
    if (starts_with(path, "/docs") || starts_with(path, "/openapi.json") || starts_with(path, "/favicon.ico"))
        return R_DOCS;
    if (strcmp(path, "/chat/send") == 0) return R_CHAT_SEND;
    if (starts_with(path, "/history/") && path[9] != '\0' && !strchr(path + 9, '/')) {
        *room = path + 9;
        return R_HISTORY;
    }
    if (strcmp(path, "/call/call/history") == 0 || strcmp(path, "/call/history") == 0) return R_CALL_HISTORY;
    if (strcmp(path, "/ws/chat") == 0) return R_WS_CHAT;
    if (strcmp(path, "/ws/call") == 0) return R_WS_CALL;
    return R_OTHER;
}

/* Paths the original's session guard skips: "/", and those starting with
 * /health, /handshake, /docs, /openapi.json, /favicon.ico. */
static gboolean route_public(const char *path)
{
    return strcmp(path, "/") == 0 || starts_with(path, "/health") || starts_with(path, "/handshake") ||
           starts_with(path, "/docs") || starts_with(path, "/openapi.json") || starts_with(path, "/favicon.ico");
}

/* Routes only CSMP has; the others count on CSMP's port or with a session id. */
static gboolean route_specific(guint8 route)
{
    return route == R_HANDSHAKE || route == R_REGISTER || route == R_CHAT_SEND || route == R_HISTORY ||
           route == R_CALL_HISTORY || route == R_WS_CHAT || route == R_WS_CALL;
}

/* A request body the route expects as JSON. */
static gboolean route_json_body(guint8 route)
{
    return route == R_HANDSHAKE || route == R_REGISTER || route == R_CHAT_SEND;
}

static void pending_push(csmp_conv *c, csmp_msg *m)
{
    pending_req *p = wmem_new0(wmem_file_scope(), pending_req);
    p->msg = m;
    if (c->tail)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    if (++c->n_pending > MAX_PENDING) {
        c->head = c->head->next;
        c->n_pending--;
    }
}

static csmp_msg *pending_pop(csmp_conv *c)
{
    pending_req *p = c->head;
    if (!p) return NULL;
    c->head = p->next;
    if (!c->head) c->tail = NULL;
    c->n_pending--;
    return p->msg;
}

/* The body's bytes and its parse as JSON. */
typedef struct {
    const guint8 *d;
    guint n;
    const jv *root;
    const char *error;   /* why it is not JSON */
    gboolean looks_json; /* it starts with '{' or '[' */
} http_body;

static void parse_body(wmem_allocator_t *pool, const http_msg *h, http_body *b)
{
    memset(b, 0, sizeof *b);
    if (!field_bytes(h->body, &b->d, &b->n) || b->n == 0) return;
    guint first = 0;
    while (first < b->n && (b->d[first] == ' ' || b->d[first] == '\t' || b->d[first] == '\n' || b->d[first] == '\r'))
        first++;
    b->looks_json = first < b->n && (b->d[first] == '{' || b->d[first] == '[');
    /* CSMP's bodies are JSON objects or arrays: nothing else is worth a parse. */
    if (b->looks_json)
        b->root = json_parse_text(pool, b->d, b->n, JSON_MAX_LEN, &b->error);
    else
        b->error = "not JSON";
}

static csmp_msg *http_request_first_pass(packet_info *pinfo, csmp_conv *c, const http_msg *h, const http_body *b)
{
    csmp_msg *m = wmem_new0(wmem_file_scope(), csmp_msg);
    m->frame = pinfo->num;
    pending_push(c, m);
    if (!c->have_server) {
        /* Requests go to the server: the direction of the connection's
         * WebSocket frames, should it become one. */
        copy_address_wmem(wmem_file_scope(), &c->server_addr, &pinfo->dst);
        c->server_port = pinfo->destport;
        c->have_server = TRUE;
    }
    const char *uri = fvalue_get_string(&h->uri->value);
    if (!uri) return m;
    const char *q = strchr(uri, '?');
    size_t path_len = q ? (size_t)(q - uri) : strlen(uri);
    const char *path = url_decode(pinfo->pool, uri, path_len, FALSE);
    const char *room = NULL;
    guint8 route = route_of(path, &room);
    gboolean ws = route == R_WS_CHAT || route == R_WS_CALL;
    /* The guard prefers the header; WebSockets read only the query. An
     * empty value counts as none. */
    const char *sid = ws ? NULL : header_get(pinfo->pool, h, "x-session-id", NULL);
    if ((!sid || !*sid) && q) sid = query_get(pinfo->pool, q + 1, "session_id");
    if (sid && !*sid) sid = NULL;
    if (!route_specific(route) && pinfo->destport != pref_port && !sid) return m;

    m->is_csmp = TRUE;
    m->route = route;
    m->type = route_names[route];
    m->path = file_str(path);
    m->session_id = file_str(sid);
    if (route == R_HISTORY) m->room = file_str(room);
    if (route == R_WS_CHAT && q) m->room = file_str(query_get(pinfo->pool, q + 1, "room_id"));
    csmp_session *s = NULL;
    if (sid) s = route_public(path) && !ws ? find_session(sid) : session_use(sid, pinfo->num);
    snapshot_session(m, s);
    if (ws) {
        /* The connection becomes this socket. */
        c->channel = route == R_WS_CHAT ? CH_CHAT : CH_CALL;
        c->path = m->path;
        c->session_id = m->session_id;
        c->room = m->room;
    }
    if (b->error && (b->looks_json || route_json_body(route))) m->malformed = file_str(b->error);
    /* msglab's server takes "room_id" on /chat/send. */
    if (route == R_CHAT_SEND && b->root) {
        const char *room_id = jv_string(b->root, "room_id");
        if (room_id && room_excludes(room_id, m->identity)) {
            m->room = file_str(room_id);
            m->non_member = m->identity;
        }
    }
    return m;
}

static csmp_msg *http_response_first_pass(packet_info *pinfo, csmp_conv *c, const http_msg *h, const http_body *b)
{
    csmp_msg *m = wmem_new0(wmem_file_scope(), csmp_msg);
    m->frame = pinfo->num;
    m->is_response = TRUE;
    m->status = fvalue_get_uinteger(&h->code->value);
    /* 1xx other than 101 are interim: the request still waits. */
    csmp_msg *req = (m->status >= 100 && m->status < 200 && m->status != 101) ? NULL : pending_pop(c);
    if (req && req->is_csmp) {
        m->is_csmp = TRUE;
        m->route = req->route;
        m->path = req->path;
        m->session_id = req->session_id;
        m->room = req->room;
        m->request_in = req->frame;
        req->response_in = m->frame;
    } else if (b->root && jv_string(b->root, "session_id") && jv_string(b->root, "client_id") &&
               jv_member(b->root, "protocol_version")) {
        /* A handshake response whose request was not captured. */
        m->is_csmp = TRUE;
        m->route = R_HANDSHAKE;
    }
    if (!m->is_csmp) return m;
    m->type = response_names[m->route];
    if (b->error && b->looks_json) m->malformed = file_str(b->error);

    if (m->route == R_HANDSHAKE && m->status == 200 && b->root) {
        const char *sid = jv_string(b->root, "session_id");
        const char *client = jv_string(b->root, "client_id");
        if (sid && client) {
            csmp_session *s = get_session(sid);
            if (!first_handshake_frame) first_handshake_frame = m->frame;
            s->issued_client = file_str(client);
            s->issued_frame = m->frame;
            m->session_id = s->sid;
            note_two_identities(m, identity_add(s, client), client);
        }
    }
    csmp_session *s = find_session(m->session_id);
    if (s && m->route == R_CHAT_SEND && m->status == 200 && b->root) {
        /* The intended reply names the sender's identity. */
        const char *client = jv_string(b->root, "client_id");
        if (client) note_two_identities(m, identity_add(s, client), client);
    }
    if (s && req && (m->status == 200 || m->status == 101) && !route_public(m->path ? m->path : "/") &&
        s->never_issued && (!s->issued_frame || s->issued_frame > req->frame))
        m->never_issued = TRUE;
    if (m->status == 101 && req && (req->route == R_WS_CHAT || req->route == R_WS_CALL)) m->channel = c->channel;
    snapshot_session(m, s);
    return m;
}

static void http_display(proto_tree *tree, packet_info *pinfo, tvbuff_t *frame_tvb, const http_msg *h,
                         const http_body *b, const csmp_msg *m)
{
    col_set_str(pinfo->cinfo, COL_PROTOCOL, "CSMP");
    col_append_fstr(pinfo->cinfo, COL_INFO, " [CSMP %s]", m->type);
    proto_item *ti;
    tvbuff_t *tvb;
    if (b->d) {
        tvb = h->body->ds_tvb;
        ti = proto_tree_add_item(tree, proto_csmp, tvb, h->body->start, h->body->length, ENC_NA);
    } else if (h->uri && h->uri->ds_tvb) {
        tvb = h->uri->ds_tvb;
        ti = proto_tree_add_item(tree, proto_csmp, tvb, h->uri->start, h->uri->length, ENC_NA);
    } else {
        tvb = frame_tvb;
        ti = proto_tree_add_item(tree, proto_csmp, tvb, 0, 0, ENC_NA);
    }
    proto_tree *st = proto_item_add_subtree(ti, ett_csmp);
    add_generated_string(st, hf_type, tvb, m->type);
    if (m->path) {
        if (!m->is_response && h->uri && h->uri->ds_tvb)
            proto_tree_add_string(st, hf_path, h->uri->ds_tvb, h->uri->start, h->uri->length, m->path);
        else
            add_generated_string(st, hf_path, tvb, m->path);
    }
    if (m->is_response && h->code && h->code->ds_tvb)
        proto_tree_add_uint(st, hf_status, h->code->ds_tvb, h->code->start, h->code->length, m->status);
    if (m->channel != CH_NONE) add_generated_string(st, hf_channel, tvb, channel_names[m->channel]);
    gboolean json_sid = b->root && jv_string(b->root, "session_id");
    if (m->session_id && !json_sid) {
        /* Where the request carried it: the header line, else the URI. */
        field_info *where = NULL;
        if (!m->is_response && m->route != R_WS_CHAT && m->route != R_WS_CALL) {
            const char *value = header_get(pinfo->pool, h, "x-session-id", &where);
            if (!value || !*value) where = NULL;
        }
        if (!where && !m->is_response) where = h->uri;
        if (where && where->ds_tvb)
            proto_tree_add_string(st, hf_session_id, where->ds_tvb, where->start, where->length, m->session_id);
        else
            add_generated_string(st, hf_session_id, tvb, m->session_id);
    }
    gboolean json_room = b->root && b->root->type == JV_OBJECT && jv_member(b->root, "room_id");
    if (m->room && !json_room) {
        if (!m->is_response && h->uri && h->uri->ds_tvb)
            proto_tree_add_string(st, hf_room, h->uri->ds_tvb, h->uri->start, h->uri->length, m->room);
        else
            add_generated_string(st, hf_room, tvb, m->room);
    }
    if (b->root) add_json(st, h->body->ds_tvb, (guint)h->body->start, b->d, b->root, pinfo->pool);
    add_record(st, ti, tvb, pinfo, m);
}

static int dissect_csmp_http(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data _U_)
{
    if (!tree || proto_http_id < 0) return 0;
    guint index = 0;
    for (proto_node *node = tree->first_child; node && index < HTTP_MAX_PER_FRAME; node = node->next) {
        field_info *fi = PNODE_FINFO(node);
        if (!fi || !fi->hfinfo || fi->hfinfo->id != proto_http_id) continue;
        http_msg h;
        memset(&h, 0, sizeof h);
        guint budget = HTTP_WALK_MAX;
        http_collect(node, &h, 0, &budget);
        gboolean request = h.method && h.uri;
        gboolean response = !request && h.code;
        if (!request && !response) continue;
        guint32 key = KEY_HTTP_BASE + index++;
        csmp_msg *m = (csmp_msg *)p_get_proto_data(wmem_file_scope(), pinfo, proto_csmp, key);
        /* Later passes take the first pass's decision. */
        if (m ? !m->is_csmp : PINFO_FD_VISITED(pinfo)) continue;
        http_body b;
        parse_body(pinfo->pool, &h, &b);
        if (!m) {
            csmp_conv *c = get_conv(pinfo, TRUE);
            m = request ? http_request_first_pass(pinfo, c, &h, &b) : http_response_first_pass(pinfo, c, &h, &b);
            p_add_proto_data(wmem_file_scope(), pinfo, proto_csmp, key, m);
        }
        if (m->is_csmp) http_display(tree, pinfo, tvb, &h, &b, m);
    }
    return tvb_captured_length(tvb);
}

/* ---------------------------------------------------------------------------
 * Registration. */

void proto_register_csmp(void)
{
    static hf_register_info hf[] = {
        {&hf_type,
         {"Message type", "csmp.type", FT_STRING, BASE_NONE, NULL, 0x0,
          "The JSON \"type\", or the HTTP route (handshake, history, ...; _response for answers)", HFILL}},
        {&hf_path,
         {"Path", "csmp.path", FT_STRING, BASE_NONE, NULL, 0x0, "HTTP path, decoded, without the query", HFILL}},
        {&hf_status, {"HTTP status", "csmp.status", FT_UINT16, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_session_id, {"Session id", "csmp.session_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_client_id, {"Client id", "csmp.client_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_session_client,
         {"Session issued to", "csmp.session_client", FT_STRING, BASE_NONE, NULL, 0x0,
          "The client id of the handshake response that issued this session id", HFILL}},
        {&hf_issued_in,
         {"Session issued in", "csmp.issued_in", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "The handshake response that issued this session id", HFILL}},
        {&hf_identity,
         {"Session identity", "csmp.identity", FT_STRING, BASE_NONE, NULL, 0x0,
          "The identity the server gives the session: its client id, or the original's fallback sid[:8] for a "
          "session never issued in this capture",
          HFILL}},
        {&hf_channel, {"WebSocket channel", "csmp.channel", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_to_server, {"To the server", "csmp.to_server", FT_BOOLEAN, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_room, {"Room", "csmp.room", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_call_id, {"Call id", "csmp.call_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_from, {"From", "csmp.from", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_to, {"To", "csmp.to", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_message, {"Message", "csmp.message", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_timestamp, {"Timestamp", "csmp.timestamp", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_call_type, {"Call type", "csmp.call_type", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_protocol_version,
         {"Protocol version", "csmp.protocol_version", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_expires_in, {"Expires in (s)", "csmp.expires_in", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_detail, {"Detail", "csmp.detail", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_code, {"Code", "csmp.code", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_reason, {"Reason", "csmp.reason", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_user_id, {"User id", "csmp.user_id", FT_STRING, BASE_NONE, NULL, 0x0, NULL, HFILL}},
        {&hf_result, {"Result", "csmp.result", FT_STRING, BASE_NONE, NULL, 0x0, "The JSON \"status\"", HFILL}},
        {&hf_msg_id, {"Message number", "csmp.id", FT_UINT64, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_count, {"Count", "csmp.count", FT_UINT32, BASE_DEC, NULL, 0x0, NULL, HFILL}},
        {&hf_rows, {"Rows", "csmp.rows", FT_UINT32, BASE_DEC, NULL, 0x0, "Elements of a JSON array body", HFILL}},
        {&hf_raw_text,
         {"Raw text", "csmp.raw_text", FT_BOOLEAN, BASE_NONE, NULL, 0x0,
          "A chat message sent as plain text, not JSON (the original accepts it)", HFILL}},
        {&hf_request_in,
         {"Request in", "csmp.request_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_REQUEST), 0x0, NULL,
          HFILL}},
        {&hf_response_in,
         {"Response in", "csmp.response_in", FT_FRAMENUM, BASE_NONE, FRAMENUM_TYPE(FT_FRAMENUM_RESPONSE), 0x0,
          NULL, HFILL}},
        {&hf_caller, {"Caller", "csmp.caller", FT_STRING, BASE_NONE, NULL, 0x0, "The call's caller", HFILL}},
        {&hf_callee, {"Callee", "csmp.callee", FT_STRING, BASE_NONE, NULL, 0x0, "The call's callee", HFILL}},
    };
    static gint *ett[] = {&ett_csmp, &ett_row};
    static ei_register_info ei[] = {
        {&ei_two_identities,
         {"csmp.session_two_identities", PI_SECURITY, PI_WARN, "One session id used by two client identities",
          EXPFILL}},
        {&ei_never_issued,
         {"csmp.session_never_issued", PI_SECURITY, PI_WARN,
          "Session id never issued in this capture, yet accepted", EXPFILL}},
        {&ei_call_non_party,
         {"csmp.call_non_party", PI_SECURITY, PI_WARN, "Call event from an identity that is no party to the call",
          EXPFILL}},
        {&ei_room_non_member,
         {"csmp.room_non_member", PI_SECURITY, PI_WARN, "Room message from an identity the room does not admit",
          EXPFILL}},
        {&ei_malformed_json, {"csmp.malformed_json", PI_MALFORMED, PI_NOTE, "Malformed JSON", EXPFILL}},
    };

    proto_csmp = proto_register_protocol("Custom Secure Messaging Protocol", "CSMP", "csmp");
    proto_register_field_array(proto_csmp, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_csmp);
    expert_register_field_array(em, ei, array_length(ei));

    module_t *m = prefs_register_protocol(proto_csmp, NULL);
    prefs_register_uint_preference(m, "tcp.port", "CSMP server port",
                                   "HTTP requests to this port count as CSMP on any path (/, /health/, ...); "
                                   "elsewhere only CSMP's own paths or an x-session-id do",
                                   10, &pref_port);

    sessions = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    calls = wmem_map_new_autoreset(wmem_epan_scope(), wmem_file_scope(), g_str_hash, g_str_equal);
    register_init_routine(csmp_init);
    csmp_http_handle = create_dissector_handle(dissect_csmp_http, proto_csmp);
}

void proto_reg_handoff_csmp(void)
{
    heur_dissector_add("ws", dissect_csmp_ws, "CSMP over WebSocket", "csmp_ws", proto_csmp, HEURISTIC_ENABLE);

    proto_http_id = proto_get_id_by_filter_name("http");
    hf_http_method = proto_registrar_get_id_byname("http.request.method");
    hf_http_uri = proto_registrar_get_id_byname("http.request.uri");
    hf_http_code = proto_registrar_get_id_byname("http.response.code");
    hf_http_req_line = proto_registrar_get_id_byname("http.request.line");
    hf_http_resp_line = proto_registrar_get_id_byname("http.response.line");
    hf_http_file_data = proto_registrar_get_id_byname("http.file_data");
    GArray *wanted = g_array_new(FALSE, FALSE, (guint)sizeof(int));
    const int ids[] = {proto_http_id,    hf_http_method,    hf_http_uri,      hf_http_code,
                       hf_http_req_line, hf_http_resp_line, hf_http_file_data};
    for (guint i = 0; i < array_length(ids); i++)
        if (ids[i] > 0) g_array_append_val(wanted, ids[i]);
    register_postdissector(csmp_http_handle);
    set_postdissector_wanted_hfids(csmp_http_handle, wanted);
}
