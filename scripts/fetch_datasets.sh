#!/usr/bin/env bash
# Downloads GLUE SST-2 and the CIFAR-10 / CIFAR-100 binary versions, verifies them and unpacks
# them into the layout the loaders expect (see datasets/README.md):
#
#   TARGET/sst2/{train,dev,test}.tsv
#   TARGET/cifar10/{data_batch_1..5,test_batch}.bin, batches.meta.txt
#   TARGET/cifar100/{train,test}.bin, {fine,coarse}_label_names.txt
#   TARGET/cifar10-partial/...          the first 932 images of each CIFAR-10 batch (the
#                                       small-set regime `make reproduce` and `make smoke` use)
#   TARGET/text/austen.txt              six Jane Austen novels from Project Gutenberg, their
#                                       licence headers and footers cut (the text experiments)
#
# Usage: scripts/fetch_datasets.sh [TARGET_DIR] [sst2] [cifar10] [cifar100] [cifar10-partial] [austen]
#   TARGET_DIR defaults to ./data; with no dataset names, sst2, cifar10, cifar100,
#   cifar10-partial and austen are fetched. `make smoke` needs sst2, cifar10-partial, austen.
#   Then point the program at TARGET_DIR with the config's data root or LAYERCOLLAPSE_DATA.
#
# Checksums:
#   - CIFAR tarballs: the MD5s published by the dataset authors
#     (https://www.cs.toronto.edu/~kriz/cifar.html) are checked before unpacking.
#   - SST-2.zip: no checksum is published, and none is hard-coded here because we could not
#     verify one. On the first download the script computes its SHA-256 and records it in
#     TARGET_DIR/checksums.sha256 (trust on first use); later runs check against that record.
#     The SHA-256 of every archive is recorded the same way.
#
# Offline use: archives already in TARGET_DIR/downloads/ are used without the network, so on a
# machine without access you can copy SST-2.zip, cifar-10-binary.tar.gz and cifar-100-binary.tar.gz
# there and re-run.
#
# Exit status: 0 done; 1 bad usage, missing tool, or checksum mismatch; 2 network unreachable
# or download failed.
set -euo pipefail

SST2_URL="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
CIFAR10_URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR100_URL="https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
CIFAR10_MD5="c32a1d4ab5d03f1284b67883e8d87530"
CIFAR100_MD5="03b5dce01913d631647c71ecec9e9cb8"
# Project Gutenberg ebook numbers: Sense and Sensibility, Pride and Prejudice, Mansfield Park,
# Emma, Northanger Abbey, Persuasion (the order of publication).
AUSTEN_EBOOKS=(161 1342 141 158 121 105)
PARTIAL_IMAGES=932

die() {
  local code="$1"
  shift
  echo "fetch_datasets: error: $*" >&2
  exit "$code"
}
say() { echo "fetch_datasets: $*"; }

target="./data"
datasets=()
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    sst2 | cifar10 | cifar100 | cifar10-partial | austen) datasets+=("$arg") ;;
    -*) die 1 "unknown option '$arg'; usage: $0 [TARGET_DIR] [sst2] [cifar10] [cifar100] [cifar10-partial] [austen]" ;;
    *) target="$arg" ;;
  esac
done
[ ${#datasets[@]} -eq 0 ] && datasets=(sst2 cifar10 cifar100 cifar10-partial austen)

for tool in curl tar md5sum sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die 1 "'$tool' is required but not installed"
done

mkdir -p "$target/downloads" || die 1 "cannot create $target/downloads"
target="$(cd "$target" && pwd)"
downloads="$target/downloads"
record="$target/checksums.sha256"
touch "$record"
stage_dir=""
trap 'rm -rf "$downloads/.curl-error" ${stage_dir:+"$stage_dir"}' EXIT

# download URL FILE: fetch URL into downloads/FILE unless it is already there.
download() {
  local url="$1" file="$downloads/$2" host
  if [ -s "$file" ]; then
    say "using $file (already downloaded)"
    return 0
  fi
  host="$(echo "$url" | sed -E 's#^[a-z]+://([^/]+)/.*#\1#')"
  if ! curl -sS -o /dev/null --head --connect-timeout 10 --max-time 30 "$url" 2>"$downloads/.curl-error"; then
    die 2 "network unreachable: cannot reach $host to download $url ($(tail -n 1 "$downloads/.curl-error")). \
Check the connection, or copy $2 into $downloads/ by other means and re-run."
  fi
  say "downloading $url"
  if ! curl -fL --retry 2 --connect-timeout 15 -o "$file.part" "$url"; then
    rm -f "$file.part"
    die 2 "download of $url failed"
  fi
  mv "$file.part" "$file"
}

# verify_md5 FILE MD5
verify_md5() {
  local got
  got="$(md5sum "$downloads/$1" | cut -d' ' -f1)"
  [ "$got" = "$2" ] || die 1 "$downloads/$1: MD5 mismatch: expected $2 (published), got $got. Delete the file and re-run."
  say "$1: MD5 $got matches the published value"
}

# verify_recorded FILE: check the SHA-256 against checksums.sha256, recording it on first use.
verify_recorded() {
  local got recorded
  got="$(sha256sum "$downloads/$1" | cut -d' ' -f1)"
  recorded="$(awk -v f="$1" '$2 == f { print $1 }' "$record")"
  if [ -z "$recorded" ]; then
    echo "$got  $1" >>"$record"
    say "$1: SHA-256 $got recorded in $record (first download: trust on first use, not verified against a published value)"
  elif [ "$recorded" != "$got" ]; then
    die 1 "$downloads/$1: SHA-256 mismatch: expected $recorded (recorded in $record), got $got"
  else
    say "$1: SHA-256 matches $record"
  fi
}

# unpack ARCHIVE INNER_DIR DEST FILE...: extract into a staging directory and move FILEs from
# INNER_DIR into DEST, so an interrupted run never leaves a half-written DEST.
unpack() {
  local name="$1" archive="$downloads/$1" inner="$2" dest="$target/$3" stage
  shift 3
  stage="$(mktemp -d "$target/.unpack.XXXXXX")"
  stage_dir="$stage"
  case "$archive" in
    *.zip)
      if command -v unzip >/dev/null 2>&1; then
        unzip -q "$archive" -d "$stage" || die 1 "cannot unzip $archive"
      elif command -v python3 >/dev/null 2>&1; then
        python3 -m zipfile -e "$archive" "$stage" || die 1 "cannot unzip $archive"
      else
        die 1 "'unzip' (or python3) is required to unpack $archive"
      fi
      ;;
    *.tar.gz) tar -xzf "$archive" -C "$stage" || die 1 "cannot extract $archive" ;;
  esac
  mkdir -p "$dest"
  for f in "$@"; do
    [ -f "$stage/$inner/$f" ] || die 1 "$archive does not contain $inner/$f"
    mv "$stage/$inner/$f" "$dest/$f"
  done
  rm -rf "$stage"
  say "unpacked $name into $dest"
}

have_all() {
  local dir="$target/$1"
  shift
  for f in "$@"; do [ -f "$dir/$f" ] || return 1; done
  return 0
}

for name in "${datasets[@]}"; do
  case "$name" in
    sst2)
      files=(train.tsv dev.tsv test.tsv)
      if have_all sst2 "${files[@]}"; then say "sst2: already in $target/sst2"; continue; fi
      download "$SST2_URL" SST-2.zip
      verify_recorded SST-2.zip
      unpack SST-2.zip SST-2 sst2 "${files[@]}"
      ;;
    cifar10)
      files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin
        batches.meta.txt)
      if have_all cifar10 "${files[@]}"; then say "cifar10: already in $target/cifar10"; continue; fi
      download "$CIFAR10_URL" cifar-10-binary.tar.gz
      verify_md5 cifar-10-binary.tar.gz "$CIFAR10_MD5"
      verify_recorded cifar-10-binary.tar.gz
      unpack cifar-10-binary.tar.gz cifar-10-batches-bin cifar10 "${files[@]}"
      ;;
    cifar100)
      files=(train.bin test.bin fine_label_names.txt coarse_label_names.txt)
      if have_all cifar100 "${files[@]}"; then say "cifar100: already in $target/cifar100"; continue; fi
      download "$CIFAR100_URL" cifar-100-binary.tar.gz
      verify_md5 cifar-100-binary.tar.gz "$CIFAR100_MD5"
      verify_recorded cifar-100-binary.tar.gz
      unpack cifar-100-binary.tar.gz cifar-100-binary cifar100 "${files[@]}"
      ;;
    cifar10-partial)
      # The same binary format, PARTIAL_IMAGES records (1 label byte + 3,072 pixel bytes) a batch.
      files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)
      if have_all cifar10-partial "${files[@]}" batches.meta.txt; then
        say "cifar10-partial: already in $target/cifar10-partial"
        continue
      fi
      have_all cifar10 "${files[@]}" batches.meta.txt || "$0" "$target" cifar10
      stage="$(mktemp -d "$target/.partial.XXXXXX")"
      stage_dir="$stage"
      for f in "${files[@]}"; do head -c $((PARTIAL_IMAGES * 3073)) "$target/cifar10/$f" >"$stage/$f"; done
      cp "$target/cifar10/batches.meta.txt" "$stage/"
      rm -rf "$target/cifar10-partial"
      mv "$stage" "$target/cifar10-partial"
      say "cifar10-partial: the first $PARTIAL_IMAGES images of each batch in $target/cifar10-partial"
      ;;
    austen)
      if have_all text austen.txt; then say "austen: already in $target/text"; continue; fi
      mkdir -p "$target/text"
      part="$target/text/.austen.txt.part"
      : >"$part"
      for n in "${AUSTEN_EBOOKS[@]}"; do
        download "https://www.gutenberg.org/cache/epub/$n/pg$n.txt" "pg$n.txt"
        verify_recorded "pg$n.txt"
        # The text between Gutenberg's "*** START OF ..." and "*** END OF ..." lines, CRLF to LF.
        awk '/^\*\*\* *END OF/ { on = 0 } on { print } /^\*\*\* *START OF/ { on = 1 }' "$downloads/pg$n.txt" |
          tr -d '\r' >>"$part"
        [ -s "$part" ] || die 1 "$downloads/pg$n.txt has no '*** START OF' line: not a Gutenberg text"
        printf '\n\n' >>"$part"
      done
      mv "$part" "$target/text/austen.txt"
      say "austen: $(wc -c <"$target/text/austen.txt") bytes in $target/text/austen.txt"
      ;;
  esac
done
say "done: datasets in $target (set LAYERCOLLAPSE_DATA=$target or the config's data root)"
