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

# promtool (`make rules` checks and unit-tests prometheus/vrrp-agent.rules.yml)
# comes in Debian's `prometheus` package, whose postinst enables and starts a
# Prometheus server: not something to leave running on a CI host or a
# developer's machine for the sake of one static binary. So it is never
# installed: the package is downloaded (`apt-get download` needs no root) and
# only usr/bin/promtool unpacked into .tools/ (ignored by git); the Makefile
# prefers a promtool already on PATH. If that fails, `make deps` fails (after
# installing the rest), as for any other missing tool.
cd "$(dirname "$0")/.."
TOOLS=$PWD/.tools
fetch_promtool() {
  command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || return 1
  local tmp sandbox=()
  tmp=$(mktemp -d)
  # As root apt hands the download to its _apt user, who cannot write to our
  # private temporary directory.
  [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
  if ! (cd "$tmp" && apt-get "${sandbox[@]}" download -qq prometheus >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet; only root can fetch them.
    [ "$(id -u)" -eq 0 ] && apt-get update -qq \
      && (cd "$tmp" && apt-get "${sandbox[@]}" download -qq prometheus >/dev/null) || { rm -rf "$tmp"; return 1; }
  fi
  mkdir -p "$TOOLS/prometheus" "$TOOLS/bin"
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$TOOLS/prometheus" ./usr/bin/promtool \
    || { rm -rf "$tmp"; return 1; }
  rm -rf "$tmp"
  ln -sf ../prometheus/usr/bin/promtool "$TOOLS/bin/promtool"
  echo "promtool: $("$TOOLS/bin/promtool" --version 2>&1 | head -1) in .tools/bin"
}
no_promtool=0
if ! command -v promtool >/dev/null 2>&1 && ! [ -x "$TOOLS/bin/promtool" ]; then
  if ! fetch_promtool; then
    no_promtool=1
    echo "missing: promtool (make rules); 'apt-get download prometheus' failed here:" \
      "put promtool on PATH, or its binary at .tools/bin/promtool" >&2
  fi
fi

[ ${#missing[@]} -eq 0 ] && exit $no_promtool

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
  exit $no_promtool
fi
echo "missing system packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
