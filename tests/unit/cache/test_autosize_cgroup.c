/* test_autosize_cgroup.c - cache_auto_sample_at() on made-up /proc and /sys/fs/cgroup
 * trees: a systemd unit's cgroup v2 limits (memory.high below memory.max, a parent
 * slice's limit, inactive page cache counted as free, the cgroup's own PSI), a cgroup
 * namespace ("0::/"), cgroup v1 (memory.limit_in_bytes of an ancestor), and no cgroup
 * limit at all (the machine's figures unchanged). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

static char root[64];

/* Writes @text to @root/@rel, making the directories on the way. */
static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *s = strchr(path + strlen(root) + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0755);
		*s = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/ffs-autosize.XXXXXX");
	if (!mkdtemp(root))
		return -1;
	put("proc/meminfo", "MemTotal:       25165824 kB\nMemFree:  1 kB\n"
			    "MemAvailable:   20971520 kB\n");
	put("proc/pressure/memory", "some avg10=0.50 avg60=0.10 avg300=0.00 total=1\n"
				    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_no_cgroup(void **state)
{
	struct cache_pressure p;

	(void)state;
	put("proc/self/cgroup", "0::/user.slice\n");
	put("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
	put("sys/fs/cgroup/user.slice/memory.max", "max\n");
	assert_int_equal(cache_auto_sample_at(root, &p), 0);
	assert_int_equal(p.total, 24 * GiB);
	assert_int_equal(p.avail, 20 * GiB);
	assert_true(p.have_psi);
	assert_true(p.some_avg10 > 0.49 && p.some_avg10 < 0.51);
	assert_int_equal(p.cg_limit, 0);
}

static void test_v2_unit(void **state)
{
	struct cache_pressure p;

	(void)state;
	put("proc/self/cgroup", "0::/system.slice/x.service\n");
	put("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
	put("sys/fs/cgroup/system.slice/memory.max", "8589934592\n");
	put("sys/fs/cgroup/system.slice/memory.current", "1073741824\n");
	put("sys/fs/cgroup/x/memory.max", "1\n"); /* not ours */
	put("sys/fs/cgroup/system.slice/x.service/memory.max", "max\n");
	put("sys/fs/cgroup/system.slice/x.service/memory.high", "1073741824\n");
	put("sys/fs/cgroup/system.slice/x.service/memory.current", "943718400\n"); /* 900M */
	put("sys/fs/cgroup/system.slice/x.service/memory.stat",
	    "anon 734003200\nfile 209715200\nactive_file 0\ninactive_file 209715200\n");
	put("sys/fs/cgroup/system.slice/x.service/memory.pressure",
	    "some avg10=25.00 avg60=3.00 avg300=1.00 total=5\n"
	    "full avg10=20.00 avg60=2.00 avg300=1.00 total=4\n");
	assert_int_equal(cache_auto_sample_at(root, &p), 0);
	assert_int_equal(p.cg_limit, GiB);
	assert_int_equal(p.total, GiB);
	assert_int_equal(p.avail, GiB - (900 - 200) * MiB);
	assert_true(p.some_avg10 > 24.9 && p.some_avg10 < 25.1);
	/* The policy sees pressure: the budget halves. */
	assert_int_equal(cache_auto_next(256 * MiB, 256 * MiB, &p), 128 * MiB);
	assert_int_equal(cache_auto_budget(&p), (GiB - 700 * MiB) / 4);
}

static void test_v2_namespace(void **state)
{
	struct cache_pressure p;

	(void)state;
	put("proc/self/cgroup", "0::/\n");
	put("sys/fs/cgroup/cgroup.controllers", "memory\n");
	put("sys/fs/cgroup/memory.max", "2147483648\n");
	put("sys/fs/cgroup/memory.current", "2061584302\n"); /* 96 % used */
	assert_int_equal(cache_auto_sample_at(root, &p), 0);
	assert_int_equal(p.total, 2 * GiB);
	assert_int_equal(p.avail, 2 * GiB - 2061584302);
	assert_true(p.avail < p.total / 20); /* low: the policy shrinks */
	assert_int_equal(cache_auto_next(64 * MiB, 64 * MiB, &p), 32 * MiB);
}

static void test_v1(void **state)
{
	struct cache_pressure p;

	(void)state;
	put("proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/a/b\n0::/\n");
	put("sys/fs/cgroup/unified/cgroup.procs", "");
	put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	put("sys/fs/cgroup/memory/a/memory.limit_in_bytes", "536870912\n");
	put("sys/fs/cgroup/memory/a/memory.usage_in_bytes", "314572800\n");
	put("sys/fs/cgroup/memory/a/memory.stat", "cache 1\ntotal_inactive_file 104857600\n");
	put("sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
	put("sys/fs/cgroup/memory/a/b/memory.usage_in_bytes", "104857600\n");
	assert_int_equal(cache_auto_sample_at(root, &p), 0);
	assert_int_equal(p.cg_limit, 512 * MiB);
	assert_int_equal(p.total, 512 * MiB);
	assert_int_equal(p.avail, (512 - 300 + 100) * MiB);
	assert_true(p.some_avg10 < 1.0); /* v1 has no per-cgroup PSI: the machine's */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_cgroup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v2_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
