/* random_reads.c - compares random ranges of a file (COPY, typically on a faissfs
 * mount) with the same ranges of its source, read with pread(2) AND through a
 * MAP_SHARED, PROT_READ mapping of COPY.  No FAISS.
 *
 * Ranges are drawn with a fixed seed: offsets uniform, on chunk edges (+-16 bytes),
 * near EOF and past EOF; lengths from 1 byte to 4 chunks (capped at 8 MiB).  Every
 * 32 reads the copy's pages are dropped (madvise + fadvise DONTNEED) and the order
 * alternates, so both the read path and the page-fault path reach the filesystem.
 *
 * usage: random_reads [-n READS] [-s SEED] [-c CHUNK_SIZE] SOURCE COPY
 * Exit status 0 if every byte matched, 1 on the first mismatch or error (with the
 * offset and length on stderr), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN_CAP (8u << 20)

static uint64_t rng_state;

/* splitmix64: small, good enough, the same on every machine. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* pread until @len bytes or EOF.  Returns bytes read or -errno. */
static ssize_t pread_full(int fd, uint8_t *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int main(int argc, char *argv[])
{
	unsigned long nreads = 3000, chunk = 256 * 1024;
	unsigned long long seed = 42, bytes = 0, edges = 0, past_eof = 0;
	int sfd = -1, cfd = -1, opt, rc = 1;
	uint8_t *want = NULL, *got = NULL;
	const uint8_t *map = MAP_FAILED;
	struct stat sst, cst;
	uint64_t size;

	while ((opt = getopt(argc, argv, "n:s:c:")) != -1) {
		switch (opt) {
		case 'n':
			nreads = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			chunk = strtoul(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2 || chunk == 0)
		goto usage;
	rng_state = seed;

	sfd = open(argv[optind], O_RDONLY);
	cfd = open(argv[optind + 1], O_RDONLY);
	if (sfd < 0 || cfd < 0) {
		fprintf(stderr, "random_reads: cannot open %s: %s\n",
			argv[optind + (sfd < 0 ? 0 : 1)], strerror(errno));
		goto out;
	}
	if (fstat(sfd, &sst) || fstat(cfd, &cst)) {
		fprintf(stderr, "random_reads: fstat: %s\n", strerror(errno));
		goto out;
	}
	if (sst.st_size != cst.st_size) {
		fprintf(stderr, "random_reads: size %lld, source has %lld\n",
			(long long)cst.st_size, (long long)sst.st_size);
		goto out;
	}
	size = (uint64_t)sst.st_size;
	if (size) {
		map = mmap(NULL, size, PROT_READ, MAP_SHARED, cfd, 0);
		if (map == MAP_FAILED) {
			fprintf(stderr, "random_reads: mmap of %s: %s\n", argv[optind + 1],
				strerror(errno));
			goto out;
		}
	}
	want = malloc(LEN_CAP);
	got = malloc(LEN_CAP);
	if (!want || !got) {
		fprintf(stderr, "random_reads: out of memory\n");
		goto out;
	}

	for (unsigned long i = 0; i < nreads; i++) {
		uint64_t off, len, maxlen = 4 * (uint64_t)chunk;
		unsigned pick = (unsigned)rnd_below(100);
		ssize_t ns, nc;

		if (maxlen > LEN_CAP)
			maxlen = LEN_CAP;
		if (pick < 50) {
			off = rnd_below(size + 1);
		} else if (pick < 80) { /* across a chunk edge */
			uint64_t edge = rnd_below(size / chunk + 1) * chunk;
			int64_t delta = (int64_t)rnd_below(33) - 16;

			off = (int64_t)edge + delta < 0 ? 0 : (uint64_t)((int64_t)edge + delta);
			edges++;
		} else if (pick < 95) { /* near EOF */
			off = size - rnd_below(size < 2 * chunk ? size + 1 : 2 * chunk + 1);
		} else { /* past EOF */
			off = size + rnd_below(chunk);
			past_eof++;
		}
		switch (rnd_below(4)) {
		case 0:
			len = 1;
			break;
		case 1:
			len = 1 + rnd_below(512);
			break;
		case 2:
			len = 1 + rnd_below(chunk < maxlen ? chunk : maxlen);
			break;
		default:
			len = 1 + rnd_below(maxlen);
			break;
		}

		if (i % 32 == 0 && size) {
			madvise((void *)map, size, MADV_DONTNEED);
			posix_fadvise(cfd, 0, 0, POSIX_FADV_DONTNEED);
		}
		ns = pread_full(sfd, want, len, (off_t)off);
		if (ns > 0 && i % 2 && memcmp(map + off, want, (size_t)ns)) {
			fprintf(stderr, "random_reads: read %lu: mmap bytes [%llu, +%zd) differ\n",
				i, (unsigned long long)off, ns);
			goto out;
		}
		nc = pread_full(cfd, got, len, (off_t)off);
		if (ns < 0 || nc < 0) {
			fprintf(stderr, "random_reads: read %lu: pread(off %llu, len %llu): %s\n",
				i, (unsigned long long)off, (unsigned long long)len,
				strerror((int)-(ns < 0 ? ns : nc)));
			goto out;
		}
		if (nc != ns || memcmp(want, got, (size_t)ns)) {
			size_t at = 0;

			while (at < (size_t)(nc < ns ? nc : ns) && want[at] == got[at])
				at++;
			fprintf(stderr,
				"random_reads: read %lu: pread(off %llu, len %llu) returned %zd "
				"bytes "
				"(source %zd), first difference at file offset %llu\n",
				i, (unsigned long long)off, (unsigned long long)len, nc, ns,
				(unsigned long long)(off + at));
			goto out;
		}
		if (ns > 0 && !(i % 2) && memcmp(map + off, want, (size_t)ns)) {
			fprintf(stderr, "random_reads: read %lu: mmap bytes [%llu, +%zd) differ\n",
				i, (unsigned long long)off, ns);
			goto out;
		}
		bytes += (unsigned long long)ns;
	}
	printf("random_reads: ok %lu preads and mmap reads of %s (%llu bytes, %llu at chunk "
	       "edges, %llu past EOF, chunk %lu, file %llu bytes)\n",
	       nreads, argv[optind + 1], bytes, edges, past_eof, chunk, (unsigned long long)size);
	rc = 0;
out:
	if (map != MAP_FAILED)
		munmap((void *)map, size);
	free(want);
	free(got);
	if (sfd >= 0)
		close(sfd);
	if (cfd >= 0)
		close(cfd);
	return rc;
usage:
	fprintf(stderr, "usage: random_reads [-n READS] [-s SEED] [-c CHUNK_SIZE] SOURCE COPY\n");
	return 2;
}
