# make test: everything (lint, unit, ansible, netns, molecule). Run as root: the netns suite
# builds network namespaces and opens raw sockets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

.PHONY: all test deps lab-deps image venv lint rules unit unit-default unit-pythons ansible netns molecule demo demo-down clean \
	bench bench-deps bench-venv bench-failover bench-lvs bench-link-down bench-starvation

all: test

test: lint rules unit ansible netns molecule

deps:
	@scripts/system-deps.sh

# One .venv with one stamp per extra of pyproject.toml: each target installs
# the extras it needs (`make unit` only `test`, without Ansible and molecule),
# and each stamp is renewed when the project's dependencies change.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(BIN)/.%-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[$*]'
	touch $@

# Everything, for working on any part by hand.
venv: $(BIN)/.test-installed $(BIN)/.lint-installed $(BIN)/.molecule-installed

INVENTORIES := $(wildcard inventories/*/hosts.yml)

lint: $(BIN)/.lint-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint -s .
	$(BIN)/python scripts/check_argument_specs.py roles
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/ansible-lint --profile production site.yml playbooks roles
	@for inv in $(INVENTORIES); do \
	  PATH=$(abspath $(BIN)):$$PATH $(BIN)/ansible-playbook site.yml -i $$inv --syntax-check >/dev/null \
	    || { echo "syntax check failed with $$inv" >&2; exit 1; }; \
	  echo "syntax check ok: $$inv"; \
	done

# The Prometheus alerting rules: `promtool check rules`, then their unit tests
# (prometheus/tests/, alerts fed synthetic series from two nodes); seconds.
# `make deps` unpacks Debian's promtool into .tools/ (see scripts/system-deps.sh)
# unless one is on PATH already.
PROMTOOL ?= $(or $(shell command -v promtool 2>/dev/null),.tools/bin/promtool)

rules: deps
	$(PROMTOOL) check rules prometheus/vrrp-agent.rules.yml
	$(PROMTOOL) test rules prometheus/tests/*.yml

# The unit tests, on a machine set up first (nft and openssl are among the
# system deps: without them tests skip, and fail in CI), under the default
# Python and then under the oldest and the newest the agent supports, each in
# a venv of its own with the `test` extra (scripts/unit-pythons.sh finds or
# installs them, and says what is missing). tests/roles and tests/bench test
# controller-side code (the Ansible filter plugin and argument specs, the
# benchmarks), which runs where Ansible and the benchmarks run, on the default
# Python only.
UNIT_PYTHONS ?= 3.9 3.13

unit: unit-default unit-pythons

unit-default: deps $(BIN)/.test-installed
	$(PYTEST) -q tests/unit tests/roles tests/bench

unit-pythons: deps
	PYTHON=$(PYTHON) scripts/unit-pythons.sh $(UNIT_PYTHONS)

# site.yml's preflight and rendered configuration, against local-connection hosts.
ansible: $(BIN)/.test-installed $(BIN)/.molecule-installed
	PATH=$(abspath $(BIN)):$$PATH $(PYTEST) -q tests/ansible

netns: deps $(BIN)/.test-installed
	@[ "$$(id -u)" -eq 0 ] || { echo "make netns needs root (network namespaces, raw sockets)" >&2; exit 1; }
	$(PYTEST) -q tests/netns

# Podman needs runc and sane ulimits here; every podman call reads this file.
export CONTAINERS_CONF := $(abspath lab/containers.conf)
SCENARIOS := $(sort $(filter-out shared,$(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))))

lab-deps:
	@lab/deps.sh

# The systemd base image, rebuilt only when its recipe changes (tagged by hash).
image: lab-deps
	lab/build-image.sh

molecule: $(BIN)/.molecule-installed image
	@for s in $(SCENARIOS); do \
	  echo "=== molecule test -s $$s"; \
	  PATH=$(abspath $(BIN)):$$PATH $(BIN)/molecule test -s $$s || exit 1; \
	done

TOPOLOGY ?= master_backup

# A local lab for TOPOLOGY, deployed with site.yml, one failover and one
# failback drilled and timed; it stays up until `make demo-down`.
demo: $(BIN)/.molecule-installed image
	$(BIN)/python lab/demo.py up $(TOPOLOGY)

demo-down:
	$(PYTHON) lab/demo.py down

# Benchmarks: timing lives here, never in `make test`. Run as root on an
# otherwise idle machine; results go to bench/results/ (~27 min in all).
bench: bench-failover bench-link-down bench-lvs bench-starvation

# The agent and matplotlib (for the failover timeline), not the test tools:
# the benchmarks need no more, and a clean machine is ready sooner.
bench-venv: deps $(BIN)/.bench-installed

# Our agent against keepalived on identical configurations in namespaces:
# failover, handover, reclaim, client outage, 255 VRIDs, PSS, CPU, start-up
# (~11 min). A quick look without touching the results:
# BENCH_FAILOVER_ARGS='--repetitions 2 --cpu-windows 1 --out-dir /tmp/f'.
BENCH_FAILOVER_ARGS ?=
bench-failover: bench-venv
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench-failover needs root (network namespaces, raw sockets)" >&2; exit 1; }
	$(BIN)/python -m bench.failover $(BENCH_FAILOVER_ARGS)

# How soon a master drops its VIP once its link goes down (netlink link events),
# ours against keepalived, 10 tries each (~1 min).
BENCH_LINK_ARGS ?=
bench-link-down: bench-venv
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench-link-down needs root (network namespaces, raw sockets)" >&2; exit 1; }
	$(BIN)/python -m bench.link_down $(BENCH_LINK_ARGS)

# Spurious transitions under CPU starvation (two busy loops per core, 255
# instances at advert_int 0.1), ours at the unit's SCHED_RR against keepalived
# as shipped, 5 min each (~11 min). A quick look without touching the results:
# BENCH_STARVATION_ARGS='--duration 20 --out-dir /tmp/s'.
BENCH_STARVATION_ARGS ?=
bench-starvation: bench-venv
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench-starvation needs root (network namespaces, raw sockets)" >&2; exit 1; }
	$(BIN)/python -m bench.starvation $(BENCH_STARVATION_ARGS)

# The tests' tools plus wrk and nginx (the benchmark runs its own nginx per
# namespace; the system service the package sets up stays off).
bench-deps:
	@scripts/system-deps.sh wrk=wrk nginx=nginx

# Requests per second through the nftables LVS data plane (NAT, DR) against
# direct requests to the real servers, with wrk and nginx in namespaces (~5 min).
# A quick look without touching the results: BENCH_ARGS='--duration 2 --out-dir /tmp/b'.
BENCH_ARGS ?=
bench-lvs: bench-deps bench-venv
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench-lvs needs root (network namespaces, nftables)" >&2; exit 1; }
	$(BIN)/python -m bench.lvs_throughput $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-py3.* .tools build *.egg-info
