"""Forged and malformed packets from a third host: dropped, counted per
reason in `status`, and never a crash or a state change."""

from __future__ import annotations

import sys
import textwrap
import time

from labkit.netns import REPO, Lab
from labkit.poll import wait_for
from vrrp_agent.core.timers import master_down_interval

VIP = "10.99.0.100"

# Runs inside n3. scapy builds the IP header so TTL and every byte are ours to choose;
# the VRRP payloads come from our encoder, then get broken on purpose.
FORGER = textwrap.dedent(
    """
    import sys
    from ipaddress import ip_address as ip
    from scapy.all import IP, Raw, conf, send
    from vrrp_agent.wire import AUTH_PASS, Advertisement, encode

    conf.verb = 0
    SRC, DST = "10.99.0.3", "224.0.0.18"
    VIP = ip("10.99.0.100")

    def v3(vrid=51, prio=250, interval=100, **kw):
        adv = Advertisement(version=3, vrid=vrid, priority=prio, max_advert_int=interval,
                            addresses=(VIP,))
        return encode(adv, src=ip(SRC), dst=ip(DST), **kw)

    def v2(pw=b"1111", interval=1):
        adv = Advertisement(version=2, vrid=52, priority=250, max_advert_int=interval,
                            addresses=(ip("10.99.0.101"),), auth_type=AUTH_PASS, auth_data=pw)
        return encode(adv)

    def flip(data, i, mask=0xFF):
        b = bytearray(data); b[i] ^= mask; return bytes(b)

    good = v3()
    cases = {
        "ttl": (good, 64),
        "checksum": (flip(good, 7, 0x01), 255),
        "version": (bytes([0x41]) + good[1:], 255),
        "type": (bytes([0x32]) + good[1:], 255),
        "truncated": (good[:8] + b"\\x00\\x00", 255),
        "no_pseudo_header": (v3(pseudo_header=False), 255),
        "unknown_vrid": (v3(vrid=77), 255),
        "short": (good[:5], 255),
        "auth": (v2(pw=b"wrong"), 255),
        "interval": (v2(interval=3), 255),
        "zero_interval": (v3(interval=0), 255),
    }
    for name in sys.argv[1:]:
        payload, ttl = cases[name]
        send(IP(src=SRC, dst=DST, ttl=ttl, proto=112) / Raw(payload))
    """
)


def conf(priority: int) -> dict:
    def inst(vrid: int, vip: str, **kw: object) -> dict:
        return {
            "interface": "eth0",
            "virtual_router_id": vrid,
            "priority": priority,
            "advert_int": 1,
            "virtual_ipaddress": [f"{vip}/24"],
            **kw,
        }

    return {
        "vrrp_instances": {
            "VI_1": inst(51, VIP),
            "VI_2": inst(
                52,
                "10.99.0.101",
                version=2,
                authentication={"auth_type": "PASS", "auth_pass": "1111"},
            ),
        }  # fmt: skip
    }


def test_forged_packets_are_dropped_and_counted(lab: Lab) -> None:
    a1 = lab.agent("n1", conf(200))
    a2 = lab.agent("n2", conf(100))
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 200, 1) + 2)
    wait_for(
        "n2 follows n1", lambda: a2.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1", 3
    )
    before = a2.status()
    cases = ["ttl", "checksum", "version", "type", "truncated", "no_pseudo_header",
             "unknown_vrid", "short", "auth", "interval"]  # fmt: skip
    script = lab.tmp / "forge.py"
    # The forger imports our encoder; run from tmp, it needs the checkout on its path.
    script.write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n" + FORGER)
    lab["n3"].run(sys.executable, str(script), *cases)

    def counted() -> bool:
        st = a2.status()
        return (
            sum(st["rx_dropped"].values()) >= 2 and len(st["instances"]["VI_2"]["rx_dropped"]) == 2
        )

    wait_for("the drops to be counted", counted, 3)
    time.sleep(0.3)
    after = a2.status()
    vi1, vi2 = after["instances"]["VI_1"], after["instances"]["VI_2"]
    # Each forged packet is counted once, under its own reason, on the instance it names.
    assert vi1["rx_dropped"] == {
        "ttl": 1,
        "checksum": 2,  # a flipped bit, and a v3 checksum without the pseudo-header
        "version": 1,
        "type": 1,
        "truncated": 1,
    }
    assert vi2["rx_dropped"] == {"auth": 1, "interval": 1}
    assert after["rx_dropped"] == {"unknown_vrid": 1, "truncated": 1}
    # Nothing changed: still BACKUP, following n1, and the forger's priority 250 was never believed.
    for name in ("VI_1", "VI_2"):
        assert after["instances"][name]["state"] == "BACKUP"
        assert after["instances"][name]["master_ip"] == "10.99.0.1"
        assert after["instances"][name]["stats"]["became_master"] == 0
    assert after["pid"] == before["pid"]
    assert a1.proc.poll() is None and a2.proc.poll() is None
    assert not lab["n2"].has(VIP)


def test_a_forged_v3_advert_with_interval_zero_does_not_promote_a_backup(lab: Lab) -> None:
    """The attack: a backup adopts a better master's Max Adver Int, so 0 gave
    Master_Down = 0 and a takeover at once (two masters until n1's next
    advert put it back). Before the fix n2 counted became_master 1."""
    lab.agent("n1", conf(200))
    a2 = lab.agent("n2", conf(100))
    wait_for("n1 master", lambda: lab["n1"].has(VIP), master_down_interval(3, 200, 1) + 2)
    wait_for(
        "n2 follows n1", lambda: a2.status()["instances"]["VI_1"]["master_ip"] == "10.99.0.1", 3
    )
    script = lab.tmp / "forge.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n" + FORGER)
    lab["n3"].run(sys.executable, str(script), "zero_interval", "zero_interval", "zero_interval")
    # One advert interval of n1 and more: a promotion, had there been one, has happened by now.
    time.sleep(1.5)
    vi1 = a2.status()["instances"]["VI_1"]
    assert vi1["stats"]["became_master"] == 0
    assert (vi1["state"], vi1["master_ip"]) == ("BACKUP", "10.99.0.1")
    assert vi1["rx_dropped"] == {"zero_interval": 3}
    assert not lab["n2"].has(VIP)
