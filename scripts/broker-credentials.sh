#!/bin/bash
# Broker logins for a telecare service: adds or updates entries in
# mosquitto's password file with the usernames config/mosquitto.acl expects
# (telecared, dev/ID, worker/ID, console/NAME). See that file for why.
set -euo pipefail

PROG=${0##*/}
PASSWD_FILE=/etc/mosquitto/telecare.passwd
ACL_FILE=/etc/mosquitto/telecare.acl
PW_SOURCE=
PW_OUT=

usage() {
	cat <<EOF
usage: $PROG [-f PASSWD_FILE] [-p FILE] [-o FILE] [-a ACL_FILE] COMMAND [ARG...]

Add or update broker logins for telecared's ACL (config/mosquitto.acl).
Each login gets a new random password (or the one from -p), printed as
"USERNAME PASSWORD" on standard output. Passwords never appear on a
command line: they are hashed with mosquitto_passwd -U in a private file.

The shipped mosquitto.conf makes each login its client's id on the broker
(use_username_as_clientid): a login is one connection, and a second
connection with it closes the first. Make one login per device, phone and
console.

commands:
  gateway [USERNAME]  the gateway (username telecared, as in the ACL); with -o
                      the password goes to FILE instead of standard output,
                      for telecared.conf's [mqtt] password_file. Its
                      [mqtt] client_id must be the same as the username
  device ID...        devices, as dev/ID: publish dev/ID/event, read
                      dev/ID/receipt and dev/ID/alarm
  worker ID...        workers, as worker/ID: publish worker/ID/action, read
                      worker/ID/alert and worker/ID/result
  console NAME...     dispatch consoles, as console/NAME, and a read-only
                      block for each in the ACL file (-a) unless it has one
  remove USERNAME...  delete logins
  list                print the usernames in the password file

options:
  -f FILE  the password file (default $PASSWD_FILE); created when missing
  -p FILE  take the password from the first line of FILE ('-': standard
           input) instead of a random one; one login only
  -o FILE  gateway: write the password to FILE (0640, group telecare when
           that group exists and we are root; else 0600)
  -a FILE  console: the ACL file to add to (default $ACL_FILE)

IDs are 1-64 characters of A-Z a-z 0-9 . _ - (device and worker ids as
telecared knows them). Afterwards: systemctl reload mosquitto.
EOF
}

die() {
	echo "$PROG: $*" >&2
	exit 2
}

while getopts "f:p:o:a:h" opt; do
	case $opt in
	f) PASSWD_FILE=$OPTARG ;;
	p) PW_SOURCE=$OPTARG ;;
	o) PW_OUT=$OPTARG ;;
	a) ACL_FILE=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { usage >&2; exit 2; }
cmd=$1
shift

command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd not found (apt-get install mosquitto)"

valid_id() {
	[[ $1 =~ ^[A-Za-z0-9._-]{1,64}$ ]]
}

random_password() {
	# 24 characters of base64url: 144 bits, never ':' or a newline
	head -c 18 /dev/urandom | base64 | tr '+/' '-_'
}

given_password() {
	local line
	if [ "$PW_SOURCE" = - ]; then
		IFS= read -r line || true
	else
		IFS= read -r line <"$PW_SOURCE" || true
	fi
	line=${line%$'\r'}
	[ -n "$line" ] || die "no password in ${PW_SOURCE/#-/standard input}"
	printf '%s' "$line"
}

# set_logins USER PASSWORD [USER PASSWORD...]: add or replace the users'
# lines in PASSWD_FILE, atomically (a new file renamed over the old one).
TMPFILES=()
trap 'rm -f "${TMPFILES[@]}"' EXIT
set_logins() {
	local dir plain new
	dir=$(dirname -- "$PASSWD_FILE")
	[ -d "$dir" ] || die "no directory $dir"
	plain=$(umask 077 && mktemp)
	TMPFILES+=("$plain")
	new=$(umask 077 && mktemp "$dir/.telecare-passwd.XXXXXX")
	TMPFILES+=("$new")
	local users=()
	while [ $# -gt 0 ]; do
		printf '%s:%s\n' "$1" "$2" >>"$plain"
		users+=("$1")
		shift 2
	done
	mosquitto_passwd -U "$plain" >/dev/null || die "mosquitto_passwd -U failed"
	if [ -f "$PASSWD_FILE" ]; then
		# keep every other user's line
		awk -F: -v drop="$(printf '%s\n' "${users[@]}")" '
			BEGIN { n = split(drop, d, "\n"); for (i = 1; i <= n; i++) if (d[i] != "") skip[d[i]] = 1 }
			!($1 in skip)' "$PASSWD_FILE" >"$new"
		chmod --reference="$PASSWD_FILE" "$new"
		[ "$(id -u)" -ne 0 ] || chown --reference="$PASSWD_FILE" "$new"
	else
		if [ "$(id -u)" -eq 0 ] && getent group mosquitto >/dev/null; then
			chgrp mosquitto "$new"
			chmod 0640 "$new"
		fi
	fi
	cat "$plain" >>"$new"
	mv -f "$new" "$PASSWD_FILE"
}

# add ROLE ID...: new passwords for ROLE/ID (or the bare name for the gateway)
add() {
	local role=$1 u pw args=() out=()
	shift
	[ $# -ge 1 ] || die "$cmd: name at least one id"
	[ -z "$PW_SOURCE" ] || [ $# -eq 1 ] || die "-p sets one login's password: name one id"
	for id in "$@"; do
		valid_id "$id" || die "invalid id '$id': 1-64 characters of A-Z a-z 0-9 . _ -"
		u=${role:+$role/}$id
		if [ -n "$PW_SOURCE" ]; then pw=$(given_password); else pw=$(random_password); fi
		args+=("$u" "$pw")
		out+=("$u $pw")
	done
	set_logins "${args[@]}"
	if [ "$cmd" = gateway ] && [ -n "$PW_OUT" ]; then
		local tmp
		tmp=$(umask 077 && mktemp "$(dirname -- "$PW_OUT")/.telecare-pw.XXXXXX")
		TMPFILES+=("$tmp")
		printf '%s\n' "${args[1]}" >"$tmp"
		if [ "$(id -u)" -eq 0 ] && getent group telecare >/dev/null; then
			chgrp telecare "$tmp"
			chmod 0640 "$tmp"
		fi
		mv -f "$tmp" "$PW_OUT"
		echo "$PROG: ${args[0]}: password written to $PW_OUT" >&2
	else
		printf '%s\n' "${out[@]}"
	fi
}

case $cmd in
gateway)
	[ $# -le 1 ] || die "gateway takes at most one username"
	gw=${1:-telecared}
	add "" "$gw"
	# the broker keeps the gateway's session under its username: the
	# client id telecared is configured with must be that name too
	echo "$PROG: in telecared.conf: [mqtt] username = $gw, client_id = $gw${PW_OUT:+, password_file = $PW_OUT}" >&2
	[ "$gw" = telecared ] ||
		echo "$PROG: the ACL grants the gateway's topics to 'user telecared': change that line to 'user $gw'" >&2
	;;
device) add dev "$@" ;;
worker) add worker "$@" ;;
console)
	[ -f "$ACL_FILE" ] || die "no ACL file $ACL_FILE (-a FILE)"
	add console "$@"
	for name in "$@"; do
		if ! grep -qxF "user console/$name" "$ACL_FILE"; then
			printf '\nuser console/%s\ntopic read telecare/alarms/#\ntopic read telecare/gateway/status\n' \
				"$name" >>"$ACL_FILE"
			echo "$PROG: added console/$name to $ACL_FILE" >&2
		fi
	done
	;;
remove)
	[ $# -ge 1 ] || die "remove: name at least one username"
	[ -f "$PASSWD_FILE" ] || die "no password file $PASSWD_FILE"
	for u in "$@"; do
		awk -F: -v u="$u" '$1 == u { found = 1 } END { exit !found }' "$PASSWD_FILE" ||
			die "no login $u in $PASSWD_FILE"
		mosquitto_passwd -D "$PASSWD_FILE" "$u" >/dev/null
	done
	;;
list)
	[ -f "$PASSWD_FILE" ] || die "no password file $PASSWD_FILE"
	cut -d: -f1 "$PASSWD_FILE"
	;;
*)
	die "unknown command '$cmd' (try -h)"
	;;
esac
