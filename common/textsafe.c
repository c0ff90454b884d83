/*
 * textsafe.c — see textsafe.h. The UTF-8 check follows Unicode's table of
 * well-formed byte sequences (3-7), which is what PostgreSQL's
 * pg_utf8_islegal accepts: no overlongs, no surrogates, nothing above U+10FFFF.
 */
#include "common/textsafe.h"

/* Length of the well-formed UTF-8 character at s (1..4), or 0 if ill-formed. */
static size_t utf8_char_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80) return c ? 1 : 0;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

unsigned text_sanitize(StrBuf *out, const char *s, size_t len, size_t max)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)s;
    unsigned changed = 0;
    size_t written = 0, i = 0, run = 0; /* run: start of the pending exact bytes */
    strbuf_reserve(out, len < max ? len : max);
    while (i < len) {
        size_t n = utf8_char_len(p + i, len - i);
        size_t add = n ? n : 3;
        if (written + add > max) {
            changed |= TEXT_CUT;
            break;
        }
        if (n) {
            i += n;
        } else {
            strbuf_append(out, s + run, i - run);
            strbuf_append(out, replacement, 3);
            changed |= p[i] == 0 ? TEXT_HAD_NUL : TEXT_HAD_INVALID;
            i++;
            run = i;
        }
        written += add;
    }
    strbuf_append(out, s + run, i - run);
    return changed;
}

bool text_is_safe(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_char_len(p + i, len - i);
        if (!n) return false;
        i += n;
    }
    return true;
}
