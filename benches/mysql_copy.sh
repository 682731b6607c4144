#!/usr/bin/env bash
# MySQL -> PostgreSQL copy benchmark: ferry's copy step against Debian's pgloader, same data,
# same run.
#
# Run it through the rig (it needs the MariaDB server and the target cluster):
#   scripts/test --rig-only benches/mysql_copy.sh
#
# It seeds ~1.1 million rows over three tables in a MariaDB database (BENCH_SCALE=2 doubles
# that) -- `customers` 200k (varchar, datetime, decimal), `orders` 500k (enum, timestamp,
# decimal, nullable text), `events` 400k (JSON) -- and loads them into fresh PostgreSQL
# databases that already have the target schema (the same for both tools), with:
#   - pgloader: `LOAD DATABASE ... WITH data only, workers = 2, concurrency = 1`
#   - ferry:    `ferry run` (release build) of a runbook with one copy step, parallel = 2
# Each target is checked (row count per table, and an md5 of each table's sorted rows, which
# must be the same for both tools) before its time counts. Wall-clock time and peak RSS come
# from /usr/bin/time -v. Each tool runs BENCH_ROUNDS times (default 3), alternating; medians.
#
# Environment: BENCH_SCALE (default 1), BENCH_ROUNDS (default 3), BENCH_PARALLEL (default 2),
# BENCH_CHUNK_ROWS (default 50000), FERRY_BIN (skip the build and use this binary).
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${FERRY_TEST_MYSQL_URL:?run this through: scripts/test --rig-only benches/mysql_copy.sh}"
: "${FERRY_TEST_PG_TARGET:?run this through: scripts/test --rig-only benches/mysql_copy.sh}"
PGBIN=${FERRY_TEST_PG_BIN:?}
SCALE=${BENCH_SCALE:-1}
PAR=${BENCH_PARALLEL:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CHUNK=${BENCH_CHUNK_ROWS:-50000}
WORK=$(mktemp -d "${FERRY_TEST_RIG_DIR:-/tmp}/mysql-bench.XXXXXX")
TABLES=(customers orders events)
MY_PORT=${FERRY_TEST_MYSQL_PORT:?}
MY_PW=${FERRY_TEST_MYSQL_PASSWORD:?}
MY_USER=${FERRY_TEST_MYSQL_URL#mysql://}
MY_USER=${MY_USER%%@*}
MY_DB=bench_my_$$

# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
my() { MYSQL_PWD=$MY_PW mariadb --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u "$MY_USER" "$@"; }

TARGETS=()
cleanup() {
    drop_targets
    my -e "drop database if exists $MY_DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ferry_release
command -v pgloader >/dev/null || { say "pgloader is not installed (apt-get install pgloader)"; exit 1; }

# ---- the source --------------------------------------------------------------------------------
say "seeding $MY_DB on MariaDB (scale $SCALE)"
my -e "create database $MY_DB character set utf8mb4"
my "$MY_DB" <<SQL
create table customers (id int primary key auto_increment, name varchar(100) not null,
  email varchar(200) not null, created datetime not null, balance decimal(12,2), country char(2));
create table orders (id bigint primary key, customer_id int not null, placed timestamp null,
  status enum('new','paid','shipped','done') not null, total decimal(12,2), note varchar(100));
create table events (id bigint primary key, customer_id int, kind varchar(20), payload json,
  at datetime(6));
insert into customers select seq, concat('Customer ', seq), concat('c', seq, '@example.com'),
  '2020-01-01' + interval seq * 37 second, (seq % 100000) / 100, elt(1 + seq % 5, 'FR','DE','US','JP','BR')
  from seq_1_to_$((200000 * SCALE));
insert into orders select seq, 1 + (seq * 7) % $((200000 * SCALE)), '2022-01-01' + interval seq * 11 second,
  elt(1 + seq % 4, 'new','paid','shipped','done'), (seq % 99999) / 10, if(seq % 5 = 0, 'gift wrap, please', null)
  from seq_1_to_$((500000 * SCALE));
insert into events select seq, 1 + seq % $((200000 * SCALE)), elt(1 + seq % 4, 'login','view','cart','buy'),
  json_object('page', concat('/p/', seq % 1000), 'ms', seq % 917, 'ok', seq % 3 <> 0),
  '2023-01-01' + interval seq * 3 second + interval (seq % 1000) microsecond
  from seq_1_to_$((400000 * SCALE));
analyze table customers, orders, events;
SQL
ROWS=$(my -N "$MY_DB" -e "select (select count(*) from customers) + (select count(*) from orders) + (select count(*) from events)")
SIZE=$(my -N "$MY_DB" -e "select concat(round(sum(data_length + index_length) / 1048576), ' MB') from information_schema.tables where table_schema = database()")
say "source: $ROWS rows, $SIZE"

cat >"$WORK/schema.sql" <<'EOF'
create table public.customers (id int primary key, name varchar(100) not null,
  email varchar(200) not null, created timestamp not null, balance numeric(12,2), country char(2));
create table public.orders (id bigint primary key, customer_id int not null, placed timestamptz,
  status text not null, total numeric(12,2), note varchar(100));
create table public.events (id bigint primary key, customer_id int, kind varchar(20), payload jsonb,
  at timestamp(6));
EOF

fingerprint() { pg_fingerprint "$1" "${TABLES[@]}"; }

N=0
# check NAME URL: every table has the source's row count, and the same md5 as the other tool's
check() {
    local t want got
    fingerprint "$2" >"$WORK/$1.fp"
    for t in "${TABLES[@]}"; do
        want=$(my -N "$MY_DB" -e "select count(*) from $t")
        got=$(awk -v t="$t" '$1 == t { print $2 }' "$WORK/$1.fp")
        [ "$want" = "$got" ] || { say "$1: $t has $got rows, the source $want"; exit 1; }
    done
    if [ -f "$WORK/first.fp" ]; then
        diff -q "$WORK/first.fp" "$WORK/$1.fp" >/dev/null || {
            diff "$WORK/first.fp" "$WORK/$1.fp" >&2 || true
            say "$1: the target's rows differ from the other tool's"
            exit 1
        }
    else
        cp "$WORK/$1.fp" "$WORK/first.fp"
    fi
    drop_targets
    psql_at "$FERRY_TEST_PG_TARGET" -c checkpoint
}

run_pgloader() {
    new_target "pgl$N" "$WORK/schema.sql"
    cat >"$WORK/load.pgl" <<EOF
LOAD DATABASE
  FROM mysql://$MY_USER:$MY_PW@127.0.0.1:$MY_PORT/$MY_DB
  INTO $T
  WITH data only, workers = $PAR, concurrency = 1, batch rows = 25000
  SET timezone = 'UTC'
  ALTER SCHEMA '$MY_DB' RENAME TO 'public';
EOF
    measure pgloader pgloader --no-ssl-cert-verification "$WORK/load.pgl"
    if grep -q 'ERROR\|FATAL' "$WORK/pgloader.out"; then
        tail -n 30 "$WORK/pgloader.out" >&2
        say "pgloader reported errors"
        exit 1
    fi
    check pgloader "$T"
}

run_ferry() {
    new_target "ferry$N" "$WORK/schema.sql"
    cat >"$WORK/runbook.toml" <<EOF
[runbook]
name = "mysql-bench"
title = "MySQL copy benchmark"
format = 1

[connections.src]
url = "mysql://$MY_USER:\${env:MYSQL_PASSWORD}@127.0.0.1:$MY_PORT/$MY_DB"
[connections.dst]
url = "\${env:DST}"

[[phase]]
id = "copy"

  [[phase.step]]
  id = "copy"
  kind = "copy"
  from = "src"
  to = "dst"
  tables = ["$MY_DB.*"]
  parallel = $PAR
  chunk_rows = $CHUNK
  confirm = "none"
EOF
    rm -f "$WORK/journal.jsonl"
    measure ferry env MYSQL_PASSWORD="$MY_PW" DST="$T" "$FERRY_BIN" run "$WORK/runbook.toml" \
        --headless --yes --journal "$WORK/journal.jsonl"
    check ferry "$T"
}

for ((N = 1; N <= ROUNDS; N++)); do
    if ((N % 2)); then run_ferry; run_pgloader; else run_pgloader; run_ferry; fi
done

F=$(median "${SECS[ferry]}")
P=$(median "${SECS[pgloader]}")
say "rows: $ROWS ($SIZE on MariaDB), rounds: $ROUNDS, parallel: $PAR"
printf '| tool | median s | runs (s) | ratio to pgloader | peak RSS |\n|---|---:|---|---:|---:|\n'
printf '| pgloader %s | %s | %s | 1.00 | %s MB |\n' "$(pgloader --version | head -1 | cut -d'"' -f2)" "$P" "${SECS[pgloader]# }" "${RSS[pgloader]}"
printf '| ferry | %s | %s | %s | %s MB |\n' "$F" "${SECS[ferry]# }" "$(ratio "$F" "$P")" "${RSS[ferry]}"
