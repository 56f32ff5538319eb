"""The arbiter prober and the virtual servers (checkers and data plane): what
runs beside the node, started, replaced or stopped to match the configuration."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from vrrp_agent.config import Config
from vrrp_agent.core.node import ArbiterReading
from vrrp_agent.io.arbiter import ArbiterProber
from vrrp_agent.lvs.manager import LvsManager, RsChange, make_plane
from vrrp_agent.wire.addresses import IPAddr

log = logging.getLogger(__name__)


class Companions:
    """The running prober and LVS manager (None when not configured); each
    reports through its callback, which the daemon only records."""

    def __init__(
        self,
        on_round: Callable[[], None],
        on_lvs_change: Callable[[], None],
        on_rs_change: RsChange | None = None,
    ) -> None:
        self._on_round = on_round
        self._on_lvs_change = on_lvs_change
        self._on_rs_change = on_rs_change
        self.arbiter: ArbiterProber | None = None
        self.lvs: LvsManager | None = None

    def sync_arbiter(self, cfg: Config) -> None:
        """Start, replace or stop the prober to match `cfg.arbiter`."""
        if self.arbiter is not None and self.arbiter.arbiter == cfg.arbiter:
            return
        if self.arbiter is not None:
            # Stopped at once; its task ends on its own (cancelled, sockets closed).
            self.arbiter.stop()
            self.arbiter = None
        if cfg.arbiter is not None:
            self.arbiter = ArbiterProber(cfg.arbiter, self._on_round)
            self.arbiter.start()

    def arbiter_reading(self) -> ArbiterReading | None:
        a = self.arbiter
        if a is None:
            return None
        return ArbiterReading(tuple(a.arbiter.addresses), a.up, a.last_success)

    def probe_arbiter(self) -> None:
        if self.arbiter is not None:
            self.arbiter.request_round()

    def sync_lvs_config(self, cfg: Config, rebuild: bool, disabled: frozenset[str]) -> None:
        """Start, replace or stop the checkers and data plane for `cfg`:
        rebuilt when the reload plan says so (the virtual servers or
        `lvs_backend` changed), else only the script user is updated."""
        if self.lvs is not None and not rebuild:
            self.lvs.script_user = cfg.global_defs.script_user
            return
        if self.lvs is not None:
            self.lvs.stop()
            self.lvs = None
        if cfg.virtual_servers:
            plane = make_plane(cfg.global_defs.lvs_backend, cfg.virtual_servers)
            self.lvs = LvsManager(
                cfg.virtual_servers,
                plane,
                cfg.global_defs.script_user,
                self._on_lvs_change,
                disabled=disabled,
                on_rs_change=self._on_rs_change,
            )
            log.info("virtual servers: %d, data plane %s", len(cfg.virtual_servers), plane.name)
            self.lvs.start()

    def sync_lvs(self, held: Mapping[IPAddr, str]) -> None:
        if self.lvs is not None:
            self.lvs.sync(held)

    def stop_arbiter(self) -> None:
        if self.arbiter is not None:
            self.arbiter.stop()

    def stop_lvs(self) -> None:
        if self.lvs is not None:
            self.lvs.stop()

    async def wait_closed(self) -> None:
        if self.arbiter is not None:
            await self.arbiter.wait_closed()
        if self.lvs is not None:
            await self.lvs.wait_closed()
