#!/usr/bin/env bash
# molecule's dependency step: the scenario networks with fixed subnets, so the
# nodes' pinned addresses and the VIPs are known (the podman driver's schema has
# no subnet key, and its destroy step removes the networks it knows of).
# Arguments: more networks as NAME:SUBNET or NAME:SUBNET:internal. An internal
# network has no gateway on the host, so its containers reach other networks
# only through a router container (cross_subnet, anycast).
set -euo pipefail
: "${CONTAINERS_CONF:?CONTAINERS_CONF must point at lab/containers.conf}"
make_net() {
  local name=$1 subnet=$2 kind=${3:-}
  local opts=(--subnet "$subnet" --disable-dns)
  [[ $kind == internal ]] && opts+=(--internal)
  podman network exists "$name" || podman network create "${opts[@]}" "$name" >/dev/null
}
make_net vrrp-molecule 10.89.90.0/24
for spec in "$@"; do
  IFS=: read -r name subnet kind <<<"$spec"
  make_net "$name" "$subnet" "$kind"
done
