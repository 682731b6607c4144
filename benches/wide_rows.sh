#!/usr/bin/env bash
# Wide-row benchmark: ferry's peak memory and time copying rows of 16 MB values, against the
# psql pipe on the same data in the same run.
#
# Run it through the rig (it needs the primary and the target cluster):
#   scripts/test --rig-only benches/wide_rows.sh
#
# It seeds BENCH_ROWS (default 48) rows, each with a 16 MB bytea and a 16 MB text value
# (BENCH_MB changes the size), on the primary, then BENCH_ROUNDS times (default 3), in
# alternating order, copies them into a fresh target database with the psql pipe and with
# `ferry run` (one copy step, parallel = 2, in the default format: binary here, as both
# clusters run the same major version). Each target is checked against the source (count and
# md5 of every value) before its time counts. ferry's peak RSS comes from /usr/bin/time -v.
#
# Environment: BENCH_ROWS (default 48), BENCH_MB (default 16), BENCH_ROUNDS (default 3),
# FERRY_BIN.
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${FERRY_TEST_PG_PRIMARY:?run this through: scripts/test --rig-only benches/wide_rows.sh}"
: "${FERRY_TEST_PG_TARGET:?run this through: scripts/test --rig-only benches/wide_rows.sh}"
PGBIN=${FERRY_TEST_PG_BIN:?}
NROWS=${BENCH_ROWS:-48}
MB=${BENCH_MB:-16}
ROUNDS=${BENCH_ROUNDS:-3}
WORK=$(mktemp -d "${FERRY_TEST_RIG_DIR:-/tmp}/wide-bench.XXXXXX")
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

SRC_DB=bench_wide_$$
SRC=$(url_db "$FERRY_TEST_PG_PRIMARY" "$SRC_DB")
TARGETS=()
cleanup() {
    drop_targets
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "drop database if exists $SRC_DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ferry_release

say "seeding $NROWS rows of 2 x $MB MB on the primary"
psql_at "$FERRY_TEST_PG_PRIMARY" -c "create database $SRC_DB"
psql_at "$SRC" <<SQL
create table wide (id int primary key, b bytea not null, t text not null);
-- every value distinct (its row's number at the front), so no two rows hash alike
insert into wide select i, convert_to(lpad(i::text, 8, '0') || repeat('ferry wide row ', $MB * 1048576 / 15), 'UTF8'),
  lpad(i::text, 8, '0') || repeat('déjà vu ', $MB * 1048576 / 9) from generate_series(1, $NROWS) i;
SQL
SIZE=$(psql_at "$SRC" -At -c "select pg_size_pretty(sum(length(b)::bigint + octet_length(t))) from wide")
say "source: $NROWS rows, $SIZE of values"
echo "create table wide (id int primary key, b bytea not null, t text not null);" >"$WORK/schema.sql"
fp() { psql_at "$1" -At -c "select count(*) || ' ' || md5(string_agg(id || ':' || md5(b) || md5(t), ',' order by id)) from wide"; }
fp "$SRC" >"$WORK/source.fp"

cat >"$WORK/copy.toml" <<EOF
[runbook]
name = "wide-rows"
title = "wide-row benchmark"
format = 1

[connections.src]
url = "\${env:SRC}"
[connections.dst]
url = "\${env:DST}"

[[phase]]
id = "p"

  [[phase.step]]
  id = "copy"
  kind = "copy"
  from = "src"
  to = "dst"
  tables = ["public.wide"]
  chunk_rows = 8
  parallel = 2
  confirm = "none"
EOF

check() {
    fp "$2" >"$WORK/$1.fp"
    diff "$WORK/source.fp" "$WORK/$1.fp" >&2 || { say "$1: the target differs from the source"; exit 1; }
    drop_targets
    psql_at "$FERRY_TEST_PG_TARGET" -c checkpoint
}
run_pipe_whole() {
    new_target "whole$N" "$WORK/schema.sql"
    cat >"$WORK/pipe.sh" <<EOF
set -euo pipefail
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$SRC" -c "copy public.wide to stdout" |
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$T" -c "copy public.wide from stdin"
EOF
    measure psql_pipe bash "$WORK/pipe.sh"
    check psql_pipe "$T"
}
run_ferry() {
    new_target "ferry$N" "$WORK/schema.sql"
    measure ferry env SRC="$SRC" DST="$T" "$FERRY_BIN" run "$WORK/copy.toml" --headless --yes \
        --journal "$WORK/ferry-$N.jsonl"
    check ferry "$T"
}

for ((N = 0; N < ROUNDS; N++)); do
    say "round $((N + 1)) of $ROUNDS"
    if ((N % 2)); then run_ferry; run_pipe_whole; else run_pipe_whole; run_ferry; fi
done

F=$(median "${SECS[ferry]}")
P=$(median "${SECS[psql_pipe]}")
printf '\n%s rows of 2 × %s MB (%s) · %s cores · PostgreSQL %s · median of %s rounds\n\n' "$NROWS" "$MB" "$SIZE" \
    "$(nproc)" "$("$PGBIN/postgres" --version | awk '{print $3}')" "$ROUNDS"
printf '| tool | median s | runs (s) | ratio to psql pipe | peak RSS |\n|---|---:|---|---:|---:|\n'
printf '| psql pipe (COPY TO STDOUT \\| COPY FROM STDIN) | %s | %s | 1.00 | |\n' "$P" "${SECS[psql_pipe]# }"
printf '| ferry copy, parallel = 2 | %s | %s | %s | %s MB |\n' "$F" "${SECS[ferry]# }" "$(ratio "$F" "$P")" "${RSS[ferry]}"
