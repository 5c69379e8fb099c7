#!/bin/sh
# wile installer: puts wile into ~/.wile/bin for the current user and sets up renewal from the
# user's own crontab. No root needed, and none asked for.
#
#   curl -fsSL <base>/install.sh | sh -s -- --email me@example.com
#   wget -qO- <base>/install.sh | sh -s -- --email me@example.com
#
# Options:
#   --email ADDR   default contact for new ACME accounts (stored in <home>/config.json; repeatable)
#   --home DIR     state directory and install place (default: $WILE_HOME, else ~/.wile)
#   --no-cron      do not run `wile install-cron`
#   --standalone   install the standalone binary even when Node.js 20+ is on PATH
#   --allow-root   install for root anyway (see below why that is refused by default)
#   --help
# Environment:
#   WILE_DOWNLOAD_URL  where to download from (default below); https://, or http:// on loopback only
#   TMPDIR             where the download is checked and unpacked (default /tmp; about 150 MB)
#
# What it does: detects the OS and CPU (Linux x86_64 or aarch64); downloads SHA256SUMS and either
# wile.cjs (when `node` 20 or newer is on PATH; run through a small wrapper that names node by its
# absolute path, so cron's minimal PATH does not matter) or the standalone binary wile-linux-<arch>,
# which is published compressed: wile-linux-<arch>.xz (about 27 MB) when xz, unxz or xzcat is on
# PATH (busybox has them too), else wile-linux-<arch>.gz (about 42 MB; gzip or busybox gunzip);
# checks the SHA-256 of the downloaded file before decompressing it and installs nothing on a
# mismatch (a download cut short is one) or a failed decompression; checks that the new program
# runs (`wile version`); puts it at <home>/bin/wile (keeping the one it replaces as wile.prev /
# wile.cjs.prev); records where it came from in <home>/bin/install.json (`wile upgrade` downloads
# from there again, the same way); links it into ~/.local/bin when that is on PATH; stores --email;
# runs `wile install-cron`. Running it again upgrades in place; certificates, accounts and settings
# are never touched. More in docs/install.md.
set -eu
# The whole script is one brace group: sh reads all of it before running any of it, so a download
# cut short by the network (curl | sh) runs nothing instead of half an installer.
{

# The project's release location (the one place install.sh names it; src/install/download.ts has
# the same constant, and a unit test keeps the two equal).
WILE_DEFAULT_DOWNLOAD_URL="https://github.com/wile-acme/wile/releases/latest/download"

say() { printf '%s\n' "wile-install: $*" >&2; }
die() {
	printf '%s\n' "wile-install: error: $1" >&2
	[ -z "${2:-}" ] || printf '%s\n' "wile-install: hint: $2" >&2
	exit "${3:-1}"
}
usage() {
	cat <<'EOF'
Installs wile (an ACME client) for the current user, without root.

  curl -fsSL <base>/install.sh | sh -s -- [options]
  wget -qO- <base>/install.sh | sh -s -- [options]

Options:
  --email ADDR   default contact for new ACME accounts (repeatable)
  --home DIR     state directory; the program goes to DIR/bin (default: $WILE_HOME, else ~/.wile)
  --no-cron      do not set up renewal (wile install-cron)
  --standalone   install the standalone binary even when Node.js 20+ is on PATH
  --allow-root   install as root anyway (refused by default: wile needs no root)
Environment:
  WILE_DOWNLOAD_URL  download base (https://, or http:// on loopback)
  TMPDIR             where the download is unpacked (default /tmp; about 150 MB)

Running it again upgrades in place; certificates, accounts and settings are kept.
EOF
}

home=""
emails=""
no_cron=0
standalone=0
allow_root=0
while [ $# -gt 0 ]; do
	case "$1" in
	--email) [ $# -ge 2 ] || die "--email needs an address" "" 2; emails="$emails
$2"; shift 2 ;;
	--email=*) emails="$emails
${1#--email=}"; shift ;;
	--home) [ $# -ge 2 ] || die "--home needs a directory" "" 2; home=$2; shift 2 ;;
	--home=*) home=${1#--home=}; shift ;;
	--no-cron) no_cron=1; shift ;;
	--standalone) standalone=1; shift ;;
	--allow-root) allow_root=1; shift ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option: $1" "Options: --email ADDR, --home DIR, --no-cron, --standalone, --allow-root, --help" 2 ;;
	esac
done

# --- refuse root -----------------------------------------------------------------------------
uid=$(id -u)
if [ "$uid" = 0 ] && [ "$allow_root" = 0 ]; then
	die "refusing to install as root" "wile needs no root: it runs from the crontab of a normal user who may write the webroot's .well-known/acme-challenge/ and whose certificates the services read. A root install would renew as root, with a program downloaded into root's home. Run this as that user (e.g. su - www-user), or add --allow-root if you really want root." 2
fi

# --- where ------------------------------------------------------------------------------------
[ -n "${HOME:-}" ] || die "HOME is not set" "Run this from a login shell of the user who should own wile." 2
if [ -z "$home" ]; then home=${WILE_HOME:-$HOME/.wile}; fi
case "$home" in
/*) ;;
*) home="$(pwd)/$home" ;;
esac
case "$home" in
*[\"\\]* | *'
'*) die "the home directory must not contain quotes, backslashes or newlines: $home" "" 2 ;;
esac
bindir="$home/bin"

base=${WILE_DOWNLOAD_URL:-$WILE_DEFAULT_DOWNLOAD_URL}
base=${base%/}
case "$base" in
*[\"\\\ ]* | *'
'*) die "WILE_DOWNLOAD_URL must not contain spaces, quotes or backslashes: $base" "" 2 ;;
https://?*) ;;
http://127.* | http://localhost | http://localhost[:/]* | http://\[::1\]*) ;;
*) die "WILE_DOWNLOAD_URL must be an https:// URL (http:// only on loopback): $base" "" 2 ;;
esac

# --- what -------------------------------------------------------------------------------------
os=$(uname -s)
machine=$(uname -m)
arch=""
if [ "$os" = Linux ]; then
	case "$machine" in
	x86_64 | amd64) arch=x64 ;;
	aarch64 | arm64 | armv8*) arch=arm64 ;;
	esac
fi

node=""
if [ "$standalone" = 0 ] && command -v node >/dev/null 2>&1; then
	node=$(command -v node)
	case "$node" in
	/*) ;;
	*) node=$(cd "$(dirname "$node")" && pwd)/$(basename "$node") ;;
	esac
	major=$("$node" -p 'process.versions.node.split(".")[0]' </dev/null 2>/dev/null || echo 0)
	case "$major" in
	'' | *[!0-9]*) major=0 ;;
	esac
	if [ "$major" -lt 20 ]; then
		say "$node is Node.js $("$node" --version </dev/null 2>/dev/null || echo '?'), older than 20: installing the standalone binary instead"
		node=""
	fi
fi

if [ -n "$node" ]; then
	kind=node
	artifact=wile.cjs
elif [ -n "$arch" ]; then
	kind=binary
	artifact=wile-linux-$arch
else
	die "no standalone wile for $os $machine (there are binaries for Linux x86_64 and aarch64 only)" "Install Node.js 20 or newer and run this again: wile.cjs runs wherever Node does." 2
fi

# --- tools ------------------------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
	fetch() { curl -fsSL --connect-timeout 20 --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1 && wget --version 2>/dev/null | grep -q 'GNU Wget'; then
	fetch() { wget -q -T 60 -O "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
	# busybox wget (1.35 crashes with -T)
	fetch() { wget -q -O "$2" "$1"; }
else
	die "neither curl nor wget is installed" "Install one of them (e.g. apt-get install curl) and run this again." 2
fi

if command -v sha256sum >/dev/null 2>&1; then
	sha256() { sha256sum "$1" | awk '{print $1}'; }
elif command -v shasum >/dev/null 2>&1; then
	sha256() { shasum -a 256 "$1" | awk '{print $1}'; }
elif command -v openssl >/dev/null 2>&1; then
	sha256() { openssl dgst -sha256 "$1" | awk '{print $NF}'; }
elif [ -n "$node" ]; then
	sha256() { "$node" -e 'process.stdout.write(require("crypto").createHash("sha256").update(require("fs").readFileSync(process.argv[1])).digest("hex"))' "$1" </dev/null; }
else
	die "no SHA-256 tool found (sha256sum, shasum or openssl)" "Install coreutils or openssl and run this again; nothing was installed." 2
fi

# The standalone binaries are published compressed: <artifact>.xz (smallest) and <artifact>.gz.
# unxz_cmd / gunzip_cmd: what decompresses them here (stdin to stdout), empty when nothing does.
unxz_cmd=""
if command -v xz >/dev/null 2>&1; then
	unxz_cmd="xz -dc"
elif command -v unxz >/dev/null 2>&1; then
	unxz_cmd="unxz -c"
elif command -v xzcat >/dev/null 2>&1; then
	unxz_cmd=xzcat
fi
gunzip_cmd=""
if command -v gzip >/dev/null 2>&1; then
	gunzip_cmd="gzip -dc"
elif command -v gunzip >/dev/null 2>&1; then
	gunzip_cmd="gunzip -c"
fi

# --- download and check -----------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wile-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP

fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not download $base/SHA256SUMS" "Check the address (WILE_DOWNLOAD_URL) and your network; nothing was installed."
sum_of() { awk -v n="$1" '$2 == n || $2 == "*" n { print tolower($1); exit }' "$tmp/SHA256SUMS"; }

# The smallest form that SHA256SUMS lists and this host can decompress, else the file itself.
file="" unz=""
if [ -n "$unxz_cmd" ] && [ -n "$(sum_of "$artifact.xz")" ]; then
	file=$artifact.xz unz=$unxz_cmd
elif [ -n "$gunzip_cmd" ] && [ -n "$(sum_of "$artifact.gz")" ]; then
	file=$artifact.gz unz=$gunzip_cmd
elif [ -n "$(sum_of "$artifact")" ]; then
	file=$artifact
elif [ -n "$(sum_of "$artifact.gz")$(sum_of "$artifact.xz")" ]; then
	die "$artifact is published compressed (.xz, .gz), and nothing here decompresses it (gzip, gunzip, xz, unxz, xzcat)" "Install gzip or xz-utils and run this again; nothing was installed." 2
else
	die "$base/SHA256SUMS has no line for $artifact" "Is WILE_DOWNLOAD_URL a wile release folder? Nothing was installed."
fi
want=$(sum_of "$file")

say "downloading $base/$file"
fetch "$base/$file" "$tmp/$file" || die "could not download $base/$file" "Check the address (WILE_DOWNLOAD_URL) and your network, then run this again; nothing was installed."
# The checksum of what was downloaded, before anything reads it.
got=$(sha256 "$tmp/$file" | tr 'A-F' 'a-f')
if [ "$got" != "$want" ]; then
	die "checksum mismatch for $file: SHA256SUMS says $want, the download is $got" "The download is damaged (cut short?) or was tampered with. Nothing was installed; run this again, and if it repeats, report it."
fi
if [ -n "$unz" ]; then
	# shellcheck disable=SC2086 # $unz is a command and its options
	$unz <"$tmp/$file" >"$tmp/$artifact" || die "could not decompress $file with $unz" "It matched SHA256SUMS, so the file is as published. Is there room in ${TMPDIR:-/tmp} (about 150 MB; TMPDIR=DIR chooses another place)? Nothing was installed."
	rm -f "$tmp/$file"
fi
chmod 755 "$tmp/$artifact"

if [ "$kind" = node ]; then
	new_version=$("$node" "$tmp/$artifact" version </dev/null 2>&1) || die "the downloaded wile.cjs does not run with $node: $new_version" "Nothing was installed."
else
	new_version=$("$tmp/$artifact" version </dev/null 2>&1) || die "the downloaded $artifact does not run here: $new_version" "Nothing was installed. With Node.js 20 or newer on PATH, wile.cjs is installed instead."
fi
new_version=${new_version#wile }

# --- install ------------------------------------------------------------------------------------
old_version=""
if [ -x "$bindir/wile" ]; then
	old_version=$("$bindir/wile" version </dev/null 2>/dev/null || true)
	old_version=${old_version#wile }
fi

umask 077
mkdir -p "$home"
umask 022
mkdir -p "$bindir"

# put SRC DEST: copies SRC next to DEST, then renames it over DEST (atomic); a DEST with other
# content is kept as DEST.prev. Prints "same" when DEST already had these bytes.
put() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		echo same
		return 0
	fi
	cp "$1" "$2.new.$$"
	chmod 755 "$2.new.$$"
	if [ -f "$2" ]; then ln -f "$2" "$2.prev" 2>/dev/null || cp -p "$2" "$2.prev"; fi
	mv -f "$2.new.$$" "$2"
	echo changed
}

if [ "$kind" = node ]; then
	cat >"$tmp/wrapper" <<EOF
#!/bin/sh
# Written by wile's install.sh: runs wile.cjs with the node it found ($node), so that wile works
# from cron's minimal PATH too. \`wile upgrade\` replaces wile.cjs next to this file.
exec '$node' '$bindir/wile.cjs' "\$@"
EOF
	r1=$(put "$tmp/$artifact" "$bindir/wile.cjs")
	r2=$(put "$tmp/wrapper" "$bindir/wile")
else
	r1=$(put "$tmp/$artifact" "$bindir/wile")
	r2=same
	if [ -f "$bindir/wile.cjs" ]; then mv -f "$bindir/wile.cjs" "$bindir/wile.cjs.prev"; fi
fi

link=""
case ":${PATH:-}:" in
*":$HOME/.local/bin:"*)
	if [ -L "$HOME/.local/bin/wile" ] || [ ! -e "$HOME/.local/bin/wile" ]; then
		mkdir -p "$HOME/.local/bin"
		ln -sfn "$bindir/wile" "$HOME/.local/bin/wile"
		link="$HOME/.local/bin/wile"
	else
		say "not linking: $HOME/.local/bin/wile exists and is not a link (left as it is)"
	fi
	;;
esac

json_link=null
[ -z "$link" ] || json_link="\"$link\""
json_node=null
[ -z "$node" ] || json_node="\"$node\""
cat >"$bindir/install.json.new.$$" <<EOF
{
  "version": 1,
  "downloadUrl": "$base",
  "kind": "$kind",
  "artifact": "$artifact",
  "home": "$home",
  "program": "$bindir/wile",
  "node": $json_node,
  "link": $json_link
}
EOF
mv -f "$bindir/install.json.new.$$" "$bindir/install.json"

if [ -z "$old_version" ]; then
	say "installed wile $new_version at $bindir/wile ($artifact)"
elif [ "$r1" = same ] && [ "$r2" = same ]; then
	say "wile $new_version is already installed at $bindir/wile (unchanged)"
else
	say "upgraded wile $old_version -> $new_version at $bindir/wile (the previous one is kept as .prev)"
fi

# --- settings and renewal -----------------------------------------------------------------------
if [ -n "$emails" ]; then
	set -f
	set --
	for e in $emails; do set -- "$@" --email "$e"; done
	set +f
	"$bindir/wile" config --home "$home" "$@" </dev/null || die "could not store the e-mail address" "wile is installed; run: $bindir/wile config --email ADDR"
fi

cron_ok=1
if [ "$no_cron" = 0 ]; then
	"$bindir/wile" install-cron --home "$home" </dev/null || cron_ok=0
fi

if [ -n "$link" ]; then
	say "linked $link -> $bindir/wile"
	cmd=wile
else
	cmd="$bindir/wile"
	say "to run it as 'wile', add its directory to your PATH, e.g.:"
	say "  echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.profile   (then log in again)"
fi
if [ "$home" != "$HOME/.wile" ]; then
	say "this home is not the default one: pass --home $home to wile, or export WILE_HOME=$home"
fi
if [ "$cron_ok" = 0 ]; then
	die "wile is installed, but renewal is not set up (see the error above)" "Fix that and run: $cmd install-cron (or $cmd install-cron --systemd), or install again with --no-cron."
fi
say "next: $cmd issue -d example.com -w /var/www/html"
}
