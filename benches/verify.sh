#!/usr/bin/env bash
# Verify benchmark: ferry's verify step against reladiff and against plain count(*) on a clean pair.
#
# Run it through the rig (it needs the primary and the target cluster):
#   scripts/test --rig-only benches/verify.sh
#
# It builds ~2.4 million rows over five tables (integer keys, a composite key, numeric, text,
# arrays, jsonb, timestamptz) on the rig's primary (BENCH_SCALE=2 doubles that), copies them to a
# fresh database on the target cluster with `pg_dump | psql`, then times, on the same pair in the
# same run:
#   - count(*):  exact count(*) of every table, both sides at once (one psql per side);
#   - reladiff:  `reladiff` (pip, installed into the rig's venv) per table, every column
#                (`-c %`), 4 threads per database like ferry's 4 connections per side;
#   - ferry:     `ferry run --headless --yes` (release build unless FERRY_BIN is given) of a
#                runbook with one verify step: schema, counts, checksums, sample = 1000;
#                then once more with checksums only.
# Each tool must report the pair equal, or the benchmark fails. Wall-clock seconds and the
# ratios ferry/reladiff and ferry/count(*) are printed as a Markdown table.
#
# Environment: BENCH_SCALE (default 1), RELADIFF_THREADS (default 4), FERRY_BIN (skip the
# build and use this binary), FERRY_CACHE (the venv's home, default ~/.cache/ferry).
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${FERRY_TEST_PG_PRIMARY:?run this through: scripts/test --rig-only benches/verify.sh}"
: "${FERRY_TEST_PG_TARGET:?run this through: scripts/test --rig-only benches/verify.sh}"
PGBIN=${FERRY_TEST_PG_BIN:?}
SCALE=${BENCH_SCALE:-1}
THREADS=${RELADIFF_THREADS:-4}
WORK=$(mktemp -d "${FERRY_TEST_RIG_DIR:-/tmp}/verify-bench.XXXXXX")
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
TABLES=("${PG_DATASET_TABLES[@]}")
declare -A KEYS=([customers]="-k id" [products]="-k id" [orders]="-k id" [order_items]="-k order_id -k line" [events]="-k id")

DB=verify_bench_$$
SRC=$(url_db "$FERRY_TEST_PG_PRIMARY" "$DB")
DST=$(url_db "$FERRY_TEST_PG_TARGET" "$DB")

cleanup() {
    psql_at "$FERRY_TEST_PG_TARGET" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- ferry ---------------------------------------------------------------------------------------
BUILD=release
if [ -z "${FERRY_BIN:-}" ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ferry-target}
    say "cargo build --release (a clean build takes ~15 min on a 2-core machine)"
    if (cd "$ROOT" && cargo build --release --bin ferry >&2); then
        FERRY_BIN=$CARGO_TARGET_DIR/release/ferry
    else
        say "the release build failed: using a debug build"
        (cd "$ROOT" && cargo build --bin ferry >&2)
        FERRY_BIN=$CARGO_TARGET_DIR/debug/ferry
        BUILD=debug
    fi
else
    BUILD="given ($FERRY_BIN)"
fi
# A private copy: a concurrent build must not swap the binary under the benchmark.
cp "$FERRY_BIN" "$WORK/ferry"
FERRY_BIN=$WORK/ferry

# ---- reladiff --------------------------------------------------------------------------------------
VENV=${FERRY_CACHE:-$HOME/.cache/ferry}/venv
RELADIFF=""
if [ -x "$VENV/bin/reladiff" ]; then
    RELADIFF=$VENV/bin/reladiff
elif [ -x "$VENV/bin/python" ]; then
    say "installing reladiff[postgresql] into $VENV"
    if "$VENV/bin/python" -m pip install --disable-pip-version-check -q 'reladiff[postgresql]' >"$WORK/pip.log" 2>&1; then
        RELADIFF=$VENV/bin/reladiff
    else
        tail -n 5 "$WORK/pip.log" >&2
    fi
fi
[ -n "$RELADIFF" ] || say "reladiff could not be installed into $VENV: skipped"

# ---- the pair ------------------------------------------------------------------------------------
say "seeding $DB on the primary (scale $SCALE)"
psql_at "$FERRY_TEST_PG_PRIMARY" -c "create database $DB"
seed_pg_dataset "$SRC" "$SCALE"
ROWS=$(psql_at "$SRC" -At -c "select (select count(*) from customers) + (select count(*) from products) + (select count(*) from orders) + (select count(*) from order_items) + (select count(*) from events)")
SIZE=$(psql_at "$SRC" -At -c "select pg_size_pretty(pg_database_size(current_database()))")
say "source: $ROWS rows, $SIZE; copying to the target with pg_dump | psql"
psql_at "$FERRY_TEST_PG_TARGET" -c "create database $DB"
"$PGBIN/pg_dump" --no-owner -d "$SRC" | psql_at "$DST" >/dev/null
psql_at "$DST" -c "vacuum analyze" >/dev/null
# warm both caches the same way for every tool
for u in "$SRC" "$DST"; do
    for t in "${TABLES[@]}"; do psql_at "$u" -At -c "select count(*) from $t" >/dev/null; done
done

# measure NAME CMD...: wall-clock seconds of CMD (it must succeed).
measure() {
    local name=$1 start end
    shift
    say "running: $name"
    start=$(date +%s.%N)
    "$@" >"$WORK/$name.out" 2>&1 || {
        tail -n 30 "$WORK/$name.out" "$WORK"/reladiff-*.txt >&2 2>/dev/null || true
        say "$name FAILED"
        exit 1
    }
    end=$(date +%s.%N)
    SECS[$name]=$(echo "$end - $start" | bc -l)
}

# ---- count(*) ----------------------------------------------------------------------------------
COUNTS="select $(printf "(select count(*) from %s)," "${TABLES[@]}" | sed 's/,$//')"
cat >"$WORK/count.sh" <<EOF
set -euo pipefail
"$PGBIN/psql" -X -q -At "$SRC" -c "$COUNTS" >"$WORK/count.src" &
"$PGBIN/psql" -X -q -At "$DST" -c "$COUNTS" >"$WORK/count.dst"
wait
cmp "$WORK/count.src" "$WORK/count.dst"
EOF
measure count bash "$WORK/count.sh"

# ---- reladiff --------------------------------------------------------------------------------------
if [ -n "$RELADIFF" ]; then
    # reladiff knows the postgresql:// scheme only, and exits 0 even when it fails or finds
    # differences: its --stats lines are checked instead.
    RSRC=postgresql${SRC#postgres}
    RDST=postgresql${DST#postgres}
    {
        echo 'set -euo pipefail'
        for t in "${TABLES[@]}"; do
            echo "\"$RELADIFF\" \"$RSRC\" $t \"$RDST\" $t ${KEYS[$t]} -c % --threads $THREADS --stats >\"$WORK/reladiff-$t.txt\" 2>&1"
            echo "grep -q '^[1-9][0-9]* rows in table A' \"$WORK/reladiff-$t.txt\""
            echo "grep -q '^0 rows exclusive to table A' \"$WORK/reladiff-$t.txt\""
            echo "grep -q '^0 rows exclusive to table B' \"$WORK/reladiff-$t.txt\""
            echo "grep -q '^0 rows updated' \"$WORK/reladiff-$t.txt\""
        done
    } >"$WORK/reladiff.sh"
    measure reladiff bash "$WORK/reladiff.sh"
fi

# ---- ferry ---------------------------------------------------------------------------------------
runbook() { # CHECKS
    cat <<EOF
[runbook]
name = "verify-bench"
format = 1

[connections.src]
url = "\${env:SRC}"
[connections.dst]
url = "\${env:DST}"

[[phase]]
id = "p"

  [[phase.step]]
  id = "verify"
  kind = "verify"
  source = "src"
  target = "dst"
  tables = ["public.*"]
  checks = $1
  sample = 1000
  confirm = "none"
EOF
}
runbook '["schema", "counts", "checksums", "sample"]' >"$WORK/all.toml"
runbook '["checksums"]' >"$WORK/checksums.toml"
measure ferry env SRC="$SRC" DST="$DST" "$FERRY_BIN" run "$WORK/all.toml" --headless --yes --journal "$WORK/all.jsonl"
measure ferry_checksums env SRC="$SRC" DST="$DST" "$FERRY_BIN" run "$WORK/checksums.toml" --headless --yes --journal "$WORK/checksums.jsonl"
grep -h 'succeeded' "$WORK"/ferry*.out >&2 || true

# ---- results -------------------------------------------------------------------------------------
ratio() { if [ -n "${SECS[$2]:-}" ]; then printf '%.2f' "$(echo "${SECS[$1]} / ${SECS[$2]}" | bc -l)"; else printf 'n/a'; fi; }
printf '\n%s rows (%s per side) · %s cores · PostgreSQL %s · ferry %s build · reladiff %s, --threads %s\n\n' \
    "$ROWS" "$SIZE" "$(nproc)" "$("$PGBIN/postgres" --version | awk '{print $3}')" "$BUILD" \
    "$([ -n "$RELADIFF" ] && "$VENV/bin/python" -m pip show reladiff 2>/dev/null | awk '/^Version/ {print $2}' || echo 'not installed')" "$THREADS"
printf '| tool | seconds | ferry ÷ this |\n|---|---:|---:|\n'
printf '| count(*) both sides | %.2f | %s |\n' "${SECS[count]}" "$(ratio ferry count)"
if [ -n "${SECS[reladiff]:-}" ]; then
    printf '| reladiff (every column) | %.2f | %s |\n' "${SECS[reladiff]}" "$(ratio ferry reladiff)"
else
    printf '| reladiff | not available | |\n'
fi
printf '| ferry verify: schema, counts, checksums, sample | %.2f | 1.00 |\n' "${SECS[ferry]}"
printf '| ferry verify: checksums only | %.2f | %s |\n' "${SECS[ferry_checksums]}" "$(ratio ferry ferry_checksums)"
printf '\nferry (all checks) ÷ reladiff = %s (goal ≤ 0.5) · ferry ÷ count(*) = %s (goal ≤ 3) · checksums only ÷ count(*) = %s\n' \
    "$(ratio ferry reladiff)" "$(ratio ferry count)" "$(ratio ferry_checksums count)"
