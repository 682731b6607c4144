# shellcheck shell=bash
# Helper functions for ferry's test rig. Sourced by scripts/test; not run on its own.
#
# The rig is: a PostgreSQL primary, a streaming standby made with pg_basebackup, an independent
# target cluster, moto_server (AWS RDS and CloudWatch) and a MariaDB server, all on loopback on free ports, in one
# temporary directory. See the "Test rig" section of DESIGN.md.
#
# Everything prints progress to stderr; stdout is left alone (scripts/test --shell prints export
# lines there).

RIG_PG_PASSWORD=ferry-test-secret-pw
RIG_PG_ROLE=ferry
RIG_PG_DB=ferry
RIG_MARKER=.ferry-rig
RIG_START_TIMEOUT=${FERRY_RIG_TIMEOUT:-90}

rig_log() { printf 'rig: %s\n' "$*" >&2; }

rig_die() {
    printf 'rig: ERROR: %s\n' "$*" >&2
    exit 1
}

rig_is_root() { [ "$(id -u)" -eq 0 ]; }

# Print the last lines of a log file to stderr, framed, for failure reports.
rig_tail() {
    local file=$1 n=${2:-40}
    if [ -s "$file" ]; then
        printf 'rig: ---- last %s lines of %s ----\n' "$n" "$file" >&2
        tail -n "$n" "$file" >&2 || true
        printf 'rig: ---- end of %s ----\n' "$file" >&2
    else
        printf 'rig: (log %s is empty or missing)\n' "$file" >&2
    fi
}

# ---------------------------------------------------------------------------------------------
# Installing what is missing
# ---------------------------------------------------------------------------------------------

rig_pg_bin_dir() {
    local d best="" bestv=0 v
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] || continue
        v=${d#/usr/lib/postgresql/}
        v=${v%/bin}
        case $v in *[!0-9]*) continue ;; esac
        if [ "$v" -gt "$bestv" ]; then
            bestv=$v
            best=$d
        fi
    done
    [ -n "$best" ] || return 1
    printf '%s\n' "$best"
}

# A python3 that can make venvs (has the venv and ensurepip modules), or nothing.
rig_venv_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

rig_apt_install() {
    if ! rig_is_root; then
        rig_die "missing packages: $*; install them (apt-get install -y $*) or run as root"
    fi
    command -v apt-get >/dev/null 2>&1 || rig_die "missing packages: $*; and apt-get is not available"
    rig_log "installing: $* (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || rig_die "apt-get update failed"
    apt-get install -y -qq "$@" >&2 </dev/null ||
        rig_die "apt-get install $* failed"
}

# Debian's postgresql package creates and (where it can) starts a default cluster on 5432. The rig
# does not use it; stop it to save memory. Never fails.
rig_stop_debian_default_cluster() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    while read -r ver name _port status _rest; do
        case $status in online*) ;; *) continue ;; esac
        rig_log "stopping Debian's default cluster $ver/$name (not used by the rig)"
        pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
    done < <(pg_lsclusters --no-header 2>/dev/null || true)
    return 0
}

rig_ensure_packages() {
    local pkgs=() installed_pg=0
    rig_pg_bin_dir >/dev/null || { pkgs+=(postgresql); installed_pg=1; }
    command -v tmux >/dev/null 2>&1 || pkgs+=(tmux)
    command -v openssl >/dev/null 2>&1 || pkgs+=(openssl) # the TLS block below
    # the HTML report is rendered in headless Chromium by the report tests
    command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
    # the seed rehearsals' rig commands call moto with the aws CLI (runbooks/rig/*.vars.toml)
    command -v aws >/dev/null 2>&1 || pkgs+=(awscli)
    # seed 003's rehearsal runs a self-hosted and a "managed" Redis (tests/it/seed_self_hosted.rs)
    command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
    if ! rig_venv_python >/dev/null; then
        pkgs+=(python3 python3-venv)
    fi
    rig_my_want_packages
    if [ ${#pkgs[@]} -gt 0 ]; then
        rig_apt_install "${pkgs[@]}"
        if [ $installed_pg = 1 ]; then
            rig_stop_debian_default_cluster
        fi
    fi
    rig_pg_bin_dir >/dev/null || rig_die "no PostgreSQL found under /usr/lib/postgresql/*/bin after install"
    rig_venv_python >/dev/null || rig_die "no python3 with the venv module found after install"
    if rig_is_root && ! id postgres >/dev/null 2>&1; then
        # The package creates this user; a hand-made PostgreSQL install may not have.
        rig_log "creating OS user postgres"
        useradd --system --no-create-home --shell /bin/sh postgres ||
            rig_die "could not create OS user postgres"
    fi
}

rig_cache_dir() { printf '%s\n' "${FERRY_CACHE:-$HOME/.cache/ferry}"; }

# Make sure $(rig_cache_dir)/venv has moto_server. Sets RIG_MOTO_SERVER.
rig_ensure_venv() {
    local cache venv py
    cache=$(rig_cache_dir)
    venv=$cache/venv
    mkdir -p "$cache"
    RIG_MOTO_SERVER=$venv/bin/moto_server
    if [ -x "$RIG_MOTO_SERVER" ] && "$venv/bin/python" -c '' >/dev/null 2>&1; then
        return 0
    fi
    (
        # Two runs at once must not build the same venv together.
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$cache/venv.lock"
            flock 9
        fi
        if [ -x "$RIG_MOTO_SERVER" ] && "$venv/bin/python" -c '' >/dev/null 2>&1; then
            exit 0
        fi
        py=$(rig_venv_python) || rig_die "no python3 with the venv module"
        if [ -d "$venv" ] && ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
            rig_log "removing broken venv $venv"
            rm -rf "$venv"
        fi
        if [ ! -x "$venv/bin/python" ]; then
            rig_log "creating python venv $venv (with $py)"
            "$py" -m venv "$venv" >&2 || rig_die "python3 -m venv $venv failed"
        fi
        rig_log "installing moto[server] into $venv (takes a minute, once)"
        "$venv/bin/python" -m pip install --disable-pip-version-check -q 'moto[server]' >&2 </dev/null ||
            rig_die "pip install 'moto[server]' failed"
        [ -x "$RIG_MOTO_SERVER" ] || rig_die "pip installed moto[server] but $RIG_MOTO_SERVER is missing"
    ) || exit 1
}

# ---------------------------------------------------------------------------------------------
# Small tools
# ---------------------------------------------------------------------------------------------

# Print N free loopback TCP ports, one per line, all distinct. Prefers ports below the kernel's
# ephemeral range, so outgoing connections cannot grab them between the check and the bind.
rig_free_ports() {
    "$RIG_PYTHON" - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except Exception:
    lo = 32768
held, ports = [], []
def try_bind(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return s.getsockname()[1]
tries = 0
while len(ports) < n and tries < 500 and lo > 11000:
    tries += 1
    p = try_bind(random.randint(10000, lo - 1))
    if p and p not in ports:
        ports.append(p)
while len(ports) < n:
    p = try_bind(0)
    if p and p not in ports:
        ports.append(p)
print("\n".join(map(str, ports)))
EOF
}

# Run a command as the OS user that owns the clusters: postgres when we are root (initdb and
# postgres refuse to run as root), else ourselves.
rig_as_pg() {
    if rig_is_root; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u postgres -- "$@")
        else
            local q
            q=$(printf '%q ' "$@")
            (cd / && su postgres -s /bin/sh -c "$q")
        fi
    else
        "$@"
    fi
}

# psql as the bootstrap superuser over the rig's unix socket.
rig_psql() {
    local port=$1
    shift
    PGCONNECT_TIMEOUT=5 "$RIG_PG_BIN/psql" -X -w -q -v ON_ERROR_STOP=1 -h "$RIG_DIR" -p "$port" \
        -U postgres -d postgres "$@"
}

rig_url() { printf 'postgres://%s:%s@127.0.0.1:%s/%s' "$RIG_PG_ROLE" "$RIG_PG_PASSWORD" "$1" "$RIG_PG_DB"; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL clusters
# ---------------------------------------------------------------------------------------------

rig_pg_settings() {
    local port=$1
    cat <<EOF

# ---- ferry test rig ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$RIG_DIR'
# logical: the primary publishes for ferry's replicate steps and the caught-up proof on a
# slot; every cluster gets it (a standby needs no less than its primary). Each subscription
# takes a slot, a WAL sender and up to three workers, and tests run several at once.
wal_level = logical
max_wal_senders = 32
max_replication_slots = 32
max_worker_processes = 32
max_logical_replication_workers = 24
wal_keep_size = '256MB'
hot_standby = on
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

rig_pg_hba() {
    cat <<'EOF'
# ferry test rig: trust over the socket, for replication and for postgres; everyone else must
# give a password over TCP, so tests can prove that passwords in URLs are needed and redacted.
local   all          all                     trust
local   replication  all                     trust
host    replication  all       127.0.0.1/32  trust
host    all          postgres  127.0.0.1/32  trust
host    all          all       127.0.0.1/32  scram-sha-256
EOF
}

# rig_initdb NAME: a fresh cluster in $RIG_DIR/NAME, configured but not started.
rig_initdb() {
    local name=$1 data=$RIG_DIR/$1
    if ! rig_as_pg "$RIG_PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C \
        --no-sync >"$RIG_DIR/$name.initdb.log" 2>&1; then
        rig_tail "$RIG_DIR/$name.initdb.log"
        rig_die "initdb for the $name cluster failed"
    fi
    rig_pg_hba >"$data/pg_hba.conf"
}

# rig_pg_start NAME: start the cluster in $RIG_DIR/NAME on a free port, retrying on a port clash.
# Sets RIG_PORT.
rig_pg_start() {
    local name=$1 data=$RIG_DIR/$1 log=$RIG_DIR/$1.log attempt
    for attempt in 1 2 3; do
        RIG_PORT=$(rig_free_ports 1)
        rig_pg_settings "$RIG_PORT" >>"$data/postgresql.conf"
        if rig_as_pg "$RIG_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t "$RIG_START_TIMEOUT" start \
            >/dev/null 2>>"$RIG_DIR/$name.pg_ctl.log"; then
            return 0
        fi
        if grep -q 'could not bind\|Address already in use' "$log" 2>/dev/null && [ $attempt -lt 3 ]; then
            rig_log "$name: port $RIG_PORT was taken, trying another"
            continue
        fi
        rig_tail "$RIG_DIR/$name.pg_ctl.log" 10
        rig_tail "$log"
        rig_die "PostgreSQL $name cluster did not start (data $data, log $log)"
    done
}

# Create the ferry role and database (password required over TCP).
rig_pg_create_role() {
    local port=$1 name=$2
    rig_psql "$port" \
        -c "CREATE ROLE $RIG_PG_ROLE LOGIN SUPERUSER REPLICATION PASSWORD '$RIG_PG_PASSWORD'" \
        -c "CREATE DATABASE $RIG_PG_DB OWNER $RIG_PG_ROLE" >/dev/null 2>"$RIG_DIR/$name.psql.log" || {
        rig_tail "$RIG_DIR/$name.psql.log"
        rig_die "could not create role and database $RIG_PG_DB on the $name cluster"
    }
    # Prove the password works over TCP, the way the tests connect.
    PGCONNECT_TIMEOUT=5 "$RIG_PG_BIN/psql" -X -w -Atq "$(rig_url "$port")" -c 'select 1' \
        >/dev/null 2>"$RIG_DIR/$name.psql.log" || {
        rig_tail "$RIG_DIR/$name.psql.log"
        rig_die "cannot log in to the $name cluster as $RIG_PG_ROLE over TCP"
    }
}

rig_start_primary() {
    rig_initdb primary
    rig_pg_start primary
    RIG_PRIMARY_PORT=$RIG_PORT
    rig_pg_create_role "$RIG_PRIMARY_PORT" primary
    rig_log "primary on 127.0.0.1:$RIG_PRIMARY_PORT (data $RIG_DIR/primary)"
}

rig_start_standby() {
    local data=$RIG_DIR/standby
    if ! rig_as_pg "$RIG_PG_BIN/pg_basebackup" \
        -d "host=127.0.0.1 port=$RIG_PRIMARY_PORT user=postgres application_name=ferry_standby" \
        -D "$data" -R -X stream -c fast --no-sync >"$RIG_DIR/standby.basebackup.log" 2>&1; then
        rig_tail "$RIG_DIR/standby.basebackup.log"
        rig_die "pg_basebackup from the primary failed"
    fi
    rig_pg_start standby
    RIG_STANDBY_PORT=$RIG_PORT
    rig_log "standby on 127.0.0.1:$RIG_STANDBY_PORT (data $data), replicating from $RIG_PRIMARY_PORT"
}

rig_wait_streaming() {
    local deadline=$((SECONDS + RIG_START_TIMEOUT)) n
    while :; do
        n=$(rig_psql "$RIG_PRIMARY_PORT" -Atc \
            "select count(*) from pg_stat_replication where state = 'streaming'" 2>/dev/null || echo 0)
        [ "$n" -ge 1 ] 2>/dev/null && break
        if [ $SECONDS -ge $deadline ]; then
            rig_tail "$RIG_DIR/standby.log"
            rig_tail "$RIG_DIR/primary.log" 20
            rig_die "standby did not start streaming within ${RIG_START_TIMEOUT}s"
        fi
        sleep 0.1
    done
    rig_log "standby is streaming"
}

rig_start_target() {
    rig_initdb target
    rig_tls_enable_target
    rig_pg_start target
    RIG_TARGET_PORT=$RIG_PORT
    rig_pg_create_role "$RIG_TARGET_PORT" target
    rig_log "target on 127.0.0.1:$RIG_TARGET_PORT (data $RIG_DIR/target)"
}

# ---------------------------------------------------------------------------------------------
# ---- TLS (issue 19) --------------------------------------------------------------------------
# A test CA made with openssl, and TLS on the TARGET cluster only (the other clusters stay
# plain, so no other test changes). The target also listens on 127.0.0.2, a loopback address
# its certificate does not name: verify-full must refuse it, verify-ca accept it.
#   $RIG_DIR/tls/ca.crt              the good CA; target.crt (localhost, 127.0.0.1) is signed by it
#   $RIG_DIR/tls/other-ca.crt        a CA that signed nothing the target serves
#   $RIG_DIR/tls/other.{crt,key}     localhost/127.0.0.1, signed by the other CA
#   $RIG_DIR/tls/wronghost.{crt,key} db.elsewhere.test, signed by the good CA
# ---------------------------------------------------------------------------------------------

# rig_tls_cert NAME CA SAN: an EC P-256 key and a server certificate NAME.crt signed by CA.
rig_tls_cert() {
    local d=$RIG_DIR/tls name=$1 ca=$2 san=$3
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=ferry test $name" \
        >>"$d/openssl.log" 2>&1 &&
        printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
            "$san" >"$d/$name.ext" &&
        openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
            -days 3 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" >>"$d/openssl.log" 2>&1 || {
        rig_tail "$d/openssl.log"
        rig_die "openssl could not make the test certificate $name"
    }
}

# rig_tls_ca NAME: a self-signed test CA.
rig_tls_ca() {
    local d=$RIG_DIR/tls name=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 -sha256 \
        -keyout "$d/$name.key" -out "$d/$name.crt" -subj "/CN=ferry test $name" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >>"$d/openssl.log" 2>&1 || {
        rig_tail "$d/openssl.log"
        rig_die "openssl could not make the test CA $name"
    }
}

rig_tls_make_certs() {
    command -v openssl >/dev/null 2>&1 || rig_die "openssl is not on PATH (the TLS tests need a test CA)"
    mkdir -p "$RIG_DIR/tls"
    chmod 755 "$RIG_DIR/tls"
    rig_tls_ca ca
    rig_tls_ca other-ca
    rig_tls_cert target ca "DNS:localhost,IP:127.0.0.1"
    rig_tls_cert other other-ca "DNS:localhost,IP:127.0.0.1"
    rig_tls_cert wronghost ca "DNS:db.elsewhere.test"
    chmod 644 "$RIG_DIR/tls"/*.crt
    chmod 600 "$RIG_DIR/tls"/*.key
    rig_log "test CA and certificates in $RIG_DIR/tls"
}

# Before the target's first start: its key and certificate, ssl = on, and 127.0.0.2. The
# settings go to postgresql.auto.conf, read after postgresql.conf, where the rig's own
# settings (listen_addresses) are appended at each start.
rig_tls_enable_target() {
    local data=$RIG_DIR/target d=$RIG_DIR/tls
    cp "$d/target.crt" "$data/server.crt"
    cp "$d/target.key" "$data/server.key"
    chmod 600 "$data/server.key"
    if rig_is_root; then
        chown postgres: "$data/server.crt" "$data/server.key"
    fi
    cat >>"$data/postgresql.auto.conf" <<'EOF'
# ---- ferry test rig: TLS (target only) ----
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
listen_addresses = '127.0.0.1,127.0.0.2'
EOF
    cat >>"$data/pg_hba.conf" <<'EOF'
host    all          postgres  127.0.0.2/32  trust
host    all          all       127.0.0.2/32  scram-sha-256
EOF
}

# Export lines for the tests (inside rig_write_env's block).
rig_tls_env() {
    local d=$RIG_DIR/tls
    printf 'export %s=%q\n' \
        FERRY_TEST_TLS_DIR "$d" \
        FERRY_TEST_TLS_CA "$d/ca.crt" \
        FERRY_TEST_TLS_OTHER_CA "$d/other-ca.crt" \
        FERRY_TEST_TLS_OTHER_CERT "$d/other.crt" \
        FERRY_TEST_TLS_OTHER_KEY "$d/other.key" \
        FERRY_TEST_TLS_WRONG_HOST_CERT "$d/wronghost.crt" \
        FERRY_TEST_TLS_WRONG_HOST_KEY "$d/wronghost.key" \
        FERRY_TEST_PG_TARGET_ALT_HOST "$(printf 'postgres://%s:%s@127.0.0.2:%s/%s' \
            "$RIG_PG_ROLE" "$RIG_PG_PASSWORD" "$RIG_TARGET_PORT" "$RIG_PG_DB")"
}
# ---- end of TLS (issue 19) -------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# moto_server
# ---------------------------------------------------------------------------------------------

# Start moto_server in the background (does not wait). Sets RIG_MOTO_PORT.
rig_spawn_moto() {
    RIG_MOTO_PORT=$(rig_free_ports 1)
    # Own session: a Ctrl-C meant for the tests does not reach it; rig_stop kills it by pid.
    setsid "$RIG_MOTO_SERVER" -H 127.0.0.1 -p "$RIG_MOTO_PORT" >"$RIG_DIR/moto.log" 2>&1 </dev/null &
    echo $! >"$RIG_DIR/moto.pid"
}

rig_moto_answers() {
    "$RIG_PYTHON" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).read()
except urllib.error.HTTPError:
    pass  # any HTTP answer means it is up
EOF
}

rig_wait_moto() {
    local deadline=$((SECONDS + RIG_START_TIMEOUT)) attempt=1 pid
    while :; do
        pid=$(cat "$RIG_DIR/moto.pid")
        if rig_moto_answers "http://127.0.0.1:$RIG_MOTO_PORT/"; then
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            if grep -q 'Address already in use' "$RIG_DIR/moto.log" 2>/dev/null && [ $attempt -lt 3 ]; then
                attempt=$((attempt + 1))
                rig_log "moto: port $RIG_MOTO_PORT was taken, trying another"
                rig_spawn_moto
                continue
            fi
            rig_tail "$RIG_DIR/moto.log"
            rig_die "moto_server exited during start-up"
        fi
        if [ $SECONDS -ge $deadline ]; then
            rig_tail "$RIG_DIR/moto.log"
            rig_die "moto_server did not answer on 127.0.0.1:$RIG_MOTO_PORT within ${RIG_START_TIMEOUT}s"
        fi
        sleep 0.1
    done
    rig_log "moto on 127.0.0.1:$RIG_MOTO_PORT (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# The whole rig
# ---------------------------------------------------------------------------------------------

# Start everything. Sets RIG_DIR early (so a trap can clean up a half-started rig), writes
# $RIG_DIR/env (export lines) and exports the variables into this shell.
rig_start() {
    local t0=$SECONDS base
    RIG_PG_BIN=$(rig_pg_bin_dir) || rig_die "no PostgreSQL under /usr/lib/postgresql/*/bin"
    RIG_PYTHON=$(rig_venv_python) || rig_die "no python3"

    base=${TMPDIR:-/tmp}
    if rig_is_root && ! runuser -u postgres -- test -x "$base" 2>/dev/null; then
        base=/tmp # postgres must be able to reach the rig directory
    fi
    RIG_DIR=$(mktemp -d "$base/ferry-rig.XXXXXX") || rig_die "mktemp -d failed in $base"
    : >"$RIG_DIR/$RIG_MARKER"
    chmod 755 "$RIG_DIR"
    if rig_is_root; then
        # postgres writes its sockets and logs here.
        chown postgres: "$RIG_DIR"
    fi
    rig_log "rig directory $RIG_DIR (PostgreSQL $RIG_PG_BIN)"

    # moto takes a few seconds to import; let it do that while the clusters come up.
    rig_spawn_moto
    rig_tls_make_certs
    rig_my_spawn

    # The target is independent of the primary and standby: bring it up alongside them.
    (
        rig_start_target
        echo "$RIG_TARGET_PORT" >"$RIG_DIR/target.port"
    ) &
    RIG_BG_PID=$!
    rig_start_primary
    rig_start_standby
    local bg=$RIG_BG_PID
    RIG_BG_PID=""
    wait "$bg" || rig_die "the target cluster did not come up (see above)"
    RIG_TARGET_PORT=$(cat "$RIG_DIR/target.port")
    rig_wait_streaming
    rig_wait_moto
    rig_my_wait

    rig_write_env
    rig_my_write_env
    # shellcheck disable=SC1091
    . "$RIG_DIR/env"
    rig_log "up in $((SECONDS - t0))s; stop with: scripts/test --stop $RIG_DIR"
}

rig_write_env() {
    local run_as=""
    rig_is_root && run_as=postgres
    {
        printf 'export %s=%q\n' \
            FERRY_TEST_RIG 1 \
            FERRY_TEST_RIG_DIR "$RIG_DIR" \
            FERRY_TEST_PG_BIN "$RIG_PG_BIN" \
            FERRY_TEST_RUN_AS "$run_as" \
            FERRY_TEST_PG_PRIMARY "$(rig_url "$RIG_PRIMARY_PORT")" \
            FERRY_TEST_PG_STANDBY "$(rig_url "$RIG_STANDBY_PORT")" \
            FERRY_TEST_PG_TARGET "$(rig_url "$RIG_TARGET_PORT")" \
            FERRY_TEST_PG_PRIMARY_DATA "$RIG_DIR/primary" \
            FERRY_TEST_PG_STANDBY_DATA "$RIG_DIR/standby" \
            FERRY_TEST_PG_TARGET_DATA "$RIG_DIR/target" \
            FERRY_TEST_PG_SOCKET_DIR "$RIG_DIR" \
            FERRY_TEST_MOTO_URL "http://127.0.0.1:$RIG_MOTO_PORT" \
            AWS_ACCESS_KEY_ID testing \
            AWS_SECRET_ACCESS_KEY testing \
            AWS_DEFAULT_REGION us-east-1 \
            AWS_REGION us-east-1 \
            AWS_EC2_METADATA_DISABLED true
        rig_tls_env
        # Real AWS settings must not leak into tests.
        printf 'unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL\n'
    } >"$RIG_DIR/env"
}

# For the commands scripts/test runs itself (not for --shell, which must not disturb the
# developer's own tmux): tmux servers that tests start live in the rig directory, so rig_stop
# can end them, and never talk to the developer's tmux server.
rig_isolate_tmux() {
    mkdir -p "$RIG_DIR/tmux"
    chmod 700 "$RIG_DIR/tmux"
    export TMUX_TMPDIR=$RIG_DIR/tmux
    unset TMUX TMUX_PANE
}

# Stop whatever runs from rig directory DIR and remove it. Safe to call on a half-started rig,
# twice, or on a rig whose clusters tests already stopped or promoted. Never fails.
rig_stop() {
    local dir=$1 pidfile data pid sock
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ ! -e "$dir/$RIG_MARKER" ]; then
        rig_log "not a rig directory (no $RIG_MARKER): $dir; leaving it alone"
        return 0
    fi
    RIG_PG_BIN=${RIG_PG_BIN:-$(rig_pg_bin_dir || true)}
    # A start-up job still running in the background must finish before we clean up after it.
    if [ -n "${RIG_BG_PID:-}" ]; then
        wait "$RIG_BG_PID" 2>/dev/null || true
        RIG_BG_PID=""
    fi

    rig_my_stop "$dir"

    # Every cluster under the rig directory, including any a test made there.
    for pidfile in "$dir"/*/postmaster.pid; do
        [ -e "$pidfile" ] || continue
        data=${pidfile%/postmaster.pid}
        pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
        if [ -n "$RIG_PG_BIN" ]; then
            rig_as_pg "$RIG_PG_BIN/pg_ctl" -D "$data" stop -m immediate -w -t 20 >/dev/null 2>&1 || true
        fi
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -e "$pidfile" ]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done

    if [ -f "$dir/moto.pid" ]; then
        pid=$(cat "$dir/moto.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi

    # tmux servers that tests started (TMUX_TMPDIR points here).
    if command -v tmux >/dev/null 2>&1; then
        for sock in "$dir"/tmux/tmux-*/*; do
            [ -S "$sock" ] || continue
            tmux -S "$sock" kill-server >/dev/null 2>&1 || true
        done
    fi

    rm -rf "$dir" 2>/dev/null || rm -rf "$dir" || true
    rig_log "stopped and removed $dir"
}

# ---------------------------------------------------------------------------------------------
# MariaDB (issue 16: the mysql:// source). Everything MariaDB is in this block; the rest of the
# rig calls rig_my_want_packages, rig_my_spawn, rig_my_wait, rig_my_write_env and rig_my_stop.
#
# One server, Debian's mariadb-server, in $RIG_DIR/mariadb: its own datadir made by
# mariadb-install-db, on a free loopback port, its socket in that directory, running as the
# `mysql` OS user when the caller is root. A database `ferry` and a user `ferry` that must give a
# password (tests prove it is needed and never leaks); root logs in over the socket without one.
# $RIG_DIR/mariadb/ctl start|stop|restart|kill lets a test restart the server mid-copy.
# ---------------------------------------------------------------------------------------------

RIG_MY_USER=ferry
RIG_MY_PASSWORD=ferry-mysql-secret-pw
RIG_MY_DB=ferry

# Adds the MariaDB server and pgloader (the copy benchmark's reference) to the caller's `pkgs`.
rig_my_want_packages() {
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || pkgs+=(mariadb-server)
    command -v pgloader >/dev/null 2>&1 || pkgs+=(pgloader)
}

rig_my_bin() {
    local b
    for b in mariadbd /usr/sbin/mariadbd mysqld /usr/sbin/mysqld; do
        if command -v "$b" >/dev/null 2>&1; then
            command -v "$b"
            return 0
        fi
    done
    return 1
}

# Write $RIG_DIR/mariadb/ctl: start (waits until the server answers), stop, restart, kill (-9).
# The redo log is flushed at every commit (innodb-flush-log-at-trx-commit=1): a test kills the
# server with -9 mid-copy, and a source that lost its last committed rows would look like ferry
# losing them.
rig_my_write_ctl() {
    local dir=$1 port=$2 bin=$3 as_user=""
    rig_is_root && as_user="--user=mysql"
    cat >"$dir/ctl" <<CTL
#!/usr/bin/env bash
# Start or stop the rig's MariaDB server (written by scripts/rig.sh).
set -u
dir=$dir
pidfile=\$dir/mariadbd.pid
running() { [ -s "\$pidfile" ] && kill -0 "\$(cat "\$pidfile")" 2>/dev/null; }
start() {
    running && return 0
    setsid $bin --no-defaults $as_user --datadir="\$dir/data" --socket="\$dir/mysqld.sock" \\
        --port=$port --bind-address=127.0.0.1 --pid-file="\$pidfile" --log-error="\$dir/mariadb.err" \\
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=128M \\
        --innodb-flush-log-at-trx-commit=1 --innodb-doublewrite=0 --max-connections=300 \\
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \\
        --default-time-zone=SYSTEM </dev/null >>"\$dir/mariadb.out" 2>&1 &
    for _ in \$(seq 1 ${RIG_START_TIMEOUT}0); do
        if mariadb-admin --no-defaults --socket="\$dir/mysqld.sock" -uroot ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "\$dir/mariadb.err" >&2
    echo "mariadb did not start" >&2
    return 1
}
stop() {
    running || return 0
    local pid
    pid=\$(cat "\$pidfile")
    kill -TERM "\$pid" 2>/dev/null
    for _ in \$(seq 1 300); do kill -0 "\$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "\$pid" 2>/dev/null
}
case \${1:-} in
start) start ;;
stop) stop ;;
restart) stop && start ;;
kill) running && kill -KILL "\$(cat "\$pidfile")"; for _ in \$(seq 1 100); do running || exit 0; sleep 0.1; done ;;
*) echo "usage: \$0 start|stop|restart|kill" >&2; exit 2 ;;
esac
CTL
    chmod 755 "$dir/ctl"
}

# Initialise the datadir, start the server on a free port, create the database and user.
# Runs in the background (rig_my_spawn); writes $RIG_DIR/mariadb/port when ready.
rig_my_start() {
    local dir=$RIG_DIR/mariadb bin port attempt
    bin=$(rig_my_bin) || rig_die "no mariadbd found (install mariadb-server)"
    mkdir -p "$dir"
    rig_is_root && chown mysql: "$dir"
    local install=(mariadb-install-db --no-defaults --datadir="$dir/data" --skip-test-db
        --auth-root-authentication-method=normal)
    rig_is_root && install+=(--user=mysql)
    if ! "${install[@]}" >"$dir/install.log" 2>&1; then
        rig_tail "$dir/install.log"
        rig_die "mariadb-install-db failed"
    fi
    for attempt in 1 2 3; do
        port=$(rig_free_ports 1)
        rig_my_write_ctl "$dir" "$port" "$bin"
        if "$dir/ctl" start 2>>"$dir/ctl.log"; then
            break
        fi
        if grep -q 'Address already in use\|Can.t start server: Bind' "$dir/mariadb.err" 2>/dev/null && [ $attempt -lt 3 ]; then
            rig_log "mariadb: port $port was taken, trying another"
            "$dir/ctl" stop || true
            continue
        fi
        rig_tail "$dir/mariadb.err"
        rig_die "MariaDB did not start (data $dir/data)"
    done
    if ! mariadb --no-defaults --socket="$dir/mysqld.sock" -uroot >"$dir/setup.log" 2>&1 <<SQL; then
CREATE DATABASE $RIG_MY_DB CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER '$RIG_MY_USER'@'127.0.0.1' IDENTIFIED BY '$RIG_MY_PASSWORD';
CREATE USER '$RIG_MY_USER'@'localhost' IDENTIFIED BY '$RIG_MY_PASSWORD';
GRANT ALL ON *.* TO '$RIG_MY_USER'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL ON *.* TO '$RIG_MY_USER'@'localhost' WITH GRANT OPTION;
SQL
        rig_tail "$dir/setup.log"
        rig_die "could not create the MariaDB database and user"
    fi
    # Prove the password works over TCP, the way the tests connect.
    mariadb --no-defaults -h 127.0.0.1 -P "$port" -u "$RIG_MY_USER" -p"$RIG_MY_PASSWORD" \
        -e 'select 1' "$RIG_MY_DB" >/dev/null 2>"$dir/setup.log" || {
        rig_tail "$dir/setup.log"
        rig_die "cannot log in to MariaDB as $RIG_MY_USER over TCP"
    }
    echo "$port" >"$dir/port"
}

rig_my_spawn() {
    (rig_my_start) &
    RIG_MY_BG_PID=$!
}

rig_my_wait() {
    local pid=${RIG_MY_BG_PID:-}
    RIG_MY_BG_PID=""
    [ -n "$pid" ] && { wait "$pid" || rig_die "MariaDB did not come up (see above)"; }
    RIG_MY_PORT=$(cat "$RIG_DIR/mariadb/port")
    rig_log "mariadb on 127.0.0.1:$RIG_MY_PORT (data $RIG_DIR/mariadb/data)"
}

rig_my_write_env() {
    printf 'export %s=%q\n' \
        FERRY_TEST_MYSQL_URL "mysql://$RIG_MY_USER@127.0.0.1:$RIG_MY_PORT/$RIG_MY_DB" \
        FERRY_TEST_MYSQL_PASSWORD "$RIG_MY_PASSWORD" \
        FERRY_TEST_MYSQL_PORT "$RIG_MY_PORT" \
        FERRY_TEST_MYSQL_SOCKET "$RIG_DIR/mariadb/mysqld.sock" \
        FERRY_TEST_MYSQL_DATA "$RIG_DIR/mariadb/data" \
        FERRY_TEST_MYSQL_CTL "$RIG_DIR/mariadb/ctl" >>"$RIG_DIR/env"
}

rig_my_stop() {
    local dir=$1
    if [ -n "${RIG_MY_BG_PID:-}" ]; then
        wait "$RIG_MY_BG_PID" 2>/dev/null || true
        RIG_MY_BG_PID=""
    fi
    [ -x "$dir/mariadb/ctl" ] && "$dir/mariadb/ctl" stop >/dev/null 2>&1
    return 0
}
