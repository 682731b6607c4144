#!/usr/bin/env bash
# The rig's `kubectl` for runbooks/cdc-one-time-sync.toml (var `kubectl`): the runbook's own
# commands, acting on the rig's services, which tests/it/seed_cdc_sync.rs runs.
#
#   set env deployment/D K=V...        rows of rig.deploy_env on modern, and a new generation of D
#   patch configmap C --type merge -p '{"data":{...}}'
#                                      rows of rig.configmap on modern (the feature flags)
#   rollout restart deployment/D       a new generation of D
#   rollout status deployment/D        waits until D's pods (the test's service) have read the
#                                      newest generation (rig.rollout_seen), which they write
#                                      before they act on the new settings
#   rollout undo deployment/D          D's env back to before the last `set env` (rollback only)
#   create job J --from=cronjob/token-status-sync
#                                      runs the token status backfill for real (below)
#   wait --for=condition=complete job/J, logs job/J, delete job J
#                                      on the job's log file in $RIG_JOBS_DIR
#
# Environment: LEGACY_NWS_DATABASE_URL and MODERN_DATABASE_URL (as the runbook's steps),
# RIG_JOBS_DIR (where job logs go).
set -euo pipefail

while [ $# -gt 0 ]; do
    case $1 in
    --context | -n) shift 2 ;;
    *) break ;;
    esac
done

# the "already exists" notices of the idempotent set-up say nothing
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
modern() { psql "$MODERN_DATABASE_URL" -X -v ON_ERROR_STOP=1 -q -t -A "$@"; }
legacy() { psql "$LEGACY_NWS_DATABASE_URL" -X -v ON_ERROR_STOP=1 -q -t -A "$@"; }
jobs_dir=${RIG_JOBS_DIR:?RIG_JOBS_DIR is not set}
mkdir -p "$jobs_dir"

tables() {
    modern -c "create schema if not exists rig" \
        -c "create table if not exists rig.deploy_env (deployment text, name text, value text not null, previous text, primary key (deployment, name))" \
        -c "create table if not exists rig.configmap (name text, key text, value text not null, primary key (name, key))" \
        -c "create table if not exists rig.rollout (deployment text primary key, generation bigint not null)" \
        -c "create table if not exists rig.rollout_seen (deployment text primary key, generation bigint not null)"
}

bump() {
    modern -c "insert into rig.rollout values ('$1', $(date +%s%N)) on conflict (deployment) do update set generation = excluded.generation"
}

# The token status backfill (cronjob token-status-sync): every token of legacy's token vault after
# the job's checkpoint, in batches of the ACL's ACL_SYNC_BATCH_SIZE, upserted into modern's
# token_status (a newer status written meanwhile by the live sync wins), the checkpoint moved in
# the same transaction, then the tokens' provisioning rows on legacy marked synced (a re-run
# continues after the checkpoint).
backfill() {
    local batch last upto n total=0 f="$jobs_dir/batch.tsv"
    batch=$(modern -c "select coalesce(max(value), '100') from rig.deploy_env where name = 'ACL_SYNC_BATCH_SIZE'")
    modern -c "create table if not exists public.sync_checkpoint (job text primary key, last_token_id varchar(64) not null, at timestamptz not null default now())"
    echo "token-status-sync: batches of $batch"
    while :; do
        last=$(modern -c "select coalesce(max(last_token_id), '') from public.sync_checkpoint where job = 'token-status-sync'")
        legacy -c "\\copy (select token_id, status, last_updated from nws.token_vault where token_id > '$last' order by token_id limit $batch) to '$f'"
        n=$(wc -l <"$f")
        [ "$n" -gt 0 ] || break
        upto=$(tail -n 1 "$f" | cut -f 1)
        modern --single-transaction \
            -c "create temp table b (token_id varchar(64), status varchar(20), last_updated timestamp) on commit drop" \
            -c "\\copy b from '$f'" \
            -c "insert into public.token_status (token_id, status, last_updated, sync_status) select token_id, status, last_updated, 'COMPLETED' from b on conflict (token_id) do update set status = excluded.status, last_updated = excluded.last_updated, sync_status = excluded.sync_status where token_status.last_updated <= excluded.last_updated" \
            -c "insert into public.sync_checkpoint (job, last_token_id) values ('token-status-sync', '$upto') on conflict (job) do update set last_token_id = excluded.last_token_id, at = now()"
        legacy -c "update nws.provision_status set sync_status = 'COMPLETED', last_sync_timestamp = now() where token_id > '$last' and token_id <= '$upto' and sync_status is distinct from 'COMPLETED'"
        total=$((total + n))
        echo "synced $n tokens up to $upto"
    done
    # a run that failed between a batch's commit on modern and its marking on legacy left
    # rows behind the checkpoint unmarked: the re-run marks them
    last=$(modern -c "select coalesce(max(last_token_id), '') from public.sync_checkpoint where job = 'token-status-sync'")
    legacy -c "update nws.provision_status set sync_status = 'COMPLETED', last_sync_timestamp = now() where token_id <= '$last' and sync_status is distinct from 'COMPLETED'"
    echo "token-status-sync: $total tokens synced"
}

case "${1:-} ${2:-}" in
"set env")
    d=${3#deployment/}
    shift 3
    tables
    for kv in "$@"; do
        modern -c "insert into rig.deploy_env as e (deployment, name, value) values ('$d', '${kv%%=*}', '${kv#*=}') on conflict (deployment, name) do update set previous = e.value, value = excluded.value"
    done
    bump "$d"
    echo "deployment.apps/$d env updated"
    ;;
"patch configmap")
    c=$3
    shift 3
    patch=""
    while [ $# -gt 0 ]; do
        case $1 in
        -p) patch=$2; shift 2 ;;
        *) shift ;;
        esac
    done
    tables
    echo "insert into rig.configmap (name, key, value) select :'c', key, value from jsonb_each_text((:'p')::jsonb -> 'data') on conflict (name, key) do update set value = excluded.value" |
        modern -v c="$c" -v p="$patch"
    echo "configmap/$c patched"
    ;;
"rollout restart")
    d=${3#deployment/}
    tables
    bump "$d"
    echo "deployment.apps/$d restarted"
    ;;
"rollout undo")
    d=${3#deployment/}
    tables
    modern -c "update rig.deploy_env set value = previous, previous = null where deployment = '$d' and previous is not null"
    bump "$d"
    echo "deployment.apps/$d rolled back"
    ;;
"rollout status")
    d=${3#deployment/}
    tables
    for _ in $(seq 1 300); do
        if [ "$(modern -c "select coalesce((select generation from rig.rollout where deployment = '$d'), 0) <= coalesce((select generation from rig.rollout_seen where deployment = '$d'), 0)")" = t ]; then
            echo "deployment \"$d\" successfully rolled out"
            exit 0
        fi
        sleep 0.1
    done
    echo "$d did not pick up its new generation in 30s" >&2
    exit 1
    ;;
"create job")
    name=$3
    if backfill >"$jobs_dir/$name.log" 2>&1; then touch "$jobs_dir/$name.complete"; else touch "$jobs_dir/$name.failed"; fi
    echo "job.batch/$name created"
    ;;
"delete job")
    rm -f "$jobs_dir/$3.log" "$jobs_dir/$3.complete" "$jobs_dir/$3.failed"
    ;;
"wait --for=condition=complete")
    name=${3#job/}
    [ -e "$jobs_dir/$name.complete" ] || { cat "$jobs_dir/$name.log" >&2; exit 1; }
    echo "job.batch/$name condition met"
    ;;
"logs job/"*)
    tail -n 20 "$jobs_dir/${2#job/}.log"
    ;;
*)
    echo "rig kubectl: unsupported: $*" >&2
    exit 2
    ;;
esac
