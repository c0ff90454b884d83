/* copyread.c — see copyread.h. */
#include "schema/copyread.h"

#include <string.h>

#include "common/common.h"

#define COPYREAD_SIGNATURE "PGCOPY\n\377\r\n\0"
#define COPYREAD_FIXED 19 /* signature, flags, extension length */

int copyread_header(const unsigned char *p, size_t avail, size_t *len)
{
    if (avail < COPYREAD_FIXED) return 0;
    if (memcmp(p, COPYREAD_SIGNATURE, 11) != 0) return -1;
    size_t whole = COPYREAD_FIXED + (size_t)wr_read_u32(p + 15);
    if (avail < whole) return 0;
    *len = whole;
    return 1;
}

int copyread_field_count(const unsigned char *p) { return (int16_t)((p[0] << 8) | p[1]); }

size_t copyread_tuple(const unsigned char *p, size_t avail, int nf, const unsigned char **f, int32_t *fl)
{
    size_t off = 2;
    for (int i = 0; i < nf; i++) {
        if (avail < off + 4) return 0;
        fl[i] = (int32_t)wr_read_u32(p + off);
        off += 4;
        f[i] = p + off;
        if (fl[i] > 0) {
            if (avail < off + (size_t)fl[i]) return 0;
            off += (size_t)fl[i];
        }
    }
    return off;
}
