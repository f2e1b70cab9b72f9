# shellcheck shell=bash
# What setup.sh and fio-tree.sh share: apt with a private state directory
# (its own sources, an empty dpkg status, this host's package archive), so
# that a Debian suite the host does not run can be resolved and downloaded
# without touching the host's apt. Source it; the caller defines die and
# log.

# private_apt_init DIR KEYRING MIRROR SUITE...: a fresh apt state in DIR
# whose sources are SUITE... (main) of MIRROR signed by KEYRING, updated;
# APTOPT is set to the options every later apt-get call takes. Dies when
# the update fails or leaves a suite without its package list (apt-get
# update exits 0 when a fetch fails, with only a W: line).
private_apt_init() {
    local dir=$1 keyring=$2 mirror=$3 suite
    shift 3
    rm -rf "$dir"
    mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial" \
        "$dir/etc/sources.list.d" "$dir/etc/preferences.d"
    : >"$dir/state/status"
    for suite in "$@"; do
        printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite"
    done >"$dir/etc/sources.list"
    APTOPT=(
        -o "Dir::State=$dir/state"
        -o "Dir::State::status=$dir/state/status"
        -o "Dir::Cache=$dir/cache"
        -o "Dir::Etc::SourceList=$dir/etc/sources.list"
        -o "Dir::Etc::SourceParts=$dir/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
        -o "APT::Architecture=amd64"
        -o "APT::Architectures::=amd64"
        -o "Acquire::Languages=none"
        -o "APT::Sandbox::User=root"
        -o "APT::Install-Recommends=false"
        -o "APT::Install-Suggests=false"
        -o "Debug::NoLocking=true"
    )
    log "apt-get update (private state in $dir)"
    apt-get -q "${APTOPT[@]}" update 2>&1 | tee "$dir/update.log" >&2 ||
        die "apt-get update failed"
    for suite in "$@"; do
        ls "$dir/state/lists/"*"_dists_${suite}_main_binary-amd64_Packages"* \
            >/dev/null 2>&1 || {
            cat "$dir/update.log" >&2
            die "apt-get update could not fetch $suite from $mirror"
        }
    done
}

# private_apt_unpack DIR TREE: every .deb DIR's apt downloaded, unpacked
# into TREE (created afresh, with merged /usr as Debian has it), and
# DIR/packages.txt (what was resolved, NAME=VERSION a line) kept there as
# .packages. Dies when a package does not unpack.
private_apt_unpack() {
    local dir=$1 tree=$2 d deb n
    n=$(find "$dir/cache/archives" -maxdepth 1 -name '*.deb' | wc -l)
    rm -rf "$tree"
    mkdir -p "$tree/usr/bin" "$tree/usr/sbin" "$tree/usr/lib" "$tree/usr/lib64"
    for d in bin sbin lib lib64; do ln -s "usr/$d" "$tree/$d"; done
    log "unpacking $n packages"
    for deb in "$dir"/cache/archives/*.deb; do
        dpkg -x "$deb" "$tree" || die "dpkg -x $deb failed"
    done
    cp "$dir/packages.txt" "$tree/.packages"
}
