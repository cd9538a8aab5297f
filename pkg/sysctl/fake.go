package sysctl

import (
	"io/fs"
	"slices"
	"strings"
)

// Fake is /proc/sys as a map from name to value. Like the kernel, it has
// only the sysctls it was given: Get and Set of any other name fail with
// fs.ErrNotExist, so leaving out "net/ipv4/vs/..." simulates a kernel
// without the ip_vs module. Not safe for concurrent use.
type Fake map[string]string

var _ Interface = Fake{}

func (f Fake) Get(name string) (string, error) {
	v, ok := f[name]
	if !ok {
		return "", notExist("open", name)
	}
	return v, nil
}

func (f Fake) Set(name, value string) error {
	if _, ok := f[name]; !ok {
		return notExist("open", name)
	}
	f[name] = value
	return nil
}

// Dump prints every sysctl as a sorted "name = value" line.
func (f Fake) Dump() string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + " = " + f[n] + "\n")
	}
	return b.String()
}

// notExist is the error os.ReadFile gives for a missing /proc/sys file.
func notExist(op, name string) error {
	return &fs.PathError{Op: op, Path: "/proc/sys/" + name, Err: fs.ErrNotExist}
}
