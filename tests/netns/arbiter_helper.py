"""Runs one ArbiterProber inside a namespace for tests/netns/test_arbiter_probe.py.

    ip netns exec NS python tests/netns/arbiter_helper.py '{"addresses": [...], ...}'

Prints one JSON line per round to stdout ({"t": loop time, "up", "ok",
"seq", "status"}); the loop clock is CLOCK_MONOTONIC, the same as the test's
time.monotonic(). Reads commands from stdin: `round` calls request_round();
end of input stops the prober and exits 0. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from ipaddress import ip_address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vrrp_agent.config.model import Arbiter  # noqa: E402
from vrrp_agent.io.arbiter import ArbiterProber  # noqa: E402


async def main(spec: dict) -> int:
    spec["addresses"] = tuple(ip_address(a) for a in spec["addresses"])
    arbiter = Arbiter(**spec)
    loop = asyncio.get_running_loop()
    prober: ArbiterProber

    def on_round() -> None:
        line = {
            "t": loop.time(),
            "up": prober.up,
            "ok": prober.book.last_ok,
            "seq": prober.book.seq,
            "last_success": prober.last_success,
            "status": prober.status(),
        }
        print(json.dumps(line), flush=True)

    prober = ArbiterProber(arbiter, on_round)
    done = loop.create_future()

    def on_stdin() -> None:
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin.fileno())
            if not done.done():
                done.set_result(None)
        elif line.strip() == "round":
            prober.request_round()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    prober.start()
    await done
    prober.stop()
    await prober.wait_closed()
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    sys.exit(asyncio.run(main(json.loads(sys.argv[1]))))
