#!/bin/bash
# A throwaway certificate authority with a broker certificate and a client
# certificate for telecared, to try TLS between telecared and mosquitto (the
# integration tests use it). For production use your own CA.
set -euo pipefail

PROG=${0##*/}
DAYS=30
CLIENT_CN=telecared

usage() {
	cat <<EOF
usage: $PROG [-d DAYS] [-c CLIENT_NAME] DIR [HOST...]

Writes, in DIR (created; private keys 0600):
  ca.crt ca.key          a new CA (EC P-256), valid DAYS days (default $DAYS)
  broker.crt broker.key  the broker's certificate for HOST... (names or IP
                         addresses) and always localhost, 127.0.0.1 and ::1
  client.crt client.key  a client certificate with the common name
                         CLIENT_NAME (default $CLIENT_CN)

mosquitto: cafile DIR/ca.crt, certfile DIR/broker.crt, keyfile DIR/broker.key.
telecared.conf [mqtt]: cafile = DIR/ca.crt, certfile = DIR/client.crt,
keyfile = DIR/client.key; host must be one of the broker certificate's names.
EOF
}

while getopts "d:c:h" opt; do
	case $opt in
	d) DAYS=$OPTARG ;;
	c) CLIENT_CN=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { usage >&2; exit 2; }
DIR=$1
shift
[[ $DAYS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: -d needs a number of days" >&2; exit 2; }
command -v openssl >/dev/null || { echo "$PROG: openssl not found (apt-get install openssl)" >&2; exit 2; }

mkdir -p "$DIR"
cd "$DIR"
umask 077

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "$@"; do
	if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then
		san+=",IP:$h"
	else
		san+=",DNS:$h"
	fi
done
broker_cn=${1:-localhost}
# A unique name: two CAs made by this script never vouch for each other.
ca_cn="telecare test CA $(date -u +%Y%m%dT%H%M%SZ) $(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"

ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days "$DAYS" -subj "/CN=$ca_cn" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" 2>/dev/null

# sign NAME CN EXTENSIONS: NAME.key and NAME.crt signed by the CA
sign() {
	local name=$1 cn=$2 ext=$3
	openssl req -new "${ec[@]}" -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
	printf '%s\n' "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" \
		"subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" "$ext" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
		-days "$DAYS" -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

sign broker "$broker_cn" "extendedKeyUsage=serverAuth
subjectAltName=$san"
sign client "$CLIENT_CN" "extendedKeyUsage=clientAuth"

chmod 0644 ca.crt broker.crt client.crt
openssl verify -CAfile ca.crt broker.crt client.crt >/dev/null
echo "$PROG: wrote $(pwd)/{ca,broker,client}.{crt,key}; broker names: $san" >&2
