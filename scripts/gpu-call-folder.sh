# Sourced by the device-call scripts: a call brings back at most 8 files from $OUT, so each script
# writes into a fresh work folder that is packed into one archive in $OUT when it exits.
# Usage: source scripts/gpu-call-folder.sh; call_folder /tmp/NAME-out NAME.tgz  (sets WORK, FINAL)
call_folder() {
  FINAL=${OUT:-$PWD/out}
  WORK=$1
  CALL_ARCHIVE=$2
  rm -rf "$WORK"
  mkdir -p "$WORK" "$FINAL"
  export PATH=/usr/local/cuda/bin:$PATH
  trap 'tar czf "$FINAL/$CALL_ARCHIVE" -C "$WORK" .' EXIT
}
