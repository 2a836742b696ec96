#!/bin/sh
# Makes the image docker.io/library/debian:bookworm-slim in podman's storage, as Debian's
# official one is made (debuerreotype: debootstrap --variant=minbase, the minimizing apt and dpkg
# settings, the "slim" exclusions), from the Debian mirror that this machine's own apt sources
# name, read here: no registry is needed. Those sources (bookworm, bookworm-updates,
# bookworm-security) become the image's, so that its `apt-get` steps work. About 30-40 s, 75 MB.
#
#   sh tests/deploy/container/make_base.sh WORKDIR   (as root; WORKDIR is scratch space, removed)
#
# Exit status 0 when the image exists afterwards; 3 when this machine's apt sources name no
# Debian bookworm mirror (nothing to make it from).
set -eu
W=$1
IMAGE=docker.io/library/debian:bookworm-slim
R=$W/rootfs

# The machine's apt sources (deb822 .sources and one-line .list files): every enabled "deb"
# entry for a bookworm suite, as deb822 stanzas for the image.
python3 - "$W/debian.sources" "$W/mirror" <<'PYEOF'
import glob, re, sys
entries = []  # (uri, suite, components, signed_by)
for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(f).read()):
        d = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            k, v = line.split(":", 1)
            d[k.strip().lower()] = v.split()
        if d.get("enabled", ["yes"])[0].lower() == "no" or "deb" not in d.get("types", []):
            continue
        for uri in d.get("uris", []):
            for suite in d.get("suites", []):
                entries.append((uri, suite, d.get("components", ["main"])))
for f in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(f).read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            entries.append((line[1], line[2], line[3:] or ["main"]))
ours = [e for e in entries if re.fullmatch(r"bookworm(-updates|-security)?", e[1])]
main = [e for e in ours if e[1] == "bookworm"]
if not main:
    sys.exit(3)
with open(sys.argv[1], "w") as out:
    by_uri = {}
    for uri, suite, comps in ours:
        s = by_uri.setdefault(uri, ([], []))
        s[0].append(suite) if suite not in s[0] else None
    for uri, (suites, _) in by_uri.items():
        out.write("Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n"
                  "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
                  % (uri, " ".join(suites)))
open(sys.argv[2], "w").write(main[0][0] + "\n")
PYEOF
MIRROR=$(cat "$W/mirror")

debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 || {
    tail -n 20 "$W/debootstrap.log" >&2
    exit 1
}

# debuerreotype-minimizing-config: no services started by package scripts, no sync per file,
# apt caches cleaned after each run, compressed lists, no translations.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
echo force-unsafe-io >"$R/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$R/etc/apt/apt.conf.d/docker-autoremove-suggests"
clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
cat >"$R/etc/apt/apt.conf.d/docker-clean" <<CLEAN
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
echo 'Acquire::GzipIndexes "true";' >"$R/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$R/etc/apt/apt.conf.d/docker-no-languages"

# debuerreotype-slimify: documentation, manuals and translations out, and dpkg told to keep
# them out of later installs (copyright files and a few locale files stay).
{
    echo '# The "slim" variant: files containers do not need, kept out of later installs too.'
    for p in '/usr/share/doc/*' '/usr/share/info/*' '/usr/share/linda/*' \
        '/usr/share/lintian/overrides/*' '/usr/share/locale/*' '/usr/share/man/*' \
        '/usr/share/doc/kde/HTML/*/*' '/usr/share/gnome/help/*/*' '/usr/share/omf/*/*-*.emf'; do
        echo "path-exclude $p"
    done
    for p in '/usr/share/doc/*/copyright' '/usr/share/doc/kde/HTML/C/*' \
        '/usr/share/gnome/help/*/C/*' '/usr/share/locale/all_languages' \
        '/usr/share/locale/currency/*' '/usr/share/locale/l10n/*' '/usr/share/locale/languages' \
        '/usr/share/locale/locale.alias' '/usr/share/omf/*/*-C.emf'; do
        echo "path-include $p"
    done
} >"$R/etc/dpkg/dpkg.cfg.d/docker"
for d in doc info linda lintian/overrides locale man; do
    [ -d "$R/usr/share/$d" ] || continue
    find "$R/usr/share/$d" -mindepth 1 ! -type d \
        ! -path "$R/usr/share/doc/*/copyright" ! -path "$R/usr/share/locale/locale.alias" \
        ! -path "$R/usr/share/locale/languages" ! -path "$R/usr/share/locale/all_languages" \
        ! -path "$R/usr/share/locale/currency/*" ! -path "$R/usr/share/locale/l10n/*" -delete
    find "$R/usr/share/$d" -mindepth 1 -depth -type d -empty -delete
done
for n in 1 2 3 4 5 6 7 8; do mkdir -p "$R/usr/share/man/man$n"; done

# The machine's own Debian sources; then debuerreotype-fixup and its tar exclusions: no apt
# lists or caches, no logs, an empty machine-id.
rm -f "$R/etc/apt/sources.list"
cp "$W/debian.sources" "$R/etc/apt/sources.list.d/debian.sources"
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/var/cache/apt/archives/*.deb \
    "$R/var/log/dpkg.log" "$R/var/log/bootstrap.log" "$R/var/log/alternatives.log" \
    "$R"/var/log/apt/*.log "$R/var/cache/ldconfig/aux-cache" "$R/etc/apt/apt.conf.d/01autoremove-kernels"
mkdir -p "$R/var/lib/apt/lists/partial"
[ ! -s "$R/etc/machine-id" ] || : >"$R/etc/machine-id"

tar --numeric-owner --exclude='./proc/*' --exclude='./sys/*' -C "$R" -c . |
    podman import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
rm -rf "$R"
podman image exists "$IMAGE"
