#!/usr/bin/env bash
# CI retraining with loraplane: upload the dataset, fine-tune with --wait, evaluate the new adapter version against
# what the alias serves now, and roll it out only if the promotion gate passes. Any failure fails the build with a
# readable log; the comparison table goes to the job summary either way. Used by .github/workflows/retrain.yml and,
# unchanged, by test/e2e/ci-retrain.e2e.spec.ts.
#
# Environment (required): LORAPLANE_URL, LORAPLANE_API_KEY, TRAIN_FILE, EVAL_FILE, BASE_MODEL, POOL, ADAPTER
# Optional: EPOCHS (default: the model's "auto" rule), SCORER (exact_match), MIN_MARGIN (0: at least as good as production), LORAPLANE (the CLI command,
#           default `npx --no-install loraplane`), SUMMARY_FILE (default $GITHUB_STEP_SUMMARY, else stderr),
#           REASON (default "CI retrain ${GITHUB_SHA:-manual}")
# Exit codes are the CLI's: 2 bad input, 3 the job failed, 4 the gate was not met, 5 the server is unreachable.
set -euo pipefail

: "${TRAIN_FILE:?}" "${EVAL_FILE:?}" "${BASE_MODEL:?}" "${POOL:?}" "${ADAPTER:?}"
SCORER="${SCORER:-exact_match}"
MIN_MARGIN="${MIN_MARGIN:-0}"
SUMMARY_FILE="${SUMMARY_FILE:-${GITHUB_STEP_SUMMARY:-/dev/stderr}}"
REASON="${REASON:-CI retrain ${GITHUB_SHA:-manual}}"
read -r -a LP <<< "${LORAPLANE:-npx --no-install loraplane}"

lp() { "${LP[@]}" "$@"; }
# Reads one field (a.b.c) of the JSON on stdin.
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v?.[k];process.stdout.write(v===undefined||v===null?"":String(v))})' "$1"; }
step() { echo "==> $*" >&2; }
summary() { printf '%s\n' "$@" >> "$SUMMARY_FILE"; }

step "validate $TRAIN_FILE and $EVAL_FILE"
lp datasets validate "$TRAIN_FILE"
lp datasets validate "$EVAL_FILE" --format eval

step "upload"
train_id=$(lp --json datasets upload "$TRAIN_FILE" | field id)
eval_id=$(lp --json datasets upload "$EVAL_FILE" --format eval | field id)

step "fine-tune $BASE_MODEL on $train_id"
job_json=$(lp --json jobs create --model "$BASE_MODEL" --training-file "$train_id" --suffix "$ADAPTER" ${EPOCHS:+--epochs "$EPOCHS"} --wait)
job_id=$(field id <<< "$job_json")
version=$(lp --json adapters register "$ADAPTER" --job "$job_id" | field version)
echo "trained $ADAPTER@v$version ($job_id)" >&2

step "deploy $ADAPTER@v$version to $POOL (immutable name; the alias does not move yet)"
lp adapters deploy "$POOL" "$ADAPTER" "$version" > /dev/null

if ! current=$(lp --json adapters status "$POOL" "$ADAPTER" 2>/dev/null | field version) || [ -z "$current" ]; then
  step "first release: no alias yet, rolling out v$version"
  lp adapters rollout "$POOL" "$ADAPTER" "$version" --reason "$REASON (first release)"
  summary "### $ADAPTER@v$version" "" "First release on \`$POOL\`: no production version to compare with."
  exit 0
fi

step "evaluate v$version against production (v$current) on $eval_id"
candidate="$ADAPTER-v$version"
production="$ADAPTER-production"
lp evals targets create "$candidate" --kind adapter --pool "$POOL" --adapter "$ADAPTER" --version "$version" > /dev/null
lp evals targets get "$production" > /dev/null 2>&1 || lp evals targets create "$production" --kind adapter --pool "$POOL" --adapter "$ADAPTER" > /dev/null
suite=$(lp --json evals suites create "$ADAPTER-v$version-eval" --dataset "$eval_id" --scorer "$SCORER" | field id)
lp adapters gate "$POOL" "$ADAPTER" --suite "$suite" --baseline "$production" --min-margin "$MIN_MARGIN" > /dev/null
run=$(lp --json evals run --suite "$suite" --target "$candidate" --target "$production" --baseline "$production" --wait | field id)
summary "### $ADAPTER@v$version vs production (v$current) on \`$POOL\`" ""
lp evals report "$run" --format md >> "$SUMMARY_FILE"

step "roll out v$version (the promotion gate decides)"
set +e
lp adapters rollout "$POOL" "$ADAPTER" "$version" --reason "$REASON"
code=$?
set -e
if [ "$code" -eq 4 ]; then
  summary "" "**Not promoted**: v$version did not beat production by $MIN_MARGIN on $suite; production stays on v$current."
elif [ "$code" -eq 0 ]; then
  summary "" "**Promoted**: the alias \`$ADAPTER\` now serves v$version on \`$POOL\`."
fi
exit "$code"
