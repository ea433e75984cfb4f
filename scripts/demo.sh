#!/usr/bin/env bash
# The quick start: an embedded registry, a small model, and a round trip
# through it. Needs the modelattest binary given as $1 (and openssl for the
# key-release step).
set -euo pipefail

ma=${1:?usage: demo.sh PATH/TO/modelattest}
# Say so at once rather than after most of the demo has run.
command -v openssl >/dev/null || { echo "make demo needs openssl for its key-release step (Debian: apt-get install openssl)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting the embedded OCI 1.1 registry"
"$ma" registry serve --address 127.0.0.1:0 --root "$work/registry" --log-level warn >"$work/registry.out" 2>"$work/registry.log" &
reg_pid=$!
for _ in $(seq 100); do
  grep -q Serving "$work/registry.out" 2>/dev/null && break
  sleep 0.1
done
cat "$work/registry.out"
host=$(sed -n 's#.*http://\([^ ]*\).*#\1#p' "$work/registry.out")
[ -n "$host" ] || { echo "registry did not start"; cat "$work/registry.log"; exit 1; }

step "Making a small model"
model="$work/tiny-llm"
mkdir -p "$model/tokenizer"
# A real safetensors file: an 8-byte little-endian header length (96), the
# JSON header (padded with spaces, as the format allows), then the weights.
header='{"weight":{"dtype":"BF16","shape":[2048,2048],"data_offsets":[0,8388608]}}'
{ printf '\140\0\0\0\0\0\0\0'; printf '%-96s' "$header"; head -c $((8 * 1024 * 1024)) /dev/urandom; } >"$model/model.safetensors"
printf '{"model_type":"tiny","architectures":["TinyForCausalLM"],"torch_dtype":"bfloat16","hidden_size":64}\n' >"$model/config.json"
printf '{"version":"1.0"}\n' >"$model/tokenizer/tokenizer.json"
printf '# tiny-llm\nA model made up for the demo.\n' >"$model/README.md"
printf 'Apache-2.0\n' >"$model/LICENSE"
find "$model" -type f | sed "s#$work/##"

export SOURCE_DATE_EPOCH=1767225600 # 2026-01-01: the same directory packs to the same digest

step "Packing it into an OCI layout (twice: the digest is reproducible)"
"$ma" pack "$model" -o "$work/layout:v1" --name tiny-llm --version 1.0 --license Apache-2.0 --no-progress
"$ma" pack "$model" -o "$work/layout2:v1" --name tiny-llm --version 1.0 --license Apache-2.0 --no-progress

step "Pushing it to the registry (each file read once, hashed while it uploads)"
"$ma" push --plain-http "$host/models/tiny-llm:v1" "$model" --name tiny-llm --version 1.0 --license Apache-2.0 --no-progress

step "Inspecting it"
"$ma" inspect --plain-http "$host/models/tiny-llm:v1"

step "Signing it and attesting how it was built (referrers in cosign's format)"
export COSIGN_PASSWORD=demo
"$ma" keygen --output-key-prefix "$work/release"
ref="$host/models/tiny-llm:v1"
"$ma" sign --plain-http --key "$work/release.key" "$ref"
"$ma" attest --plain-http --key "$work/release.key" --type slsaprovenance1 \
  --builder-id https://ci.example/trainer@v2 --build-type https://example/ml-train/v1 \
  --param recipe=configs/tiny.yaml \
  --dependency "uri=s3://datasets/approved/tiny-corpus,digest=sha256:$(printf corpus | sha256sum | cut -d' ' -f1)" "$ref"
"$ma" attest --plain-http --key "$work/release.key" --type model-signing "$ref"
"$ma" discover --plain-http "$ref"

step "Verifying it against a policy"
cat >"$work/policy.yaml" <<POLICY
version: 1
trust:
  release: {key: release.pub}
models:
  - match: ["$host/models/**"]
    signatures: {signers: [release]}
    attestations:
      - predicateType: slsaprovenance1
        signers: [release]
        slsa:
          builderIDs: ["https://ci.example/trainer@v2"]
          dependencies: [{uriPrefix: "s3://datasets/approved/"}]
      - predicateType: model-signing
        signers: [release]
  - match: ["**"]
    reject: true
POLICY
"$ma" verify --plain-http --policy "$work/policy.yaml" "$ref"

step "An unsigned model under another tag is refused (exit 3)"
echo "not the approved weights" >"$model/README.md"
"$ma" push --plain-http "$host/models/tiny-llm:v2" "$model" --no-progress >/dev/null
set +e
"$ma" verify --plain-http --policy "$work/policy.yaml" "$host/models/tiny-llm:v2" >/dev/null 2>"$work/refused.txt"
code=$?
set -e
tail -n 1 "$work/refused.txt"
[ "$code" = 3 ] || { echo "expected exit 3, got $code"; exit 1; }
restore_readme() { printf '# tiny-llm\nA model made up for the demo.\n' >"$model/README.md"; }
restore_readme

step "Verified pull: the policy is checked, then that digest is pulled, every blob checked before it lands"
"$ma" pull --plain-http --policy "$work/policy.yaml" "$ref" -o "$work/pulled" --no-progress

step "Comparing"
diff -r "$model" "$work/pulled"
echo "The pulled files are identical to the originals."

step "Runtime attestation — SIMULATED, INSECURE: a local ARK/ASK/VCEK chain, not AMD hardware"
# The simulated provider's fixed launch measurement (docs/RUNTIME.md).
measurement=$(printf '%s' 'modelattest simulated-snp launch (INSECURE)' | sha384sum | cut -d' ' -f1)
cp "$work/policy.yaml" "$work/runtime-policy.yaml"
cat >>"$work/runtime-policy.yaml" <<RUNTIME
runtime:
  measurements: ["$measurement"]
  debug_allowed: false
RUNTIME
nonce=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
"$ma" runtime load --plain-http "$ref" -o "$work/tee-model" --policy "$work/runtime-policy.yaml" --nonce "$nonce" \
  --evidence "$work/evidence.json" --tee simulated-snp --simulated-root "$work/simulated-root" 2>/dev/null
"$ma" runtime verify --plain-http "$work/evidence.json" --policy "$work/runtime-policy.yaml" --nonce "$nonce" \
  --tee-roots "$work/simulated-root/roots.pem"

step "The same evidence answering another nonce is refused (exit 3) — still SIMULATED"
set +e
"$ma" runtime verify --plain-http "$work/evidence.json" --policy "$work/runtime-policy.yaml" --nonce 00 \
  --tee-roots "$work/simulated-root/roots.pem" 2>/dev/null | grep FAIL
code=${PIPESTATUS[0]}
set -e
[ "$code" = 3 ] || { echo "expected exit 3, got $code"; exit 1; }

step "Key release for an encrypted model — SIMULATED, INSECURE evidence: the broker gives the key only to attested guests"
# The broker's key pair (openssl): layers are encrypted to the public half.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/broker.key" 2>/dev/null
openssl pkey -in "$work/broker.key" -pubout -out "$work/broker.pub"
secret="$host/models/tiny-llm:encrypted"
"$ma" push --plain-http "$secret" "$model" --name tiny-llm --version 1.0 --license Apache-2.0 --no-progress \
  --encrypt-recipient "jwe:$work/broker.pub" --model-signing --key "$work/release.key"
"$ma" sign --plain-http --key "$work/release.key" "$secret"
"$ma" attest --plain-http --key "$work/release.key" --type slsaprovenance1 \
  --builder-id https://ci.example/trainer@v2 --build-type https://example/ml-train/v1 --param recipe=configs/tiny.yaml \
  --dependency "uri=s3://datasets/approved/tiny-corpus,digest=sha256:$(printf corpus | sha256sum | cut -d' ' -f1)" "$secret"
"$ma" runtime broker serve --plain-http --address 127.0.0.1:0 --policy "$work/runtime-policy.yaml" --key "$work/broker.key" \
  --tee-roots "$work/simulated-root/roots.pem" --events "$work/broker-events.jsonl" 2>"$work/broker.log" &
broker_pid=$!
trap 'kill "$broker_pid" "$reg_pid" 2>/dev/null || true; wait "$broker_pid" "$reg_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  grep -q '"msg":"listening"' "$work/broker.log" 2>/dev/null && break
  sleep 0.1
done
broker=$(sed -n 's#.*"msg":"listening","address":"\([^"]*\)".*#\1#p' "$work/broker.log")
[ -n "$broker" ] || { echo "broker did not start"; cat "$work/broker.log"; exit 1; }
"$ma" runtime load --plain-http "$secret" -o "$work/tee-secret" --policy "$work/runtime-policy.yaml" --broker "http://$broker" \
  --evidence "$work/evidence-broker.json" --tee simulated-snp --simulated-root "$work/simulated-root" 2>&1 | grep -E 'WARNING|Broker|Loaded'
diff -r "$model" "$work/tee-secret"
echo "Decrypted with the released keys: identical to the originals. The broker's decision:"
sed -n 's#.*"message":"\([^"]*\)".*#  \1#p' "$work/broker-events.jsonl"
