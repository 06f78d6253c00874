#!/bin/sh
# Build webhook_drill by hand and run it against server.py, three ways at once:
# plain, ASan+UBSan (with LeakSanitizer), and plain under valgrind.
#   tests/webhook/run.sh [plain|asan|valgrind ...]     (default: all three)
# Not part of CI. Needs gcc, pkg-config, libcurl4-openssl-dev, libsystemd-dev,
# /usr/bin/python3 and, for the valgrind run, valgrind.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${WEBHOOK_DRILL_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/webhook-drill.XXXXXX")}
modes=${*:-plain asan valgrind}

CFLAGS="-std=gnu17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
        -Wformat=2 -Wno-format-nonliteral -D_GNU_SOURCE -DTELECARE_VERSION=\"0.1.0\" -g -I$root/daemon"
PKG_CFLAGS=$(pkg-config --cflags libcurl libsystemd)
PKG_LIBS=$(pkg-config --libs libcurl libsystemd)
src="$here/webhook_drill.c $root/daemon/webhook.c"

for m in $modes; do
  case $m in
    plain|valgrind)
      [ -x "$out/drill" ] || gcc $CFLAGS -O2 $PKG_CFLAGS $src -o "$out/drill" $PKG_LIBS ;;
    asan)
      gcc $CFLAGS -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
          -fno-sanitize-recover=undefined $PKG_CFLAGS $src -o "$out/drill-asan" $PKG_LIBS ;;
    *) echo "unknown mode $m" >&2; exit 2 ;;
  esac
done

/usr/bin/python3 "$here/server.py" >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT INT TERM
port=
for _ in $(seq 100); do
  port=$(head -n1 "$out/server.log" 2>/dev/null || true)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not start" >&2; cat "$out/server.log" >&2; exit 1; }
echo "server on 127.0.0.1:$port, output in $out"

pids=
for m in $modes; do
  case $m in
    plain)    set -- "$out/drill" ;;
    asan)     set -- env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 "$out/drill-asan" ;;
    # valgrind runs code 20-50 times slower: there it checks memory, not latency.
    valgrind) set -- env WEBHOOK_DRILL_MAX_STALL_MS=2000 WEBHOOK_DRILL_SLACK_S=1 valgrind -q --leak-check=full \
                  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
                  --track-fds=yes --error-exitcode=99 "$out/drill" ;;
  esac
  ( set +e; "$@" "$port" "$m" >"$out/$m.out" 2>&1; echo $? >"$out/$m.rc" ) &
  pids="$pids $!"
done
wait $pids || true

# What the receiver saw, per run: tries really made.
hits() { grep -c "^HIT $1 $2 " "$out/server.log" || true; }
status=0
for m in $modes; do
  echo "===== $m (exit $(cat "$out/$m.rc"))"
  cat "$out/$m.out"
  [ "$(cat "$out/$m.rc")" = 0 ] || status=1
  got="ok=$(hits "$m" /ok) slow=$(hits "$m" /slow) fail=$(hits "$m" /fail) redirect=$(hits "$m" /redirect) hang=$(hits "$m" /hang) B.hang=$(hits "$m-B" /hang) C.hang=$(hits "$m-C" /hang) C.slow=$(hits "$m-C" /slow)"
  want="ok=5 slow=1 fail=3 redirect=3 hang=3 B.hang=1 C.hang=1 C.slow=1"
  if [ "$got" = "$want" ]; then echo "receiver saw: $got  PASS"
  else echo "receiver saw: $got  FAIL (want $want)"; status=1; fi
done
exit $status
