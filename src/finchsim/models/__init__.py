"""Pure models of what Kubernetes controllers and the workload do, for fast-forward what-ifs and
for analysis: no clock, no I/O, no platform. Analysis may import these; they import nothing of
`finchsim.platform`."""
