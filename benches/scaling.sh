#!/usr/bin/env bash
# Scaling benchmark: how ferry's copy and verify times, its planning time and its peak memory
# grow with the data, at 1x and 4x the copy benchmark's dataset, in one run.
#
# Run it through the rig (it needs the primary and the target cluster):
#   scripts/test --rig-only benches/scaling.sh
#
# For each scale in BENCH_SCALES (default "1 4": 2.42M and 9.68M rows, benches/lib.sh) it seeds
# the dataset on the primary, then BENCH_ROUNDS times (default 3) in alternating order:
#   - psql pipe: COPY TO STDOUT | COPY FROM STDIN table by table (the reference);
#   - ferry copy: `ferry run` of one copy step (parallel = 2, chunk_rows = 50000); its planning
#     time is the "planned N chunks ... in S s" line it prints;
# checks each target against the source (count and md5 of the sorted rows of every table), and
# on ferry's target times, against each other:
#   - count(*) of every table on both sides at once (one psql per side);
#   - ferry verify (counts and checksums).
# Times are medians; peak RSS is the highest of ferry's processes (/usr/bin/time -v).
#
# Environment: BENCH_SCALES (default "1 4"), BENCH_ROUNDS (default 3), FERRY_BIN.
set -euo pipefail

ROOT=$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
: "${FERRY_TEST_PG_PRIMARY:?run this through: scripts/test --rig-only benches/scaling.sh}"
: "${FERRY_TEST_PG_TARGET:?run this through: scripts/test --rig-only benches/scaling.sh}"
PGBIN=${FERRY_TEST_PG_BIN:?}
SCALES=${BENCH_SCALES:-1 4}
ROUNDS=${BENCH_ROUNDS:-3}
WORK=$(mktemp -d "${FERRY_TEST_RIG_DIR:-/tmp}/scaling-bench.XXXXXX")
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

cat >"$WORK/copy.toml" <<EOF
[runbook]
name = "scaling-copy"
title = "scaling benchmark: copy"
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
  chunk_rows = 50000
  parallel = 2
  confirm = "none"
EOF
sed -e 's/scaling-copy/scaling-verify/; s/benchmark: copy/benchmark: verify/' -e '/^  \[\[phase.step\]\]/,$d' \
    "$WORK/copy.toml" >"$WORK/verify.toml"
cat >>"$WORK/verify.toml" <<EOF
  [[phase.step]]
  id = "verify"
  kind = "verify"
  source = "src"
  target = "dst"
  tables = ["public.*"]
  checks = ["counts", "checksums"]
  confirm = "none"
EOF

COUNTS="select $(printf "(select count(*) from %s)," "${TABLES[@]}" | sed 's/,$//')"

declare -A RESULT
for SCALE in $SCALES; do
    say "scale $SCALE: seeding"
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "drop database if exists $SRC_DB with (force)" >/dev/null
    psql_at "$FERRY_TEST_PG_PRIMARY" -c "create database $SRC_DB"
    seed_pg_dataset "$SRC" "$SCALE"
    RESULT[$SCALE.rows]=$(psql_at "$SRC" -At -c "select (select count(*) from customers) + (select count(*) from products) + (select count(*) from orders) + (select count(*) from order_items) + (select count(*) from events)")
    RESULT[$SCALE.size]=$(psql_at "$SRC" -At -c "select pg_size_pretty(pg_database_size(current_database()))")
    "$PGBIN/pg_dump" --schema-only --no-owner -d "$SRC" >"$WORK/schema.sql"
    pg_fingerprint "$SRC" "${TABLES[@]}" >"$WORK/source.fp"
    for k in pipe copy plan verify count; do unset "SECS[$k]"; done
    unset "RSS[copy]" "RSS[verify]"
    for ((N = 0; N < ROUNDS; N++)); do
        say "scale $SCALE, round $((N + 1)) of $ROUNDS"
        for tool in $( ((N % 2)) && echo "ferry pipe" || echo "pipe ferry"); do
            new_target "s${SCALE}_${tool}$N" "$WORK/schema.sql"
            if [ "$tool" = pipe ]; then
                cat >"$WORK/pipe.sh" <<EOF
set -euo pipefail
for t in ${TABLES[*]}; do
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$SRC" -c "copy public.\$t to stdout" |
        PGOPTIONS='-c session_replication_role=replica' "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$T" -c "copy public.\$t from stdin"
done
EOF
                measure pipe bash "$WORK/pipe.sh"
            else
                measure copy env SRC="$SRC" DST="$T" "$FERRY_BIN" run "$WORK/copy.toml" --headless --yes \
                    --journal "$WORK/copy-$SCALE-$N.jsonl"
                p=$(sed -n 's/.*planned [0-9]* chunks over [0-9]* tables in \([0-9.]*\)s.*/\1/p' "$WORK/copy.out" | head -1)
                [ -n "$p" ] || { say "no planning time in ferry's output"; exit 1; }
                SECS[plan]="${SECS[plan]:-} $p"
            fi
            pg_fingerprint "$T" "${TABLES[@]}" >"$WORK/target.fp"
            diff "$WORK/source.fp" "$WORK/target.fp" >&2 || { say "$tool: the target differs from the source"; exit 1; }
            if [ "$tool" = ferry ]; then
                psql_at "$T" -c "vacuum analyze" >/dev/null
                for u in "$SRC" "$T"; do psql_at "$u" -At -c "$COUNTS" >/dev/null; done # warm both caches alike
                cat >"$WORK/count.sh" <<EOF
set -euo pipefail
"$PGBIN/psql" -X -q -At "$SRC" -c "$COUNTS" >"$WORK/count.src" &
"$PGBIN/psql" -X -q -At "$T" -c "$COUNTS" >"$WORK/count.dst"
wait
cmp "$WORK/count.src" "$WORK/count.dst"
EOF
                measure count bash "$WORK/count.sh"
                measure verify env SRC="$SRC" DST="$T" "$FERRY_BIN" run "$WORK/verify.toml" --headless --yes \
                    --journal "$WORK/verify-$SCALE-$N.jsonl"
            fi
            drop_targets
            psql_at "$FERRY_TEST_PG_TARGET" -c checkpoint
            psql_at "$FERRY_TEST_PG_PRIMARY" -c checkpoint
        done
    done
    for k in pipe copy plan verify count; do RESULT[$SCALE.$k]=$(median "${SECS[$k]}"); done
    RESULT[$SCALE.copy_rss]=${RSS[copy]}
    RESULT[$SCALE.verify_rss]=${RSS[verify]}
    say "scale $SCALE: pipe ${RESULT[$SCALE.pipe]}s, ferry copy ${RESULT[$SCALE.copy]}s (planning ${RESULT[$SCALE.plan]}s, ${RSS[copy]} MB), verify ${RESULT[$SCALE.verify]}s (${RSS[verify]} MB), count(*) ${RESULT[$SCALE.count]}s"
done

printf '\n%s cores · PostgreSQL %s · median of %s rounds · ferry copy parallel = 2, chunk_rows = 50000\n\n' \
    "$(nproc)" "$("$PGBIN/postgres" --version | awk '{print $3}')" "$ROUNDS"
printf '| scale | rows | size | psql pipe s | ferry copy s | copy ÷ pipe | planning s | copy peak RSS | count(*) s | verify s | verify ÷ count(*) | verify peak RSS |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for SCALE in $SCALES; do
    printf '| %s× | %s | %s | %s | %s | %s | %s | %s MB | %s | %s | %s | %s MB |\n' "$SCALE" "${RESULT[$SCALE.rows]}" \
        "${RESULT[$SCALE.size]}" "${RESULT[$SCALE.pipe]}" "${RESULT[$SCALE.copy]}" \
        "$(ratio "${RESULT[$SCALE.copy]}" "${RESULT[$SCALE.pipe]}")" "${RESULT[$SCALE.plan]}" "${RESULT[$SCALE.copy_rss]}" \
        "${RESULT[$SCALE.count]}" "${RESULT[$SCALE.verify]}" \
        "$(ratio "${RESULT[$SCALE.verify]}" "${RESULT[$SCALE.count]}")" "${RESULT[$SCALE.verify_rss]}"
done
read -ra S <<<"$SCALES"
if [ "${#S[@]}" -ge 2 ]; then
    a=${S[0]} b=${S[-1]}
    printf '\ngrowth from %s× to %s× (data × %s): psql pipe %s, ferry copy %s, planning %s, verify %s, count(*) %s\n' "$a" "$b" \
        "$(ratio "${RESULT[$b.rows]}" "${RESULT[$a.rows]}")" "$(ratio "${RESULT[$b.pipe]}" "${RESULT[$a.pipe]}")" \
        "$(ratio "${RESULT[$b.copy]}" "${RESULT[$a.copy]}")" "$(ratio "${RESULT[$b.plan]}" "${RESULT[$a.plan]}")" \
        "$(ratio "${RESULT[$b.verify]}" "${RESULT[$a.verify]}")" "$(ratio "${RESULT[$b.count]}" "${RESULT[$a.count]}")"
fi
