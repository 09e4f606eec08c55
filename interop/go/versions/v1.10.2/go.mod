// Go Pulse v1.10.2: the newest release we could identify (its package
// documentation, July 2026); the module proxy reachable here lists none.
module pulse-interop

go 1.24

require goa.design/pulse v1.10.2
