"""keepalived.conf (as a tree from `reader`) to the agent's configuration.

keepalived's semantics are kept, not just its words: where keepalived's
default differs from ours it is written out (every instance carries its
`version`, `enable_script_security` is off unless set, `accept` and the
state/priority pair are resolved the way `vrrp_complete_instance` resolves
them), and what keepalived changes on its own (strict mode, nopreempt with
state MASTER, ...) is changed here too, with a warning on the line that
caused it. The reference is keepalived 2.2.7 (Debian 12's, our interop peer):
vrrp/vrrp.c `vrrp_complete_instance`, core/global_data.c, check/check_data.c.

Every keyword ends in one of three ways: converted; a warning (keepalived
ignores it too, or dropping it changes nothing the agent does); refused
(dropping it would change behaviour), which makes the import fail.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_interface
from typing import Any, Callable

from vrrp_agent.config._reader import Invalid
from vrrp_agent.config._routes import peer_from_string, route_from_string
from vrrp_agent.keepalived.reader import Message, Node, Where, boolean, command_words
from vrrp_agent.keepalived.unsupported import IGNORED, REFUSED

# Booleans of global_defs kept under their own name.
# keepalived 2.2.7's GARP/NA defaults (vrrp.h VRRP_GARP_*, global_data.c). The
# agent's are the same today; the import writes them so that the file keeps
# meaning them if ours ever change.
KEEPALIVED_GARP_DEFAULTS = {
    "vrrp_garp_master_delay": 5,
    "vrrp_garp_master_repeat": 5,
    "vrrp_garp_master_refresh": 0,
    "vrrp_garp_master_refresh_repeat": 1,
    "vrrp_garp_interval": 0,
    "vrrp_gna_interval": 0,
}
CHECKERS = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK")


def _inherit(rs: dict[str, Any], inherit: dict[str, Any]) -> None:
    """A virtual or real server's connect_timeout, retry and delay_before_retry
    into the real server's checker, where it sets none (MISC_CHECK has no
    connect_timeout)."""
    for kind in CHECKERS:
        if kind in rs:
            for key, value in inherit.items():
                if value is not None and not (kind == "MISC_CHECK" and key == "connect_timeout"):
                    rs[kind].setdefault(key, value)


_GLOBAL_FLAGS = (
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "no_email_faults",
    "enable_script_security",
)

VRRP_PRIO_OWNER = 255
VRRP_PRIO_DFL = 100
DEFAULT_MCAST = {"vrrp_mcast_group4": "224.0.0.18", "vrrp_mcast_group6": "ff02::12"}

STRICT_NO_TRAFFIC = (
    "with no accept mode the VIP takes no traffic addressed to it (only forwarded traffic):"
    " the classic 'VIP unreachable with vrrp_strict'; set 'accept' in the instance if you"
    " want it reachable"
)


@dataclass
class _Script:
    name: str
    data: dict[str, Any]
    where: Where


@dataclass
class _TrackFile:
    path: str | None = None
    weight: int = 1
    where: Where | None = None


@dataclass
class Result:
    """The agent's configuration as plain data, and what was said about it."""

    data: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    # Where each key path of `data` came from, for messages about the output.
    origins: dict[str, Where] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return any(m.refused for m in self.messages)


class _Converter:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.origins: dict[str, Where] = {}
        self.global_defs: dict[str, Any] = {}
        self.scripts: dict[str, dict[str, Any]] = {}
        self.track_files: dict[str, _TrackFile] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        self.instance_nodes: dict[str, Node] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.virtual_servers: list[dict[str, Any]] = []
        self.vrrp_version = 2  # keepalived's global default (set_vrrp_defaults)
        self.vrrp_version_where: Where | None = None
        self.strict = False
        self.strict_where: Where | None = None
        self.first_script: Where | None = None

    # ----------------------------------------------------------------- saying

    def warn(self, where: Where, text: str) -> None:
        self.messages.append(Message(where, text, refused=False))

    def refuse(self, where: Where, text: str) -> None:
        self.messages.append(Message(where, text, refused=True))

    def unknown(self, node: Node, section: str) -> None:
        self.warn(
            node.where,
            f"{node.keyword}: not a keepalived keyword in {section}; keepalived ignores it"
            " too ('Unknown keyword'), and so does the import",
        )

    def unsupported(self, node: Node, why: str = "") -> None:
        self.refuse(
            node.where,
            f"{node.keyword}: not supported by the agent"
            + (f" ({why})" if why else "")
            + "; dropping it would change what this file does",
        )

    # ----------------------------------------------------------- values

    def word(self, node: Node, index: int = 0) -> str | None:
        if len(node.args) <= index:
            self.refuse(node.where, f"{node.keyword}: a value is missing")
            return None
        return node.args[index]

    def number(
        self, node: Node, lo: float | None = None, hi: float | None = None, integer: bool = False
    ) -> float | int | None:
        raw = self.word(node)
        if raw is None:
            return None
        try:
            value: float | int = int(raw) if integer else float(raw)
        except ValueError:
            kind = "an integer" if integer else "a number"
            self.refuse(node.where, f"{node.keyword}: {raw!r} is not {kind}")
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.refuse(node.where, f"{node.keyword}: {raw} is out of range {lo}..{hi}")
            return None
        if not integer and float(value).is_integer():
            value = int(value)
        return value

    def flag(self, node: Node) -> bool | None:
        value = boolean(node)
        if value is None:
            self.refuse(
                node.where,
                f"{node.keyword}: {node.args[0]!r} is not a boolean (on|off|true|false|yes|no)",
            )
        return value

    def command(self, node: Node, hook: bool = False) -> str | None:
        """A script or notify command as keepalived runs it: its first word,
        split again with '...' quoting and escapes (notify.c); the agent
        shlex-splits the result back into the same argv."""
        if not node.args:
            self.refuse(node.where, f"{node.keyword}: the command is missing")
            return None
        argv = command_words(node)
        if not argv:
            self.refuse(node.where, f"{node.keyword}: the command cannot be split into words")
            return None
        if hook and len(node.args) > 1:
            # notify.c: a hook's words after the command are USER [GROUP].
            who = " ".join(node.args[1:3])
            if who != self.global_defs.get("script_user"):
                self.refuse(
                    node.where,
                    f"{node.keyword}: keepalived runs this hook as user {who!r} (the words"
                    " after the command are USER [GROUP]; with no such user it drops the"
                    " hook); the agent runs every hook as script_user: quote the whole"
                    " command if they are arguments, or set script_user to them",
                )
                return None
        elif len(node.args) > 1:
            self.warn(
                node.where,
                f"{node.keyword}: keepalived runs only {node.args[0]!r} and ignores"
                f" {' '.join(node.args[1:])!r}; so does the import (quote the whole"
                " command to pass arguments)",
            )
        return shlex.join(argv)

    def block(self, node: Node) -> list[Node]:
        if node.children is None:
            self.refuse(node.where, f"{node.keyword}: expected a block {{ ... }}")
            return []
        return node.children

    def script_seen(self, node: Node) -> None:
        if self.first_script is None:
            self.first_script = node.where

    def note(self, keypath: str, where: Where) -> None:
        self.origins.setdefault(keypath, where)

    # ------------------------------------------------------------ the file

    def run(self, nodes: list[Node]) -> dict[str, Any]:
        handlers: dict[str, Callable[[Node], None]] = {
            "global_defs": self.global_defs_block,
            "vrrp_script": self.script_block,
            "vrrp_track_file": self.track_file_block,
            "vrrp_instance": self.instance_block,
            "vrrp_sync_group": self.sync_group_block,
            "virtual_server": self.virtual_server_block,
        }
        # Two passes: scripts, track files and the global defaults first, so
        # an instance can use what is defined after it, as in keepalived.
        first = ("global_defs", "vrrp_script", "vrrp_track_file")
        for node in nodes:
            if node.keyword in first:
                handlers[node.keyword](node)
        for node in nodes:
            if node.keyword in first:
                continue
            if node.keyword in handlers:
                handlers[node.keyword](node)
            elif node.keyword in REFUSED["top level"]:
                self.unsupported(node, REFUSED["top level"][node.keyword])
            else:
                self.unknown(node, "the top level")
        return self.finish()

    # -------------------------------------------------------------- global_defs

    def global_defs_block(self, node: Node) -> None:
        g = self.global_defs
        for item in self.block(node):
            k = item.keyword
            path = f"global_defs.{k}"
            if k == "router_id":
                if (v := self.word(item)) is not None:
                    g["router_id"] = v
            elif k == "notification_email":
                emails = [c.keyword for c in self.block(item)] + [
                    a for c in (item.children or []) for a in c.args
                ]
                g["notification_email"] = emails
            elif k in ("notification_email_from", "smtp_helo_name"):
                if (v := self.word(item)) is not None:
                    g[k] = v
            elif k == "smtp_server":
                if self.word(item) is not None:
                    g["smtp_server"] = " ".join(item.args[:2])
            elif k == "smtp_connect_timeout":
                if (n := self.number(item, 1, 3600, integer=True)) is not None:
                    g[k] = n
            elif k in _GLOBAL_FLAGS:
                if (b := self.flag(item)) is not None:
                    g[k] = b
            elif k == "script_user":
                if self.word(item) is not None:
                    g[k] = " ".join(item.args[:2])
            elif k == "vrrp_version":
                n = self.number(item, 2, 3, integer=True)
                if n is not None:
                    self.vrrp_version = int(n)
                    self.vrrp_version_where = item.where
            elif k == "vrrp_strict":
                b = self.flag(item)
                if b is not None:
                    self.strict = b
                    self.strict_where = item.where
            elif k == "vrrp_skip_check_adv_addr":
                if (b := self.flag(item)) is not None:
                    g[k] = b
            elif k in (
                "vrrp_garp_master_delay",
                "vrrp_garp_master_refresh",
                "vrrp_garp_interval",
                "vrrp_gna_interval",
            ):
                if (n := self.number(item, 0)) is not None:
                    g[k] = n
                    if k in ("vrrp_garp_interval", "vrrp_gna_interval") and n:
                        self.warn(
                            item.where,
                            f"{k}: the spacing between the messages of one burst (keepalived's"
                            " meaning), not a periodic re-announcement, which is"
                            " vrrp_garp_master_refresh",
                        )
            elif k in ("vrrp_garp_master_repeat", "vrrp_garp_master_refresh_repeat"):
                if (n := self.number(item, 1, 10000, integer=True)) is not None:
                    g[k] = n
            elif k in DEFAULT_MCAST:
                v = self.word(item)
                if v is not None and v != DEFAULT_MCAST[k]:
                    self.unsupported(item, REFUSED["global_defs"][k])
            elif k in ("notify_fifo", "vrrp_notify_fifo"):
                if (v := self.word(item)) is not None:
                    g["notify_fifo"] = v
                    if len(item.args) > 1:
                        self.warn(
                            item.where,
                            f"{k}: the fifo's owner ({' '.join(item.args[1:])}) is not set by"
                            " the agent; it creates the fifo 0600 as its own user",
                        )
                    if k == "notify_fifo":
                        self.warn(
                            item.where,
                            "notify_fifo: the agent writes VRRP transitions to it; keepalived"
                            " also writes checker events there",
                        )
            elif k in ("vrrp_higher_prio_send_advert", "vrrp_lower_prio_no_advert"):
                # off is keepalived's default and the agent's behaviour
                if self.flag(item):
                    self.unsupported(item, REFUSED["global_defs"][k])
            elif k in ("vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat"):
                if self.number(item, 0):
                    self.unsupported(item, REFUSED["global_defs"][k])
            elif k in IGNORED["global_defs"]:
                self.warn(item.where, f"{k}: ignored ({IGNORED['global_defs'][k]})")
            elif k in REFUSED["global_defs"]:
                self.unsupported(item, REFUSED["global_defs"][k])
            else:
                self.unknown(item, "global_defs")
            self.note(path, item.where)

    # ------------------------------------------------------------ vrrp_script

    def script_block(self, node: Node) -> None:
        name = node.args[0] if node.args else None
        if name is None:
            self.refuse(node.where, "vrrp_script: the script's name is missing")
            return
        self.script_seen(node)
        s: dict[str, Any] = {}
        for item in self.block(node):
            k = item.keyword
            if k == "script":
                if (c := self.command(item)) is not None:
                    s["script"] = c
            elif k in ("interval", "timeout"):
                # keepalived reads whole seconds here; a timeout of 0 it makes 1.
                n = self.number(item, 0, integer=True)
                if n is not None:
                    if k == "timeout" and n == 0:
                        self.warn(
                            item.where, "timeout 0: keepalived makes it 1, so does the import"
                        )
                        n = 1
                    if k == "interval" and n == 0:
                        self.refuse(item.where, "interval: must be at least 1")
                        continue
                    s[k] = n
            elif k == "weight":
                if "reverse" in item.args[1:]:
                    self.unsupported(item, REFUSED["vrrp_instance"]["weight reverse"])
                    continue
                if (n := self.number(item, -253, 253, integer=True)) is not None:
                    s["weight"] = n
            elif k in ("rise", "fall"):
                if (n := self.number(item, 1, integer=True)) is not None:
                    s[k] = n
            elif k == "user":
                if self.word(item) is not None:
                    s["user"] = " ".join(item.args[:2])
            elif k == "init_fail":
                self.unsupported(item, REFUSED["vrrp_script"]["init_fail"])
            else:
                self.unknown(item, f"vrrp_script {name}")
        if "script" not in s:
            # keepalived: "No script set for vrrp_script X - removing"
            self.warn(
                node.where,
                f"vrrp_script {name}: no script set; keepalived removes it, so does the import",
            )
            return
        self.scripts[name] = s
        self.note(f"vrrp_scripts.{name}", node.where)

    def track_file_block(self, node: Node) -> None:
        name = node.args[0] if node.args else None
        if name is None:
            self.refuse(node.where, "vrrp_track_file: the name is missing")
            return
        tf = _TrackFile(where=node.where)
        for item in self.block(node):
            if item.keyword == "file":
                tf.path = self.word(item)
            elif item.keyword == "weight":
                if "reverse" in item.args[1:]:
                    self.unsupported(item, REFUSED["vrrp_instance"]["weight reverse"])
                n = self.number(item, -254, 254, integer=True)
                if n is not None:
                    tf.weight = int(n)
            elif item.keyword == "init_file":
                self.unsupported(item, REFUSED["vrrp_track_file"]["init_file"])
            else:
                self.unknown(item, f"vrrp_track_file {name}")
        self.track_files[name] = tf

    # ------------------------------------------------------------ vrrp_instance

    def instance_block(self, node: Node) -> None:
        name = node.args[0] if node.args else None
        if name is None:
            self.refuse(node.where, "vrrp_instance: the instance's name is missing")
            return
        if name in self.instances:
            self.refuse(node.where, f"vrrp_instance {name}: defined twice")
            return
        i: dict[str, Any] = {}
        meta: dict[str, Any] = {"where": node.where}
        base = f"vrrp_instances.{name}"
        for item in self.block(node):
            k = item.keyword
            self.note(f"{base}.{k}", item.where)
            if k == "interface":
                if (v := self.word(item)) is not None:
                    i["interface"] = v
            elif k == "virtual_router_id" or k == "priority":
                if (n := self.number(item, 1, 255, integer=True)) is not None:
                    i[k] = n
            elif k == "advert_int":
                if (n := self.number(item, 0.01, 255)) is not None:
                    i[k] = n
            elif k == "version":
                if (n := self.number(item, 2, 3, integer=True)) is not None:
                    i[k] = n
            elif k == "native_ipv6":
                meta["native_ipv6"] = item.where
            elif k == "state":
                v = self.word(item)
                if v is not None:
                    if v.upper() not in ("MASTER", "BACKUP"):
                        self.refuse(item.where, f"state: {v!r} is not MASTER or BACKUP")
                    else:
                        i["state"] = v.upper()
                        meta["state_where"] = item.where
            elif k == "nopreempt":
                i["nopreempt"] = True
                meta["nopreempt_where"] = item.where
            elif k == "preempt":
                i["nopreempt"] = False
            elif k == "preempt_delay":
                if (n := self.number(item, 0, 1000)) is not None:
                    i[k] = n
                    meta["preempt_delay_where"] = item.where
            elif k == "accept":
                i["accept"] = True
                meta["accept_where"] = item.where
            elif k == "no_accept":
                i["accept"] = False
            elif k == "strict_mode":
                b = self.flag(item)
                if b is not None:
                    meta["strict"] = b
                    meta["strict_where"] = item.where
            elif k in ("unicast_src_ip", "mcast_src_ip"):
                # One setting in keepalived: the source address of adverts,
                # multicast or unicast alike; the agent's unicast_src_ip too.
                if (v := self.word(item)) is not None:
                    i["unicast_src_ip"] = v
            elif k == "unicast_peer":
                peers = self.as_written(item, "unicast_peer", peer_from_string)
                if peers:
                    i["unicast_peer"] = peers
                    meta["unicast_where"] = item.where
                elif item.children is not None:
                    # keepalived (without unicast_fault_no_peer) runs multicast
                    # then; the agent's `unicast_peer: []` means no peer at all.
                    self.warn(item.where, "unicast_peer: empty; multicast, as keepalived does")
            elif k == "unicast_ttl":
                # keepalived takes 0..255; Linux refuses to send with TTL 0
                if (n := self.number(item, 1, 255, integer=True)) is not None:
                    i[k] = n
            elif k == "virtual_routes":
                i[k] = self.as_written(item, "virtual_routes", route_from_string)
            elif k == "authentication":
                self.authentication(item, i, meta)
            elif k in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
                i[k] = [v for c in self.block(item) if (v := self.vip(c)) is not None]
            elif k == "track_script":
                i[k] = [self.track_ref(c) for c in self.block(item)]
                meta["track_script_where"] = item.where
            elif k == "track_interface":
                i[k] = [self.track_ref(c) for c in self.block(item)]
            elif k == "track_file":
                refs = [self.track_file_ref(c) for c in self.block(item)]
                i[k] = [r for r in refs if r is not None]
            elif k in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
                if (c := self.command(item, hook=True)) is not None:
                    i[k] = c
                    self.script_seen(item)
            elif k == "smtp_alert":
                if (b := self.flag(item)) is not None:
                    i[k] = b
            elif k in ("garp_master_delay", "garp_master_refresh"):
                if (n := self.number(item, 0)) is not None:
                    i[k] = n
            elif k in ("garp_master_repeat", "garp_master_refresh_repeat"):
                if (n := self.number(item, 1, 10000, integer=True)) is not None:
                    i[k] = n
            elif k == "use_vmac":
                # keepalived: `use_vmac [NAME] [MAC]`, a word with ':' being the MAC.
                names = [a for a in item.args[:2] if ":" not in a]
                if any(":" in a for a in item.args[:2]):
                    self.unsupported(item, "use_vmac with a MAC address of its own")
                i["use_vmac"] = names[0] if names else True
                meta["vmac_where"] = item.where
            elif k == "vmac_xmit_base":
                i["vmac_xmit_base"] = True
            elif k == "skip_check_adv_addr":
                if (b := self.flag(item)) is not None:
                    i[k] = b
            elif k in ("garp_lower_prio_delay", "garp_lower_prio_repeat"):
                if self.number(item, 0):
                    self.unsupported(item, REFUSED["vrrp_instance"][k])
            elif k in (
                "lower_prio_no_advert",
                "higher_prio_send_advert",
                "notify_priority_changes",
            ):
                if self.flag(item):
                    self.unsupported(item, REFUSED["vrrp_instance"][k])
            elif k in IGNORED["vrrp_instance"]:
                self.warn(item.where, f"{k}: ignored ({IGNORED['vrrp_instance'][k]})")
            elif k in REFUSED["vrrp_instance"]:
                self.unsupported(item, REFUSED["vrrp_instance"][k])
            else:
                self.unknown(item, f"vrrp_instance {name}")
        self.instances[name] = i
        self.instance_nodes[name] = node
        i["__meta"] = meta

    def authentication(self, node: Node, i: dict[str, Any], meta: dict[str, Any]) -> None:
        auth: dict[str, Any] = {}
        for item in self.block(node):
            if item.keyword == "auth_type":
                v = self.word(item)
                if v is not None and v.upper() == "AH":
                    self.unsupported(item, "IPsec AH authentication")
                elif v is not None and v.upper() == "PASS":
                    auth["auth_type"] = "PASS"
                elif v is not None:
                    self.refuse(item.where, f"auth_type: {v!r} is not PASS or AH")
            elif item.keyword == "auth_pass":
                if (v := self.word(item)) is not None:
                    if len(v.encode()) > 8:
                        # keepalived truncates to the 8 octets the header carries
                        self.warn(
                            item.where,
                            "auth_pass: longer than 8 characters; keepalived"
                            " sends the first 8, so does the import",
                        )
                        v = v.encode()[:8].decode(errors="ignore")
                    auth["auth_pass"] = v
            else:
                self.unknown(item, "authentication")
        meta["auth_where"] = node.where
        i["authentication"] = auth

    def vip(self, node: Node) -> str | None:
        """keepalived's `ADDR[/LEN] [dev IF] [label L] [scope S] [brd B] ...`."""
        try:
            ip_interface(node.keyword)
        except ValueError:
            self.refuse(node.where, f"virtual_ipaddress: {node.keyword!r} is not an address")
            return None
        words = [node.keyword]
        rest = list(node.args)
        while rest:
            opt = rest.pop(0)
            val = rest.pop(0) if rest else None
            if opt in ("dev", "label") and val is not None:
                words += [opt, val]
            elif opt == "scope" and val in ("global", "universe", "0"):
                pass  # the kernel's default for addresses the agent adds
            else:
                self.unsupported(node, f"the address option {opt!r}")
                return None
        return " ".join(words)

    def as_written(self, block: Node, key: str, parse: Callable[[str], object]) -> list[str]:
        """A block's lines (unicast_peer's `ADDR [min_ttl N] [max_ttl N]`,
        virtual_routes'), each kept as written when the agent reads it the
        same; the others refused at their line."""
        out = []
        for node in self.block(block):
            text = " ".join([node.keyword, *node.args])
            try:
                parse(text)
            except Invalid as err:
                self.refuse(node.where, f"{key}: {err}")
                continue
            out.append(text)
        return out

    def track_ref(self, node: Node) -> Any:
        if len(node.args) >= 2 and node.args[0] == "weight":
            if "reverse" in node.args[2:]:
                self.unsupported(node, REFUSED["vrrp_instance"]["weight reverse"])
            try:
                return {"name": node.keyword, "weight": int(node.args[1])}
            except ValueError:
                self.refuse(node.where, f"{node.keyword}: weight {node.args[1]!r} is not a number")
        elif node.args:
            self.refuse(node.where, f"{node.keyword}: unexpected {' '.join(node.args)!r}")
        return node.keyword

    def track_file_ref(self, node: Node) -> Any:
        tf = self.track_files.get(node.keyword)
        if tf is None or tf.path is None:
            self.refuse(
                node.where,
                f"track_file {node.keyword}: no vrrp_track_file of that name with a file",
            )
            return None
        weight = tf.weight
        if len(node.args) >= 2 and node.args[0] == "weight":
            try:
                weight = int(node.args[1])
            except ValueError:
                self.refuse(node.where, f"{node.keyword}: weight {node.args[1]!r} is not a number")
        return {"name": tf.path, "weight": weight}

    # ------------------------------------------------------ keepalived's rules

    def complete_instance(self, name: str, i: dict[str, Any]) -> None:
        """What vrrp_complete_instance decides, written out."""
        meta = i.pop("__meta")
        where: Where = meta["where"]
        strict = meta.get("strict", self.strict)
        origin = meta.get("strict_where", self.strict_where)
        # Said on the instance's line that strict mode changes, naming where
        # strict mode came from.
        why = f" (strict mode, {origin})" if origin else ""
        tag = f"vrrp_instance {name}"
        vips = i.get("virtual_ipaddress", [])
        family = 6 if vips and ":" in vips[0].split()[0] else 4
        if "version" not in i:
            i["version"] = 3 if family == 6 or "native_ipv6" in meta else self.vrrp_version
        elif family == 6 and i["version"] == 2:
            if strict:
                self.warn(
                    meta["where"],
                    f"{tag}: cannot use IPv6 with VRRP version 2; keepalived"
                    f" sets version 3, so does the import{why}",
                )
                i["version"] = 3
            else:
                self.refuse(meta["where"], f"{tag}: VRRP version 2 cannot carry IPv6")
        if not vips:
            self.refuse(where, f"{tag}: no virtual_ipaddress; the agent needs at least one")
        # priority from the state, the state from the priority
        if "priority" not in i:
            i["priority"] = VRRP_PRIO_OWNER if i.get("state") == "MASTER" else VRRP_PRIO_DFL
            if i["priority"] == VRRP_PRIO_OWNER:
                self.warn(
                    meta.get("state_where", where),
                    f"{tag}: state MASTER without a"
                    " priority: keepalived makes it 255 (the address owner), so does the"
                    " import",
                )
        if "state" not in i:
            i["state"] = "MASTER" if i["priority"] == VRRP_PRIO_OWNER else "BACKUP"
        elif strict and (i["state"] == "MASTER") != (i["priority"] == VRRP_PRIO_OWNER):
            i["state"] = "MASTER" if i["priority"] == VRRP_PRIO_OWNER else "BACKUP"
            self.warn(
                meta.get("state_where", where),
                f"{tag}: state MASTER must match being the"
                f" address owner (priority 255); it starts as {i['state']}{why}",
            )
        auth = i.pop("authentication", None)
        if auth is not None:
            aw = meta["auth_where"]
            if strict:
                self.warn(aw, f"{tag}: Strict mode does not support authentication. Ignoring.{why}")
            elif i["version"] == 3:
                self.warn(aw, f"{tag}: VRRP version 3 does not support authentication. Ignoring.")
            elif "auth_type" not in auth:
                self.warn(aw, f"{tag}: authentication without auth_type; keepalived ignores it")
            elif not auth.get("auth_pass"):
                self.warn(aw, f"{tag}: Authentication specified but no password given. Ignoring")
            else:
                i["authentication"] = auth
        if strict and i.get("unicast_peer"):
            self.refuse(
                meta["unicast_where"],
                f"{tag}: Unicast peers are not supported in"
                f" strict mode (keepalived refuses the instance){why}",
            )
        if i.get("use_vmac") and i.get("unicast_peer") and not i.get("vmac_xmit_base"):
            i["vmac_xmit_base"] = True
            self.warn(
                meta["vmac_where"],
                f"{tag}: unicast with use_vmac requires vmac_xmit_base - setting"
                " (keepalived sets it too; the import writes it out)",
            )
        owner = i["priority"] == VRRP_PRIO_OWNER
        if owner and i.get("nopreempt"):
            self.warn(
                meta["nopreempt_where"],
                f"{tag}: nopreempt is incompatible with priority"
                " 255; keepalived resets it, so does the import",
            )
            i["nopreempt"] = False
        if i["state"] == "MASTER":
            if i.get("nopreempt"):
                self.warn(
                    meta["nopreempt_where"],
                    f"{tag}: nopreempt will not work with initial"
                    " state MASTER; keepalived clears it, so does the import",
                )
                i["nopreempt"] = False
            if i.get("preempt_delay"):
                self.warn(
                    meta["preempt_delay_where"],
                    f"{tag}: preempt_delay will not work with"
                    " initial state MASTER; keepalived clears it, so does the import",
                )
                i["preempt_delay"] = 0
        if i.get("preempt_delay"):
            if strict:
                self.warn(
                    meta["preempt_delay_where"],
                    f"{tag}: preempt_delay is incompatible"
                    f" with strict mode; keepalived resets it, so does the import{why}",
                )
                i["preempt_delay"] = 0
            elif i.get("nopreempt"):
                self.warn(
                    meta["preempt_delay_where"],
                    f"{tag}: preempt_delay is incompatible"
                    " with nopreempt; keepalived resets it, so does the import",
                )
                i["preempt_delay"] = 0
        if "accept" not in i:
            i["accept"] = True if owner else not strict
            if not i["accept"]:
                self.warn(where, f"{tag}: no accept mode{why}; {STRICT_NO_TRAFFIC}")
        elif i["accept"] and strict and not owner and i["version"] == 2:
            self.warn(
                meta["accept_where"],
                f"{tag}: accept mode for VRRP version 2 does not"
                f" comply with RFC3768; keepalived resets it, so does the import{why}:"
                f" {STRICT_NO_TRAFFIC}",
            )
            i["accept"] = False
        for key in ("unicast_src_ip",):
            if key in i:
                try:
                    ip_address(i[key])
                except ValueError:
                    self.refuse(meta["where"], f"{tag}: {key} {i[key]!r} is not an address")

    def sync_group_block(self, node: Node) -> None:
        name = node.args[0] if node.args else None
        if name is None:
            self.refuse(node.where, "vrrp_sync_group: the group's name is missing")
            return
        g: dict[str, Any] = {}
        for item in self.block(node):
            k = item.keyword
            if k == "group":
                g["group"] = [c.keyword for c in self.block(item)] + [
                    a for c in (item.children or []) for a in c.args
                ]
            elif k in ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"):
                if (c := self.command(item, hook=True)) is not None:
                    g[k] = c
                    self.script_seen(item)
            elif k == "smtp_alert":
                if (b := self.flag(item)) is not None:
                    g[k] = b
            elif k in ("global_tracking", "sync_group_tracking_weight"):
                g["sync_group_tracking_weight"] = True
                if k == "global_tracking":
                    self.warn(
                        item.where,
                        "global_tracking: keepalived's older name for sync_group_tracking_weight",
                    )
            elif k in REFUSED["vrrp_sync_group"]:
                self.unsupported(item, REFUSED["vrrp_sync_group"][k])
            else:
                self.unknown(item, f"vrrp_sync_group {name}")
        self.groups[name] = g
        self.note(f"vrrp_sync_groups.{name}", node.where)

    # ------------------------------------------------------------ virtual_server

    def virtual_server_block(self, node: Node) -> None:
        if len(node.args) < 2 or node.args[0] in ("group", "fwmark"):
            kind = node.args[0] if node.args else "without an address"
            why = REFUSED["virtual_server"].get(kind, "only 'virtual_server IP PORT'")
            self.unsupported(node, why)
            return
        try:
            ip_address(node.args[0])
            port = int(node.args[1])
        except ValueError:
            self.refuse(node.where, f"virtual_server: {' '.join(node.args)!r} is not 'IP PORT'")
            return
        vs: dict[str, Any] = {"ip": node.args[0], "port": port}
        # keepalived's defaults where ours differ: the scheduler (wlc, with
        # "no scheduler set" logged) and the forwarding method (NAT).
        inherit: dict[str, Any] = {}
        reals: list[dict[str, Any]] = []
        for item in self.block(node):
            k = item.keyword
            if k == "delay_loop":
                if (n := self.number(item, 0.001)) is not None:
                    vs[k] = n
            elif k in ("lb_algo", "lvs_sched"):
                if (v := self.word(item)) is not None:
                    vs["lb_algo"] = v
            elif k in ("lb_kind", "lvs_method"):
                if (v := self.word(item)) is not None:
                    vs["lb_kind"] = v.upper()
            elif k == "protocol":
                if (v := self.word(item)) is not None:
                    vs[k] = v.upper()
            elif k == "persistence_timeout":
                # keepalived: the keyword alone means 360 s (IPVS's default)
                if not item.args:
                    vs[k] = 360
                elif (n := self.number(item, 1, integer=True)) is not None:
                    vs[k] = n
            elif k == "sorry_server":
                if len(item.args) >= 2:
                    vs["sorry_server"] = {"ip": item.args[0], "port": int(item.args[1])}
                else:
                    self.refuse(item.where, "sorry_server: expected 'IP PORT'")
            elif k == "real_server":
                rs = self.real_server(item)
                if rs is not None:
                    reals.append(rs)
            elif k in ("connect_timeout", "retry", "nb_get_retry", "delay_before_retry"):
                inherit["retry" if k == "nb_get_retry" else k] = self.number(item, 0)
            elif k == "smtp_alert":
                if (b := self.flag(item)) is not None:
                    vs[k] = b
            elif k in REFUSED["virtual_server"]:
                self.unsupported(item, REFUSED["virtual_server"][k])
            else:
                self.unknown(item, "virtual_server")
        if "lb_algo" not in vs:
            self.warn(
                node.where, "virtual_server: no lb_algo; keepalived uses wlc, so does the import"
            )
            vs["lb_algo"] = "wlc"
        vs.setdefault("lb_kind", "NAT")
        for rs in reals:
            _inherit(rs, inherit)
        vs["real_servers"] = reals
        self.virtual_servers.append(vs)
        self.note(f"virtual_servers[{len(self.virtual_servers) - 1}]", node.where)

    def real_server(self, node: Node) -> dict[str, Any] | None:
        if len(node.args) < 2:
            self.refuse(node.where, "real_server: expected 'IP PORT'")
            return None
        try:
            ip_address(node.args[0])
            rs: dict[str, Any] = {"ip": node.args[0], "port": int(node.args[1])}
        except ValueError:
            self.refuse(node.where, f"real_server: {' '.join(node.args)!r} is not 'IP PORT'")
            return None
        inherit: dict[str, Any] = {}
        checkers = []
        for item in self.block(node):
            k = item.keyword
            if k == "weight":
                if (n := self.number(item, 0, 65535, integer=True)) is not None:
                    rs[k] = n
            elif k == "inhibit_on_failure":
                rs[k] = True
            elif k in CHECKERS:
                checkers.append(item)
                rs[k] = self.checker(item)
            elif k in ("connect_timeout", "retry", "nb_get_retry", "delay_before_retry"):
                inherit["retry" if k == "nb_get_retry" else k] = self.number(item, 0)
            elif k == "smtp_alert":
                if (b := self.flag(item)) is not None:
                    rs[k] = b
            elif k in REFUSED["real_server"]:
                self.unsupported(item, REFUSED["real_server"][k])
            else:
                self.unknown(item, "real_server")
        if len(checkers) > 1:
            self.unsupported(checkers[1], REFUSED["real_server"]["second checker"])
        _inherit(rs, inherit)
        return rs

    def checker(self, node: Node) -> dict[str, Any]:
        c: dict[str, Any] = {}
        for item in self.block(node):
            k = item.keyword
            if k in ("connect_timeout", "delay_before_retry", "misc_timeout"):
                if (n := self.number(item, 0)) is not None:
                    c[k] = n
            elif k in ("retry", "nb_get_retry"):
                if (n := self.number(item, 0, integer=True)) is not None:
                    c["retry"] = n
            elif k == "connect_port":
                if (n := self.number(item, 1, 65535, integer=True)) is not None:
                    c[k] = n
            elif k == "misc_path":
                if (v := self.command(item)) is not None:
                    c[k] = v
                    self.script_seen(item)
            elif k == "url":
                url: dict[str, Any] = {}
                for u in self.block(item):
                    if u.keyword == "path":
                        url["path"] = self.word(u)
                    elif u.keyword == "status_code":
                        n = self.number(u, 100, 599, integer=True)
                        if n is not None:
                            url["status_code"] = n
                    elif u.keyword == "digest":
                        url["digest"] = (self.word(u) or "").lower()
                    else:
                        self.unsupported(u)
                c.setdefault("url", []).append(url)
            elif k in REFUSED["checker"]:
                self.unsupported(item, REFUSED["checker"][k])
            else:
                self.unknown(item, node.keyword)
        return c

    # ------------------------------------------------------------------- out

    def finish(self) -> dict[str, Any]:
        for name, inst in self.instances.items():
            self.complete_instance(name, inst)
        g = self.global_defs
        # keepalived runs scripts without checking them unless told to; the
        # agent checks by default. Written out so the file means what it meant.
        g.setdefault("enable_script_security", False)
        if self.instances:
            for k, v in KEEPALIVED_GARP_DEFAULTS.items():
                g.setdefault(k, v)
        if self.first_script is not None and "script_user" not in g:
            self.warn(
                self.first_script,
                "scripts run as keepalived_script where that user exists, else as root, under"
                " keepalived; the agent runs them as vrrp_script where that user exists, else as"
                " root: set script_user to keep keepalived's user",
            )
        out: dict[str, Any] = {"global_defs": g}
        if self.scripts:
            out["vrrp_scripts"] = self.scripts
        if self.instances:
            out["vrrp_instances"] = self.instances
        if self.groups:
            out["vrrp_sync_groups"] = self.groups
        if self.virtual_servers:
            out["virtual_servers"] = self.virtual_servers
        return out


def convert(nodes: list[Node]) -> Result:
    """The agent's configuration for a keepalived.conf read by `reader.read`."""
    c = _Converter()
    data = c.run(nodes)
    return Result(data, c.messages, c.origins)
