/*
 * textsafe.h — text that any user can put into the WAL (context messages,
 * logical messages under any prefix) made safe to store in PostgreSQL's text
 * and jsonb of a UTF-8 database, without ever failing: NUL bytes and bytes
 * that are not well-formed UTF-8 become U+FFFD, and a length bound cuts at a
 * character boundary. Pure functions; no I/O.
 */
#ifndef WALREV_COMMON_TEXTSAFE_H
#define WALREV_COMMON_TEXTSAFE_H

#include "common/common.h"

/* What text_sanitize changed (0: the copy is exact). */
#define TEXT_HAD_NUL 0x01     /* NUL bytes replaced */
#define TEXT_HAD_INVALID 0x02 /* ill-formed UTF-8 (incl. surrogates, overlongs) replaced */
#define TEXT_CUT 0x04         /* cut at max bytes */

/*
 * Append to out a copy of s[0..len) that PostgreSQL text accepts in a UTF-8
 * database: each NUL byte and each maximal ill-formed subsequence becomes
 * U+FFFD (3 bytes), and at most max bytes are appended, never half a
 * character. Returns the TEXT_* bits of what changed.
 */
unsigned text_sanitize(StrBuf *out, const char *s, size_t len, size_t max);

/* True when s[0..len) is stored exactly by text_sanitize with no bound. */
bool text_is_safe(const char *s, size_t len);

#endif
