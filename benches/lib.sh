# Shared parts of the benchmark scripts (sourced, not run): logging, timing under
# /usr/bin/time, medians, fresh target databases, ferry's release binary and the PostgreSQL
# dataset of the copy benchmark.
#
# A script sets WORK (a scratch directory it removes) and ROOT before sourcing this, and
# declares `TARGETS=()`; `measure` fills the associative arrays SECS and RSS.

say() { printf 'bench: %s\n' "$*" >&2; }
url_db() { printf '%s/%s' "${1%/*}" "$2"; }
psql_at() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

declare -A SECS RSS
# measure NAME CMD...: run CMD under /usr/bin/time -v; append its seconds to SECS[NAME] and keep
# the highest peak RSS (MB) in RSS[NAME]. A failing CMD ends the benchmark with its output.
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

# median "S1 S2 ...": the median of the numbers.
median() {
    local -a v
    read -ra v <<<"$1"
    printf '%s\n' "${v[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with two decimals.
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

# drop_targets: drop every database new_target made on the target cluster.
drop_targets() {
    local db
    for db in "${TARGETS[@]}"; do
        psql_at "$FERRY_TEST_PG_TARGET" -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    done
    TARGETS=()
}

# new_target NAME SCHEMA_FILE: a fresh database on the target cluster with that schema; sets T to
# its URL.
new_target() {
    local db=bench_${1}_$$
    TARGETS+=("$db")
    T=$(url_db "$FERRY_TEST_PG_TARGET" "$db")
    psql_at "$FERRY_TEST_PG_TARGET" -c "create database $db" >/dev/null
    psql_at "$T" -f "$2" >/dev/null
}

# ferry_release: FERRY_BIN becomes a private copy of the release binary (built unless FERRY_BIN
# names one), so that a concurrent build cannot swap the binary under the benchmark.
ferry_release() {
    if [ -z "${FERRY_BIN:-}" ]; then
        export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}
        say "cargo build --release (a clean build takes ~13 min on a 2-core machine)"
        (cd "$ROOT" && cargo build --release --bin ferry >&2)
        FERRY_BIN=$CARGO_TARGET_DIR/release/ferry
    fi
    cp "$FERRY_BIN" "$WORK/ferry"
    FERRY_BIN=$WORK/ferry
}

# The copy benchmark's dataset, 2,420,000 rows (245 MB) per unit of scale over five tables with
# foreign keys: the names of its tables, and seed_pg_dataset URL SCALE to create them in an
# empty database.
PG_DATASET_TABLES=(customers products orders order_items events)
seed_pg_dataset() {
    local scale=$2
    psql_at "$1" <<SQL
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
  (i % 100000) / 100.0, (array['FR','DE','US','JP','BR'])[1 + i % 5] from generate_series(1, 200000 * $scale) i;
insert into products select i, 'SKU-' || lpad(i::text, 8, '0'), 'Product ' || i || ' – déjà vu', (i % 5000) / 10.0,
  array['t' || (i % 7), 't' || (i % 11)] from generate_series(1, 20000 * $scale) i;
insert into orders select i, 1 + (i * 7) % (200000 * $scale), timestamptz '2022-01-01' + i * interval '11 seconds',
  (array['new','paid','shipped','done'])[1 + i % 4], (i % 99999) / 10.0, case when i % 5 = 0 then 'gift wrap, please' end
  from generate_series(1, 600000 * $scale) i;
insert into order_items select 1 + i / 2, i % 2, 1 + (i * 13) % (20000 * $scale), 1 + i % 5, (i % 5000) / 10.0
  from generate_series(0, 1200000 * $scale - 1) i;
insert into events select i, 1 + i % (200000 * $scale), (array['login','view','cart','buy'])[1 + i % 4],
  jsonb_build_object('page', '/p/' || (i % 1000), 'ms', i % 917, 'ok', i % 3 <> 0), timestamptz '2023-01-01' + i * interval '3 seconds'
  from generate_series(1, 400000 * $scale) i;
vacuum analyze;
SQL
}

# pg_fingerprint URL TABLE...: one line per table, "name count md5-of-its-sorted-rows".
pg_fingerprint() {
    local url=$1 t
    shift
    for t in "$@"; do
        psql_at "$url" -At -c "set timezone = 'UTC'; select '$t ' || count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '-') from public.$t x"
    done
}
