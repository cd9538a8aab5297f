#!/usr/bin/env bash
# make lint: gofmt, go vet, staticcheck (its default checks, pinned below) and
# go.mod/go.sum as `go mod tidy` would write them. Fails on any finding.
# staticcheck is built once from the Go module proxy into the cache
# directory hack/build-tools.sh uses, so a fresh machine needs only Go.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

STATICCHECK_VERSION=v0.8.2
CACHE="${IPVS_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-proxy}"
staticcheck="$CACHE/staticcheck-$STATICCHECK_VERSION/staticcheck"

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n $unformatted ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go vet -tags conformance ./test/node/ # make conformance's tests, which make test never compiles
if [[ ! -x $staticcheck ]]; then
  GOBIN="$(dirname "$staticcheck")" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$staticcheck" ./...
"$staticcheck" -tags conformance ./test/node/
if ! tidy=$(go mod tidy -diff); then
  echo "go.mod or go.sum differ from what go mod tidy writes:"; echo "$tidy"; exit 1
fi
