package ipvs

import "fmt"

// OpKind is the kind of one IPVS write.
type OpKind int

const (
	OpAddService OpKind = iota + 1
	OpUpdateService
	OpDeleteService
	OpAddDestination
	OpUpdateDestination
	OpDeleteDestination
)

// Op is one write to the IPVS table, for Write. Service ops carry the
// whole Service (a delete only needs its key); destination ops name their
// virtual server by Service.ServiceKey.
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Destination
}

// String says what the op does, as its error does.
func (o Op) String() string {
	switch o.Kind {
	case OpAddService:
		return "add service " + o.Service.String()
	case OpUpdateService:
		return "update service " + o.Service.String()
	case OpDeleteService:
		return "delete service " + o.Service.ServiceKey.String()
	case OpAddDestination:
		return fmt.Sprintf("add real server %s to %s", o.Dest.AddrPort(), o.Service.ServiceKey)
	case OpUpdateDestination:
		return fmt.Sprintf("update real server %s of %s", o.Dest.AddrPort(), o.Service.ServiceKey)
	case OpDeleteDestination:
		return fmt.Sprintf("delete real server %s from %s", o.Dest.AddrPort(), o.Service.ServiceKey)
	}
	return fmt.Sprintf("unknown IPVS op %d", o.Kind)
}

// OneAtATime is the single writes of the fake and of test doubles, which
// WriteEach makes their Write from.
type OneAtATime interface {
	AddService(s Service) error
	UpdateService(s Service) error
	DeleteService(key ServiceKey) error
	AddDestination(key ServiceKey, d Destination) error
	UpdateDestination(key ServiceKey, d Destination) error
	DeleteDestination(key ServiceKey, d Destination) error
}

// WriteEach is Write for an implementation that writes one op at a time,
// the fake and test doubles.
func WriteEach(i OneAtATime, ops []Op) []error {
	errs := make([]error, len(ops))
	for n, o := range ops {
		switch o.Kind {
		case OpAddService:
			errs[n] = i.AddService(o.Service)
		case OpUpdateService:
			errs[n] = i.UpdateService(o.Service)
		case OpDeleteService:
			errs[n] = i.DeleteService(o.Service.ServiceKey)
		case OpAddDestination:
			errs[n] = i.AddDestination(o.Service.ServiceKey, o.Dest)
		case OpUpdateDestination:
			errs[n] = i.UpdateDestination(o.Service.ServiceKey, o.Dest)
		case OpDeleteDestination:
			errs[n] = i.DeleteDestination(o.Service.ServiceKey, o.Dest)
		default:
			errs[n] = fmt.Errorf("%s", o)
		}
	}
	return errs
}
