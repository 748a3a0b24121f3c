# Sourced by build-cluster.sh and build-node.sh (build-pulumi.sh uses reuse_built only): a toolchain
# of several parts, each built by the sourcing script's build_<part> function into DEST/bin, and
# reused once DEST/.complete exists.

# reuse_built DEST WHAT SCRIPT [--check]: when DEST is complete, prints DEST/bin and exits 0; with
# --check, says what to run and exits 1 when it is not (never builds).
reuse_built() {
    local dest="$1" what="$2" script="$3" option="${4:-}"
    if [[ -f "$dest/.complete" ]]; then
        echo "$dest/bin"
        exit 0
    fi
    if [[ "$option" == "--check" ]]; then
        echo "$what not built: run bash $script (expected $dest/bin)" >&2
        exit 1
    fi
}

# build_parts DEST TAG PART=USUAL...: runs build_<PART> for each PART in turn, with Go's own output
# in DEST/build.log and one line per stage on the terminal (with USUAL, its cold time measured on 2
# cores, docs/ci-budget.md), the log's tail when a stage fails; then marks DEST complete and prints
# DEST/bin on the last line.
build_parts() {
    local dest="$1" tag="$2" entry part status t0 started
    shift 2
    started=$(date +%s)
    local log="$dest/build.log"
    : > "$log"
    for entry in "$@"; do
        part="${entry%%=*}"
        t0=$(date +%s)
        echo "[$tag] building $part (usually ${entry#*=} cold)" >&2
        # A plain command, so that `set -e` holds inside the stage (an `if` or `||` would lift it).
        set +e
        (set -e; "build_$part") >>"$log" 2>&1
        status=$?
        set -e
        if ((status != 0)); then
            echo "[$tag] $part failed; the end of $log:" >&2
            tail -n 30 "$log" >&2
            exit "$status"
        fi
        echo "[$tag] $part built in $(( $(date +%s) - t0 ))s" >&2
    done
    rm -rf "$dest/work"
    echo "[$tag] total $(( $(date +%s) - started ))s, $(du -sh "$dest/bin" | cut -f1) in $dest/bin" >&2
    touch "$dest/.complete"
    echo "$dest/bin"
}
