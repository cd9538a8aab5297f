package reconcile

import "github.com/ipvs-proxy/ipvs-proxy/pkg/ipvs"

// Drain is graceful termination: a TCP real server that is no longer
// wanted first gets weight 0, so the scheduler sends it no new
// connections while its open ones finish, and is deleted once it has no
// connections left or its deadline has passed. The deadline is the
// caller's: Diff stays pure, and the caller remembers when each real
// server started to drain.
//
// UDP and SCTP real servers are deleted at once, as kube-proxy does: with
// expire_nodest_conn=1 the kernel then moves their flows to other real
// servers, while a weight-0 UDP real server would keep every client flow
// it already has for as long as the client keeps sending.
type Drain struct {
	// Expired reports whether a draining real server has passed its
	// deadline. Nil means never (connections alone decide).
	Expired func(ipvs.ServiceKey, ipvs.Destination) bool
}

type leaving int

const (
	deleteNow leaving = iota
	startDraining
	keepDraining
)

func (d *Drain) leave(key ipvs.ServiceKey, dest ipvs.Destination) leaving {
	switch {
	case d == nil || key.Proto != ipvs.TCP:
		return deleteNow
	// Nothing to wait for: no connection would notice (kube-proxy deletes
	// such real servers at once too).
	case dest.ActiveConns+dest.InactiveConns == 0:
		return deleteNow
	case d.Expired != nil && d.Expired(key, dest):
		return deleteNow
	case dest.Weight != 0:
		return startDraining
	}
	return keepDraining
}
