/*
 * libcrc: a plain C library (no Python in it), built as the shared library
 * libcrc.so that the `checksum` extension module needs by name. It stands
 * for the bundled native libraries real packages ship next to their
 * extension modules.
 */
#include <stddef.h>
#include <stdint.h>

static uint32_t table[256];
static int ready;

static void init_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    ready = 1;
}

/* CRC-32 (IEEE 802.3, as zlib and binascii compute it), continued from `crc`. */
uint32_t crc_update(uint32_t crc, const unsigned char *data, size_t len) {
    if (!ready) init_table();
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
