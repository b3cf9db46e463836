#!/usr/bin/env bash
# Fetches the NHS.UK frontend (CSS, JavaScript, icons) that the web pages use, into the
# ignored folder referral_gateway/web/nhsuk_frontend/ that the app serves at /nhsuk and
# /assets. Run by deploy/run-demo.sh, deploy/test.sh and the container build; nothing of it
# is kept in the repository. Needs npm (it downloads with `npm pack`).
#
# The tarball must match the sha512 pinned here: npm checks the registry's own integrity,
# this checks that the registry still serves the release we reviewed.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=10.6.1
SHA512=3d9a2ba90663671fc0dbac89a2c9022fdcf489be80b64032174a382bf447afccd1ac9c97ad43829cc6e3cb454d5ec18ee2d7d334cc2a964c004cab386b4c5acb
DEST=${1:-referral_gateway/web/nhsuk_frontend}
STAMP="nhsuk-frontend $VERSION sha512:$SHA512 without @font-face"

if [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$STAMP" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || {
  echo "npm is needed to fetch nhsuk-frontend $VERSION (apt-get install -y npm)" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== fetching nhsuk-frontend $VERSION"
(cd "$work" && npm pack --silent "nhsuk-frontend@$VERSION" >/dev/null)
tarball="$work/nhsuk-frontend-$VERSION.tgz"
if ! echo "$SHA512  $tarball" | sha512sum --check --status; then
  echo "nhsuk-frontend-$VERSION.tgz does not match the pinned sha512: not using it" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/dist/nhsuk
dist="$work/package/dist/nhsuk"

# only what the pages load: the compiled stylesheet, the ES module script, the icons. The
# stylesheet loses its two @font-face rules: they load Frutiger from assets.nhs.uk, which
# the pages' content security policy (font-src 'self') refuses, and which is licensed for
# nhs.uk sites only; the pages use Arial (static/app.css), as NHS services elsewhere do.
rm -rf "$DEST.new"
mkdir -p "$DEST.new"
sed -E 's/@font-face\{[^}]*\}//g' "$dist/nhsuk-frontend.min.css" >"$DEST.new/nhsuk-frontend.min.css"
cp "$dist/nhsuk-frontend.min.js" "$DEST.new/"
cp -R "$dist/assets" "$DEST.new/assets"
echo "$STAMP" >"$DEST.new/VERSION"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "== nhsuk-frontend $VERSION in $DEST"
