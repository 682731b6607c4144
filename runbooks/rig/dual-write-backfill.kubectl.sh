#!/usr/bin/env bash
# The rig's `kubectl` for runbooks/dual-write-backfill.toml (var `kubectl`): the same commands,
# acting on the rig's users-api, which is the app writer of tests/it/seed_dual_write.rs.
#
#   set env deployment/D K=V...      a row per flag in rig.app_flags on new (the feature flag is a
#                                    row in a table), stamped with a new generation
#   rollout status deployment/D      waits until the app has read that generation
#                                    (rig.app_seen, written by the app before it acts on the flags)
#   create job J --from=cronjob/users-reconcile
#                                    runs the reconciler: every row of old changed since the
#                                    watermark's time, upserted into new (what the real job does)
#   wait --for=condition=complete job/J, logs job/J, delete job J
#                                    on the job's log file
#
# Environment: NEW_DATABASE_URL, OLD_DB_PASSWORD (as the runbook's steps), FERRY_TEST_MYSQL_PORT,
# USERS_DB and USERS_OPS_DB (the reconciler's config: old's database and the watermarks'),
# RIG_JOBS_DIR (where job logs go).
set -euo pipefail

while [ $# -gt 0 ]; do
    case $1 in
    --context | -n) shift 2 ;;
    *) break ;;
    esac
done

newsql() { psql "$NEW_DATABASE_URL" -X -v ON_ERROR_STOP=1 -q -t -A "$@"; }
jobs_dir=${RIG_JOBS_DIR:?RIG_JOBS_DIR is not set}

flags_table() {
    newsql -c "create schema if not exists rig" \
        -c "create table if not exists rig.app_flags (name text primary key, value text not null, generation bigint not null)" \
        -c "create table if not exists rig.app_seen (id int primary key, generation bigint not null)"
}

reconcile() {
    export MYSQL_PWD="$OLD_DB_PASSWORD"
    my() { mysql -h 127.0.0.1 -P "$FERRY_TEST_MYSQL_PORT" -u ferry -N -B --init-command="set time_zone = '+00:00'" "$@"; }
    local since t cols set n
    since=$(my -e "select date_format(at, '%Y-%m-%d %H:%i:%s.%f') from $USERS_OPS_DB.migration_state where k = 'watermark:users'")
    [ -n "$since" ] || { echo "no watermark on old" >&2; return 1; }
    echo "reconciling rows changed since $since"
    for t in users user_profiles user_settings; do
        case $t in
        users) cols="id, email, name, active, created_at, updated_at" ;;
        user_profiles) cols="id, user_id, bio, updated_at" ;;
        user_settings) cols="id, user_id, name, value, updated_at" ;;
        esac
        set=$(printf '%s\n' "$cols" | tr ',' '\n' | sed 's/ //g' | grep -v '^id$' | sed 's/.*/& = excluded.&/' | paste -sd, -)
        my -e "select $cols from $USERS_DB.$t where updated_at >= '$since'" >"$jobs_dir/$t.tsv"
        n=$(wc -l <"$jobs_dir/$t.tsv")
        newsql --single-transaction \
            -c "create temp table r (like public.$t) on commit drop" \
            -c "\\copy r ($cols) from '$jobs_dir/$t.tsv' with (null 'NULL')" \
            -c "insert into public.$t ($cols) select $cols from r on conflict (id) do update set $set"
        echo "$t: $n rows re-synced"
    done
}

case "${1:-} ${2:-}" in
"set env")
    shift 3
    flags_table
    gen=$(date +%s%N)
    for kv in "$@"; do
        newsql -c "insert into rig.app_flags values ('${kv%%=*}', '${kv#*=}', $gen) on conflict (name) do update set value = excluded.value, generation = excluded.generation"
    done
    echo "deployment.apps/users-api env updated: $*"
    ;;
"rollout status")
    flags_table
    for _ in $(seq 1 300); do
        if [ "$(newsql -c "select (select coalesce(max(generation), 0) from rig.app_flags) <= (select coalesce(max(generation), 0) from rig.app_seen)")" = t ]; then
            echo "deployment \"users-api\" successfully rolled out"
            exit 0
        fi
        sleep 0.1
    done
    echo "users-api did not pick up its flags in 30s" >&2
    exit 1
    ;;
"create job")
    name=$3
    if reconcile >"$jobs_dir/$name.log" 2>&1; then touch "$jobs_dir/$name.complete"; else touch "$jobs_dir/$name.failed"; fi
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
