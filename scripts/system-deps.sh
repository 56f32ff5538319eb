#!/usr/bin/env bash
# Make sure the system tools the tests drive are present, plus any given as
# CMD=PACKAGE arguments (`make bench-deps`: wrk=wrk nginx=nginx). As root on
# Debian or Ubuntu, install what is missing; otherwise say exactly what to
# install.
set -euo pipefail

# command -> Debian package. The unit tests need nft (nftables documents are
# checked with `nft --check`) and openssl (a test certificate), the netns
# suite the rest.
declare -A NEED=(
  [ip]=iproute2
  [nft]=nftables
  [keepalived]=keepalived
  [ping]=iputils-ping
  [tcpdump]=tcpdump
  [openssl]=openssl
)
for pair in "$@"; do
  [[ "$pair" == *=?* ]] || { echo "system-deps.sh: '$pair' is not CMD=PACKAGE" >&2; exit 2; }
  NEED[${pair%%=*}]=${pair#*=}
done
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 \
    || missing+=("${NEED[$cmd]}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # keepalived's and nginx's packages start services we do not want running
  # beside the tests and benchmarks, which run their own per namespace.
  for svc in keepalived nginx; do
    [[ " ${missing[*]} " == *" $svc "* ]] || continue
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  done
  # Without systemd, nginx's init script has started it all the same.
  if [[ " ${missing[*]} " == *" nginx "* ]] && [ -s /run/nginx.pid ]; then
    kill "$(cat /run/nginx.pid)" 2>/dev/null || true
  fi
  exit 0
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
