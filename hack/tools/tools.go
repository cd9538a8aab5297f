//go:build tools

// Package tools pins the test-only binaries built by hack/build-tools.sh, so
// that `go mod tidy` in this module keeps their dependencies.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
