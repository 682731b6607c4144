#!/usr/bin/env bash
# Logical replication benchmark: how long ferry's `replicate` start takes until every table is
# ready, against ferry's own copy of the same data in the same run; and how long the caught-up
# proof takes after the freeze under a steady write load.
#
# Run it through the rig (it needs the primary, wal_level = logical, and the target cluster):
#   scripts/test --rig-only benches/replicate.sh
#
# It seeds the copy benchmark's dataset (benches/lib.sh: 2.42M rows, 245 MB, five tables with
# foreign keys; BENCH_SCALE=2 doubles it) on the primary. Each round, in alternating order:
#   - copy:      `ferry run` of a runbook with one copy step (parallel = 2), as benches/copy.sh;
#   - replicate: `ferry run` of start (publication, slot, subscription; the step ends when every
#                table is ready) -> a shell step that waits for the freeze -> the caught-up
#                proof -> stop (sequences, then subscription, slot and publication dropped).
#                pgbench writes on the source at BENCH_RATE transactions per second (an update,
#                an insert and a delete each) from before the start until the freeze, which
#                comes BENCH_STEADY seconds after the initial sync ended.
# Every target is checked against the source (row count and md5 of the sorted rows of each
# table) before its time counts. The replicate round's times come from its journal (the start
# step and the caught-up step, started to finished); process wall time and peak RSS from
# /usr/bin/time -v.
#
# Environment: BENCH_SCALE (default 1), BENCH_ROUNDS (default 3), BENCH_RATE (default 200),
# BENCH_STEADY (default 10), FERRY_BIN (skip the build and use this binary).
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${FERRY_TEST_PG_PRIMARY:?run this through: scripts/test --rig-only benches/replicate.sh}"
: "${FERRY_TEST_PG_TARGET:?run this through: scripts/test --rig-only benches/replicate.sh}"
PGBIN=${FERRY_TEST_PG_BIN:?}
SCALE=${BENCH_SCALE:-1}
ROUNDS=${BENCH_ROUNDS:-3}
RATE=${BENCH_RATE:-200}
STEADY=${BENCH_STEADY:-10}
WORK=$(mktemp -d "${FERRY_TEST_RIG_DIR:-/tmp}/replicate-bench.XXXXXX")
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
TABLES=("${PG_DATASET_TABLES[@]}")

SRC_DB=bench_src_$$
SRC=$(url_db "$FERRY_TEST_PG_PRIMARY" "$SRC_DB")
SLOT_PREFIX=ferry_bench_$$
TARGETS=()
WRITER=""
cleanup() {
    [ -z "$WRITER" ] || kill "$WRITER" 2>/dev/null || true
    local db
    for db in "${TARGETS[@]}"; do # a failed round may leave its subscription: drop it first
        psql_at "$(url_db "$FERRY_TEST_PG_TARGET" "$db")" -At -c "select subname from pg_subscription" 2>/dev/null |
            while read -r sub; do
                psql_at "$(url_db "$FERRY_TEST_PG_TARGET" "$db")" -c "alter subscription $sub disable" \
                    -c "alter subscription $sub set (slot_name = none)" -c "drop subscription $sub" >/dev/null 2>&1 || true
            done
    done
    drop_targets
    psql_at "$FERRY_TEST_PG_PRIMARY" -At -c "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name like '${SLOT_PREFIX}%' and not active" >/dev/null 2>&1 || true
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "drop database if exists $SRC_DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ferry_release

say "seeding $SRC_DB on the primary (scale $SCALE)"
psql_at "$FERRY_TEST_PG_PRIMARY" -c "create database $SRC_DB"
seed_pg_dataset "$SRC" "$SCALE"
psql_at "$SRC" -c "create sequence bench_event_id start 1000000000"
ROWS=$(psql_at "$SRC" -At -c "select (select count(*) from customers) + (select count(*) from products) + (select count(*) from orders) + (select count(*) from order_items) + (select count(*) from events)")
SIZE=$(psql_at "$SRC" -At -c "select pg_size_pretty(pg_database_size(current_database()))")
say "source: $ROWS rows, $SIZE"
"$PGBIN/pg_dump" --schema-only --no-owner -d "$SRC" >"$WORK/schema.sql"

# one transaction of the steady load: an update, an insert and a delete
cat >"$WORK/writer.sql" <<EOF
\\set o random(1, $((600000 * SCALE)))
\\set e random(1, $((400000 * SCALE)))
begin;
update orders set total = total + 1, note = 'bench' where id = :o;
insert into events (id, customer_id, kind, payload, at) values (nextval('bench_event_id'), 1 + :o % $((200000 * SCALE)), 'bench', '{"w": 1}', now());
delete from events where id = :e;
commit;
EOF

# check NAME URL: the target equals the source now (the writer is stopped); then it is dropped
# and both clusters checkpoint.
check() {
    pg_fingerprint "$SRC" "${TABLES[@]}" >"$WORK/source.fp"
    pg_fingerprint "$2" "${TABLES[@]}" >"$WORK/$1.fp"
    if ! diff -q "$WORK/source.fp" "$WORK/$1.fp" >/dev/null; then
        diff "$WORK/source.fp" "$WORK/$1.fp" >&2 || true
        say "$1: the target differs from the source"
        exit 1
    fi
    local a b
    a=$(psql_at "$SRC" -At -c "select last_value from bench_event_id")
    b=$(psql_at "$2" -At -c "select last_value from bench_event_id")
    [ "$1" = copy ] || [ "$a" = "$b" ] || { say "$1: sequence bench_event_id is $b on the target, $a on the source"; exit 1; }
    drop_targets
    psql_at "$FERRY_TEST_PG_TARGET" -c checkpoint
    psql_at "$FERRY_TEST_PG_PRIMARY" -c checkpoint
}

header() {
    cat <<EOF
[runbook]
name = "$1"
title = "replication benchmark"
format = 1

[connections.src]
url = "\${env:SRC}"
[connections.dst]
url = "\${env:DST}"

[[phase]]
id = "p"
EOF
}

{
    header copy-bench
    cat <<EOF

  [[phase.step]]
  id = "copy"
  kind = "copy"
  from = "src"
  to = "dst"
  tables = ["public.*"]
  parallel = 2
  confirm = "none"
EOF
} >"$WORK/copy.toml"

run_copy() {
    new_target "copy$N" "$WORK/schema.sql"
    measure copy env SRC="$SRC" DST="$T" "$FERRY_BIN" run "$WORK/copy.toml" --headless --yes \
        --journal "$WORK/copy-$N.jsonl"
    check copy "$T"
}

# step_secs JOURNAL STEP: seconds from the step's first start to its last finish.
step_secs() {
    python3 - "$1" "$2" <<'PY'
import json, sys
from datetime import datetime
start = end = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    e = r.get("entry", {})
    if e.get("kind") != "event" or e.get("step") != sys.argv[2]:
        continue
    ts = datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
    if e.get("type") == "started" and start is None:
        start = ts
    if e.get("type") == "finished":
        if (e.get("outcome") or {}).get("outcome") != "succeeded":
            sys.exit(f"step {sys.argv[2]} finished with {e.get('outcome')}")
        end = ts
if start is None or end is None:
    sys.exit(f"step {sys.argv[2]} has no start and finish in the journal")
print(f"{(end - start).total_seconds():.3f}")
PY
}

run_replicate() {
    new_target "repl$N" "$WORK/schema.sql"
    local slot=${SLOT_PREFIX}_$N j=$WORK/replicate-$N.jsonl s
    rm -f "$WORK/freeze" "$WORK/frozen"
    {
        header replicate-bench
        cat <<EOF

  [[phase.step]]
  id = "start"
  kind = "replicate"
  action = "start"
  from = "src"
  to = "dst"
  tables = ["public.*"]
  name = "$slot"
  timeout = "30m"

  [[phase.step]]
  id = "freeze"
  kind = "shell"
  run = "touch '$WORK/freeze'; while [ ! -f '$WORK/frozen' ]; do sleep 0.05; done"
  timeout = "30m"

  [[phase.step]]
  id = "caught-up"
  kind = "wait"
  until = { caught_up = { primary = "src", slot = "$slot" } }
  every = "100ms"
  timeout = "10m"

  [[phase.step]]
  id = "stop"
  kind = "replicate"
  action = "stop"
  from = "src"
  to = "dst"
  tables = ["public.*"]
  name = "$slot"
  timeout = "10m"
EOF
    } >"$WORK/replicate.toml"
    "$PGBIN/pgbench" -n -c 1 -R "$RATE" -T 3600 -f "$WORK/writer.sql" "$SRC" >"$WORK/pgbench-$N.out" 2>&1 &
    WRITER=$!
    sleep 1
    kill -0 "$WRITER" 2>/dev/null || { cat "$WORK/pgbench-$N.out" >&2; say "the writer (pgbench) did not start"; exit 1; }
    say "running: replicate (writer at $RATE tx/s)"
    /usr/bin/time -v -o "$WORK/replicate.time" env SRC="$SRC" DST="$T" "$FERRY_BIN" run "$WORK/replicate.toml" \
        --headless --yes --journal "$j" >"$WORK/replicate.out" 2>&1 &
    local ferry=$! waited=0
    while [ ! -f "$WORK/freeze" ]; do
        kill -0 "$ferry" 2>/dev/null || { tail -n 30 "$WORK/replicate.out" >&2; say "replicate FAILED"; exit 1; }
        sleep 0.1
    done
    sleep "$STEADY"
    kill -TERM "$WRITER" 2>/dev/null || { cat "$WORK/pgbench-$N.out" >&2; say "the writer (pgbench) stopped before the freeze"; exit 1; }
    wait "$WRITER" || true
    WRITER=""
    touch "$WORK/frozen"
    wait "$ferry" || { tail -n 30 "$WORK/replicate.out" >&2; say "replicate FAILED"; exit 1; }
    s=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$WORK/replicate.time")
    RSS[replicate]=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/replicate.time")
    SECS[sync]="${SECS[sync]:-} $(step_secs "$j" start)"
    SECS[caught_up]="${SECS[caught_up]:-} $(step_secs "$j" caught-up)"
    SECS[stop]="${SECS[stop]:-} $(step_secs "$j" stop)"
    say "replicate: initial sync $(step_secs "$j" start)s, caught up $(step_secs "$j" caught-up)s after the freeze, process ${s}s, peak RSS ${RSS[replicate]} MB"
    grep -h 'transactions actually processed\|tps = ' "$WORK/pgbench-$N.out" >&2 || true
    check replicate "$T"
    left=$(psql_at "$FERRY_TEST_PG_PRIMARY" -At -c "select count(*) from pg_replication_slots where slot_name = '$slot'")
    [ "$left" = 0 ] || { say "the stop left slot $slot behind"; exit 1; }
}

for ((N = 0; N < ROUNDS; N++)); do
    say "round $((N + 1)) of $ROUNDS"
    if ((N % 2)); then run_replicate; run_copy; else run_copy; run_replicate; fi
done

C=$(median "${SECS[copy]}")
S=$(median "${SECS[sync]}")
printf '\n%s rows (%s) · %s cores · PostgreSQL %s · writer %s tx/s · median of %s rounds\n\n' \
    "$ROWS" "$SIZE" "$(nproc)" "$("$PGBIN/postgres" --version | awk '{print $3}')" "$RATE" "$ROUNDS"
printf '| measure | median s | runs (s) | ratio to ferry copy | peak RSS |\n|---|---:|---|---:|---:|\n'
printf '| ferry copy (process start to exit) | %s | %s | 1.00 | %s MB |\n' "$C" "${SECS[copy]# }" "${RSS[copy]}"
printf '| replicate start until every table ready | %s | %s | %s | %s MB |\n' "$S" "${SECS[sync]# }" "$(ratio "$S" "$C")" "${RSS[replicate]}"
printf '| caught-up proof after the freeze | %s | %s | | |\n' "$(median "${SECS[caught_up]}")" "${SECS[caught_up]# }"
printf '| stop (sequences, drop subscription, slot, publication) | %s | %s | | |\n' "$(median "${SECS[stop]}")" "${SECS[stop]# }"
