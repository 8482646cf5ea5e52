#!/usr/bin/env bash
# Vigil demo: a software TPM "manufactured" with an EK certificate from a local CA, an
# attester and a verifier on this machine. The node is registered (EK certificate chain +
# credential activation) over mutual TLS, challenged, appraised against a baseline captured
# from it, and the signed verdict printed and checked; then a
# second TPM claims to be the same node and is refused; then the verdict history is printed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=setup.sh
source tests/scripts/setup.sh
vigil_setup
export TSS2_LOG="${TSS2_LOG:-all+none}"

echo "==> building vigil and vigil-attester"
cargo build --workspace --bins --quiet
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug"

work="$(mktemp -d -t vigil-demo.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Manufacture a TPM: swtpm_setup writes an EK certificate issued by a local CA in $work/ca.
manufacture_tpm() {  # $1: state dir
  local state="$1"
  mkdir -p "$state" "$work/ca"
  cat >"$work/ca/localca.conf" <<CONF
statedir = $work/ca
signingkey = $work/ca/signkey.pem
issuercert = $work/ca/issuercert.pem
certserial = $work/ca/certserial
CONF
  printf -- '--platform-manufacturer Vigil-demo\n--platform-version 1.0\n--platform-model demo\n' >"$work/ca/localca.options"
  cat >"$state.setup.conf" <<CONF
create_certs_tool = swtpm_localca
create_certs_tool_config = $work/ca/localca.conf
create_certs_tool_options = $work/ca/localca.options
active_pcr_banks = sha1,sha256
CONF
  swtpm_setup --tpm2 --tpmstate "$state" --create-ek-cert --lock-nvram --overwrite \
    --config "$state.setup.conf" --logfile "$state.setup.log" >/dev/null
}

# Helpers set globals instead of printing: a $(...) subshell would lose the started
# process ids and run the EXIT trap early.
start_swtpm() {  # $1: state dir; sets tpm_port
  local state="$1" port
  mkdir -p "$state"
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" && port_free $((port + 1)) || continue
    swtpm socket --tpm2 --tpmstate "dir=$state" \
      --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
      --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
      --flags not-need-init,startup-clear --log "file=$state/swtpm.log" &
    pids+=($!)
    for _ in $(seq 1 200); do
      port_free "$port" || { tpm_port="$port"; return 0; }
      sleep 0.02
    done
  done
  echo "could not start swtpm" >&2
  return 1
}

wait_listening() {  # $1: log file; sets address to the address the server printed
  for _ in $(seq 1 500); do
    if grep -q " listening on " "$1" 2>/dev/null; then
      address="$(sed -n 's/.* listening on \([^ ]*\).*/\1/p' "$1" | head -n 1)"
      return 0
    fi
    sleep 0.02
  done
  echo "server did not start; its log:" >&2
  cat "$1" >&2
  return 1
}

echo "==> manufacturing a software TPM with an EK certificate from a local CA (swtpm_setup)"
manufacture_tpm "$work/tpm"
mkdir -p "$work/trust"
cp "$work/ca/swtpm-localca-rootca-cert.pem" "$work/ca/issuercert.pem" "$work/trust/"
echo "    the local CA plays the TPM vendor: its certificates are the verifier's EK trust roots"
start_swtpm "$work/tpm"
echo "    swtpm on 127.0.0.1:$tpm_port (control $((tpm_port + 1)))"

echo "==> vigil dev-certs: a local CA and one client certificate per role (mutual TLS, no --dev)"
"$bin/vigil" dev-certs "$work/certs" >/dev/null
certs="$work/certs"
echo "    $certs: ca.pem, server.pem, admin.pem, orchestrator.pem, auditor.pem, attester.pem, verifier.pem"

echo "==> starting vigil-attester (creates and persists an ECC P-256 AK; only the verifier's certificate may ask it for evidence)"
"$bin/vigil-attester" serve --listen 127.0.0.1:0 --tcti "swtpm:host=127.0.0.1,port=$tpm_port" \
  --state-dir "$work/attester" --node-id demo-gpu-host --tls-dir "$certs" >"$work/attester.log" 2>&1 &
pids+=($!)
wait_listening "$work/attester.log"
attester="$address"
echo "    attester on $attester"

echo "==> starting the verifier (vigil serve, mutual TLS, embedded SQLite at $work/vigil.db)"
"$bin/vigil" serve --listen 127.0.0.1:0 --db "$work/vigil.db" --ek-roots "$work/trust" \
  --tls-dir "$certs" >"$work/vigil.log" 2>&1 &
pids+=($!)
wait_listening "$work/vigil.log"
verifier="https://$address"
echo "    verifier on $verifier"

v() { "$bin/vigil" "$@" --verifier "$verifier" --tls-dir "$certs"; }

echo
echo "==> vigil node register $attester --group demo (as admin: EK certificate chain, then credential activation)"
"$bin/vigil" node register "$attester" --group demo --verifier "$verifier" --tls-dir "$certs" \
  && status=0 || status=$?
echo "    exit code $status"

echo
echo "==> vigil verify (as orchestrator): no baseline is assigned to group demo yet, so it is denied"
v verify --node "$attester" --json >"$work/first.json" && status=0 || status=$?
grep -o 'no baseline is assigned to group[^(]*' "$work/first.json" | head -n 1 | sed 's/\\//g' || true
echo "    exit code $status (0 = pass, 1 = fail, 2 = error)"

echo
echo "==> vigil baseline capture: learn a baseline from this (golden) node's verified claims"
"$bin/vigil" baseline capture --evidence "$work/first.json" --name demo-hosts --out "$work/demo-hosts.toml"
sed -n '1,40p' "$work/demo-hosts.toml"

echo
echo "==> vigil baseline put + assign (as admin): a new immutable version, then group demo uses it"
v baseline put "$work/demo-hosts.toml" --author demo-operator --reason "captured from the golden node"
v baseline assign demo demo-hosts --author demo-operator --reason "first rollout"

echo
echo "==> vigil verify --node $attester: appraised against the baseline, signed result"
v verify --node "$attester" && status=0 || status=$?
echo "    exit code $status (0 = pass, 1 = fail, 2 = error)"
v verify --node "$attester" --json >"$work/second.json" || true
sed -n 's/.*"result_token": "\([^"]*\)".*/\1/p' "$work/second.json" | head -n 1 >"$work/result.jwt"

echo
echo "==> vigil result verify: the signed EAR checked offline with the verifier's published keys"
v keys jwks >"$work/jwks.json"
"$bin/vigil" result verify "@$work/result.jwt" --jwks "$work/jwks.json" && status=0 || status=$?
echo "    exit code $status"

echo
echo "==> an impostor: another genuine TPM (same vendor CA) claims to be demo-gpu-host"
manufacture_tpm "$work/tpm2"
start_swtpm "$work/tpm2"
tpm2_port="$tpm_port"
"$bin/vigil-attester" serve --listen 127.0.0.1:0 --tcti "swtpm:host=127.0.0.1,port=$tpm2_port" \
  --state-dir "$work/impostor" --node-id demo-gpu-host --tls-dir "$certs" >"$work/impostor.log" 2>&1 &
pids+=($!)
wait_listening "$work/impostor.log"
impostor="$address"
v verify --node "$impostor" && status=0 || status=$?
echo "    exit code $status (0 = pass, 1 = fail, 2 = error)"

echo
echo "==> roles: an attester certificate may not change baselines"
"$bin/vigil" baseline put "$work/demo-hosts.toml" --author x --reason y --verifier "$verifier" \
  --tls-dir "$certs" --as attester && status=0 || status=$?
echo "    exit code $status (refused)"

echo
echo "==> nodes (vigil nodes)"
"$bin/vigil" nodes --db "$work/vigil.db"

echo
echo "==> audit trail (vigil audit list): every registration, baseline change and verdict, in a Merkle log"
"$bin/vigil" audit list --db "$work/vigil.db"

echo
echo "==> vigil audit verify --key \"\$(vigil audit key)\": recompute the tree, check the signed checkpoints"
"$bin/vigil" audit verify --db "$work/vigil.db" --key "$("$bin/vigil" audit key --db "$work/vigil.db")"
