"""The running vrrp_scripts of an agent: which run, which stop on reload.

Like keepalived, only scripts some instance tracks are run; an insecure one
(enable_script_security) is never run at start and counts as DOWN. Each
runner reports UP/DOWN changes through `on_change(name)`; the daemon hands
the states to `Node.script_changed`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from vrrp_agent.config import Config
from vrrp_agent.core.tracking import ScriptState
from vrrp_agent.io.scripts import ScriptRunner, run_identity

log = logging.getLogger(__name__)


def tracked_scripts(cfg: Config) -> list[str]:
    """Scripts some instance tracks; like keepalived, the others are not run."""
    tracked = {ref.name for inst in cfg.vrrp_instances.values() for ref in inst.track_script}
    return [name for name in cfg.vrrp_scripts if name in tracked]


class ScriptPool:
    """One `ScriptRunner` per tracked script, and why any is disabled."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self._on_change = on_change
        self.runners: dict[str, ScriptRunner] = {}
        # vrrp_scripts never run because they are insecure (start only: a
        # reload with an insecure script is refused), with why.
        self.disabled: dict[str, str] = {}

    def states(self, names: Collection[str] | None = None) -> dict[str, ScriptState]:
        """The state of every running script, or of those of `names` that run."""
        return {n: r.state for n, r in self.runners.items() if names is None or n in names}

    def stale(self, cfg: Config) -> list[str]:
        """Running scripts that `cfg` drops, untracks or changes, and every
        disabled one (a reload that passed the checks starts it afresh)."""
        wanted = {
            name: run_identity(cfg.vrrp_scripts[name], cfg.global_defs.script_user)
            for name in tracked_scripts(cfg)
        }
        return [
            n for n, r in self.runners.items() if wanted.get(n) != r.identity or n in self.disabled
        ]

    def stop(self, names: list[str]) -> list[ScriptRunner]:
        stopped = [self.runners.pop(name) for name in names]
        for runner in stopped:
            runner.stop()
            self.disabled.pop(runner.name, None)
        return stopped

    def stop_all(self) -> list[ScriptRunner]:
        return self.stop(list(self.runners))

    def sync(self, cfg: Config) -> list[ScriptRunner]:
        """Register a runner for every tracked script that has none, not yet
        launched, so that instances started next see their (initial UP)
        state. Kept runners take the new Script: only its weight can differ."""
        fresh: list[ScriptRunner] = []
        for name in tracked_scripts(cfg):
            script = cfg.vrrp_scripts[name]
            runner = self.runners.get(name)
            if runner is not None:
                runner.script = script
                continue
            runner = ScriptRunner(script, cfg.global_defs.script_user, self._on_change)
            self.runners[name] = runner
            fresh.append(runner)
        for name in cfg.vrrp_scripts:
            if name not in self.runners:
                log.info("vrrp_script %s: not tracked by any instance, not run", name)
        return fresh

    def disable_insecure(self, disabled_keypaths: frozenset[str]) -> None:
        """At start, as keepalived: an insecure vrrp_script is never run. It
        counts as DOWN for its instances (keepalived stops tracking it): a
        check that cannot run vouches for nothing."""
        for name, runner in self.runners.items():
            if f"vrrp_scripts.{name}.script" in disabled_keypaths:
                runner.tracker.state = ScriptState.DOWN
                self.disabled[name] = "insecure (enable_script_security)"
                log.error(
                    "vrrp_script %s: disabled, it counts as failed: fix the permissions"
                    " above, then reload",
                    name,
                )

    def launch(self, runners: list[ScriptRunner]) -> None:
        for runner in runners:
            if runner.name not in self.disabled:
                runner.start()

    def status(self) -> dict[str, object]:
        """Only tracked scripts run, so only they are listed."""
        return {
            # disabled: why it never runs (enable_script_security), or None.
            name: {**_runner_status(runner), "disabled": self.disabled.get(name)}
            for name, runner in sorted(self.runners.items())
        }


def _runner_status(runner: ScriptRunner) -> dict[str, object]:
    t = runner.tracker
    return {
        "state": t.state.value,
        # idle, running or forcing_termination (a timed-out run being killed)
        "run_state": runner.run_state,
        # Exit status of the last run; None when it timed out, could not be
        # started, or has not run yet (negative: killed by that signal).
        "last_exit": runner.last_exit,
        # Consecutive results, the counts that fall and rise compare against.
        "failures": t.failures,
        "successes": t.successes,
    }


async def reap(runners: list[ScriptRunner]) -> None:
    """Wait for stopped runners (already killed) so no zombie or task is left."""
    if runners:
        await asyncio.gather(*(r.wait_closed() for r in runners))
