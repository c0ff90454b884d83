#!/usr/bin/env bash
# install.sh — installs walrev as a systemd service: the binary, a system
# user, the unit, the example config (an existing config is never
# overwritten), the docs and the man pages the build made. Run as root.
# See docs/install.md (the Debian package installs the same files).
#
#   deploy/install.sh [--binary PATH] [--destdir DIR] [--no-user] [--no-systemctl]
#
# --destdir stages everything under DIR (packaging, tests) and implies
# --no-user --no-systemctl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
binary=""
destdir=""
make_user=1
run_systemctl=1

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a directory}; make_user=0; run_systemctl=0; shift 2 ;;
    --no-user) make_user=0; shift ;;
    --no-systemctl) run_systemctl=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage 2 ;;
  esac
done

if [ -z "$binary" ]; then
  for b in "$repo"/build/worker/walrev "$repo"/build*/worker/walrev; do
    if [ -x "$b" ]; then binary=$b; break; fi
  done
fi
[ -n "$binary" ] && [ -x "$binary" ] || { echo "install.sh: no walrev binary found; build it or pass --binary PATH" >&2; exit 1; }
if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or stage with --destdir DIR)" >&2; exit 1
fi

bindir=$destdir/usr/local/bin
unitdir=$destdir/etc/systemd/system
confdir=$destdir/etc/walrev
docdir=$destdir/usr/local/share/doc/walrev
statedir=$destdir/var/lib/walrev

if [ "$make_user" = 1 ] && ! id walrev >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/walrev --no-create-home --shell /usr/sbin/nologin \
          --comment "walrev history worker" walrev
  echo "created system user walrev"
fi

install -d -m 0755 "$bindir" "$unitdir" "$docdir"
install -m 0755 "$binary" "$bindir/walrev"
install -m 0644 "$here/walrev.service" "$unitdir/walrev.service"
install -d -m 0750 "$confdir"
install -m 0644 "$here/walrev.conf.example" "$confdir/walrev.conf.example"
if [ ! -e "$confdir/walrev.conf" ]; then
  install -m 0640 "$here/walrev.conf.example" "$confdir/walrev.conf"
  echo "installed $confdir/walrev.conf (edit [source] conninfo)"
else
  echo "kept existing $confdir/walrev.conf"
fi
install -d -m 0750 "$statedir"
# Every doc, as the package installs them (deploy/CMakeLists.txt globs docs/*.md).
for d in "$repo"/README.md "$repo"/docs/*.md; do
  install -m 0644 "$d" "$docdir/$(basename "$d")"
done
# The man pages, when the build made them (pandoc; see docs/install.md).
mandir=$destdir/usr/local/share/man
bindir_of_build=$(dirname "$(dirname "$binary")")
for page in "$bindir_of_build"/deploy/man/walrev.1.gz "$bindir_of_build"/deploy/man/walrev.conf.5.gz; do
  [ -f "$page" ] || continue
  section=${page%.gz}; section=${section##*.}
  install -d -m 0755 "$mandir/man$section"
  install -m 0644 "$page" "$mandir/man$section/"
done
if id walrev >/dev/null 2>&1 && [ -z "$destdir" ]; then
  chown root:walrev "$confdir" "$confdir/walrev.conf"
  chown walrev:walrev "$statedir"
fi
if [ "$run_systemctl" = 1 ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload || echo "install.sh: systemctl daemon-reload failed (is systemd running?)" >&2
fi

cat <<MSG
walrev installed to ${destdir:-/}.
Next:
  1. edit /etc/walrev/walrev.conf ([source] conninfo, no password in it);
     put the password in /var/lib/walrev/.pgpass (owner walrev, mode 0600)
  2. prepare the database once, as the role in the config (it needs REPLICATION
     and CREATE on the database; docs/cli.md#setup says what a superuser must
     create first otherwise):
                                 walrev -c /etc/walrev/walrev.conf setup
  3. start the service:          systemctl enable --now walrev
  4. watch it:                   journalctl -u walrev -f
MSG
