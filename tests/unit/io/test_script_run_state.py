"""ScriptRunner.run_state, keepalived_script_state's source: idle between runs,
running while the check's process lives (and idle again once a timed-out one
is killed and reaped)."""

from __future__ import annotations

import asyncio

from vrrp_agent.config.model import Script
from vrrp_agent.io.scripts import ScriptRunner


def test_run_state_follows_the_process() -> None:
    async def go() -> list[str]:
        runner = ScriptRunner(Script("chk", "sleep 5", interval=1, timeout=0.3), "root",
                              lambda name: None)  # fmt: skip
        seen = [runner.run_state]
        task = asyncio.ensure_future(runner.run_once())
        for _ in range(50):
            await asyncio.sleep(0.02)
            if runner.run_state != "idle":
                break
        seen.append(runner.run_state)
        result = await task
        seen.append(runner.run_state)
        assert result.detail.startswith("timed out")
        return seen

    assert asyncio.run(go()) == ["idle", "running", "idle"]
