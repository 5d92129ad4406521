/* creds.c - S3 credentials: an AWS credentials file (section [default], else the
 * first one; keys aws_access_key_id and aws_secret_access_key), or the AWS_
 * environment variables.  Never logs a secret, only where it looked.
 */
#include "remote.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int load_file(const char *path, char **ak, char **sk)
{
	char line[1024], sect[128] = "", *cur_ak = NULL, *cur_sk = NULL;
	char *first_ak = NULL, *first_sk = NULL;
	bool in_default = false, first_done = false, any_section = false;
	unsigned lineno = 0;
	int ret = 0;
	FILE *f = fopen(path, "re");

	if (!f) {
		ret = -errno;
		log_error("cannot read the credentials file %s: %s", path, strerror(errno));
		return ret;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq, *k, *v, **slot = NULL;

		lineno++;
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');

			if (!e) {
				log_error("%s line %u: a section header without ']' - write "
					  "[default]",
					  path, lineno);
				ret = -EINVAL;
				goto out;
			}
			if (any_section && !first_done) {
				first_done = true;
			}
			*e = '\0';
			snprintf(sect, sizeof(sect), "%s", trim(l + 1));
			in_default = !strcmp(sect, "default");
			any_section = true;
			continue;
		}
		eq = strchr(l, '=');
		if (!eq) {
			log_error("%s line %u: expected 'key = value' - see the AWS credentials "
				  "file format",
				  path, lineno);
			ret = -EINVAL;
			goto out;
		}
		*eq = '\0';
		k = trim(l);
		v = trim(eq + 1);
		if (!strcmp(k, "aws_access_key_id"))
			slot = in_default ? &cur_ak : (!first_done ? &first_ak : NULL);
		else if (!strcmp(k, "aws_secret_access_key"))
			slot = in_default ? &cur_sk : (!first_done ? &first_sk : NULL);
		if (slot && !*slot) {
			*slot = strdup(v);
			if (!*slot) {
				ret = -ENOMEM;
				goto out;
			}
		}
	}
	if (!(cur_ak && cur_sk)) {
		free(cur_ak);
		free(cur_sk);
		cur_ak = first_ak;
		cur_sk = first_sk;
		first_ak = first_sk = NULL;
	}
	if (!cur_ak || !cur_sk) {
		log_error("%s: no aws_access_key_id and aws_secret_access_key in [default] or "
			  "the first section",
			  path);
		ret = -EINVAL;
		goto out;
	}
	*ak = cur_ak;
	*sk = cur_sk;
	cur_ak = cur_sk = NULL;
out:
	fclose(f);
	free(first_ak);
	if (first_sk)
		explicit_bzero(first_sk, strlen(first_sk));
	free(first_sk);
	free(cur_ak);
	if (cur_sk)
		explicit_bzero(cur_sk, strlen(cur_sk));
	free(cur_sk);
	explicit_bzero(line, sizeof(line));
	return ret;
}

int remote_creds_load(const char *cred_file, char **access_key, char **secret_key)
{
	const char *env_ak, *env_sk, *f = cred_file;

	if (!f || !*f)
		f = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (f && *f)
		return load_file(f, access_key, secret_key);
	env_ak = getenv("AWS_ACCESS_KEY_ID");
	env_sk = getenv("AWS_SECRET_ACCESS_KEY");
	if (!env_ak || !*env_ak || !env_sk || !*env_sk)
		return -ENOENT;
	*access_key = strdup(env_ak);
	*secret_key = strdup(env_sk);
	if (!*access_key || !*secret_key) {
		free(*access_key);
		free(*secret_key);
		return -ENOMEM;
	}
	return 0;
}
