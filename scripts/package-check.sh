#!/usr/bin/env bash
# `make package-check` (part of `make test`): what `make install` lays down works for an operator.
#   - the binaries, unit, man pages, completions and example config land under PREFIX;
#   - systemd-analyze verify accepts the unit with no warning, and the unit names the installed binary;
#   - every man page renders with man(1) without an error, and the bash completions parse;
#   - the example production config passes `amarsd node --check` once its genesis, key and login exist, and a
#     config with an unknown key exits 78 naming the key.
# Installs from the debug build (`swift build` first), so it costs no release build.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${FROM:-.build/debug}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "package-check: $*" >&2; exit 1; }

make -s install PREFIX="$tmp/usr" FROM="$bin" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "make install failed"; }
prefix="$tmp/usr"
for f in bin/amarsd bin/amars bin/amars-sim bin/amars-bench lib/systemd/system/amarsd.service \
    share/doc/amarscity/node.example.yaml share/man/man1/amarsd.1 share/man/man1/amarsd.node.1 \
    share/man/man1/amars.device.sync.1 share/bash-completion/completions/amarsd share/zsh/site-functions/_amars \
    share/fish/vendor_completions.d/amars-sim.fish; do
    [ -s "$prefix/$f" ] || fail "missing $f"
done
[ -x "$prefix/bin/amarsd" ] || fail "bin/amarsd is not executable"

unit="$prefix/lib/systemd/system/amarsd.service"
grep -q "^ExecStart=$prefix/bin/amarsd node --config /etc/amars/node.yaml$" "$unit" || fail "ExecStart does not name $prefix/bin/amarsd"
# verify exits 0 even when it ignores a bad line: any output is a failure. man pages are not on MANPATH here.
out=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"

pages=0
for page in "$prefix"/share/man/man1/*.1; do
    err=$(MANWIDTH=100 man -l "$page" 2>&1 >/dev/null | grep -v "mdoc warning: Empty input line" || true)
    [ -z "$err" ] || fail "man -l $(basename "$page"): $err"
    pages=$((pages + 1))
done
for f in "$prefix"/share/bash-completion/completions/*; do bash -n "$f" || fail "bash completion $(basename "$f") does not parse"; done

# The example config, with what it names made up in a scratch /etc/amars.
etc="$tmp/etc/amars"
mkdir -p "$etc" "$tmp/var"
"$prefix/bin/amars" genesis new --out "$etc/genesis.json" --keys "$etc/keys" > /dev/null
printf 'gateway %s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$tmp/var/gateway.credentials"
sed -e "s|^data: /var/lib/amars|data: $tmp/var/amars|" \
    -e "s|^mqtt_credentials: .*|mqtt_credentials: $tmp/var/gateway.credentials|" \
    "$prefix/share/doc/amarscity/node.example.yaml" > "$etc/node.yaml"
out=$("$prefix/bin/amarsd" node --config "$etc/node.yaml" --check 2>&1) || fail "the example config fails --check: $out"
grep -q "is valid" <<<"$out" || fail "--check printed no verdict: $out"
[ ! -e "$tmp/var/amars" ] || fail "--check created the data directory"
printf 'dta: x\n' >> "$etc/node.yaml"
set +e
out=$("$prefix/bin/amarsd" node --config "$etc/node.yaml" --check 2>&1)
status=$?
set -e
[ "$status" -eq 78 ] || fail "a config with an unknown key exited $status, not 78: $out"
grep -q "unknown key 'dta'" <<<"$out" || fail "the refusal does not name the key: $out"

echo "package-check: make install laid down 4 binaries, the unit (systemd-analyze verify: clean), $pages man pages, completions; the example config passes --check"
