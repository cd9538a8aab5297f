package ipvs

// Interface is the kernel's IPVS table as ipvs-proxy uses it. The reads are
// split so that a sync can look at only the virtual servers it is changing:
// List is a full dump, for start-up and the periodic resync; Get reads one.
// Every write goes through Write's one encoder.
type Interface interface {
	List() ([]VirtualServer, error)
	// Get returns the virtual server with its real servers; ok is false
	// when the kernel has no such virtual server.
	Get(key ServiceKey) (vs VirtualServer, ok bool, err error)
	// Services lists every virtual server's settings without its real
	// servers: what sits on an address, on any port, for a sync about to
	// put a new address on the dummy link. One dump, a fraction of List's.
	Services() ([]Service, error)

	// Write makes the writes in order, in as few round trips to the
	// kernel as it can, and returns each one's error (nil: done): one that
	// fails does not stop the rest.
	Write(ops []Op) []error
}
