/* remote_ref.c - reference files: the 112-byte stand-ins a remote store's local
 * view holds for its objects (format.h, FORMAT.md section 8).  A reference names
 * the object by its identity and carries a copy of its header, so that probing a
 * file (its logical size, ls -l) needs no network.  Every field is checked.
 */
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "util/log.h"

bool store_ref_is_ref(const uint8_t *buf, size_t n)
{
	return n >= 16 && fmt_get32(buf) == FMT_SKIPPABLE_MAGIC_REF &&
	       memcmp(buf + 8, FMT_REF_MAGIC, 8) == 0;
}

void store_ref_build(uint8_t out[FMT_REF_SIZE], const uint64_t id[2], uint64_t stored_size,
		     const uint8_t header[FMT_OBJ_HEADER_SIZE])
{
	memset(out, 0, FMT_REF_SIZE);
	fmt_put32(out, FMT_SKIPPABLE_MAGIC_REF);
	fmt_put32(out + 4, FMT_REF_SIZE - 8);
	memcpy(out + 8, FMT_REF_MAGIC, 8);
	fmt_put64(out + 16, stored_size);
	fmt_put64(out + 24, id[0]);
	fmt_put64(out + 32, id[1]);
	memcpy(out + 40, header, FMT_OBJ_HEADER_SIZE);
	fmt_put64(out + 104, XXH3_64bits(out, 104));
}

int store_ref_parse(const uint8_t *buf, size_t n, const char *logname, struct fmt_ref *ref,
		    struct fmt_object_header *h)
{
	int ret;

	if (n != FMT_REF_SIZE || !store_ref_is_ref(buf, n) ||
	    fmt_get32(buf + 4) != FMT_REF_SIZE - 8 || fmt_get64(buf + 104) != XXH3_64bits(buf, 104)) {
		log_error("%s: damaged reference file of a remote store (%zu bytes, bad size, "
			  "magic or checksum) - remount to rebuild the local view, or remove "
			  "the cache directory",
			  logname, n);
		return -EUCLEAN;
	}
	ref->frame_magic = fmt_get32(buf);
	ref->frame_size = fmt_get32(buf + 4);
	memcpy(ref->magic, buf + 8, 8);
	ref->stored_size = fmt_get64(buf + 16);
	ref->id[0] = fmt_get64(buf + 24);
	ref->id[1] = fmt_get64(buf + 32);
	memcpy(ref->header, buf + 40, FMT_OBJ_HEADER_SIZE);
	ref->checksum = fmt_get64(buf + 104);
	ret = store_header_check(ref->header, FMT_OBJ_HEADER_SIZE, ref->stored_size, logname, h);
	if (ret)
		return ret;
	/* The identity's second half is the header checksum (store_object_id()). */
	if (h->checksum != ref->id[1]) {
		log_error("%s: reference file names object %016" PRIx64 "%016" PRIx64
			  " but carries another object's header - remount to rebuild the view",
			  logname, ref->id[0], ref->id[1]);
		return -EUCLEAN;
	}
	return 0;
}

void store_id_hex(const uint64_t id[2], char hex[FMT_ID_HEX + 1])
{
	snprintf(hex, FMT_ID_HEX + 1, "%016" PRIx64 "%016" PRIx64, id[0], id[1]);
}
