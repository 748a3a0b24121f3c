# Sourced by build-cluster.sh and build-node.sh: builds commands of k8s.io/kubernetes from Go modules.
#
# The release's go.mod points every staging module at ./staging/...; the same code is published as
# k8s.io/<name> v0.<minor>.<patch>. A wrapper module requires the release, replaces each staging module
# with its published version, and keeps the release's go line and godebug settings so the binaries
# run with the runtime defaults they were released with.

# kubernetes_build DIR VERSION OUT_DIR TAGS CMD...: builds k8s.io/kubernetes/cmd/<CMD> into OUT_DIR,
# stamped with VERSION as the release's own build would be. STAGING_PINS ("module=version ...") takes
# a staging module from another published version where the proxy does not serve the release's.
kubernetes_build() {
    local dir="$1" version="$2" out="$3" tags="$4"
    shift 4
    local minor patch info gomod commit cmd
    minor=$(cut -d. -f2 <<<"${version#v}")
    patch=$(cut -d. -f3 <<<"${version#v}")
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
    info=$(go mod download -json "k8s.io/kubernetes@$version")
    gomod=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])' <<<"$info")
    commit=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("Origin", {}).get("Hash", ""))' <<<"$info")
    {
        echo "module local/kubernetes-build"
        grep -E '^go [0-9]' "$gomod"
        sed -n '/^godebug (/,/^)/p; /^godebug [^(]/p' "$gomod"
        echo "require k8s.io/kubernetes $version"
        echo "replace ("
        grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" \
            | awk -v v="v0.$minor.$patch" '{print "\t" $1 " => " $1 " " v}'
        echo ")"
    } > go.mod
    local pin
    for pin in ${STAGING_PINS:-}; do
        go mod edit -replace "${pin%%=*}=${pin%%=*}@${pin#*=}"
    done
    {
        printf '//go:build tools\n\npackage tools\n\nimport (\n'
        for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
        printf ')\n'
    } > tools.go
    nice -n 19 go mod tidy >&2
    local pkg="k8s.io/component-base/version" ld
    ld="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=$commit"
    # client-go's kubectl version reads the same variables through its own copy.
    ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$version"
    ld="$ld -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    local packages=()
    for cmd in "$@"; do packages+=("k8s.io/kubernetes/cmd/$cmd"); done
    nice -n 19 go build -p 2 -trimpath -tags "$tags" -ldflags "$ld" -o "$out/" "${packages[@]}"
}
