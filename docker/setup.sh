#!/usr/bin/env bash
# What a fresh Debian 12 machine lacks to run mailwarden from this clone: the system packages,
# a virtual environment (.venv in the clone) and the project installed into it.  Each step
# looks first and does nothing when its part is there already, so running it again is quick.
#
#   docker/setup.sh [demo|tests]      set up for the demo (default) or for the tests
#
# docker/demo and tests/run source this file and call `setup demo` / `setup tests`.
set -euo pipefail

MW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MW_VENV="$MW_ROOT/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1

# dovecot-*, postfix: the throwaway company mailbox the demo and the tests start on loopback;
# swaks: the SMTP client the demo suggests and the tests drive; python3-venv: the virtualenv.
MW_DEMO_PACKAGES=(python3-venv ca-certificates dovecot-imapd dovecot-lmtpd postfix swaks)
# chromium (+ a CJK font): renders a signed HTML reply; isync (mbsync), neomutt, curl: real
# clients the tests read the gateway with; systemd: systemd-analyze checks the shipped unit.
MW_TEST_PACKAGES=("${MW_DEMO_PACKAGES[@]}" chromium fonts-wqy-microhei isync neomutt curl systemd)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# need_packages PKG...: apt-get install the ones not installed yet (nothing at all if none).
need_packages() {
    local missing=() pkg
    command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query): install these yourself: $*"
    for pkg in "$@"; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing system packages (${missing[*]}): run this as root or install them"
        sudo=(sudo)
    fi
    say "system packages: ${missing[*]}"
    if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
        # Postfix asks how to configure itself; the tests and the demo write their own config.
        echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
    fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
}

# need_venv EXTRAS: .venv in the clone with the project installed editable (with EXTRAS);
# pip runs again only when pyproject.toml or the extras changed since the last install.
need_venv() {
    local extras="$1" stamp="$MW_VENV/.mailwarden-installed" hash had=""
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed ($(python3 --version))"
    if [ ! -x "$MW_VENV/bin/python" ]; then
        say "virtual environment: $MW_VENV"
        python3 -m venv "$MW_VENV"
    fi
    hash="$(sha256sum "$MW_ROOT/pyproject.toml" | cut -d' ' -f1)"
    [ -f "$stamp" ] && read -r had <"$stamp"
    # The stamp: pyproject.toml's hash and the extras installed with it (an install with the
    # test extras serves the demo too).
    if [ "${had%% *}" != "$hash" ] || { [ -n "$extras" ] && [ "$had" != "$hash $extras" ]; } \
            || ! "$MW_VENV/bin/python" -c 'import mailwarden.cli' 2>/dev/null; then
        say "installing mailwarden into $MW_VENV (editable, extras: ${extras:-none})"
        "$MW_VENV/bin/python" -m pip install -q -e "$MW_ROOT${extras:+[$extras]}"
        echo "$hash $extras" >"$stamp"
    fi
}

# setup demo|tests
setup() {
    case "${1:-demo}" in
        demo) need_packages "${MW_DEMO_PACKAGES[@]}"; need_venv "" ;;
        tests) need_packages "${MW_TEST_PACKAGES[@]}"; need_venv test ;;
        *) die "setup: say demo or tests, not '$1'" ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    setup "${1:-demo}"
    say "ready: $MW_VENV/bin/mailwarden"
fi
