#!/usr/bin/env bash
# The end-to-end example on the embedded defaults (SQLite ledger, local keys). It covers what
# the toolkit does today: content digests and manifests, signed dataset attestations in a
# hash-chained ledger, and the refusals that follow tampering with either. The policy-driven
# verifier and the train/load gates join this script as those parts land.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/demo-workdir"
rm -rf "$work"
mkdir -p "$work/pipeline"
cd "$work/pipeline"
unset PROVENANCE_KEY_PASSPHRASE

step() { printf '\n== %s\n' "$*"; }
expect() {  # expect CODE COMMAND...: run a command that must exit with CODE
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  if [ "$got" -ne "$want" ]; then
    echo "demo: expected exit code $want from '$*', got $got" >&2
    exit 1
  fi
}

step "Create a project: ledger, a P-256 key pair, a starter policy"
provenance init

step "Generate a small labelled dataset (CSV shards, one empty split directory)"
python "$root/examples/make_dataset.py" data

step "Attest it: hash into a manifest, sign a dataset statement, record both in the ledger"
provenance dataset add data --name digits-train \
  --source https://example.org/digits.tar --license CC0-1.0
provenance manifest data -o data.manifest.json
provenance log

step "What the ledger says about this directory"
provenance show data

step "Verify it under the project's policy: TRUSTED (exit 0)"
provenance verify data --policy .provenance/policy.yaml

step "The ledger's hash chain is intact"
provenance ledger check

step "Tamper with one training file (flip a label)"
sed -i '2{s/,0$/,X/;s/,1$/,0/;s/,X$/,1/}' data/train/shard-000.csv

step "Its digest no longer matches: no attestation names it (exit 1)"
expect 1 provenance show data

step "The verifier refuses it and names the changed file (exit 1)"
expect 1 provenance verify data --policy .provenance/policy.yaml

step "The manifest diff names it too (exit 1)"
expect 1 provenance manifest diff data.manifest.json data

step "Tamper with the ledger itself: rewrite who signed entry 1"
python - <<'PY'
import sqlite3
db = sqlite3.connect(".provenance/ledger.db", isolation_level=None)
db.execute("DROP TRIGGER entries_no_update")  # the guard an attacker with file access removes
db.execute("UPDATE entries SET signer = 'key:someone-else' WHERE seq = 1")
PY
expect 1 provenance ledger check

step "Export the chain and import it elsewhere: only a trusted key's bundles are accepted"
chain="$work/chain.jsonl"
provenance ledger export -o "$chain"
mkdir -p "$work/auditor" && cd "$work/auditor"
provenance init --no-key
expect 1 provenance ledger import "$chain"
provenance ledger import "$chain" --trust-key "$work/pipeline/.provenance/keys/default.pub"
provenance ledger check

step "Or verify the original dataset from the exported chain alone, with no ledger at all"
# The manifest file's sha256 is the dataset's root digest: the artifact, named by content.
provenance verify "sha256:$(sha256sum "$work/pipeline/data.manifest.json" | cut -d' ' -f1)" \
  --policy "$work/pipeline/.provenance/policy.yaml" --bundle "$chain"

step "Done"
echo "Tampered data and a tampered ledger were both caught, and the chain verified offline"
echo "from a portable export. The train/load gates that refuse a broken chain come next."
