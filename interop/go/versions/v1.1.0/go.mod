// Go Pulse v1.1.0: the version whose API pulse-streaming ports.
module pulse-interop

go 1.24

require goa.design/pulse v1.1.0
