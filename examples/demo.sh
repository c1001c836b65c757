#!/usr/bin/env bash
# The end-to-end example on the embedded defaults (SQLite ledger, local keys): a digits
# classifier trained on a signed dataset under 'provenance run', signed in the OpenSSF model
# signing format, loaded through the guard -- and the refusals that follow tampering with the
# training data, the checkpoint or the ledger.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/demo-workdir"
rm -rf "$work"
mkdir -p "$work/pipeline"
cd "$work/pipeline"
unset PROVENANCE_KEY_PASSPHRASE
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.org
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.org
policy=.provenance/policy.yaml

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

step "The training code, committed to git (training provenance records the commit)"
cp "$root"/examples/digits/{model,train,evaluate}.py .
printf 'data/\n*.pt\n__pycache__/\n' > .gitignore
git init -q && git add -A && git commit -q -m "digits classifier"
git log --oneline

step "Ingest: scikit-learn's bundled digits, one .npy file per sample"
python "$root/examples/digits/prepare.py" data
find data -type f | sort | sed -n 1,3p; echo "... $(find data -type f | wc -l) files"

step "Attest it: hash into a manifest, sign a dataset statement, record both in the ledger"
provenance dataset add data --name digits --source sklearn:load_digits --license CC-BY-4.0
provenance manifest data -o "$work/data.manifest.json"

step "Verify the dataset under the project's policy: TRUSTED (exit 0)"
provenance verify data --policy "$policy"

step "Describe the training environment: a reproducible SBOM (its digest names the environment)"
provenance env sbom -o "$work/sbom.json"

step "Check every installed file against its RECORD, and look for planted .pth files"
provenance env check

step "Audit it for known vulnerabilities (offline: recorded real OSV advisories stand in)"
provenance env audit --osv-db "$root/tests/fixtures/osv"

step "Screen it before anything trains on it: schema, duplicates, outliers, label issues"
provenance screen data --schema "$root/examples/digits/schema.yaml" --label-issues

step "Train under 'provenance run': materials verified first, SLSA provenance signed after"
provenance run --policy "$policy" --material data --product model.pt --name train -- \
  python train.py --data data --policy "$policy" --out model.pt

step "The model's chain: training provenance, clean source, the dataset and the environment"
provenance verify model.pt --policy "$policy"

step "Sign the checkpoint in the OpenSSF model signing (OMS) format, and verify it"
provenance model sign model.pt --key .provenance/keys/default.key --signature model.pt.sig
provenance model verify model.pt --signature model.pt.sig \
  --public-key .provenance/keys/default.pub

step "Load it through the guard (verify, static pickle scan, weights_only) and evaluate"
python evaluate.py model.pt --data data --policy "$policy"

step "The evaluation gate: metrics on the attested test split and a backdoor probe, signed"
provenance evaluate model.pt --data data --split test --loader model:load \
  --model-name digits-mlp --policy "$policy"

step "Under policies/strict.yaml: screening, evaluation and a fresh clean audit are required too"
sed "s|key: keys/project.pub .*|key: $PWD/.provenance/keys/default.pub|" \
  "$root/policies/strict.yaml" > "$work/strict.yaml"
# Offline, the audit's advisory data is the recorded 2018 advisories: strict.yaml refuses it as
# stale (it wants data at most 30 days older than the audit). Every other requirement holds.
expect 1 provenance verify model.pt --policy "$work/strict.yaml"

step "The ledger's hash chain is intact"
provenance ledger check

step "Swap the checkpoint for a malicious one (a payload in a real torch.save zip)"
cp model.pt model.good.pt
python "$root/examples/digits/malicious_checkpoint.py" model.pt "$work/PWNED"
expect 1 provenance scan model.pt

step "Loading it is refused before anything in it is unpickled: no chain names it (exit 1)"
expect 1 python evaluate.py model.pt --data data --policy "$policy"

step "Even if an insider signs provenance for it, the static scan refuses it (exit 1)"
cp -a "$work/pipeline" "$work/insider" && cd "$work/insider"
cat > "$work/insider.json" <<JSON
{"buildDefinition": {"buildType": "https://ml-provenance.dev/buildtypes/training/v1",
  "externalParameters": {}, "resolvedDependencies": [{"name": "source",
  "digest": {"gitCommit": "$(git rev-parse HEAD)"},
  "annotations": {"role": "source", "dirty": false}}]}, "runDetails": {}}
JSON
provenance attest model.pt --predicate-type https://slsa.dev/provenance/v1 \
  --predicate "$work/insider.json" --name model.pt
expect 1 python evaluate.py model.pt --data data --policy "$policy"
test ! -e "$work/PWNED" && echo "the payload never ran: $work/PWNED does not exist"
cd "$work/pipeline" && mv model.good.pt model.pt

step "Tamper with one training file (relabel a sample as another digit)"
victim=$(find data/train/3 -name '*.npy' | sort | sed -n 1p)
mv "$victim" "data/train/8/$(basename "$victim")"

step "Training on it is refused before the command starts (exit 1), naming the change"
expect 1 provenance run --policy "$policy" --material data --product model-2.pt -- \
  python train.py --data data --policy "$policy" --out model-2.pt
test ! -e model-2.pt && echo "no training ran: model-2.pt does not exist"
expect 1 provenance verify data --policy "$policy"
mv "data/train/8/$(basename "$victim")" "$victim"  # put it back

step "Tamper with a copy of the ledger: rewrite who signed entry 1"
cp -a "$work/pipeline" "$work/tampered" && cd "$work/tampered"
python - <<'PY'
import sqlite3
db = sqlite3.connect(".provenance/ledger.db", isolation_level=None)
db.execute("DROP TRIGGER entries_no_update")  # the guard an attacker with file access removes
db.execute("UPDATE entries SET signer = 'key:someone-else' WHERE seq = 1")
PY
expect 1 provenance ledger check
cd "$work/pipeline"

step "Release: the model's whole chain in one file, verified before it is written"
release="$work/model.provenance.jsonl"
provenance release model.pt -o "$release" --policy "$policy"

step "An auditor with no ledger verifies the model from the release alone"
mkdir -p "$work/auditor"
cp model.pt "$release" "$policy" "$work/auditor/"
cp .provenance/keys/default.pub "$work/auditor/"
sed -i 's|key: keys/default.pub|key: default.pub|' "$work/auditor/policy.yaml"
(cd "$work/auditor" && provenance verify model.pt --policy policy.yaml \
  --bundle model.provenance.jsonl)

step "Importing the release elsewhere accepts only a trusted key's bundles"
mkdir -p "$work/importer" && cd "$work/importer"
provenance init --no-key
expect 1 provenance ledger import "$release"
provenance ledger import "$release" --trust-key "$work/pipeline/.provenance/keys/default.pub"
provenance ledger check
cd "$work/pipeline"

step "The lineage, and an audit report an auditor can open offline"
provenance show model.pt --tree --policy "$policy"
provenance audit model.pt --policy "$policy" --html "$work/audit.html"

step "Done"
echo "The model was trained only on verified data, evaluated, released and loaded only after"
echo "its chain verified; a malicious checkpoint, a tampered training file and a tampered"
echo "ledger were each refused. Release: $release; audit report: $work/audit.html"
