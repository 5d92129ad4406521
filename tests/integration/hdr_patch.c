/* hdr_patch.c - changes a field of a 64-byte faissfs header in place and makes its
 * checksum right again, so tests can build a well-formed superblock or object header
 * that says something new (a newer major version, an unknown feature bit).
 *
 * Both the superblock and the object header (store/format.h) end with the XXH3-64 of
 * their bytes 0..55 at offset 56; this tool writes VALUE (little-endian, WIDTH bytes)
 * at OFFSET of FILE's first 64 bytes, then recomputes that checksum.
 *
 * usage: hdr_patch FILE OFFSET WIDTH VALUE     WIDTH 1, 2, 4 or 8; OFFSET + WIDTH <= 56
 * Exit status 0 on success, 1 on I/O errors, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "store/format.h"

int main(int argc, char *argv[])
{
	uint8_t hdr[64];
	unsigned long off, width;
	unsigned long long value;
	int fd, rc = 1;

	if (argc != 5)
		goto usage;
	off = strtoul(argv[2], NULL, 0);
	width = strtoul(argv[3], NULL, 0);
	value = strtoull(argv[4], NULL, 0);
	if ((width != 1 && width != 2 && width != 4 && width != 8) || off + width > 56)
		goto usage;

	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "hdr_patch: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr)) {
		fprintf(stderr, "hdr_patch: %s is shorter than 64 bytes\n", argv[1]);
		goto out;
	}
	if (fmt_get64(hdr + 56) != XXH3_64bits(hdr, 56))
		fprintf(stderr, "hdr_patch: note: %s had a bad checksum already\n", argv[1]);
	switch (width) {
	case 1:
		hdr[off] = (uint8_t)value;
		break;
	case 2:
		fmt_put16(hdr + off, (uint16_t)value);
		break;
	case 4:
		fmt_put32(hdr + off, (uint32_t)value);
		break;
	default:
		fmt_put64(hdr + off, value);
		break;
	}
	fmt_put64(hdr + 56, XXH3_64bits(hdr, 56));
	if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fsync(fd)) {
		fprintf(stderr, "hdr_patch: cannot write %s: %s\n", argv[1], strerror(errno));
		goto out;
	}
	printf("hdr_patch: %s: %lu bytes at offset %lu = %llu, checksum fixed\n", argv[1], width,
	       off, value);
	rc = 0;
out:
	close(fd);
	return rc;
usage:
	fprintf(stderr, "usage: hdr_patch FILE OFFSET WIDTH VALUE  (WIDTH 1/2/4/8, OFFSET+WIDTH "
			"<= 56)\n");
	return 2;
}
