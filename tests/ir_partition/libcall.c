// Calls into a shared library that the JIT process does not link
// (libbz2): `orc run -l bz2` must load it.
#include <bzlib.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  char text[] = "orc orc orc orc orc orc orc orc orc orc orc orc orc orc orc";
  char packed[256], unpacked[256];
  unsigned packed_len = sizeof packed, unpacked_len = sizeof unpacked;
  int rc = BZ2_bzBuffToBuffCompress(packed, &packed_len, text, sizeof text, 9, 0, 0);
  rc |= BZ2_bzBuffToBuffDecompress(unpacked, &unpacked_len, packed, packed_len, 0, 0);
  printf("round trip: %s, %u bytes back\n", rc == 0 && !memcmp(text, unpacked, sizeof text) ? "ok" : "broken", unpacked_len);
  return (int)unpacked_len;
}
