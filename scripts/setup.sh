#!/usr/bin/env bash
# Installs what the engine and its tests need on a fresh Debian/Ubuntu machine, idempotently:
# system packages (only the missing ones), npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server: the embedded default store. python3-hl7: mllp_send, the external HL7 client the tests use.
# openssl: test certificates for MLLP over TLS. libxml2-utils: xmllint, to validate CDA against the ANS XSD.
# postfix, dovecot-imapd, dovecot-lmtpd: the MSSanté-like mail system of the tests (SMTP with real DSN, IMAP),
# configured and started by test/helpers/mail.ts, never as a system service.
PACKAGES=(redis-server python3-hl7 openssl libxml2-utils postfix dovecot-imapd dovecot-lmtpd)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  # Postfix's package asks what kind of mail server this is: answer "No configuration" beforehand so apt never
  # prompts (the tests write their own configuration with postconf).
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

node -e 'const [M]=process.versions.node.split(".").map(Number); if (M<20) { console.error("Node.js >= 20 is required, found "+process.versions.node); process.exit(1) }'

# npm install, not npm ci: the lock file lacks the other platforms' optional builds of
# msgpackr-extract (a BullMQ dependency) that the registry mirror does not carry, and npm ci refuses
# such a lock. npm install still follows the lock for every version it names.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund
fi
npm run --silent build
