package ipvs

import "errors"

// The kernel answers EEXIST and ESRCH/ENOENT; both implementations map them
// to these so callers can treat "already done" as success.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)
