"""LVS-style load balancing (keepalived's virtual_server), sans I/O where it can be.

- `plan`: which backends each virtual server has now (pure).
- `health`: keepalived's checker retry rules (pure).
- `checkers`: TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK on the network (asyncio).
- `nftables`, `ipvs`: the data planes; one atomic replace of everything ours.
- `manager`: glue for the daemon: checkers in, plans out, applied only where
  this node holds the virtual server's VIP.
"""
