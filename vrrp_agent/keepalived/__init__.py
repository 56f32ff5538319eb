"""keepalived.conf in: its grammar (`reader`) and its meaning (`convert`)."""
