#!/bin/bash
# Prove the lab image works for VRRP tests: two systemd containers on a
# bridge network, NAT to the mirror, venv, NET_ADMIN, raw proto-112 sockets
# and VRRP multicast between them. Cleans up after itself, always.
# Usage: lab/smoke.sh [IMAGE]   (default: build-image.sh's tag, cached)
# Functions below run through check(); shellcheck 0.9 calls them unreachable.
# shellcheck disable=SC2317
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"

image=${1:-$("$here/build-image.sh")}
net=vrrp-lab-smoke
a=vrrp-lab-smoke-a ip_a=10.89.77.11
b=vrrp-lab-smoke-b ip_b=10.89.77.12

cleanup() {
  podman rm -f -t 0 "$a" "$b" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup   # leftovers from an interrupted run

failed=0
# check NAME CMD...: one line per check with its duration; output on failure.
check() {
  local name=$1 t0=$EPOCHREALTIME out rc=0; shift
  out=$("$@" 2>&1) || rc=$?
  local dt; dt=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if ((rc == 0)); then
    printf 'PASS %-22s %5ss  %s\n' "$name" "$dt" "$(tail -n1 <<<"$out")"
  else
    local lines; mapfile -t lines <<<"$out"
    printf 'FAIL %-22s %5ss  (exit %d)\n' "$name" "$dt" "$rc"; printf '     | %s\n' "${lines[@]}"
    failed=1
  fi
}

# Wait for systemd in CONTAINER to finish booting; degraded counts as up
# but names the failed units.
booted() {
  local state
  for _ in $(seq 120); do
    state=$(podman exec "$1" systemctl is-system-running 2>/dev/null) || true
    case $state in
      running) echo "$1: running"; return 0 ;;
      degraded) echo "$1: degraded, failed units:" \
                  "$(podman exec "$1" systemctl --failed --no-legend --plain | awk '{print $1}' | xargs)"
                return 0 ;;
    esac
    sleep 0.5
  done
  echo "$1: still '$state' after 60 s"; return 1
}

# No DNS: the check uses IPs, and it keeps aardvark-dns out of the picture.
podman network create --driver bridge --subnet 10.89.77.0/24 --disable-dns "$net" >/dev/null
for c in "$a:$ip_a" "$b:$ip_b"; do
  podman run -d --name "${c%%:*}" --hostname "${c%%:*}" --network "$net" --ip "${c#*:}" \
    --systemd=always --cap-add NET_ADMIN --cap-add NET_RAW "$image" >/dev/null
done

check "boot $a"         booted "$a"
check "boot $b"         booted "$b"
check "interface name"  podman exec "$a" sh -c "ip -o -4 addr show | awk '\$2 != \"lo\" {print \$2, \$4}'"
check "ping a->b"       podman exec "$a" ping -c1 -W2 "$ip_b"
check "apt-get update"  podman exec "$a" apt-get update
check "python3 -m venv" podman exec "$a" sh -c 'python3 -m venv /tmp/v && /tmp/v/bin/python -V'
check "ip addr add"     podman exec "$a" sh -c 'ip addr add 10.89.77.200/24 dev eth0 && ip addr del 10.89.77.200/24 dev eth0 && echo ok'
check "raw socket 112"  podman exec "$a" python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 112); print("ok")'

# VRRP multicast: A joins 224.0.0.18 on a raw proto-112 socket; B sends to it
# with TTL 255 (as VRRP must). A prints the sender's address.
multicast() {
  podman exec "$a" python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton("224.0.0.18"), socket.inet_aton("'"$ip_a"'")))
s.settimeout(5)
data, src = s.recvfrom(2048)
print("A got", len(data), "bytes (IP header + payload) from", src[0], "ttl", data[8])
' &
  local rx=$!
  sleep 1   # let A join before B sends
  podman exec "$b" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("'"$ip_b"'"))
s.sendto(b"\x31\x33\x64\x01\x00\x64\x00\x00" + socket.inet_aton("10.89.77.100"), ("224.0.0.18", 0))
'
  wait "$rx"
}
check "multicast 224.0.0.18" multicast

((failed == 0)) && echo "smoke: all checks passed" || echo "smoke: FAILED"
exit "$failed"
