#!/bin/sh
# build-kube-tools.sh OUT_DIR TOOL...
#
# Builds the Kubernetes tools the admission tests run against, from the Go
# module proxy, into OUT_DIR. TOOL is one of:
#   kube  kube-apiserver and kubectl (one go build: they share most packages)
#   etcd  the etcd server
#   helm  the helm CLI
# Versions are pinned below (override with the environment for a trial).
# Each build uses a throwaway module in a temporary directory, so nothing in
# this repository's go.mod depends on Kubernetes' server code.
set -eu

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
GO=${GO:-go}

[ $# -ge 2 ] || { echo "usage: $0 OUT_DIR kube|etcd|helm..." >&2; exit 2; }
out=$1; shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# -trimpath and -s -w: smaller binaries and a faster link; nothing here is
# debugged.
flags="-trimpath"

build_kube() {
	dir=$work/kube
	mkdir -p "$dir" && cd "$dir"
	$GO mod init modelattest.local/kubetools >/dev/null 2>&1
	# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces
	# them with ./staging paths that do not exist outside its tree: replace
	# each with the published v0.X.Y of the same release instead.
	gomod=$($GO mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[ -n "$gomod" ] || { echo "no go.mod for k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
	staging=v0.${KUBE_VERSION#v1.}
	for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod" | sort -u); do
		case $m in
		k8s.io/sample-cli-plugin | k8s.io/sample-controller) continue ;;
		esac
		$GO mod edit -replace "$m=$m@$staging"
	done
	$GO mod edit -require "k8s.io/kubernetes@$KUBE_VERSION"
	$GO get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" "k8s.io/kubernetes/cmd/kubectl@$KUBE_VERSION"
	minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
	ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
	$GO build $flags -ldflags "$ld" -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
	dir=$work/etcd
	mkdir -p "$dir" && cd "$dir"
	$GO mod init modelattest.local/etcdtool >/dev/null 2>&1
	$GO get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
	# go install refuses the etcd server module (it has replace directives);
	# building it as a dependency of a throwaway module works.
	$GO build $flags -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
}

build_helm() {
	GOBIN=$out $GO install $flags -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

for tool in "$@"; do
	case $tool in
	kube) build_kube ;;
	etcd) build_etcd ;;
	helm) build_helm ;;
	*) echo "unknown tool $tool (want kube, etcd or helm)" >&2; exit 2 ;;
	esac
done
