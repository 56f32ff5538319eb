"""The lab kit: what the netns tests, bench/, the molecule scenarios and
lab/demo.py use to build a lab, break it and watch it. Not part of the agent's
wheel (pyproject packages only vrrp_agent*); its users run from the repository
root (molecule's verifier sets PYTHONPATH to it).

- `labkit.poll`: `wait_for`, the one polling loop.
- `labkit.netns`: network-namespace labs (`Lab`, `Host`, `Agent`, `inside`, `sh`).
- `labkit.keepalived`: keepalived as an interoperability peer in a netns lab.
- `labkit.podman`: podman containers: exec, addresses, ARP entries, a faithful freeze.
- `labkit.vips`: who holds a VIP, and how requests spread over real servers.
- `labkit.http_probe`: the HTTP probe, a stand-alone script run inside the
  client (namespace or container); `labkit.podman.Probe` drives it in a container.
"""
