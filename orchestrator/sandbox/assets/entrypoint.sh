#!/bin/sh
# Sandbox entrypoint: sshd as the candidate (non-root, no capabilities, read-only root), with the
# image's locked-down config. The host key is generated once into the home volume, so it survives
# restarts and the candidate's known_hosts stays valid.
set -eu
umask 077
mkdir -p "$HOME/.sshd" "$HOME/.trial"
[ -f "$HOME/.sshd/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "trial-sandbox" -f "$HOME/.sshd/host_ed25519"
exec /usr/sbin/sshd -D -e -f /opt/trial/sshd_config -h "$HOME/.sshd/host_ed25519"
