/* A strict JSON parser for the dissectors (RFC 8259, plus Python's NaN and
 * Infinity, which the originals' json.loads accepts) that keeps every value's
 * byte range for the tree, bounded in depth (JSON_MAX_DEPTH) and in values
 * (JSON_MAX_VALUES), allocating from a wmem pool. Shared by the CSMP and
 * SP-SimpleChat dissectors. */
#ifndef MSGLAB_JSON_H
#define MSGLAB_JSON_H

#include <wireshark.h>

#define JSON_MAX_DEPTH 64
#define JSON_MAX_VALUES 16384

enum { JV_OBJECT = 1, JV_ARRAY, JV_STRING, JV_NUMBER, JV_TRUE, JV_FALSE, JV_NULL };

typedef struct jv {
    guint8 type;
    guint start, end;         /* the value's bytes */
    const char *key;          /* decoded, for an object member */
    const char *str;          /* decoded, for a string */
    guint count;              /* members or elements */
    struct jv *child, *last;  /* members or elements in order */
    struct jv *next;
} jv;

/* The JSON text d[0..n), UTF-8, at most `max_len` bytes; NULL with *error set
 * (allocated from `pool`, or static) when it is not. */
jv *json_parse_text(wmem_allocator_t *pool, const guint8 *d, guint n, guint max_len, const char **error);
/* The member named `key`; the last of several, as Python's json keeps. */
const jv *jv_member(const jv *obj, const char *key);
/* The string member named `key`, decoded; NULL when absent or not a string. */
const char *jv_string(const jv *obj, const char *key);
/* A JSON number that is a non-negative integer up to `max` (its bytes in d). */
gboolean jv_uint(const guint8 *d, const jv *m, guint64 max, guint64 *out);

#endif
