#!/usr/bin/env bash
# Copy benchmark: ferry's copy step against the usual ways of moving a PostgreSQL database's data.
#
# Run it through the rig (it needs the primary and the target cluster):
#   scripts/test --rig-only benches/copy.sh
#
# It builds ~2.4 million rows over five tables with foreign keys on the rig's primary
# (BENCH_SCALE=2 doubles that), then copies them into fresh target databases that have the
# same schema (from `pg_dump --schema-only`), with:
#   - psql pipe:       psql -c 'COPY t TO STDOUT' | psql -c 'COPY t FROM STDIN', table by table
#   - pg_dump/restore: pg_dump -Fd -j2 --data-only | pg_restore -j2 --data-only --disable-triggers
#   - pgcopydb:        pgcopydb copy table-data --table-jobs 2 (Debian's package, if it installs)
#   - ferry:           `ferry run` (release build) of a runbook with one copy step, parallel = 2,
#                      once with COPY text and once with COPY binary
# Every load runs without trigger or foreign-key checks (session_replication_role = replica,
# --disable-triggers), as ferry does. Each target is checked against the source (row count and
# md5 of the sorted rows of every table) so that only exact copies count. Wall-clock time of each
# is printed with its ratio to the psql pipe, and ferry's peak RSS (from /usr/bin/time -v).
#
# Each tool runs BENCH_ROUNDS times (default 5, the order rotating each round) and its median is
# reported: the machine is shared, so single runs are noisy.
#
# Environment: BENCH_SCALE (default 1), BENCH_ROUNDS (default 5), BENCH_PARALLEL (default 2),
# BENCH_CHUNK_ROWS (default 50000), FERRY_BIN (skip the build and use this binary).
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${FERRY_TEST_PG_PRIMARY:?run this through: scripts/test --rig-only benches/copy.sh}"
: "${FERRY_TEST_PG_TARGET:?run this through: scripts/test --rig-only benches/copy.sh}"
PGBIN=${FERRY_TEST_PG_BIN:?}
SCALE=${BENCH_SCALE:-1}
PAR=${BENCH_PARALLEL:-2}
ROUNDS=${BENCH_ROUNDS:-5}
CHUNK=${BENCH_CHUNK_ROWS:-50000}
WORK=$(mktemp -d "${FERRY_TEST_RIG_DIR:-/tmp}/copy-bench.XXXXXX")
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
TABLES=("${PG_DATASET_TABLES[@]}")

SRC_DB=bench_src_$$
SRC=$(url_db "$FERRY_TEST_PG_PRIMARY" "$SRC_DB")

TARGETS=()
cleanup() {
    drop_targets
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "drop database if exists $SRC_DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ferry_release

# ---- pgcopydb (optional) ---------------------------------------------------------------------
PGCOPYDB=""
if command -v pgcopydb >/dev/null 2>&1; then
    PGCOPYDB=$(command -v pgcopydb)
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing pgcopydb (apt-get install -y pgcopydb)"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgcopydb >"$WORK/apt.log" 2>&1; then
        PGCOPYDB=$(command -v pgcopydb || true)
    fi
fi
[ -n "$PGCOPYDB" ] || say "pgcopydb is not available (apt-get install -y pgcopydb failed or not root): skipped"

# ---- the source --------------------------------------------------------------------------------
say "seeding $SRC_DB on the primary (scale $SCALE)"
psql_at "$FERRY_TEST_PG_PRIMARY" -c "create database $SRC_DB"
seed_pg_dataset "$SRC" "$SCALE"
ROWS=$(psql_at "$SRC" -At -c "select (select count(*) from customers) + (select count(*) from products) + (select count(*) from orders) + (select count(*) from order_items) + (select count(*) from events)")
SIZE=$(psql_at "$SRC" -At -c "select pg_size_pretty(pg_database_size(current_database()))")
say "source: $ROWS rows, $SIZE"
"$PGBIN/pg_dump" --schema-only --no-owner -d "$SRC" >"$WORK/schema.sql"

fingerprint() { pg_fingerprint "$1" "${TABLES[@]}"; }
say "fingerprinting the source"
fingerprint "$SRC" >"$WORK/source.fp"

# check NAME URL: the target must equal the source; then it is dropped at once and both
# clusters checkpoint, so that neither autovacuum on it nor dirty buffers slow the next run.
check() {
    fingerprint "$2" >"$WORK/$1.fp"
    if ! diff -q "$WORK/source.fp" "$WORK/$1.fp" >/dev/null; then
        diff "$WORK/source.fp" "$WORK/$1.fp" >&2 || true
        say "$1: the target differs from the source"
        exit 1
    fi
    drop_targets
    psql_at "$FERRY_TEST_PG_TARGET" -c checkpoint
    psql_at "$FERRY_TEST_PG_PRIMARY" -c checkpoint
}

# ---- psql pipe ---------------------------------------------------------------------------------
N=0
run_psql_pipe() {
    new_target "psql$N" "$WORK/schema.sql"
    cat >"$WORK/psql-pipe.sh" <<EOF
set -euo pipefail
for t in ${TABLES[*]}; do
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$SRC" -c "copy public.\$t to stdout" |
        PGOPTIONS='-c session_replication_role=replica' "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$T" -c "copy public.\$t from stdin"
done
EOF
    measure psql_pipe bash "$WORK/psql-pipe.sh"
    check psql_pipe "$T"
}

# ---- pg_dump | pg_restore ----------------------------------------------------------------------
run_pg_dump_restore() {
    new_target "dump$N" "$WORK/schema.sql"
    rm -rf "$WORK/dump"
    cat >"$WORK/dump.sh" <<EOF
set -euo pipefail
"$PGBIN/pg_dump" -Fd -j2 --data-only -f "$WORK/dump" -d "$SRC"
"$PGBIN/pg_restore" -j2 --data-only --disable-triggers -d "$T" "$WORK/dump"
EOF
    measure pg_dump_restore bash "$WORK/dump.sh"
    check pg_dump_restore "$T"
}

# ---- pgcopydb ----------------------------------------------------------------------------------
run_pgcopydb() {
    [ -n "$PGCOPYDB" ] || return 0
    new_target "pgcopydb$N" "$WORK/schema.sql"
    rm -rf "$WORK/pgcopydb"
    measure pgcopydb env PGOPTIONS='-c session_replication_role=replica' "$PGCOPYDB" copy table-data \
        --source "$SRC" --target "$T" --table-jobs 2 --dir "$WORK/pgcopydb"
    check pgcopydb "$T"
}

# ---- ferry ---------------------------------------------------------------------------------------
cat >"$WORK/copy.toml" <<EOF
[runbook]
name = "copy-bench"
title = "copy benchmark"
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
  tables = ["public.*"]
  chunk_rows = $CHUNK
  parallel = $PAR
  confirm = "none"
EOF
run_ferry() { # FORMAT
    local fmt=$1
    new_target "ferry_$fmt$N" "$WORK/schema.sql"
    rm -f "$WORK/journal-$fmt.jsonl"
    measure "ferry_$fmt" env SRC="$SRC" DST="$T" FERRY_COPY_FORMAT="$fmt" "$FERRY_BIN" run "$WORK/copy.toml" \
        --headless --yes --journal "$WORK/journal-$fmt.jsonl"
    # Retries or pauses would explain a slow run.
    grep -h 'retrying\|paused\|✔ copy' "$WORK/ferry_$fmt.out" >&2 || true
    check "ferry_$fmt" "$T"
}
run_ferry_text() { run_ferry text; }
run_ferry_binary() { run_ferry binary; }

TOOLS=(psql_pipe pg_dump_restore pgcopydb ferry_text ferry_binary)
for ((N = 0; N < ROUNDS; N++)); do
    say "round $((N + 1)) of $ROUNDS"
    for ((i = 0; i < ${#TOOLS[@]}; i++)); do
        "run_${TOOLS[$(((i + N) % ${#TOOLS[@]}))]}"
    done
done

# ---- results -----------------------------------------------------------------------------------
BASE=$(median "${SECS[psql_pipe]}")
printf '\n%s rows (%s) · %s cores · PostgreSQL %s · ferry parallel = %s, chunk_rows = %s · median of %s rounds\n\n' \
    "$ROWS" "$SIZE" "$(nproc)" "$("$PGBIN/postgres" --version | awk '{print $3}')" "$PAR" "$CHUNK" "$ROUNDS"
printf '| tool | seconds (median) | all runs | ratio to psql pipe | peak RSS (MB) |\n|---|---:|---|---:|---:|\n'
for name in "${TOOLS[@]}"; do
    [ -n "${SECS[$name]:-}" ] || {
        [ "$name" = pgcopydb ] && printf '| pgcopydb | not available | | | |\n'
        continue
    }
    m=$(median "${SECS[$name]}")
    printf '| %s | %.2f | %s | %.2f | %s |\n' "$name" "$m" "${SECS[$name]# }" "$(echo "$m / $BASE" | bc -l)" "${RSS[$name]}"
done
printf '\n(peak RSS of psql pipe, pg_dump/restore and pgcopydb is that of the shell or parent process only)\n'
grep -h 'copy: succeeded\|✔ copy' "$WORK"/ferry_*.out >&2 || true
