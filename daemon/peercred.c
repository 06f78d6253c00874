/* Who is on the other end of the control socket (SPEC 6.1).
 *
 * The kernel vouches for the peer's uid and gid (SO_PEERCRED, taken at
 * connect). Root and the daemon's own user are admin. Anyone else gets the
 * highest role of the groups they belong to: their primary group, the
 * peer's gid, and their supplementary groups as the user database lists
 * them now (getgrouplist). Asking the database at each connection, rather
 * than trusting the groups the client process carries (SO_PEERGROUPS),
 * means removing someone from telecare-dispatch takes effect at their next
 * command, not at their next login. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "telecared.h"

#define NSS_BUF_MAX (1u << 20)   /* a group with thousands of members has a long entry */

static const struct {
	const char *group;
	enum role role;
} group_roles[] = {
	{ "telecare-admin", ROLE_ADMIN },
	{ "telecare-dispatch", ROLE_DISPATCHER },
	{ "telecare-install", ROLE_INSTALLER },
};

/* The gid of a group name, or -1 when there is no such group. */
static long group_gid(const char *name)
{
	struct group gr, *res = NULL;
	size_t len = 4096;
	for (;;) {
		char *buf = malloc(len);
		if (!buf)
			return -1;
		int r = getgrnam_r(name, &gr, buf, len, &res);
		long gid = res ? (long)gr.gr_gid : -1;
		free(buf);
		if (r != ERANGE || len >= NSS_BUF_MAX)
			return gid;
		len *= 2;
	}
}

/* The user's login name and primary group. 0, or -1 when unknown. */
static int user_of(uid_t uid, char *name, size_t namelen, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	size_t len = 4096;
	for (;;) {
		char *buf = malloc(len);
		if (!buf)
			return -1;
		int r = getpwuid_r(uid, &pw, buf, len, &res);
		if (res) {
			snprintf(name, namelen, "%s", pw.pw_name);
			*gid = pw.pw_gid;
		}
		free(buf);
		if (res)
			return 0;
		if (r != ERANGE || len >= NSS_BUF_MAX)
			return -1;
		len *= 2;
	}
}

static enum role role_of_groups(const gid_t *groups, int n)
{
	enum role best = ROLE_NONE;
	for (size_t i = 0; i < sizeof(group_roles) / sizeof(*group_roles); i++) {
		long gid = group_gid(group_roles[i].group);
		for (int k = 0; gid >= 0 && k < n; k++)
			if ((long)groups[k] == gid && group_roles[i].role > best)
				best = group_roles[i].role;
	}
	return best;
}

int peer_actor(int fd, struct actor *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	memset(out, 0, sizeof(*out));
	out->kind = ACTOR_UNIX;
	out->role = ROLE_NONE;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	out->uid = cred.uid;
	gid_t primary = cred.gid;
	bool known = user_of(cred.uid, out->name, sizeof(out->name), &primary) == 0;
	if (cred.uid == 0 || cred.uid == geteuid()) {
		out->role = ROLE_ADMIN;
		return 0;
	}
	gid_t fixed[64], *groups = fixed;
	int n = (int)(sizeof(fixed) / sizeof(*fixed)) - 1;
	if (known && getgrouplist(out->name, primary, groups, &n) < 0) {
		/* more groups than fit: n is now how many there are */
		int want = n;
		gid_t *more = calloc((size_t)want + 1, sizeof(*more));
		if (more && getgrouplist(out->name, primary, more, &want) >= 0) {
			groups = more;
			n = want;
		} else {
			free(more);
			n = 0;
		}
	}
	if (!known) {
		groups[0] = primary;
		n = 1;
	}
	groups[n++] = cred.gid;   /* the gid the peer runs with counts too */
	out->role = role_of_groups(groups, n);
	if (groups != fixed)
		free(groups);
	return 0;
}
