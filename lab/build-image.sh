#!/bin/bash
# Build the lab's systemd base image without any registry: debootstrap a
# Debian rootfs, trim it for containers, `podman import` it. The tag is a hash
# of this script, so an unchanged recipe is never rebuilt.
# stdout: only the image tag (last line); progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CONTAINERS_CONF="$here/containers.conf"

suite=bookworm
name=localhost/vrrp-lab
# python3-venv: roles install the agent's wheel into /opt/vrrp-agent with venv.
# python3-apt: Ansible's apt module needs it, and cannot install it in check mode.
# No nginx: the roles install it at converge time, that is part of the test.
include=systemd,systemd-sysv,python3,python3-venv,python3-apt,iproute2,procps,dbus,iputils-ping,nftables,ca-certificates,sudo,curl

hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
tag="$name:$hash"

if podman image exists "$tag"; then
  podman tag "$tag" "$name:latest"   # cheap; keeps :latest on the current recipe
  echo "$tag"
  exit 0
fi

"$here/deps.sh" >&2

# The Debian mirror this host is configured with (first one serving $suite),
# from one-line .list files or deb822 .sources files. VRRP_LAB_MIRROR overrides.
mirror=${VRRP_LAB_MIRROR:-$(
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v s="$suite" '$1=="deb" { sub(/^deb +\[[^]]*\] */, "deb "); if ($3==s) { print $2; exit } }'
    # deb822: one stanza per paragraph; skip comments and disabled stanzas.
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v '^#' |
      awk -v s="$suite" 'BEGIN { RS="" }
        { ok = 0 }
        /(^|\n)Enabled: *no/ { next }
        /(^|\n)Types:[^\n]*deb([ \n]|$)/ && match($0, /(^|\n)Suites:[^\n]*/) {
          n = split(substr($0, RSTART, RLENGTH), w, /[ \n]+/)
          for (i = 2; i <= n; i++) if (w[i] == s) ok = 1
          if (ok && match($0, /(^|\n)URIs: *[^ \n]+/)) {
            u = substr($0, RSTART, RLENGTH); sub(/.*URIs: */, "", u); print u; exit }
        }'
  } | head -n1 || true   # missing files or no match: the check below says so
)}
[[ -n $mirror ]] || { echo "no apt source for $suite found; set VRRP_LAB_MIRROR" >&2; exit 1; }

# Under /var/tmp (not a tmpfs /tmp): device nodes and a few hundred MB.
work=$(mktemp -d /var/tmp/vrrp-lab.XXXXXX)
cleanup() {
  # A failed debootstrap can leave proc/sys mounted inside the rootfs;
  # never let rm walk into them.
  grep -o " $work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
root=$work/rootfs

echo "debootstrap $suite from $mirror" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >&2

# Package lists are stale by the time anyone uses the image; apt-get update
# (or Ansible's update_cache) fetches fresh ones.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
# Ansible's apt cache_valid_time judges freshness by this directory's mtime:
# date it to the epoch so "no lists" reads as "stale" and the first run updates.
touch -d @0 "$root"/var/lib/apt/lists

# Units that only make sense on real hardware or wait for a network manager
# that podman replaces. Masking a unit that does not exist is harmless.
for u in getty@tty1.service console-getty.service getty.target \
         systemd-networkd-wait-online.service systemd-resolved.service \
         systemd-timesyncd.service systemd-remount-fs.service \
         systemd-udevd.service systemd-udev-trigger.service \
         sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
         dev-hugepages.mount; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done

# podman bind-mounts its own resolv.conf, hostname and hosts; leave plain
# files (never a symlink into /run) for it to mount over.
rm -f "$root/etc/resolv.conf" && : >"$root/etc/resolv.conf"
: >"$root/etc/hostname"
# Empty machine-id: systemd derives a per-container id from $container_uuid,
# instead of every container sharing the one debootstrap generated.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
chroot "$root" passwd -l root >/dev/null

echo "importing $tag" >&2
tar -C "$root" --numeric-owner -c . |
  podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$tag" >&2
podman tag "$tag" "$name:latest"
echo "$tag"
