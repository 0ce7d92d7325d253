/* The dissectors' JSON parser: see msglab_json.h. */
#include "msglab_json.h"

#include <string.h>

typedef struct {
    const guint8 *d;
    guint n, pos, values;
    wmem_allocator_t *pool;
    const char *error;
} jparser;

static gboolean json_fail(jparser *p, const char *why)
{
    if (!p->error)
        p->error = wmem_strdup_printf(p->pool, "%s at byte %u", why, p->pos);
    return FALSE;
}

static void json_ws(jparser *p)
{
    while (p->pos < p->n) {
        guint8 c = p->d[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex_value(guint8 c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p->pos. */
static gboolean json_hex4(jparser *p, gunichar *out)
{
    if (p->n - p->pos < 4) return FALSE;
    gunichar v = 0;
    for (guint i = 0; i < 4; i++) {
        int h = hex_value(p->d[p->pos + i]);
        if (h < 0) return FALSE;
        v = (v << 4) | (gunichar)h;
    }
    p->pos += 4;
    *out = v;
    return TRUE;
}

/* A string at the opening quote: decoded. Lone surrogates and \u0000 become
 * U+FFFD (Python keeps them; a display cannot). */
static const char *json_string(jparser *p)
{
    wmem_strbuf_t *out = wmem_strbuf_new(p->pool, "");
    p->pos++;
    while (p->pos < p->n) {
        guint8 c = p->d[p->pos];
        if (c == '"') {
            p->pos++;
            return wmem_strbuf_get_str(out);
        }
        if (c < 0x20) {
            json_fail(p, "control character in a string");
            return NULL;
        }
        if (c != '\\') {
            wmem_strbuf_append_c(out, (gchar)c);
            p->pos++;
            continue;
        }
        if (p->pos + 1 >= p->n) break;
        c = p->d[p->pos + 1];
        p->pos += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            wmem_strbuf_append_c(out, (gchar)c);
            break;
        case 'b':
            wmem_strbuf_append_c(out, '\b');
            break;
        case 'f':
            wmem_strbuf_append_c(out, '\f');
            break;
        case 'n':
            wmem_strbuf_append_c(out, '\n');
            break;
        case 'r':
            wmem_strbuf_append_c(out, '\r');
            break;
        case 't':
            wmem_strbuf_append_c(out, '\t');
            break;
        case 'u': {
            gunichar u;
            if (!json_hex4(p, &u)) {
                json_fail(p, "bad \\u escape");
                return NULL;
            }
            if (u >= 0xD800 && u <= 0xDBFF) {
                guint saved = p->pos;
                gunichar lo;
                if (p->n - p->pos >= 6 && p->d[p->pos] == '\\' && p->d[p->pos + 1] == 'u') {
                    p->pos += 2;
                    if (json_hex4(p, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    } else {
                        p->pos = saved;
                        u = 0xFFFD;
                    }
                } else {
                    u = 0xFFFD;
                }
            } else if ((u >= 0xDC00 && u <= 0xDFFF) || u == 0) {
                u = 0xFFFD;
            }
            wmem_strbuf_append_unichar(out, u);
            break;
        }
        default:
            p->pos -= 1;
            json_fail(p, "bad escape");
            return NULL;
        }
    }
    json_fail(p, "unterminated string");
    return NULL;
}

static gboolean json_digits(jparser *p)
{
    guint start = p->pos;
    while (p->pos < p->n && p->d[p->pos] >= '0' && p->d[p->pos] <= '9') p->pos++;
    return p->pos > start;
}

static gboolean json_literal(jparser *p, const char *lit, guint len)
{
    if (p->n - p->pos < len || memcmp(p->d + p->pos, lit, len) != 0) return FALSE;
    p->pos += len;
    return TRUE;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, or NaN, Infinity, -Infinity. */
static gboolean json_number(jparser *p)
{
    if (p->d[p->pos] == '-') p->pos++;
    if (json_literal(p, "Infinity", 8)) return TRUE;
    if (p->pos >= p->n) return json_fail(p, "bad number");
    if (p->d[p->pos] == '0') {
        p->pos++;
    } else if (!json_digits(p)) {
        return json_fail(p, "bad number");
    }
    if (p->pos < p->n && p->d[p->pos] == '.') {
        p->pos++;
        if (!json_digits(p)) return json_fail(p, "bad fraction");
    }
    if (p->pos < p->n && (p->d[p->pos] == 'e' || p->d[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->n && (p->d[p->pos] == '+' || p->d[p->pos] == '-')) p->pos++;
        if (!json_digits(p)) return json_fail(p, "bad exponent");
    }
    return TRUE;
}

static jv *json_value(jparser *p, guint depth);

static void json_append(jv *parent, jv *child)
{
    if (parent->last)
        parent->last->next = child;
    else
        parent->child = child;
    parent->last = child;
    parent->count++;
}

static jv *json_container(jparser *p, jv *v, guint depth)
{
    gboolean object = v->type == JV_OBJECT;
    guint8 close = object ? '}' : ']';
    p->pos++;
    json_ws(p);
    if (p->pos < p->n && p->d[p->pos] == close) {
        p->pos++;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        if (object) {
            json_ws(p);
            if (p->pos >= p->n || p->d[p->pos] != '"') {
                json_fail(p, "expected a member name");
                return NULL;
            }
            key = json_string(p);
            if (!key) return NULL;
            json_ws(p);
            if (p->pos >= p->n || p->d[p->pos] != ':') {
                json_fail(p, "expected ':'");
                return NULL;
            }
            p->pos++;
        }
        jv *child = json_value(p, depth + 1);
        if (!child) return NULL;
        child->key = key;
        json_append(v, child);
        json_ws(p);
        if (p->pos >= p->n) {
            json_fail(p, object ? "unterminated object" : "unterminated array");
            return NULL;
        }
        if (p->d[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->d[p->pos] == close) {
            p->pos++;
            return v;
        }
        json_fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return NULL;
    }
}

static jv *json_value(jparser *p, guint depth)
{
    json_ws(p);
    if (p->pos >= p->n) {
        json_fail(p, "expected a value");
        return NULL;
    }
    if (depth > JSON_MAX_DEPTH) {
        json_fail(p, "nested too deeply");
        return NULL;
    }
    if (++p->values > JSON_MAX_VALUES) {
        json_fail(p, "too many values");
        return NULL;
    }
    jv *v = wmem_new0(p->pool, jv);
    v->start = p->pos;
    guint8 c = p->d[p->pos];
    gboolean ok = TRUE;
    switch (c) {
    case '{':
        v->type = JV_OBJECT;
        ok = json_container(p, v, depth) != NULL;
        break;
    case '[':
        v->type = JV_ARRAY;
        ok = json_container(p, v, depth) != NULL;
        break;
    case '"':
        v->type = JV_STRING;
        v->str = json_string(p);
        ok = v->str != NULL;
        break;
    case 't':
        v->type = JV_TRUE;
        ok = json_literal(p, "true", 4) || json_fail(p, "bad literal");
        break;
    case 'f':
        v->type = JV_FALSE;
        ok = json_literal(p, "false", 5) || json_fail(p, "bad literal");
        break;
    case 'n':
        v->type = JV_NULL;
        ok = json_literal(p, "null", 4) || json_fail(p, "bad literal");
        break;
    case 'N':
        v->type = JV_NUMBER;
        ok = json_literal(p, "NaN", 3) || json_fail(p, "bad literal");
        break;
    default:
        v->type = JV_NUMBER;
        ok = ((c >= '0' && c <= '9') || c == '-' || c == 'I') ? json_number(p) : json_fail(p, "unexpected character");
        break;
    }
    if (!ok) return NULL;
    v->end = p->pos;
    return v;
}

/* The JSON text d[0..n), or NULL with *error set. */
jv *json_parse_text(wmem_allocator_t *pool, const guint8 *d, guint n, guint max_len, const char **error)
{
    *error = NULL;
    if (n == 0) {
        *error = "empty";
        return NULL;
    }
    if (n > max_len) {
        *error = wmem_strdup_printf(pool, "%u bytes, over the %u this dissector parses", n, max_len);
        return NULL;
    }
    if (!g_utf8_validate((const gchar *)d, (gssize)n, NULL)) {
        *error = "not UTF-8 text";
        return NULL;
    }
    jparser p = {d, n, 0, 0, pool, NULL};
    jv *root = json_value(&p, 0);
    if (root) {
        json_ws(&p);
        if (p.pos != p.n) {
            json_fail(&p, "data after the value");
            root = NULL;
        }
    }
    if (!root) *error = p.error ? p.error : "not JSON";
    return root;
}

/* The member named `key`; the last of several, as Python's json keeps. */
const jv *jv_member(const jv *obj, const char *key)
{
    const jv *found = NULL;
    if (!obj || obj->type != JV_OBJECT) return NULL;
    for (const jv *m = obj->child; m; m = m->next)
        if (strcmp(m->key, key) == 0) found = m;
    return found;
}

const char *jv_string(const jv *obj, const char *key)
{
    const jv *m = jv_member(obj, key);
    return m && m->type == JV_STRING ? m->str : NULL;
}

/* A JSON number that is a non-negative integer up to `max`. */
gboolean jv_uint(const guint8 *d, const jv *m, guint64 max, guint64 *out)
{
    if (!m || m->type != JV_NUMBER || m->end - m->start > 20) return FALSE;
    guint64 v = 0;
    for (guint i = m->start; i < m->end; i++) {
        if (d[i] < '0' || d[i] > '9') return FALSE;
        guint digit = d[i] - '0';
        if (v > (max - digit) / 10) return FALSE;
        v = v * 10 + digit;
    }
    *out = v;
    return TRUE;
}
