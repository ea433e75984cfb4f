#!/usr/bin/env bash
# The quick start: an embedded registry, a small model, and a round trip
# through it. Needs nothing but the modelattest binary given as $1.
set -euo pipefail

ma=${1:?usage: demo.sh PATH/TO/modelattest}
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
head -c $((8 * 1024 * 1024)) /dev/urandom >"$model/model.safetensors"
printf '{"architectures":["TinyForCausalLM"],"hidden_size":64}\n' >"$model/config.json"
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

step "Pulling it back (every blob checked before it lands)"
"$ma" pull --plain-http "$host/models/tiny-llm:v1" -o "$work/pulled" --insecure-skip-verify --no-progress

step "Comparing"
diff -r "$model" "$work/pulled"
echo "The pulled files are identical to the originals."
