package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// versionFlag is kube-proxy's --version: bare, it is "true"; "raw" prints
// the build's details too.
type versionFlag string

func addVersionFlag(fs *pflag.FlagSet) *versionFlag {
	v := versionFlag("false")
	fs.Var(&v, "version", "Print the version and exit (--version=raw: with build details).")
	fs.Lookup("version").NoOptDefVal = "true"
	return &v
}

func (v *versionFlag) String() string { return string(*v) }
func (v *versionFlag) Type() string   { return "version" }

func (v *versionFlag) Set(s string) error {
	switch s {
	case "true", "false", "raw":
		*v = versionFlag(s)
		return nil
	}
	return fmt.Errorf("want true, false or raw")
}

// print writes the version if it was asked for, and says whether it was.
func (v *versionFlag) print(w io.Writer) bool {
	if *v == "false" {
		return false
	}
	version, revision := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if *v == "raw" {
		fmt.Fprintf(w, "ipvs-proxy version %s, revision %q, %s, %s/%s\n", version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return true
	}
	fmt.Fprintf(w, "ipvs-proxy %s\n", version)
	return true
}
