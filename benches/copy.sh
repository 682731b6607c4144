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
TABLES=(customers products orders order_items events)

say() { printf 'bench: %s\n' "$*" >&2; }
url_db() { printf '%s/%s' "${1%/*}" "$2"; }
SRC_DB=bench_src_$$
SRC=$(url_db "$FERRY_TEST_PG_PRIMARY" "$SRC_DB")
psql_at() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

TARGETS=()
cleanup() {
    for db in "${TARGETS[@]}"; do
        psql_at "$FERRY_TEST_PG_TARGET" -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    done
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "drop database if exists $SRC_DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- ferry (release) -------------------------------------------------------------------------
if [ -z "${FERRY_BIN:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}
    say "cargo build --release (a clean build takes ~15 min on a 2-core machine)"
    (cd "$ROOT" && cargo build --release --bin ferry >&2)
    FERRY_BIN=$CARGO_TARGET_DIR/release/ferry
fi
# A private copy: a concurrent build must not swap the binary under the benchmark.
cp "$FERRY_BIN" "$WORK/ferry"
FERRY_BIN=$WORK/ferry

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
psql_at "$SRC" <<SQL
create table customers (id bigint primary key, name text not null, email text not null, created timestamptz,
  balance numeric(12,2), country char(2));
create table products (id int primary key, sku text unique not null, title text, price numeric(10,2), tags text[]);
create table orders (id bigint primary key, customer_id bigint not null references customers(id), placed timestamptz,
  status text, total numeric(12,2), note text);
create table order_items (order_id bigint references orders(id), line int, product_id int references products(id),
  qty int, price numeric(10,2), primary key (order_id, line));
create table events (id bigint primary key, customer_id bigint references customers(id), kind text, payload jsonb,
  at timestamptz);
insert into customers select i, 'Customer ' || i, 'c' || i || '@example.com', timestamptz '2020-01-01' + i * interval '37 seconds',
  (i % 100000) / 100.0, (array['FR','DE','US','JP','BR'])[1 + i % 5] from generate_series(1, 200000 * $SCALE) i;
insert into products select i, 'SKU-' || lpad(i::text, 8, '0'), 'Product ' || i || ' – déjà vu', (i % 5000) / 10.0,
  array['t' || (i % 7), 't' || (i % 11)] from generate_series(1, 20000 * $SCALE) i;
insert into orders select i, 1 + (i * 7) % (200000 * $SCALE), timestamptz '2022-01-01' + i * interval '11 seconds',
  (array['new','paid','shipped','done'])[1 + i % 4], (i % 99999) / 10.0, case when i % 5 = 0 then 'gift wrap, please' end
  from generate_series(1, 600000 * $SCALE) i;
insert into order_items select 1 + i / 2, i % 2, 1 + (i * 13) % (20000 * $SCALE), 1 + i % 5, (i % 5000) / 10.0
  from generate_series(0, 1200000 * $SCALE - 1) i;
insert into events select i, 1 + i % (200000 * $SCALE), (array['login','view','cart','buy'])[1 + i % 4],
  jsonb_build_object('page', '/p/' || (i % 1000), 'ms', i % 917, 'ok', i % 3 <> 0), timestamptz '2023-01-01' + i * interval '3 seconds'
  from generate_series(1, 400000 * $SCALE) i;
vacuum analyze;
SQL
ROWS=$(psql_at "$SRC" -At -c "select (select count(*) from customers) + (select count(*) from products) + (select count(*) from orders) + (select count(*) from order_items) + (select count(*) from events)")
SIZE=$(psql_at "$SRC" -At -c "select pg_size_pretty(pg_database_size(current_database()))")
say "source: $ROWS rows, $SIZE"
"$PGBIN/pg_dump" --schema-only --no-owner -d "$SRC" >"$WORK/schema.sql"

fingerprint() { # URL -> one line per table: name count md5
    local t
    for t in "${TABLES[@]}"; do
        psql_at "$1" -At -c "select '$t ' || count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '-') from $t x"
    done
}
say "fingerprinting the source"
fingerprint "$SRC" >"$WORK/source.fp"

drop_targets() {
    for db in "${TARGETS[@]}"; do
        psql_at "$FERRY_TEST_PG_TARGET" -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    done
    TARGETS=()
}

# new_target NAME: a fresh target database with the source's schema; sets T to its URL.
new_target() {
    local db=bench_${1}_$$
    TARGETS+=("$db")
    T=$(url_db "$FERRY_TEST_PG_TARGET" "$db")
    psql_at "$FERRY_TEST_PG_TARGET" -c "create database $db" >/dev/null
    psql_at "$T" -f "$WORK/schema.sql" >/dev/null
}

declare -A SECS RSS
# measure NAME CMD...: run CMD under /usr/bin/time -v; append its seconds to SECS[NAME] and keep
# the highest peak RSS (MB).
measure() {
    local name=$1 s r
    shift
    say "running: $name"
    /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>&1 || {
        tail -n 30 "$WORK/$name.out" >&2
        say "$name FAILED"
        exit 1
    }
    s=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$WORK/$name.time")
    r=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/$name.time")
    SECS[$name]="${SECS[$name]:-} $s"
    if [ -z "${RSS[$name]:-}" ] || [ "$(echo "$r > ${RSS[$name]}" | bc)" = 1 ]; then RSS[$name]=$r; fi
    say "$name: ${s}s, peak RSS ${r} MB, load average $(cut -d' ' -f1 /proc/loadavg)"
}
median() { # "S1 S2 ..." -> the median
    local -a v
    read -ra v <<<"$1"
    printf '%s\n' "${v[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

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
    new_target "psql$N"
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
    new_target "dump$N"
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
    new_target "pgcopydb$N"
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
    new_target "ferry_$fmt$N"
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
