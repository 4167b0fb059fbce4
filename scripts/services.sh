# Sourced by the scripts: makes sure the services the tests talk to are running, installing
# them from Debian packages on a fresh machine. Exports LLMGOV_TEST_PG_URL.

log() { printf '[services] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    log "installing $* from Debian packages"
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

wait_for() { # seconds, description, command...
    local secs=$1 what=$2; shift 2
    for _ in $(seq 1 $((secs * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "$what did not become ready in ${secs}s"
    return 1
}

ensure_postgres() {
    local url=${LLMGOV_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
            apt_install postgresql
        fi
        local version
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        log "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        wait_for 60 PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
    fi
    if ! psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
        # A stock Debian cluster wants a password over TCP: give the postgres role one.
        log "setting a password for the postgres role (stock Debian authentication)"
        as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
        url=postgres://postgres:postgres@127.0.0.1:5432/postgres
        psql "$url" -Atqc 'SELECT 1' >/dev/null
    fi
    export LLMGOV_TEST_PG_URL=$url
}

drop_test_databases() {
    local dbs
    dbs=$(psql "$LLMGOV_TEST_PG_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'llmgov\_t\_%'" 2>/dev/null) || return 0
    for db in $dbs; do
        psql "$LLMGOV_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
}

# NATS with JetStream: the event-bus tests start their own nats-server (so that they can stop
# and restart it) from this binary; a shared one on 4222 is started when none runs, for
# `LLMGOV_EVENTS__NATS_URL=nats://127.0.0.1:4222` deployments on this machine.
ensure_nats() {
    if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
        apt_install nats-server
    fi
    local bin
    bin=$(command -v nats-server || echo /usr/sbin/nats-server)
    export LLMGOV_TEST_NATS_SERVER=$bin
    if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
        local dir=${HOME:-/root}/.cache/llmgov-nats
        mkdir -p "$dir"
        log "starting nats-server with JetStream on 127.0.0.1:4222"
        nohup "$bin" -js -a 127.0.0.1 -p 4222 -sd "$dir" >"$dir/nats.log" 2>&1 &
        wait_for 30 NATS bash -c '(exec 3<>/dev/tcp/127.0.0.1/4222)'
    fi
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        log "cargo is required (https://rustup.rs); this machine kind ships it"
        return 1
    fi
}

# The OpenTelemetry Python SDK and its OTLP/HTTP exporter (from PyPI), in a venv kept outside
# the clone as a cache. The OTLP tests run scripts/otel_genai_spans.py with it.
OTEL_PYTHON_PACKAGES="opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2"
ensure_otel_python() {
    local venv=${LLMGOV_VENV:-${HOME:-/root}/.cache/llmgov-venv}
    local stamp="$venv/.llmgov-packages"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$OTEL_PYTHON_PACKAGES" ]; then
        if ! python3 -m venv --help >/dev/null 2>&1; then
            apt_install python3-venv
        fi
        log "installing the OpenTelemetry Python SDK into $venv"
        python3 -m venv "$venv"
        # shellcheck disable=SC2086
        "$venv/bin/pip" install -q --disable-pip-version-check $OTEL_PYTHON_PACKAGES
        echo "$OTEL_PYTHON_PACKAGES" >"$stamp"
    fi
    export LLMGOV_TEST_PYTHON="$venv/bin/python"
}

# SoftHSM2 (PKCS#11) for the HSM key-provider tests: a private configuration and one token,
# initialised non-interactively and fresh on every run. Exports SOFTHSM2_CONF and the
# LLMGOV_TEST_PKCS11_* variables the tests read.
ensure_softhsm() {
    if ! command -v softhsm2-util >/dev/null 2>&1; then
        apt_install softhsm2
    fi
    local dir=${HOME:-/root}/.cache/llmgov-softhsm
    rm -rf "$dir/tokens"
    mkdir -p "$dir/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$dir/tokens" >"$dir/softhsm2.conf"
    export SOFTHSM2_CONF=$dir/softhsm2.conf
    softhsm2-util --init-token --free --label llmgov-test --so-pin 12345678 --pin 1234 >/dev/null
    export LLMGOV_TEST_PKCS11_MODULE=${LLMGOV_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
    export LLMGOV_TEST_PKCS11_TOKEN=llmgov-test LLMGOV_TEST_PKCS11_PIN=1234
}

# An S3-compatible server for the S3 object-store tests: s3s-fs from crates.io (built once,
# about 4 minutes, and cached outside the clone), started on loopback with one bucket.
# Exports the LLMGOV_TEST_S3_* variables the tests read.
S3S_FS_VERSION=0.14.1
ensure_s3() {
    local tools=${HOME:-/root}/.cache/llmgov-tools
    local bin=$tools/bin/s3s-fs
    if [ ! -x "$bin" ] || [ "$(cat "$tools/.s3s-fs-version" 2>/dev/null)" != "$S3S_FS_VERSION" ]; then
        log "building s3s-fs $S3S_FS_VERSION from crates.io into $tools"
        CARGO_TARGET_DIR=${HOME:-/root}/.cache/llmgov-tools-target \
            cargo install --quiet --locked "s3s-fs@$S3S_FS_VERSION" --features binary --root "$tools" --force
        rm -rf "${HOME:-/root}/.cache/llmgov-tools-target"
        echo "$S3S_FS_VERSION" >"$tools/.s3s-fs-version"
    fi
    export LLMGOV_TEST_S3_ENDPOINT=http://127.0.0.1:9900 LLMGOV_TEST_S3_BUCKET=llmgov-test
    export LLMGOV_TEST_S3_ACCESS_KEY=llmgov-test LLMGOV_TEST_S3_SECRET_KEY=llmgov-test-secret
    # Our own server from an earlier run is restarted on an empty directory: its state
    # grows with every run, and a half-written object from a killed test once made every
    # listing of the bucket fail with 500.
    if pkill -f "^$bin " 2>/dev/null; then
        log "restarting s3s-fs with an empty data directory"
        for _ in $(seq 1 50); do
            (exec 3<>/dev/tcp/127.0.0.1/9900) 2>/dev/null || break
            sleep 0.1
        done
    fi
    if ! (exec 3<>/dev/tcp/127.0.0.1/9900) 2>/dev/null; then
        local dir=${HOME:-/root}/.cache/llmgov-s3
        rm -rf "$dir/data"
        mkdir -p "$dir/data/$LLMGOV_TEST_S3_BUCKET"
        log "starting s3s-fs on 127.0.0.1:9900"
        nohup "$bin" --host 127.0.0.1 --port 9900 --access-key "$LLMGOV_TEST_S3_ACCESS_KEY" \
            --secret-key "$LLMGOV_TEST_S3_SECRET_KEY" "$dir/data" >"$dir/s3s.log" 2>&1 &
        wait_for 30 s3s-fs bash -c '(exec 3<>/dev/tcp/127.0.0.1/9900)'
    fi
}

# Node.js 20+ and npm for the web UI (this machine kind ships them; Debian's are too old
# for Vite, so a missing Node is an error with a hint, not an install).
node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
        [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

# Installs the UI's npm packages (from package-lock.json) when they are missing or stale.
ensure_web_deps() {
    if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
        log "installing the web UI's npm packages"
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# Builds the web UI into web/build (type-checked against the OpenAPI document first).
build_web() {
    if ! node_ok; then
        log "Node.js 20+ and npm are needed to build the web UI; the server will say so at /"
        return 1
    fi
    ensure_web_deps
    log "building the web UI"
    (cd web && npm run build --silent >/dev/null)
}

# Chromium from Debian for the end-to-end tests (never a browser downloaded by Playwright).
ensure_chromium() {
    if [ ! -x /usr/bin/chromium ]; then
        apt_install chromium
    fi
}
