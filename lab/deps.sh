#!/bin/bash
# Ensure the host packages the container lab needs are installed.
# Root on Debian/Ubuntu: installs what is missing. Otherwise: prints the
# command to run and exits 1. Fast no-op when everything is present.
set -euo pipefail

# netavark + aardvark-dns: podman 4's network backend (bridge networks, DNS);
# iptables: netavark (1.4 on bookworm) programs NAT through it;
# slirp4netns, uidmap, fuse-overlayfs: only rootless podman needs them, but
# they are small and save the next person a confusing failure.
pkgs=(podman runc conmon netavark aardvark-dns iptables slirp4netns uidmap
      fuse-overlayfs debootstrap)

missing=()
for p in "${pkgs[@]}"; do
  # dpkg-query is instant; "install ok installed" means fully configured.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && { echo "deps: all present"; exit 0; }

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "deps: missing ${missing[*]}; run as root:" >&2
  echo "  apt-get update && ${cmd[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${cmd[@]}"
echo "deps: installed ${missing[*]}"
