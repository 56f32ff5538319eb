#!/usr/bin/env bash
# molecule's dependency step: the scenario network with a fixed subnet, so the
# nodes' pinned addresses and the VIPs are known (the podman driver's schema has
# no subnet key, and its destroy step removes the network).
set -euo pipefail
: "${CONTAINERS_CONF:?CONTAINERS_CONF must point at lab/containers.conf}"
podman network exists vrrp-molecule \
  || podman network create --subnet 10.89.90.0/24 --disable-dns vrrp-molecule >/dev/null
