"""`python -m vrrp_agent`: the same command as the `vrrp-agent` script."""

import sys

from vrrp_agent.cli import main

sys.exit(main())
