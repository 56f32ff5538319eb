"""What a reload changes, as a pure function of the old and new configuration.

`diff(old, new)` says which instances keep running untouched (`kept`), which
stop (`gone`) and which start (`fresh`); an instance whose settings changed is
both gone and fresh: it restarts. It also says whether the virtual servers'
checkers and data plane must be rebuilt. Nothing here opens a socket or reads
a file, so every rule is unit-tested (tests/unit/core/test_reload.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vrrp_agent.config.model import Config, Instance, garp_settings, skip_check_adv_addr

# An instance's notify hooks (io/notify.py reads them at each transition).
HOOK_KEYS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")


@dataclass(frozen=True)
class ReloadPlan:
    """Instance names by fate, each in configuration order, and whether the
    LVS side (checkers and data plane) is rebuilt."""

    kept: tuple[str, ...]
    gone: tuple[str, ...]
    fresh: tuple[str, ...]
    rebuild_lvs: bool


def identity(cfg: Config, inst: Instance) -> tuple[object, ...]:
    """Everything that, if changed, makes an instance a different one on reload.

    Not its notify hooks nor its smtp_alert: they are read at each
    transition, so editing one must not restart the instance (a master would
    hand its VIPs over)."""
    return (
        # skip_check_adv_addr as resolved: unset with the global false is false.
        replace(inst, **dict.fromkeys(HOOK_KEYS), skip_check_adv_addr=None, smtp_alert=None),
        garp_settings(cfg, inst),
        skip_check_adv_addr(cfg, inst),
    )


def lvs_identity(cfg: Config) -> tuple[object, ...]:
    """What the checkers and the data plane are built from: the virtual
    servers and the backend that programs them (script_user is updated in
    place, it needs no rebuild)."""
    return (cfg.virtual_servers, cfg.global_defs.lvs_backend)


def diff(old: Config | None, new: Config) -> ReloadPlan:
    """The plan that takes a node running `old` (None: nothing runs yet) to `new`."""
    old_ids = (
        {n: identity(old, i) for n, i in old.vrrp_instances.items()} if old is not None else {}
    )
    new_ids = {n: identity(new, i) for n, i in new.vrrp_instances.items()}
    return ReloadPlan(
        kept=tuple(n for n in new_ids if n in old_ids and old_ids[n] == new_ids[n]),
        gone=tuple(n for n in old_ids if old_ids[n] != new_ids.get(n)),
        fresh=tuple(n for n in new_ids if new_ids[n] != old_ids.get(n)),
        rebuild_lvs=old is None or lvs_identity(old) != lvs_identity(new),
    )
