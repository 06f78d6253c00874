#include <stdlib.h>
#include <string.h>

#include "telecare/util.h"

char *tc_sanitize(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (o + 1 >= outlen) {
			memcpy(out + outlen - 4, "...", 3);
			o = outlen - 1;
			break;
		}
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[o] = '\0';
	return out;
}

void tc_freep(void *p)
{
	free(*(void **)p);
}
