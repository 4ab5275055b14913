# shellcheck shell=bash
# Task 8 of scripts/bench.sh, sourced by it (`scripts/bench.sh --only remote-cache` runs it
# alone): the remote cache. Machine A builds the whole corpus cold with an empty local cache and
# an empty remote, filling the remote; machine B, with an empty local cache of its own, builds the
# same sources from it. Once against nginx with WebDAV PUT (a Bazel HTTP cache), once against
# SeaweedFS (S3); both on 127.0.0.1, started for these tasks and stopped after them.
#
# Uses bench.sh's WORK, OUTS, CORPUS, KILN, RESULT, measure, row, ratio and log, and deploy.sh's
# weed_start, weed_stop, new_bucket and DEPLOY_ENV.

NGINX_PID=
RC_PORT=

rc_nginx_start() {
  [ -x /usr/sbin/nginx ] || { source scripts/lib/deps.sh; apt_install nginx; }
  local dir=$WORK/rc-nginx
  rm -rf "$dir" && mkdir -p "$dir/logs" "$dir/root/cache"
  RC_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $dir/body;
    server {
        listen 127.0.0.1:$RC_PORT;
        location /cache/ {
            root $dir/root;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }
    }
}
CONF
  /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" </dev/null >/dev/null 2>&1 &
  NGINX_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$RC_PORT/" && return 0
    sleep 0.1
  done
  log "nginx did not start: $(tail -5 "$dir/logs/error.log")"
  exit 1
}

rc_nginx_stop() {
  [ -n "$NGINX_PID" ] || return 0
  kill "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=
}

# rc_config NAME REMOTE_KEYS: $WORK/kiln-rc-NAME.toml, the whole build with its own local cache.
rc_config() {
  printf 'src = "%s"\n[cache]\ndir = "%s"\n%s\n' "$CORPUS" "$WORK/rc-cache-$1" "$2" > "$WORK/kiln-rc-$1.toml"
}

# rc_pair BACKEND REMOTE_KEYS RESET: measures rc.BACKEND-a (cold, filling an empty remote; RESET
# empties the remote) and rc.BACKEND-b (another empty local cache, the remote as A left it).
rc_pair() {
  local backend=$1 keys=$2
  RC_RESET=$3
  rc_config a "$keys"
  rc_config b "$keys"
  # shellcheck disable=SC2317 # prep is called by measure
  prep() { set_aside "$OUTS/kiln-rc-a" "$WORK/rc-cache-a"; $RC_RESET; }
  measure "rc.$backend-a" "${DEPLOY_ENV[@]}" "$KILN" build --config "$WORK/kiln-rc-a.toml" --out "$OUTS/kiln-rc-a"
  log "$(grep -F '(cache: ' "$WORK/stderr.txt")"
  # shellcheck disable=SC2317
  prep() { set_aside "$OUTS/kiln-rc-b" "$WORK/rc-cache-b"; }
  measure "rc.$backend-b" "${DEPLOY_ENV[@]}" "$KILN" build --config "$WORK/kiln-rc-b.toml" --out "$OUTS/kiln-rc-b"
  local summary
  summary=$(grep -F '(cache: ' "$WORK/stderr.txt")
  log "$summary"
  RC_B_SUMMARY[$backend]="(cache: ${summary#*(cache: }"
  if diff -r -x .kiln-builds.json "$OUTS/kiln-rc-a" "$OUTS/kiln-rc-b" >/dev/null; then
    RC_SAME[$backend]=yes
  else
    RC_SAME[$backend]=no
  fi
}

declare -A RC_B_SUMMARY RC_SAME
remote_tasks() {
  command -v curl >/dev/null || { source scripts/lib/deps.sh; apt_install curl; }
  # The same cold build without a remote, in this run, for A's overhead.
  rc_config none ""
  # shellcheck disable=SC2317 # prep is called by measure
  prep() { set_aside "$OUTS/kiln-rc-none" "$WORK/rc-cache-none"; }
  measure rc.none "$KILN" build -q --config "$WORK/kiln-rc-none.toml" --out "$OUTS/kiln-rc-none"
  rc_nginx_start
  # shellcheck disable=SC2317
  rc_nginx_reset() { rm -rf "$WORK/rc-nginx/root/cache"; mkdir -p "$WORK/rc-nginx/root/cache"; }
  rc_pair http "remote = \"http://127.0.0.1:$RC_PORT/cache\"" rc_nginx_reset
  rc_nginx_stop

  weed_start
  RC_BUCKET_N=0
  # shellcheck disable=SC2317
  rc_s3_reset() {
    RC_BUCKET_N=$((RC_BUCKET_N + 1)); new_bucket "kiln-rc-$RC_BUCKET_N"
    rc_config a "remote = \"s3://kiln-rc-$RC_BUCKET_N/cache\"
remote_endpoint = \"http://127.0.0.1:$WEED_S3\""
    rc_config b "remote = \"s3://kiln-rc-$RC_BUCKET_N/cache\"
remote_endpoint = \"http://127.0.0.1:$WEED_S3\""
  }
  rc_pair s3 "" rc_s3_reset
  weed_stop
}

remote_rows() {
  row "whole build, cold, no remote cache (for comparison)" "kiln" "$TOTAL_FILES" rc.none -
  row "whole build, cold, filling an empty remote cache (nginx WebDAV)" "kiln, machine A" "$TOTAL_FILES" rc.http-a -
  row "whole build, empty local cache, from that remote cache" "kiln, machine B" "$TOTAL_FILES" rc.http-b -
  row "whole build, cold, filling an empty remote cache (S3, SeaweedFS)" "kiln, machine A" "$TOTAL_FILES" rc.s3-a -
  row "whole build, empty local cache, from that remote cache" "kiln, machine B" "$TOTAL_FILES" rc.s3-b -
}

remote_summary() {
  echo "Remote cache: machine B builds in $(ratio2 rc.http-b rc.http-a) of machine A's time with nginx" \
       "WebDAV and $(ratio2 rc.s3-b rc.s3-a) with S3 (SeaweedFS); B's output is byte-identical to A's:" \
       "${RC_SAME[http]} (nginx), ${RC_SAME[s3]} (S3). B's cache counts, nginx: ${RC_B_SUMMARY[http]};" \
       "S3: ${RC_B_SUMMARY[s3]}. Machine A's cold build took $(ratio2 rc.http-a rc.none) (nginx) and" \
       "$(ratio2 rc.s3-a rc.none) (S3) of the same build without a remote."
}
