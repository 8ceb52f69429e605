#!/usr/bin/env bash
# dist.sh VERSION builds the release of kubectl-dc: one static binary per
# platform, one archive per platform holding the binary, LICENSE and the
# kubectl_complete-dc helper, a sha256 checksums file, and the krew manifest
# rendered from krew/dc.yaml.tmpl. `make dist` calls it with git describe.
#
# VERSION must be semver with a "v" (vX.Y.Z or vX.Y.Z-pre), as krew requires.
# Anything else (git describe before the first tag prints a bare commit hash)
# is replaced by $DEV_VERSION, v0.1.0-dev by default: a pre-release of the
# first release, which sorts before it. The commit is recorded separately.
#
# Environment:
#   DIST_DIR        output directory (default dist/ in the repository)
#   DIST_PLATFORMS  space-separated GOOS/GOARCH list (default: all five
#                   release platforms). The manifest lists exactly the
#                   platforms built, so a release must use the default.
#   KREW_MANIFEST   where the rendered manifest goes (default krew/dc.yaml)
#   RELEASE_URL     base of the archive URIs (default the GitHub releases of
#                   kubectl-dc/kubectl-dc); URIs are RELEASE_URL/VERSION/ARCHIVE
#   COMMIT, DATE    override the commit and build date stamped in the binary.
#                   DATE defaults to the commit time, so that building the
#                   same commit twice gives the same bytes.
#   SOURCE_DATE_EPOCH  file times in the archives (default the commit time)
#   GO              the go command (default go)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_PLATFORMS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64"
SEMVER_RE='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$'
PKG=github.com/kubectl-dc/kubectl-dc

VERSION="${1:-}"
if [[ ! "$VERSION" =~ $SEMVER_RE ]]; then
  DEV_VERSION="${DEV_VERSION:-v0.1.0-dev}"
  echo "dist.sh: version \"$VERSION\" is not vX.Y.Z[-pre] as krew requires; using $DEV_VERSION" >&2
  VERSION="$DEV_VERSION"
fi

GO="${GO:-go}"
DIST_DIR="${DIST_DIR:-$ROOT/dist}"
KREW_MANIFEST="${KREW_MANIFEST:-$ROOT/krew/dc.yaml}"
DIST_PLATFORMS="${DIST_PLATFORMS:-$ALL_PLATFORMS}"
RELEASE_URL="${RELEASE_URL:-https://github.com/kubectl-dc/kubectl-dc/releases/download}"
TEMPLATE="$ROOT/krew/dc.yaml.tmpl"
HELPERS="$ROOT/cmd/kubectl_complete-dc"

if git rev-parse --git-dir >/dev/null 2>&1; then
  COMMIT="${COMMIT:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)}"
  EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
else
  # Not a git checkout (a source tarball): nothing to pin the time to.
  COMMIT="${COMMIT:-unknown}"
  EPOCH="${SOURCE_DATE_EPOCH:-$(date +%s)}"
fi
DATE="${DATE:-$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)}"

mkdir -p "$DIST_DIR" "$(dirname "$KREW_MANIFEST")"
DIST_DIR="$(cd "$DIST_DIR" && pwd)"
# Old archives would end up in checksums.txt.
rm -f "$DIST_DIR"/kubectl-dc_*.tar.gz "$DIST_DIR"/kubectl-dc_*.zip "$DIST_DIR/checksums.txt"
STAGE="$(mktemp -d "$DIST_DIR/.stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

LDFLAGS="-s -w -X $PKG/plugin.version=$VERSION -X $PKG/plugin.commit=$COMMIT -X $PKG/plugin.date=$DATE"
PLATFORM_LINES="$STAGE/platforms"
: >"$PLATFORM_LINES"

for platform in $DIST_PLATFORMS; do
  os="${platform%/*}"
  arch="${platform#*/}"
  case " $ALL_PLATFORMS " in
    *" $platform "*) ;;
    *) echo "dist.sh: unknown platform \"$platform\" in DIST_PLATFORMS: use some of: $ALL_PLATFORMS" >&2; exit 2 ;;
  esac
  name="kubectl-dc_${VERSION}_${os}_${arch}"
  dir="$STAGE/$name"
  mkdir -p "$dir"
  if [[ "$os" == windows ]]; then
    bin=kubectl-dc.exe helper=kubectl_complete-dc.cmd archive="$name.zip"
  else
    bin=kubectl-dc helper=kubectl_complete-dc archive="$name.tar.gz"
  fi
  echo "dist.sh: building $platform" >&2
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$dir/$bin" ./cmd/kubectl-dc
  install -m 0644 LICENSE "$dir/LICENSE"
  install -m 0755 "$HELPERS/$helper" "$dir/$helper"
  chmod 0755 "$dir/$bin"
  # Fixed times, owners and order: the same inputs give the same archive.
  touch -h -d "@$EPOCH" "$dir"/*
  if [[ "$os" == windows ]]; then
    (cd "$dir" && TZ=UTC zip -q -X -9 "$DIST_DIR/$archive" "$bin" "$helper" LICENSE)
  else
    tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" --format=ustar \
      -cf - "$bin" "$helper" LICENSE | gzip -n -9 >"$DIST_DIR/$archive"
  fi
  sha="$(sha256sum "$DIST_DIR/$archive" | cut -d' ' -f1)"
  echo "$os $arch $RELEASE_URL/$VERSION/$archive $sha $bin $helper" >>"$PLATFORM_LINES"
done

(cd "$DIST_DIR" && sha256sum kubectl-dc_* | LC_ALL=C sort -k2 >checksums.txt)

# Render the manifest: drop the leading comment, fill {{VERSION}}, repeat the
# platforms block once per line of $PLATFORM_LINES.
awk -v version="$VERSION" -v platforms="$PLATFORM_LINES" '
  BEGIN { n = 0; while ((getline line < platforms) > 0) p[++n] = line; started = 0 }
  !started && /^#/ { next }
  { started = 1; gsub(/\{\{VERSION\}\}/, version) }
  /^\{\{#platforms\}\}$/ { inblock = 1; nb = 0; next }
  /^\{\{\/platforms\}\}$/ {
    inblock = 0
    for (i = 1; i <= n; i++) {
      split(p[i], f, " ")
      for (j = 1; j <= nb; j++) {
        l = block[j]
        gsub(/\{\{OS\}\}/, f[1], l); gsub(/\{\{ARCH\}\}/, f[2], l)
        gsub(/\{\{URI\}\}/, f[3], l); gsub(/\{\{SHA256\}\}/, f[4], l)
        gsub(/\{\{BIN\}\}/, f[5], l); gsub(/\{\{HELPER\}\}/, f[6], l)
        print l
      }
    }
    next
  }
  inblock { block[++nb] = $0; next }
  { print }
' "$TEMPLATE" >"$KREW_MANIFEST.tmp"
mv "$KREW_MANIFEST.tmp" "$KREW_MANIFEST"

echo "dist.sh: $VERSION ($COMMIT, $DATE): $(wc -l <"$DIST_DIR/checksums.txt") archives in $DIST_DIR, manifest $KREW_MANIFEST" >&2
