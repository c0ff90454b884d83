#!/usr/bin/env bash
# The Debian package (issue 17.5): `cpack -G DEB` builds it from the build
# directory; it holds exactly what `cmake --install` installs; lintian reports
# nothing that is not overridden with a reason; extracted into a scratch root
# its binary runs (--version) and its unit passes `systemd-analyze verify`.
# Needs dpkg-deb, lintian and (for the man pages) pandoc: scripts/deps.sh.
set -euo pipefail
: "${WALREV_BIN:?run through ctest}"
: "${WALREV_BUILD_DIR:?run through ctest}"
: "${WALREV_SOURCE_DIR:?run through ctest}"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

for tool in cpack dpkg-deb lintian; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh installs it)"
done
# Without man pages lintian rightly reports binary-without-manpage: say why first.
[ "${WALREV_MAN_PAGES:-1}" = 1 ] || fail "pandoc was not found when the build was configured, so the package has no man pages (scripts/deps.sh installs pandoc; then reconfigure)"
OUT=$(mktemp -d /tmp/walrev-test-deb-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# 1. Build the package into a scratch directory (cpack's staging goes there too).
(cd "$WALREV_BUILD_DIR" && cpack -G DEB -B "$OUT/pkg") >"$OUT/cpack.log" 2>&1 \
  || { cat "$OUT/cpack.log"; fail "cpack -G DEB"; }
debs=("$OUT"/pkg/walrev_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || { cat "$OUT/cpack.log"; fail "no single walrev_*.deb in $OUT/pkg"; }
deb=${debs[0]}
pass "cpack built $(basename "$deb")"

# 2. Its contents: the binary, unit, sysusers entry, config (a conffile),
# every doc and, when pandoc was found, both man pages.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); print $6 }' | sort >"$OUT/deb.files"
want=(usr/bin/walrev usr/lib/systemd/system/walrev.service usr/lib/sysusers.d/walrev.conf
      etc/walrev/walrev.conf usr/share/doc/walrev/examples/walrev.conf.example
      usr/share/doc/walrev/README.md usr/share/doc/walrev/copyright
      usr/share/doc/walrev/changelog.Debian.gz usr/share/lintian/overrides/walrev)
for doc in "$WALREV_SOURCE_DIR"/docs/*.md; do want+=("usr/share/doc/walrev/$(basename "$doc")"); done
if [ "${WALREV_MAN_PAGES:-1}" = 1 ]; then
  want+=(usr/share/man/man1/walrev.1.gz usr/share/man/man5/walrev.conf.5.gz)
fi
printf '%s\n' "${want[@]}" | sort >"$OUT/want.files"
diff -u "$OUT/want.files" "$OUT/deb.files" || fail "the package's files differ from the expected set"
pass "package holds the expected $(wc -l <"$OUT/want.files") files"
dpkg-deb -f "$deb" Package Version Section Depends >"$OUT/control"
grep -qx 'Package: walrev' "$OUT/control" && grep -q '^Depends: .*adduser' "$OUT/control" \
  && grep -q 'libpq5' "$OUT/control" || { cat "$OUT/control"; fail "control fields"; }
dpkg-deb -e "$deb" "$OUT/control.d"
[ "$(cat "$OUT/control.d/conffiles")" = /etc/walrev/walrev.conf ] || fail "conffiles: $(cat "$OUT/control.d/conffiles")"
grep -q 'adduser --system' "$OUT/control.d/postinst" || fail "postinst creates no system user"
pass "control: Depends from shlibdeps, conffile, postinst creates the user"

# 3. cmake --install stages the same set of files.
DESTDIR="$OUT/inst" cmake --install "$WALREV_BUILD_DIR" --prefix /usr >"$OUT/install.log" 2>&1 \
  || { cat "$OUT/install.log"; fail "cmake --install"; }
(cd "$OUT/inst" && find . -type f -o -type l) | sed 's|^\./||' | sort >"$OUT/inst.files"
diff -u "$OUT/deb.files" "$OUT/inst.files" || fail "cmake --install and the package install different files"
pass "cmake --install installs the same $(wc -l <"$OUT/inst.files") files"

# 4. lintian: no tag except the overridden ones (each has its reason in
# deploy/debian/lintian-overrides), info and pedantic tags included.
rc=0
lintian --display-info --pedantic --fail-on error,warning,info,pedantic "$deb" >"$OUT/lintian.log" 2>&1 || rc=$?
grep -v '^running with root privileges' "$OUT/lintian.log" >"$OUT/lintian.tags" || true
if [ "$rc" != 0 ] || [ -s "$OUT/lintian.tags" ]; then
  cat "$OUT/lintian.log"; fail "lintian (rc=$rc)"
fi
pass "lintian --pedantic --display-info: no tags"
# The check is real: the same package without its copyright file is reported.
mkdir -p "$OUT/broken/DEBIAN"
dpkg-deb -x "$deb" "$OUT/broken"
dpkg-deb -e "$deb" "$OUT/broken/DEBIAN"
rm "$OUT/broken/usr/share/doc/walrev/copyright"
sed -i '/usr\/share\/doc\/walrev\/copyright/d' "$OUT/broken/DEBIAN/md5sums"
dpkg-deb --root-owner-group -b "$OUT/broken" "$OUT/broken.deb" >/dev/null
lintian "$OUT/broken.deb" >"$OUT/broken.log" 2>&1 || true
grep -q 'E: walrev: no-copyright-file' "$OUT/broken.log" || { cat "$OUT/broken.log"; fail "lintian missed a missing copyright file"; }
pass "lintian reports a package without its copyright file"

# 5. Installed into a scratch root, the binary runs and says its version.
mkdir "$OUT/root"
dpkg-deb -x "$deb" "$OUT/root"
version=$("$OUT/root/usr/bin/walrev" --version) || fail "installed walrev --version failed"
[ "$version" = "$("$WALREV_BIN" --version)" ] || fail "installed version '$version' differs from the build's"
grep -q "$(dpkg-deb -f "$deb" Version | sed 's/-[0-9]*$//')" <<<"$version" || fail "'$version' lacks the package version"
pass "installed binary runs: $version"
unit=$OUT/root/usr/lib/systemd/system/walrev.service
grep -qx 'ExecStart=/usr/bin/walrev -c /etc/walrev/walrev.conf run' "$unit" || fail "packaged unit's ExecStart"
grep -qx 'RestartPreventExitStatus=2' "$unit" || fail "packaged unit lacks RestartPreventExitStatus=2"
if command -v systemd-analyze >/dev/null; then
  sed "s|^ExecStart=/usr/bin/walrev|ExecStart=$OUT/root/usr/bin/walrev|" "$unit" >"$OUT/walrev.service"
  # --man=no: man:walrev(1) is in the scratch root, not in man's path.
  systemd-analyze verify --man=no "$OUT/walrev.service" >"$OUT/verify.log" 2>&1 && [ ! -s "$OUT/verify.log" ] \
    || { cat "$OUT/verify.log"; fail "systemd-analyze verify of the packaged unit"; }
  pass "packaged unit passes systemd-analyze verify"
fi
if [ "${WALREV_MAN_PAGES:-1}" = 1 ]; then
  whatis=$(lexgrog "$OUT/root/usr/share/man/man1/walrev.1.gz" 2>&1 || true)
  grep -q 'walrev - history of a PostgreSQL database' <<<"$whatis" || fail "walrev(1) whatis: $whatis"
  man -l "$OUT/root/usr/share/man/man5/walrev.conf.5.gz" 2>/dev/null | grep -q 'batch_max_revisions' \
    || fail "walrev.conf(5) lacks the [worker] keys"
  pass "man pages render (walrev(1) whatis, walrev.conf(5) has the keys)"
fi
echo "all package tests passed"
