"""The one gate a configuration passes before an agent runs it.

`vrrp-agent validate` and a reload (SIGHUP) ask the same question, so a file
validate refuses is never taken by a running agent either. The file itself
has been parsed already (`load`); this adds what is judged on the host:
enable_script_security's findings for the scripts and hooks, and whether the
LVS data plane `lvs_backend` picks here can do what the virtual servers ask
(a scheduler, lb_kind TUN, IPVS on a kernel without it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from vrrp_agent.config.model import Config, smtp_warnings
from vrrp_agent.script_security import Report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acceptance:
    """What the host checks found: the script report (errors refuse, warnings
    are only told) and the data plane's shortcomings as (key path, message)."""

    scripts: Report
    lvs: list[tuple[str, str]] = field(default_factory=list)
    # Alert mail asked for that cannot go (no smtp_server or no recipients):
    # only told, as keepalived sends nothing then without a word.
    mail: list[tuple[str, str]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.scripts.errors and not self.lvs

    def error_lines(self, path: str) -> list[str]:
        """One `FILE: key.path: message` line per reason to refuse."""
        return self.scripts.lines(path, self.scripts.errors) + self.lvs_lines(path)

    def warning_lines(self, path: str) -> list[str]:
        mail = [f"{path}: {keypath}: {message}" for keypath, message in self.mail]
        return self.scripts.lines(path, self.scripts.warnings) + mail

    def lvs_lines(self, path: str) -> list[str]:
        return [f"{path}: {keypath}: {message}" for keypath, message in self.lvs]

    def log(self, path: str) -> None:
        """The findings in the agent's log: refusals as errors, then warnings."""
        for line in self.error_lines(path):
            log.error("%s", line)
        for line in self.warning_lines(path):
            log.warning("%s", line)


def accept(cfg: Config, root: str | os.PathLike[str] = "/") -> Acceptance:
    """Judge `cfg` on this host (`root`: where /proc and /lib/modules are read)."""
    # Imported here: `validate --no-host-checks` never needs them.
    from vrrp_agent import script_security
    from vrrp_agent.lvs import capabilities

    return Acceptance(script_security.check(cfg), capabilities.check(cfg, root), smtp_warnings(cfg))
