#!/usr/bin/env bash
# Builds the Debian package vigil_<version>_<arch>.deb from binaries cargo already built.
#
#   packaging/build-deb.sh TARGET_DIR [OUT_DIR]
#
# TARGET_DIR holds `vigil` and `vigil-attester` (target/release after
# `cargo build --release --bins`, or target/debug); the package is written to OUT_DIR (default:
# TARGET_DIR) and its path printed. The binaries are stripped of debug information when
# `strip` exists (VIGIL_DEB_STRIP=0 keeps them). VIGIL_DEB_COMPRESSION picks dpkg-deb's
# compressor (default xz; gzip, zstd or none are faster); VIGIL_DEB_MAINTAINER the Maintainer
# field. Needs dpkg-deb and dpkg.
set -euo pipefail

usage() { echo "usage: $0 TARGET_DIR [OUT_DIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$(cd "$1" && pwd)"
out="$(mkdir -p "${2:-$target}" && cd "${2:-$target}" && pwd)"
for bin in vigil vigil-attester; do
  [ -x "$target/$bin" ] || { echo "$target/$bin is missing: run cargo build --release --bins first" >&2; exit 1; }
done
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is missing (Debian package dpkg)" >&2; exit 1; }

# The workspace version ([workspace.package] version = "x.y.z").
version="$(awk '/^\[workspace\.package\]/{p=1; next} /^\[/{p=0} p && $1 == "version" {gsub(/"/, "", $3); print $3; exit}' "$root/Cargo.toml")"
[ -n "$version" ] || { echo "no [workspace.package] version in $root/Cargo.toml" >&2; exit 1; }
arch="$(dpkg --print-architecture)"

# The attester links the TPM software stack (tss-esapi); depend on the packages that hold the
# libraries it links, as this system names them (bookworm: libtss2-esys-3.0.2-0, noble:
# libtss2-esys-3.0.2-0t64), plus the device TCTI that tctildr loads for /dev/tpmrm0.
depends=(libc6 adduser)
libs="$(ldd "$target/vigil-attester" 2>/dev/null | awk '$1 ~ /^libtss2-/ {print $1}')"
libs="$libs libtss2-tcti-device.so.0"
for lib in $libs; do
  pkg="$(dpkg -S "*/$lib" 2>/dev/null | head -n1 | cut -d: -f1 || true)"
  if [ -z "$pkg" ]; then
    echo "warning: no installed package holds $lib; leaving it out of Depends" >&2
    continue
  fi
  [[ " ${depends[*]} " == *" $pkg "* ]] || depends+=("$pkg")
done
depends_line="$(IFS=,; echo "${depends[*]}" | sed 's/,/, /g')"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/vigil"
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
  "$pkg/usr/share/doc/vigil" "$pkg/usr/share/vigil/certs/nvidia"
for bin in vigil vigil-attester; do
  install -m 0755 "$target/$bin" "$pkg/usr/bin/$bin"
  if [ "${VIGIL_DEB_STRIP:-1}" != 0 ] && command -v strip >/dev/null; then
    strip --strip-debug "$pkg/usr/bin/$bin"
  fi
done
install -m 0644 "$root/packaging/systemd/vigil.service" "$root/packaging/systemd/vigil-attester.service" \
  "$pkg/lib/systemd/system/"
install -m 0644 "$root/LICENSE" "$pkg/usr/share/doc/vigil/copyright"
install -m 0644 "$root/README.md" "$pkg/usr/share/doc/vigil/README.md"
for doc in install.md production-certificates.md; do
  if [ -f "$root/docs/$doc" ]; then
    install -m 0644 "$root/docs/$doc" "$pkg/usr/share/doc/vigil/$doc"
  fi
done
install -m 0644 "$root"/certs/nvidia/* "$pkg/usr/share/vigil/certs/nvidia/"
if [ -f "$root/certs/README.md" ]; then
  install -m 0644 "$root/certs/README.md" "$pkg/usr/share/vigil/certs/README.md"
fi

installed_kb="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: vigil
Version: $version
Architecture: $arch
Maintainer: ${VIGIL_DEB_MAINTAINER:-Vigil developers <vigil@localhost>}
Depends: $depends_line
Section: admin
Priority: optional
Installed-Size: $installed_kb
Description: hardware attestation verifier and attester for GPU hosts
 Vigil appraises TPM 2.0 quotes, measured-boot logs, IMA lists and GPU
 attestation reports against trusted baselines and returns signed verdicts.
 This package holds the verifier and CLI (vigil), the attester for GPU hosts
 (vigil-attester), their systemd units (disabled until you enable them) and
 NVIDIA's attestation roots under /usr/share/vigil/certs.
CONTROL

# System users for the two services, on install; the units are enabled by the operator.
cat > "$pkg/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent group tss >/dev/null || addgroup --system tss >/dev/null
  getent passwd vigil >/dev/null || adduser --system --group --home /var/lib/vigil --no-create-home vigil >/dev/null
  getent passwd vigil-attester >/dev/null || adduser --system --group --home /var/lib/vigil-attester --no-create-home vigil-attester >/dev/null
  adduser vigil-attester tss >/dev/null 2>&1 || true
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
  fi
fi
exit 0
POSTINST
cat > "$pkg/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
POSTRM
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/postrm"

deb="$out/vigil_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${VIGIL_DEB_COMPRESSION:-xz}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
