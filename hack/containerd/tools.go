//go:build tools

// Package containerd pins containerd, its runc shim and ctr, built by hack/build-tools.sh
// node, so that `go mod tidy` in this module keeps their dependencies.
package containerd

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
