/* manifest.c - the manifest of a remote store: its whole tree in one MessagePack
 * document (format.h, FORMAT.md section 8), written last by `faissfs push` so a
 * reader sees one published version or the next, never a mix.  Decoding checks
 * every field, every path (relative, no "." or "..", not under .faissfs) and that
 * each entry's parent directory came before it.
 */
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/log.h"

#define MANIFEST_FIELDS 8

void store_manifest_release(struct store_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i].path);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

int store_manifest_add(struct store_manifest *m, const struct store_manifest_entry *e)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct store_manifest_entry *ne = realloc(m->e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		m->e = ne;
		m->cap = cap;
	}
	m->e[m->n] = *e;
	m->e[m->n].path = strdup(e->path);
	if (!m->e[m->n].path)
		return -ENOMEM;
	m->n++;
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

int store_manifest_encode(const struct store_manifest *m, uint8_t **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char hex[FMT_ID_HEX + 1];

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	pack_str(&pk, "format");
	msgpack_pack_uint32(&pk, FMT_MANIFEST_VERSION);
	pack_str(&pk, "gen");
	msgpack_pack_uint64(&pk, m->gen);
	pack_str(&pk, "created");
	msgpack_pack_uint64(&pk, m->created);
	pack_str(&pk, "entries");
	msgpack_pack_array(&pk, m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct store_manifest_entry *e = &m->e[i];

		msgpack_pack_array(&pk, MANIFEST_FIELDS);
		pack_str(&pk, e->path);
		msgpack_pack_uint32(&pk, e->mode);
		msgpack_pack_int64(&pk, e->mtime_sec);
		msgpack_pack_uint32(&pk, e->mtime_nsec);
		msgpack_pack_uint64(&pk, e->size);
		msgpack_pack_uint64(&pk, e->stored);
		if (e->dir) {
			msgpack_pack_nil(&pk);
			msgpack_pack_nil(&pk);
		} else {
			store_id_hex(e->id, hex);
			pack_str(&pk, hex);
			msgpack_pack_bin(&pk, FMT_OBJ_HEADER_SIZE);
			msgpack_pack_bin_body(&pk, e->header, FMT_OBJ_HEADER_SIZE);
		}
	}
	/* The packer ignores sbuffer's allocation failures: a NULL or short buffer
	 * tells them. */
	if (!sb.data) {
		msgpack_sbuffer_destroy(&sb);
		return -ENOMEM;
	}
	*out = (uint8_t *)sb.data;
	*len = sb.size;
	return 0;
}

static bool key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

static bool as_uint(const msgpack_object *v, uint64_t max, uint64_t *out)
{
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > max)
		return false;
	*out = v->via.u64;
	return true;
}

static bool as_int(const msgpack_object *v, int64_t *out)
{
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= (uint64_t)INT64_MAX)
		*out = (int64_t)v->via.u64;
	else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*out = v->via.i64;
	else
		return false;
	return true;
}

static bool parse_hex(const msgpack_object *v, uint64_t id[2])
{
	char buf[17];

	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size != FMT_ID_HEX)
		return false;
	for (unsigned half = 0; half < 2; half++) {
		char *end;

		memcpy(buf, v->via.str.ptr + 16 * half, 16);
		buf[16] = '\0';
		if (strspn(buf, "0123456789abcdef") != 16)
			return false;
		id[half] = strtoull(buf, &end, 16);
	}
	return true;
}

/* True if the directory holding @path is the root or an earlier directory entry:
 * entries come parents first, so the previous entries' paths are searched. */
static bool parent_known(const struct store_manifest *m, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	if (!slash)
		return true;
	len = (size_t)(slash - path);
	for (size_t i = m->n; i-- > 0;)
		if (m->e[i].dir && strlen(m->e[i].path) == len && !memcmp(m->e[i].path, path, len))
			return true;
	return false;
}

/* Decodes entry @v into @e (e->path points into a local buffer copied by
 * store_manifest_add()).  Returns NULL or what is wrong. */
static const char *decode_entry(const msgpack_object *v, struct store_manifest_entry *e,
				char *path)
{
	const msgpack_object *f;
	uint64_t u;

	if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < MANIFEST_FIELDS)
		return "an entry is not an array of 8 fields";
	f = v->via.array.ptr;
	memset(e, 0, sizeof(*e));
	if (f[0].type != MSGPACK_OBJECT_STR || f[0].via.str.size == 0 ||
	    f[0].via.str.size >= PATH_MAX || memchr(f[0].via.str.ptr, '\0', f[0].via.str.size))
		return "an entry's path is not a string";
	memcpy(path, f[0].via.str.ptr, f[0].via.str.size);
	path[f[0].via.str.size] = '\0';
	if (!store_access_path_ok(path))
		return "an entry's path is not a plain relative path";
	e->path = path;
	if (!as_uint(&f[1], UINT32_MAX, &u))
		return "bad mode";
	e->mode = (uint32_t)u;
	if (!as_int(&f[2], &e->mtime_sec) || !as_uint(&f[3], 999999999, &u))
		return "bad mtime";
	e->mtime_nsec = (uint32_t)u;
	if (!as_uint(&f[4], UINT64_MAX, &e->size) || !as_uint(&f[5], UINT64_MAX, &e->stored))
		return "bad size";
	if (S_ISDIR(e->mode)) {
		e->dir = true;
		return f[6].type == MSGPACK_OBJECT_NIL ? NULL : "a directory with an object";
	}
	if (!S_ISREG(e->mode))
		return "an entry is neither a directory nor a regular file";
	if (!parse_hex(&f[6], e->id))
		return "bad object identity";
	if (f[7].type != MSGPACK_OBJECT_BIN || f[7].via.bin.size != FMT_OBJ_HEADER_SIZE)
		return "bad object header";
	memcpy(e->header, f[7].via.bin.ptr, FMT_OBJ_HEADER_SIZE);
	return NULL;
}

int store_manifest_decode(const uint8_t *buf, size_t len, const char *logname,
			  struct store_manifest *out)
{
	struct store_manifest m = { 0 };
	msgpack_unpacked u;
	const msgpack_object *entries = NULL;
	const char *bad = NULL;
	char *path = NULL;
	uint64_t fmt = 0;
	size_t off = 0;
	int ret = -EUCLEAN;

	msgpack_unpacked_init(&u);
	if (!store_mp_well_formed(buf, len) ||
	    msgpack_unpack_next(&u, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
	    off != len || u.data.type != MSGPACK_OBJECT_MAP) {
		bad = "not one MessagePack map";
		goto out;
	}
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object *k = &u.data.via.map.ptr[i].key;
		const msgpack_object *v = &u.data.via.map.ptr[i].val;

		if (key_is(k, "format") && !as_uint(v, UINT32_MAX, &fmt))
			bad = "bad format";
		else if (key_is(k, "gen") && !as_uint(v, UINT64_MAX, &m.gen))
			bad = "bad gen";
		else if (key_is(k, "created") && !as_uint(v, UINT64_MAX, &m.created))
			bad = "bad created";
		else if (key_is(k, "entries"))
			entries = v;
	}
	if (bad)
		goto out;
	if (fmt > FMT_MANIFEST_VERSION) {
		log_error("%s: manifest format %" PRIu64 " is newer than this faissfs supports (%u): "
			  "upgrade faissfs",
			  logname, fmt, FMT_MANIFEST_VERSION);
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	if (fmt == 0 || !entries || entries->type != MSGPACK_OBJECT_ARRAY) {
		bad = "no format or entries";
		goto out;
	}
	path = malloc(PATH_MAX);
	if (!path) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < entries->via.array.size; i++) {
		struct store_manifest_entry e;

		bad = decode_entry(&entries->via.array.ptr[i], &e, path);
		if (!bad && !parent_known(&m, e.path))
			bad = "an entry comes before its directory";
		if (bad)
			goto out;
		ret = store_manifest_add(&m, &e);
		if (ret)
			goto out;
	}
	ret = 0;
	*out = m;
	memset(&m, 0, sizeof(m));
out:
	if (bad) {
		log_error("%s: the manifest is damaged (%s) - push the store again", logname, bad);
		ret = -EUCLEAN;
	}
	free(path);
	store_manifest_release(&m);
	msgpack_unpacked_destroy(&u);
	return ret;
}
