#!/bin/sh
# The rig's `consul` for runbooks/self-hosted-to-managed.toml: `consul kv put KEY VALUE` writes
# VALUE to the file $RIG_APP_DIR/consul/KEY, where the rehearsal's app reads its flags
# (tests/it/seed_self_hosted.rs). `consul kv get KEY` prints it. Nothing else is supported.
set -eu
[ "${1:-}" = kv ] || { echo "rig consul: only 'kv put|get' is supported" >&2; exit 2; }
: "${RIG_APP_DIR:?RIG_APP_DIR is not set}"
case "${2:-}" in
put)
    [ $# -eq 4 ] || { echo "usage: consul kv put KEY VALUE" >&2; exit 2; }
    f="$RIG_APP_DIR/consul/$3"
    mkdir -p "$(dirname "$f")"
    printf '%s\n' "$4" > "$f.tmp"
    mv "$f.tmp" "$f"
    echo "Success! Data written to: $3"
    ;;
get)
    cat "$RIG_APP_DIR/consul/$3"
    ;;
*)
    echo "rig consul: only 'kv put|get' is supported" >&2
    exit 2
    ;;
esac
