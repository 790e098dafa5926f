#!/usr/bin/env bash
# Fetch public chest X-ray datasets into data/ from their official sources (never re-hosted).
#
#   ./download_dataset.sh [-c] [-x] [-a] [-d DATA_DIR]
#     -c  CheXpert-v1.0-small (Stanford AIMI; needs the signed URL from your registration, CHEXPERT_URL)
#     -x  NIH ChestX-ray14 (NIH Clinical Center box share)
#     -a  all of the above
#     -d  data folder (default: $MEDBENCH_DATA_DIR or ./data)
set -euo pipefail

DATA_DIR="${MEDBENCH_DATA_DIR:-$(dirname "$0")/data}"
NIH_LABELS_URL="https://nihcc.app.box.com/v/ChestXray-NIHCC"
CHEXPERT_PAGE="https://stanfordmlgroup.github.io/competitions/chexpert/"
want_chexpert=0
want_nih=0

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while getopts "cxad:h" opt; do
  case "$opt" in
    c) want_chexpert=1 ;;
    x) want_nih=1 ;;
    a) want_chexpert=1; want_nih=1 ;;
    d) DATA_DIR="$OPTARG" ;;
    h) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done
if [ "$want_chexpert" = 0 ] && [ "$want_nih" = 0 ]; then usage; exit 2; fi
mkdir -p "$DATA_DIR"

fetch() {  # fetch URL FILE: a clear message when the network refuses
  if ! curl -fL --retry 3 --connect-timeout 20 -o "$2.part" "$1"; then
    rm -f "$2.part"
    echo "error: could not download $1 — the network refused or the address changed." >&2
    echo "       Download it by hand and put it at $2 (see data/README.md for the layout)." >&2
    return 1
  fi
  mv "$2.part" "$2"
}

if [ "$want_chexpert" = 1 ]; then
  if [ -z "${CHEXPERT_URL:-}" ]; then
    echo "CheXpert needs a registration: get the CheXpert-v1.0-small download link at $CHEXPERT_PAGE" >&2
    echo "and run again with CHEXPERT_URL=<that link> $0 -c" >&2
    exit 1
  fi
  fetch "$CHEXPERT_URL" "$DATA_DIR/CheXpert-v1.0-small.zip"
  mkdir -p "$DATA_DIR/chexpert"
  unzip -q -o "$DATA_DIR/CheXpert-v1.0-small.zip" -d "$DATA_DIR/chexpert"
fi

if [ "$want_nih" = 1 ]; then
  echo "NIH ChestX-ray14 is shared as a box folder: $NIH_LABELS_URL" >&2
  echo "Download Data_Entry_2017_v2020.csv and images_*.tar.gz there (NIH_URLS may list direct links)," >&2
  echo "then unpack the images into $DATA_DIR/chestxray14-512/images/ (resize for -256)." >&2
  for url in ${NIH_URLS:-}; do
    mkdir -p "$DATA_DIR/chestxray14-512"
    fetch "$url" "$DATA_DIR/chestxray14-512/$(basename "$url")"
  done
fi
