# Every target is one line; longer logic lives in hack/.
GO ?= go
# Go as the hack/ scripts find it, for a root shell whose PATH lacks it.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build image test unit e2e integration conformance bench demo lint clean

build:
	CGO_ENABLED=0 $(GO) build -o bin/ipvs-proxy ./cmd/ipvs-proxy

image:
	hack/image.sh # the container image without Docker: OCI layout and OCI archive in bin/image, digest printed

test:
	hack/test.sh all # lint, unit, bench smoke, API server integration, and e2e in the QEMU VM (test/vm, test/e2e)

unit:
	$(GO) test -count=1 ./pkg/... ./cmd/... ./manifests/... ./hack/...

e2e:
	hack/test.sh e2e

integration:
	hack/test.sh integration

conformance:
	hack/conformance.sh # Kubernetes' Service e2e tests under kube-proxy and ipvs-proxy on the VM node, and the migration: bin/conformance/results.md

bench:
	hack/bench.sh

demo:
	hack/demo.sh

lint:
	hack/lint.sh

clean:
	rm -rf bin
