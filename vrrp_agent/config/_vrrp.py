"""global_defs, vrrp_scripts, vrrp_instances and vrrp_sync_groups."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Any

from vrrp_agent.wire.addresses import IPAddr

from ._listen import listen_address
from ._reader import (
    Check,
    Invalid,
    Problems,
    Section,
    abs_path,
    boolean,
    choice,
    describe,
    did_you_mean,
    family_name,
    floats,
    fmt,
    ifname,
    ints,
    ip_addr,
    join,
    name,
    named_blocks,
    one_of,
    text,
    word_options,
)
from ._routes import parse_peers, parse_routes
from ._smtp import email_address, helo_name, smtp_server
from .enums import AuthType, InitialState, LvsBackend
from .model import (
    FrozenMap,
    GlobalDefs,
    Instance,
    IPIface,
    Script,
    SyncGroup,
    TrackRef,
    VirtualAddress,
    block_keys,
    config_keys,
)

# The global defaults of the objects' smtp_alert (see model.smtp_alert_on).
SMTP_ALERT_KEYS = ("smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker")

# Unix socket paths live in sockaddr_un.sun_path: 108 bytes including the NUL.
_SUN_PATH_MAX = 107

# The hook scripts, alike in instances and sync groups.
NOTIFY_KEYS = tuple(k for k in config_keys(SyncGroup) if k == "notify" or k.startswith("notify_"))

_AUTH_HINT = "it belongs inside authentication: {auth_type: PASS, auth_pass: ...}"
# auth_type and auth_pass written at the instance's level, as keepalived's flat
# syntax invites: say where they go rather than just "unknown key".
INSTANCE_HINTS = dict.fromkeys(block_keys(Instance, "authentication"), _AUTH_HINT)

# keepalived's range for track weights: enough for one tracked failure to move
# any priority across the whole 1..254 span.
_WEIGHT = ints(-254, 254)
# How many GARPs a burst may hold; far more than anyone needs, small enough to
# stop a typo from flooding the segment.
_REPEAT = ints(1, 10000)
# VRRP's "Count IPvX Addr" field is one octet.
_MAX_VIPS = 255
_AUTH_PASS_MAX = 8  # octets in the VRRPv2 authentication data field


def _control_socket(value: Any) -> str:
    path = text(value)
    # Relative to what? The agent's working directory differs between systemd,
    # a shell and `status`, so a relative path would name three sockets.
    if not path.startswith("/"):
        raise Invalid(f"must be an absolute path, got {path!r}")
    if len(path.encode()) > _SUN_PATH_MAX:
        raise Invalid(f"socket path is longer than {_SUN_PATH_MAX} bytes (the AF_UNIX limit)")
    return path


def _drain_file(value: Any) -> str:
    path = abs_path(value)
    if path.endswith("/") or os.path.basename(path) in (".", ".."):
        raise Invalid(f"must name a file, got the directory {path!r}")
    if "\0" in path:
        raise Invalid("must not contain a NUL character")
    return path


def parse_global_defs(problems: Problems, data: Any) -> GlobalDefs | None:
    if data is None:
        return GlobalDefs()
    if not isinstance(data, dict):
        problems.add("global_defs", f"expected a mapping, got {describe(data)}")
        return None
    start = len(problems)
    s = Section(problems, data, "global_defs", cls=GlobalDefs)
    kwargs = {
        "router_id": s.get("router_id", text),
        "control_socket": s.get("control_socket", _control_socket),
        "drain_file": s.get("drain_file", _drain_file),
        "vrrp_garp_master_delay": s.get("vrrp_garp_master_delay", floats()),
        "vrrp_garp_master_repeat": s.get("vrrp_garp_master_repeat", _REPEAT),
        "vrrp_garp_master_refresh": s.get("vrrp_garp_master_refresh", floats()),
        "vrrp_garp_master_refresh_repeat": s.get("vrrp_garp_master_refresh_repeat", _REPEAT),
        "vrrp_garp_interval": s.get("vrrp_garp_interval", floats()),
        "vrrp_gna_interval": s.get("vrrp_gna_interval", floats()),
        "vrrp_skip_check_adv_addr": s.get("vrrp_skip_check_adv_addr", boolean),
        "script_user": s.get("script_user", text),  # keepalived: "USER [GROUP]"
        "enable_script_security": s.get("enable_script_security", boolean),
        "lvs_backend": s.get("lvs_backend", choice(LvsBackend, upper=False)),
        "notify_fifo": s.get("notify_fifo", abs_path),
        "notification_email": tuple(
            addr for _, addr in s.checked_items("notification_email", email_address)
        ),
        "notification_email_from": s.get("notification_email_from", email_address),
        "smtp_server": s.get("smtp_server", smtp_server),
        "smtp_helo_name": s.get("smtp_helo_name", helo_name),
        # keepalived: whole seconds >= 1; fractions do no harm here
        "smtp_connect_timeout": s.get("smtp_connect_timeout", floats(lo_open=True)),
        **{key: s.get(key, boolean) for key in SMTP_ALERT_KEYS},
        "no_email_faults": s.get("no_email_faults", boolean),
        "metrics_listen": s.get("metrics_listen", listen_address),
    }
    if kwargs["drain_file"] == kwargs["control_socket"]:
        s.error("drain_file", f"must differ from control_socket ({kwargs['drain_file']})")
    return GlobalDefs(**kwargs) if len(problems) == start else None


def parse_scripts(problems: Problems, data: Any) -> dict[str, Script]:
    scripts: dict[str, Script] = {}
    for script_name, keypath, block in named_blocks(problems, data, "vrrp_scripts"):
        start = len(problems)
        s = Section(problems, block, keypath, cls=Script)
        script = Script(
            name=script_name,
            script=s.need("script", text) or "",
            interval=s.get("interval", floats(lo_open=True)),
            timeout=s.get("timeout", floats(lo_open=True)),
            weight=s.get("weight", _WEIGHT),
            fall=s.get("fall", ints(1)),
            rise=s.get("rise", ints(1)),
            user=s.get("user", text),
        )
        if len(problems) == start:
            scripts[script_name] = script
    return scripts


# --- virtual addresses --------------------------------------------------------


def _interface(value: Any) -> IPIface:
    word = text(value).strip()
    try:
        # ip_interface gives /32 or /128 when no prefix is written, as keepalived does
        iface = ip_interface(word)
    except ValueError:
        raise Invalid(f"{word!r} is not an IPv4 or IPv6 address[/prefix]") from None
    if iface.ip.is_unspecified or iface.ip.is_multicast:
        raise Invalid(f"{word!r} cannot be a virtual address (unspecified or multicast)")
    return iface


def _label(value: Any) -> str:
    label = text(value)
    if len(label) >= 16 or any(c.isspace() for c in label):
        raise Invalid(f"label {label!r} must be 1..15 characters without whitespace")
    return label


def _vip_from_string(item: str) -> VirtualAddress:
    # keepalived's syntax: "ADDR[/PLEN] [dev IFNAME] [label LABEL]"
    words = item.split()
    if not words:
        raise Invalid("must not be empty")
    address = _interface(words[0])
    options = word_options(item, words[1:], ("dev", "label"), "dev IFNAME, label LABEL")
    dev = ifname(options["dev"]) if "dev" in options else None
    label = _label(options["label"]) if "label" in options else None
    return VirtualAddress(address, dev, label)


def _vips(s: Section, key: str, *, required: bool) -> list[tuple[str, VirtualAddress]]:
    """(keypath, VIP) for each valid entry of virtual_ipaddress[_excluded]."""
    out: list[tuple[str, VirtualAddress]] = []
    for keypath, item in s.items(key, required=required):
        try:
            if isinstance(item, dict):
                start = len(s.problems)
                sub = Section(s.problems, item, keypath, config_keys(VirtualAddress))
                address = sub.need("address", _interface)
                dev = sub.get("dev", ifname, None)
                label = sub.get("label", _label, None)
                if len(s.problems) != start or address is None:
                    s.bad.add(key)
                    continue
                vip = VirtualAddress(address, dev, label)
            elif isinstance(item, str):
                vip = _vip_from_string(item)
            else:
                raise Invalid(
                    f"expected 'ADDR[/PLEN] [dev IF] [label L]' or a mapping, got {describe(item)}"
                )
            if vip.label is not None and vip.address.version == 6:
                raise Invalid("label applies to IPv4 addresses only (Linux has no IPv6 labels)")
        except Invalid as err:
            s.error(key, str(err), keypath)
            continue
        out.append((keypath, vip))
    return out


# --- tracking -----------------------------------------------------------------


def _tracks(s: Section, key: str, check_name: Check[str]) -> list[tuple[str, TrackRef]]:
    """(keypath of the name, TrackRef); items are "NAME" or {name: NAME, weight: W}."""
    out: list[tuple[str, TrackRef]] = []
    for keypath, item in s.items(key):
        if isinstance(item, dict):
            start = len(s.problems)
            sub = Section(s.problems, item, keypath, config_keys(TrackRef))
            ref_name = sub.need("name", check_name)
            weight = sub.get("weight", _WEIGHT, None)
            if ref_name is None or len(s.problems) != start:
                s.bad.add(key)
                continue
            out.append((sub.at("name"), TrackRef(ref_name, weight)))
        else:
            try:
                out.append((keypath, TrackRef(check_name(item))))
            except Invalid as err:
                s.error(key, str(err), keypath)
    return out


# --- instances ----------------------------------------------------------------


@dataclass
class InstanceFacts:
    """What the cross-instance rules need, kept even when the instance has other errors."""

    keypath: str
    interface: str | None = None
    vrid: int | None = None
    family: int | None = None
    vips: list[tuple[str, VirtualAddress]] = field(default_factory=list)
    # use_vmac as written: True (keepalived's default name), a name, or None (off)
    vmac: bool | str | None = None
    name: str = ""


def _use_vmac(value: Any) -> bool | str | None:
    """keepalived's `use_vmac [NAME]`: true (default name), false, or NAME."""
    if isinstance(value, bool):
        return value or None
    return ifname(value)


def _check_vmac(s: Section, facts: InstanceFacts, settings: Mapping[str, Any], peers: list) -> None:
    if facts.vmac is None:
        if settings["vmac_xmit_base"] and s.ok("vmac_xmit_base", "use_vmac"):
            s.error("vmac_xmit_base", "vmac_xmit_base applies only with use_vmac")
        return
    if facts.vmac == facts.interface:
        s.error("use_vmac", f"the vmac cannot be the instance's own interface {facts.vmac}")
    if peers and not settings["vmac_xmit_base"] and s.ok("vmac_xmit_base"):
        # keepalived sets vmac_xmit_base itself here ("unicast with use_vmac
        # requires vmac_xmit_base - setting"): unicast adverts sent with the
        # virtual MAC would teach the peers that our address lives at it.
        s.error(
            "use_vmac",
            "unicast_peer with use_vmac needs vmac_xmit_base: true"
            " (keepalived turns it on with a warning)",
        )


def _advert_int(s: Section, version: int, value: float) -> float:
    if version == 2:
        if not value.is_integer() or not 1 <= value <= 255:
            s.error(
                "advert_int",
                f"VRRPv2 advertises whole seconds: must be an integer 1..255, got {fmt(value)}",
            )
        return value
    centis = value * 100
    if abs(centis - round(centis)) > 1e-6:
        s.error(
            "advert_int",
            f"VRRPv3 advertises centiseconds: must be a multiple of 0.01, got {fmt(value)}",
        )
    elif not 1 <= round(centis) <= 4095:
        s.error("advert_int", f"VRRPv3 allows 0.01..40.95 seconds, got {fmt(value)}")
    # normalise 0.1 + 0.2 style float noise so equal settings compare equal
    return round(centis) / 100


def _authentication(s: Section) -> tuple[AuthType | None, str | None]:
    block = s.mapping("authentication")
    if block is None:
        return None, None
    keypath = s.at("authentication")
    sub = Section(s.problems, block, keypath, block_keys(Instance, "authentication"))
    raw_type = block.get("auth_type")
    if isinstance(raw_type, str) and raw_type.strip().upper() == "AH":
        sub.error("auth_type", "auth_type AH is not supported; use PASS or none")
        return None, None
    # "none" (or null) spells out "no authentication", which templating finds handy
    if raw_type is None or (isinstance(raw_type, str) and raw_type.strip().lower() == "none"):
        if "auth_type" not in block:
            sub.error("auth_type", "required key is missing (PASS or none)")
        elif "auth_pass" in block:
            sub.error("auth_pass", "auth_pass given but auth_type is none")
        return None, None
    auth_type = sub.get("auth_type", choice(AuthType), None)
    auth_pass = sub.need("auth_pass", text)
    if auth_pass is not None and len(auth_pass.encode()) > _AUTH_PASS_MAX:
        # keepalived silently truncates; two peers with passwords sharing the first
        # 8 characters would then agree while their configs look different.
        sub.error(
            "auth_pass",
            f"auth_pass is longer than {_AUTH_PASS_MAX} characters"
            " (VRRPv2 carries 8 octets; keepalived would silently truncate it)",
        )
    if sub.bad:
        s.bad.add("authentication")
    return auth_type, auth_pass


def parse_instance(
    problems: Problems,
    inst_name: str,
    keypath: str,
    data: Mapping[Any, Any],
    script_names: Sequence[str],
) -> tuple[Instance | None, InstanceFacts]:
    start = len(problems)
    s = Section(problems, data, keypath, cls=Instance, hints=INSTANCE_HINTS)
    facts = InstanceFacts(keypath, name=inst_name)
    interface = facts.interface = s.need("interface", ifname)
    facts.vrid = s.need("virtual_router_id", ints(1, 255))
    settings: dict[str, Any] = {
        "priority": s.get("priority", ints(1, 255)),
        "advert_int": s.get("advert_int", floats(lo_open=True)),
        "version": s.get("version", one_of(2, 3)),
        "state": s.get("state", choice(InitialState)),
        "nopreempt": s.get("nopreempt", boolean),
        "preempt_delay": s.get("preempt_delay", floats(0, 1000)),
        "accept": s.get("accept", boolean),
        "unicast_src_ip": s.get("unicast_src_ip", ip_addr),
        # keepalived allows 0, but Linux refuses to send with TTL 0 (EINVAL)
        "unicast_ttl": s.get("unicast_ttl", ints(1, 255)),
        **{key: s.get(key, text) for key in NOTIFY_KEYS},
        "exclusive_with": s.get("exclusive_with", name),
        "v3_checksum_pseudo_header": s.get("v3_checksum_pseudo_header", boolean),
        "garp_master_delay": s.get("garp_master_delay", floats()),
        "garp_master_repeat": s.get("garp_master_repeat", _REPEAT),
        "garp_master_refresh": s.get("garp_master_refresh", floats()),
        "garp_master_refresh_repeat": s.get("garp_master_refresh_repeat", _REPEAT),
        "vmac_xmit_base": s.get("vmac_xmit_base", boolean),
        "skip_check_adv_addr": s.get("skip_check_adv_addr", boolean),
        "smtp_alert": s.get("smtp_alert", boolean),
    }
    facts.vmac = s.get("use_vmac", _use_vmac, None)
    peer_ranges = parse_peers(s)
    peers = [(keypath, peer) for keypath, peer, _ in peer_ranges]
    # `unicast_peer: []` written out is unicast with nobody to talk to
    # (anycast); absent (or null) is multicast, as in keepalived.
    unicast_no_peer = data.get("unicast_peer") == []
    routes = parse_routes(s)
    settings["auth_type"], settings["auth_pass"] = _authentication(s)
    vips = _vips(s, "virtual_ipaddress", required=True)
    excluded = _vips(s, "virtual_ipaddress_excluded", required=False)
    tracks = {
        "track_script": _tracks(s, "track_script", name),
        "track_interface": _tracks(s, "track_interface", ifname),
        "track_file": _tracks(s, "track_file", abs_path),
    }
    facts.family = vips[0][1].address.version if vips else None
    facts.vips = vips + excluded
    if s.ok("version", "advert_int") and s.has("advert_int"):
        settings["advert_int"] = _advert_int(s, settings["version"], settings["advert_int"])
    _check_addresses(s, settings, facts.family, vips, peers, facts.vips)
    _check_preemption(s, settings)
    _check_vmac(s, facts, settings, peers)
    if settings["auth_type"] is not None and s.ok("version") and settings["version"] == 3:
        s.error("authentication", "authentication is VRRPv2 only (RFC 9568 removed it)")
    _check_tracks(s, tracks, script_names)

    if len(problems) != start or interface is None or facts.vrid is None:
        return None, facts
    instance = Instance(
        name=inst_name,
        interface=interface,
        virtual_router_id=facts.vrid,
        unicast_peer=tuple(peer for _, peer in peers),
        unicast_peer_ttl=FrozenMap({p: r for _, p, r in peer_ranges if r is not None}),
        unicast_no_peer=unicast_no_peer,
        virtual_routes=tuple(route for _, route in routes),
        virtual_ipaddress=tuple(vip for _, vip in vips),
        virtual_ipaddress_excluded=tuple(vip for _, vip in excluded),
        **{key: tuple(ref for _, ref in refs) for key, refs in tracks.items()},
        # a name for now; check_instances_together resolves `true`
        use_vmac=facts.vmac if isinstance(facts.vmac, str) else None,
        **settings,
    )
    return instance, facts


def _check_addresses(
    s: Section,
    settings: Mapping[str, Any],
    family: int | None,
    vips: list[tuple[str, VirtualAddress]],
    peers: list[tuple[str, IPAddr]],
    all_vips: list[tuple[str, VirtualAddress]],
) -> None:
    src: IPAddr | None = settings["unicast_src_ip"]
    if family is not None:
        fam = family_name(family)
        for vip_keypath, vip in vips[1:]:
            if vip.address.version != family:
                s.error(
                    "virtual_ipaddress",
                    f"{family_name(vip.address.version)} address in an {fam} instance:"
                    " one instance carries one address family (use a second instance,"
                    " or virtual_ipaddress_excluded)",
                    vip_keypath,
                )
        if len(vips) > _MAX_VIPS:
            s.error("virtual_ipaddress", f"at most {_MAX_VIPS} addresses fit in an advertisement")
        if family == 6 and settings["version"] == 2 and s.ok("version"):
            s.error("version", "VRRPv2 is IPv4-only; an IPv6 instance needs version: 3")
        if src is not None and src.version != family:
            s.error("unicast_src_ip", f"{family_name(src.version)} address in an {fam} instance")
        for peer_keypath, peer in peers:
            if peer.version != family:
                s.error(
                    "unicast_peer",
                    f"{family_name(peer.version)} address in an {fam} instance",
                    peer_keypath,
                )
    seen_peers: dict[IPAddr, str] = {}
    for peer_keypath, peer in peers:
        if peer in seen_peers:
            s.error("unicast_peer", f"duplicate of {seen_peers[peer]}", peer_keypath)
        elif peer == src:
            s.error("unicast_peer", f"{peer} is this node's own unicast_src_ip", peer_keypath)
        seen_peers.setdefault(peer, peer_keypath)
    seen_vips: dict[Any, str] = {}
    for vip_keypath, vip in all_vips:
        ip = vip.address.ip
        if ip in seen_vips:
            s.error(
                "virtual_ipaddress", f"{ip} is listed twice (first at {seen_vips[ip]})", vip_keypath
            )
        seen_vips.setdefault(ip, vip_keypath)


def _check_preemption(s: Section, settings: Mapping[str, Any]) -> None:
    if not (settings["nopreempt"] and s.ok("nopreempt")):
        return
    if settings["state"] == InitialState.MASTER and s.ok("state"):
        s.error("nopreempt", "nopreempt requires initial state BACKUP")
    if settings["priority"] == 255 and s.ok("priority"):
        s.error(
            "nopreempt",
            "an address owner (priority 255) always preempts; drop nopreempt or lower the priority",
        )
    if settings["preempt_delay"] > 0 and s.ok("preempt_delay"):
        s.error("preempt_delay", "preempt_delay contradicts nopreempt (remove one of them)")


def _check_tracks(
    s: Section,
    tracks: Mapping[str, list[tuple[str, TrackRef]]],
    script_names: Sequence[str],
) -> None:
    for ref_keypath, ref in tracks["track_script"]:
        if ref.name not in script_names:
            s.error(
                "track_script",
                f"unknown vrrp_script {ref.name!r}{did_you_mean(ref.name, script_names)}",
                ref_keypath,
            )
    for key, refs in tracks.items():
        seen: dict[str, str] = {}
        for ref_keypath, ref in refs:
            if ref.name in seen:
                s.error(
                    key, f"{ref.name!r} is tracked twice (first at {seen[ref.name]})", ref_keypath
                )
            seen.setdefault(ref.name, ref_keypath)


def _vmac_candidates(vrid: int, family: int) -> Iterator[str]:
    """keepalived's create_vmac_name() order for the prefix "vrrp": vrrp.VRID,
    then (IPv6) vrrp6.VRID, then vrrp1.VRID, vrrp2.VRID ... (skipping 6)."""
    yield f"vrrp.{vrid}"
    if family == 6:
        yield f"vrrp6.{vrid}"
    for num in range(1, 1000):
        if num != 6 or family == 4:
            yield f"vrrp{num}.{vrid}"


def resolve_vmac_names(problems: Problems, all_facts: Sequence[InstanceFacts]) -> dict[str, str]:
    """keypath -> vmac name for every instance with use_vmac. Names given are
    taken first, then `true` gets keepalived's default name, in file order,
    skipping names already taken (as create_vmac_name does)."""
    taken: dict[str, str] = {}
    for facts in all_facts:
        if isinstance(facts.vmac, str):
            if facts.vmac in taken:
                problems.add(
                    join(facts.keypath, "use_vmac"),
                    f"vmac interface {facts.vmac} is already used by {taken[facts.vmac]}",
                )
            taken.setdefault(facts.vmac, facts.keypath)
    interfaces = {f.interface: f.keypath for f in all_facts if f.interface is not None}
    for vmac, keypath in taken.items():
        if vmac in interfaces and interfaces[vmac] != keypath:
            problems.add(
                join(keypath, "use_vmac"),
                f"{vmac} is the interface of {interfaces[vmac]}, it cannot also be a vmac",
            )
    for facts in all_facts:
        if facts.vmac is True and facts.vrid is not None and facts.family is not None:
            for candidate in _vmac_candidates(facts.vrid, facts.family):
                if candidate not in taken and candidate not in interfaces:
                    taken[candidate] = facts.keypath
                    break
    return {keypath: vmac for vmac, keypath in taken.items()}


def check_instances_together(problems: Problems, all_facts: Sequence[InstanceFacts]) -> None:
    """Rules between instances: one VRID per (interface, family), one owner per VIP."""
    vrids: dict[tuple[str, int, int], str] = {}
    owners: dict[Any, str] = {}
    for facts in all_facts:
        if facts.interface is not None and facts.vrid is not None and facts.family is not None:
            slot = (facts.interface, facts.vrid, facts.family)
            if slot in vrids:
                problems.add(
                    join(facts.keypath, "virtual_router_id"),
                    f"virtual_router_id {facts.vrid} on {facts.interface}"
                    f" ({family_name(facts.family)}) is already used by {vrids[slot]}",
                )
            else:
                vrids[slot] = facts.keypath
        claimed: set[Any] = set()
        for vip_keypath, vip in facts.vips:
            ip = vip.address.ip
            if ip in owners and ip not in claimed:
                problems.add(vip_keypath, f"{ip} is already a VIP of {owners[ip]}")
            claimed.add(ip)
        for ip in claimed:
            owners.setdefault(ip, facts.keypath)


def parse_sync_groups(
    problems: Problems, data: Any, instance_names: Sequence[str]
) -> dict[str, SyncGroup]:
    groups: dict[str, SyncGroup] = {}
    member_of: dict[str, str] = {}
    for group_name, keypath, block in named_blocks(problems, data, "vrrp_sync_groups"):
        start = len(problems)
        s = Section(problems, block, keypath, cls=SyncGroup)
        members: list[str] = []
        for member_keypath, member in s.checked_items("group", name, required=True):
            if member not in instance_names:
                s.error(
                    "group",
                    f"unknown vrrp_instance {member!r}{did_you_mean(member, instance_names)}",
                    member_keypath,
                )
            elif member in members:
                s.error("group", f"{member!r} is listed twice", member_keypath)
            elif member in member_of:
                s.error(
                    "group",
                    f"{member!r} is already in {member_of[member]}"
                    " (an instance can be in one sync group only)",
                    member_keypath,
                )
            else:
                member_of[member] = keypath
            members.append(member)
        notify = {key: s.get(key, text) for key in NOTIFY_KEYS}
        weights = s.get("sync_group_tracking_weight", boolean)
        alert = s.get("smtp_alert", boolean)
        if len(problems) == start:
            groups[group_name] = SyncGroup(
                name=group_name,
                group=tuple(members),
                sync_group_tracking_weight=weights,
                **notify,
                smtp_alert=alert,
            )
    return groups


def check_exclusive_pairs(
    problems: Problems,
    instances: Mapping[str, Instance],
    instance_names: Sequence[str],
    groups: Mapping[str, SyncGroup],
) -> None:
    """exclusive_with pairs two instances; a pair is symmetric, so naming it on
    one side is enough, but the two sides must not disagree."""
    partner: dict[str, str] = {}
    for inst in instances.values():
        other = inst.exclusive_with
        if other is None:
            continue
        keypath = join(join("vrrp_instances", inst.name), "exclusive_with")
        if other == inst.name:
            problems.add(keypath, "an instance cannot be exclusive with itself")
            continue
        if other not in instance_names:
            problems.add(
                keypath,
                f"unknown vrrp_instance {other!r}{did_you_mean(other, instance_names)}",
            )
            continue
        back = instances[other].exclusive_with if other in instances else None
        if back is not None and back != inst.name:
            problems.add(
                keypath,
                f"{other} is exclusive with {back}, not with {inst.name}"
                " (exclusive_with pairs exactly two instances)",
            )
            continue
        for name_, mate in ((inst.name, other), (other, inst.name)):
            if partner.setdefault(name_, mate) != mate:
                problems.add(
                    keypath,
                    f"{name_} is already exclusive with {partner[name_]}"
                    " (exclusive_with pairs exactly two instances)",
                )
        for group in groups.values():
            for member in (inst.name, other):
                if member in group.group:
                    # A group moves its members together, a pair keeps two apart:
                    # combined, one instance's election would drag three others.
                    problems.add(
                        keypath,
                        f"{member} is in sync group {group.name}: an exclusive pair cannot"
                        " also be in a sync group",
                    )
