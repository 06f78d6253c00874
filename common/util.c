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

size_t tc_utf8_trim(char *s, size_t len)
{
	/* Walk back over continuation bytes to the last lead byte; drop it and
	 * its tail if the sequence it starts is not complete. */
	size_t i = len, cont = 0;
	while (i > 0 && cont < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0 || cont >= 4)
		return len;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
	if (lead < 0x80 || need == cont)
		return len;
	s[i - 1] = '\0';
	return i - 1;
}
