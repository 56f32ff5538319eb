#!/usr/bin/env bash
# The tools `make bench-*` drives. As root
# on Debian or Ubuntu, install what is missing; otherwise say what to install.
# The benchmarks run nginx themselves, per namespace, with their own
# configuration: the system service the package sets up stays off.
set -euo pipefail

# command -> Debian package
declare -A NEED=(
  [ip]=iproute2
  [nft]=nftables
  [wrk]=wrk
  [nginx]=nginx
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 \
    || missing+=("${NEED[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" nginx "* ]]; then
    # The package starts a system nginx on port 80 unless policy-rc.d forbids it.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
    if [ -s /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
  fi
  exit 0
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
